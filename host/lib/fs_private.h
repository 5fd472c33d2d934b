/* Private to the fs module (fs.c, fs_resolve.c, fs_write.c): path resolution against the
 * grants, the errors fs raises, and the file-writing primitives. */
#ifndef ECAP_FS_PRIVATE_H
#define ECAP_FS_PRIVATE_H

#include <errno.h>
#include <stddef.h>
#include <sys/types.h>

#include <lua.h>

#include "libs.h"

#define FS_PATH_MAX 4096 /* longest resolved path handled (Linux's PATH_MAX) */

/* The errno fs_open_beneath (and so fs_write_atomic, fs_append_to) reports for a file that no
 * script may reach (see fs_refuse_hidden); open(2) never sets EDOM itself. */
#define FS_EHIDDEN EDOM

struct fs_grants;

enum fs_access { ACC_READ, ACC_WRITE };

/* What fs_resolve() found. */
enum fs_found {
    FOUND_FILE,    /* path exists; real is its realpath */
    FOUND_MISSING, /* path does not exist but its parent does; real = realpath(parent)/name */
    FOUND_NOTHING, /* path cannot be resolved (errno in *err); the nearest existing ancestor is
                    * inside a grant, so saying why leaks nothing */
};

/* The grants of L (fs_set_grants), or NULL when none were given. */
const struct fs_grants *fs_config(lua_State *L);

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

/* Raises the "sandbox" refusal for given (the path escaped the grants). */
int fs_refuse(lua_State *L, const char *fname, const char *given, enum fs_access acc);
/* Raises the "sandbox" refusal for a path no grant opens: on procfs or sysfs (/proc holds the
 * process's environment, memory and descriptors; /dev/fd and /dev/stdin lead there), or the
 * API key file (any hard link to it included). */
int fs_refuse_hidden(lua_State *L, const char *fname, const char *given);

/* A resolved, granted path and the grant it lies in: opens go through the grant's directory
 * descriptor (openat2 with RESOLVE_BENEATH), so a directory swapped for a symlink between the
 * check and the open cannot lead out of the grant (EXDEV instead). */
struct fs_anchor {
    int gfd;          /* O_PATH descriptor of the grant (owned by the Lua state), or -1 */
    int gerr;         /* when gfd is -1: why the grant could not be opened */
    const char *real; /* the resolved path */
    const char *rel;  /* real relative to the grant ("." for the grant itself) */
    struct fs_key_id key; /* refused at open, whatever the path */
};

/* Finds the grant of real (resolved and granted for acc) and opens it on first use in this
 * Lua state. May raise (memory): call before opening anything. real must outlive a. */
void fs_anchor(lua_State *L, const char *real, enum fs_access acc, struct fs_anchor *a);
/* Opens rel (relative to a's grant; abs is the same path, absolute) with openat2 and
 * RESOLVE_BENEATH; falls back to open(abs) when the kernel has no openat2. Returns a
 * descriptor, or -1 with errno set (EXDEV: the path now leads out of the grant; FS_EHIDDEN:
 * what was opened is on procfs/sysfs or is the key file, checked on the descriptor itself, so
 * no swap between check and open gets past it). No Lua calls. */
int fs_open_beneath(const struct fs_anchor *a, const char *rel, const char *abs, int flags,
                    mode_t mode);

/* Replace a->real with text atomically, keeping its mode when it exists; or append text to
 * a->real, creating it when it does not exist (EINVAL: not a regular file). Return 0 or an
 * errno (EXDEV: the path led out of the grant). */
int fs_write_atomic(const struct fs_anchor *a, const char *text, size_t len, int exists);
int fs_append_to(const struct fs_anchor *a, const char *text, size_t len, int exists);

#endif
