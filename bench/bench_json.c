/* Benchmark of the JSON codec (host/lib/json.c) against Debian's lua-cjson 2.1.0.
 *
 * Generates a deterministic ~10 MB JSON array of meter objects shaped like EnergyCAP's
 * MeterResponse (nested objects, strings, integers, floats, nulls, booleans, small arrays,
 * a few escapes and non-ASCII text), then times, best of 5 (CLOCK_MONOTONIC):
 *   decode: cjson.decode; cjson.decode + a normalising pass in Lua; cjson.decode + the same
 *           pass in C (integral floats -> integers); our json_decode
 *   encode: cjson.encode; json.encode (ours, to a Lua string); json_encode (ours, C buffer)
 * of the same tree. Ratios are against raw cjson.decode / cjson.encode.
 *
 * Build (standalone):
 *   gcc -std=c11 -O2 -Ihost -I/usr/include/lua5.4 host/json*.c bench/bench_json.c \
 *       -llua5.4-cjson -llua5.4 -lm -o /tmp/bench_json && /tmp/bench_json
 * or with CMake: make bench_json. Optional arguments: target size in MB (default 10), number
 * of runs (default 5). */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>
#include <lua-cjson.h>

#include "lib/json.h"

#define RUNS 5

/* ---- document generator --------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
} Buf;

static void die(const char *msg)
{
    fprintf(stderr, "bench_json: %s\n", msg);
    exit(1);
}

#if defined(__GNUC__)
static void bput(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#endif

static void bput(Buf *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        int n;
        va_start(ap, fmt);
        n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            die("vsnprintf failed");
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = b->cap * 2 + (size_t)n + 1;
        b->p = realloc(b->p, b->cap);
        if (b->p == NULL)
            die("out of memory");
    }
}

static uint64_t rng = 0x9E3779B97F4A7C15u;

static uint32_t rnd(uint32_t n)
{
    rng = rng * 6364136223846793005u + 1442695040888963407u;
    return (uint32_t)(rng >> 33) % n;
}

static const char *bool_s(void) { return rnd(2) ? "true" : "false"; }

static const char *cities[] = {"State College", "Pittsburgh", "Philadelphia", "Z\303\274rich",
                               "Montr\303\251al", "Harrisburg"};
static const char *commodities[] = {"ELECTRIC", "NATURALGAS", "WATER", "SEWER", "STEAM", "OIL"};

static void gen_user(Buf *b, const char *name)
{
    uint32_t id = rnd(500) + 1;
    bput(b, "\"%s\":{\"fullName\":\"User %u\",\"userCode\":\"U%05u\",\"userId\":%u}", name, id,
         id, id);
}

static void gen_meter(Buf *b, unsigned i)
{
    unsigned a, nacc = 1 + rnd(2), nch = rnd(4);
    bput(b, "{\"accounts\":[");
    for (a = 0; a < nacc; a++) {
        uint32_t acc = rnd(100000);
        bput(b, "%s{\"accountCode\":\"AC-%06u\",\"accountGeneralLedger\":{\"generalLedgerCode\":"
                "\"GL-%u\",\"generalLedgerId\":%u,\"generalLedgerInfo\":\"General ledger %u\"},"
                "\"accountId\":%u,\"accountInfo\":\"Account %u\",\"accountMeterId\":%u,"
                "\"active\":%s,\"dataAccessReleaseId\":null,\"endDate\":%s,"
                "\"hasCalculatedMeter\":%s,\"hasSplitChildMeter\":false,"
                "\"hasSplitParentMeter\":false,\"hasSubAccount\":false,\"isSubAccount\":false,"
                "\"meterGeneralLedger\":null,\"startDate\":\"2019-%02u-01\",\"vendor\":"
                "{\"vendorCode\":\"V%04u\",\"vendorId\":%u,\"vendorInfo\":\"Vendor %u Inc.\"},"
                "\"vendorType\":{\"vendorTypeCode\":\"UTIL\",\"vendorTypeId\":1}}",
             a ? "," : "", acc, acc % 97, acc % 97, acc % 97, acc, acc, i * 3 + a, bool_s(),
             rnd(3) ? "null" : "\"2026-03-30\"", bool_s(), 1 + rnd(12), acc % 900, acc % 900,
             acc % 900);
    }
    bput(b, "],\"active\":%s,\"address\":{\"addressTypeId\":%u,\"city\":\"%s\",\"country\":\"US\","
            "\"latitude\":%.6f,\"line1\":\"%u Main St\",\"line2\":%s,\"line3\":null,"
            "\"longitude\":%.6f,\"postalCode\":\"%05u\",\"remitTo\":null,\"state\":\"PA\"},",
         bool_s(), 1 + rnd(3), cities[rnd(6)], 39.0 + rnd(1000000) / 1e6 * 3,
         rnd(9000) + 100, rnd(2) ? "null" : "\"Suite 200\"", -80.0 + rnd(1000000) / 1e6 * 5,
         rnd(99999));
    if (rnd(10) == 0)
        bput(b, "\"billEntryNote\":\"Read by \\\"J. Smith\\\"\\nEstimated \\u2013 see memo\",");
    else
        bput(b, "\"billEntryNote\":%s,", rnd(2) ? "null" : "\"Regular read\"");
    bput(b, "\"channels\":[");
    for (a = 0; a < nch; a++)
        bput(b, "%s{\"channelCode\":\"CH%u-%u\",\"channelId\":%u,\"interval\":%u,"
                "\"multiplier\":%s}",
             a ? "," : "", i, a, i * 4 + a, 15u * (1 + rnd(4)),
             rnd(2) ? "1.0" : "0.25");
    {
        unsigned c = rnd(6);
        bput(b, "],\"commodity\":{\"commodityCode\":\"%s\",\"commodityIcon\":{\"code\":\"%s\","
                "\"color\":\"#%06x\"},\"commodityId\":%u,\"commodityInfo\":\"%s\"},",
             commodities[c], commodities[c], rnd(0xFFFFFF), c + 1, commodities[c]);
    }
    gen_user(b, "createdBy");
    bput(b, ",\"createdDate\":\"2024-%02u-%02uT%02u:%02u:00\",\"demandUnit\":{\"unitCode\":\"KW\","
            "\"unitId\":%u,\"unitInfo\":\"Kilowatt\"},\"emissionSource\":{\"emissionSourceId\":%u},"
            "\"includeInCostAvoidance\":%s,\"includeInEnergyStar\":%s,\"isCalculatedMeter\":false,"
            "\"isEsaCalculatedMeter\":false,\"isSplitChildMeter\":false,"
            "\"isSplitParentMeter\":false,\"lastBillCost\":%u.%02u,\"lastBillUse\":%u,"
            "\"meterCode\":\"M-%07u\",\"meterDescription\":\"Main meter for building %u\","
            "\"meterId\":%u,\"meterInfo\":\"Meter %u\",\"meterTimeZone\":{\"timeZoneCode\":"
            "\"EST\",\"timeZoneId\":7,\"timeZoneInfo\":\"(UTC-05:00) Eastern Time\"},"
            "\"meterType\":{\"meterTypeCode\":\"UTIL\",\"meterTypeId\":1,\"meterTypeInfo\":"
            "\"Utility\"},",
         1 + rnd(12), 1 + rnd(28), rnd(24), rnd(60), 1 + rnd(5), rnd(40), bool_s(), bool_s(),
         rnd(100000), rnd(100), rnd(1000000), i, i / 3, i, i);
    gen_user(b, "modifiedBy");
    bput(b, ",\"modifiedDate\":\"2026-03-%02u\",\"place\":{\"isDataRolledUp\":%s,\"placeCode\":"
            "\"B%05u\",\"placeId\":%u,\"placeInfo\":\"Building %u\",\"placeType\":{\"icon\":{},"
            "\"isSystemPlaceType\":false,\"placeEntityType\":{},\"placeTypeCode\":\"BLDG\","
            "\"placeTypeId\":2,\"placeTypeInfo\":\"Building\",\"structure\":true}},"
            "\"primaryUse\":%s,\"properties\":{},\"route\":%s,\"sentinelStatus\":\"%s\","
            "\"serialNumber\":\"SN%08u\",\"serialNumberHistory\":[],\"tags\":[\"%s\",\"%s\"],"
            "\"useUnit\":{\"unitCode\":\"KWH\",\"unitId\":3,\"unitInfo\":\"Kilowatt-hour\"},"
            "\"watticsDataPoint\":null,\"weatherSensitivity\":%.4f}",
         1 + rnd(28), bool_s(), i / 3, i / 3, i / 3,
         rnd(2) ? "null" : "{\"primaryUseCode\":\"OFFICE\",\"primaryUseId\":4,"
                           "\"primaryUseInfo\":\"Office\"}",
         rnd(2) ? "null" : "{\"routeCode\":\"R1\",\"routeId\":1,\"routeInfo\":\"Route 1\"}",
         rnd(4) ? "OK" : "Over budget", rnd(100000000), commodities[rnd(6)],
         rnd(2) ? "critical" : "tenant", rnd(10000) / 1e4);
}

static unsigned nmeters;

static Buf generate(size_t target)
{
    Buf b = {malloc(1 << 20), 0, 1 << 20};
    unsigned i;
    if (b.p == NULL)
        die("out of memory");
    bput(&b, "[");
    for (i = 0; b.len < target; i++) {
        if (i > 0)
            bput(&b, ",");
        gen_meter(&b, i + 1);
    }
    bput(&b, "]");
    nmeters = i;
    return b;
}

/* ---- timing --------------------------------------------------------------------------- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Normalising pass in C: every integral float (within int64) becomes an integer. */
static void normalise(lua_State *L, int t)
{
    lua_Integer n;
    int isint;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        if (lua_type(L, -1) == LUA_TTABLE) {
            normalise(L, lua_gettop(L));
        } else if (lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1)) {
            n = lua_tointegerx(L, -1, &isint);
            if (isint) {
                lua_pushvalue(L, -2);
                lua_pushinteger(L, n);
                lua_rawset(L, t);       /* an existing key: allowed during lua_next */
            }
        }
        lua_pop(L, 1);
    }
}

static const char *lua_normaliser =
    "local mtype, tointeger, next = math.type, math.tointeger, next\n"
    "local function norm(t)\n"
    "  for k, v in next, t do\n"
    "    local tv = type(v)\n"
    "    if tv == 'table' then norm(v)\n"
    "    elseif tv == 'number' and mtype(v) == 'float' then\n"
    "      local i = tointeger(v)\n"
    "      if i then t[k] = i end\n"
    "    end\n"
    "  end\n"
    "  return t\n"
    "end\n"
    "return norm\n";

enum { CJSON_RAW, CJSON_LUA_NORM, CJSON_C_NORM, OURS_DECODE, CJSON_ENCODE, OURS_ENCODE_LUA,
       OURS_ENCODE_C, NCASES };
static const char *names[NCASES] = {
    "decode: cjson.decode (raw, all floats)",
    "decode: cjson.decode + Lua normalise",
    "decode: cjson.decode + C normalise",
    "decode: json_decode (ours)",
    "encode: cjson.encode",
    "encode: json.encode (ours, Lua string)",
    "encode: json_encode (ours, C buffer)",
};

/* Runs one case once; the globals `cjson_*`, `json_encode`, `norm`, `text`, `tree` are set
 * up. With gc 0 the collector is stopped while the clock runs (the codec's own cost); with
 * gc 1 it runs as it would in production (and adds noise). */
static double run_case(lua_State *L, int c, int gc, const char *text, size_t len)
{
    char err[256];
    double t0, t1;
    size_t olen;
    char *out;
    lua_settop(L, 0);
    lua_gc(L, LUA_GCCOLLECT, 0);
    if (!gc)
        lua_gc(L, LUA_GCSTOP, 0);
    switch (c) {
    case CJSON_RAW:
    case CJSON_LUA_NORM:
    case CJSON_C_NORM:
        lua_getglobal(L, "cjson_decode");
        lua_getglobal(L, "text");
        lua_getglobal(L, "norm");
        t0 = now_ms();
        lua_pushvalue(L, 1);
        lua_pushvalue(L, 2);
        lua_call(L, 1, 1);
        if (c == CJSON_LUA_NORM) {
            lua_pushvalue(L, 3);
            lua_insert(L, -2);
            lua_call(L, 1, 1);
        } else if (c == CJSON_C_NORM) {
            normalise(L, lua_gettop(L));
        }
        t1 = now_ms();
        break;
    case OURS_DECODE:
        t0 = now_ms();
        if (json_decode(L, text, len, err, sizeof err) != 0)
            die(err);
        t1 = now_ms();
        break;
    case CJSON_ENCODE:
    case OURS_ENCODE_LUA:
        lua_getglobal(L, c == CJSON_ENCODE ? "cjson_encode" : "json_encode");
        lua_getglobal(L, "tree");
        t0 = now_ms();
        lua_call(L, 1, 1);
        t1 = now_ms();
        break;
    default:
        lua_getglobal(L, "tree");
        t0 = now_ms();
        out = json_encode(L, 1, &olen, err, sizeof err);
        if (out == NULL)
            die(err);
        json_free(L, out, olen);
        t1 = now_ms();
        break;
    }
    lua_settop(L, 0);
    lua_gc(L, LUA_GCRESTART, 0);
    return t1 - t0;
}

int main(int argc, char **argv)
{
    size_t target = (size_t)(argc > 1 ? atof(argv[1]) : 10.0) * 1000000;
    Buf doc = generate(target);
    lua_State *L = luaL_newstate();
    double best[2][NCASES];
    int c, r, gc, runs = argc > 2 ? atoi(argv[2]) : RUNS;
    char err[256];
    if (L == NULL)
        die("cannot create a Lua state");
    luaL_openlibs(L);
    luaL_requiref(L, "cjson", luaopen_cjson, 0);
    lua_getfield(L, -1, "decode");
    lua_setglobal(L, "cjson_decode");
    lua_getfield(L, -1, "encode");
    lua_setglobal(L, "cjson_encode");
    lua_pop(L, 1);
    luaL_requiref(L, "json", json_open, 0);
    lua_getfield(L, -1, "encode");
    lua_setglobal(L, "json_encode");
    lua_pop(L, 1);
    if (luaL_loadstring(L, lua_normaliser) != LUA_OK)
        die(lua_tostring(L, -1));
    lua_call(L, 0, 1);
    lua_setglobal(L, "norm");
    lua_pushlstring(L, doc.p, doc.len);
    lua_setglobal(L, "text");
    if (json_decode(L, doc.p, doc.len, err, sizeof err) != 0)
        die(err);
    lua_setglobal(L, "tree");

    for (gc = 0; gc < 2; gc++)
        for (c = 0; c < NCASES; c++)
            best[gc][c] = 1e300;
    /* interleaved, so that a burst of load on the machine hits every case alike */
    for (r = 0; r < runs; r++) {
        for (gc = 0; gc < 2; gc++) {
            for (c = 0; c < NCASES; c++) {
                double t = run_case(L, c, gc, doc.p, doc.len);
                if (t < best[gc][c])
                    best[gc][c] = t;
            }
        }
    }
    printf("document: %.1f MB, %u meters, %s, lua-cjson 2.1.0, best of %d\n", doc.len / 1e6,
           nmeters, LUA_RELEASE, runs);
    printf("%-40s %9s %7s %11s %7s\n", "case", "GC off ms", "ratio", "GC on ms", "ratio");
    for (c = 0; c < NCASES; c++) {
        int base = c < CJSON_ENCODE ? CJSON_RAW : CJSON_ENCODE;
        printf("%-40s %9.1f %6.2fx %11.1f %6.2fx\n", names[c], best[0][c],
               best[0][c] / best[0][base], best[1][c], best[1][c] / best[1][base]);
    }
    lua_close(L);
    free(doc.p);
    return 0;
}
