/* Meters: DataAccessReleaseRequest (seed 003) and EsaChannelCreate (seed 004). */
#include <stdint.h>
#include <string.h>

#include "lib/json.h"
#include "schema.h"

/* accountNumber: "Should be a 12 digit number starting with 2". */
static int twelve_digits_from_2(const char *s, size_t len)
{
    if (len != 12 || s[0] != '2')
        return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

/* Required strings also refuse "": the server's [Required] does (ASP.NET AllowEmptyStrings). */
static const struct field release_fields[] = {
    {.name = "accountNumber", .type = ST_STRING, .presence = SP_REQUIRED,
     .check = twelve_digits_from_2, .check_desc = "12 digits starting with 2"},
    {.name = "dataReleaseFile", .type = ST_STRING, .presence = SP_OPTIONAL},
    {.name = "declined", .type = ST_BOOL, .presence = SP_OPTIONAL},
    {.name = "nameOnBill", .type = ST_STRING, .presence = SP_REQUIRED, .min_len = 1},
    {.name = "serviceAddress", .type = ST_STRING, .presence = SP_REQUIRED, .min_len = 1},
};

const struct schema schema_data_access_release = {
    "DataAccessReleaseRequest", release_fields, SCHEMA_COUNT(release_fields), NULL};

/* EsaChannelVersionCreate: properties from the seed's example body. */
static const struct field version_fields[] = {
    {.name = "formula", .type = ST_STRING, .presence = SP_OPTIONAL},
    {.name = "isValuePositive", .type = ST_BOOL, .presence = SP_OPTIONAL},
    {.name = "maximumReading", .type = ST_NUMBER, .presence = SP_OPTIONAL},
    {.name = "minimumReading", .type = ST_NUMBER, .presence = SP_OPTIONAL},
    {.name = "multiplier", .type = ST_NUMBER, .presence = SP_OPTIONAL},
    {.name = "observationRuleId", SCHEMA_INT32_ID, .presence = SP_OPTIONAL},
    {.name = "offset", .type = ST_NUMBER, .presence = SP_OPTIONAL},
    {.name = "rollbackAllowance", .type = ST_NUMBER, .presence = SP_OPTIONAL},
    {.name = "rolloverValue", .type = ST_NUMBER, .presence = SP_OPTIONAL},
    {.name = "unitId", SCHEMA_INT32_ID, .presence = SP_OPTIONAL},
};

static const struct schema esa_channel_version = {
    "EsaChannelVersionCreate", version_fields, SCHEMA_COUNT(version_fields), NULL};

static const long long intervals[] = {5, 10, 15, 30, 60, 1440, 10080, 43200};

static int blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (!strchr(" \t\r\n", s[i]))
            return 0;
    return 1;
}

/* The conversion creates a Primary Value *formula* channel: isCalculated true, intervalMinutes
 * null or absent ("Must be null when IsCalculated is set to True"), a non-empty formula. */
static void esa_rule(lua_State *L, int obj, struct vctx *v)
{
    int top = lua_gettop(L), ok;
    const char *p;
    size_t len;
    schema_get(L, obj, "isCalculated");
    if (!lua_isboolean(L, top + 1) || !lua_toboolean(L, top + 1)) {
        p = schema_path(v, "isCalculated");
        schema_fail(L, v, p, "formula_channel", lua_isnil(L, top + 1) ? 0 : top + 1,
                    "%s must be true: the conversion creates a formula channel (got %s)", p,
                    schema_show(L, top + 1));
    }
    schema_get(L, obj, "intervalMinutes");
    if (!lua_isnil(L, top + 2) && !json_is_null(L, top + 2)) {
        p = schema_path(v, "intervalMinutes");
        schema_fail(L, v, p, "formula_channel", top + 2,
                    "%s must be null or absent for a calculated channel (got %s)", p,
                    schema_show(L, top + 2));
    }
    p = schema_path(v, "esaChannelVersion.formula");
    if (schema_get(L, obj, "esaChannelVersion") != LUA_TTABLE)
        schema_fail(L, v, p, "formula_channel", 0,
                    "%s is required: the conversion creates a formula channel", p);
    ok = schema_get(L, top + 3, "formula") == LUA_TSTRING;
    if (ok) {
        const char *formula = lua_tolstring(L, top + 4, &len);
        ok = !blank(formula, len);
    }
    if (!ok)
        schema_fail(L, v, p, "formula_channel", lua_isnil(L, top + 4) ? 0 : top + 4,
                    "%s must be a non-empty formula: the conversion creates a formula channel "
                    "(got %s)", p, schema_show(L, top + 4));
    lua_settop(L, top);
}

static const struct field esa_fields[] = {
    {.name = "channelDescription", .type = ST_STRING, .presence = SP_OPTIONAL, .max_len = 255},
    {.name = "channelImportId", .type = ST_STRING, .presence = SP_OPTIONAL, .max_len = 255},
    {.name = "channelInfo", .type = ST_STRING, .presence = SP_REQUIRED, .min_len = 1, .max_len = 50},
    {.name = "dataPointId", SCHEMA_INT32_ID, .presence = SP_REQUIRED},
    {.name = "esaChannelVersion", .type = ST_OBJECT, .presence = SP_OPTIONAL,
     .schema = &esa_channel_version},
    {.name = "intervalMinutes", .type = ST_INT32, .presence = SP_OPTIONAL, .allowed = intervals,
     .n_allowed = SCHEMA_COUNT(intervals)},
    {.name = "isCalculated", .type = ST_BOOL, .presence = SP_OPTIONAL},
    {.name = "isPrimaryDemand", .type = ST_BOOL, .presence = SP_OPTIONAL},
    {.name = "isPrimaryValue", .type = ST_BOOL, .presence = SP_OPTIONAL},
    {.name = "observationTypeId", SCHEMA_INT32_ID, .presence = SP_REQUIRED},
    {.name = "summarizationMethodId", SCHEMA_INT32_ID, .presence = SP_REQUIRED},
};

const struct schema schema_esa_channel_create = {
    "EsaChannelCreate", esa_fields, SCHEMA_COUNT(esa_fields), esa_rule};
