/* The route table, the one generic binding function, and a run's routes (the table with the
 * config file's overrides applied).
 *
 * Every bound operation is one entry below: its Lua name, method, path template (placeholders
 * named as the seed's path parameters, which are also the leading Lua arguments), body schema,
 * options schema, destructive-operation guard, a one-line description and the provenance of
 * its route (docs/api.md). A sixth operation is one more entry plus its schema in an area
 * file; docs/bindings.md "Adding an operation" lists the other steps. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <lauxlib.h>

#include "bindings.h"
#include "net/call.h"
#include "route.h"
#include "schema.h"

const struct route route_table[] = {
    {
        .name = "meter_groups.refresh",
        .method = "POST",
        .path = "/api/v3/meterGroup/{meterGroupId}/updateUserAutoGroup",
        .params = {"meterGroupId"},
        .description = "refresh the membership of one user-defined auto meter group",
        .provenance = ROUTE_INFERRED,
    },
    {
        .name = "account_meters.edit",
        .method = "PUT",
        .path = "/api/v3/accountmeter/{accountMeterId}",
        .params = {"accountMeterId"},
        .body = &schema_account_meter_edit,
        .options = &schema_account_meter_edit_options,
        .guard = &guard_delete_bills,
        .preview = 1,
        .description = "edit an account-meter relationship (deleteBills=true deletes whole bills)",
        .provenance = ROUTE_CONFIRMED,
    },
    {
        .name = "cost_avoidance.bulk_update",
        .method = "PUT",
        .path = "/api/v3/savings/settings",
        .body = &schema_bulk_cost_avoidance,
        .options = &schema_bulk_cost_avoidance_options,
        .guard = &guard_all_meters,
        .preview = 1,
        .description = "mass update the cost-avoidance settings of the meters the filters match (a task)",
        .provenance = ROUTE_INFERRED,
    },
    {
        .name = "cost_avoidance.count",
        .method = "POST",
        .path = "/api/v3/savings/meter/count",
        .body_value = &field_filter_list,
        .options = &schema_meter_count_options,
        .reads = 1,
        .description = "count the meters a filter list matches (the preview of a bulk update)",
        .provenance = ROUTE_CONFIRMED,
    },
    {
        .name = "files.upload",
        .method = "POST",
        .path = "/api/v202105/fileStore/fileDataType/{fileDataTypeId}/upload",
        .params = {"fileDataTypeId"},
        .file = 1,
        .options = &schema_upload_options,
        .description = "upload a file to the file store (multipart); returns the reference a release takes",
        .provenance = ROUTE_CONFIRMED,
    },
    {
        .name = "meters.apply_release",
        .method = "POST",
        .path = "/api/v202203/utilityPlatform/meter/{meterId}/release",
        .params = {"meterId"},
        .body = &schema_data_access_release,
        .description = "apply a data-access release to a meter",
        .provenance = ROUTE_CONFIRMED,
    },
    {
        .name = "meters.convert_to_esa_calculated",
        .method = "POST",
        .path = "/api/v202510/meter/{meterId}/esaCalculatedMeter",
        .params = {"meterId"},
        .body = &schema_esa_channel_create,
        .description = "convert a meter to an ESA calculated meter with a formula channel",
        .provenance = ROUTE_INFERRED,
    },
    {
        .name = "account_meters.get",
        .method = "GET",
        .path = "/api/v3/accountmeter/{accountMeterId}",
        .params = {"accountMeterId"},
        .description = "read one account-meter relationship (the deleteBills preview reads it)",
        .provenance = ROUTE_INFERRED,
    },
};

#define N_ROUTES ((int)(sizeof route_table / sizeof route_table[0]))
const int route_count = N_ROUTES;
_Static_assert(sizeof route_table / sizeof route_table[0] <= ROUTES_MAX, "ROUTES_MAX too small");

static const char *const methods[] = {"GET", "POST", "PUT", "PATCH", "DELETE"};

int route_find(const char *name)
{
    for (int i = 0; i < N_ROUTES; i++)
        if (strcmp(route_table[i].name, name) == 0)
            return i;
    return -1;
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
static void push_path(lua_State *L, const struct route *r, const char *tmpl, const long long *ids)
{
    char out[ROUTE_PATH_MAX + ROUTE_MAX_PARAMS * 12];
    size_t n = 0;
    for (const char *p = tmpl; *p && n < sizeof out - 12;) {
        const char *end = *p == '{' ? strchr(p, '}') : NULL;
        int k = end ? param_index(r, p + 1, (size_t)(end - p - 1)) : -1;
        if (*p == '{' && k < 0) /* cannot happen: built-ins and overrides are checked */
            luaL_error(L, "route %s: bad placeholder in %s", r->name, tmpl);
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

const char *route_prepare(lua_State *L, const struct bindings_env *env, int i, struct call *c)
{
    const struct route *r = &route_table[i];
    int np = n_params(r), arg = 1, top = lua_gettop(L);
    int nargs = np + (r->body || r->body_value || r->file) + (r->options != NULL), opts_idx = 0;
    int file_arg = 0;
    long long ids[ROUTE_MAX_PARAMS];
    const char *what = NULL;

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
    } else if (r->body_value) {
        schema_check(L, arg++, r->body_value, r->name);
        c->body = lua_gettop(L);
    } else if (r->file) {
        const struct field path = {.name = "path", .type = ST_STRING, .presence = SP_REQUIRED, .min_len = 1};
        schema_check(L, arg++, &path, r->name);
        file_arg = lua_gettop(L);
    }
    if (r->options) {
        const struct field opts = {.name = "options", .type = ST_OBJECT, .presence = SP_OPTIONAL,
                                   .no_null = 1, .schema = r->options};
        schema_check(L, arg++, &opts, r->name);
        opts_idx = lua_isnil(L, -1) ? 0 : lua_gettop(L);
        c->query = opts_idx ? push_query(L, r->options, opts_idx) : 0;
    }
    if (r->guard)
        what = guard_binding(L, env->consent, r, c->body, c->query, opts_idx);
    if (file_arg)
        upload_prepare(L, env->upload, r->name, file_arg, opts_idx, &c->file);
    push_path(L, r, env->routes->r[i].path, ids);
    c->path = lua_tostring(L, -1); /* stays on the stack until ecap_call copies it */
    c->method = env->routes->r[i].method;
    c->operation = r->name;
    c->read_only = r->reads;
    return what;
}

/* The one binding function; upvalue 1 is the run's bindings_env, upvalue 2 the route index. */
static int binding_call(lua_State *L)
{
    const struct bindings_env *env = lua_touserdata(L, lua_upvalueindex(1));
    int i = (int)lua_tointeger(L, lua_upvalueindex(2));
    struct call c;
    const char *what = route_prepare(L, env, i, &c);
    /* may yield: nothing in C locals is used after this */
    return guard_send(L, env->loop, &route_table[i], env->routes->r[i].path, what, &c);
}

void bindings_register(lua_State *L, int ecap_idx, const struct bindings_env *env)
{
    ecap_idx = lua_absindex(L, ecap_idx);
    for (int i = 0; i < N_ROUTES; i++) {
        const char *dot = strchr(route_table[i].name, '.');
        lua_pushlstring(L, route_table[i].name, (size_t)(dot - route_table[i].name));
        /* other modules add to these tables too (cost_avoidance.wait): create only if absent */
        if (lua_getfield(L, ecap_idx, lua_tostring(L, -1)) != LUA_TTABLE) {
            lua_pop(L, 1);
            lua_newtable(L);
            lua_pushvalue(L, -1);
            lua_setfield(L, ecap_idx, lua_tostring(L, -3));
        }
        lua_pushlightuserdata(L, (void *)env);
        lua_pushinteger(L, i);
        lua_pushcclosure(L, binding_call, 2);
        lua_setfield(L, -2, dot + 1);
        lua_pop(L, 2);
    }
}

/* ---- ecap.request on a guarded route --------------------------------------------------- */

static int hexval(int c)
{
    return isdigit(c) ? c - '0' : isxdigit(c) ? (tolower(c) - 'a' + 10) : -1;
}

/* The next byte of a request path as the server reads it: %XX decoded. Advances *p. */
static int path_byte(const char **p)
{
    const char *s = *p;
    if (s[0] == '%' && hexval((unsigned char)s[1]) >= 0 && hexval((unsigned char)s[2]) >= 0) {
        *p = s + 3;
        return hexval((unsigned char)s[1]) * 16 + hexval((unsigned char)s[2]);
    }
    *p = s + 1;
    return (unsigned char)*s;
}

/* Whether path is an instance of the template tmpl, as the server routes it: literal parts
 * case-insensitively, percent-escapes decoded, a placeholder one segment of digits, one
 * trailing slash ignored. */
static int path_matches(const char *tmpl, const char *path)
{
    const char *t = tmpl, *p = path;
    while (*t) {
        if (*t == '{') {
            int digits = 0;
            t = strchr(t, '}') + 1;
            while (*p && *p != '/') {
                const char *q = p;
                if (!isdigit(path_byte(&q)))
                    return 0;
                p = q;
                digits++;
            }
            if (!digits)
                return 0;
            continue;
        }
        if (!*p || tolower(path_byte(&p)) != tolower((unsigned char)*t))
            return 0;
        t++;
    }
    return *p == 0 || (p[0] == '/' && p[1] == 0);
}

int bindings_request(lua_State *L, const struct bindings_env *env, const struct call *c)
{
    for (int i = 0; i < N_ROUTES; i++) {
        const struct route_now *now = &env->routes->r[i];
        if (route_table[i].guard && strcasecmp(c->method, now->method) == 0 && path_matches(now->path, c->path)) {
            const char *what = guard_request(L, env->consent, &route_table[i], c->body, c->query);
            return guard_send(L, env->loop, &route_table[i], now->path, what, c);
        }
    }
    return guard_send(L, env->loop, NULL, NULL, NULL, c);
}

/* ---- a run's routes ------------------------------------------------------------------------ */

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

/* Parses and checks one override into now. Returns 0, or -1 with err (without the origin). */
static int apply_override(struct routes *rt, const char *name, const char *spec, char *err, size_t errlen)
{
    int i = route_find(name), m;
    const struct route *r;
    const char *p = spec, *mend, *path, *pend;
    size_t mlen, plen;
    char tmp[ROUTE_PATH_MAX];
    const char *problem;

    if (i < 0) {
        size_t n = (size_t)snprintf(err, errlen, "unknown operation \"%s\" (known:", name);
        for (int k = 0; k < N_ROUTES && n < errlen; k++)
            n += (size_t)snprintf(err + n, errlen - n, " %s", route_table[k].name);
        if (n < errlen)
            snprintf(err + n, errlen - n, ")");
        return -1;
    }
    r = &route_table[i];
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
    memcpy(tmp, path, plen);
    tmp[plen] = '\0';
    if ((problem = call_path_problem(tmp))) {
        snprintf(err, errlen, "route %s: path \"%.*s\" %s", name, (int)(plen > 60 ? 60 : plen), path,
                 problem);
        return -1;
    }
    if (check_placeholders(r, tmp, err, errlen))
        return -1;
    memcpy(rt->r[i].path, tmp, plen + 1);
    snprintf(rt->r[i].method, sizeof rt->r[i].method, "%s", methods[m]);
    rt->r[i].provenance = ROUTE_CONFIG;
    return 0;
}

int routes_init(struct routes *rt, const struct route_override *ov, int n, char *err, size_t errlen)
{
    memset(rt, 0, sizeof *rt);
    rt->n = N_ROUTES;
    for (int i = 0; i < N_ROUTES; i++) {
        snprintf(rt->r[i].method, sizeof rt->r[i].method, "%s", route_table[i].method);
        snprintf(rt->r[i].path, sizeof rt->r[i].path, "%s", route_table[i].path);
        rt->r[i].provenance = route_table[i].provenance;
    }
    for (int k = 0; k < n; k++) {
        char msg[512];
        int i = route_find(ov[k].name);
        if (apply_override(rt, ov[k].name, ov[k].spec, msg, sizeof msg)) {
            snprintf(err, errlen, "%s: %s", ov[k].origin ? ov[k].origin : "config", msg);
            return -1;
        }
        snprintf(rt->r[i].origin, sizeof rt->r[i].origin, "%s", ov[k].origin ? ov[k].origin : "");
    }
    return 0;
}

/* ---- listing ------------------------------------------------------------------------------ */

int bindings_count(void)
{
    return N_ROUTES;
}

int bindings_route_info(const struct routes *rt, int i, struct route_info *out)
{
    if (i < 0 || i >= N_ROUTES)
        return -1;
    out->name = route_table[i].name;
    out->description = route_table[i].description;
    out->method = rt->r[i].method;
    out->path = rt->r[i].path;
    out->provenance = rt->r[i].provenance;
    out->origin = rt->r[i].origin;
    return 0;
}

const char *bindings_provenance_name(enum route_provenance p)
{
    switch (p) {
    case ROUTE_CONFIRMED: return "confirmed";
    case ROUTE_INFERRED: return "inferred";
    case ROUTE_CONFIG: return "config";
    }
    return "?";
}
