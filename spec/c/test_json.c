/* Tests of the JSON codec (host/lib/json.c): decoding, encoding, errors with positions and
 * paths, the protected metatables, memory accounting, and round trips of EnergyCAP example
 * bodies. A plain program: prints "N passed, N failed" and exits nonzero on any failure. */
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "lib/errors.h"
#include "lib/json.h"

static int passed, failed;

#define CHECK(cond) check((cond) != 0, #cond, __LINE__)
#define CHECK_STR(got, want) check_str((got), (want), #got, __LINE__)

static void check(int ok, const char *what, int line)
{
    if (ok) {
        passed++;
    } else {
        failed++;
        fprintf(stderr, "test_json.c:%d: CHECK failed: %s\n", line, what);
    }
}

static void check_str(const char *got, const char *want, const char *what, int line)
{
    if (got != NULL && strcmp(got, want) == 0) {
        passed++;
    } else {
        failed++;
        fprintf(stderr, "test_json.c:%d: %s\n  got:  %s\n  want: %s\n", line, what,
                got ? got : "(null)", want);
    }
}

/* ---- a counting allocator with an optional limit, to see every byte come back ---------- */

typedef struct {
    size_t inuse, limit;
} Mem;

static void *counting_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    Mem *m = (Mem *)ud;
    size_t old = ptr != NULL ? osize : 0;
    void *p;
    if (nsize == 0) {
        free(ptr);
        m->inuse -= old;
        return NULL;
    }
    if (m->limit != 0 && nsize > old && m->inuse + (nsize - old) > m->limit)
        return NULL;
    p = realloc(ptr, nsize);
    if (p != NULL)
        m->inuse = m->inuse - old + nsize;
    return p;
}

static Mem mem;

static lua_State *new_state(void)
{
    lua_State *L = lua_newstate(counting_alloc, &mem);
    luaL_openlibs(L);
    err_init(L);
    luaL_requiref(L, "json", json_open, 1);
    lua_pop(L, 1);
    return L;
}

/* ---- helpers -------------------------------------------------------------------------- */

/* Runs a chunk that must return true. */
#define LCHECK(L, code) lcheck((L), (code), __LINE__)
static void lcheck(lua_State *L, const char *code, int line)
{
    int top = lua_gettop(L);
    if (luaL_dostring(L, code) != LUA_OK) {
        failed++;
        fprintf(stderr, "test_json.c:%d: Lua error: %s\n  in: %s\n", line,
                lua_tostring(L, -1), code);
    } else if (lua_gettop(L) <= top || !lua_toboolean(L, top + 1)) {
        failed++;
        fprintf(stderr, "test_json.c:%d: Lua check false: %s\n", line, code);
    } else {
        passed++;
    }
    lua_settop(L, top);
}

/* Evaluates a Lua expression and pushes its value. */
static void push_expr(lua_State *L, const char *expr)
{
    char code[4096];
    snprintf(code, sizeof code, "return %s", expr);
    if (luaL_dostring(L, code) != LUA_OK) {
        fprintf(stderr, "bad test expression %s: %s\n", expr, lua_tostring(L, -1));
        exit(2);
    }
}

/* Encodes the value of a Lua expression; returns the JSON text or "ERR: <message>". The
 * stack top must be left as it was. */
static char out[1 << 16];
static const char *enc(lua_State *L, const char *expr)
{
    char err[512];
    size_t len;
    char *buf;
    int top;
    push_expr(L, expr);
    top = lua_gettop(L);
    buf = json_encode(L, -1, &len, err, sizeof err);
    if (lua_gettop(L) != top) {
        failed++;
        fprintf(stderr, "json_encode changed the stack top for %s\n", expr);
    }
    lua_pop(L, 1);
    if (buf == NULL) {
        snprintf(out, sizeof out, "ERR: %s", err);
        return out;
    }
    if (buf[len] != '\0' || strlen(buf) > len) {
        failed++;
        fprintf(stderr, "json_encode result not terminated for %s\n", expr);
    }
    snprintf(out, sizeof out, "%s", buf);
    json_free(L, buf, len);
    return out;
}

/* Decodes text and returns "" on success (value left on the stack) or the error message
 * (stack unchanged). */
static char errbuf[512];
static const char *dec(lua_State *L, const char *s, size_t len)
{
    int top = lua_gettop(L);
    if (json_decode(L, s, len, errbuf, sizeof errbuf) != 0) {
        if (lua_gettop(L) != top) {
            failed++;
            fprintf(stderr, "json_decode changed the stack top on error\n");
            lua_settop(L, top);
        }
        return errbuf;
    }
    if (lua_gettop(L) != top + 1) {
        failed++;
        fprintf(stderr, "json_decode did not push exactly one value\n");
    }
    return "";
}

/* Decodes s (a C string) expecting failure with exactly this message. */
#define DEC_ERR(L, s, want) check_str(dec_err((L), (s), sizeof(s) - 1), (want), s, __LINE__)
static const char *dec_err(lua_State *L, const char *s, size_t len)
{
    const char *r = dec(L, s, len);
    if (*r == '\0') {
        lua_pop(L, 1);
        return "(decoded without error)";
    }
    return r;
}

/* Decodes s into the global `v`. */
static int dec_global(lua_State *L, const char *s, size_t len)
{
    const char *r = dec(L, s, len);
    if (*r != '\0') {
        fprintf(stderr, "unexpected decode error: %s\n", r);
        return 0;
    }
    lua_setglobal(L, "v");
    return 1;
}
#define DEC(L, s) CHECK(dec_global((L), (s), sizeof(s) - 1))

/* ---- example bodies (EnergyCAP API reference: MeterResponse, EsaChannelCreate) ------- */

static const char meter_response[] =
    "{ \"accounts\": [\n"
    "{ \"accountCode\": \"string\", \"accountGeneralLedger\": { \"generalLedgerCode\": \"string\", \"generalLedgerId\": 1, \"generalLedgerInfo\": \"string\"\n"
    "}, \"accountId\": 1, \"accountInfo\": \"string\", \"accountMeterId\": 1, \"active\": false, \"dataAccessReleaseId\": 1, \"endDate\": \"2026-03-30\", \"hasCalculatedMeter\": false, \"hasSplitChildMeter\": false, \"hasSplitParentMeter\": false, \"hasSubAccount\": false, \"isSubAccount\": false, \"meterGeneralLedger\": { \"generalLedgerCode\": \"string\", \"generalLedgerId\": 1, \"generalLedgerInfo\": \"string\"\n"
    "}, \"startDate\": \"2026-03-30\", \"vendor\": { \"vendorCode\": \"string\", \"vendorId\": 1, \"vendorInfo\": \"string\"\n"
    "}, \"vendorType\": { \"vendorTypeCode\": \"string\", \"vendorTypeId\": 1\n"
    "}\n"
    "}\n"
    "], \"active\": false, \"address\": { \"addressTypeId\": 1, \"city\": \"string\", \"country\": \"string\", \"latitude\": 1.0, \"line1\": \"string\", \"line2\": \"string\", \"line3\": \"string\", \"longitude\": 1.0, \"postalCode\": \"string\", \"remitTo\": \"string\", \"state\": \"string\"\n"
    "}, \"billEntryNote\": \"string\", \"channels\": [\n"
    "{ \"channelCode\": \"string\", \"channelId\": 1, \"interval\": 1\n"
    "}\n"
    "], \"commodity\": { \"commodityCode\": \"string\", \"commodityIcon\": { \"code\": \"string\", \"color\": \"string\"\n"
    "}, \"commodityId\": 1, \"commodityInfo\": \"string\"\n"
    "}, \"createdBy\": { \"fullName\": \"string\", \"userCode\": \"string\", \"userId\": 1\n"
    "}, \"createdDate\": \"2026-03-30\", \"demandUnit\": { \"unitCode\": \"string\", \"unitId\": 1, \"unitInfo\": \"string\"\n"
    "}, \"emissionSource\": { \"emissionSourceId\": 1\n"
    "}, \"includeInCostAvoidance\": false, \"includeInEnergyStar\": false, \"isCalculatedMeter\": false, \"isEsaCalculatedMeter\": false, \"isSplitChildMeter\": false, \"isSplitParentMeter\": false, \"meterCode\": \"string\", \"meterDescription\": \"string\", \"meterId\": 1, \"meterInfo\": \"string\", \"meterTimeZone\": { \"timeZoneCode\": \"string\", \"timeZoneId\": 1, \"timeZoneInfo\": \"string\"\n"
    "}, \"meterType\": { \"meterTypeCode\": \"string\", \"meterTypeId\": 1, \"meterTypeInfo\": \"string\"\n"
    "}, \"modifiedBy\": { \"fullName\": \"string\", \"userCode\": \"string\", \"userId\": 1\n"
    "}, \"modifiedDate\": \"2026-03-30\", \"place\": { \"isDataRolledUp\": false, \"placeCode\": \"string\", \"placeId\": 1, \"placeInfo\": \"string\", \"placeType\": { \"icon\": {}, \"isSystemPlaceType\": false, \"placeEntityType\": {}, \"placeTypeCode\": \"string\", \"placeTypeId\": 1, \"placeTypeInfo\": \"string\", \"structure\": false\n"
    "}\n"
    "}, \"primaryUse\": { \"primaryUseCode\": \"string\", \"primaryUseId\": 1, \"primaryUseInfo\": \"string\"\n"
    "}, \"properties\": {}, \"route\": { \"routeCode\": \"string\", \"routeId\": 1, \"routeInfo\": \"string\"\n"
    "}, \"sentinelStatus\": \"string\", \"serialNumber\": \"string\", \"serialNumberHistory\": { \"previousSerialNumber\": \"string\", \"serialNumberChangeDate\": \"2026-03-30\"\n"
    "}, \"useUnit\": { \"unitCode\": \"string\", \"unitId\": 1, \"unitInfo\": \"string\"\n"
    "}, \"watticsDataPoint\": { \"watticsDataPointId\": 1\n"
    "}\n"
    "}\n";

static const char esa_request[] =
    "{ \"channelDescription\": \"string\", \"channelImportId\": \"string\", \"channelInfo\": \"string\", \"dataPointId\": 1, \"esaChannelVersion\": { \"formula\": \"string\", \"isValuePositive\": false, \"maximumReading\": 1.0, \"minimumReading\": 1.0, \"multiplier\": 1.0, \"observationRuleId\": 1, \"offset\": 1.0, \"rollbackAllowance\": 1.0, \"rolloverValue\": 1.0, \"unitId\": 1\n"
    "}, \"intervalMinutes\": 1, \"isCalculated\": false, \"isPrimaryDemand\": false, \"isPrimaryValue\": false, \"observationTypeId\": 1, \"summarizationMethodId\": 1\n"
    "}\n";

/* ---- decoding ------------------------------------------------------------------------- */

static void test_decode_numbers(lua_State *L)
{
    DEC(L, "42");
    LCHECK(L, "return math.type(v) == 'integer' and v == 42");
    DEC(L, "-42");
    LCHECK(L, "return math.type(v) == 'integer' and v == -42");
    DEC(L, "42.0");
    LCHECK(L, "return math.type(v) == 'float' and v == 42");
    DEC(L, "1e2");
    LCHECK(L, "return math.type(v) == 'float' and v == 100");
    DEC(L, "1E+2");
    LCHECK(L, "return math.type(v) == 'float' and v == 100");
    DEC(L, "25E-2");
    LCHECK(L, "return v == 0.25");
    DEC(L, "0.1");
    LCHECK(L, "return v == 0.1");
    DEC(L, "0");
    LCHECK(L, "return math.type(v) == 'integer' and v == 0");
    /* "-0" is an integral number: the integer 0 (integers have no negative zero) */
    DEC(L, "-0");
    LCHECK(L, "return math.type(v) == 'integer' and v == 0");
    DEC(L, "-0.0");
    LCHECK(L, "return math.type(v) == 'float' and v == 0 and 1/v < 0");
    DEC(L, "9223372036854775807");
    LCHECK(L, "return v == math.maxinteger");
    DEC(L, "-9223372036854775808");
    LCHECK(L, "return v == math.mininteger");
    DEC(L, "1234567890123456789");
    LCHECK(L, "return math.type(v) == 'integer' and v == 1234567890123456789");
    /* past int64: a float */
    DEC(L, "9223372036854775808");
    LCHECK(L, "return math.type(v) == 'float' and v == 2^63");
    DEC(L, "-9223372036854775809");
    LCHECK(L, "return math.type(v) == 'float' and v == -2^63");
    DEC(L, "123456789012345678901234567890");
    LCHECK(L, "return math.type(v) == 'float' and v == 1.2345678901234568e29");
    DEC(L, "0.00000000000000000000000000000000000000000000000000000000000000000000000001");
    LCHECK(L, "return v == 1e-74");
    DEC(L, "1e-400");
    LCHECK(L, "return v == 0");
    DEC_ERR(L, "1e400", "number out of range at line 1, column 1");
    DEC_ERR(L, "[1, -1e999]", "number out of range at line 1, column 5");
    DEC_ERR(L, "01", "invalid number (leading zero) at line 1, column 1");
    DEC_ERR(L, "-", "invalid number at line 1, column 1");
    DEC_ERR(L, "-a", "invalid number at line 1, column 1");
    DEC_ERR(L, "1.", "invalid number at line 1, column 1");
    DEC_ERR(L, "1.e5", "invalid number at line 1, column 1");
    DEC_ERR(L, "1e", "invalid number at line 1, column 1");
    DEC_ERR(L, "1e+", "invalid number at line 1, column 1");
    DEC_ERR(L, ".5", "unexpected '.' at line 1, column 1");
    DEC_ERR(L, "+1", "unexpected '+' at line 1, column 1");
    DEC_ERR(L, "0x10", "unexpected 'x' after the value at line 1, column 2");
    DEC_ERR(L, "NaN", "unexpected 'N' at line 1, column 1");
    DEC_ERR(L, "Infinity", "unexpected 'I' at line 1, column 1");
}

static void test_decode_literals(lua_State *L)
{
    DEC(L, "true");
    LCHECK(L, "return v == true");
    DEC(L, " false ");
    LCHECK(L, "return v == false");
    CHECK(*dec(L, "null", 4) == '\0' && json_is_null(L, -1) && lua_type(L, -1) == LUA_TLIGHTUSERDATA);
    lua_pop(L, 1);
    DEC(L, "[null]");
    LCHECK(L, "return v[1] == json.null and #v == 1");
    DEC_ERR(L, "nul", "invalid literal at line 1, column 1");
    DEC_ERR(L, "[tru]", "invalid literal at line 1, column 2");
    DEC_ERR(L, "truex", "unexpected 'x' after the value at line 1, column 5");
    DEC_ERR(L, "True", "unexpected 'T' at line 1, column 1");
    json_push_null(L);
    CHECK(json_is_null(L, -1));
    lua_pop(L, 1);
    lua_pushboolean(L, 0);
    CHECK(!json_is_null(L, -1));
    lua_pop(L, 1);
    lua_pushnil(L);
    CHECK(!json_is_null(L, -1));
    lua_pop(L, 1);
}

static void test_decode_strings(lua_State *L)
{
    DEC(L, "\"plain\"");
    LCHECK(L, "return v == 'plain'");
    DEC(L, "\"\"");
    LCHECK(L, "return v == ''");
    DEC(L, "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"");
    LCHECK(L, "return v == '\"\\\\/\\b\\f\\n\\r\\t'");
    DEC(L, "\"caf\\u00e9 \\u00E9\"");
    LCHECK(L, "return v == 'caf\\u{e9} \\u{e9}'");
    DEC(L, "\"\\u20ac\\u0041\"");
    LCHECK(L, "return v == '\\u{20ac}A'");
    DEC(L, "\"\\ud83d\\ude00\"");
    LCHECK(L, "return v == '\\xF0\\x9F\\x98\\x80'");
    DEC(L, "\"\\uDBFF\\uDFFF\"");
    LCHECK(L, "return v == '\\u{10FFFF}'");
    DEC(L, "\"a\\u0000b\"");
    LCHECK(L, "return v == 'a\\0b' and #v == 3");
    DEC(L, "\"raw \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 utf-8\"");
    LCHECK(L, "return v == 'raw \\u{e9} \\u{20ac} \\u{1F600} utf-8'");
    DEC(L, "\"\x7f\"");
    LCHECK(L, "return v == '\\127'");
    DEC_ERR(L, "\"\\ud83d\"", "lone surrogate \\uD83D at line 1, column 2");
    DEC_ERR(L, "\"\\ud83dx\"", "lone surrogate \\uD83D at line 1, column 2");
    DEC_ERR(L, "\"\\ud83d\\u0041\"", "lone surrogate \\uD83D at line 1, column 2");
    DEC_ERR(L, "\"ab\\ude00\"", "lone surrogate \\uDE00 at line 1, column 4");
    DEC_ERR(L, "\"\\q\"", "invalid escape '\\q' at line 1, column 2");
    DEC_ERR(L, "\"\\x41\"", "invalid escape '\\x' at line 1, column 2");
    DEC_ERR(L, "\"\\u12\"", "invalid \\u escape at line 1, column 2");
    DEC_ERR(L, "\"\\u12G4\"", "invalid \\u escape at line 1, column 2");
    DEC_ERR(L, "\"a\nb\"", "control character 0x0a in string at line 1, column 3");
    DEC_ERR(L, "\"a\tb\"", "control character 0x09 in string at line 1, column 3");
    DEC_ERR(L, "\"a\\n\x01\"", "control character 0x01 in string at line 1, column 5");
    DEC_ERR(L, "\"abc", "unterminated string at line 1, column 1");
    DEC_ERR(L, "[\"ab\\\"]", "unterminated string at line 1, column 2");
    DEC_ERR(L, "\"ab\\", "unexpected end of input at line 1, column 5");
    /* invalid UTF-8: stray continuation, overlong, encoded surrogate, past U+10FFFF,
     * truncated sequences */
    DEC_ERR(L, "\"\x80\"", "invalid UTF-8 in string at line 1, column 2");
    DEC_ERR(L, "\"ab\xc0\xaf\"", "invalid UTF-8 in string at line 1, column 4");
    DEC_ERR(L, "\"\xe0\x80\xaf\"", "invalid UTF-8 in string at line 1, column 2");
    DEC_ERR(L, "\"\xed\xa0\x80\"", "invalid UTF-8 in string at line 1, column 2");
    DEC_ERR(L, "\"\xf4\x90\x80\x80\"", "invalid UTF-8 in string at line 1, column 2");
    DEC_ERR(L, "\"\xff\"", "invalid UTF-8 in string at line 1, column 2");
    DEC_ERR(L, "\"\xe2\x82\"", "invalid UTF-8 in string at line 1, column 2");
    DEC_ERR(L, "\"\\n\xe2\x82\"", "invalid UTF-8 in string at line 1, column 4");
    DEC_ERR(L, "\"\xc3", "invalid UTF-8 in string at line 1, column 2");
    DEC_ERR(L, "{\"k\xff\": 1}", "invalid UTF-8 in string at line 1, column 4");
    /* an escaped string longer than luaL_Buffer's stack part moves to its box */
    LCHECK(L, "local v = json.decode('\"' .. string.rep('ab\\\\\\\"c', 3000) .. '\"') "
              "return v == string.rep('ab\\\"c', 3000)");
    LCHECK(L, "local parts = {} for i = 1, 5000 do parts[i] = 'x\\\\n\\\\u00e9' end "
              "local v = json.decode('\"' .. table.concat(parts) .. '\"') "
              "return v == string.rep('x\\n\\u{e9}', 5000)");
}

static void test_decode_structures(lua_State *L)
{
    DEC(L, "{\"a\": [1, 2.5, \"x\", true, null, {\"b\": {\"c\": []}}], \"d\": {}}");
    LCHECK(L, "return v.a[1] == 1 and v.a[2] == 2.5 and v.a[3] == 'x' and v.a[4] == true "
              "and v.a[5] == json.null and #v.a == 6 and next(v.a[6].b.c) == nil "
              "and next(v.d) == nil");
    /* empty containers carry the shared metatables; non-empty ones carry none */
    LCHECK(L, "return getmetatable(v.a[6].b.c) == 'json.array' and getmetatable(v.d) == "
              "'json.object' and getmetatable(v) == nil and getmetatable(v.a) == nil");
    LCHECK(L, "return json.encode(v) == '{\"a\":[1,2.5,\"x\",true,null,{\"b\":{\"c\":[]}}],\"d\":{}}'");
    DEC(L, "[]");
    LCHECK(L, "return getmetatable(v) == 'json.array' and json.encode(v) == '[]'");
    DEC(L, "{}");
    LCHECK(L, "return getmetatable(v) == 'json.object' and json.encode(v) == '{}'");
    DEC(L, "[ [ ] , { } , [[]] ]");
    LCHECK(L, "return json.encode(v) == '[[],{},[[]]]'");
    /* each empty container is a new table */
    DEC(L, "[[], []]");
    LCHECK(L, "return v[1] ~= v[2]");
    /* duplicate keys: the last one wins */
    DEC(L, "{\"a\": 1, \"a\": 2}");
    LCHECK(L, "return v.a == 2");
    /* whitespace of all four kinds; a byte order mark */
    DEC(L, " \t\r\n[ 1 ,\n\t2 ]\r\n ");
    LCHECK(L, "return #v == 2 and v[2] == 2");
    DEC(L, "\xEF\xBB\xBF{\"a\": 1}");
    LCHECK(L, "return v.a == 1");
    /* past the gathering chunk: arrays and objects spill into their table in pieces */
    LCHECK(L, "for _, n in ipairs{255, 256, 257, 511, 512, 513, 10000} do "
              "  local t = {} for i = 1, n do t[i] = i * 3 end "
              "  local v = json.decode(json.encode(t)) "
              "  if #v ~= n then return false end "
              "  for i = 1, n do if v[i] ~= i * 3 then return false end end "
              "end return true");
    LCHECK(L, "for _, n in ipairs{127, 128, 129, 255, 256, 257, 3000} do "
              "  local parts = {} for i = 1, n do parts[i] = ('\"k%d\": %d'):format(i, i) end "
              "  local v = json.decode('{' .. table.concat(parts, ',') .. ', \"k1\": -1}') "
              "  local c = 0 for k, x in pairs(v) do c = c + 1 end "
              "  if c ~= n or v.k1 ~= -1 or v['k' .. n] ~= n then return false end "
              "end return true");
    LCHECK(L, "local t = {} for i = 1, 600 do t[i] = {i, {x = i}} end "
              "local v = json.decode(json.encode(t)) "
              "for i = 1, 600 do if v[i][1] ~= i or v[i][2].x ~= i then return false end end "
              "return #v == 600");
    /* json.decode from Lua */
    LCHECK(L, "local ok, e = pcall(json.decode, '[1,') "
              "return not ok and e.kind == 'json' and "
              "e.message == 'json.decode: unexpected end of input at line 1, column 4' and "
              "tostring(e) == e.where .. ': json: ' .. e.message and e.where:find(':1$') ~= nil");
    LCHECK(L, "local ok, e = pcall(json.decode) return not ok and e.kind == 'argument' and "
              "e.message:find('bad argument #1 to .* %(string expected, got no value%)') ~= nil");
    LCHECK(L, "return json.decode(42) == 42");
}

static void test_decode_errors(lua_State *L)
{
    DEC_ERR(L, "{\n  \"a\": 1,\n  \"b\": }", "unexpected '}' at line 3, column 8");
    DEC_ERR(L, "", "unexpected end of input at line 1, column 1");
    DEC_ERR(L, "  \n ", "unexpected end of input at line 2, column 2");
    DEC_ERR(L, "[1,]", "unexpected ']' at line 1, column 4");
    DEC_ERR(L, "[1 2]", "unexpected '2' at line 1, column 4");
    DEC_ERR(L, "[1,2", "unexpected end of input at line 1, column 5");
    DEC_ERR(L, "[", "unexpected end of input at line 1, column 2");
    DEC_ERR(L, "]", "unexpected ']' at line 1, column 1");
    DEC_ERR(L, "{\"a\" 1}", "unexpected '1' at line 1, column 6");
    DEC_ERR(L, "{\"a\":}", "unexpected '}' at line 1, column 6");
    DEC_ERR(L, "{\"a\":1,}", "unexpected '}' at line 1, column 8");
    DEC_ERR(L, "{\"a\":1 \"b\":2}", "unexpected '\"' at line 1, column 8");
    DEC_ERR(L, "{1:2}", "unexpected '1' at line 1, column 2");
    DEC_ERR(L, "{'a':2}", "unexpected ''' at line 1, column 2");
    DEC_ERR(L, "{\"a\":1", "unexpected end of input at line 1, column 7");
    DEC_ERR(L, "[1] x", "unexpected 'x' after the value at line 1, column 5");
    DEC_ERR(L, "[1] [2]", "unexpected '[' after the value at line 1, column 5");
    DEC_ERR(L, "{}\n\n}", "unexpected '}' after the value at line 3, column 1");
    DEC_ERR(L, "[1]\x01", "unexpected byte 0x01 after the value at line 1, column 4");
    DEC_ERR(L, "[\x01]", "unexpected byte 0x01 at line 1, column 2");
    DEC_ERR(L, "[1] // comment", "unexpected '/' after the value at line 1, column 5");
    /* columns count characters, not bytes */
    DEC_ERR(L, "[\"\xc3\xa9\xe2\x82\xac\", x]", "unexpected 'x' at line 1, column 8");
    /* CRLF line ends */
    DEC_ERR(L, "[1,\r\n2,\r\n?]", "unexpected '?' at line 3, column 1");
    /* an embedded NUL is just an unexpected byte */
    DEC_ERR(L, "[1,\0]", "unexpected byte 0x00 at line 1, column 4");
    /* a NULL input */
    CHECK(json_decode(L, NULL, 0, errbuf, sizeof errbuf) == -1);
    /* err may be NULL or tiny */
    CHECK(json_decode(L, "[", 1, NULL, 0) == -1);
    CHECK(json_decode(L, "[", 1, errbuf, 8) == -1 && strcmp(errbuf, "unexpec") == 0);
    /* errors deep inside leave the stack as it was (checked by dec()), including a failure
     * after a spill */
    LCHECK(L, "local t = {} for i = 1, 2000 do t[i] = i end "
              "local s = json.encode({a = t, b = {t, t}}) "
              "local ok, e = pcall(json.decode, s:sub(1, -3) .. ',]}') "
              "return not ok and e.message:find('unexpected') ~= nil");
    {
        int top = lua_gettop(L);
        const char *deep = "[{\"a\": [1, 2, {\"b\": [\"x\", \"y\" \"z\"]}]}]";
        CHECK(json_decode(L, deep, strlen(deep), errbuf, sizeof errbuf) == -1);
        CHECK(lua_gettop(L) == top);
        CHECK_STR(errbuf, "unexpected '\"' at line 1, column 31");
    }
}

static void test_decode_depth(lua_State *L)
{
    char buf[1024];
    static char huge[200001];
    int i;
    for (i = 0; i < 200; i++) {
        buf[i] = '[';
        buf[200 + i] = ']';
    }
    CHECK(*dec(L, buf, 400) == '\0');
    lua_pop(L, 1);
    for (i = 0; i < 201; i++) {
        buf[i] = '[';
        buf[201 + i] = ']';
    }
    CHECK_STR(dec(L, buf, 402), "nesting deeper than 200 levels at line 1, column 201");
    for (i = 0; i < 201; i++) {
        memcpy(huge + 5 * i, "{\"a\":", 5);
        huge[1005 + i] = '}';
    }
    huge[1005] = '1';
    CHECK_STR(dec(L, huge, 1005 + 1 + 201), "nesting deeper than 200 levels at line 1, column 1001");
    /* a hostile depth never reaches the C stack's end */
    memset(huge, '[', sizeof huge - 1);
    CHECK_STR(dec(L, huge, sizeof huge - 1), "nesting deeper than 200 levels at line 1, column 201");
}

/* ---- encoding ------------------------------------------------------------------------- */

static void test_encode_values(lua_State *L)
{
    CHECK_STR(enc(L, "nil"), "null");
    CHECK_STR(enc(L, "json.null"), "null");
    CHECK_STR(enc(L, "true"), "true");
    CHECK_STR(enc(L, "false"), "false");
    CHECK_STR(enc(L, "0"), "0");
    CHECK_STR(enc(L, "-17"), "-17");
    CHECK_STR(enc(L, "9007199254740993"), "9007199254740993");
    CHECK_STR(enc(L, "math.maxinteger"), "9223372036854775807");
    CHECK_STR(enc(L, "math.mininteger"), "-9223372036854775808");
    CHECK_STR(enc(L, "2.0"), "2");
    CHECK_STR(enc(L, "-2.0"), "-2");
    CHECK_STR(enc(L, "0.0"), "0");
    CHECK_STR(enc(L, "-0.0"), "-0.0"); /* not "-0": that decodes as the integer 0 (found by fuzz_json) */
    CHECK_STR(enc(L, "2.0^53"), "9007199254740992");
    CHECK_STR(enc(L, "-2.0^53"), "-9007199254740992");
    /* past 2^53 the shortest round trip may still be digits only */
    CHECK_STR(enc(L, "2.0^53 + 2"), "9007199254740994");
    CHECK_STR(enc(L, "2.0^63"), "9.223372036854776e+18");
    CHECK_STR(enc(L, "1e300"), "1e+300");
    CHECK_STR(enc(L, "0.1"), "0.1");
    CHECK_STR(enc(L, "1.5"), "1.5");
    CHECK_STR(enc(L, "-123456.789"), "-123456.789");
    CHECK_STR(enc(L, "1/3"), "0.3333333333333333");
    CHECK_STR(enc(L, "0.1 + 0.2"), "0.30000000000000004");
    CHECK_STR(enc(L, "5e-324"), "4.94065645841247e-324");
    CHECK_STR(enc(L, "1.7976931348623157e308"), "1.7976931348623157e+308");
    CHECK_STR(enc(L, "1e-7"), "1e-07");
    /* every float comes back the same double */
    LCHECK(L, "local xs = {0.1, 1/3, 2/3, math.pi, -math.pi, 1e-300, 5e-324, 1.7976931348623157e308, "
              "123.456, 40.7128, -74.006, 2^53 + 2, 2^70, 0.1 + 0.2} "
              "for _, x in ipairs(xs) do if json.decode(json.encode(x)) ~= x then return false end end "
              "return true");
    CHECK_STR(enc(L, "'plain'"), "\"plain\"");
    CHECK_STR(enc(L, "''"), "\"\"");
    CHECK_STR(enc(L, "'a\"b\\\\c/d\\n\\r\\t\\b\\f\\1\\31\\127'"),
              "\"a\\\"b\\\\c/d\\n\\r\\t\\b\\f\\u0001\\u001f\x7f\"");
    CHECK_STR(enc(L, "'a\\0b'"), "\"a\\u0000b\"");
    CHECK_STR(enc(L, "'caf\\u{e9} \\u{20ac} \\u{1F600}'"),
              "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    LCHECK(L, "local s = string.rep('\\1\"', 10000) return json.decode(json.encode(s)) == s");
}

static void test_encode_tables(lua_State *L)
{
    CHECK_STR(enc(L, "{}"), "[]");
    CHECK_STR(enc(L, "json.array()"), "[]");
    CHECK_STR(enc(L, "json.object()"), "{}");
    CHECK_STR(enc(L, "json.object({})"), "{}");
    CHECK_STR(enc(L, "{1, 2, 3}"), "[1,2,3]");
    CHECK_STR(enc(L, "{'a', {true, false}, {}}"), "[\"a\",[true,false],[]]");
    CHECK_STR(enc(L, "{[3] = 'c', [1] = 'a', [2] = 'b'}"), "[\"a\",\"b\",\"c\"]");
    /* keys come out sorted, bytewise */
    CHECK_STR(enc(L, "{b = 1, a = 2, c = {}, B = 3, aa = 4, [''] = 5}"),
              "{\"\":5,\"B\":3,\"a\":2,\"aa\":4,\"b\":1,\"c\":[]}");
    CHECK_STR(enc(L, "{['a\\0b'] = 1, a = 2}"), "{\"a\":2,\"a\\u0000b\":1}");
    CHECK_STR(enc(L, "{['k\"'] = {x = {y = json.null}}}"), "{\"k\\\"\":{\"x\":{\"y\":null}}}");
    /* marked arrays: exactly 1..#t (json.null for a gap); any other key is an error, not
     * silently dropped (found in review) */
    CHECK_STR(enc(L, "(function() local t = json.array() t[1] = 1 t[2] = json.null t[3] = 3 return t end)()"),
              "[1,null,3]");
    CHECK_STR(enc(L, "json.array({1, 2, x = 3})"), "ERR: value: a table marked json.array has keys other than 1..2");
    CHECK_STR(enc(L, "json.array({[2] = 5})"), "ERR: value: a table marked json.array has keys other than 1..0");
    CHECK_STR(enc(L, "json.object({a = 1})"), "{\"a\":1}");
    CHECK_STR(enc(L, "{list = json.array(), map = json.object()}"), "{\"list\":[],\"map\":{}}");
    /* other metatables: raw contents, no metamethod ever runs */
    CHECK_STR(enc(L, "setmetatable({a = 1}, {__pairs = function() error('__pairs ran') end, "
                     "__index = function() error('__index ran') end, "
                     "__len = function() error('__len ran') end, __metatable = 'locked'})"),
              "{\"a\":1}");
    CHECK_STR(enc(L, "setmetatable({1, 2}, {__len = function() return 5 end, "
                     "__index = function() error('__index ran') end})"), "[1,2]");
    CHECK_STR(enc(L, "setmetatable({}, {__index = {a = 1}})"), "[]");
    /* the same table twice (not a cycle) */
    CHECK_STR(enc(L, "(function() local t = {1} return {t, t, {t}} end)()"), "[[1],[1],[[1]]]");
    /* 200 levels are fine */
    LCHECK(L, "local t = {} local v = t for i = 1, 199 do v[1] = {} v = v[1] end "
              "local s = json.encode(t) return #s == 400");
    /* json.encode from Lua */
    LCHECK(L, "return json.encode({x = {1, 2}}) == '{\"x\":[1,2]}'");
    LCHECK(L, "return json.encode() == 'null'");
}

static void test_encode_errors(lua_State *L)
{
    CHECK_STR(enc(L, "0/0"), "ERR: value: cannot encode NaN");
    CHECK_STR(enc(L, "{a = {b = {0/0}}}"), "ERR: value.a.b[1]: cannot encode NaN");
    CHECK_STR(enc(L, "{x = 1/0}"), "ERR: value.x: cannot encode inf");
    CHECK_STR(enc(L, "{1, 2, -1/0}"), "ERR: value[3]: cannot encode -inf");
    CHECK_STR(enc(L, "{filters = {{}, {value = 0/0}}}"), "ERR: value.filters[2].value: cannot encode NaN");
    CHECK_STR(enc(L, "{['odd key'] = {1, 0/0}}"), "ERR: value[\"odd key\"][2]: cannot encode NaN");
    CHECK_STR(enc(L, "{['2x'] = 0/0}"), "ERR: value[\"2x\"]: cannot encode NaN");
    CHECK_STR(enc(L, "(function() local t = {} t.self = t return t end)()"),
              "ERR: value.self: cannot encode a cycle (a table that contains itself)");
    CHECK_STR(enc(L, "(function() local t = {a = {}} t.a.b = {t} return t end)()"),
              "ERR: value.a.b[1]: cannot encode a cycle (a table that contains itself)");
    CHECK_STR(enc(L, "{1, a = 2}"), "ERR: value: cannot encode table with mixed keys");
    CHECK_STR(enc(L, "{x = {a = 1, [5] = 2}}"), "ERR: value.x: cannot encode table with mixed keys");
    CHECK_STR(enc(L, "{[1] = 1, [3] = 3}"),
              "ERR: value: cannot encode sparse array (2 values, largest index 3)");
    CHECK_STR(enc(L, "{[0] = 1}"), "ERR: value: cannot encode sparse array (index 0)");
    CHECK_STR(enc(L, "{[-1] = 1}"), "ERR: value: cannot encode sparse array (index -1)");
    CHECK_STR(enc(L, "{[true] = 1}"), "ERR: value: cannot encode table with boolean key");
    CHECK_STR(enc(L, "{[1.5] = 1}"), "ERR: value: cannot encode table with non-integer number key");
    CHECK_STR(enc(L, "{[{}] = 1}"), "ERR: value: cannot encode table with table key");
    CHECK_STR(enc(L, "json.object({1})"), "ERR: value: cannot encode object with number key");
    CHECK_STR(enc(L, "{f = print}"), "ERR: value.f: cannot encode function");
    CHECK_STR(enc(L, "{co = coroutine.create(print)}"), "ERR: value.co: cannot encode thread");
    CHECK_STR(enc(L, "{io.stdout}"), "ERR: value[1]: cannot encode userdata");
    CHECK_STR(enc(L, "{s = 'ok\\xff'}"), "ERR: value.s: invalid UTF-8 in string");
    CHECK_STR(enc(L, "{s = '\\xed\\xa0\\x80'}"), "ERR: value.s: invalid UTF-8 in string");
    CHECK_STR(enc(L, "{['\\xff'] = 1}"), "ERR: value: invalid UTF-8 in key");
    CHECK_STR(enc(L, "{a = {['b\\xc0'] = 1}}"), "ERR: value.a: invalid UTF-8 in key");
    /* 201 levels: the path is long; the message is at its end */
    {
        char err[4096];
        size_t len;
        push_expr(L, "(function() local t = {} local v = t for i = 1, 200 do v[1] = {} v = v[1] end return t end)()");
        CHECK(json_encode(L, -1, &len, err, sizeof err) == NULL);
        CHECK(strstr(err, "[1][1]: nesting deeper than 200 levels") != NULL);
        CHECK(strncmp(err, "value[1][1]", 11) == 0);
        /* a short err buffer is truncated, never overrun */
        CHECK(json_encode(L, -1, &len, err, 10) == NULL && strlen(err) == 9);
        CHECK(json_encode(L, -1, &len, NULL, 0) == NULL);
        lua_pop(L, 1);
    }
    /* from Lua: the message carries the module name and the path */
    LCHECK(L, "local ok, e = pcall(json.encode, {body = {x = 0/0}}) "
              "return not ok and e.kind == 'json' and e.message == 'json.encode: value.body.x: cannot encode NaN'");
    LCHECK(L, "local ok, e = pcall(json.encode, print) "
              "return not ok and e.kind == 'json' and e.message == 'json.encode: value: cannot encode function'");
}

static void test_metatables(lua_State *L)
{
    LCHECK(L, "return getmetatable(json.array()) == 'json.array' and "
              "getmetatable(json.object()) == 'json.object'");
    LCHECK(L, "local ok, e = pcall(setmetatable, json.decode('[]'), {}) "
              "return not ok and e:find('protected') ~= nil");
    LCHECK(L, "local ok, e = pcall(setmetatable, json.object(), nil) "
              "return not ok and e:find('protected') ~= nil");
    /* json.array returns its argument; can switch between our two kinds */
    LCHECK(L, "local t = {1} return json.array(t) == t");
    LCHECK(L, "local t = json.array() return json.encode(json.object(t)) == '{}'");
    /* a foreign metatable is never replaced */
    LCHECK(L, "local ok, e = pcall(json.array, setmetatable({}, {__metatable = 'mine'})) "
              "return not ok and e.kind == 'argument' and "
              "e.message:find('bad argument #1 to .* %(the table already has a metatable%)') ~= nil");
    LCHECK(L, "local ok, e = pcall(json.object, setmetatable({}, {})) "
              "return not ok and e.kind == 'argument' and "
              "e.message:find('(the table already has a metatable)', 1, true) ~= nil");
    LCHECK(L, "local ok, e = pcall(json.array, 42) "
              "return not ok and tostring(e):find('table expected, got number') ~= nil");
    /* the registry holds them; __name shows in tostring-like messages */
    lua_getfield(L, LUA_REGISTRYINDEX, "ecap.json.array");
    lua_getfield(L, LUA_REGISTRYINDEX, "ecap.json.object");
    CHECK(lua_istable(L, -2) && lua_istable(L, -1));
    lua_getfield(L, -2, "__name");
    CHECK(lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), "ecap.json.array") == 0);
    lua_pop(L, 3);
    /* from C */
    lua_newtable(L);
    json_mark_object(L, -1);
    {
        char err[64];
        size_t len;
        char *s = json_encode(L, -1, &len, err, sizeof err);
        CHECK(s != NULL && strcmp(s, "{}") == 0 && len == 2);
        json_free(L, s, len);
        json_mark_array(L, -1);
        s = json_encode(L, -1, &len, err, sizeof err);
        CHECK(s != NULL && strcmp(s, "[]") == 0);
        json_free(L, s, len);
    }
    lua_pop(L, 1);
    /* json.null is the cjson-compatible light userdata NULL */
    LCHECK(L, "return type(json.null) == 'userdata' and json.decode('null') == json.null");
}

/* Removes whitespace outside strings. */
static void compact(const char *in, char *o)
{
    int instr = 0;
    for (; *in; in++) {
        if (instr) {
            *o++ = *in;
            if (*in == '\\') *o++ = *++in;
            else if (*in == '"') instr = 0;
        } else if (*in == '"') {
            *o++ = *in;
            instr = 1;
        } else if (*in != ' ' && *in != '\n' && *in != '\t' && *in != '\r') {
            *o++ = *in;
        }
    }
    *o = '\0';
}

/* Replaces every occurrence of `from` by `to` (to no longer than from), in place. */
static void replace_all(char *s, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to);
    char *p;
    while ((p = strstr(s, from)) != NULL) {
        memcpy(p, to, tl);
        memmove(p + tl, p + fl, strlen(p + fl) + 1);
        s = p + tl;
    }
}

static void roundtrip_example(lua_State *L, const char *text)
{
    static char want[1 << 15];
    char err[256];
    size_t len, len2;
    char *s, *s2;
    CHECK(json_decode(L, text, strlen(text), err, sizeof err) == 0);
    s = json_encode(L, -1, &len, err, sizeof err);
    CHECK(s != NULL);
    if (s == NULL)
        return;
    /* the examples list keys alphabetically already: the encoding is the compacted text,
     * with the integral floats ("1.0") printed as integers */
    compact(text, want);
    replace_all(want, ":1.0", ":1");
    CHECK_STR(s, want);
    /* decoding the encoding gives the same encoding again */
    lua_pop(L, 1);
    CHECK(json_decode(L, s, len, err, sizeof err) == 0);
    s2 = json_encode(L, -1, &len2, err, sizeof err);
    CHECK(s2 != NULL && len2 == len && memcmp(s, s2, len) == 0);
    json_free(L, s2, len2);
    json_free(L, s, len);
    lua_pop(L, 1);
}

static void test_examples(lua_State *L)
{
    roundtrip_example(L, meter_response);
    roundtrip_example(L, esa_request);
    /* the decoded values are what a script expects */
    CHECK(json_decode(L, meter_response, strlen(meter_response), errbuf, sizeof errbuf) == 0);
    lua_setglobal(L, "v");
    LCHECK(L, "return math.type(v.meterId) == 'integer' and v.meterId == 1 and "
              "math.type(v.address.latitude) == 'float' and v.accounts[1].vendor.vendorId == 1 "
              "and getmetatable(v.properties) == 'json.object' and "
              "getmetatable(v.place.placeType.icon) == 'json.object' and v.active == false");
}

/* The buffer counts against the allocator; every path gives back what it took. */
static void test_memory(void)
{
    Mem m = {0, 0};
    lua_State *L = lua_newstate(counting_alloc, &m);
    size_t before, len;
    char err[128], *s;
    luaL_openlibs(L);
    luaL_requiref(L, "json", json_open, 1);
    lua_pop(L, 1);
    push_expr(L, "(function() local t = {} for i = 1, 1000 do t[i] = {name = 'meter ' .. i, "
                 "value = i * 1.5, tags = {'a', 'b'}} end return t end)()");
    lua_gc(L, LUA_GCCOLLECT, 0);
    lua_gc(L, LUA_GCSTOP, 0);
    before = m.inuse;
    s = json_encode(L, -1, &len, err, sizeof err);
    CHECK(s != NULL && len > 40000);
    CHECK(m.inuse >= before + len + 1);
    json_free(L, s, len);
    CHECK(m.inuse == before);
    /* a failing encode gives everything back too */
    lua_pushnumber(L, 0.0 / 0.0);
    lua_rawseti(L, -2, 1000);
    CHECK(json_encode(L, -1, &len, err, sizeof err) == NULL);
    CHECK(m.inuse == before);
    /* out of memory: reported, nothing leaked */
    lua_pushinteger(L, 1);
    lua_rawseti(L, -2, 1000);
    m.limit = m.inuse + 10000;
    CHECK(json_encode(L, -1, &len, err, sizeof err) == NULL);
    CHECK(strncmp(err, "value[", 6) == 0 && strstr(err, "]: out of memory") != NULL);
    CHECK(m.inuse == before);
    m.limit = 0;
    /* json.encode through a memory error in lua_pushlstring: the box frees the buffer */
    lua_setglobal(L, "big");
    lua_gc(L, LUA_GCRESTART, 0);
    lua_gc(L, LUA_GCCOLLECT, 0);
    before = m.inuse;
    m.limit = m.inuse + 80000;      /* room for the buffer but not also for its copy */
    CHECK(luaL_dostring(L, "return json.encode(big)") != LUA_OK);
    m.limit = 0;
    lua_pop(L, 1);
    lua_gc(L, LUA_GCCOLLECT, 0);
    lua_gc(L, LUA_GCCOLLECT, 0);
    CHECK(m.inuse <= before + 256);
    /* decode under a limit: the memory error propagates (a Lua error), the stack is
     * unwound by pcall, the state stays usable */
    {
        const char *code = "local s = json.encode(big) "
                           "return function() return json.decode(s) end";
        CHECK(luaL_dostring(L, code) == LUA_OK);
        lua_gc(L, LUA_GCCOLLECT, 0);
        m.limit = m.inuse + 50000;
        CHECK(lua_pcall(L, 0, 1, 0) == LUA_ERRMEM);
        m.limit = 0;
        lua_pop(L, 1);
        LCHECK(L, "return #json.decode(json.encode(big)) == 1000");
    }
    lua_close(L);
    CHECK(m.inuse == 0);
}

/* Objects too big to sort on the Lua stack fall back to pairs() order. */
static void test_huge_object(lua_State *L)
{
    LCHECK(L, "local t = {} for i = 1, 520000 do t['k' .. i] = i end "
              "local s = json.encode(t) local v = json.decode(s) "
              "local n = 0 for k, x in pairs(v) do n = n + 1 if t[k] ~= x then return false end end "
              "return n == 520000");
    /* nested values still encode after the fallback (the stack can still grow) */
    LCHECK(L, "local t = {} for i = 1, 210000 do t['k' .. i] = {i, {x = i}} end "
              "local v = json.decode(json.encode({a = t})).a "
              "local n = 0 for k, x in pairs(v) do n = n + 1 "
              "  if x[1] ~= t[k][1] or x[2].x ~= t[k][1] then return false end end "
              "return n == 210000");
}

/* A decimal comma locale must not leak into the JSON text. */
static void test_locale(lua_State *L)
{
    const char *names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8", NULL};
    int i;
    for (i = 0; names[i] != NULL; i++)
        if (setlocale(LC_NUMERIC, names[i]) != NULL)
            break;
    if (names[i] == NULL) {
        printf("(no decimal-comma locale installed: locale test skipped)\n");
        return;
    }
    CHECK_STR(enc(L, "{1.5, 0.1, 1e-7}"), "[1.5,0.1,1e-07]");
    LCHECK(L, "return json.decode('[1.5]')[1] == 3/2");
    setlocale(LC_NUMERIC, "C");
}

int main(void)
{
    lua_State *L = new_state();
    test_decode_numbers(L);
    test_decode_literals(L);
    test_decode_strings(L);
    test_decode_structures(L);
    test_decode_errors(L);
    test_decode_depth(L);
    test_encode_values(L);
    test_encode_tables(L);
    test_encode_errors(L);
    test_metatables(L);
    test_examples(L);
    test_huge_object(L);
    test_locale(L);
    CHECK(lua_gettop(L) == 0);
    lua_close(L);
    CHECK(mem.inuse == 0);
    test_memory();
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
