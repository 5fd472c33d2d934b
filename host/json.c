/* The one JSON codec of ecaphost (see json.h for the contract).
 *
 * Decode: one recursive-descent pass straight from the text into Lua values. Integral
 * numbers (no '.', no exponent) that fit int64 become integers, the rest floats (an integer
 * past int64 too; a number past double's range is an error). null is json.null (light
 * userdata NULL, as cjson.null). [] and {} become new tables carrying the shared array /
 * object metatables so they re-encode as they came; non-empty containers carry none. Strings:
 * every escape incl. \uXXXX and surrogate pairs; lone surrogates, bad escapes, raw control
 * characters and invalid UTF-8 (overlong, surrogates, past U+10FFFF, truncated) are errors
 * naming line and column (columns count characters). Depth limit 200. Trailing garbage is an
 * error; a leading UTF-8 BOM is skipped; of duplicate keys the last wins.
 *
 * Encode: into one buffer from the state's allocator. Integers exactly; floats: NaN/inf are
 * errors, integral ones within 2^53 print as integers ("2", and -0.0 as "-0"), others the
 * shortest of %.15g/%.16g/%.17g that reads back equal (any locale). Strings must be valid
 * UTF-8 (the same policy as decode, so a decoded value always re-encodes); '"', '\\' and
 * control characters are escaped, '/' is not. Object keys are SORTED bytewise (deterministic
 * output: Lua 5.4 seeds string hashes per state, so pairs() order changes between runs); this
 * costs ~10% of encode time (below). Only raw access (lua_next, lua_rawget*): no metamethod of
 * an untrusted table ever runs. (Objects with more than 200,000 keys come out in pairs()
 * order: see JSON_SORT_MAX.) Errors name the path: "value.filters[2].value: cannot encode
 * NaN".
 *
 * Why our own codec, measured. bench/bench_json.c, a 10 MB array of 3,591 MeterResponse-like
 * objects, best of 9, Debian 12 (Lua 5.4.4, lua-cjson 2.1.0), gcc 12 -O2, shared 2-core VM
 * under load (figures move +-15% between runs; the ratios hold):
 *
 *   gcc -std=c11 -O2 -Ihost -I/usr/include/lua5.4 host/json.c bench/bench_json.c \
 *       -llua5.4-cjson -llua5.4 -lm -o /tmp/bench_json && /tmp/bench_json 10 9
 *
 *   case                                     GC off ms   ratio    GC on ms   ratio
 *   decode: cjson.decode (raw, all floats)        86.2   1.00x        90.2   1.00x
 *   decode: cjson.decode + Lua normalise         136.4   1.58x       148.4   1.65x
 *   decode: cjson.decode + C normalise           108.0   1.25x       109.4   1.21x
 *   decode: json_decode (ours)                    53.6   0.62x        55.6   0.62x
 *   encode: cjson.encode                          57.2   1.00x        58.3   1.00x
 *   encode: json.encode (ours, Lua string)        61.9   1.08x        72.8   1.25x
 *   encode: json_encode (ours, C buffer)          60.1   1.05x        67.8   1.16x
 *   (the same with -DJSON_SORT_KEYS=0: json_encode 0.82x-0.97x of cjson.encode;
 *   encode figures with the GC on are the noisiest)
 *
 * The target was decode (+normalise) <= 1.3x raw cjson.decode. cjson + a Lua normalising
 * walk misses it (1.58-1.65x); cjson + a C walk is at the limit (1.21-1.29x over several
 * runs); ours is 0.57-0.65x, faster than cjson alone: every container is gathered on the Lua
 * stack first and its table created at its final size (cjson grows each table by rehashing:
 * a 40-key object is rehashed 7 times), strings without escapes are pushed straight from the
 * input, and integers never go through strtod. Speed aside, no walk afterwards can make the
 * cjson route right: cjson 2.1.0 decodes [] and {} to the same plain empty table (and
 * encodes that as {}), a walk cannot tell 1.0 from 1 (both arrive as 1.0), and cjson.encode
 * prints at most 14 significant digits (integers past 10^14 and most floats do not survive a
 * round trip).
 *
 * Design: no per-value malloc. The decoder keeps everything on the Lua stack (an error just
 * restores the stack top; a memory error raised by Lua leaks nothing) and rebuilds escaped
 * strings in a luaL_Buffer. The encoder never calls a Lua API function that can raise once
 * it holds its buffer, so the buffer cannot leak through a longjmp.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>

#include "json.h"

/* Deeper documents are refused (decode) or not produced (encode): this keeps the recursion
 * far from the end of the C stack, even on a small thread stack. */
#define JSON_MAXDEPTH 200

/* Registry keys of the shared metatables (also their __name); scripts calling getmetatable()
 * get "json.array" / "json.object" instead (__metatable). */
#define ARRAY_MT "ecap.json.array"
#define OBJECT_MT "ecap.json.object"
#define BOX_MT "ecap.json.buffer"

/* Values of one array (pairs of one object: half as many) gathered on the Lua stack before
 * they are moved into their table. Gathering first lets the table be created at its final
 * size (no rehash) for every container that fits; bigger ones spill in chunks, which bounds
 * the stack used per nesting level. */
#define DEC_CHUNK 256

/* 1: object keys come out sorted (bytewise), so the output is deterministic: Lua 5.4 seeds its
 * string hash per state, so pairs() order differs from run to run. 0: pairs() order. */
#ifndef JSON_SORT_KEYS
#define JSON_SORT_KEYS 1
#endif

/* Sorting keeps each key/value pair on the Lua stack (2 slots) until the object is written.
 * Past this many pending pairs (all nesting levels together) objects come out in pairs()
 * order instead, well before the stack's hard limit (LUAI_MAXSTACK, 1,000,000 slots), where
 * a failed lua_checkstack would leave the state unable to grow its stack at all. */
#define JSON_SORT_MAX 200000

#if defined(__GNUC__)
#define json_noinline __attribute__((noinline))
#define json_likely(x) __builtin_expect(!!(x), 1)
#define json_unlikely(x) __builtin_expect(!!(x), 0)
#define json_printf(f, a) __attribute__((format(printf, f, a)))
#else
#define json_noinline
#define json_likely(x) (x)
#define json_unlikely(x) (x)
#define json_printf(f, a)
#endif


/* ---------------------------------------------------------------------------------------- */
/* Shared pieces                                                                            */
/* ---------------------------------------------------------------------------------------- */

void json_push_null(lua_State *L) { lua_pushlightuserdata(L, NULL); }

int json_is_null(lua_State *L, int idx)
{
    return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL;
}

/* Pushes the metatable registered under `name`, creating it on first use. __metatable makes
 * it read-only for scripts: getmetatable() returns the string, setmetatable() fails. */
static void push_mt(lua_State *L, const char *name, const char *shown)
{
    if (luaL_newmetatable(L, name)) {
        lua_pushstring(L, shown);
        lua_setfield(L, -2, "__metatable");
    }
}

static void push_array_mt(lua_State *L) { push_mt(L, ARRAY_MT, "json.array"); }
static void push_object_mt(lua_State *L) { push_mt(L, OBJECT_MT, "json.object"); }

void json_mark_array(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    push_array_mt(L);
    lua_setmetatable(L, idx);
}

void json_mark_object(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    push_object_mt(L);
    lua_setmetatable(L, idx);
}

/* Byte classes inside strings, shared by the decoder (what needs a closer look) and the
 * encoder (what needs escaping). 0 is the common case: copy as is. */
enum { C_PLAIN = 0, C_QUOTE, C_BSLASH, C_CTRL, C_HIGH };

#define R3 C_CTRL, C_CTRL, C_CTRL
#define R4 C_CTRL, C_CTRL, C_CTRL, C_CTRL
#define C16 R4, R4, R4, R4
#define H16 C_HIGH, C_HIGH, C_HIGH, C_HIGH, C_HIGH, C_HIGH, C_HIGH, C_HIGH, \
            C_HIGH, C_HIGH, C_HIGH, C_HIGH, C_HIGH, C_HIGH, C_HIGH, C_HIGH
#define P16 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
static const unsigned char str_class[256] = {
    C16, C16,                                               /* 0x00-0x1f */
    0, 0, C_QUOTE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* 0x20-0x2f */
    P16,                                                    /* 0x30-0x3f */
    P16,                                                    /* 0x40-0x4f */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, C_BSLASH, 0, 0, 0,  /* 0x50-0x5f */
    P16, P16,                                               /* 0x60-0x7f */
    H16, H16, H16, H16, H16, H16, H16, H16                  /* 0x80-0xff */
};
#undef R3
#undef R4
#undef C16
#undef H16
#undef P16

/* Length of the well-formed UTF-8 sequence at p (lead byte >= 0x80), 0 if it is not one:
 * overlong forms, surrogates (U+D800..DFFF) and code points past U+10FFFF are refused, as
 * RFC 3629 requires. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0];
    size_t avail = (size_t)(end - p);
    unsigned lo = 0x80, hi = 0xBF;
    if (c < 0xC2)
        return 0;                       /* continuation byte or overlong 2-byte lead */
    if (c < 0xE0)
        return (avail >= 2 && (p[1] & 0xC0) == 0x80) ? 2 : 0;
    if (c < 0xF0) {
        if (c == 0xE0) lo = 0xA0;       /* overlong */
        else if (c == 0xED) hi = 0x9F;  /* surrogates */
        if (avail < 3 || p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80)
            return 0;
        return 3;
    }
    if (c < 0xF5) {
        if (c == 0xF0) lo = 0x90;       /* overlong */
        else if (c == 0xF4) hi = 0x8F;  /* past U+10FFFF */
        if (avail < 4 || p[1] < lo || p[1] > hi || (p[2] & 0xC0) != 0x80
            || (p[3] & 0xC0) != 0x80)
            return 0;
        return 4;
    }
    return 0;
}


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
    if (d->depth >= JSON_MAXDEPTH)
        return dec_fail(d, open, "nesting deeper than %d levels", JSON_MAXDEPTH);
    p = skip_ws(d->p, d->end);
    if (p < d->end && *p == ']') {
        d->p = p + 1;
        push_empty(d, d->mt_array);
        return 0;
    }
    if (!lua_checkstack(L, DEC_CHUNK + 2))
        return dec_fail(d, open, "Lua stack overflow");
    d->depth++;
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
    if (d->depth >= JSON_MAXDEPTH)
        return dec_fail(d, open, "nesting deeper than %d levels", JSON_MAXDEPTH);
    p = skip_ws(d->p, d->end);
    if (p < d->end && *p == '}') {
        d->p = p + 1;
        push_empty(d, d->mt_object);
        return 0;
    }
    if (!lua_checkstack(L, DEC_CHUNK + 2))
        return dec_fail(d, open, "Lua stack overflow");
    d->depth++;
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
    push_array_mt(L);
    push_object_mt(L);
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


/* ---------------------------------------------------------------------------------------- */
/* Encoder: straight into one buffer from the state's allocator                             */
/* ---------------------------------------------------------------------------------------- */

/* One step of the path to the value being encoded: a key (key != NULL) or a 1-based index.
 * Key pointers stay valid because every key is on the Lua stack while its value is
 * encoded. */
typedef struct {
    const char *key;
    size_t keylen;
    lua_Integer index;
} PathStep;

/* An object member waiting to be written in key order; its value sits in stack slot vidx. */
typedef struct {
    const char *key;
    size_t keylen;
    int vidx;
} Member;

typedef struct {
    lua_State *L;
    lua_Alloc alloc;
    void *ud;
    char *buf;
    size_t len, cap;
    int mt_array, mt_object;            /* stack slots holding the two metatables */
    int depth;                          /* tables being encoded, outermost first */
    const void *open[JSON_MAXDEPTH];    /* ... and their identities, to detect cycles */
    PathStep path[JSON_MAXDEPTH + 1];
    int npath;
    Member *members;                    /* one scratch array shared by all nesting levels */
    size_t nmembers, capmembers;
    char *err;
    size_t errlen;
} Encoder;

static int enc_value(Encoder *e, int idx);

static int is_ident(const char *s, size_t n)
{
    size_t i;
    if (n == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
        return 0;
    for (i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '_'))
            return 0;
    }
    return 1;
}

/* Appends to err (bounded, always terminated); returns the new length. */
static size_t err_append(Encoder *e, size_t at, const char *s, size_t n)
{
    if (at + 1 >= e->errlen)
        return at;
    if (n > e->errlen - 1 - at)
        n = e->errlen - 1 - at;
    memcpy(e->err + at, s, n);
    e->err[at + n] = '\0';
    return at + n;
}

/* Writes "<path>: <message>" into err, the path in Lua syntax from the root "value":
 * value.filters[2]["odd key"]. */
json_printf(2, 3)
static int enc_fail(Encoder *e, const char *fmt, ...)
{
    char tmp[64];
    size_t at = 0;
    int i;
    va_list ap;
    if (e->err == NULL || e->errlen == 0)
        return -1;
    at = err_append(e, at, "value", 5);
    for (i = 0; i < e->npath; i++) {
        const PathStep *s = &e->path[i];
        if (s->key == NULL) {
            snprintf(tmp, sizeof tmp, "[%lld]", (long long)s->index);
            at = err_append(e, at, tmp, strlen(tmp));
        } else if (is_ident(s->key, s->keylen)) {
            at = err_append(e, at, ".", 1);
            at = err_append(e, at, s->key, s->keylen);
        } else {
            size_t j;
            at = err_append(e, at, "[\"", 2);
            for (j = 0; j < s->keylen && j < 40; j++) {
                unsigned char c = (unsigned char)s->key[j];
                char shown = (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') ? (char)c : '?';
                at = err_append(e, at, &shown, 1);
            }
            at = err_append(e, at, j < s->keylen ? "...\"]" : "\"]", j < s->keylen ? 5 : 2);
        }
    }
    at = err_append(e, at, ": ", 2);
    if (at + 1 < e->errlen) {
        va_start(ap, fmt);
        vsnprintf(e->err + at, e->errlen - at, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Makes room for n more bytes, doubling the buffer. */
static json_noinline int buf_grow(Encoder *e, size_t n)
{
    size_t ncap = e->cap ? e->cap : 256;
    char *nbuf;
    while (ncap - e->len < n) {
        if (ncap > SIZE_MAX / 2)
            return enc_fail(e, "out of memory");
        ncap *= 2;
    }
    nbuf = (char *)e->alloc(e->ud, e->buf, e->buf ? e->cap : 0, ncap);
    if (nbuf == NULL)
        return enc_fail(e, "out of memory");
    e->buf = nbuf;
    e->cap = ncap;
    return 0;
}

#define buf_reserve(e, n) ((e)->cap - (e)->len >= (n) ? 0 : buf_grow((e), (n)))

static int buf_add(Encoder *e, const char *s, size_t n)
{
    if (buf_reserve(e, n) != 0)
        return -1;
    memcpy(e->buf + e->len, s, n);
    e->len += n;
    return 0;
}

static int buf_addchar(Encoder *e, char c)
{
    if (buf_reserve(e, 1) != 0)
        return -1;
    e->buf[e->len++] = c;
    return 0;
}

static int enc_integer(Encoder *e, lua_Integer v)
{
    char tmp[24], *p = tmp + sizeof tmp;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;   /* exact even for LUA_MININTEGER */
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    return buf_add(e, p, (size_t)(tmp + sizeof tmp - p));
}

/* Floats: integral values up to 2^53 (where every integer is exact) print as integers, the
 * rest with the fewest of 15, 16, 17 significant digits that read back to the same double. */
static int enc_float(Encoder *e, double v)
{
    char tmp[40], out[40];
    size_t i, n = 0;
    int dot = 0;
    if (isnan(v))
        return enc_fail(e, "cannot encode NaN");
    if (isinf(v))
        return enc_fail(e, v > 0 ? "cannot encode inf" : "cannot encode -inf");
    if (v == floor(v) && fabs(v) <= 9007199254740992.0) {
        if (v == 0 && signbit(v))
            return buf_add(e, "-0", 2);
        return enc_integer(e, (lua_Integer)v);
    }
    snprintf(tmp, sizeof tmp, "%.15g", v);
    if (strtod(tmp, NULL) != v) {
        snprintf(tmp, sizeof tmp, "%.16g", v);
        if (strtod(tmp, NULL) != v)
            snprintf(tmp, sizeof tmp, "%.17g", v);
    }
    /* the locale may have put another decimal separator (even a multibyte one) in place of
     * '.': keep only what JSON allows */
    for (i = 0; tmp[i] != '\0'; i++) {
        char c = tmp[i];
        if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == 'e') {
            out[n++] = c;
        } else if (!dot) {
            out[n++] = '.';
            dot = 1;
        }
    }
    return buf_add(e, out, n);
}

/* A string (or key) as a JSON string: '"', '\\' and control characters escaped, '/' and
 * everything else copied; invalid UTF-8 is refused rather than passed on to the server. */
static int enc_string(Encoder *e, const char *str, size_t len, int iskey)
{
    static const char hexd[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)str, *end = p + len, *run = p;
    size_t n;
    if (buf_reserve(e, len + 2) != 0)
        return -1;
    e->buf[e->len++] = '"';
    while (p < end) {
        unsigned char c = *p;
        char esc[6];
        size_t elen = 2;
        switch (str_class[c]) {
        case C_PLAIN:
            p++;
            continue;
        case C_HIGH:
            if ((n = utf8_len(p, end)) == 0)
                return enc_fail(e, iskey ? "invalid UTF-8 in key" : "invalid UTF-8 in string");
            p += n;
            continue;
        case C_QUOTE:
        case C_BSLASH:
            esc[0] = '\\';
            esc[1] = (char)c;
            break;
        default:
            esc[0] = '\\';
            switch (c) {
            case '\b': esc[1] = 'b'; break;
            case '\f': esc[1] = 'f'; break;
            case '\n': esc[1] = 'n'; break;
            case '\r': esc[1] = 'r'; break;
            case '\t': esc[1] = 't'; break;
            default:
                memcpy(esc + 1, "u00", 3);
                esc[4] = hexd[c >> 4];
                esc[5] = hexd[c & 15];
                elen = 6;
            }
        }
        if (buf_add(e, (const char *)run, (size_t)(p - run)) != 0
            || buf_add(e, esc, elen) != 0)
            return -1;
        run = ++p;
    }
    if (buf_add(e, (const char *)run, (size_t)(end - run)) != 0)
        return -1;
    return buf_addchar(e, '"');
}

/* Names the key at idx that does not fit the table's kind. */
static int key_error(Encoder *e, int idx, int marked_object)
{
    lua_State *L = e->L;
    int t = lua_type(L, idx);
    const char *what = t == LUA_TNUMBER && !lua_isinteger(L, idx) ? "non-integer number"
                                                                    : lua_typename(L, t);
    if (marked_object)
        return enc_fail(e, "cannot encode object with %s key", what);
    if (t == LUA_TSTRING || lua_isinteger(L, idx))
        return enc_fail(e, "cannot encode table with mixed keys");
    return enc_fail(e, "cannot encode table with %s key", what);
}

static int enc_array(Encoder *e, int idx, lua_Integer n)
{
    lua_State *L = e->L;
    lua_Integer i;
    int step = e->npath++;
    if (buf_addchar(e, '[') != 0)
        return -1;
    for (i = 1; i <= n; i++) {
        if (i > 1 && buf_addchar(e, ',') != 0)
            return -1;
        e->path[step].key = NULL;
        e->path[step].index = i;
        lua_rawgeti(L, idx, i);
        if (enc_value(e, lua_gettop(L)) != 0)
            return -1;
        lua_pop(L, 1);
    }
    e->npath--;
    return buf_addchar(e, ']');
}

static int enc_member(Encoder *e, const char *key, size_t keylen, int vidx, int first)
{
    int step = e->npath;
    if ((!first && buf_addchar(e, ',') != 0) || enc_string(e, key, keylen, 1) != 0
        || buf_addchar(e, ':') != 0)
        return -1;
    e->path[step].key = key;
    e->path[step].keylen = keylen;
    e->npath++;
    if (enc_value(e, vidx) != 0)
        return -1;
    e->npath--;
    return 0;
}

/* Object in pairs() order: the fallback for objects too big to sort on the Lua stack (see
 * JSON_SORT_MAX), and the only way with JSON_SORT_KEYS 0. */
static int enc_object_unsorted(Encoder *e, int idx, int marked)
{
    lua_State *L = e->L;
    int first = 1;
    size_t keylen;
    const char *key;
    if (buf_addchar(e, '{') != 0)
        return -1;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            return key_error(e, -2, marked);
        key = lua_tolstring(L, -2, &keylen);
        if (enc_member(e, key, keylen, lua_gettop(L), first) != 0)
            return -1;
        first = 0;
        lua_pop(L, 1);
    }
    return buf_addchar(e, '}');
}

static int member_cmp(const void *a, const void *b)
{
    const Member *x = (const Member *)a, *y = (const Member *)b;
    size_t n = x->keylen < y->keylen ? x->keylen : y->keylen;
    int c = memcmp(x->key, y->key, n);
    if (c != 0)
        return c;
    return x->keylen < y->keylen ? -1 : x->keylen > y->keylen;
}

static int members_grow(Encoder *e)
{
    size_t ncap = e->capmembers ? e->capmembers * 2 : 64;
    Member *m;
    if (ncap > SIZE_MAX / sizeof(Member))
        return enc_fail(e, "out of memory");
    m = (Member *)e->alloc(e->ud, e->members, e->capmembers * sizeof(Member),
                           ncap * sizeof(Member));
    if (m == NULL)
        return enc_fail(e, "out of memory");
    e->members = m;
    e->capmembers = ncap;
    return 0;
}

/* Object with sorted keys: every key/value pair is left on the Lua stack by lua_next (the
 * key is copied back for the next step), a Member per pair records where, and the Members
 * are sorted. The caller restores the stack top. */
static int enc_object(Encoder *e, int idx, int marked)
{
    lua_State *L = e->L;
    size_t first = e->nmembers, i, n;
    int top = lua_gettop(L);
    if (!JSON_SORT_KEYS)
        return enc_object_unsorted(e, idx, marked);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        Member *m;
        if (lua_type(L, -2) != LUA_TSTRING)
            return key_error(e, -2, marked);
        if (e->nmembers >= JSON_SORT_MAX || !lua_checkstack(L, 3)) {
            lua_settop(L, top);
            e->nmembers = first;
            return enc_object_unsorted(e, idx, marked);
        }
        if (e->nmembers == e->capmembers && members_grow(e) != 0)
            return -1;
        m = &e->members[e->nmembers++];
        m->key = lua_tolstring(L, -2, &m->keylen);
        m->vidx = lua_gettop(L);
        lua_pushvalue(L, -2);
    }
    n = e->nmembers - first;
    if (n > 1)
        qsort(e->members + first, n, sizeof(Member), member_cmp);
    if (buf_addchar(e, '{') != 0)
        return -1;
    for (i = 0; i < n; i++) {
        Member m = e->members[first + i];   /* a copy: nested objects may move the array */
        if (enc_member(e, m.key, m.keylen, m.vidx, i == 0) != 0)
            return -1;
    }
    e->nmembers = first;
    return buf_addchar(e, '}');
}

/* A table without our metatables: no entries -> [], keys 1..n -> array, string keys ->
 * object; anything else is refused. */
static int enc_plain(Encoder *e, int idx)
{
    lua_State *L = e->L;
    lua_Integer count = 0, max = 0;
    lua_pushnil(L);
    if (!lua_next(L, idx))
        return buf_add(e, "[]", 2);
    if (lua_type(L, -2) == LUA_TSTRING) {
        lua_pop(L, 2);
        return enc_object(e, idx, 0);
    }
    do {
        lua_Integer k;
        if (!lua_isinteger(L, -2))
            return key_error(e, -2, 0);
        k = lua_tointeger(L, -2);
        if (k < 1)
            return enc_fail(e, "cannot encode sparse array (index %lld)", (long long)k);
        count++;
        if (k > max)
            max = k;
        lua_pop(L, 1);
    } while (lua_next(L, idx));
    if (count != max)
        return enc_fail(e, "cannot encode sparse array (%lld values, largest index %lld)",
                        (long long)count, (long long)max);
    return enc_array(e, idx, max);
}

static int enc_table(Encoder *e, int idx)
{
    lua_State *L = e->L;
    const void *self = lua_topointer(L, idx);
    int i, r, top = lua_gettop(L), kind = 0;
    if (e->depth >= JSON_MAXDEPTH)
        return enc_fail(e, "nesting deeper than %d levels", JSON_MAXDEPTH);
    for (i = 0; i < e->depth; i++)
        if (e->open[i] == self)
            return enc_fail(e, "cannot encode a cycle (a table that contains itself)");
    if (!lua_checkstack(L, 4))
        return enc_fail(e, "Lua stack overflow");
    /* lua_getmetatable is raw: a __metatable field does not hide the real one from C */
    if (lua_getmetatable(L, idx)) {
        if (lua_rawequal(L, -1, e->mt_array))
            kind = 1;
        else if (lua_rawequal(L, -1, e->mt_object))
            kind = 2;
        lua_pop(L, 1);
    }
    e->open[e->depth++] = self;
    if (kind == 1)
        r = enc_array(e, idx, (lua_Integer)lua_rawlen(L, idx));
    else if (kind == 2)
        r = enc_object(e, idx, 1);
    else
        r = enc_plain(e, idx);
    e->depth--;
    lua_settop(L, top);
    return r;
}

static int enc_value(Encoder *e, int idx)
{
    lua_State *L = e->L;
    size_t len;
    const char *s;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return buf_add(e, "null", 4);
    case LUA_TBOOLEAN:
        return lua_toboolean(L, idx) ? buf_add(e, "true", 4) : buf_add(e, "false", 5);
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            return enc_integer(e, lua_tointeger(L, idx));
        return enc_float(e, lua_tonumber(L, idx));
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &len);
        return enc_string(e, s, len, 0);
    case LUA_TTABLE:
        return enc_table(e, idx);
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL)
            return buf_add(e, "null", 4);
        return enc_fail(e, "cannot encode light userdata");
    default:
        return enc_fail(e, "cannot encode %s", luaL_typename(L, idx));
    }
}

/* Nothing below the two push_*_mt calls raises a Lua error: lua_next, lua_rawget*,
 * lua_checkstack, lua_tolstring on strings and friends neither allocate nor call
 * metamethods, so the buffer taken from the allocator cannot leak through a longjmp. */
char *json_encode(lua_State *L, int idx, size_t *len, char *err, size_t errlen)
{
    Encoder e;
    int top = lua_gettop(L), r;
    char *out = NULL;
    idx = lua_absindex(L, idx);
    e.L = L;
    e.alloc = lua_getallocf(L, &e.ud);
    e.buf = NULL;
    e.len = e.cap = 0;
    e.depth = 0;
    e.npath = 0;
    e.members = NULL;
    e.nmembers = e.capmembers = 0;
    e.err = err;
    e.errlen = err != NULL ? errlen : 0;
    if (e.errlen > 0)
        err[0] = '\0';
    if (len != NULL)
        *len = 0;
    if (!lua_checkstack(L, 8)) {
        enc_fail(&e, "Lua stack overflow");
        return NULL;
    }
    push_array_mt(L);
    push_object_mt(L);
    e.mt_array = top + 1;
    e.mt_object = top + 2;
    r = enc_value(&e, idx);
    lua_settop(L, top);
    if (e.members != NULL)
        e.alloc(e.ud, e.members, e.capmembers * sizeof(Member), 0);
    if (r == 0 && buf_reserve(&e, 1) == 0) {
        /* hand back exactly len + 1 bytes (NUL-terminated), the size json_free reports to
         * the allocator, so a counting allocator stays balanced */
        e.buf[e.len] = '\0';
        out = (char *)e.alloc(e.ud, e.buf, e.cap, e.len + 1);
        if (out == NULL) {                      /* a shrink that failed: copy instead */
            out = (char *)e.alloc(e.ud, NULL, 0, e.len + 1);
            if (out != NULL)
                memcpy(out, e.buf, e.len + 1);
            else
                enc_fail(&e, "out of memory");
            e.alloc(e.ud, e.buf, e.cap, 0);
        }
        if (out != NULL && len != NULL)
            *len = e.len;
        return out;
    }
    if (e.buf != NULL)
        e.alloc(e.ud, e.buf, e.cap, 0);
    return NULL;
}

void json_free(lua_State *L, char *buf, size_t len)
{
    void *ud;
    lua_Alloc f;
    if (buf == NULL)
        return;
    f = lua_getallocf(L, &ud);
    f(ud, buf, len + 1, 0);
}


/* ---------------------------------------------------------------------------------------- */
/* The Lua module                                                                           */
/* ---------------------------------------------------------------------------------------- */

/* json.encode keeps the encoder's buffer in this box while lua_pushlstring copies it: if the
 * copy raises a memory error, the box's __gc still returns the buffer to the allocator. */
typedef struct {
    char *buf;
    size_t len;
} Box;

static int box_gc(lua_State *L)
{
    Box *b = (Box *)luaL_checkudata(L, 1, BOX_MT);
    if (b->buf != NULL) {
        json_free(L, b->buf, b->len);
        b->buf = NULL;
    }
    return 0;
}

static int l_encode(lua_State *L)
{
    char err[256];
    Box *b;
    lua_settop(L, 1);
    b = (Box *)lua_newuserdatauv(L, sizeof(Box), 0);
    b->buf = NULL;
    luaL_setmetatable(L, BOX_MT);
    b->buf = json_encode(L, 1, &b->len, err, sizeof err);
    if (b->buf == NULL)
        return luaL_error(L, "json.encode: %s", err);
    lua_pushlstring(L, b->buf, b->len);
    json_free(L, b->buf, b->len);
    b->buf = NULL;
    return 1;
}

static int l_decode(lua_State *L)
{
    char err[256];
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    if (json_decode(L, s, len, err, sizeof err) != 0)
        return luaL_error(L, "json.decode: %s", err);
    return 1;
}

/* json.array(t) / json.object(t): marks t (or a new table) and returns it. Tables that carry
 * some other metatable are refused: replacing it from C would bypass its __metatable
 * protection. */
static int mark(lua_State *L, int as_array)
{
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    if (lua_getmetatable(L, 1)) {
        push_array_mt(L);
        push_object_mt(L);
        if (!lua_rawequal(L, 2, 3) && !lua_rawequal(L, 2, 4))
            return luaL_error(L, "json.%s: the table already has a metatable",
                              as_array ? "array" : "object");
        lua_settop(L, 1);
    }
    if (as_array)
        json_mark_array(L, 1);
    else
        json_mark_object(L, 1);
    return 1;
}

static int l_array(lua_State *L) { return mark(L, 1); }
static int l_object(lua_State *L) { return mark(L, 0); }

int json_open(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"encode", l_encode},
        {"decode", l_decode},
        {"array", l_array},
        {"object", l_object},
        {NULL, NULL}
    };
    push_array_mt(L);
    push_object_mt(L);
    if (luaL_newmetatable(L, BOX_MT)) {
        lua_pushcfunction(L, box_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 3);
    lua_createtable(L, 0, 5);
    luaL_setfuncs(L, funcs, 0);
    json_push_null(L);
    lua_setfield(L, -2, "null");
    return 1;
}
