/* JSON text -> Lua values (see json.c for the design and the measurements). */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include "json.h"
#include "json_codec.h"

/* ---------------------------------------------------------------------------------------- */
/* Decoder: one recursive-descent pass straight into Lua values                             */
/* ---------------------------------------------------------------------------------------- */

typedef struct {
    lua_State *L;
    const char *start, *p, *end;
    int depth;
    int mt_array, mt_object;    /* stack slots holding the two metatables */
    char *err;
    size_t errlen;
} Decoder;

static int dec_value(Decoder *d);

/* Formats "<message> at line L, column C". Lines and columns start at 1; columns count
 * characters (UTF-8 continuation bytes do not advance them). Computed only on error, so the
 * hot loops never track positions. */
json_printf(3, 4)
static int dec_fail(Decoder *d, const char *pos, const char *fmt, ...)
{
    unsigned long line = 1, col = 1;
    const char *q;
    va_list ap;
    int n;
    if (d->err == NULL || d->errlen == 0)
        return -1;
    for (q = d->start; q < pos && q < d->end; q++) {
        if (*q == '\n') {
            line++;
            col = 1;
        } else if (((unsigned char)*q & 0xC0) != 0x80) {
            col++;
        }
    }
    va_start(ap, fmt);
    n = vsnprintf(d->err, d->errlen, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < d->errlen)
        snprintf(d->err + n, d->errlen - (size_t)n, " at line %lu, column %lu", line, col);
    return -1;
}

static int dec_unexpected(Decoder *d, const char *pos)
{
    unsigned char c;
    if (pos >= d->end)
        return dec_fail(d, pos, "unexpected end of input");
    c = (unsigned char)*pos;
    if (c > 0x20 && c < 0x7F)
        return dec_fail(d, pos, "unexpected '%c'", c);
    return dec_fail(d, pos, "unexpected byte 0x%02x", c);
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (unsigned char)*p <= ' '
           && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    return p;
}

static int hex4(const unsigned char *p, const unsigned char *end, unsigned *out)
{
    unsigned v = 0;
    int i;
    if (end - p < 4)
        return -1;
    for (i = 0; i < 4; i++) {
        unsigned c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else return -1;
    }
    *out = v;
    return 0;
}

static size_t utf8_encode(char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes the escape at p (p[0] == '\\') into b; returns the bytes consumed or 0 on error
 * (already reported). */
static size_t dec_escape(Decoder *d, luaL_Buffer *b, const unsigned char *p,
                         const unsigned char *end)
{
    char u8[4];
    unsigned cp, lo;
    if (end - p < 2) {
        dec_unexpected(d, d->end);
        return 0;
    }
    switch (p[1]) {
    case '"': luaL_addchar(b, '"'); return 2;
    case '\\': luaL_addchar(b, '\\'); return 2;
    case '/': luaL_addchar(b, '/'); return 2;
    case 'b': luaL_addchar(b, '\b'); return 2;
    case 'f': luaL_addchar(b, '\f'); return 2;
    case 'n': luaL_addchar(b, '\n'); return 2;
    case 'r': luaL_addchar(b, '\r'); return 2;
    case 't': luaL_addchar(b, '\t'); return 2;
    case 'u':
        break;
    default:
        if (p[1] > 0x20 && p[1] < 0x7F)
            dec_fail(d, (const char *)p, "invalid escape '\\%c'", p[1]);
        else
            dec_fail(d, (const char *)p, "invalid escape (byte 0x%02x)", p[1]);
        return 0;
    }
    if (hex4(p + 2, end, &cp) != 0) {
        dec_fail(d, (const char *)p, "invalid \\u escape");
        return 0;
    }
    if (cp >= 0xDC00 && cp <= 0xDFFF) {
        dec_fail(d, (const char *)p, "lone surrogate \\u%04X", cp);
        return 0;
    }
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        /* a high surrogate is only valid followed by an escaped low one */
        if (end - p < 12 || p[6] != '\\' || p[7] != 'u' || hex4(p + 8, end, &lo) != 0
            || lo < 0xDC00 || lo > 0xDFFF) {
            dec_fail(d, (const char *)p, "lone surrogate \\u%04X", cp);
            return 0;
        }
        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        luaL_addlstring(b, u8, utf8_encode(u8, cp));
        return 12;
    }
    luaL_addlstring(b, u8, utf8_encode(u8, cp));
    return 6;
}

/* The slow path of dec_string, for strings with escapes: they are rebuilt in a luaL_Buffer
 * (on the C stack up to LUAL_BUFFERSIZE, then in a Lua-managed box, so an error or a memory
 * error leaks nothing). Kept out of line so its buffer is not part of the recursive frames. */
static json_noinline int dec_string_escaped(Decoder *d, const char *open,
                                            const unsigned char *p)
{
    const unsigned char *end = (const unsigned char *)d->end;
    const unsigned char *run = (const unsigned char *)d->p;
    luaL_Buffer b;
    size_t n;
    luaL_buffinit(d->L, &b);
    for (;;) {
        while (p < end && str_class[*p] == C_PLAIN)
            p++;
        if (p >= end)
            return dec_fail(d, open, "unterminated string");
        switch (str_class[*p]) {
        case C_QUOTE:
            luaL_addlstring(&b, (const char *)run, (size_t)(p - run));
            luaL_pushresult(&b);
            d->p = (const char *)p + 1;
            return 0;
        case C_BSLASH:
            luaL_addlstring(&b, (const char *)run, (size_t)(p - run));
            if ((n = dec_escape(d, &b, p, end)) == 0)
                return -1;
            p += n;
            run = p;
            break;
        case C_HIGH:
            if ((n = utf8_len(p, end)) == 0)
                return dec_fail(d, (const char *)p, "invalid UTF-8 in string");
            p += n;
            break;
        default:
            return dec_fail(d, (const char *)p, "control character 0x%02x in string", *p);
        }
    }
}

/* d->p is just past the opening quote. Strings without escapes (nearly all of them) are
 * pushed straight from the input. */
static int dec_string(Decoder *d, const char *open)
{
    const unsigned char *p = (const unsigned char *)d->p;
    const unsigned char *end = (const unsigned char *)d->end;
    size_t n;
    for (;;) {
        while (p < end && str_class[*p] == C_PLAIN)
            p++;
        if (json_unlikely(p >= end))
            return dec_fail(d, open, "unterminated string");
        switch (str_class[*p]) {
        case C_QUOTE:
            lua_pushlstring(d->L, d->p, (size_t)((const char *)p - d->p));
            d->p = (const char *)p + 1;
            return 0;
        case C_BSLASH:
            return dec_string_escaped(d, open, p);
        case C_HIGH:
            if ((n = utf8_len(p, end)) == 0)
                return dec_fail(d, (const char *)p, "invalid UTF-8 in string");
            p += n;
            break;
        default:
            return dec_fail(d, (const char *)p, "control character 0x%02x in string", *p);
        }
    }
}

/* Numbers that are not plain integers fitting int64 go through Lua's own conversion (strtod
 * with Lua's handling of the locale's decimal point). */
static json_noinline int dec_float(Decoder *d, const char *s, size_t n)
{
    lua_State *L = d->L;
    char buf[64];
    double v;
    if (n < sizeof buf) {
        memcpy(buf, s, n);
        buf[n] = '\0';
        if (lua_stringtonumber(L, buf) == 0)
            return dec_fail(d, s, "invalid number");
    } else {
        lua_pushlstring(L, s, n);       /* rare: more than 63 characters */
        if (lua_stringtonumber(L, lua_tostring(L, -1)) == 0)
            return dec_fail(d, s, "invalid number");
        lua_remove(L, -2);
    }
    v = lua_tonumber(L, -1);
    if (isinf(v))
        return dec_fail(d, s, "number out of range");
    return 0;
}

static int is_digit(const char *p, const char *end) { return p < end && *p >= '0' && *p <= '9'; }

static int dec_number(Decoder *d)
{
    const char *s = d->p, *p = d->p, *end = d->end;
    uint64_t u = 0;
    int neg = 0, isfloat = 0, nd = 0;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    if (!is_digit(p, end))
        return dec_fail(d, s, "invalid number");
    if (*p == '0') {
        p++;
        nd = 1;
        if (is_digit(p, end))
            return dec_fail(d, s, "invalid number (leading zero)");
    } else {
        /* wraps silently past 20 digits; only trusted for nd <= 19 (< 10^19 < 2^64) */
        for (; is_digit(p, end); p++, nd++)
            u = u * 10 + (uint64_t)(*p - '0');
    }
    if (p < end && *p == '.') {
        p++;
        if (!is_digit(p, end))
            return dec_fail(d, s, "invalid number");
        while (is_digit(p, end))
            p++;
        isfloat = 1;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (!is_digit(p, end))
            return dec_fail(d, s, "invalid number");
        while (is_digit(p, end))
            p++;
        isfloat = 1;
    }
    d->p = p;
    if (!isfloat && nd <= 19) {
        if (!neg && u <= (uint64_t)LUA_MAXINTEGER) {
            lua_pushinteger(d->L, (lua_Integer)u);
            return 0;
        }
        if (neg && u <= (uint64_t)LUA_MAXINTEGER + 1) {
            lua_pushinteger(d->L, u == (uint64_t)LUA_MAXINTEGER + 1 ? LUA_MININTEGER
                                                                  : -(lua_Integer)u);
            return 0;
        }
    }
    return dec_float(d, s, (size_t)(p - s));
}

static int dec_literal(Decoder *d, const char *p, const char *word, size_t n)
{
    if ((size_t)(d->end - p) < n || memcmp(p, word, n) != 0)
        return dec_fail(d, p, "invalid literal");
    d->p = p + n;
    return 0;
}

/* Pushes a new empty table carrying the metatable in stack slot mt. */
static void push_empty(Decoder *d, int mt)
{
    lua_createtable(d->L, 0, 0);
    lua_pushvalue(d->L, mt);
    lua_setmetatable(d->L, -2);
}

/* The common start of '[' and '{' (d->p just past it): the depth limit, the empty container
 * (pushed with its metatable: returns 1), room on the stack. Returns 0 to go on with *pp at
 * the first token, -1 on error. */
static int open_container(Decoder *d, const char *open, char close, int mt, const char **pp)
{
    const char *p;
    if (d->depth >= JSON_MAXDEPTH)
        return dec_fail(d, open, "nesting deeper than %d levels", JSON_MAXDEPTH);
    p = skip_ws(d->p, d->end);
    if (p < d->end && *p == close) {
        d->p = p + 1;
        push_empty(d, mt);
        return 1;
    }
    if (!lua_checkstack(d->L, DEC_CHUNK + 2))
        return dec_fail(d, open, "Lua stack overflow");
    d->depth++;
    *pp = p;
    return 0;
}

/* Moves the `pending` values above the table at slot tbl into t[stored+1..]. */
static void array_spill(lua_State *L, int tbl, int pending, lua_Integer stored)
{
    int i;
    for (i = 1; i <= pending; i++) {
        lua_pushvalue(L, tbl + i);
        lua_rawseti(L, tbl, stored + i);
    }
    lua_settop(L, tbl);
}

/* d->p is just past '['. */
static int dec_array(Decoder *d, const char *open)
{
    lua_State *L = d->L;
    const char *p;
    int base = lua_gettop(L), pending = 0, tbl = 0;
    lua_Integer stored = 0;
    int r = open_container(d, open, ']', d->mt_array, &p);
    if (r != 0)
        return r < 0 ? -1 : 0;
    for (;;) {
        if (dec_value(d) != 0)
            return -1;
        pending++;
        p = skip_ws(d->p, d->end);
        if (p < d->end && *p == ',') {
            d->p = p + 1;
            if (pending == DEC_CHUNK) {
                if (tbl == 0) {
                    lua_createtable(L, DEC_CHUNK * 4, 0);
                    lua_insert(L, tbl = base + 1);
                }
                array_spill(L, tbl, pending, stored);
                stored += pending;
                pending = 0;
            }
            continue;
        }
        if (p < d->end && *p == ']')
            break;
        return dec_unexpected(d, p);
    }
    d->p = p + 1;
    d->depth--;
    if (tbl == 0) {
        /* common case: the whole array is on the stack; fill the exact-size table from the
         * top down, each lua_rawseti popping its value */
        lua_createtable(L, pending, 0);
        lua_insert(L, tbl = base + 1);
        for (; pending > 0; pending--)
            lua_rawseti(L, tbl, pending);
    } else {
        array_spill(L, tbl, pending, stored);
    }
    return 0;
}

/* Moves the `pending` key/value pairs above the table at slot tbl into it, in document
 * order, so that of duplicate keys the last one wins (as in most decoders). */
static void object_spill(lua_State *L, int tbl, int pending)
{
    int i;
    for (i = 0; i < pending; i++) {
        lua_pushvalue(L, tbl + 1 + 2 * i);
        lua_pushvalue(L, tbl + 2 + 2 * i);
        lua_rawset(L, tbl);
    }
    lua_settop(L, tbl);
}

/* d->p is just past '{'. */
static int dec_object(Decoder *d, const char *open)
{
    lua_State *L = d->L;
    const char *p;
    int base = lua_gettop(L), pending = 0, tbl = 0;
    int r = open_container(d, open, '}', d->mt_object, &p);
    if (r != 0)
        return r < 0 ? -1 : 0;
    for (;;) {
        if (p >= d->end || *p != '"')
            return dec_unexpected(d, p);
        d->p = p + 1;
        if (dec_string(d, p) != 0)
            return -1;
        p = skip_ws(d->p, d->end);
        if (p >= d->end || *p != ':')
            return dec_unexpected(d, p);
        d->p = p + 1;
        if (dec_value(d) != 0)
            return -1;
        pending++;
        p = skip_ws(d->p, d->end);
        if (p < d->end && *p == ',') {
            p = skip_ws(p + 1, d->end);
            if (pending == DEC_CHUNK / 2) {
                if (tbl == 0) {
                    lua_createtable(L, 0, DEC_CHUNK);
                    lua_insert(L, tbl = base + 1);
                }
                object_spill(L, tbl, pending);
                pending = 0;
            }
            continue;
        }
        if (p < d->end && *p == '}')
            break;
        return dec_unexpected(d, p);
    }
    d->p = p + 1;
    d->depth--;
    if (tbl == 0) {
        lua_createtable(L, 0, pending);
        lua_insert(L, tbl = base + 1);
    }
    object_spill(L, tbl, pending);
    return 0;
}

static int dec_value(Decoder *d)
{
    const char *p = skip_ws(d->p, d->end);
    if (p >= d->end)
        return dec_unexpected(d, p);
    switch (*p) {
    case '"':
        d->p = p + 1;
        return dec_string(d, p);
    case '{':
        d->p = p + 1;
        return dec_object(d, p);
    case '[':
        d->p = p + 1;
        return dec_array(d, p);
    case 't':
        if (dec_literal(d, p, "true", 4) != 0) return -1;
        lua_pushboolean(d->L, 1);
        return 0;
    case 'f':
        if (dec_literal(d, p, "false", 5) != 0) return -1;
        lua_pushboolean(d->L, 0);
        return 0;
    case 'n':
        if (dec_literal(d, p, "null", 4) != 0) return -1;
        json_push_null(d->L);
        return 0;
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        d->p = p;
        return dec_number(d);
    default:
        return dec_unexpected(d, p);
    }
}

int json_decode(lua_State *L, const char *s, size_t len, char *err, size_t errlen)
{
    Decoder d;
    int top = lua_gettop(L);
    d.L = L;
    d.start = d.p = d.end = "";
    d.depth = 0;
    d.err = err;
    d.errlen = errlen;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (s == NULL)
        return dec_fail(&d, d.p, "no input");
    if (!lua_checkstack(L, 8))
        return dec_fail(&d, d.p, "Lua stack overflow");
    d.start = d.p = s;
    d.end = s + len;
    json_push_array_mt(L);
    json_push_object_mt(L);
    d.mt_array = top + 1;
    d.mt_object = top + 2;
    /* RFC 8259 lets a parser ignore a byte order mark; some Windows servers send one */
    if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
        d.p += 3;
    if (dec_value(&d) != 0) {
        lua_settop(L, top);
        return -1;
    }
    d.p = skip_ws(d.p, d.end);
    if (d.p < d.end) {
        if ((unsigned char)*d.p > 0x20 && (unsigned char)*d.p < 0x7F)
            dec_fail(&d, d.p, "unexpected '%c' after the value", *d.p);
        else
            dec_fail(&d, d.p, "unexpected byte 0x%02x after the value", (unsigned char)*d.p);
        lua_settop(L, top);
        return -1;
    }
    lua_replace(L, top + 1);            /* drop the metatables, keep the value */
    lua_settop(L, top + 1);
    return 0;
}
