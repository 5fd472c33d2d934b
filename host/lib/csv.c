/* The csv module: RFC 4180 reading and writing for scripts' inputs and reports.
 *
 *   csv.parse(text [, {header=true, sep=","}]) -> rows, header
 *   csv.rows(path [, opts])                     -> iterator over the rows of a file (fs rules,
 *                                                  streamed: memory stays flat)
 *   csv.encode(rows [, header [, {sep=",", eol="\n"}]]) -> text
 *
 * Reading: fields separated by sep, records ended by CR LF, LF or a lone CR; a field in double
 * quotes may hold sep, quotes (doubled) and line ends, kept as they are. A UTF-8 BOM at the
 * start is skipped, empty lines are skipped, a quote inside an unquoted field is an ordinary
 * character, anything but sep or a line end after a closing quote is an error. Every value is
 * a string. With a header (the default) the first record names the columns: names are trimmed
 * of surrounding spaces and tabs, must be unique, and every later record must have as many
 * fields; rows are tables keyed by name. Without a header rows are arrays of any length.
 * Errors are tables of kind "csv" whose message names the line: "line 4: unterminated quoted
 * field" (tostring: "a.lua:3: csv: line 4: unterminated quoted field"). Bad arguments and options
 * are "argument" errors. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>

#include "errors.h"
#include "libs.h"
#include "limits.h"

struct parser {
    const char *s;
    size_t n, i;
    long line;         /* physical line of s[i], from 1 */
    char sep;
    const char *where; /* file name for messages, or NULL */
};

static int csv_fail(lua_State *L, const struct parser *p, long line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Pushes n as text: err_push's format is checked as printf's, which has no lua_Integer. */
static const char *num(lua_State *L, lua_Integer n)
{
    return lua_pushfstring(L, "%I", (LUAI_UACINT)n);
}

/* Raises {kind="csv", message="[file: ]line N: ...", line=N}. */
static int csv_fail(lua_State *L, const struct parser *p, long line, const char *fmt, ...)
{
    char msg[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (p->where)
        err_push(L, "csv", "%s: line %s: %s", p->where, num(L, line), msg);
    else
        err_push(L, "csv", "line %s: %s", num(L, line), msg);
    lua_pushinteger(L, line);
    lua_setfield(L, -2, "line");
    return lua_error(L);
}

static int is_eol(char c)
{
    return c == '\n' || c == '\r';
}

/* Consumes the line end at s[i] (CR LF, LF or CR). */
static void skip_eol(struct parser *p)
{
    if (p->s[p->i] == '\r' && p->i + 1 < p->n && p->s[p->i + 1] == '\n')
        p->i++;
    p->i++;
    p->line++;
}

/* Pushes the quoted field starting at s[i] (the opening quote), unescaped. */
static void quoted_field(lua_State *L, struct parser *p)
{
    long start = p->line;
    luaL_Buffer b;
    p->i++;
    luaL_buffinit(L, &b);
    for (;;) {
        size_t j = p->i;
        while (j < p->n && p->s[j] != '"') {
            if (p->s[j] == '\n' || (p->s[j] == '\r' && (j + 1 >= p->n || p->s[j + 1] != '\n')))
                p->line++;
            j++;
        }
        luaL_addlstring(&b, p->s + p->i, j - p->i);
        if (j >= p->n)
            csv_fail(L, p, start, "unterminated quoted field");
        if (j + 1 < p->n && p->s[j + 1] == '"') {
            luaL_addchar(&b, '"');
            p->i = j + 2;
            continue;
        }
        p->i = j + 1;
        break;
    }
    luaL_pushresult(&b);
    if (p->i < p->n && p->s[p->i] != p->sep && !is_eol(p->s[p->i])) {
        unsigned char c = (unsigned char)p->s[p->i];
        if (c >= 0x20 && c < 0x7f)
            csv_fail(L, p, p->line, "unexpected '%c' after a closing quote", c);
        csv_fail(L, p, p->line, "unexpected byte 0x%02x after a closing quote", c);
    }
}

/* Reads one record into a new array table. Returns 0 (pushing nothing) at the end of the
 * text; *line is the line where the record starts. */
static int read_record(lua_State *L, struct parser *p, long *line)
{
    lua_Integer k = 0;
    while (p->i < p->n && is_eol(p->s[p->i]))
        skip_eol(p); /* empty lines */
    if (p->i >= p->n)
        return 0;
    *line = p->line;
    lua_newtable(L);
    for (;;) {
        if (p->i < p->n && p->s[p->i] == '"') {
            quoted_field(L, p);
        } else {
            size_t j = p->i;
            while (j < p->n && p->s[j] != p->sep && !is_eol(p->s[j]))
                j++;
            lua_pushlstring(L, p->s + p->i, j - p->i);
            p->i = j;
        }
        lua_rawseti(L, -2, ++k);
        if (p->i >= p->n)
            return 1;
        if (p->s[p->i] == p->sep) {
            p->i++;
            continue;
        }
        skip_eol(p);
        return 1;
    }
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Trims the names of the header record at idx in place and checks they are unique. */
static void check_header(lua_State *L, const struct parser *p, int idx, long line)
{
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    lua_createtable(L, 0, (int)n); /* names seen */
    for (lua_Integer c = 1; c <= n; c++) {
        size_t len;
        const char *s;
        lua_rawgeti(L, idx, c);
        s = lua_tolstring(L, -1, &len);
        while (len > 0 && is_blank(*s))
            s++, len--;
        while (len > 0 && is_blank(s[len - 1]))
            len--;
        lua_pushlstring(L, s, len);
        lua_remove(L, -2);
        lua_pushvalue(L, -1);
        if (lua_rawget(L, -3) != LUA_TNIL)
            csv_fail(L, p, line, "duplicate column '%.80s'", lua_tostring(L, -2));
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_pushboolean(L, 1);
        lua_rawset(L, -4);
        lua_rawseti(L, idx, c);
    }
    lua_pop(L, 1);
}

/* Replaces the array record at the top by a table keyed by the names in hdr. */
static void key_record(lua_State *L, int hdr, lua_Integer ncols)
{
    int rec = lua_gettop(L);
    lua_createtable(L, 0, (int)ncols);
    for (lua_Integer c = 1; c <= ncols; c++) {
        lua_rawgeti(L, hdr, c);
        lua_rawgeti(L, rec, c);
        lua_rawset(L, -3);
    }
    lua_replace(L, rec);
}

struct opts {
    int header;
    char sep;
    const char *eol;
};

static void read_opts(lua_State *L, int idx, struct opts *o)
{
    o->header = 1;
    o->sep = ',';
    o->eol = "\n";
    if (lua_isnoneornil(L, idx))
        return;
    err_checktype(L, idx, LUA_TTABLE);
    if (lua_getfield(L, idx, "header") != LUA_TNIL)
        o->header = lua_toboolean(L, -1);
    if (lua_getfield(L, idx, "sep") != LUA_TNIL) {
        size_t len = 0;
        const char *sep = lua_tolstring(L, -1, &len);
        if (!sep || len != 1 || *sep == '"' || is_eol(*sep))
            err_argerror(L, idx, "sep must be one character, not a quote or a line end");
        else
            o->sep = *sep;
    }
    if (lua_getfield(L, idx, "eol") != LUA_TNIL) {
        const char *eol = lua_tostring(L, -1);
        if (!eol || (strcmp(eol, "\n") != 0 && strcmp(eol, "\r\n") != 0))
            err_argerror(L, idx, "eol must be \"\\n\" or \"\\r\\n\"");
        else
            o->eol = eol[0] == '\n' ? "\n" : "\r\n";
    }
    lua_pop(L, 3);
}

/* Parses s[0..n) and pushes the array of rows and, with a header, the header's names. */
static int parse(lua_State *L, const char *s, size_t n, const struct opts *o, const char *where)
{
    struct parser p = {s, n, 0, 1, o->sep, where};
    lua_Integer nrows = 0, ncols = 0;
    long line = 1;
    int rows, hdr = 0;
    if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
        p.i = 3;
    lua_newtable(L);
    rows = lua_gettop(L);
    if (o->header) {
        if (!read_record(L, &p, &line))
            lua_newtable(L);
        hdr = lua_gettop(L);
        check_header(L, &p, hdr, line);
        ncols = (lua_Integer)lua_rawlen(L, hdr);
    }
    while (read_record(L, &p, &line)) {
        if (o->header) {
            lua_Integer k = (lua_Integer)lua_rawlen(L, -1);
            if (k != ncols)
                csv_fail(L, &p, line, "%lld field%s, header has %lld", (long long)k,
                         k == 1 ? "" : "s", (long long)ncols);
            key_record(L, hdr, ncols);
        }
        lua_rawseti(L, rows, ++nrows);
    }
    return o->header ? 2 : 1;
}

/* csv.parse(text [, opts]) -> rows [, header] */
static int csv_parse(lua_State *L)
{
    size_t n;
    const char *s = err_checklstring(L, 1, &n);
    struct opts o;
    read_opts(L, 2, &o);
    lua_settop(L, 2);
    return parse(L, s, n, &o, NULL);
}

/* ---- csv.rows: a file, streamed ----------------------------------------------------------
 *
 * The file is opened through fs (granted directories, beneath the grant) and read in chunks;
 * only the unconsumed tail of the last chunk and the record being parsed are held, so memory
 * stays flat whatever the file's size. A record is parsed once it is known to be complete
 * (record_end), with the same parser as csv.parse. The file is read twice: a first pass checks
 * every record (so a malformed file fails at the csv.rows call, before any row is used), the
 * second returns the rows. */

#define CSV_CHUNK 65536
#define STREAM_MT "ecap.csv.stream"
#define NEED_MORE ((size_t)-1)

struct stream {
    int fd;
    char *buf;          /* bytes read and not yet consumed: buf[pos..len) */
    size_t cap, len, pos;
    int eof;
    long line;          /* physical line of buf[pos] */
    struct limits *lim; /* the buffer is charged to the run's memory budget */
};

static int stream_gc(lua_State *L)
{
    struct stream *st = lua_touserdata(L, 1);
    if (st->buf) {
        limits_release(st->lim, st->cap);
        free(st->buf);
        st->buf = NULL;
    }
    return 0;
}

/* Where the record starting at s[i] ends (just past its line end), with leading empty lines
 * part of it; NEED_MORE when the bytes so far cannot tell. At the end of the file the record
 * ends with the text (an unterminated quote is then the parser's error to report). */
static size_t record_end(const char *s, size_t n, size_t i, char sep, int eof)
{
    int field_start = 1, quoted = 0;
    while (i < n && is_eol(s[i]))
        i++;
    for (; i < n; i++) {
        char c = s[i];
        if (quoted) {
            if (c == '"') {
                if (i + 1 >= n && !eof)
                    return NEED_MORE; /* "" (an escaped quote) or the closing one? */
                if (i + 1 < n && s[i + 1] == '"')
                    i++;
                else
                    quoted = 0;
            }
            continue;
        }
        if (field_start && c == '"') {
            quoted = 1;
            field_start = 0;
        } else if (c == sep) {
            field_start = 1;
        } else if (c == '\n') {
            return i + 1;
        } else if (c == '\r') {
            if (i + 1 >= n)
                return eof ? n : NEED_MORE; /* CR LF split across reads? */
            return s[i + 1] == '\n' ? i + 2 : i + 1;
        } else {
            field_start = 0;
        }
    }
    return eof ? n : NEED_MORE;
}

/* Reads the next chunk after moving the unconsumed tail to the front (the buffer doubles when
 * a record is longer than it). Raises on a read error or past the memory limit. */
static void refill(lua_State *L, struct stream *st, const char *path)
{
    ssize_t got;
    if (st->pos > 0) {
        memmove(st->buf, st->buf + st->pos, st->len - st->pos);
        st->len -= st->pos;
        st->pos = 0;
    }
    if (st->cap - st->len < CSV_CHUNK) {
        size_t cap = st->cap ? st->cap * 2 : CSV_CHUNK * 2;
        char *nb;
        if (limits_charge(st->lim, cap - st->cap))
            err_raise(L, "csv", "%s: line %d: record too large for the memory limit (--max-memory)",
                      path, (int)st->line);
        if (!(nb = realloc(st->buf, cap))) {
            limits_release(st->lim, cap - st->cap);
            luaL_error(L, "not enough memory");
        }
        st->buf = nb;
        st->cap = cap;
    }
    do
        got = read(st->fd, st->buf + st->len, st->cap - st->len);
    while (got < 0 && errno == EINTR);
    if (got < 0)
        err_raise(L, "io", "csv.rows: %s: %s", path, strerror(errno));
    if (got == 0)
        st->eof = 1;
    st->len += (size_t)got;
}

/* Pushes the next record of the stream as an array table, or returns 0 at the end of the file
 * (pushing nothing). *line gets the line it starts on. */
static int next_record(lua_State *L, struct stream *st, const struct opts *o, const char *path,
                       long *line)
{
    size_t end;
    struct parser p;
    while ((end = record_end(st->buf, st->len, st->pos, o->sep, st->eof)) == NEED_MORE)
        refill(L, st, path);
    p = (struct parser){st->buf, end, st->pos, st->line, o->sep, path};
    if (!read_record(L, &p, line)) {
        st->pos = end;
        st->line = p.line;
        return 0;
    }
    st->pos = p.i;
    st->line = p.line;
    return 1;
}

/* Reads the header record (an array of names, checked) or an empty one. */
static void read_header(lua_State *L, struct stream *st, const struct opts *o, const char *path)
{
    struct parser p = {NULL, 0, 0, 0, o->sep, path};
    long line = 1;
    if (!next_record(L, st, o, path, &line))
        lua_newtable(L);
    check_header(L, &p, lua_gettop(L), line);
}

/* Starts (or restarts) the stream at the beginning of the file, past a UTF-8 BOM. */
static void rewind_stream(lua_State *L, struct stream *st, const char *path)
{
    if (lseek(st->fd, 0, SEEK_SET) != 0)
        err_raise(L, "io", "csv.rows: %s: %s", path, strerror(errno));
    st->len = st->pos = 0;
    st->eof = 0;
    st->line = 1;
    while (st->len < 3 && !st->eof)
        refill(L, st, path);
    if (st->len >= 3 && memcmp(st->buf, "\xEF\xBB\xBF", 3) == 0)
        st->pos = 3;
}

/* Upvalues of the iterator: 1 stream, 2 header (or false), 3 path, 4 sep, 5 the fs handle. */
static int rows_iter(lua_State *L)
{
    struct stream *st = lua_touserdata(L, lua_upvalueindex(1));
    const char *path = lua_tostring(L, lua_upvalueindex(3));
    struct opts o = {lua_toboolean(L, lua_upvalueindex(2)), *lua_tostring(L, lua_upvalueindex(4)), "\n"};
    long line;
    if (!st->buf || !next_record(L, st, &o, path, &line))
        return 0;
    if (o.header) {
        struct parser p = {NULL, 0, 0, 0, o.sep, path};
        lua_Integer ncols = (lua_Integer)lua_rawlen(L, lua_upvalueindex(2));
        lua_Integer k = (lua_Integer)lua_rawlen(L, -1);
        if (k != ncols) /* cannot happen after the check, unless the file changed since */
            csv_fail(L, &p, line, "%lld field%s, header has %lld", (long long)k, k == 1 ? "" : "s",
                     (long long)ncols);
        key_record(L, lua_upvalueindex(2), ncols);
    }
    return 1;
}

/* csv.rows(path [, opts]) -> iterator, nil, nil, closing value: the rows of the file, one at a
 * time (a generic for closes the file when the loop ends; otherwise the collector does). */
static int csv_rows(lua_State *L)
{
    struct opts o;
    struct stream *st;
    long long size;
    long line;
    int sti, hdr, fh;
    const char *path;
    err_checkstring(L, 1);
    read_opts(L, 2, &o);
    lua_settop(L, 2);
    path = lua_tostring(L, 1);
    st = lua_newuserdatauv(L, sizeof *st, 0); /* before the file: this allocation may fail */
    memset(st, 0, sizeof *st);
    st->lim = limits_of(L);
    if (luaL_newmetatable(L, STREAM_MT)) {
        lua_pushcfunction(L, stream_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    sti = lua_gettop(L);
    st->fd = fs_open_granted(L, "csv.rows", 1, &size);
    fh = lua_gettop(L);
    /* pass 1: every record checked, none kept */
    rewind_stream(L, st, path);
    if (o.header) {
        read_header(L, st, &o, path);
        hdr = lua_gettop(L);
        while (next_record(L, st, &o, path, &line)) {
            lua_Integer k = (lua_Integer)lua_rawlen(L, -1), ncols = (lua_Integer)lua_rawlen(L, hdr);
            if (k != ncols) {
                struct parser p = {NULL, 0, 0, 0, o.sep, path};
                csv_fail(L, &p, line, "%lld field%s, header has %lld", (long long)k,
                         k == 1 ? "" : "s", (long long)ncols);
            }
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    } else {
        while (next_record(L, st, &o, path, &line))
            lua_pop(L, 1);
    }
    /* pass 2, lazily: the iterator */
    rewind_stream(L, st, path);
    lua_pushvalue(L, sti);
    if (o.header)
        read_header(L, st, &o, path);
    else
        lua_pushboolean(L, 0);
    lua_pushvalue(L, 1);
    lua_pushlstring(L, &o.sep, 1);
    lua_pushvalue(L, fh);
    lua_pushcclosure(L, rows_iter, 5);
    lua_pushnil(L);
    lua_pushnil(L);
    lua_pushvalue(L, fh); /* the closing value of a generic for */
    return 4;
}

/* ---- encode ------------------------------------------------------------------------------- */

static int needs_quotes(const char *s, size_t len, char sep)
{
    if (len > 0 && (is_blank(s[0]) || is_blank(s[len - 1])))
        return 1;
    if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
        return 1; /* at the start of the text a reader would skip it as a BOM */
    for (size_t i = 0; i < len; i++)
        if (s[i] == sep || s[i] == '"' || is_eol(s[i]))
            return 1;
    return 0;
}

static void add_quoted(luaL_Buffer *b, const char *s, size_t len)
{
    luaL_addchar(b, '"');
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '"')
            luaL_addchar(b, '"');
        luaL_addchar(b, s[i]);
    }
    luaL_addchar(b, '"');
}

#define ENC_ROW 4 /* stack slots of csv.encode: the current row and value */
#define ENC_VAL 5

/* Adds the value in slot ENC_VAL as one field. row 0 is the header line. An empty field that
 * is alone in its record is written as "": an empty line would be skipped when read back. */
static void add_field(lua_State *L, luaL_Buffer *b, const struct opts *o, lua_Integer row,
                      lua_Integer col, int lone)
{
    size_t len;
    const char *s;
    switch (lua_type(L, ENC_VAL)) {
    case LUA_TNIL:
        if (lone)
            luaL_addstring(b, "\"\"");
        return;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, ENC_VAL) == NULL) { /* json.null */
            if (lone)
                luaL_addstring(b, "\"\"");
            return;
        }
        break;
    case LUA_TBOOLEAN:
        luaL_addstring(b, lua_toboolean(L, ENC_VAL) ? "true" : "false");
        return;
    case LUA_TNUMBER:
    case LUA_TSTRING:
        s = lua_tolstring(L, ENC_VAL, &len); /* converts a number in its slot */
        if (needs_quotes(s, len, o->sep) || (len == 0 && lone))
            add_quoted(b, s, len);
        else
            luaL_addlstring(b, s, len);
        return;
    default:
        break;
    }
    if (row == 0)
        err_raise(L, "csv", "csv.encode: header column %s: cannot encode a %s", num(L, col),
                  luaL_typename(L, ENC_VAL));
    err_raise(L, "csv", "csv.encode: row %s, column %s: cannot encode a %s", num(L, row),
              num(L, col), luaL_typename(L, ENC_VAL));
}

/* csv.encode(rows [, header [, opts]]) -> text. With header (a list of names) the first line
 * names the columns and each row is a table read by name; without, rows are arrays. */
static int csv_encode(lua_State *L)
{
    struct opts o;
    lua_Integer nrows, ncols = 0;
    int has_header;
    luaL_Buffer b;
    err_checktype(L, 1, LUA_TTABLE);
    has_header = !lua_isnoneornil(L, 2);
    if (has_header)
        err_checktype(L, 2, LUA_TTABLE);
    read_opts(L, 3, &o);
    lua_settop(L, ENC_VAL);
    nrows = luaL_len(L, 1);
    if (has_header)
        ncols = luaL_len(L, 2);
    for (lua_Integer c = 1; c <= ncols; c++)
        if (lua_geti(L, 2, c), lua_type(L, -1) != LUA_TSTRING)
            return err_raise(L, "csv", "csv.encode: header column %s is not a string", num(L, c));
        else
            lua_pop(L, 1);
    luaL_buffinit(L, &b);
    for (lua_Integer c = 1; c <= ncols; c++) {
        lua_geti(L, 2, c);
        lua_replace(L, ENC_VAL);
        if (c > 1)
            luaL_addchar(&b, o.sep);
        add_field(L, &b, &o, 0, c, ncols == 1);
    }
    if (has_header)
        luaL_addstring(&b, o.eol);
    for (lua_Integer r = 1; r <= nrows; r++) {
        lua_Integer n = ncols;
        lua_geti(L, 1, r);
        lua_replace(L, ENC_ROW);
        if (!lua_istable(L, ENC_ROW))
            return err_raise(L, "csv", "csv.encode: row %s is a %s, not a table", num(L, r),
                             luaL_typename(L, ENC_ROW));
        if (!has_header)
            n = luaL_len(L, ENC_ROW);
        for (lua_Integer c = 1; c <= n; c++) {
            if (has_header) {
                lua_geti(L, 2, c);
                lua_gettable(L, ENC_ROW);
            } else {
                lua_geti(L, ENC_ROW, c);
            }
            lua_replace(L, ENC_VAL);
            if (c > 1)
                luaL_addchar(&b, o.sep);
            add_field(L, &b, &o, r, c, n == 1);
        }
        luaL_addstring(&b, o.eol);
    }
    luaL_pushresult(&b);
    return 1;
}

/* ---- module ------------------------------------------------------------------------------ */

static const luaL_Reg csv_funcs[] = {
    {"parse", csv_parse},
    {"rows", csv_rows},
    {"encode", csv_encode},
    {NULL, NULL},
};

int csv_open(lua_State *L)
{
    luaL_newlib(L, csv_funcs);
    return 1;
}
