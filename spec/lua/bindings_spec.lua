-- The five EnergyCAP bindings end to end: the real binary against the real simulator. For each
-- binding the exact request on the wire (from GET /api/__sim/requests), the response decoded
-- with the right types, the server's errors as error tables; every documented rule refused
-- before anything is sent; route overrides from the config file.
-- Run: ECAPHOST=build/ecaphost ECAP_SRC=. lua5.4 /usr/bin/busted spec/lua/bindings_spec.lua
local T = require "spec.lua.support"
local cjson = require "cjson"

-- Helpers every test script starts with: out() prints one RESULT line of JSON for the spec;
-- catch() runs f and describes the error table it raised.
local PRELUDE = [[
local function out(t) print("RESULT " .. json.encode(t)) end
local function catch(f, ...)
  local ok, e = pcall(f, ...)
  if ok then return { ok = true } end
  if type(e) ~= "table" then return { ok = false, text = tostring(e) } end
  return { ok = false, kind = e.kind, rule = e.rule, field = e.field, status = e.status,
           method = e.method, path = e.path, message = e.message, operation = e.operation,
           where = e.where, text = tostring(e) }
end
-- An array as decoded: a sequence 1..n, or (empty) marked as a JSON array.
local function is_array(t)
  if type(t) ~= "table" then return false end
  local mt = getmetatable(t)
  if mt ~= nil then return mt == "json.array" end
  local n = 0
  for k in pairs(t) do
    if math.type(k) ~= "integer" then return false end
    n = n + 1
  end
  return n > 0 and n == #t
end
]]

local sim

-- Runs a script (PRELUDE + code) against the simulator; opts.args: host options before the
-- script, opts.env: environment. Returns the result with .results (the decoded RESULT lines).
local function run(code, opts)
  opts = opts or {}
  local r = T.run_script(PRELUDE .. code, opts.args, { quiet = true, url = sim.url, env = opts.env })
  r.results = {}
  for line in r.stdout:gmatch("[^\n]+") do
    local j = line:match("^RESULT (.*)$")
    if j then r.results[#r.results + 1] = cjson.decode(j) end
  end
  return r
end

local function ok_run(code, opts)
  local r = T.expect(0, run(code, opts))
  return r.results[1], r
end

-- The one request recorded, checked for what every request carries.
local function the_request(method, path, query)
  local reqs = sim.requests()
  assert.are.equal(1, #reqs, "expected exactly one request, got " .. cjson.encode(reqs))
  local q = reqs[1]
  assert.are.equal(method, q.method)
  assert.are.equal(path, q.path)
  assert.are.equal(query or "", q.query)
  assert.is_true(q.apiKeyPresent)
  assert.is_true(q.apiKeyAccepted)
  assert.is_nil(q.headers["eci-apikey"]) -- recorded as present/accepted only
  assert.are.equal("application/json", q.headers["content-type"])
  return q
end

local EDIT = [[{beginDate = "2021-01-01", endDate = "2025-10-31", generalLedgerId = 2, vendorTypeId = 3}]]
local CONVERT = [[{
  channelInfo = "HQ total", channelDescription = "Formula channel", dataPointId = 1,
  observationTypeId = 2, summarizationMethodId = 3, isCalculated = true, isPrimaryValue = true,
  isPrimaryDemand = false,
  esaChannelVersion = { formula = "{1} + {2}", multiplier = 1.5, offset = 0, unitId = 1 },
}]]

describe("bindings", function()
  setup(function() sim = T.start_sim({ "--api-key", "test-key" }) end)
  teardown(function() if sim then sim.stop() end end)
  before_each(function() sim.reset() end)

  -- ---- the request on the wire, the response's types ---------------------------------------
  describe("meter_groups.refresh", function()
    it("POSTs to the group's updateUserAutoGroup with no body; decodes GroupMeterGroupResponse", function()
      local r = ok_run [[
        local g, meta = ecap.meter_groups.refresh(6)
        out { status = meta.status, ctype = meta.headers["content-type"],
              id = math.type(g.meterGroupId), count = math.type(g.memberCount),
              user = g.userDefinedAutoGroup, auto = g.autoGroup, code = g.meterGroupCode,
              filters = is_array(g.userDefinedAutoGroupFilters), nfilters = #g.userDefinedAutoGroupFilters,
              fieldId = math.type(g.userDefinedAutoGroupFilters[1].fieldId),
              ops = is_array(g.userDefinedAutoGroupFilters[1].availableOperator),
              category = type(g.meterGroupCategory), lastUpdated = type(g.lastUpdated) }
      ]]
      local q = the_request("POST", "/api/v3/meterGroup/6/updateUserAutoGroup")
      assert.are.equal("", q.body)
      assert.are.same({ status = 200, ctype = "application/json; charset=utf-8", id = "integer",
                        count = "integer", user = true, auto = true, code = "ESA-CALCULATED",
                        filters = true, nfilters = 1, fieldId = "integer", ops = true,
                        category = "table", lastUpdated = "string" }, r)
    end)
  end)

  describe("account_meters.edit", function()
    it("PUTs the body exactly as given; no query without options", function()
      local r = ok_run([[
        local am, meta = ecap.account_meters.edit(2, ]] .. EDIT .. [[)
        out { status = meta.status, id = math.type(am.accountMeterId), endDate = am.endDate,
              beginDate = am.beginDate, gl = am.generalLedger.generalLedgerId,
              glType = math.type(am.generalLedger.generalLedgerId), vt = am.vendorType.vendorTypeId,
              forms = is_array(am.formTemplates), nforms = #am.formTemplates,
              serial = am.meter.serialNumber, dereg = am.deregulated }
      ]])
      local q = the_request("PUT", "/api/v3/accountmeter/2", "")
      assert.are.same({ beginDate = "2021-01-01", endDate = "2025-10-31", generalLedgerId = 2, vendorTypeId = 3 },
                      cjson.decode(q.body))
      assert.truthy(q.body:find('"generalLedgerId":2', 1, true), q.body) -- an integer, not 2.0
      assert.are.same({ status = 200, id = "integer", endDate = "2025-10-31", beginDate = "2021-01-01",
                        gl = 2, glType = "integer", vt = 3, forms = true, nforms = 0,
                        serial = "SN-00137", dereg = false }, r)
    end)

    it("sends deleteBills=false as the query; json.null for a defined field is sent as null", function()
      ok_run([[
        ecap.account_meters.edit(2, {beginDate = "2021-01-01", endDate = "2025-10-31",
                                     generalLedgerId = json.null, vendorTypeId = 1}, {deleteBills = false})
      ]])
      local q = the_request("PUT", "/api/v3/accountmeter/2", "deleteBills=false")
      assert.are.same({ beginDate = "2021-01-01", endDate = "2025-10-31", generalLedgerId = cjson.null,
                        vendorTypeId = 1 }, cjson.decode(q.body))
    end)

    it("sends deleteBills=true with confirm = \"delete bills\" when the run consents (confirm is never sent)", function()
      local r = ok_run([[
        local am, meta = ecap.account_meters.edit(2, ]] .. EDIT .. [[, {deleteBills = true, confirm = "delete bills"})
        out { deleted = meta.headers["x-sim-deleted-bills"] }
      ]], { args = { "--allow-destructive" } })
      local q = the_request("PUT", "/api/v3/accountmeter/2", "deleteBills=true")
      assert.is_nil(q.body:find("confirm", 1, true))
      assert.are.equal("2", r.deleted)
    end)
  end)

  describe("account_meters.get", function()
    it("GETs the relationship; an unknown id is an http 404 error", function()
      local r = ok_run [[
        local am, meta = ecap.account_meters.get(2)
        local ok, e = pcall(ecap.account_meters.get, 999)
        out { account = am.account.accountId, meter = am.meter.meterId, idType = math.type(am.accountMeterId),
              status = meta.status, kind = e.kind, http = e.status }
      ]]
      local reqs = sim.requests()
      assert.are.same({ "GET", "/api/v3/accountmeter/2", "" }, { reqs[1].method, reqs[1].path, reqs[1].body })
      assert.are.same({ "GET", "/api/v3/accountmeter/999" }, { reqs[2].method, reqs[2].path })
      assert.are.same({ account = 1, meter = 1, idType = "integer", status = 200, kind = "http", http = 404 }, r)
    end)
  end)

  describe("cost_avoidance.bulk_update", function()
    it("PUTs all nine keys: the settings left out as null, integers as integers", function()
      local r = ok_run [[
        local t, meta = ecap.cost_avoidance.bulk_update {
          filters = { { fieldId = 1, operator = "equals", value = "7" } },
          numBaselineMonths = 24, coolingNeededAbove = 70, heatingNeededBelow = 50,
        }
        out { status = meta.status, id = math.type(t.costAvoidanceTaskId), endNull = t.endDate == json.null,
              msgNull = t.message == json.null, guid = type(t.taskGUId), filters = is_array(t.filters),
              fieldId = t.filters[1].fieldId, meters = t.baselineLog.numberOfMeters,
              metersType = math.type(t.baselineLog.numberOfMeters), taskType = t.taskType.taskTypeCode }
      ]]
      local q = the_request("PUT", "/api/v3/savings/settings")
      local N = cjson.null
      assert.are.same({
        filters = { { fieldId = 1, operator = "equals", value = "7" } },
        numBaselineMonths = 24, coolingNeededAbove = 70, heatingNeededBelow = 50,
        attemptCoolingAdjustment = N, attemptHeatingAdjustment = N, baselineStartDate = N,
        includeMeterInCostAvoidance = N, savingsStartDate = N,
      }, cjson.decode(q.body))
      for _, s in ipairs { '"numBaselineMonths":24', '"fieldId":1', '"coolingNeededAbove":70' } do
        assert.truthy(q.body:find(s, 1, true), s .. " in " .. q.body)
      end
      assert.are.same({ status = 200, id = "integer", endNull = true, msgNull = true, guid = "string",
                        filters = true, fieldId = 1, meters = 2, metersType = "integer",
                        taskType = "COSTAVOIDANCE" }, r)
    end)

    it("sends an empty filters list confirmed with \"all meters\" when the run consents (confirm never sent)", function()
      local r = ok_run([[
        local t = ecap.cost_avoidance.bulk_update({ filters = {}, includeMeterInCostAvoidance = true },
                                                  { confirm = "all meters" })
        out { meters = t.baselineLog.numberOfMeters }
      ]], { args = { "--allow-destructive" } })
      local q = the_request("PUT", "/api/v3/savings/settings")
      assert.truthy(q.body:find('"filters":[]', 1, true), q.body)
      assert.is_nil(q.body:find("confirm", 1, true))
      assert.are.equal(20, r.meters)
    end)

    it("sends an empty filters list under --allow-destructive without confirm", function()
      ok_run([[ecap.cost_avoidance.bulk_update { filters = {}, numBaselineMonths = 12 }]],
             { args = { "--allow-destructive" } })
      the_request("PUT", "/api/v3/savings/settings")
    end)
  end)

  describe("meters.apply_release", function()
    it("POSTs the release; decodes DataAccessReleaseState", function()
      local r = ok_run [[
        local s, meta = ecap.meters.apply_release(7, { accountNumber = "200173450001",
          nameOnBill = "Warehouse 7 LLC", serviceAddress = "7 Depot Lane", declined = false })
        out { status = meta.status, id = s.releaseStatus.dataAccessReleaseStatusId,
              idType = math.type(s.releaseStatus.dataAccessReleaseStatusId),
              info = s.releaseStatus.dataAccessReleaseStatusInfo, submitted = type(s.submittedDate) }
      ]]
      local q = the_request("POST", "/api/v202203/utilityPlatform/meter/7/release")
      assert.are.same({ accountNumber = "200173450001", nameOnBill = "Warehouse 7 LLC",
                        serviceAddress = "7 Depot Lane", declined = false }, cjson.decode(q.body))
      assert.are.same({ status = 200, id = 3, idType = "integer", info = "Pending", submitted = "string" }, r)
    end)
  end)

  describe("meters.convert_to_esa_calculated", function()
    it("POSTs the EsaChannelCreate (integers and floats as given); decodes MeterResponse", function()
      local r = ok_run([[
        local m, meta = ecap.meters.convert_to_esa_calculated(5, ]] .. CONVERT .. [[)
        out { status = meta.status, id = math.type(m.meterId), esa = m.isEsaCalculatedMeter,
              channels = is_array(m.channels), n = #m.channels, channelId = math.type(m.channels[1].channelId),
              interval = math.type(m.channels[1].interval), primaryUse = m.primaryUse == json.null,
              accounts = is_array(m.accounts), lat = math.type(m.address.latitude),
              props = getmetatable(m.properties) }
      ]])
      local q = the_request("POST", "/api/v202510/meter/5/esaCalculatedMeter")
      local body = cjson.decode(q.body)
      assert.are.same({
        channelInfo = "HQ total", channelDescription = "Formula channel", dataPointId = 1,
        observationTypeId = 2, summarizationMethodId = 3, isCalculated = true, isPrimaryValue = true,
        isPrimaryDemand = false,
        esaChannelVersion = { formula = "{1} + {2}", multiplier = 1.5, offset = 0, unitId = 1 },
      }, body)
      for _, s in ipairs { '"dataPointId":1', '"summarizationMethodId":3', '"offset":0', '"multiplier":1.5' } do
        assert.truthy(q.body:find(s, 1, true), s .. " in " .. q.body)
      end
      assert.is_nil(q.body:find("intervalMinutes", 1, true))
      assert.are.same({ status = 200, id = "integer", esa = true, channels = true, n = 1, channelId = "integer",
                        interval = "integer", primaryUse = true, accounts = true, lat = "float",
                        props = "json.object" }, r)
    end)
  end)

  -- ---- the server's errors as error tables -----------------------------------------------
  describe("server errors", function()
    it("404, 400, 403 and 401 become http error tables (kind, status, method, path, message)", function()
      sim.fault({ mode = "status", status = 403, pathPrefix = "/api/v202203/" })
      local all = ok_run([[
        local r = {}
        r[1] = catch(ecap.meter_groups.refresh, 999)
        r[2] = catch(ecap.meter_groups.refresh, 4)
        r[3] = catch(ecap.meters.convert_to_esa_calculated, 1, ]] .. CONVERT .. [[)
        r[4] = catch(ecap.meters.apply_release, 7, { accountNumber = "200173450001", nameOnBill = "A", serviceAddress = "B" })
        out(r)
      ]])
      local e404, e400, e400b, e403 = all[1], all[2], all[3], all[4]
      assert.are.same({ false, "http", 404, "POST", "/api/v3/meterGroup/999/updateUserAutoGroup" },
                      { e404.ok, e404.kind, e404.status, e404.method, e404.path })
      assert.are.equal("meter group 999 not found", e404.message)
      assert.matches("%.lua:3$", e404.where) -- the pcall in catch(), the script's own innermost line
      assert.are.equal(e404.where .. ": http 404 POST /api/v3/meterGroup/999/updateUserAutoGroup: meter group 999 not found",
                       e404.text)
      assert.are.same({ "http", 400, "POST", "/api/v3/meterGroup/4/updateUserAutoGroup" },
                      { e400.kind, e400.status, e400.method, e400.path })
      assert.truthy(e400.message:find("manual group", 1, true), e400.message)
      assert.are.same({ "http", 400, "/api/v202510/meter/1/esaCalculatedMeter" }, { e400b.kind, e400b.status, e400b.path })
      assert.truthy(e400b.message:find("already has ESA channels", 1, true), e400b.message)
      assert.are.same({ "http", 403, "POST", "/api/v202203/utilityPlatform/meter/7/release" },
                      { e403.kind, e403.status, e403.method, e403.path })
      assert.are.equal("simulated fault: status 403", e403.message)
      assert.are.equal(4, #sim.requests()) -- each sent once: none of these is retried
    end)

    it("401 for a key the server does not accept: an error table, the key recorded as not accepted", function()
      local r = ok_run([[out(catch(ecap.meter_groups.refresh, 6))]], { env = { ECAP_API_KEY = "wrong-key" } })
      assert.are.same({ false, "http", 401, "POST", "/api/v3/meterGroup/6/updateUserAutoGroup",
                        "the ECI-ApiKey is not valid" }, { r.ok, r.kind, r.status, r.method, r.path, r.message })
      local reqs = sim.requests()
      assert.are.equal(1, #reqs)
      assert.is_true(reqs[1].apiKeyPresent)
      assert.is_false(reqs[1].apiKeyAccepted)
    end)
  end)

  -- ---- every rule refused before anything is sent ------------------------------------------
  describe("rules", function()
    -- The seeds' example request bodies exactly as published (JSON text of the seed pages).
    local SEED_EDIT = [[{ "beginDate": "2026-03-30", "endDate": "2026-03-30", "generalLedgerId": 1, "vendorTypeId": 1
}]]
    local SEED_BULK = [[{ "attemptCoolingAdjustment": false, "attemptHeatingAdjustment": false, "baselineStartDate": "2026-03-30", "coolingNeededAbove": 1, "filters": [
{ "fieldId": 1, "operator": "string", "value": "string"
}
], "heatingNeededBelow": 1, "includeMeterInCostAvoidance": false, "numBaselineMonths": 1, "savingsStartDate": "2026-03-30"
}]]
    local SEED_RELEASE = [[{ "accountNumber": "string", "dataReleaseFile": "string", "declined": false, "nameOnBill": "string", "serviceAddress": "string"
}]]
    local SEED_ESA = [[{ "channelDescription": "string", "channelImportId": "string", "channelInfo": "string", "dataPointId": 1, "esaChannelVersion": { "formula": "string", "isValuePositive": false, "maximumReading": 1, "minimumReading": 1, "multiplier": 1, "observationRuleId": 1, "offset": 1, "rollbackAllowance": 1, "rolloverValue": 1, "unitId": 1
}, "intervalMinutes": 1, "isCalculated": false, "isPrimaryDemand": false, "isPrimaryValue": false, "observationTypeId": 1, "summarizationMethodId": 1
}]]

    -- name, Lua call, expected field, rule (nil field = no field)
    local CASES = {
      { "seed AccountMeterEdit (begin == end)", "ecap.account_meters.edit, 2, json.decode(SEED_EDIT)", "endDate", "order" },
      { "seed BulkMeterCostAvoidanceSettings (numBaselineMonths 1)", "ecap.cost_avoidance.bulk_update, json.decode(SEED_BULK)", "numBaselineMonths", "range" },
      { "seed DataAccessReleaseRequest (accountNumber \"string\")", "ecap.meters.apply_release, 7, json.decode(SEED_RELEASE)", "accountNumber", "pattern" },
      { "seed EsaChannelCreate (intervalMinutes 1)", "ecap.meters.convert_to_esa_calculated, 5, json.decode(SEED_ESA)", "intervalMinutes", "one_of" },
      { "unknown field (typo numBaselineMonth)", "ecap.cost_avoidance.bulk_update, {filters = {{fieldId = 1, operator = 'equals', value = '7'}}, numBaselineMonth = 24}", "numBaselineMonth", "unknown" },
      { "float id 1.5", "ecap.meter_groups.refresh, 1.5", "meterGroupId", "type" },
      { "id as a string", "ecap.meters.apply_release, '7', {accountNumber = '200173450001', nameOnBill = 'A', serviceAddress = 'B'}", "meterId", "type" },
      { "id 0", "ecap.account_meters.edit, 0, " .. EDIT, "accountMeterId", "range" },
      { "id 2^31", "ecap.meter_groups.refresh, 2147483648", "meterGroupId", "range" },
      { "boolean as a string", "ecap.cost_avoidance.bulk_update, {filters = {}, includeMeterInCostAvoidance = 'true'}", "includeMeterInCostAvoidance", "type" },
      { "integer as a string", "ecap.cost_avoidance.bulk_update, {filters = {{fieldId = 1, operator = 'equals', value = '7'}}, numBaselineMonths = '24'}", "numBaselineMonths", "type" },
      { "filter fieldId as a float", "ecap.cost_avoidance.bulk_update, {filters = {{fieldId = 1.5, operator = 'equals'}}, numBaselineMonths = 24}", "filters[1].fieldId", "type" },
      { "filters not an array", "ecap.cost_avoidance.bulk_update, {filters = {fieldId = 1, operator = 'equals'}, numBaselineMonths = 24}", "filters", "type" },
      { "date after 3000-01-01", "ecap.account_meters.edit, 2, {beginDate = '2021-01-01', endDate = '3000-01-02', generalLedgerId = 1, vendorTypeId = 1}", "endDate", "range" },
      { "date before 1899-12-31", "ecap.cost_avoidance.bulk_update, {filters = {{fieldId = 1, operator = 'equals', value = '7'}}, savingsStartDate = '1899-12-30'}", "savingsStartDate", "range" },
      { "not a calendar day", "ecap.cost_avoidance.bulk_update, {filters = {{fieldId = 1, operator = 'equals', value = '7'}}, baselineStartDate = '2023-02-29'}", "baselineStartDate", "format" },
      { "end before begin", "ecap.account_meters.edit, 2, {beginDate = '2021-01-01', endDate = '2020-01-01', generalLedgerId = 1, vendorTypeId = 1}", "endDate", "order" },
      { "edit field left out", "ecap.account_meters.edit, 2, {beginDate = '2021-01-01', endDate = '2025-01-01', generalLedgerId = 1}", "vendorTypeId", "required" },
      { "numBaselineMonths 37", "ecap.cost_avoidance.bulk_update, {filters = {{fieldId = 1, operator = 'equals', value = '7'}}, numBaselineMonths = 37}", "numBaselineMonths", "range" },
      { "cooling below heating", "ecap.cost_avoidance.bulk_update, {filters = {{fieldId = 1, operator = 'equals', value = '7'}}, coolingNeededAbove = 50, heatingNeededBelow = 60}", "coolingNeededAbove", "order" },
      { "no setting non-null", "ecap.cost_avoidance.bulk_update, {filters = {{fieldId = 1, operator = 'equals', value = '7'}}, numBaselineMonths = json.null}", nil, "at_least_one" },
      { "accountNumber pattern (11 digits)", "ecap.meters.apply_release, 7, {accountNumber = '20017345000', nameOnBill = 'A', serviceAddress = 'B'}", "accountNumber", "pattern" },
      { "accountNumber not starting with 2", "ecap.meters.apply_release, 7, {accountNumber = '300173450001', nameOnBill = 'A', serviceAddress = 'B'}", "accountNumber", "pattern" },
      { "nameOnBill empty", "ecap.meters.apply_release, 7, {accountNumber = '200173450001', nameOnBill = '', serviceAddress = 'B'}", "nameOnBill", "length" },
      { "channelInfo > 50 characters", "ecap.meters.convert_to_esa_calculated, 5, (function() local b = " .. CONVERT .. " b.channelInfo = string.rep('x', 51) return b end)()", "channelInfo", "length" },
      { "channelDescription > 255 characters", "ecap.meters.convert_to_esa_calculated, 5, (function() local b = " .. CONVERT .. " b.channelDescription = string.rep('x', 256) return b end)()", "channelDescription", "length" },
      { "intervalMinutes on a formula channel", "ecap.meters.convert_to_esa_calculated, 5, (function() local b = " .. CONVERT .. " b.intervalMinutes = 15 return b end)()", "intervalMinutes", "formula_channel" },
      { "isCalculated false", "ecap.meters.convert_to_esa_calculated, 5, (function() local b = " .. CONVERT .. " b.isCalculated = false return b end)()", "isCalculated", "formula_channel" },
      { "no formula", "ecap.meters.convert_to_esa_calculated, 5, (function() local b = " .. CONVERT .. " b.esaChannelVersion.formula = nil return b end)()", "esaChannelVersion.formula", "formula_channel" },
      { "deleteBills without confirm", "ecap.account_meters.edit, 2, " .. EDIT .. ", {deleteBills = true}", "deleteBills", "guard" },
      { "deleteBills with a wrong confirm", "ecap.account_meters.edit, 2, " .. EDIT .. ", {deleteBills = true, confirm = 'yes'}", "deleteBills", "guard" },
      { "empty filters without confirm", "ecap.cost_avoidance.bulk_update, {filters = {}, numBaselineMonths = 24}", "filters", "guard" },
      { "empty filters with a wrong confirm", "ecap.cost_avoidance.bulk_update, {filters = {}, numBaselineMonths = 24}, {confirm = 'all'}", "filters", "guard" },
      { "null filters without confirm", "ecap.cost_avoidance.bulk_update, {filters = json.null, numBaselineMonths = 24}", "filters", "guard" },
      { "unknown option", "ecap.cost_avoidance.bulk_update, {filters = {}, numBaselineMonths = 24}, {confirmed = 'all meters'}", "confirmed", "unknown" },
      { "a body passed to refresh", "ecap.meter_groups.refresh, 6, {}", nil, "arguments" },
    }

    it("are refused with a validation error naming field and rule; no request is sent", function()
      local lines = {
        "local SEED_EDIT = [==[" .. SEED_EDIT .. "]==]",
        "local SEED_BULK = [==[" .. SEED_BULK .. "]==]",
        "local SEED_RELEASE = [==[" .. SEED_RELEASE .. "]==]",
        "local SEED_ESA = [==[" .. SEED_ESA .. "]==]",
        "local r = {}",
      }
      for i, c in ipairs(CASES) do
        lines[#lines + 1] = string.format("r[%d] = catch(%s)", i, c[2])
      end
      lines[#lines + 1] = "out(r)"
      local all = ok_run(table.concat(lines, "\n"))
      for i, c in ipairs(CASES) do
        local e = all[i]
        assert.is_table(e, c[1])
        assert.is_false(e.ok, c[1] .. ": accepted")
        assert.are.same({ c[1], "validation", c[3], c[4] }, { c[1], e.kind, e.field, e.rule })
        assert.are.equal(e.where .. ": validation: " .. e.message, e.text)
        assert.matches("%.lua:3$", e.where)
        assert.is_string(e.operation, c[1])
      end
      assert.are.same({}, sim.requests())
    end)

    it("name the rule in one line: the messages of the two guards", function()
      local all = ok_run [[
        out { catch(ecap.account_meters.edit, 2, {beginDate = "2021-01-01", endDate = "2025-10-31",
                    generalLedgerId = 1, vendorTypeId = 1}, {deleteBills = true}),
              catch(ecap.cost_avoidance.bulk_update, {filters = {}, numBaselineMonths = 24}) }
      ]]
      assert.are.equal("deleteBills=true deletes whole bills, other meters' lines included: pass "
        .. "confirm = \"delete bills\" in the options table, or run with --allow-destructive", all[1].message)
      assert.are.equal("filters = {} matches every meter in the database: pass confirm = \"all meters\" "
        .. "in the options table, or run with --allow-destructive", all[2].message)
      assert.are.equal("cost_avoidance.bulk_update", all[2].operation)
      assert.are.same({}, sim.requests())
    end)
  end)

  -- ---- route overrides from the config file --------------------------------------------------
  describe("route overrides", function()
    local function config(text) return T.write(T.tmpname(".conf"), text) end

    it("the documented override line keeps the route working", function()
      local f = config("route.meter_groups.refresh = POST /api/v3/meterGroup/{meterGroupId}/updateUserAutoGroup\n")
      local r = ok_run([[out { code = ecap.meter_groups.refresh(7).meterGroupCode }]], { args = { "--config", f } })
      assert.are.equal("ACTIVE-GAS", r.code)
      the_request("POST", "/api/v3/meterGroup/7/updateUserAutoGroup")
    end)

    it("a changed route is called on the overridden method and path (404 from the simulator)", function()
      local f = config("route.meter_groups.refresh = PUT /api/v4/groups/{meterGroupId}/refresh\n")
      local e = ok_run([[out(catch(ecap.meter_groups.refresh, 7))]], { args = { "--config", f } })
      assert.are.same({ "http", 404, "PUT", "/api/v4/groups/7/refresh" }, { e.kind, e.status, e.method, e.path })
      the_request("PUT", "/api/v4/groups/7/refresh")
    end)

    it("an override with a wrong placeholder is a configuration error (exit 3), nothing sent", function()
      local f = config("route.meters.apply_release = POST /api/v202203/utilityPlatform/meter/{id}/release\n")
      local r = run([[ecap.meter_groups.refresh(7)]], { args = { "--config", f } })
      assert.are.equal(3, r.code, r.stderr)
      assert.truthy(r.stderr:find("{id}", 1, true), r.stderr)
      assert.are.same({}, sim.requests())
    end)
  end)
end)
