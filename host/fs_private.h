/* Private to the fs module (fs.c, fs_resolve.c, fs_write.c): path resolution against the
 * grants, the errors fs raises, and the file-writing primitives. */
#ifndef ECAP_FS_PRIVATE_H
#define ECAP_FS_PRIVATE_H

#include <stddef.h>

#include <lua.h>

#define FS_PATH_MAX 4096 /* longest resolved path handled (Linux's PATH_MAX) */

struct config;

enum fs_access { ACC_READ, ACC_WRITE };

/* What fs_resolve() found. */
enum fs_found {
    FOUND_FILE,    /* path exists; real is its realpath */
    FOUND_MISSING, /* path does not exist but its parent does; real = realpath(parent)/name */
    FOUND_NOTHING, /* path cannot be resolved (errno in *err); the nearest existing ancestor is
                    * inside a grant, so saying why leaks nothing */
};

/* The run's settings, or NULL in a state without a host. */
const struct config *fs_config(lua_State *L);

/* Raises a table of kind with message "fname: given: what" and a path field (given). */
int fs_fail(lua_State *L, const char *kind, const char *fname, const char *given,
            const char *what);
/* The same, kind "io", with strerror(e) as what. */
int fs_io_fail(lua_State *L, const char *fname, const char *given, int e);

/* Splits path into parent directory (into dir, FS_PATH_MAX bytes) and final component.
 * Trailing slashes stay part of the name, which is then empty. Returns the name (in path). */
const char *fs_split_path(const char *path, char *dir);

/* Resolves given (len bytes) for acc into real (FS_PATH_MAX bytes); raises when the path is
 * refused or malformed. */
enum fs_found fs_resolve(lua_State *L, const char *fname, const char *given, size_t len,
                         enum fs_access acc, char *real, int *err);
/* Resolves argument arg, a path that must exist (read, lines, list); raises otherwise. */
void fs_resolve_existing(lua_State *L, const char *fname, int arg, enum fs_access acc,
                         char *real);

/* Replace real with text atomically, keeping its mode when it exists; or append text to real,
 * creating it when it does not exist (EINVAL: not a regular file). Return 0 or an errno. */
int fs_write_atomic(const char *real, const char *text, size_t len, int exists);
int fs_append_to(const char *real, const char *text, size_t len, int exists);

#endif
