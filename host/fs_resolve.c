/* fs path resolution and grant checks: every path a script gives is resolved with
 * realpath(3) and must land inside a granted directory (the config holds their realpaths), so
 * neither `..` nor a symlink leads out. A file that does not exist yet (write, append) is
 * resolved through its parent directory: realpath of the parent, then a final component that
 * is a plain name. Reading needs a read or a write grant, writing a write grant. Refusals raise
 * error tables of kind "sandbox", OS failures kind "io"; both name the path the script gave. */
#define _XOPEN_SOURCE 700 /* realpath */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "config.h"
#include "errors.h"
#include "fs_private.h"
#include "host.h"

/* ---- grants ----------------------------------------------------------------------------- */

const struct config *fs_config(lua_State *L)
{
    struct host *h = host_get(L);
    return h ? h->cfg : NULL;
}

/* Whether real is dir or lies below it (dir may end in slashes). */
static int under(const char *real, const char *dir)
{
    size_t n = strlen(dir);
    if (n == 1 && dir[0] == '/')
        return 1;
    while (n > 1 && dir[n - 1] == '/')
        n--;
    return strncmp(real, dir, n) == 0 && (real[n] == '\0' || real[n] == '/');
}

static int under_any(const char *real, char *const *dirs, int n)
{
    for (int i = 0; i < n; i++)
        if (dirs[i] && under(real, dirs[i]))
            return 1;
    return 0;
}

static int granted(lua_State *L, const char *real, enum fs_access acc)
{
    const struct config *c = fs_config(L);
    if (!c)
        return 0;
    if (under_any(real, c->write_dirs, c->n_write_dirs))
        return 1;
    return acc == ACC_READ && under_any(real, c->read_dirs, c->n_read_dirs);
}

int fs_fail(lua_State *L, const char *kind, const char *fname, const char *given,
            const char *what)
{
    err_push(L, kind, "%s: %s: %s", fname, given, what);
    lua_pushstring(L, given);
    lua_setfield(L, -2, "path");
    return lua_error(L);
}

int fs_io_fail(lua_State *L, const char *fname, const char *given, int e)
{
    return fs_fail(L, "io", fname, given, strerror(e));
}

/* Raises the "sandbox" refusal, with the option that would grant the path in its rule field. */
static int refuse(lua_State *L, const char *fname, const char *given,
                  enum fs_access acc)
{
    const char *rule = acc == ACC_WRITE ? "--allow-write" : "--allow-read";
    const struct config *c = fs_config(L);
    int none = !c || (acc == ACC_WRITE ? c->n_write_dirs == 0
                                       : c->n_read_dirs + c->n_write_dirs == 0);
    if (none)
        err_push(L, "sandbox", "%s: %s: no directory is granted for %s (%s DIR)", fname, given,
                 acc == ACC_WRITE ? "writing" : "reading", rule);
    else /* never where it resolves: that would tell what lies outside the grants */
        err_push(L, "sandbox", "%s: %s is outside the granted directories (%s)", fname, given,
                 rule);
    lua_pushstring(L, given);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, rule);
    lua_setfield(L, -2, "rule");
    return lua_error(L);
}

/* ---- path resolution -------------------------------------------------------------------- */

const char *fs_split_path(const char *path, char *dir)
{
    const char *slash = strrchr(path, '/');
    if (!slash) {
        strcpy(dir, ".");
        return path;
    }
    if (slash == path) {
        strcpy(dir, "/");
    } else {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
    }
    return slash + 1;
}

/* realpath(3) into out (FS_PATH_MAX bytes), without relying on PATH_MAX. No Lua calls. */
static char *real_path(const char *path, char *out)
{
    char *r = realpath(path, NULL);
    if (!r)
        return NULL;
    if (strlen(r) >= FS_PATH_MAX) {
        free(r);
        errno = ENAMETOOLONG;
        return NULL;
    }
    strcpy(out, r);
    free(r);
    return out;
}

/* realpath of the nearest existing ancestor of path, into real. Never fails: "." or "/" at
 * worst (or "" when even the working directory cannot be resolved, which no grant covers). */
static void nearest_ancestor(const char *path, char *real)
{
    char cur[FS_PATH_MAX], dir[FS_PATH_MAX];
    strcpy(cur, path);
    for (;;) {
        if (real_path(cur, real))
            return;
        if (strcmp(cur, ".") == 0 || strcmp(cur, "/") == 0) {
            real[0] = '\0';
            return;
        }
        fs_split_path(cur, dir);
        strcpy(cur, dir);
    }
}

static int plain_name(const char *name)
{
    return name[0] != '\0' && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

enum fs_found fs_resolve(lua_State *L, const char *fname, const char *given, size_t len,
                         enum fs_access acc, char *real, int *err)
{
    char dir[FS_PATH_MAX];
    const char *name;
    int e;
    if (len == 0)
        return fs_fail(L, "io", fname, "\"\"", "empty path"), FOUND_NOTHING;
    if (strlen(given) != len)
        return fs_fail(L, "io", fname, given, "path contains a NUL byte"), FOUND_NOTHING;
    if (len >= FS_PATH_MAX)
        return fs_io_fail(L, fname, given, ENAMETOOLONG), FOUND_NOTHING;
    if (real_path(given, real)) {
        if (!granted(L, real, acc))
            refuse(L, fname, given, acc);
        return FOUND_FILE;
    }
    e = errno;
    name = fs_split_path(given, dir);
    if (e == ENOENT && plain_name(name) && real_path(dir, real)) {
        size_t n = strlen(real);
        if (n + 1 + strlen(name) >= FS_PATH_MAX)
            return fs_io_fail(L, fname, given, ENAMETOOLONG), FOUND_NOTHING;
        if (n > 1)
            real[n++] = '/';
        strcpy(real + n, name);
        if (!granted(L, real, acc))
            refuse(L, fname, given, acc);
        return FOUND_MISSING;
    }
    /* Unresolvable: decide between refusal and OS error on the part that does exist, so an
     * error never tells what lies outside the grants. */
    nearest_ancestor(given, real);
    if (!real[0] || !granted(L, real, acc))
        refuse(L, fname, given, acc);
    *err = e;
    return FOUND_NOTHING;
}

void fs_resolve_existing(lua_State *L, const char *fname, int arg, enum fs_access acc,
                         char *real)
{
    size_t len;
    const char *given = luaL_checklstring(L, arg, &len);
    int e = ENOENT;
    if (fs_resolve(L, fname, given, len, acc, real, &e) != FOUND_FILE)
        fs_io_fail(L, fname, given, e);
}
