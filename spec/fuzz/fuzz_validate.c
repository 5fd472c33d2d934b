/* libFuzzer target: the bindings' validator (bindings/validate.c) and the route argument checks
 * (bindings/routes.c), in a plain lua_State as spec/c/test_validate.c drives them.
 *
 * The input is decoded as JSON (inputs that do not decode are skipped). Then, each under
 * lua_pcall:
 *   - schema_validate of the value as a body, for every body and options schema of the
 *     bindings (bindings/schema.h);
 *   - route_prepare of every route, with the value as the arguments: a JSON array is spread
 *     into the arguments (ids, body, options), anything else is the one argument.
 * Any outcome but a crash or a sanitizer report is fine, with two checks on the way:
 *   - an accepted body (the validated copy) must re-encode with json_encode;
 *   - the value given to the validator must be left as it was (schema.h: "The script's own
 *     table is never changed"): its encoding before and after must be the same bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "net/call.h"
#include "lib/errors.h"
#include "lib/json.h"
#include "bindings/route.h"
#include "bindings/schema.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static lua_State *L;

static const struct schema *const schemas[] = {
    &schema_account_meter_edit,  &schema_account_meter_edit_options,
    &schema_bulk_cost_avoidance, &schema_bulk_cost_avoidance_options,
    &schema_data_access_release, &schema_esa_channel_create,
};

/* Every route of the exported table, built-in paths, no consent: the guards are live. */
static struct routes routes;
static const struct consent consent;
static const struct bindings_env env = {NULL, &routes, &consent, NULL};

static void fail(const char *what, const char *detail, const uint8_t *data, size_t size)
{
    fprintf(stderr, "fuzz_validate: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    fprintf(stderr, "input (%zu bytes): %.*s\n", size, (int)(size > 2000 ? 2000 : size),
            (const char *)data);
    abort();
}

/* validate(value) with upvalue 1 = the schema (light userdata): pushes the copy. */
static int l_validate(lua_State *S)
{
    const struct schema *s = (const struct schema *)lua_touserdata(S, lua_upvalueindex(1));
    lua_settop(S, 1);
    schema_validate(S, 1, s, "fuzz.op");
    return 1;
}

/* prep(route index, args...): route_prepare; returns the body copy (or nil), the path and the
 * query table (or nil). */
static int l_prep(lua_State *S)
{
    struct call c;
    int i = (int)lua_tointeger(S, lua_upvalueindex(1));
    route_prepare(S, &env, i, &c);
    if (c.body)
        lua_pushvalue(S, c.body);
    else
        lua_pushnil(S);
    lua_pushstring(S, c.path);
    if (c.query)
        lua_pushvalue(S, c.query);
    else
        lua_pushnil(S);
    return 3;
}

/* A fresh state per input: nothing carries over between inputs (a crash reproduces from its
 * input alone), and lua_close frees all an input allocated, so libFuzzer's leak check (which
 * runs after any input whose mallocs and frees do not balance) stays quiet and fast unless
 * something really leaks. */
static void new_state(void)
{
    L = luaL_newstate();
    if (!L)
        abort();
    luaL_openlibs(L);
    err_init(L);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[256];
    if (routes_init(&routes, NULL, 0, err, sizeof err)) {
        fprintf(stderr, "fuzz_validate: %s\n", err);
        abort();
    }
    return 0;
}

/* Encodes the value at idx (NULL when it does not encode: the validator's input may hold
 * anything JSON can; encoding failures of the input itself are not findings). */
static char *encode(int idx, size_t *len)
{
    char err[256];
    return json_encode(L, idx, len, err, sizeof err);
}

/* Checks that the accepted copy at idx re-encodes. */
static void check_copy(int idx, const char *who, const uint8_t *data, size_t size)
{
    char err[256];
    size_t len;
    char *buf;
    if (lua_isnil(L, idx))
        return;
    buf = json_encode(L, idx, &len, err, sizeof err);
    if (!buf)
        fail(lua_pushfstring(L, "%s accepted a body that does not re-encode", who), err, data,
             size);
    json_free(L, buf, len);
}

/* The error of a failed call must be a validation error table (or, in the worst case, a memory
 * error); it is only turned into text here, which must not crash either. */
static void look_at_error(int idx)
{
    err_tostring(L, idx);
    lua_pop(L, 1);
}

static void one_input(const uint8_t *data, size_t size)
{
    char err[256];
    char *before, *after;
    size_t blen = 0, alen = 0;
    int v, base;

    lua_settop(L, 0);
    if (json_decode(L, (const char *)data, size, err, sizeof err) != 0)
        return;
    v = lua_gettop(L);
    before = encode(v, &blen);
    if (!before)
        fail("a decoded value does not encode", NULL, data, size);

    for (size_t i = 0; i < sizeof schemas / sizeof schemas[0]; i++) {
        base = lua_gettop(L);
        lua_pushlightuserdata(L, (void *)schemas[i]);
        lua_pushcclosure(L, l_validate, 1);
        lua_pushvalue(L, v);
        if (lua_pcall(L, 1, 1, 0) == LUA_OK)
            check_copy(base + 1, schemas[i]->name, data, size);
        else
            look_at_error(base + 1);
        lua_settop(L, base);
    }

    for (int i = 0; i < route_count; i++) {
        int nargs = 1;
        base = lua_gettop(L);
        lua_pushinteger(L, i);
        lua_pushcclosure(L, l_prep, 1);
        if (lua_type(L, v) == LUA_TTABLE && lua_rawlen(L, v) > 0 && lua_rawlen(L, v) <= 8) {
            lua_Integer n = (lua_Integer)lua_rawlen(L, v);
            for (lua_Integer k = 1; k <= n; k++)
                lua_rawgeti(L, v, k);
            nargs = (int)n;
        } else {
            lua_pushvalue(L, v);
        }
        if (lua_pcall(L, nargs, 3, 0) == LUA_OK) {
            check_copy(base + 1, route_table[i].name, data, size);
            if (lua_type(L, base + 2) != LUA_TSTRING
                || strncmp(lua_tostring(L, base + 2), "/api/", 5) != 0)
                fail(lua_pushfstring(L, "%s: path does not start with /api/", route_table[i].name),
                     lua_tostring(L, base + 2), data, size);
        } else {
            look_at_error(base + 1);
        }
        lua_settop(L, base);
    }

    after = encode(v, &alen);
    if (!after || alen != blen || memcmp(before, after, blen) != 0)
        fail("the validator changed its input", after, data, size);
    json_free(L, before, blen);
    json_free(L, after, alen);
    lua_settop(L, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    new_state();
    one_input(data, size);
    lua_close(L);
    L = NULL;
    return 0;
}
