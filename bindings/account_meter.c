/* Account–meter relationships: the AccountMeterEdit body (seed 001) and the options of
 * account_meters.edit, with the deleteBills guard. */
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "route.h"
#include "schema.h"

/* endDate > beginDate ("Must be greater than BeginDate"), when both are given. */
static void edit_rule(lua_State *L, int obj, struct vctx *v)
{
    struct date b, e;
    size_t blen, elen;
    const char *bs, *es;
    int bi = lua_gettop(L) + 1, ei = bi + 1;
    if (schema_get(L, obj, "beginDate") != LUA_TSTRING || schema_get(L, obj, "endDate") != LUA_TSTRING) {
        lua_settop(L, bi - 1); /* one of them null: nothing to compare */
        return;
    }
    bs = lua_tolstring(L, bi, &blen);
    es = lua_tolstring(L, ei, &elen);
    if (date_parse(bs, blen, &b) == 0 && date_parse(es, elen, &e) == 0 /* both checked already */
        && date_cmp_instant(&e, &b) <= 0) {
        const char *p = schema_path(v, "endDate"), *begin = schema_show(L, bi);
        schema_fail(L, v, p, "order", ei, "%s must be after beginDate %s (got %s)", p, begin,
                    schema_show(L, ei));
    }
    lua_settop(L, bi - 1);
}

/* Every field "Required (defined)" and none filled in: an edit replaces the relationship, so a
 * field the script left out would be cleared on the server. */
static const struct field edit_fields[] = {
    {.name = "beginDate", .type = ST_DATE, .presence = SP_DEFINED},
    {.name = "endDate", .type = ST_DATE, .presence = SP_DEFINED},
    {.name = "generalLedgerId", SCHEMA_INT32_ID, .presence = SP_DEFINED},
    {.name = "vendorTypeId", SCHEMA_INT32_ID, .presence = SP_DEFINED},
};

const struct schema schema_account_meter_edit = {
    "AccountMeterEdit", edit_fields, SCHEMA_COUNT(edit_fields), edit_rule};

/* deleteBills=true deletes WHOLE bills, other meters' lines on them included, and cannot be
 * undone: it needs a second, explicit word from the script or from the operator. Judged on
 * the query as sent: the binding's copy holds "true"; ecap.request's may hold true too. */
static const char *delete_bills(lua_State *L, int body, int query)
{
    (void)body;
    if (query && lua_type(L, query) == LUA_TTABLE) {
        lua_pushliteral(L, "deleteBills");
        lua_rawget(L, query);
        if ((lua_type(L, -1) == LUA_TBOOLEAN && lua_toboolean(L, -1))
            || (lua_type(L, -1) == LUA_TSTRING && strcasecmp(lua_tostring(L, -1), "true") == 0)) {
            lua_pop(L, 1);
            lua_pushboolean(L, 1);
            return "deleteBills=true deletes whole bills, other meters' lines included";
        }
        lua_pop(L, 1);
    }
    return NULL;
}

const struct route_guard guard_delete_bills = {"deleteBills", "delete bills", delete_bills};

static const struct field edit_options[] = {
    {.name = "deleteBills", .type = ST_BOOL, .presence = SP_OPTIONAL, .no_null = 1, .query = 1},
    {.name = "confirm", .type = ST_STRING, .presence = SP_OPTIONAL, .no_null = 1},
};

const struct schema schema_account_meter_edit_options = {
    "options", edit_options, SCHEMA_COUNT(edit_options), NULL};
