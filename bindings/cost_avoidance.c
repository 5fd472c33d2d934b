/* Cost avoidance: the BulkMeterCostAvoidanceSettings body (seed 002), its rules, and the
 * options of cost_avoidance.bulk_update with the empty-filters guard. */
#include <stdint.h>
#include <string.h>

#include "lib/json.h"
#include "route.h"
#include "schema.h"

/* The eight settings, in the seed's order of the "at least one of" sentence. */
static const char *const settings[] = {
    "attemptCoolingAdjustment", "attemptHeatingAdjustment", "numBaselineMonths",
    "baselineStartDate", "coolingNeededAbove", "heatingNeededBelow",
    "includeMeterInCostAvoidance", "savingsStartDate",
};

static void bulk_rule(lua_State *L, int obj, struct vctx *v)
{
    int top = lua_gettop(L), any = 0;
    for (size_t i = 0; i < SCHEMA_COUNT(settings) && !any; i++) {
        schema_get(L, obj, settings[i]);
        any = !json_is_null(L, -1) && !lua_isnil(L, -1);
        lua_pop(L, 1);
    }
    if (!any) {
        /* no single field is at fault: no field, no value; the message names the set */
        schema_fail(L, v, NULL, "at_least_one", 0,
                    "at least one of attemptCoolingAdjustment, attemptHeatingAdjustment, "
                    "numBaselineMonths, baselineStartDate, coolingNeededAbove, heatingNeededBelow, "
                    "includeMeterInCostAvoidance, savingsStartDate must be non-null");
    }
    /* "coolingNeededAbove must be greater than or equal to HeatingNeededBelow", both given */
    if (schema_get(L, obj, "coolingNeededAbove") == LUA_TNUMBER
        && schema_get(L, obj, "heatingNeededBelow") == LUA_TNUMBER
        && lua_tointeger(L, top + 1) < lua_tointeger(L, top + 2)) {
        const char *p = schema_path(v, "coolingNeededAbove"), *heat = schema_show(L, top + 2);
        schema_fail(L, v, p, "order", top + 1, "%s must be >= heatingNeededBelow %s (got %s)", p,
                    heat, schema_show(L, top + 1));
    }
    lua_settop(L, top);
}

/* FilterEdit: the seed lists the type without its properties; docs/api.md gives the shape
 * {fieldId, operator, value}. fieldId is an id; the example's value is a string. */
static const struct field filter_fields[] = {
    {.name = "fieldId", SCHEMA_INT32_ID, .presence = SP_REQUIRED},
    {.name = "operator", .type = ST_STRING, .presence = SP_REQUIRED, .min_len = 1},
    /* The seed does not list FilterEdit's properties; its example has all three, and a filter
     * without a value means nothing to the service (the simulator refuses it too). */
    {.name = "value", .type = ST_STRING, .presence = SP_REQUIRED},
};

static const struct schema filter_edit = {"FilterEdit", filter_fields, SCHEMA_COUNT(filter_fields),
                                          NULL};

static const struct field filter_elem = {.name = "filters[]", .type = ST_OBJECT,
                                         .presence = SP_REQUIRED, .schema = &filter_edit};

/* All "Required (defined)". The eight settings are filled with json.null when left out (null
 * = leave that setting unchanged); filters is not: the script must say which meters. */
#define SETTING .presence = SP_DEFINED, .fill_null = 1
static const struct field bulk_fields[] = {
    {.name = "attemptCoolingAdjustment", .type = ST_BOOL, SETTING},
    {.name = "attemptHeatingAdjustment", .type = ST_BOOL, SETTING},
    {.name = "baselineStartDate", .type = ST_DATE, SETTING},
    {.name = "coolingNeededAbove", .type = ST_INT32, SETTING},
    {.name = "filters", .type = ST_ARRAY, .presence = SP_DEFINED, .elem = &filter_elem},
    {.name = "heatingNeededBelow", .type = ST_INT32, SETTING},
    {.name = "includeMeterInCostAvoidance", .type = ST_BOOL, SETTING},
    {.name = "numBaselineMonths", .type = ST_INT32, SETTING, .has_range = 1, .min = 12, .max = 36},
    {.name = "savingsStartDate", .type = ST_DATE, SETTING},
};

const struct schema schema_bulk_cost_avoidance = {
    "BulkMeterCostAvoidanceSettings", bulk_fields, SCHEMA_COUNT(bulk_fields), bulk_rule};

/* An empty filters list (or null, or none: the server reads them the same way) matches EVERY
 * meter in the database: the update needs a second, explicit word from the script or from
 * the operator, as deleteBills does. */
static const char *all_meters(lua_State *L, int body, int query)
{
    (void)query;
    if (!body || lua_type(L, body) != LUA_TTABLE) {
        lua_pushnil(L);
        return "a body without filters matches every meter in the database";
    }
    lua_pushliteral(L, "filters");
    lua_rawget(L, body);
    if (lua_type(L, -1) == LUA_TTABLE) {
        lua_pushnil(L);
        if (lua_next(L, -2) == 0) /* {}: raw, no metamethod */
            return "filters = {} matches every meter in the database";
        lua_pop(L, 3);
        return NULL;
    }
    if (json_is_null(L, -1))
        return "filters = null matches every meter in the database";
    if (lua_isnil(L, -1))
        return "a body without filters matches every meter in the database";
    lua_pop(L, 1);
    return NULL;
}

const struct route_guard guard_all_meters = {"filters", "all meters", all_meters};

/* bulk_update(body [, opts]): only the confirmation word, never sent. */
static const struct field bulk_options[] = {
    {.name = "confirm", .type = ST_STRING, .presence = SP_OPTIONAL, .no_null = 1},
};

const struct schema schema_bulk_cost_avoidance_options = {
    "options", bulk_options, SCHEMA_COUNT(bulk_options), NULL};

/* cost_avoidance.count(filters [, opts]): the same FilterEdit rules as the bulk update; an
 * empty list is fine (it counts every meter and changes nothing). */
const struct field field_filter_list = {.name = "filters", .type = ST_ARRAY, .presence = SP_REQUIRED,
                                        .elem = &filter_elem};

static const struct field count_options[] = {
    {.name = "onlyMetersInCAP", .type = ST_BOOL, .presence = SP_OPTIONAL, .no_null = 1, .query = 1},
};

const struct schema schema_meter_count_options = {
    "options", count_options, SCHEMA_COUNT(count_options), NULL};
