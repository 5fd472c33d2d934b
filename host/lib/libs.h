/* Libraries the sandbox gives scripts besides ecap: fs (granted directories only), csv, log.
 * Each open function pushes its module table. */
#ifndef ECAP_LIBS_H
#define ECAP_LIBS_H

#include <lua.h>

#define FS_MAX_GRANTS 16 /* directories per --allow-read / --allow-write */

/* The directories a run grants (realpaths), read by every fs and csv function of the state. */
struct fs_grants {
    char *const *read_dirs;
    int n_read_dirs;
    char *const *write_dirs;   /* writable, and readable too */
    int n_write_dirs;
};

/* Gives the fs module of L its grants (g must outlive L); without it fs touches no file. */
void fs_set_grants(lua_State *L, const struct fs_grants *g);

/* lua_CFunctions: each pushes its module table. */
int fs_open(lua_State *L);
int csv_open(lua_State *L);

/* Pushes the log module; quiet silences log.info. */
void log_open(lua_State *L, int quiet);

#endif
