/* The fs module: file access for scripts, limited to the directories granted with
 * --allow-read DIR / --allow-write DIR. Without a grant a script touches no file.
 *
 * Every path is resolved with realpath(3) and must land inside a granted directory (the
 * config holds their realpaths), so neither `..` nor a symlink leads out. A file that does
 * not exist yet (write, append) is resolved through its parent directory: realpath of the
 * parent, then a final component that is a plain name. Reading needs a read or a write grant,
 * writing a write grant. Refusals raise error tables of kind "sandbox", OS failures kind "io";
 * both name the path the script gave.
 *
 * No file descriptor outlives a call except the one of an fs.lines iterator, which a
 * userdata owns (closed at end of file, by __close when a for loop is left, or by __gc).
 * Descriptors are opened only after every Lua allocation that could raise, or are owned by
 * a to-be-closed userdata while Lua code runs. */
#define _XOPEN_SOURCE 700 /* realpath */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <lauxlib.h>

#include "config.h"
#include "errors.h"
#include "host.h"
#include "libs.h"

#define FS_FILE_MT "ecap.fs.file"
#define FS_DIR_MT "ecap.fs.dir"
#define FS_CHUNK 65536
#define FS_PATH_MAX 4096 /* longest resolved path handled (Linux's PATH_MAX) */

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

enum access { ACC_READ, ACC_WRITE };

/* What resolve() found. */
enum found {
    FOUND_FILE,    /* path exists; real is its realpath */
    FOUND_MISSING, /* path does not exist but its parent does; real = realpath(parent)/name */
    FOUND_NOTHING, /* path cannot be resolved (errno in *err); the nearest existing ancestor is
                    * inside a grant, so saying why leaks nothing */
};

/* ---- grants ----------------------------------------------------------------------------- */

static const struct config *cfg_of(lua_State *L)
{
    struct host *h = host_get(L);
    return h ? h->cfg : NULL;
}

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

static int granted(lua_State *L, const char *real, enum access acc)
{
    const struct config *c = cfg_of(L);
    if (!c)
        return 0;
    if (under_any(real, c->write_dirs, c->n_write_dirs))
        return 1;
    return acc == ACC_READ && under_any(real, c->read_dirs, c->n_read_dirs);
}

/* Raises a table of kind, with message "fname: given: what" and a path field. */
static int fs_fail(lua_State *L, const char *kind, const char *fname, const char *given,
                   const char *what)
{
    err_push(L, kind, "%s: %s: %s", fname, given, what);
    lua_pushstring(L, given);
    lua_setfield(L, -2, "path");
    return lua_error(L);
}

static int fs_io_fail(lua_State *L, const char *fname, const char *given, int e)
{
    return fs_fail(L, "io", fname, given, strerror(e));
}

static int refuse(lua_State *L, const char *fname, const char *given, const char *real,
                  enum access acc)
{
    const char *rule = acc == ACC_WRITE ? "--allow-write" : "--allow-read";
    const struct config *c = cfg_of(L);
    int none = !c || (acc == ACC_WRITE ? c->n_write_dirs == 0
                                       : c->n_read_dirs + c->n_write_dirs == 0);
    if (none)
        err_push(L, "sandbox", "%s: %s: no directory is granted for %s (%s DIR)", fname, given,
                 acc == ACC_WRITE ? "writing" : "reading", rule);
    else if (real && strcmp(real, given) != 0)
        err_push(L, "sandbox", "%s: %s (%s) is outside the granted directories (%s)", fname,
                 given, real, rule);
    else
        err_push(L, "sandbox", "%s: %s is outside the granted directories (%s)", fname, given,
                 rule);
    lua_pushstring(L, given);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, rule);
    lua_setfield(L, -2, "rule");
    return lua_error(L);
}

/* ---- path resolution -------------------------------------------------------------------- */

/* Splits path into parent directory (into dir) and final component. Trailing slashes stay
 * part of the name, which is then empty. Returns a pointer to the name inside path. */
static const char *split(const char *path, char *dir)
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
        split(cur, dir);
        strcpy(cur, dir);
    }
}

static int plain_name(const char *name)
{
    return name[0] != '\0' && strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

/* Resolves given for acc, into real (FS_PATH_MAX bytes). Raises when the path is refused. */
static enum found resolve(lua_State *L, const char *fname, const char *given, size_t len,
                          enum access acc, char *real, int *err)
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
            refuse(L, fname, given, real, acc);
        return FOUND_FILE;
    }
    e = errno;
    name = split(given, dir);
    if (e == ENOENT && plain_name(name) && real_path(dir, real)) {
        size_t n = strlen(real);
        if (n + 1 + strlen(name) >= FS_PATH_MAX)
            return fs_io_fail(L, fname, given, ENAMETOOLONG), FOUND_NOTHING;
        if (n > 1)
            real[n++] = '/';
        strcpy(real + n, name);
        if (!granted(L, real, acc))
            refuse(L, fname, given, real, acc);
        return FOUND_MISSING;
    }
    /* Unresolvable: decide between refusal and OS error on the part that does exist, so an
     * error never tells what lies outside the grants. */
    nearest_ancestor(given, real);
    if (!real[0] || !granted(L, real, acc))
        refuse(L, fname, given, NULL, acc);
    *err = e;
    return FOUND_NOTHING;
}

/* Resolves a path that must exist (read, lines, list); raises otherwise. */
static void resolve_existing(lua_State *L, const char *fname, int arg, enum access acc,
                             char *real)
{
    size_t len;
    const char *given = luaL_checklstring(L, arg, &len);
    int e = ENOENT;
    if (resolve(L, fname, given, len, acc, real, &e) != FOUND_FILE)
        fs_io_fail(L, fname, given, e);
}

/* ---- descriptors owned by userdata ------------------------------------------------------- */

typedef struct {
    FILE *f;
} fs_file;

static int file_close(lua_State *L)
{
    fs_file *p = luaL_checkudata(L, 1, FS_FILE_MT);
    if (p->f) {
        fclose(p->f);
        p->f = NULL;
    }
    return 0;
}

/* Opens real for reading: regular files only (a FIFO would block, a device never ends). */
static int open_regular(const char *real, int *err, off_t *size)
{
    struct stat st;
    int fd = open(real, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        *err = errno;
        return -1;
    }
    if (fstat(fd, &st) != 0) {
        *err = errno;
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        *err = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
        close(fd);
        return -1;
    }
    *size = st.st_size;
    return fd;
}

static void not_regular(lua_State *L, const char *fname, const char *given, int e)
{
    if (e == EINVAL)
        fs_fail(L, "io", fname, given, "not a regular file");
    fs_io_fail(L, fname, given, e);
}

/* Size limit for a file read into the Lua state: the memory limit, if any. */
static size_t read_cap(lua_State *L)
{
    const struct config *c = cfg_of(L);
    return c && c->max_memory ? c->max_memory : (size_t)-1;
}

/* ---- fs.read ---------------------------------------------------------------------------- */

static int fs_read(lua_State *L)
{
    char real[FS_PATH_MAX];
    const char *given = luaL_checkstring(L, 1);
    size_t cap = read_cap(L), total = 0;
    luaL_Buffer b;
    fs_file *p;
    off_t size = 0;
    int fd, e = 0;
    resolve_existing(L, "fs.read", 1, ACC_READ, real);
    lua_settop(L, 1);
    /* The userdata first, so that creating it cannot fail with a descriptor open. */
    p = lua_newuserdatauv(L, sizeof *p, 0);
    p->f = NULL;
    luaL_setmetatable(L, FS_FILE_MT);
    lua_toclose(L, 2);
    fd = open_regular(real, &e, &size);
    if (fd < 0)
        not_regular(L, "fs.read", given, e);
    if ((uintmax_t)size > cap) {
        close(fd);
        return fs_fail(L, "sandbox", "fs.read", given,
                       "file is larger than the memory limit (--max-memory)");
    }
    p->f = fdopen(fd, "rb");
    if (!p->f) {
        e = errno;
        close(fd);
        fs_io_fail(L, "fs.read", given, e);
    }
    luaL_buffinit(L, &b);
    for (;;) {
        char *dst = luaL_prepbuffsize(&b, FS_CHUNK);
        size_t n = fread(dst, 1, FS_CHUNK, p->f);
        luaL_addsize(&b, n);
        total += n;
        if (total > cap) {
            return fs_fail(L, "sandbox", "fs.read", given,
                           "file is larger than the memory limit (--max-memory)");
        }
        if (n < FS_CHUNK)
            break;
    }
    if (ferror(p->f))
        fs_io_fail(L, "fs.read", given, EIO);
    luaL_pushresult(&b);
    return 1; /* the to-be-closed slot closes the file */
}

/* ---- fs.write, fs.append ------------------------------------------------------------------ */

static int write_all(int fd, const char *s, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, s, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        s += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Writes real atomically: a temporary file in the same directory, written, fsynced, given the
 * mode of the file it replaces, renamed over it; then the directory is fsynced. Returns 0 or
 * an errno; on failure the temporary file is gone and the old file untouched. No Lua calls. */
static int write_atomic(const char *real, const char *text, size_t len, int exists)
{
    static unsigned long seq;
    char tmp[FS_PATH_MAX + 64], dir[FS_PATH_MAX];
    const char *name = split(real, dir);
    struct stat st;
    int fd = -1, e = 0, dfd;
    for (int tries = 0; fd < 0 && tries < 100; tries++) {
        int n = snprintf(tmp, sizeof tmp, "%s/.%.64s.%ld.%lu.tmp", strcmp(dir, "/") ? dir : "",
                         name, (long)getpid(), ++seq);
        if (n < 0 || (size_t)n >= sizeof tmp)
            return ENAMETOOLONG;
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST)
            return errno;
    }
    if (fd < 0)
        return EEXIST;
    if (exists && stat(real, &st) == 0 && fchmod(fd, st.st_mode & 07777) != 0)
        e = errno;
    if (!e && write_all(fd, text, len) != 0)
        e = errno;
    if (!e && fsync(fd) != 0)
        e = errno;
    if (close(fd) != 0 && !e)
        e = errno;
    if (!e && rename(tmp, real) != 0)
        e = errno;
    if (e) {
        unlink(tmp);
        return e;
    }
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd); /* best effort: the rename itself is done */
        close(dfd);
    }
    return 0;
}

/* Appends to real, creating it if missing (O_EXCL: a symlink planted meanwhile is not
 * followed). Returns 0 or an errno (EINVAL: not a regular file). No Lua calls. */
static int append_to(const char *real, const char *text, size_t len, int exists)
{
    struct stat st;
    int e = 0;
    int flags = O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
    int fd = open(real, exists ? flags : flags | O_CREAT | O_EXCL, 0666);
    if (fd < 0)
        return errno;
    if (fstat(fd, &st) != 0)
        e = errno;
    else if (!S_ISREG(st.st_mode))
        e = EINVAL;
    if (!e && write_all(fd, text, len) != 0)
        e = errno;
    if (close(fd) != 0 && !e)
        e = errno;
    return e;
}

/* Resolves argument 1 for writing; refuses a dangling symlink (its target is unknown). */
static enum found resolve_for_write(lua_State *L, const char *fname, char *real)
{
    size_t len;
    const char *given = luaL_checklstring(L, 1, &len);
    struct stat st;
    int e = ENOENT;
    enum found f = resolve(L, fname, given, len, ACC_WRITE, real, &e);
    if (f == FOUND_NOTHING)
        fs_io_fail(L, fname, given, e);
    if (f == FOUND_MISSING && lstat(real, &st) == 0)
        fs_fail(L, "sandbox", fname, given,
                S_ISLNK(st.st_mode) ? "is a symlink to a missing file; not writing through it"
                                    : "changed while being resolved");
    /* Only regular files are replaced or appended to: this also keeps write's temporary
     * file, which goes next to the target, inside the grant. */
    if (f == FOUND_FILE && stat(real, &st) != 0)
        fs_io_fail(L, fname, given, errno);
    if (f == FOUND_FILE && !S_ISREG(st.st_mode))
        fs_fail(L, "io", fname, given,
                S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file");
    return f;
}

static int fs_write_common(lua_State *L, const char *fname, int append)
{
    char real[FS_PATH_MAX];
    size_t len;
    const char *given = luaL_checkstring(L, 1);
    const char *text = luaL_checklstring(L, 2, &len);
    int exists = resolve_for_write(L, fname, real) == FOUND_FILE;
    int e;
    /* The rename would replace a read-only file: honour its mode as an in-place write would */
    if (exists && !append && access(real, W_OK) != 0)
        fs_io_fail(L, fname, given, errno);
    e = append ? append_to(real, text, len, exists) : write_atomic(real, text, len, exists);
    if (e == EINVAL)
        fs_fail(L, "io", fname, given, "not a regular file");
    if (e)
        fs_io_fail(L, fname, given, e);
    return 0;
}

static int fs_write(lua_State *L)
{
    return fs_write_common(L, "fs.write", 0);
}

static int fs_append(lua_State *L)
{
    return fs_write_common(L, "fs.append", 1);
}

/* ---- fs.lines ----------------------------------------------------------------------------- */

/* Reads one line into the buffer, without its "\n" or "\r\n". Returns 0 at end of file. */
static int read_line(lua_State *L, FILE *f)
{
    luaL_Buffer b;
    int c = EOF, any = 0;
    luaL_buffinit(L, &b);
    while ((c = getc(f)) != EOF && c != '\n') {
        luaL_addchar(&b, (char)c);
        any = 1;
    }
    if (c == '\n')
        any = 1;
    if (luaL_bufflen(&b) > 0 && luaL_buffaddr(&b)[luaL_bufflen(&b) - 1] == '\r')
        luaL_buffsub(&b, 1);
    luaL_pushresult(&b);
    return any;
}

static int lines_iter(lua_State *L)
{
    fs_file *p = luaL_checkudata(L, lua_upvalueindex(1), FS_FILE_MT);
    if (!p->f) {
        lua_pushnil(L);
        return 1;
    }
    if (read_line(L, p->f))
        return 1;
    if (ferror(p->f)) {
        fclose(p->f);
        p->f = NULL;
        lua_pushvalue(L, lua_upvalueindex(2));
        fs_io_fail(L, "fs.lines", lua_tostring(L, -1), EIO);
    }
    fclose(p->f);
    p->f = NULL;
    lua_pushnil(L);
    return 1;
}

/* for line in fs.lines(path) do ... end: iterator, nil, nil, closing value (as io.lines). */
static int fs_lines(lua_State *L)
{
    char real[FS_PATH_MAX];
    const char *given = luaL_checkstring(L, 1);
    fs_file *p;
    off_t size = 0;
    int fd, e = 0;
    resolve_existing(L, "fs.lines", 1, ACC_READ, real);
    lua_settop(L, 1);
    p = lua_newuserdatauv(L, sizeof *p, 0);
    p->f = NULL;
    luaL_setmetatable(L, FS_FILE_MT);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 1);
    lua_pushcclosure(L, lines_iter, 2); /* may raise: nothing open yet */
    lua_pushnil(L);
    lua_pushnil(L);
    lua_pushvalue(L, 2);
    fd = open_regular(real, &e, &size);
    if (fd < 0)
        not_regular(L, "fs.lines", given, e);
    p->f = fdopen(fd, "rb");
    if (!p->f) {
        e = errno;
        close(fd);
        fs_io_fail(L, "fs.lines", given, e);
    }
    return 4;
}

/* ---- fs.exists, fs.list -------------------------------------------------------------------- */

static int fs_exists(lua_State *L)
{
    char real[FS_PATH_MAX];
    size_t len;
    const char *given = luaL_checklstring(L, 1, &len);
    int e = 0;
    lua_pushboolean(L, resolve(L, "fs.exists", given, len, ACC_READ, real, &e) == FOUND_FILE);
    return 1;
}

typedef struct {
    DIR *d;
} fs_dir;

static int dir_close(lua_State *L)
{
    fs_dir *p = luaL_checkudata(L, 1, FS_DIR_MT);
    if (p->d) {
        closedir(p->d);
        p->d = NULL;
    }
    return 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorts the strings of the array at idx (n of them) in place, byte order. */
static void sort_names(lua_State *L, int idx, lua_Integer n)
{
    const char **v;
    if (n < 2)
        return;
    v = lua_newuserdatauv(L, (size_t)n * sizeof *v, 0);
    for (lua_Integer i = 0; i < n; i++) {
        lua_rawgeti(L, idx, i + 1);
        v[i] = lua_tostring(L, -1); /* anchored in the table */
        lua_pop(L, 1);
    }
    qsort(v, (size_t)n, sizeof *v, cmp_names);
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 0; i < n; i++) {
        lua_pushstring(L, v[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_replace(L, idx);
    lua_pop(L, 1);
}

/* fs.list(dir) -> sorted array of the names in dir (without "." and ".."). */
static int fs_list(lua_State *L)
{
    char real[FS_PATH_MAX];
    const char *given = luaL_checkstring(L, 1);
    struct dirent *ent;
    lua_Integer n = 0;
    fs_dir *p;
    resolve_existing(L, "fs.list", 1, ACC_READ, real);
    lua_settop(L, 1);
    p = lua_newuserdatauv(L, sizeof *p, 0);
    p->d = NULL;
    luaL_setmetatable(L, FS_DIR_MT);
    lua_toclose(L, 2);
    lua_newtable(L); /* 3 */
    p->d = opendir(real);
    if (!p->d)
        return fs_io_fail(L, "fs.list", given, errno);
    errno = 0;
    while ((ent = readdir(p->d)) != NULL) {
        if (strcmp(ent->d_name, ".") != 0 && strcmp(ent->d_name, "..") != 0) {
            lua_pushstring(L, ent->d_name);
            lua_rawseti(L, 3, ++n);
        }
        errno = 0;
    }
    if (errno)
        fs_io_fail(L, "fs.list", given, errno);
    sort_names(L, 3, n);
    return 1;
}

/* ---- module ---------------------------------------------------------------------------- */

static const luaL_Reg fs_funcs[] = {
    {"read", fs_read},     {"write", fs_write}, {"append", fs_append}, {"lines", fs_lines},
    {"exists", fs_exists}, {"list", fs_list},   {NULL, NULL},
};

static void make_mt(lua_State *L, const char *name, lua_CFunction close)
{
    if (luaL_newmetatable(L, name)) {
        lua_pushcfunction(L, close);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, close);
        lua_setfield(L, -2, "__gc");
        lua_pushliteral(L, "fs.file");
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
}

int fs_open(lua_State *L)
{
    make_mt(L, FS_FILE_MT, file_close);
    make_mt(L, FS_DIR_MT, dir_close);
    luaL_newlib(L, fs_funcs);
    return 1;
}
