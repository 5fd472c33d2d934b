/* Libraries the sandbox gives scripts besides ecap: fs (granted directories only), csv, log.
 * Each open function pushes its module table. */
#ifndef ECAP_LIBS_H
#define ECAP_LIBS_H

#include <sys/types.h>

#include <lua.h>

#define FS_MAX_GRANTS 16 /* directories per --allow-read / --allow-write */

/* The API key file's identity, when the key came from a file (no file: known = 0). */
struct fs_key_id {
    int known;
    dev_t dev;
    ino_t ino;
};

/* The directories a run grants (realpaths), read by every fs and csv function of the state,
 * and the key file no grant opens. */
struct fs_grants {
    char *const *read_dirs;
    int n_read_dirs;
    char *const *write_dirs;   /* writable, and readable too */
    int n_write_dirs;
    struct fs_key_id key;
};

/* Gives the fs module of L its grants (g must outlive L); without it fs touches no file. */
void fs_set_grants(lua_State *L, const struct fs_grants *g);

/* [-0, +1] Opens the path (a string) at stack index arg for reading as fs.read does (granted
 * directories only, beneath the grant, regular files only; fname names the caller in errors)
 * and pushes the handle that owns the descriptor (closed when the handle is collected or
 * closed). Returns the descriptor and the file's size in *size; raises fs's errors. */
int fs_open_granted(lua_State *L, const char *fname, int arg, long long *size);

/* Whether the open file fd is one no script may read whatever the grants (procfs, sysfs, the
 * API key file of L's grants): for the host's own readers of script-named files (require). */
int fs_fd_hidden(lua_State *L, int fd);

/* lua_CFunctions: each pushes its module table. */
int fs_open(lua_State *L);
int csv_open(lua_State *L);

/* The host's own log line (retries, deprecations, the trace), in log.*'s format on stderr
 * (text, or JSON: lib/log.h); log_write_fields adds fields to a JSON line (text ignores them). */
struct log_field;
void log_write(lua_State *L, const char *level, const char *msg, size_t len);
void log_write_fields(lua_State *L, const char *level, const char *msg, size_t len, const struct log_field *fields,
                      int n_fields);

/* Pushes the log module; quiet silences log.info. */
void log_open(lua_State *L, int quiet);

#endif
