/* Unit tests of the bindings' validator, routes and overrides, in a plain lua_State (no host
 * loop, no HTTP): every rule of every operation, the seeds' example bodies, hostile input.
 * Nothing here reaches ecap_call: route_prepare stops where the request would be sent. */
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "bindings/bindings.h"
#include "lib/errors.h"
#include "lib/json.h"
#include "bindings/route.h"
#include "bindings/schema.h"

static int passed, failed;
static lua_State *L;

/* The run the bindings see: the routes (built-ins, or overrides under test) and consent. */
static struct routes routes;
static struct consent consent;
static const struct bindings_env env = {NULL, &routes, &consent, NULL};

/* Applies one more override, as a config file's next line would; a refused one leaves the
 * routes as they were. */
static struct route_override applied[ROUTES_MAX];
static int n_applied;

static int override(const char *name, const char *spec, char *err, size_t errlen)
{
    struct routes next;
    if (n_applied == ROUTES_MAX)
        return -1;
    applied[n_applied] = (struct route_override){name, spec, "t"};
    if (routes_init(&next, applied, n_applied + 1, err, errlen))
        return -1;
    n_applied++;
    routes = next;
    return 0;
}

static void routes_reset(void)
{
    char err[256];
    n_applied = 0;
    routes_init(&routes, NULL, 0, err, sizeof err);
}

#define CHECK(cond, ...)                                                                       \
    do {                                                                                       \
        if (cond) {                                                                            \
            passed++;                                                                          \
        } else {                                                                               \
            failed++;                                                                          \
            fprintf(stderr, "FAIL line %d: ", __LINE__);                                       \
            fprintf(stderr, __VA_ARGS__);                                                      \
            fputc('\n', stderr);                                                               \
        }                                                                                      \
    } while (0)

/* validate(schema_name, value) -> copy; raises the validation error. */
static int l_validate(lua_State *S)
{
    static const struct {
        const char *name;
        const struct schema *s;
    } schemas[] = {
        {"edit", &schema_account_meter_edit},
        {"bulk", &schema_bulk_cost_avoidance},
        {"release", &schema_data_access_release},
        {"esa", &schema_esa_channel_create},
        {"options", &schema_account_meter_edit_options},
    };
    const char *name = luaL_checkstring(S, 1);
    for (size_t i = 0; i < sizeof schemas / sizeof schemas[0]; i++) {
        if (strcmp(schemas[i].name, name) == 0) {
            schema_validate(S, 2, schemas[i].s, "test.op");
            return 1;
        }
    }
    return luaL_error(S, "no schema %s", name);
}

/* prep(route_name, args...) -> method, path, body copy, query: all the request would carry. */
static int l_prep(lua_State *S)
{
    struct call c;
    int i = route_find(luaL_checkstring(S, 1));
    if (i < 0)
        return luaL_error(S, "no route");
    lua_remove(S, 1);
    route_prepare(S, &env, i, &c);
    lua_pushstring(S, c.method);
    lua_pushstring(S, c.path);
    if (c.body)
        lua_pushvalue(S, c.body);
    else
        lua_pushnil(S);
    if (c.query)
        lua_pushvalue(S, c.query);
    else
        lua_pushnil(S);
    return 4;
}

/* Runs chunk; true when it returns true. Errors and false print the chunk. */
static int lua_true(const char *chunk)
{
    int ok;
    if (luaL_loadstring(L, chunk) || lua_pcall(L, 0, 1, 0)) {
        fprintf(stderr, "  lua error in [%s]: %s\n", chunk, lua_tostring(L, -1));
        lua_pop(L, 1);
        return 0;
    }
    ok = lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (!ok)
        fprintf(stderr, "  false: [%s]\n", chunk);
    return ok;
}

#define LUA_TRUE(chunk) CHECK(lua_true(chunk), "%s", chunk)

/* Runs `R = <call>` and expects success. */
static void ok_at(int line, const char *call)
{
    char buf[8192];
    snprintf(buf, sizeof buf, "R = nil; E = nil; local ok, r = pcall(function() return %s end)\n"
                              "if ok then R = r else E = r end; return ok", call);
    if (lua_true(buf)) {
        passed++;
    } else {
        failed++;
        lua_true("io.stderr:write('  error: ', tostring(E), '\\n') return true");
        fprintf(stderr, "FAIL line %d: expected success of %s\n", line, call);
    }
}

/* Runs <call> and expects a validation error with this field, rule and message (NULL: any;
 * field "" = no field). The error is left in global E for further checks. */
static void bad_at(int line, const char *call, const char *field, const char *rule, const char *msg)
{
    char buf[8192];
    snprintf(buf, sizeof buf, "R = nil; E = nil; local ok, r = pcall(function() return %s end)\n"
                              "if ok then R = r else E = r end; return not ok", call);
    if (!lua_true(buf)) {
        failed++;
        fprintf(stderr, "FAIL line %d: expected an error from %s\n", line, call);
        return;
    }
    lua_getglobal(L, "E");
    if (!err_is(L, -1)) {
        failed++;
        fprintf(stderr, "FAIL line %d: not an error table: %s\n", line, lua_tostring(L, -1));
        lua_pop(L, 1);
        return;
    }
    {
        int good = 1;
        const char *got_field, *got_rule, *got_msg, *kind;
        lua_getfield(L, -1, "kind");
        lua_getfield(L, -2, "field");
        lua_getfield(L, -3, "rule");
        lua_getfield(L, -4, "message");
        kind = lua_tostring(L, -4);
        got_field = lua_tostring(L, -3);
        got_rule = lua_tostring(L, -2);
        got_msg = lua_tostring(L, -1);
        if (!kind || strcmp(kind, "validation"))
            good = 0;
        if (field && (*field ? !got_field || strcmp(field, got_field) : got_field != NULL))
            good = 0;
        if (rule && (!got_rule || strcmp(rule, got_rule)))
            good = 0;
        if (msg && (!got_msg || strcmp(msg, got_msg)))
            good = 0;
        if (good) {
            passed++;
        } else {
            failed++;
            fprintf(stderr, "FAIL line %d: %s\n  got  field=%s rule=%s message=%s\n"
                            "  want field=%s rule=%s message=%s\n", line, call,
                    got_field ? got_field : "(nil)", got_rule ? got_rule : "(nil)",
                    got_msg ? got_msg : "(nil)", field ? field : "*", rule ? rule : "*",
                    msg ? msg : "*");
        }
        lua_pop(L, 5);
    }
}

#define OK(call) ok_at(__LINE__, call)
#define BAD(call, field, rule, msg) bad_at(__LINE__, call, field, rule, msg)

/* Bodies: the seeds' examples with their placeholders made legal, as Lua constructors. */
#define EDIT_OK "{beginDate = '2026-03-30', endDate = '2026-04-30', generalLedgerId = 1, vendorTypeId = 1}"
#define EDIT_SEED "{beginDate = '2026-03-30', endDate = '2026-03-30', generalLedgerId = 1, vendorTypeId = 1}"
#define BULK_OK                                                                                \
    "{attemptCoolingAdjustment = false, attemptHeatingAdjustment = false,"                     \
    " baselineStartDate = '2026-03-30', coolingNeededAbove = 65,"                              \
    " filters = {{fieldId = 1, operator = 'equals', value = '12'}}, heatingNeededBelow = 55,"  \
    " includeMeterInCostAvoidance = false, numBaselineMonths = 12,"                            \
    " savingsStartDate = '2026-03-30'}"
#define BULK_SEED                                                                              \
    "{attemptCoolingAdjustment = false, attemptHeatingAdjustment = false,"                     \
    " baselineStartDate = '2026-03-30', coolingNeededAbove = 1,"                               \
    " filters = {{fieldId = 1, operator = 'string', value = 'string'}}, heatingNeededBelow = 1," \
    " includeMeterInCostAvoidance = false, numBaselineMonths = 1,"                             \
    " savingsStartDate = '2026-03-30'}"
#define REL_OK                                                                                 \
    "{accountNumber = '212345678901', dataReleaseFile = 'file-1', declined = false,"           \
    " nameOnBill = 'Jane Roe', serviceAddress = '1 Main St'}"
#define REL_SEED                                                                               \
    "{accountNumber = 'string', dataReleaseFile = 'string', declined = false,"                 \
    " nameOnBill = 'string', serviceAddress = 'string'}"
#define ESA_VERSION                                                                            \
    "{formula = '[M:12] + [M:13]', isValuePositive = false, maximumReading = 1.0,"             \
    " minimumReading = 1.0, multiplier = 1.0, observationRuleId = 1, offset = 1.0,"            \
    " rollbackAllowance = 1.0, rolloverValue = 1.0, unitId = 1}"
#define ESA_OK                                                                                 \
    "{channelDescription = 'string', channelImportId = 'string', channelInfo = 'Total',"       \
    " dataPointId = 1, esaChannelVersion = " ESA_VERSION ", isCalculated = true,"              \
    " isPrimaryDemand = false, isPrimaryValue = true, observationTypeId = 1,"                  \
    " summarizationMethodId = 1}"
#define ESA_SEED                                                                               \
    "{channelDescription = 'string', channelImportId = 'string', channelInfo = 'string',"      \
    " dataPointId = 1, esaChannelVersion = {formula = 'string', isValuePositive = false,"      \
    " maximumReading = 1.0, minimumReading = 1.0, multiplier = 1.0, observationRuleId = 1,"    \
    " offset = 1.0, rollbackAllowance = 1.0, rolloverValue = 1.0, unitId = 1},"                \
    " intervalMinutes = 1, isCalculated = false, isPrimaryDemand = false,"                     \
    " isPrimaryValue = false, observationTypeId = 1, summarizationMethodId = 1}"

/* with(base, changes): a copy of base with fields changed (NIL removes one). Lua helper. */
static const char *const prelude =
    "NIL = {}\n"
    "function with(base, changes)\n"
    "  local t = {}\n"
    "  for k, v in pairs(base) do t[k] = v end\n"
    "  for k, v in pairs(changes or {}) do if v == NIL then t[k] = nil else t[k] = v end end\n"
    "  return t\n"
    "end\n"
    "function nkeys(t) local n = 0 for _ in pairs(t) do n = n + 1 end return n end\n";

static void test_account_meter_edit(void)
{
    OK("validate('edit', " EDIT_OK ")");
    LUA_TRUE("return R.beginDate == '2026-03-30' and R.endDate == '2026-04-30'"
             " and math.type(R.generalLedgerId) == 'integer' and nkeys(R) == 4");
    /* the seed's example as published: begin equal to end */
    BAD("validate('edit', " EDIT_SEED ")", "endDate", "order",
        "endDate must be after beginDate \"2026-03-30\" (got \"2026-03-30\")");
    LUA_TRUE("return E.value == '2026-03-30' and E.operation == 'test.op'");
    BAD("validate('edit', with(" EDIT_OK ", {endDate = '2026-03-29'}))", "endDate", "order", NULL);
    /* date-times and offsets: compared as instants */
    OK("validate('edit', with(" EDIT_OK ", {beginDate = '2026-03-30T10:00:00+02:00',"
       " endDate = '2026-03-30T09:00:00Z'}))");
    BAD("validate('edit', with(" EDIT_OK ", {beginDate = '2026-03-30T10:00:00+02:00',"
        " endDate = '2026-03-30T08:00:00Z'}))", "endDate", "order", NULL);
    OK("validate('edit', with(" EDIT_OK ", {beginDate = '2026-03-30', endDate = '2026-03-30T00:00:01'}))");
    /* all four must be given; json.null is a legal "defined" value; nothing is filled in */
    BAD("validate('edit', with(" EDIT_OK ", {vendorTypeId = NIL}))", "vendorTypeId", "required",
        "vendorTypeId is required (defined): give a value, or json.null for none");
    BAD("validate('edit', with(" EDIT_OK ", {beginDate = NIL}))", "beginDate", "required", NULL);
    OK("validate('edit', with(" EDIT_OK ", {endDate = null}))");
    LUA_TRUE("return R.endDate == null and R.beginDate == '2026-03-30'");
    OK("validate('edit', {beginDate = null, endDate = null, generalLedgerId = null, vendorTypeId = null})");
    /* ids */
    BAD("validate('edit', with(" EDIT_OK ", {generalLedgerId = 0}))", "generalLedgerId", "range",
        "generalLedgerId must be 1..2147483647 (got 0)");
    BAD("validate('edit', with(" EDIT_OK ", {generalLedgerId = 2147483648}))", "generalLedgerId",
        "range", NULL);
    OK("validate('edit', with(" EDIT_OK ", {generalLedgerId = 2147483647}))");
    BAD("validate('edit', with(" EDIT_OK ", {vendorTypeId = 1.5}))", "vendorTypeId", "type",
        "vendorTypeId must be an integer (got 1.5)");
    LUA_TRUE("return E.value == 1.5");
    BAD("validate('edit', with(" EDIT_OK ", {vendorTypeId = '7'}))", "vendorTypeId", "type",
        "vendorTypeId must be an integer (got \"7\")");
    OK("validate('edit', with(" EDIT_OK ", {vendorTypeId = 2.0}))");
    LUA_TRUE("return math.type(R.vendorTypeId) == 'integer' and R.vendorTypeId == 2");
    BAD("validate('edit', with(" EDIT_OK ", {vendorTypeId = 0/0}))", "vendorTypeId", "type", NULL);
    BAD("validate('edit', with(" EDIT_OK ", {vendorTypeId = math.huge}))", "vendorTypeId", "type",
        "vendorTypeId must be an integer (got inf)");
    BAD("validate('edit', with(" EDIT_OK ", {vendorTypeId = true}))", "vendorTypeId", "type", NULL);
    BAD("validate('edit', with(" EDIT_OK ", {beginDate = 20260330}))", "beginDate", "type",
        "beginDate must be a date string (YYYY-MM-DD or ISO-8601 date-time) (got 20260330)");
    /* unknown fields */
    BAD("validate('edit', with(" EDIT_OK ", {endDat = '2026-05-01'}))", "endDat", "unknown",
        "unknown field endDat (known: beginDate, endDate, generalLedgerId, vendorTypeId)");
    /* body type */
    BAD("validate('edit', nil)", "body", "required", "body is required");
    BAD("validate('edit', null)", "body", "required", "body is required (got null)");
    BAD("validate('edit', 'x')", "body", "type", "body must be a table (got \"x\")");
}

static void test_dates(void)
{
    static const char *const good[] = {
        "2024-02-29", "2000-02-29", "1899-12-31", "1899-12-31T00:00", "3000-01-01",
        "3000-01-01T00:00:00", "3000-01-01T00:00:00Z", "3000-01-01T00:00:00.000",
        "2026-03-30T12:00", "2026-03-30T12:00:59", "2026-03-30T23:59:59.9999999",
        "2026-03-30T12:00:00+02:00", "2026-03-30T12:00:00.123-05:30", "2026-12-31",
    };
    static const char *const format[] = {
        "2023-02-29", "2026-02-30", "1900-02-29", "2026-13-01", "2026-00-10", "2026-04-31",
        "2026-3-30", "2026-03-30T", "2026-03-30 12:00", "", "2026-03-30Z", "2026-03-30T24:00",
        "2026-03-30T12:60", "2026-03-30T12:00:60", "2026-03-30T12:00:00.", "26-03-30",
        "2026-03-30T12:00:00.1234567890", "2026-03-30T12:00:00+0200", "2026-03-30T12:00:00z",
        "2026-03-30t12:00", "2026-03-30T12", "２０２６-03-30", "2026-03-30\n", "2026-03-30T12:00:00+24:00",
    };
    static const char *const range[] = {
        "1899-12-30", "1899-12-30T23:59:59.999", "3000-01-01T00:00:00.001", "3000-01-01T00:00:01",
        "3000-01-02", "0001-01-01", "9999-12-31",
    };
    char buf[512];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        snprintf(buf, sizeof buf, "validate('bulk', with(" BULK_OK ", {savingsStartDate = '%s'}))", good[i]);
        OK(buf);
    }
    for (size_t i = 0; i < sizeof format / sizeof format[0]; i++) {
        lua_pushstring(L, format[i]);
        lua_setglobal(L, "D");
        BAD("validate('bulk', with(" BULK_OK ", {savingsStartDate = D}))", "savingsStartDate",
            "format", NULL);
    }
    for (size_t i = 0; i < sizeof range / sizeof range[0]; i++) {
        lua_pushstring(L, range[i]);
        lua_setglobal(L, "D");
        BAD("validate('bulk', with(" BULK_OK ", {baselineStartDate = D}))", "baselineStartDate",
            "range", NULL);
    }
    BAD("validate('bulk', with(" BULK_OK ", {savingsStartDate = '2026-02-30'}))", "savingsStartDate",
        "format", "savingsStartDate must be a date YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss[.fff]][Z|+hh:mm] "
        "with a real calendar day (got \"2026-02-30\")");
    BAD("validate('bulk', with(" BULK_OK ", {savingsStartDate = '3000-01-01T00:00:01'}))",
        "savingsStartDate", "range",
        "savingsStartDate must be between 1899-12-31 and 3000-01-01 (got \"3000-01-01T00:00:01\")");
}

static void test_bulk(void)
{
    OK("validate('bulk', " BULK_OK ")");
    LUA_TRUE("return nkeys(R) == 9 and R.filters[1].fieldId == 1 and R.coolingNeededAbove == 65");
    /* the seed's example as published: numBaselineMonths 1 */
    BAD("validate('bulk', " BULK_SEED ")", "numBaselineMonths", "range",
        "numBaselineMonths must be 12..36 (got 1)");
    BAD("validate('bulk', with(" BULK_OK ", {numBaselineMonths = 40}))", "numBaselineMonths",
        "range", "numBaselineMonths must be 12..36 (got 40)");
    LUA_TRUE("return tostring(E) == E.where .. ': validation: numBaselineMonths must be 12..36 (got 40)'"
             " and E.where:find('^%[string \"R = nil') and E.value == 40 and E.kind == 'validation' and E.operation == 'test.op'");
    OK("validate('bulk', with(" BULK_OK ", {numBaselineMonths = 36}))");
    BAD("validate('bulk', with(" BULK_OK ", {numBaselineMonths = 11}))", "numBaselineMonths", "range", NULL);
    BAD("validate('bulk', with(" BULK_OK ", {numBaselineMonths = 12.5}))", "numBaselineMonths", "type", NULL);
    /* fill-null: the eight settings left out are sent as null; the script's table unchanged */
    OK("validate('bulk', {filters = {{fieldId = 3, operator = 'equals', value = 'x'}}, numBaselineMonths = 24})");
    LUA_TRUE("return nkeys(R) == 9 and R.numBaselineMonths == 24 and R.attemptCoolingAdjustment == null"
             " and R.attemptHeatingAdjustment == null and R.baselineStartDate == null"
             " and R.coolingNeededAbove == null and R.heatingNeededBelow == null"
             " and R.includeMeterInCostAvoidance == null and R.savingsStartDate == null");
    LUA_TRUE("local b = {filters = {}, includeMeterInCostAvoidance = true}"
             " local r = validate('bulk', b)"
             " return nkeys(b) == 2 and r ~= b and r.filters ~= b.filters and nkeys(r) == 9");
    /* filters is defined but not filled: the script must say which meters */
    BAD("validate('bulk', {numBaselineMonths = 24})", "filters", "required", NULL);
    OK("validate('bulk', {filters = null, numBaselineMonths = 24})");
    OK("validate('bulk', {filters = {}, numBaselineMonths = 24})");
    /* at least one setting non-null */
    BAD("validate('bulk', {filters = {}})", "", "at_least_one",
        "at least one of attemptCoolingAdjustment, attemptHeatingAdjustment, numBaselineMonths, "
        "baselineStartDate, coolingNeededAbove, heatingNeededBelow, includeMeterInCostAvoidance, "
        "savingsStartDate must be non-null");
    LUA_TRUE("return E.value == nil and E.operation == 'test.op'");
    BAD("validate('bulk', {filters = {}, attemptCoolingAdjustment = null, savingsStartDate = null})",
        "", "at_least_one", NULL);
    OK("validate('bulk', {filters = {}, attemptCoolingAdjustment = false})");
    OK("validate('bulk', {filters = {}, savingsStartDate = '2026-01-01'})");
    /* cooling >= heating, when both are given */
    BAD("validate('bulk', with(" BULK_OK ", {coolingNeededAbove = 50, heatingNeededBelow = 60}))",
        "coolingNeededAbove", "order", "coolingNeededAbove must be >= heatingNeededBelow 60 (got 50)");
    OK("validate('bulk', with(" BULK_OK ", {coolingNeededAbove = 60, heatingNeededBelow = 60}))");
    OK("validate('bulk', with(" BULK_OK ", {coolingNeededAbove = -10, heatingNeededBelow = -20}))");
    OK("validate('bulk', with(" BULK_OK ", {coolingNeededAbove = 50, heatingNeededBelow = null}))");
    OK("validate('bulk', with(" BULK_OK ", {coolingNeededAbove = 50, heatingNeededBelow = NIL}))");
    BAD("validate('bulk', with(" BULK_OK ", {coolingNeededAbove = 2^31}))", "coolingNeededAbove",
        "range", "coolingNeededAbove must be -2147483648..2147483647 (got 2147483648.0)");
    /* types of the settings */
    BAD("validate('bulk', with(" BULK_OK ", {attemptCoolingAdjustment = 'false'}))",
        "attemptCoolingAdjustment", "type", "attemptCoolingAdjustment must be a boolean (got \"false\")");
    BAD("validate('bulk', with(" BULK_OK ", {includeMeterInCostAvoidance = 0}))",
        "includeMeterInCostAvoidance", "type", NULL);
    /* unknown field: the typo is named with the list of known ones */
    BAD("validate('bulk', with(" BULK_OK ", {numBaselineMonth = 24}))", "numBaselineMonth", "unknown",
        "unknown field numBaselineMonth (known: attemptCoolingAdjustment, attemptHeatingAdjustment, "
        "baselineStartDate, coolingNeededAbove, filters, heatingNeededBelow, "
        "includeMeterInCostAvoidance, numBaselineMonths, savingsStartDate)");
    LUA_TRUE("return E.value == 24");
    /* filters: an array of {fieldId, operator, value} */
    BAD("validate('bulk', with(" BULK_OK ", {filters = {{fieldId = 1, operator = 'equals', value = 'a'},"
        " {fieldId = 'x', operator = 'equals', value = 'b'}}}))", "filters[2].fieldId", "type",
        "filters[2].fieldId must be an integer (got \"x\")");
    BAD("validate('bulk', with(" BULK_OK ", {filters = {{operator = 'equals'}}}))",
        "filters[1].fieldId", "required", "filters[1].fieldId is required");
    BAD("validate('bulk', with(" BULK_OK ", {filters = {{fieldId = 1}}}))", "filters[1].operator",
        "required", NULL);
    BAD("validate('bulk', with(" BULK_OK ", {filters = {{fieldId = 1, operator = ''}}}))",
        "filters[1].operator", "length", NULL);
    BAD("validate('bulk', with(" BULK_OK ", {filters = {{fieldId = 1, operator = 'equals', value = 5}}}))",
        "filters[1].value", "type", NULL);
    BAD("validate('bulk', with(" BULK_OK ", {filters = {{fieldId = 1, operator = 'equals', value = null}}}))",
        "filters[1].value", "required", NULL);
    BAD("validate('bulk', with(" BULK_OK ", {filters = {{fieldId = 1, operator = 'equals'}}}))",
        "filters[1].value", "required", "filters[1].value is required");
    BAD("validate('bulk', with(" BULK_OK ", {filters = {{fieldId = 1, operator = 'eq', valu = 'x'}}}))",
        "filters[1].valu", "unknown", "unknown field filters[1].valu (known: fieldId, operator, value)");
    BAD("validate('bulk', with(" BULK_OK ", {filters = {fieldId = 1, operator = 'eq'}}))", "filters",
        "type", "filters must be an array (a table with keys 1..n) (got a table)");
    BAD("validate('bulk', with(" BULK_OK ", {filters = {[1] = {fieldId = 1, operator = 'eq'},"
        " [3] = {fieldId = 2, operator = 'eq'}}}))", "filters", "type", NULL);
    BAD("validate('bulk', with(" BULK_OK ", {filters = {null}}))", "filters[1]", "required", NULL);
    BAD("validate('bulk', with(" BULK_OK ", {filters = {5}}))", "filters[1]", "type",
        "filters[1] must be a table (got 5)");
    BAD("validate('bulk', with(" BULK_OK ", {filters = 'all'}))", "filters", "type", NULL);
    LUA_TRUE("local r = validate('bulk', with(" BULK_OK ", {filters = {{fieldId = 2.0, operator = 'eq', value = 'v'}}}))"
             " return math.type(r.filters[1].fieldId) == 'integer' and r.filters[1].value == 'v'");
}

static void test_release(void)
{
    OK("validate('release', " REL_OK ")");
    LUA_TRUE("return nkeys(R) == 5 and R.accountNumber == '212345678901'");
    OK("validate('release', {accountNumber = '200000000000', nameOnBill = 'A', serviceAddress = 'B'})");
    LUA_TRUE("return nkeys(R) == 3 and R.declined == nil");
    /* the seed's example as published: accountNumber "string" */
    BAD("validate('release', " REL_SEED ")", "accountNumber", "pattern",
        "accountNumber must be 12 digits starting with 2 (got \"string\")");
    BAD("validate('release', with(" REL_OK ", {accountNumber = '112345678901'}))", "accountNumber",
        "pattern", NULL);
    BAD("validate('release', with(" REL_OK ", {accountNumber = '21234567890'}))", "accountNumber",
        "pattern", NULL);
    BAD("validate('release', with(" REL_OK ", {accountNumber = '2123456789012'}))", "accountNumber",
        "pattern", NULL);
    BAD("validate('release', with(" REL_OK ", {accountNumber = '21234567890a'}))", "accountNumber",
        "pattern", NULL);
    BAD("validate('release', with(" REL_OK ", {accountNumber = '2123 5678901'}))", "accountNumber",
        "pattern", NULL);
    BAD("validate('release', with(" REL_OK ", {accountNumber = 212345678901}))", "accountNumber",
        "type", "accountNumber must be a string (got 212345678901)");
    BAD("validate('release', with(" REL_OK ", {accountNumber = NIL}))", "accountNumber", "required",
        "accountNumber is required");
    BAD("validate('release', with(" REL_OK ", {accountNumber = null}))", "accountNumber", "required",
        "accountNumber is required (got null)");
    BAD("validate('release', with(" REL_OK ", {nameOnBill = NIL}))", "nameOnBill", "required", NULL);
    BAD("validate('release', with(" REL_OK ", {serviceAddress = NIL}))", "serviceAddress", "required", NULL);
    BAD("validate('release', with(" REL_OK ", {nameOnBill = ''}))", "nameOnBill", "length",
        "nameOnBill must be at least 1 character (got 0)");
    BAD("validate('release', with(" REL_OK ", {declined = 'no'}))", "declined", "type", NULL);
    OK("validate('release', with(" REL_OK ", {declined = null, dataReleaseFile = null}))");
    BAD("validate('release', with(" REL_OK ", {nameOnBill = 'a\\255b'}))", "nameOnBill", "encoding",
        "nameOnBill must be UTF-8 text (got \"a\\xffb\")");
    BAD("validate('release', with(" REL_OK ", {meterId = 5}))", "meterId", "unknown",
        "unknown field meterId (known: accountNumber, dataReleaseFile, declined, nameOnBill, serviceAddress)");
}

static void test_esa(void)
{
    OK("validate('esa', " ESA_OK ")");
    LUA_TRUE("return R.esaChannelVersion.formula == '[M:12] + [M:13]' and nkeys(R) == 10"
             " and math.type(R.esaChannelVersion.multiplier) == 'float'");
    OK("validate('esa', {channelInfo = 'T', dataPointId = 1, observationTypeId = 2,"
       " summarizationMethodId = 3, isCalculated = true, intervalMinutes = null,"
       " esaChannelVersion = {formula = 'x'}})");
    /* the seed's example as published: not a formula channel */
    BAD("validate('esa', " ESA_SEED ")", "intervalMinutes", "one_of",
        "intervalMinutes must be one of 5, 10, 15, 30, 60, 1440, 10080, 43200 (got 1)");
    BAD("validate('esa', with(" ESA_SEED ", {intervalMinutes = 15}))", "isCalculated",
        "formula_channel", "isCalculated must be true: the conversion creates a formula channel (got false)");
    BAD("validate('esa', with(" ESA_OK ", {isCalculated = NIL}))", "isCalculated", "formula_channel",
        NULL);
    BAD("validate('esa', with(" ESA_OK ", {isCalculated = null}))", "isCalculated", "formula_channel",
        NULL);
    BAD("validate('esa', with(" ESA_OK ", {intervalMinutes = 15}))", "intervalMinutes",
        "formula_channel", "intervalMinutes must be null or absent for a calculated channel (got 15)");
    BAD("validate('esa', with(" ESA_OK ", {intervalMinutes = 7}))", "intervalMinutes", "one_of", NULL);
    BAD("validate('esa', with(" ESA_OK ", {esaChannelVersion = NIL}))", "esaChannelVersion.formula",
        "formula_channel", "esaChannelVersion.formula is required: the conversion creates a formula channel");
    BAD("validate('esa', with(" ESA_OK ", {esaChannelVersion = null}))", "esaChannelVersion.formula",
        "formula_channel", NULL);
    BAD("validate('esa', with(" ESA_OK ", {esaChannelVersion = {unitId = 1}}))",
        "esaChannelVersion.formula", "formula_channel",
        "esaChannelVersion.formula must be a non-empty formula: the conversion creates a formula "
        "channel (got nil)");
    BAD("validate('esa', with(" ESA_OK ", {esaChannelVersion = {formula = ' \\t '}}))",
        "esaChannelVersion.formula", "formula_channel", NULL);
    BAD("validate('esa', with(" ESA_OK ", {esaChannelVersion = {formula = 7}}))",
        "esaChannelVersion.formula", "type", NULL);
    BAD("validate('esa', with(" ESA_OK ", {esaChannelVersion = {formula = 'x', multiplier = 0/0}}))",
        "esaChannelVersion.multiplier", "type", NULL);
    BAD("validate('esa', with(" ESA_OK ", {esaChannelVersion = {formula = 'x', offset = -math.huge}}))",
        "esaChannelVersion.offset", "type", "esaChannelVersion.offset must be a finite number (got -inf)");
    BAD("validate('esa', with(" ESA_OK ", {esaChannelVersion = {formula = 'x', offset = '1'}}))",
        "esaChannelVersion.offset", "type", NULL);
    OK("validate('esa', with(" ESA_OK ", {esaChannelVersion = {formula = 'x', offset = 3, multiplier = -2.5e300}}))");
    BAD("validate('esa', with(" ESA_OK ", {esaChannelVersion = {formula = 'x', unitId = 0}}))",
        "esaChannelVersion.unitId", "range", NULL);
    BAD("validate('esa', with(" ESA_OK ", {esaChannelVersion = {formula = 'x', formla = 'y'}}))",
        "esaChannelVersion.formla", "unknown", NULL);
    BAD("validate('esa', with(" ESA_OK ", {esaChannelVersion = 'x'}))", "esaChannelVersion", "type", NULL);
    /* lengths, in characters (UTF-16 units as the server counts) */
    OK("validate('esa', with(" ESA_OK ", {channelInfo = string.rep('x', 50)}))");
    OK("validate('esa', with(" ESA_OK ", {channelInfo = string.rep('\\u{e9}', 50)}))");
    BAD("validate('esa', with(" ESA_OK ", {channelInfo = string.rep('x', 51)}))", "channelInfo",
        "length", "channelInfo must be at most 50 characters (got 51)");
    LUA_TRUE("return E.value == string.rep('x', 51)");
    BAD("validate('esa', with(" ESA_OK ", {channelInfo = string.rep('\\u{1F600}', 26)}))",
        "channelInfo", "length", "channelInfo must be at most 50 characters (got 52)");
    OK("validate('esa', with(" ESA_OK ", {channelDescription = string.rep('d', 255),"
       " channelImportId = string.rep('i', 255)}))");
    BAD("validate('esa', with(" ESA_OK ", {channelDescription = string.rep('d', 256)}))",
        "channelDescription", "length", NULL);
    BAD("validate('esa', with(" ESA_OK ", {channelImportId = string.rep('i', 256)}))",
        "channelImportId", "length", NULL);
    BAD("validate('esa', with(" ESA_OK ", {channelInfo = NIL}))", "channelInfo", "required", NULL);
    BAD("validate('esa', with(" ESA_OK ", {channelInfo = ''}))", "channelInfo", "length", NULL);
    BAD("validate('esa', with(" ESA_OK ", {dataPointId = NIL}))", "dataPointId", "required", NULL);
    BAD("validate('esa', with(" ESA_OK ", {observationTypeId = null}))", "observationTypeId", "required", NULL);
    BAD("validate('esa', with(" ESA_OK ", {summarizationMethodId = -1}))", "summarizationMethodId", "range", NULL);
    BAD("validate('esa', with(" ESA_OK ", {isPrimaryValue = 1}))", "isPrimaryValue", "type", NULL);
    /* overlong UTF-8, surrogates, truncated sequences */
    BAD("validate('esa', with(" ESA_OK ", {channelInfo = '\\xC0\\xAF'}))", "channelInfo", "encoding", NULL);
    BAD("validate('esa', with(" ESA_OK ", {channelInfo = '\\xED\\xA0\\x80'}))", "channelInfo", "encoding", NULL);
    BAD("validate('esa', with(" ESA_OK ", {channelInfo = 'ab\\xE2\\x82'}))", "channelInfo", "encoding", NULL);
    BAD("validate('esa', with(" ESA_OK ", {channelInfo = '\\xF4\\x90\\x80\\x80'}))", "channelInfo", "encoding", NULL);
}

static void test_hostile(void)
{
    /* metamethods are never run: __index, __pairs, __len and a protected metatable */
    LUA_TRUE("called = false\n"
             "local mt = {__index = function() called = true return 1 end,"
             " __pairs = function() called = true return next, {}, nil end,"
             " __len = function() called = true return 0 end, __metatable = 'locked'}\n"
             "local b = setmetatable({filters = setmetatable({}, mt)}, mt)\n"
             "local ok, e = pcall(validate, 'bulk', b)\n"
             "return not ok and e.rule == 'at_least_one' and called == false");
    LUA_TRUE("called = false\n"
             "local b = setmetatable({}, {__index = {accountNumber = '212345678901',"
             " nameOnBill = 'a', serviceAddress = 'b'}})\n"
             "local ok, e = pcall(validate, 'release', b)\n"
             "return not ok and e.field == 'accountNumber' and e.rule == 'required'");
    /* cycles */
    LUA_TRUE("local b = {filters = {}} b.filters[1] = b b.numBaselineMonths = 24\n"
             "local ok, e = pcall(validate, 'bulk', b)\n"
             "return not ok and e.rule == 'unknown' and (e.field == 'filters[1].filters'"
             " or e.field == 'filters[1].numBaselineMonths')");
    LUA_TRUE("local v = {formula = 'x'} v.esaChannelVersion = v\n"
             "local ok, e = pcall(validate, 'esa', {channelInfo = 'T', dataPointId = 1,"
             " observationTypeId = 1, summarizationMethodId = 1, isCalculated = true, esaChannelVersion = v})\n"
             "return not ok and e.field == 'esaChannelVersion.esaChannelVersion' and e.rule == 'unknown'");
    /* non-string keys */
    BAD("validate('edit', {5})", "[1]", "unknown", NULL);
    LUA_TRUE("return E.value == 5");
    BAD("validate('edit', with(" EDIT_OK ", {[true] = 1}))", "[true]", "unknown", NULL);
    BAD("validate('edit', with(" EDIT_OK ", {[2.5] = 1}))", "[2.5]", "unknown", NULL);
    BAD("validate('edit', with(" EDIT_OK ", {[{}] = 1}))", "[a table]", "unknown", NULL);
    BAD("validate('bulk', with(" BULK_OK ", {filters = {{fieldId = 1, operator = 'x', [7] = 1}}}))",
        "filters[1][7]", "unknown", NULL);
    BAD("validate('bulk', with(" BULK_OK ", {filters = {[1.5] = {}}}))", "filters", "type", NULL);
    BAD("validate('bulk', with(" BULK_OK ", {filters = {[0] = {}}}))", "filters", "type", NULL);
    BAD("validate('bulk', with(" BULK_OK ", {filters = {[-1] = {}}}))", "filters", "type", NULL);
    /* huge strings: messages stay short and one line */
    LUA_TRUE("local big = string.rep('x', 1000000)\n"
             "local ok, e = pcall(validate, 'esa', with(" ESA_OK ", {channelInfo = big}))\n"
             "return not ok and e.rule == 'length' and #e.message < 200 and e.value == big");
    LUA_TRUE("local big = string.rep('k', 1000000)\n"
             "local ok, e = pcall(validate, 'edit', with(" EDIT_OK ", {[big] = 1}))\n"
             "return not ok and e.rule == 'unknown' and #e.message < 400 and #e.field < 300"
             " and not tostring(e):find('\\n')");
    LUA_TRUE("local ok, e = pcall(validate, 'edit', with(" EDIT_OK ", {['a\\nb\\0c'] = 1}))\n"
             "return not ok and e.field == 'a\\\\x0ab\\\\x00c' and not e.message:find('\\n')");
    LUA_TRUE("local ok, e = pcall(validate, 'release', with(" REL_OK ", {accountNumber = 'x\\n' .. string.rep('9', 500)}))\n"
             "return not ok and e.rule == 'pattern' and #e.message < 200 and not e.message:find('\\n')");
    /* other value types */
    BAD("validate('edit', with(" EDIT_OK ", {vendorTypeId = print}))", "vendorTypeId", "type",
        "vendorTypeId must be an integer (got a function)");
    BAD("validate('edit', with(" EDIT_OK ", {vendorTypeId = coroutine.create(print)}))", "vendorTypeId",
        "type", NULL);
    BAD("validate('edit', with(" EDIT_OK ", {vendorTypeId = io.stdout}))", "vendorTypeId", "type", NULL);
    BAD("validate('bulk', with(" BULK_OK ", {filters = {{fieldId = {{{{}}}}, operator = 'x'}}}))",
        "filters[1].fieldId", "type", NULL);
    /* deep nesting inside a field the schema does not descend: refused at its top */
    LUA_TRUE("local t = {} for i = 1, 100000 do t = {t} end\n"
             "local ok, e = pcall(validate, 'bulk', with(" BULK_OK ", {filters = t}))\n"
             "return not ok and e.field == 'filters[1][1]' and e.rule == 'unknown'");
}

/* cost_avoidance.bulk_update: an empty (or null) filters list matches every meter in the
 * database; refused unless opts.confirm == "all meters" or --allow-destructive. */
static void test_bulk_guard(void)
{
#define ALL_MSG(what)                                                                          \
    "filters = " what " matches every meter in the database: pass confirm = \"all meters\" in " \
    "the options table, or run with --allow-destructive"
    BAD("prep('cost_avoidance.bulk_update', {filters = {}, numBaselineMonths = 24})", "filters",
        "guard", ALL_MSG("{}"));
    LUA_TRUE("return E.operation == 'cost_avoidance.bulk_update' and type(E.value) == 'table'"
             " and next(E.value) == nil and tostring(E):find(E.where .. ': validation: filters = {} matches', 1, true)");
    BAD("prep('cost_avoidance.bulk_update', {filters = null, numBaselineMonths = 24})", "filters",
        "guard", ALL_MSG("null"));
    LUA_TRUE("return E.value == null");
    BAD("prep('cost_avoidance.bulk_update', {filters = {}, numBaselineMonths = 24}, {})", "filters",
        "guard", NULL);
    BAD("prep('cost_avoidance.bulk_update', {filters = {}, numBaselineMonths = 24}, {confirm = 'yes'})",
        "filters", "guard", NULL);
    BAD("prep('cost_avoidance.bulk_update', {filters = {}, numBaselineMonths = 24},"
        " {confirm = 'All Meters'})", "filters", "guard", NULL);
    BAD("prep('cost_avoidance.bulk_update', {filters = {}, numBaselineMonths = 24},"
        " {confirm = 'delete bills'})", "filters", "guard", NULL);
    BAD("prep('cost_avoidance.bulk_update', {filters = {}, numBaselineMonths = 24}, nil,"
        " {confirm = 'all meters'})", "", "arguments", NULL);
    /* confirmed: sent as is, the confirm word is never sent (no query, not in the body) */
    LUA_TRUE("local m, p, b, q = prep('cost_avoidance.bulk_update', {filters = {}, numBaselineMonths = 24},"
             " {confirm = 'all meters'})\n"
             "return m == 'PUT' and p == '/api/v3/savings/settings' and q == nil and b.confirm == nil"
             " and #b.filters == 0 and nkeys(b) == 9");
    OK("prep('cost_avoidance.bulk_update', {filters = null, numBaselineMonths = 24}, {confirm = 'all meters'})");
    /* non-empty filters need no confirmation; a confirm there is harmless */
    OK("prep('cost_avoidance.bulk_update', " BULK_OK ")");
    OK("prep('cost_avoidance.bulk_update', " BULK_OK ", {})");
    OK("prep('cost_avoidance.bulk_update', " BULK_OK ", {confirm = 'all meters'})");
    /* the options table itself */
    BAD("prep('cost_avoidance.bulk_update', " BULK_OK ", {confirm = 5})", "confirm", "type", NULL);
    BAD("prep('cost_avoidance.bulk_update', " BULK_OK ", {confirm = null})", "confirm", "type", NULL);
    BAD("prep('cost_avoidance.bulk_update', " BULK_OK ", {confrim = 'all meters'})", "confrim",
        "unknown", "unknown field confrim (known: confirm)");
    BAD("prep('cost_avoidance.bulk_update', " BULK_OK ", 'all meters')", "options", "type", NULL);
    BAD("prep('cost_avoidance.bulk_update', " BULK_OK ", null)", "options", "type", NULL);
    /* the body is checked before the guard: a bad body is reported, not the guard */
    BAD("prep('cost_avoidance.bulk_update', {filters = {}})", "", "at_least_one", NULL);
    BAD("prep('cost_avoidance.bulk_update', {filters = {}, numBaselineMonths = 1})", "numBaselineMonths",
        "range", NULL);
    BAD("prep('cost_avoidance.bulk_update', {filters = {}, numBaselineMonth = 24})", "numBaselineMonth",
        "unknown", NULL);
    BAD("prep('cost_avoidance.bulk_update', {numBaselineMonths = 24})", "filters", "required", NULL);
    /* the schema alone (validate) knows nothing of the guard: it is the route's */
    OK("validate('bulk', {filters = {}, numBaselineMonths = 24})");
    /* --allow-destructive lifts it */
    consent.allow_destructive = 1;
    OK("prep('cost_avoidance.bulk_update', {filters = {}, numBaselineMonths = 24})");
    OK("prep('cost_avoidance.bulk_update', {filters = null, numBaselineMonths = 24}, {confirm = 'no'})");
    consent.allow_destructive = 0;
    BAD("prep('cost_avoidance.bulk_update', {filters = {}, numBaselineMonths = 24})", "filters",
        "guard", ALL_MSG("{}"));
#undef ALL_MSG
}

static void test_options_and_routes(void)
{

    /* routes: path, method, body, query; ids checked first */
    LUA_TRUE("local m, p, b, q = prep('meter_groups.refresh', 42)\n"
             "return m == 'POST' and p == '/api/v3/meterGroup/42/updateUserAutoGroup' and b == nil and q == nil");
    LUA_TRUE("local m, p, b, q = prep('account_meters.edit', 9, " EDIT_OK ")\n"
             "return m == 'PUT' and p == '/api/v3/accountmeter/9' and b.vendorTypeId == 1 and q == nil");
    LUA_TRUE("local m, p, b, q = prep('cost_avoidance.bulk_update', {filters = {{fieldId = 1,"
             " operator = 'equals', value = '6'}}, numBaselineMonths = 13})\n"
             "return m == 'PUT' and p == '/api/v3/savings/settings' and nkeys(b) == 9"
             " and b.savingsStartDate == null and q == nil");
    LUA_TRUE("local m, p = prep('meters.apply_release', 2147483647, " REL_OK ")\n"
             "return m == 'POST' and p == '/api/v202203/utilityPlatform/meter/2147483647/release'");
    LUA_TRUE("local m, p = prep('meters.convert_to_esa_calculated', 5.0, " ESA_OK ")\n"
             "return m == 'POST' and p == '/api/v202510/meter/5/esaCalculatedMeter'");
    BAD("prep('meters.apply_release', 1.5, " REL_OK ")", "meterId", "type",
        "meterId must be an integer (got 1.5)");
    BAD("prep('meters.apply_release', '7', " REL_OK ")", "meterId", "type",
        "meterId must be an integer (got \"7\")");
    LUA_TRUE("return E.operation == 'meters.apply_release'");
    BAD("prep('meters.apply_release', 0, " REL_OK ")", "meterId", "range",
        "meterId must be 1..2147483647 (got 0)");
    BAD("prep('meters.apply_release', 2147483648, " REL_OK ")", "meterId", "range", NULL);
    BAD("prep('meters.apply_release', nil, " REL_OK ")", "meterId", "required", "meterId is required");
    BAD("prep('meters.apply_release', null, " REL_OK ")", "meterId", "required", NULL);
    BAD("prep('meter_groups.refresh')", "meterGroupId", "required", NULL);
    BAD("prep('meter_groups.refresh', -3)", "meterGroupId", "range", NULL);
    BAD("prep('meters.apply_release', 3)", "body", "required", "body is required");
    BAD("prep('meters.apply_release', 3, " REL_SEED ")", "accountNumber", "pattern", NULL);
    LUA_TRUE("return E.operation == 'meters.apply_release'");
    BAD("prep('meter_groups.refresh', 3, {})", "", "arguments",
        "meter_groups.refresh takes at most 1 argument (got a table as argument 2)");
    OK("prep('meter_groups.refresh', 3, nil)");
    BAD("prep('cost_avoidance.bulk_update', 3, {})", "body", "type", "body must be a table (got 3)");
    BAD("prep('cost_avoidance.bulk_update', " BULK_OK ", {}, 3)", "", "arguments",
        "cost_avoidance.bulk_update takes at most 2 arguments (got 3 as argument 3)");
    BAD("prep('account_meters.edit', 1, " EDIT_OK ", {}, 5)", "", "arguments", NULL);

    /* options and the deleteBills guard */
    LUA_TRUE("local m, p, b, q = prep('account_meters.edit', 9, " EDIT_OK ", {deleteBills = false})\n"
             "return q.deleteBills == 'false' and nkeys(q) == 1");
    LUA_TRUE("local m, p, b, q = prep('account_meters.edit', 9, " EDIT_OK ", {})\n"
             "return q == nil");
    BAD("prep('account_meters.edit', 9, " EDIT_OK ", {deleteBills = true})", "deleteBills", "guard",
        "deleteBills=true deletes whole bills, other meters' lines included: pass confirm = "
        "\"delete bills\" in the options table, or run with --allow-destructive");
    LUA_TRUE("return E.value == true and E.operation == 'account_meters.edit'");
    BAD("prep('account_meters.edit', 9, " EDIT_OK ", {deleteBills = true, confirm = 'yes'})",
        "deleteBills", "guard", NULL);
    BAD("prep('account_meters.edit', 9, " EDIT_OK ", {deleteBills = true, confirm = 'Delete Bills'})",
        "deleteBills", "guard", NULL);
    LUA_TRUE("local m, p, b, q = prep('account_meters.edit', 9, " EDIT_OK ","
             " {deleteBills = true, confirm = 'delete bills'})\n"
             "return q.deleteBills == 'true' and q.confirm == nil and nkeys(q) == 1");
    BAD("prep('account_meters.edit', 9, " EDIT_OK ", {deleteBills = 'true'})", "deleteBills", "type",
        "deleteBills must be a boolean (got \"true\")");
    BAD("prep('account_meters.edit', 9, " EDIT_OK ", {deleteBills = 1})", "deleteBills", "type", NULL);
    BAD("prep('account_meters.edit', 9, " EDIT_OK ", {deleteBills = null})", "deleteBills", "type", NULL);
    BAD("prep('account_meters.edit', 9, " EDIT_OK ", {deletebills = true})", "deletebills", "unknown",
        "unknown field deletebills (known: deleteBills, confirm)");
    BAD("prep('account_meters.edit', 9, " EDIT_OK ", true)", "options", "type",
        "options must be a table (got true)");
    BAD("prep('account_meters.edit', 9, " EDIT_OK ", null)", "options", "type", NULL);
    /* the body is checked before the options: no guard message for a bad body */
    BAD("prep('account_meters.edit', 9, " EDIT_SEED ", {deleteBills = true})", "endDate", "order", NULL);
    /* --allow-destructive */
    consent.allow_destructive = 1;
    LUA_TRUE("local m, p, b, q = prep('account_meters.edit', 9, " EDIT_OK ", {deleteBills = true})\n"
             "return q.deleteBills == 'true'");
    consent.allow_destructive = 0;
    BAD("prep('account_meters.edit', 9, " EDIT_OK ", {deleteBills = true})", "deleteBills", "guard", NULL);
    test_bulk_guard();
}

static void test_register(void)
{
    /* existing sub-tables are kept (other modules add cost_avoidance.wait) */
    LUA_TRUE("ecap = {cost_avoidance = {wait = print}} return true");
    lua_getglobal(L, "ecap");
    bindings_register(L, -1, &env);
    lua_pop(L, 1);
    LUA_TRUE("return ecap.cost_avoidance.wait == print and type(ecap.cost_avoidance.bulk_update) == 'function'"
             " and type(ecap.meter_groups.refresh) == 'function' and type(ecap.account_meters.edit) == 'function'"
             " and type(ecap.meters.apply_release) == 'function'"
             " and type(ecap.meters.convert_to_esa_calculated) == 'function'");
    /* the real binding functions refuse before any request */
    BAD("ecap.cost_avoidance.bulk_update(" BULK_SEED ")", "numBaselineMonths", "range",
        "numBaselineMonths must be 12..36 (got 1)");
    LUA_TRUE("return E.operation == 'cost_avoidance.bulk_update'");
    BAD("ecap.meters.convert_to_esa_calculated(1.5, " ESA_OK ")", "meterId", "type", NULL);
    BAD("ecap.account_meters.edit(9, " EDIT_OK ", {deleteBills = true})", "deleteBills", "guard", NULL);
    BAD("ecap.meter_groups.refresh('7')", "meterGroupId", "type", NULL);
    BAD("ecap.cost_avoidance.bulk_update({filters = {}, includeMeterInCostAvoidance = true})",
        "filters", "guard", NULL);
}

static void test_overrides(void)
{
    char err[512];
    int rc;

    routes_reset();
    rc = override("meter_groups.refresh",
                                 "POST /api/v3/meterGroup/{meterGroupId}/updateUserAutoGroup", err, sizeof err);
    CHECK(rc == 0, "same route: %s", err);
    rc = override("meter_groups.refresh", "  PUT   /api/v4/groups/{meterGroupId}/refresh  ",
                                 err, sizeof err);
    CHECK(rc == 0, "override: %s", err);
    LUA_TRUE("local m, p = prep('meter_groups.refresh', 12)\n"
             "return m == 'PUT' and p == '/api/v4/groups/12/refresh'");
    /* the binding registered earlier follows the override (read at call time) */
    CHECK(strcmp(routes.r[route_find("meter_groups.refresh")].method, "PUT") == 0, "method");
    rc = override("cost_avoidance.bulk_update", "POST /api/v3/savings/bulk", err, sizeof err);
    CHECK(rc == 0, "no placeholders: %s", err);
    LUA_TRUE("local m, p = prep('cost_avoidance.bulk_update', {filters = {}, numBaselineMonths = 13},"
             " {confirm = 'all meters'})\n"
             "return m == 'POST' and p == '/api/v3/savings/bulk'");
    rc = override("meters.apply_release", "POST /api/v1/x/{meterId}/y/{meterId}", err, sizeof err);
    CHECK(rc == -1 && strstr(err, "appears twice"), "twice: %s", err);

    rc = override("meter_groups.refreshh", "POST /api/x", err, sizeof err);
    CHECK(rc == -1 && strstr(err, "unknown operation \"meter_groups.refreshh\"")
          && strstr(err, "meters.convert_to_esa_calculated"), "unknown name: %s", err);
    rc = override("meter_groups.refresh", "FETCH /api/v3/meterGroup/{meterGroupId}", err, sizeof err);
    CHECK(rc == -1 && strstr(err, "bad method \"FETCH\""), "bad method: %s", err);
    rc = override("meter_groups.refresh", "post /api/v3/meterGroup/{meterGroupId}", err, sizeof err);
    CHECK(rc == -1 && strstr(err, "bad method"), "lower-case method: %s", err);
    rc = override("meter_groups.refresh", "", err, sizeof err);
    CHECK(rc == -1 && strstr(err, "bad method"), "empty: %s", err);
    rc = override("meter_groups.refresh", "POST", err, sizeof err);
    CHECK(rc == -1 && strstr(err, "must start with /api/"), "no path: %s", err);
    rc = override("meter_groups.refresh", "POST /v3/meterGroup/{meterGroupId}", err, sizeof err);
    CHECK(rc == -1 && strstr(err, "must start with /api/"), "not /api/: %s", err);
    rc = override("meter_groups.refresh", "POST https://evil/api/{meterGroupId}", err, sizeof err);
    CHECK(rc == -1 && strstr(err, "must start with /api/"), "absolute URL: %s", err);
    rc = override("meter_groups.refresh", "POST /api/v3/meterGroup/{id}", err, sizeof err);
    CHECK(rc == -1 && strstr(err, "{id} is not a path parameter") && strstr(err, "{meterGroupId}"),
          "wrong placeholder: %s", err);
    rc = override("meter_groups.refresh", "POST /api/v3/meterGroup/all", err, sizeof err);
    CHECK(rc == -1 && strstr(err, "lacks {meterGroupId}"), "missing placeholder: %s", err);
    rc = override("cost_avoidance.bulk_update", "PUT /api/v3/savings/{meterId}", err, sizeof err);
    CHECK(rc == -1 && strstr(err, "none"), "placeholder where none: %s", err);
    rc = override("meter_groups.refresh", "POST /api/v3/{meterGroupId", err, sizeof err);
    CHECK(rc == -1 && strstr(err, "unbalanced"), "unbalanced: %s", err);
    rc = override("meter_groups.refresh", "POST /api/v3/}{meterGroupId}", err, sizeof err);
    CHECK(rc == -1 && strstr(err, "unbalanced"), "unbalanced 2: %s", err);
    rc = override("meter_groups.refresh", "POST /api/v3/{meterGroupId}?x=1", err, sizeof err);
    CHECK(rc == -1 && strstr(err, "not allowed"), "query: %s", err);
    rc = override("meter_groups.refresh", "POST /api/v3/a b/{meterGroupId}", err, sizeof err);
    CHECK(rc == -1 && strstr(err, "not allowed"), "space: %s", err);
    {
        char longspec[600];
        memset(longspec, 'a', sizeof longspec);
        memcpy(longspec, "POST /api/{meterGroupId}/", 25);
        longspec[sizeof longspec - 1] = '\0';
        rc = override("meter_groups.refresh", longspec, err, sizeof err);
        CHECK(rc == -1 && strstr(err, "longer"), "long: %s", err);
    }
    /* a tiny err buffer is never overrun */
    {
        char tiny[8];
        rc = override("nope", "POST /api/x", tiny, sizeof tiny);
        CHECK(rc == -1 && strlen(tiny) < sizeof tiny, "tiny");
        rc = override("meter_groups.refresh", "POST /api/{id}", tiny, sizeof tiny);
        CHECK(rc == -1 && strlen(tiny) < sizeof tiny, "tiny 2");
    }
    /* failed overrides left the last good one in place; reset restores the built-ins */
    LUA_TRUE("local m, p = prep('meter_groups.refresh', 12) return p == '/api/v4/groups/12/refresh'");
    routes_reset();
    LUA_TRUE("local m, p = prep('meter_groups.refresh', 12)\n"
             "return m == 'POST' and p == '/api/v3/meterGroup/12/updateUserAutoGroup'");
    LUA_TRUE("local m, p = prep('cost_avoidance.bulk_update', {filters = {}, numBaselineMonths = 13},"
             " {confirm = 'all meters'})\n"
             "return m == 'PUT' and p == '/api/v3/savings/settings'");
}

int main(void)
{
    L = luaL_newstate();
    if (!L) {
        fprintf(stderr, "cannot create a Lua state\n");
        return 1;
    }
    luaL_openlibs(L);
    routes_reset();
    err_init(L);
    json_push_null(L);
    lua_setglobal(L, "null");
    lua_pushcfunction(L, l_validate);
    lua_setglobal(L, "validate");
    lua_pushcfunction(L, l_prep);
    lua_setglobal(L, "prep");
    if (luaL_dostring(L, prelude)) {
        fprintf(stderr, "prelude: %s\n", lua_tostring(L, -1));
        return 1;
    }

    test_account_meter_edit();
    test_dates();
    test_bulk();
    test_release();
    test_esa();
    test_hostile();
    test_options_and_routes();
    test_register();
    test_overrides();

    lua_close(L);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
