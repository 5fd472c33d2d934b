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
 * errors, integral ones within 2^53 print as integers ("2"; but -0.0 as "-0.0", since "-0"
 * reads back as the integer 0), others the shortest of %.15g/%.16g/%.17g that reads back
 * equal (any locale). Strings must be valid
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
 *   gcc -std=c11 -O2 -Ihost -I/usr/include/lua5.4 host/lib/json*.c host/lib/errors.c \
 *       bench/bench_json.c -llua5.4-cjson -llua5.4 -lm -o /tmp/bench_json && /tmp/bench_json 10 9
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
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include "errors.h"
#include "json.h"
#include "json_codec.h"

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

void json_push_array_mt(lua_State *L) { push_mt(L, ARRAY_MT, "json.array"); }
void json_push_object_mt(lua_State *L) { push_mt(L, OBJECT_MT, "json.object"); }

void json_mark_array(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    json_push_array_mt(L);
    lua_setmetatable(L, idx);
}

void json_mark_object(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    json_push_object_mt(L);
    lua_setmetatable(L, idx);
}

/* ---------------------------------------------------------------------------------------- */
/* The Lua module                                                                           */
/* ---------------------------------------------------------------------------------------- */

int json_print(lua_State *L, int idx, FILE *f, char *err, size_t errlen)
{
    size_t len;
    char *out = json_encode(L, idx, &len, err, errlen);
    int ok;
    if (out == NULL)
        return -1;
    ok = fwrite(out, 1, len, f) == len && putc('\n', f) != EOF;
    if (!ok && err != NULL && errlen > 0)
        snprintf(err, errlen, "%s", strerror(errno));
    json_free(L, out, len);
    return ok ? 0 : -1;
}

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

/* json.encode's options: { indent = 0..8 }; anything else is an error, not ignored. */
static int encode_indent(lua_State *L)
{
    int indent = 0;
    if (lua_isnoneornil(L, 2))
        return 0;
    if (!lua_istable(L, 2))
        return luaL_error(L, "json.encode: options must be a table (got %s)", luaL_typename(L, 2));
    for (lua_pushnil(L); lua_next(L, 2); lua_pop(L, 1)) {
        if (lua_type(L, -2) != LUA_TSTRING || strcmp(lua_tostring(L, -2), "indent") != 0)
            return luaL_error(L, "json.encode: unknown option %s (known: indent)", luaL_tolstring(L, -2, NULL));
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0 || lua_tointeger(L, -1) > 8)
            return luaL_error(L, "json.encode: indent must be an integer 0..8 (got %s)", luaL_tolstring(L, -1, NULL));
        indent = (int)lua_tointeger(L, -1);
    }
    return indent;
}

static int l_encode(lua_State *L)
{
    char err[256];
    Box *b;
    int indent = encode_indent(L);
    lua_settop(L, 1);
    b = (Box *)lua_newuserdatauv(L, sizeof(Box), 0);
    b->buf = NULL;
    luaL_setmetatable(L, BOX_MT);
    b->buf = json_encode_pretty(L, 1, indent, &b->len, err, sizeof err);
    if (b->buf == NULL)
        return err_raise(L, "json", "json.encode: %s", err);
    lua_pushlstring(L, b->buf, b->len);
    json_free(L, b->buf, b->len);
    b->buf = NULL;
    return 1;
}

static int l_decode(lua_State *L)
{
    char err[256];
    size_t len;
    const char *s = err_checklstring(L, 1, &len);
    if (json_decode(L, s, len, err, sizeof err) != 0)
        return err_raise(L, "json", "json.decode: %s", err);
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
    err_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    if (lua_getmetatable(L, 1)) {
        json_push_array_mt(L);
        json_push_object_mt(L);
        if (!lua_rawequal(L, 2, 3) && !lua_rawequal(L, 2, 4))
            return err_argerror(L, 1, "the table already has a metatable");
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
    json_push_array_mt(L);
    json_push_object_mt(L);
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
