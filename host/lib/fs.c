/* The fs module: file access for scripts, limited to the directories granted with
 * --allow-read DIR / --allow-write DIR (see fs_resolve.c). Without a grant a script touches no
 * file.
 *
 * No file descriptor outlives a call except the one of an fs.lines iterator, which a
 * userdata owns (closed at end of file, by __close when a for loop is left, or by __gc).
 * Descriptors are opened only after every Lua allocation that could raise, or are owned by
 * a to-be-closed userdata while Lua code runs. Files are opened beneath their grant
 * (fs_open_beneath): a path that leads out of it by the time it is opened is refused. */
#define _XOPEN_SOURCE 700 /* fdopen, O_NOFOLLOW */
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

#include "errors.h"
#include "fs_private.h"
#include "libs.h"
#include "limits.h"

#define FS_HANDLE_MT "ecap.fs.handle"
#define FS_CHUNK 65536

#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

/* ---- descriptors owned by userdata ------------------------------------------------------- */

/* An open file or directory, owned by a userdata so that an error raised meanwhile still closes
 * it (to-be-closed slot, __gc). At most one of the two is set. */
typedef struct {
    FILE *f;
    DIR *d;
} fs_handle;

static int handle_close(lua_State *L)
{
    fs_handle *h = luaL_checkudata(L, 1, FS_HANDLE_MT);
    if (h->f) {
        fclose(h->f);
        h->f = NULL;
    }
    if (h->d) {
        closedir(h->d);
        h->d = NULL;
    }
    return 0;
}

/* Pushes a new handle with nothing open yet: created before any descriptor, so that this
 * allocation cannot fail with one open. */
static fs_handle *new_handle(lua_State *L)
{
    fs_handle *h = lua_newuserdatauv(L, sizeof *h, 0);
    h->f = NULL;
    h->d = NULL;
    luaL_setmetatable(L, FS_HANDLE_MT);
    return h;
}

/* Raises the io error for errno e; EINVAL stands for "not a regular file" (open_file,
 * fs_append_to). */
static int os_fail(lua_State *L, const char *fname, const char *given, int e)
{
    if (e == EINVAL)
        return fs_fail(L, "io", fname, given, "not a regular file");
    return fs_io_fail(L, fname, given, e);
}

/* Raises the refusal for EXDEV (the path led out of the grant at open time) and FS_EHIDDEN
 * (what was opened is a file no script may reach), else as os_fail. */
static int open_fail(lua_State *L, const char *fname, const char *given, enum fs_access acc,
                     int e)
{
    if (e == EXDEV)
        return fs_refuse(L, fname, given, acc);
    if (e == FS_EHIDDEN)
        return fs_refuse_hidden(L, fname, given);
    return os_fail(L, fname, given, e);
}

/* Opens real for reading into h->f, beneath its grant: regular files only (a FIFO would block,
 * a device never ends). Raises on failure; returns the file's size. */
static off_t open_file(lua_State *L, fs_handle *h, const char *fname, const char *given,
                       const char *real)
{
    struct fs_anchor a;
    struct stat st;
    int e, fd;
    fs_anchor(L, real, ACC_READ, &a); /* may raise: nothing open yet */
    fd = fs_open_beneath(&a, a.rel, real, O_RDONLY | O_NOFOLLOW | O_NONBLOCK, 0);
    if (fd < 0)
        return open_fail(L, fname, given, ACC_READ, errno);
    if (fstat(fd, &st) != 0)
        e = errno;
    else if (!S_ISREG(st.st_mode))
        e = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
    else if ((h->f = fdopen(fd, "rb")) == NULL)
        e = errno;
    else
        return st.st_size;
    close(fd);
    return os_fail(L, fname, given, e);
}

/* ---- fs.read ---------------------------------------------------------------------------- */

/* Size limit for a file read into the Lua state: the memory limit, if any. */
static size_t read_cap(lua_State *L)
{
    const struct limits *lim = limits_of(L);
    return lim->limit ? lim->limit : (size_t)-1;
}

static int fail_too_large(lua_State *L, const char *given)
{
    return fs_fail(L, "sandbox", "fs.read", given,
                   "file is larger than the memory limit (--max-memory)");
}

static int fs_read(lua_State *L)
{
    char real[FS_PATH_MAX];
    const char *given = err_checkstring(L, 1);
    size_t cap = read_cap(L), total = 0;
    luaL_Buffer b;
    fs_handle *h;
    fs_resolve_existing(L, "fs.read", 1, ACC_READ, real);
    lua_settop(L, 1);
    h = new_handle(L);
    lua_toclose(L, 2);
    if ((uintmax_t)open_file(L, h, "fs.read", given, real) > cap)
        return fail_too_large(L, given);
    luaL_buffinit(L, &b);
    for (;;) {
        char *dst = luaL_prepbuffsize(&b, FS_CHUNK);
        size_t n = fread(dst, 1, FS_CHUNK, h->f);
        luaL_addsize(&b, n);
        total += n;
        if (total > cap) /* the file grew since it was opened */
            return fail_too_large(L, given);
        if (n < FS_CHUNK)
            break;
    }
    if (ferror(h->f))
        fs_io_fail(L, "fs.read", given, EIO);
    luaL_pushresult(&b);
    return 1; /* the to-be-closed slot closes the file */
}

/* ---- a granted file for the call path (ecap.files.upload) ---------------------------------- */

int fs_open_granted(lua_State *L, const char *fname, int arg, long long *size)
{
    char real[FS_PATH_MAX];
    const char *given;
    fs_handle *h;
    arg = lua_absindex(L, arg);
    given = lua_tostring(L, arg);
    fs_resolve_existing(L, fname, arg, ACC_READ, real);
    h = new_handle(L);
    *size = (long long)open_file(L, h, fname, given, real);
    return fileno(h->f);
}

/* ---- fs.write, fs.append ------------------------------------------------------------------ */

/* Resolves argument 1 for writing; refuses a dangling symlink (its target is unknown). */
static enum fs_found resolve_for_write(lua_State *L, const char *fname, char *real)
{
    size_t len;
    const char *given = err_checklstring(L, 1, &len);
    struct stat st;
    int e = ENOENT;
    enum fs_found f = fs_resolve(L, fname, given, len, ACC_WRITE, real, &e);
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
    const char *given = err_checkstring(L, 1);
    const char *text = err_checklstring(L, 2, &len);
    int exists = resolve_for_write(L, fname, real) == FOUND_FILE;
    struct fs_anchor a;
    int e;
    /* The rename would replace a read-only file: honour its mode as an in-place write would */
    if (exists && !append && access(real, W_OK) != 0)
        fs_io_fail(L, fname, given, errno);
    fs_anchor(L, real, ACC_WRITE, &a);
    e = append ? fs_append_to(&a, text, len, exists) : fs_write_atomic(&a, text, len, exists);
    if (e)
        open_fail(L, fname, given, ACC_WRITE, e);
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
    fs_handle *h = luaL_checkudata(L, lua_upvalueindex(1), FS_HANDLE_MT);
    int failed;
    if (!h->f) {
        lua_pushnil(L);
        return 1;
    }
    if (read_line(L, h->f))
        return 1;
    failed = ferror(h->f);
    fclose(h->f); /* at end of file, not only when the loop is left */
    h->f = NULL;
    if (failed) {
        lua_pushvalue(L, lua_upvalueindex(2));
        fs_io_fail(L, "fs.lines", lua_tostring(L, -1), EIO);
    }
    lua_pushnil(L);
    return 1;
}

/* for line in fs.lines(path) do ... end: iterator, nil, nil, closing value (as io.lines). */
static int fs_lines(lua_State *L)
{
    char real[FS_PATH_MAX];
    const char *given = err_checkstring(L, 1);
    fs_handle *h;
    fs_resolve_existing(L, "fs.lines", 1, ACC_READ, real);
    lua_settop(L, 1);
    h = new_handle(L);
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 1);
    lua_pushcclosure(L, lines_iter, 2); /* may raise: nothing open yet */
    lua_pushnil(L);
    lua_pushnil(L);
    lua_pushvalue(L, 2);
    open_file(L, h, "fs.lines", given, real);
    return 4;
}

/* ---- fs.exists, fs.list -------------------------------------------------------------------- */

static int fs_exists(lua_State *L)
{
    char real[FS_PATH_MAX];
    size_t len;
    const char *given = err_checklstring(L, 1, &len);
    int e = 0;
    lua_pushboolean(L, fs_resolve(L, "fs.exists", given, len, ACC_READ, real, &e) == FOUND_FILE);
    return 1;
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
    const char *given = err_checkstring(L, 1);
    struct fs_anchor a;
    struct dirent *ent;
    lua_Integer n = 0;
    fs_handle *h;
    int fd;
    fs_resolve_existing(L, "fs.list", 1, ACC_READ, real);
    lua_settop(L, 1);
    h = new_handle(L);
    lua_toclose(L, 2);
    lua_newtable(L); /* 3 */
    fs_anchor(L, real, ACC_READ, &a);
    fd = fs_open_beneath(&a, a.rel, real, O_RDONLY | O_DIRECTORY | O_NONBLOCK, 0);
    if (fd < 0)
        return open_fail(L, "fs.list", given, ACC_READ, errno);
    h->d = fdopendir(fd);
    if (!h->d) {
        int e = errno;
        close(fd);
        return fs_io_fail(L, "fs.list", given, e);
    }
    errno = 0;
    while ((ent = readdir(h->d)) != NULL) {
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

int fs_open(lua_State *L)
{
    if (luaL_newmetatable(L, FS_HANDLE_MT)) {
        lua_pushcfunction(L, handle_close);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, handle_close);
        lua_setfield(L, -2, "__gc");
        lua_pushliteral(L, "fs.file");
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);
    luaL_newlib(L, fs_funcs);
    return 1;
}
