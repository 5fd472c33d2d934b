/* fs path resolution and grant checks: every path a script gives is resolved with
 * realpath(3) and must land inside a granted directory (the config holds their realpaths), so
 * neither `..` nor a symlink leads out. A file that does not exist yet (write, append) is
 * resolved through its parent directory: realpath of the parent, then a final component that
 * is a plain name. Reading needs a read or a write grant, writing a write grant. Refusals raise
 * error tables of kind "sandbox", OS failures kind "io"; both name the path the script gave.
 *
 * The check alone would leave a window: another process that can write inside a grant could
 * swap a directory for a symlink between the check and an open by name. So every open is
 * made relative to a descriptor of the grant, opened once per Lua state, with openat2 and
 * RESOLVE_BENEATH: the kernel refuses (EXDEV) a path that leads out of it at open time.
 *
 * Some files no grant opens, so that the API key stays out of every path a script can reach:
 * procfs (/proc/self/environ, /proc/self/mem, the descriptors; /dev/fd and /dev/stdin are
 * links into it) and sysfs (kernel state, never workflow data) by their filesystem type, and
 * the key file by its device and inode (hard links included). Both are checked on the
 * resolved path, so fs.exists refuses them too, and again on every descriptor opened. */
#define _GNU_SOURCE /* realpath, O_PATH, syscall */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/magic.h> /* PROC_SUPER_MAGIC, SYSFS_MAGIC */
#if defined(__has_include)
#if __has_include(<linux/openat2.h>)
#include <linux/openat2.h>
#define HAVE_OPENAT2_H 1
#endif
#endif

#include <lauxlib.h>

#include "errors.h"
#include "fs_private.h"
#include "libs.h"

/* ---- grants ----------------------------------------------------------------------------- */

static const char grants_cfg_key = 'G';

void fs_set_grants(lua_State *L, const struct fs_grants *g)
{
    lua_pushlightuserdata(L, (void *)g);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &grants_cfg_key);
}

const struct fs_grants *fs_config(lua_State *L)
{
    const struct fs_grants *g;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &grants_cfg_key);
    g = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return g;
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
    const struct fs_grants *c = fs_config(L);
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
int fs_refuse(lua_State *L, const char *fname, const char *given, enum fs_access acc)
{
    const char *rule = acc == ACC_WRITE ? "--allow-write" : "--allow-read";
    const struct fs_grants *c = fs_config(L);
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

int fs_refuse_hidden(lua_State *L, const char *fname, const char *given)
{
    return fs_fail(L, "sandbox", fname, given, "not open to scripts under any grant "
                   "(/proc, /sys and the API key file never are)");
}

/* ---- files no grant opens ---------------------------------------------------------------- */

/* Whether a file with these statfs/stat results is hidden from scripts. */
static int hidden(const struct statfs *sf, const struct stat *st, const struct fs_key_id *key)
{
    if (sf->f_type == PROC_SUPER_MAGIC || sf->f_type == SYSFS_MAGIC)
        return 1;
    return key->known && st->st_dev == key->dev && st->st_ino == key->ino;
}

/* The key file's identity from the run's grants. */
static void key_identity(const struct fs_grants *c, struct fs_key_id *key)
{
    key->known = c && c->key.known;
    key->dev = key->known ? c->key.dev : 0;
    key->ino = key->known ? c->key.ino : 0;
}

/* Whether the file at path (resolved) is hidden; a path that cannot be examined counts as
 * hidden. No Lua calls. */
static int path_hidden(const struct fs_grants *c, const char *path)
{
    struct fs_key_id key;
    struct statfs sf;
    struct stat st;
    key_identity(c, &key);
    return statfs(path, &sf) != 0 || stat(path, &st) != 0 || hidden(&sf, &st, &key);
}

/* The same for an open descriptor (O_PATH ones included). */
static int fd_hidden(const struct fs_anchor *a, int fd)
{
    struct statfs sf;
    struct stat st;
    return fstatfs(fd, &sf) != 0 || fstat(fd, &st) != 0 || hidden(&sf, &st, &a->key);
}

int fs_fd_hidden(lua_State *L, int fd)
{
    struct fs_anchor a;
    key_identity(fs_config(L), &a.key);
    return fd_hidden(&a, fd);
}

/* ---- grant descriptors ------------------------------------------------------------------- */

#define GRANTS_MT "ecap.fs.grants"

/* The grants' O_PATH descriptors, opened on first use; -1 when not open. Owned by a userdata
 * in the registry, closed when the Lua state is. */
struct grant_fds {
    int write[FS_MAX_GRANTS];
    int read[FS_MAX_GRANTS];
};

static const char grants_key = 'g';

static int grants_gc(lua_State *L)
{
    struct grant_fds *g = luaL_checkudata(L, 1, GRANTS_MT);
    for (int i = 0; i < FS_MAX_GRANTS; i++) {
        if (g->write[i] >= 0)
            close(g->write[i]);
        if (g->read[i] >= 0)
            close(g->read[i]);
        g->write[i] = g->read[i] = -1;
    }
    return 0;
}

static struct grant_fds *grant_fds(lua_State *L)
{
    struct grant_fds *g;
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &grants_key) != LUA_TNIL) {
        g = lua_touserdata(L, -1);
        lua_pop(L, 1);
        return g;
    }
    lua_pop(L, 1);
    g = lua_newuserdatauv(L, sizeof *g, 0);
    for (int i = 0; i < FS_MAX_GRANTS; i++)
        g->write[i] = g->read[i] = -1;
    if (luaL_newmetatable(L, GRANTS_MT)) {
        lua_pushcfunction(L, grants_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &grants_key);
    return g;
}

/* real relative to dir, which contains it (under()). */
static const char *relative_to(const char *real, const char *dir)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (n == 1 && dir[0] == '/')
        return real[1] ? real + 1 : ".";
    return real[n] ? real + n + 1 : ".";
}

void fs_anchor(lua_State *L, const char *real, enum fs_access acc, struct fs_anchor *a)
{
    const struct fs_grants *c = fs_config(L);
    struct grant_fds *g = grant_fds(L);
    char *const *dirs = NULL;
    int *fds = NULL, i = 0;
    a->gfd = -1;
    a->gerr = EACCES;
    a->real = real;
    a->rel = real;
    key_identity(c, &a->key);
    if (!c)
        return;
    for (i = 0; i < c->n_write_dirs && i < FS_MAX_GRANTS; i++)
        if (c->write_dirs[i] && under(real, c->write_dirs[i])) {
            dirs = c->write_dirs;
            fds = g->write;
            break;
        }
    if (!dirs && acc == ACC_READ)
        for (i = 0; i < c->n_read_dirs && i < FS_MAX_GRANTS; i++)
            if (c->read_dirs[i] && under(real, c->read_dirs[i])) {
                dirs = c->read_dirs;
                fds = g->read;
                break;
            }
    if (!dirs)
        return; /* not granted: fs_resolve has refused it already */
    if (fds[i] < 0) {
        fds[i] = open(dirs[i], O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (fds[i] < 0)
            a->gerr = errno;
    }
    a->gfd = fds[i];
    a->rel = relative_to(real, dirs[i]);
}

static int openat2_beneath(int dirfd, const char *rel, int flags, mode_t mode)
{
#if defined(HAVE_OPENAT2_H) && defined(SYS_openat2)
    struct open_how how;
    int fd, tries = 0;
    memset(&how, 0, sizeof how);
    how.flags = (unsigned long long)(unsigned)flags;
    how.mode = (flags & O_CREAT) ? (unsigned long long)mode : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    do /* EAGAIN: a rename raced with a ".." lookup; the kernel asks for a retry */
        fd = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof how);
    while (fd < 0 && (errno == EAGAIN || errno == EINTR) && ++tries < 16);
    return fd;
#else
    (void)dirfd, (void)rel, (void)flags, (void)mode;
    errno = ENOSYS;
    return -1;
#endif
}

int fs_open_beneath(const struct fs_anchor *a, const char *rel, const char *abs, int flags,
                    mode_t mode)
{
    int fd;
    if (a->gfd < 0) {
        errno = a->gerr;
        return -1;
    }
    fd = openat2_beneath(a->gfd, rel, flags | O_CLOEXEC, mode);
    if (fd < 0 && errno == ENOSYS) /* kernel before 5.6: the check alone, as before */
        fd = open(abs, flags | O_CLOEXEC, mode);
    if (fd >= 0 && fd_hidden(a, fd)) {
        close(fd);
        errno = FS_EHIDDEN;
        return -1;
    }
    return fd;
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
            fs_refuse(L, fname, given, acc);
        if (path_hidden(fs_config(L), real))
            fs_refuse_hidden(L, fname, given);
        return FOUND_FILE;
    }
    e = errno;
    name = fs_split_path(given, dir);
    if (e == ENOENT && plain_name(name) && real_path(dir, real)) {
        size_t n = strlen(real);
        int dir_hidden = path_hidden(fs_config(L), real);
        if (n + 1 + strlen(name) >= FS_PATH_MAX)
            return fs_io_fail(L, fname, given, ENAMETOOLONG), FOUND_NOTHING;
        if (n > 1)
            real[n++] = '/';
        strcpy(real + n, name);
        if (!granted(L, real, acc))
            fs_refuse(L, fname, given, acc);
        if (dir_hidden)
            fs_refuse_hidden(L, fname, given);
        return FOUND_MISSING;
    }
    /* Unresolvable: decide between refusal and OS error on the part that does exist, so an
     * error never tells what lies outside the grants. */
    nearest_ancestor(given, real);
    if (!real[0] || !granted(L, real, acc))
        fs_refuse(L, fname, given, acc);
    if (path_hidden(fs_config(L), real))
        fs_refuse_hidden(L, fname, given);
    *err = e;
    return FOUND_NOTHING;
}

void fs_resolve_existing(lua_State *L, const char *fname, int arg, enum fs_access acc,
                         char *real)
{
    size_t len;
    const char *given = err_checklstring(L, arg, &len);
    int e = ENOENT;
    if (fs_resolve(L, fname, given, len, acc, real, &e) != FOUND_FILE)
        fs_io_fail(L, fname, given, e);
}
