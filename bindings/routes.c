/* The route table, the one generic binding function, and route overrides from the config file.
 *
 * Every bound operation is one entry below: its Lua name, method, path template (placeholders
 * named as the seed's path parameters, which are also the leading Lua arguments), body schema
 * options schema and an optional cross-argument rule (a guard weighing body against options). A
 * sixth operation is one more entry plus its schema in an area file. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "bindings.h"
#include "net/call.h"
#include "route.h"
#include "schema.h"

static const struct route routes[] = {
    /* inferred route (ENDPOINTS.md): overridable from the config file */
    {"meter_groups.refresh", "POST", "/api/v3/meterGroup/{meterGroupId}/updateUserAutoGroup",
     {"meterGroupId"}, NULL, NULL, NULL},
    {"account_meters.edit", "PUT", "/api/v3/accountmeter/{accountMeterId}", {"accountMeterId"},
     &schema_account_meter_edit, &schema_account_meter_edit_options, NULL},
    /* inferred; empty filters = every meter: guarded (confirm = "all meters") */
    {"cost_avoidance.bulk_update", "PUT", "/api/v3/savings/settings", {NULL},
     &schema_bulk_cost_avoidance, &schema_bulk_cost_avoidance_options, bulk_cost_avoidance_guard},
    {"meters.apply_release", "POST", "/api/v202203/utilityPlatform/meter/{meterId}/release",
     {"meterId"}, &schema_data_access_release, NULL, NULL},
    /* inferred */
    {"meters.convert_to_esa_calculated", "POST", "/api/v202510/meter/{meterId}/esaCalculatedMeter",
     {"meterId"}, &schema_esa_channel_create, NULL, NULL},
};

#define N_ROUTES ((int)(sizeof routes / sizeof routes[0]))

/* Overrides are copied into static storage: the config strings they come from are freed long
 * before the last call. Written only while the process starts (before any state exists). */
static struct {
    int set;
    char method[8];
    char path[ROUTE_PATH_MAX];
} overrides[N_ROUTES];

static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};

int route_find(const char *name)
{
    for (int i = 0; i < N_ROUTES; i++)
        if (strcmp(routes[i].name, name) == 0)
            return i;
    return -1;
}

const char *route_method(int i)
{
    return overrides[i].set ? overrides[i].method : routes[i].method;
}

const char *route_path(int i)
{
    return overrides[i].set ? overrides[i].path : routes[i].path;
}

static int n_params(const struct route *r)
{
    int n = 0;
    while (n < ROUTE_MAX_PARAMS && r->params[n])
        n++;
    return n;
}

static int param_index(const struct route *r, const char *name, size_t len)
{
    for (int k = 0; k < n_params(r); k++)
        if (strlen(r->params[k]) == len && memcmp(r->params[k], name, len) == 0)
            return k;
    return -1;
}

/* Substitutes the (validated, positive int32) ids into the path template and pushes it. */
static void push_path(lua_State *L, int i, const long long *ids)
{
    const struct route *r = &routes[i];
    char out[ROUTE_PATH_MAX + ROUTE_MAX_PARAMS * 12];
    size_t n = 0;
    for (const char *p = route_path(i); *p && n < sizeof out - 12;) {
        const char *end = *p == '{' ? strchr(p, '}') : NULL;
        int k = end ? param_index(r, p + 1, (size_t)(end - p - 1)) : -1;
        if (*p == '{' && k < 0) /* cannot happen: built-ins and overrides are checked */
            luaL_error(L, "route %s: bad placeholder in %s", r->name, route_path(i));
        if (k >= 0) {
            n += (size_t)snprintf(out + n, sizeof out - n, "%lld", ids[k]);
            p = end + 1;
        } else {
            out[n++] = *p++;
        }
    }
    lua_pushlstring(L, out, n);
}

/* Builds the query table from the validated options copy at opts: the fields marked .query,
 * as text ("true"/"false"), only those the script gave. Returns its index, or 0 if empty. */
static int push_query(lua_State *L, const struct schema *s, int opts)
{
    int any = 0;
    lua_newtable(L);
    for (size_t k = 0; k < s->n_fields; k++) {
        if (!s->fields[k].query)
            continue;
        switch (schema_get(L, opts, s->fields[k].name)) {
        case LUA_TBOOLEAN:
            lua_pushstring(L, lua_toboolean(L, -1) ? "true" : "false");
            break;
        case LUA_TNUMBER:
        case LUA_TSTRING:
            luaL_tolstring(L, -1, NULL); /* our copy: an integer or a string, no metamethod */
            break;
        default:
            lua_pop(L, 1);
            continue;
        }
        lua_setfield(L, -3, s->fields[k].name);
        lua_pop(L, 1);
        any = 1;
    }
    return any ? lua_gettop(L) : 0;
}

void route_prepare(lua_State *L, int i, struct call *c)
{
    const struct route *r = &routes[i];
    int np = n_params(r), arg = 1, top = lua_gettop(L);
    int nargs = np + (r->body != NULL) + (r->options != NULL), opts_idx = 0;
    long long ids[ROUTE_MAX_PARAMS];

    memset(c, 0, sizeof *c);
    for (int k = nargs + 1; k <= top; k++) {
        if (!lua_isnil(L, k)) {
            struct vctx v = {.operation = r->name, .top = r->name};
            schema_fail(L, &v, NULL, "arguments", k, "%s takes at most %d argument%s (got %s as argument %d)",
                        r->name, nargs, nargs == 1 ? "" : "s", schema_show(L, k), k);
        }
    }
    lua_settop(L, nargs > top ? nargs : top); /* absent arguments are nil slots */
    for (int k = 0; k < np; k++, arg++) {
        const struct field id = {.name = r->params[k], SCHEMA_INT32_ID, .presence = SP_REQUIRED};
        schema_check(L, arg, &id, r->name);
        ids[k] = (long long)lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    if (r->body) {
        schema_validate(L, arg++, r->body, r->name);
        c->body = lua_gettop(L);
    }
    if (r->options) {
        const struct field opts = {.name = "options", .type = ST_OBJECT, .presence = SP_OPTIONAL,
                                   .no_null = 1, .schema = r->options};
        schema_check(L, arg++, &opts, r->name);
        opts_idx = lua_isnil(L, -1) ? 0 : lua_gettop(L);
        c->query = opts_idx ? push_query(L, r->options, opts_idx) : 0;
    }
    if (r->rule) {
        struct vctx v = {.operation = r->name, .top = "body"};
        r->rule(L, c->body, opts_idx, &v);
    }
    push_path(L, i, ids);
    c->path = lua_tostring(L, -1); /* stays on the stack until ecap_call copies it */
    c->method = route_method(i);
}

/* The one binding function; upvalue 1 is the route index. */
static int binding_call(lua_State *L)
{
    struct call c;
    route_prepare(L, (int)lua_tointeger(L, lua_upvalueindex(1)), &c);
    return ecap_call(L, &c); /* may yield: nothing in C locals is used after this */
}

void bindings_register(lua_State *L, int ecap_idx)
{
    ecap_idx = lua_absindex(L, ecap_idx);
    for (int i = 0; i < N_ROUTES; i++) {
        const char *dot = strchr(routes[i].name, '.');
        lua_pushlstring(L, routes[i].name, (size_t)(dot - routes[i].name));
        /* other modules add to these tables too (cost_avoidance.wait): create only if absent */
        if (lua_getfield(L, ecap_idx, lua_tostring(L, -1)) != LUA_TTABLE) {
            lua_pop(L, 1);
            lua_newtable(L);
            lua_pushvalue(L, -1);
            lua_setfield(L, ecap_idx, lua_tostring(L, -3));
        }
        lua_pushinteger(L, i);
        lua_pushcclosure(L, binding_call, 1);
        lua_setfield(L, -2, dot + 1);
        lua_pop(L, 2);
    }
}

/* Checks the placeholders of path against the route's path parameters: each exactly once. */
static int check_placeholders(const struct route *r, const char *path, char *err, size_t errlen)
{
    int seen[ROUTE_MAX_PARAMS] = {0}, np = n_params(r);
    for (const char *p = path; *p; p++) {
        const char *end;
        int k;
        if (*p == '}') {
            snprintf(err, errlen, "route %s: unbalanced '}' in %s", r->name, path);
            return -1;
        }
        if (*p != '{')
            continue;
        end = strchr(p + 1, '}');
        if (!end || memchr(p + 1, '{', (size_t)(end - p - 1))) {
            snprintf(err, errlen, "route %s: unbalanced '{' in %s", r->name, path);
            return -1;
        }
        k = param_index(r, p + 1, (size_t)(end - p - 1));
        if (k < 0 || seen[k]++) {
            snprintf(err, errlen, "route %s: placeholder %.*s %s", r->name, (int)(end - p + 1), p,
                     k < 0 ? "is not a path parameter of this operation" : "appears twice");
            goto params;
        }
        p = end;
    }
    for (int k = 0; k < np; k++) {
        if (!seen[k]) {
            snprintf(err, errlen, "route %s: path lacks {%s}", r->name, r->params[k]);
            goto params;
        }
    }
    return 0;
params: {
        size_t n = strlen(err);
        n += (size_t)snprintf(err + n, errlen > n ? errlen - n : 0, " (placeholders must be:");
        for (int k = 0; k < np && n < errlen; k++)
            n += (size_t)snprintf(err + n, errlen - n, " {%s}", r->params[k]);
        if (n < errlen)
            snprintf(err + n, errlen - n, "%s)", np ? "" : " none");
    }
    return -1;
}

int bindings_route_override(const char *name, const char *spec, char *err, size_t errlen)
{
    int i = route_find(name), m;
    const struct route *r;
    const char *p = spec, *mend, *path, *pend;
    size_t mlen, plen;

    if (i < 0) {
        size_t n = (size_t)snprintf(err, errlen, "unknown operation \"%s\" (known:", name);
        for (int k = 0; k < N_ROUTES && n < errlen; k++)
            n += (size_t)snprintf(err + n, errlen - n, " %s", routes[k].name);
        if (n < errlen)
            snprintf(err + n, errlen - n, ")");
        return -1;
    }
    r = &routes[i];
    while (isspace((unsigned char)*p))
        p++;
    for (mend = p; *mend && !isspace((unsigned char)*mend); mend++)
        ;
    mlen = (size_t)(mend - p);
    for (m = 0; m < (int)(sizeof methods / sizeof methods[0]); m++)
        if (strlen(methods[m]) == mlen && strncmp(methods[m], p, mlen) == 0)
            break;
    if (m == (int)(sizeof methods / sizeof methods[0])) {
        snprintf(err, errlen, "route %s: bad method \"%.*s\" (one of GET, POST, PUT, PATCH, DELETE, "
                 "then the path: \"POST /api/...\")", name, (int)(mlen > 20 ? 20 : mlen), p);
        return -1;
    }
    for (path = mend; isspace((unsigned char)*path); path++)
        ;
    for (pend = path + strlen(path); pend > path && isspace((unsigned char)pend[-1]); pend--)
        ;
    plen = (size_t)(pend - path);
    if (plen < 5 || strncmp(path, "/api/", 5) != 0) {
        snprintf(err, errlen, "route %s: the path must start with /api/ (got \"%.*s\")", name,
                 (int)(plen > 60 ? 60 : plen), path);
        return -1;
    }
    if (plen >= ROUTE_PATH_MAX) {
        snprintf(err, errlen, "route %s: path longer than %d bytes", name, ROUTE_PATH_MAX - 1);
        return -1;
    }
    for (size_t k = 0; k < plen; k++) {
        unsigned char ch = (unsigned char)path[k];
        /* the path goes into the URL as written: no spaces, query, fragment or escapes */
        if (ch <= 0x20 || ch >= 0x7f || strchr("?#%\"<>\\^`|", ch)) {
            snprintf(err, errlen, "route %s: character '%c' not allowed in a path (got \"%.*s\")",
                     name, ch > 0x20 && ch < 0x7f ? ch : '?', (int)(plen > 60 ? 60 : plen), path);
            return -1;
        }
    }
    {
        char tmp[ROUTE_PATH_MAX];
        memcpy(tmp, path, plen);
        tmp[plen] = '\0';
        const char *problem = call_path_problem(tmp);
        if (problem) {
            snprintf(err, errlen, "route %s: path \"%.*s\" %s", name, (int)(plen > 60 ? 60 : plen), path,
                     problem);
            return -1;
        }
        if (check_placeholders(r, tmp, err, errlen))
            return -1;
        memcpy(overrides[i].path, tmp, plen + 1);
    }
    memcpy(overrides[i].method, methods[m], strlen(methods[m]) + 1);
    overrides[i].set = 1;
    return 0;
}

void bindings_routes_reset(void)
{
    memset(overrides, 0, sizeof overrides);
}
