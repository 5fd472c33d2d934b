-- The built-in simulator (`ecaphost sim`), driven through raw HTTP with curl.
-- Run: ECAPHOST=build/ecaphost lua5.4 /usr/bin/busted spec/lua/sim_spec.lua
local T = require "spec.lua.support"
local cjson = require "cjson"

local function call(sim, method, path, body, opts)
  opts = opts or {}
  opts.method = method
  if type(body) == "table" then body = cjson.encode(body) end
  opts.body = body
  local r = T.http(sim.url .. path, opts)
  r.json = function() return T.json(r.body) end
  return r
end

local function get(sim, path, opts) return call(sim, "GET", path, nil, opts) end
local function reset(sim) assert.equal(200, call(sim, "POST", "/api/__sim/reset").status) end

-- A 400 whose JSON message names `field`.
local function assert_bad(r, field)
  assert.equal(400, r.status, r.body)
  local msg = T.json(r.body).message
  assert.is_string(msg)
  assert.truthy(msg:find(field, 1, true), "message should name " .. field .. ": " .. msg)
end

-- Raw curl for what T.http cannot show (exit codes of cut connections, timings).
local function curl(sim, path, extra)
  return T.sh(string.format("curl -sS -o /dev/null -w '%%{http_code}' --max-time 10 -H 'ECI-ApiKey: k' %s %s",
                            extra or "", T.q(sim.url .. path)))
end

-- Runs a multi-line shell script as one command (T.sh redirects the whole block).
local function script(text) return T.sh("{\n" .. text .. "\n}") end

local function state(sim) return get(sim, "/api/__sim/state").json() end

local function count_bills(sim, accountId, meterId)
  local n = 0
  for _, b in ipairs(state(sim).bills) do
    if b.accountId == accountId then
      for _, l in ipairs(b.lines) do if l.meterId == meterId then n = n + 1 break end end
    end
  end
  return n
end

local CONVERT = {
  channelInfo = "HQ total", dataPointId = 1, observationTypeId = 1, summarizationMethodId = 1,
  isCalculated = true, isPrimaryValue = true, esaChannelVersion = { formula = "{1} + {2}", multiplier = 1.0 },
}
local function convert_body(over)
  local b = {}
  for k, v in pairs(CONVERT) do b[k] = v end
  b.esaChannelVersion = { formula = CONVERT.esaChannelVersion.formula, multiplier = 1.0 }
  for k, v in pairs(over or {}) do b[k] = v end
  return b
end

local SETTINGS_NULLS = [["attemptCoolingAdjustment":null,"attemptHeatingAdjustment":null,
  "baselineStartDate":null,"coolingNeededAbove":null,"heatingNeededBelow":null,
  "includeMeterInCostAvoidance":null,"savingsStartDate":null]]

local function settings_body(filters, extra)
  return string.format('{"filters":%s,%s,"numBaselineMonths":%s}', filters, SETTINGS_NULLS, extra or "24")
end

local RELEASE = { accountNumber = "212345678901", nameOnBill = "ACME Corp", serviceAddress = "7 Depot Lane" }

describe("ecaphost sim (command line)", function()
  it("prints the listening line first, serves, and exits 0 on SIGTERM", function()
    local r = script((string.format([[
      %s sim --port 0 --quiet > %s 2>&1 & pid=$!
      for i in $(seq 50); do [ -s %s ] && break; sleep 0.1; done
      url=$(head -1 %s | sed 's/^listening on //')
      curl -s -o /dev/null -w '%%{http_code}\n' -H 'ECI-ApiKey: k' "$url/api/v3/meter/1"
      kill -TERM $pid; wait $pid; echo "exit=$?"; head -1 %s]],
      T.q(T.bin), "$T/out", "$T/out", "$T/out", "$T/out"):gsub("%$T", T.tmpdir())))
    assert.truthy(r.stdout:find("200\n", 1, true), r.stdout)
    assert.truthy(r.stdout:find("exit=0", 1, true), r.stdout)
    assert.truthy(r.stdout:find("listening on http://127%.0%.0%.1:%d+"), r.stdout)
  end)

  it("answers --help and refuses bad options with exit code 2", function()
    local h = T.run({ "sim", "--help" })
    assert.equal(0, h.code)
    assert.truthy(h.stdout:find("--rate-limit", 1, true))
    for _, args in ipairs({ { "sim", "--bogus" }, { "sim", "--port" }, { "sim", "--port", "70000" },
                            { "sim", "--latency", "fast" }, { "sim", "--fail-rate", "2" },
                            { "sim", "--rate-limit", "x/s" } }) do
      local r = T.run(args)
      assert.equal(2, r.code, table.concat(args, " "))
      assert.truthy(#r.stderr > 0)
    end
  end)

  it("refuses a missing or malformed data file", function()
    local r = T.run({ "sim", "--port", "0", "--data", "/nonexistent.json" })
    assert.are_not.equal(0, r.code)
    assert.truthy(r.stderr:find("nonexistent", 1, true))
    local bad = T.write(T.tmpname(".json"), '{"meters": [{"meterId": 1}]}')
    r = T.run({ "sim", "--port", "0", "--data", bad })
    assert.are_not.equal(0, r.code)
    assert.truthy(r.stderr:find("meter 1", 1, true), r.stderr)
  end)

  it("logs one line per request to stderr", function()
    local sim = T.start_sim()
    get(sim, "/api/v3/meter/1")
    get(sim, "/api/v3/meter/999")
    sim.stop()
    local log = sim.log_text()
    assert.truthy(log:find("GET /api/v3/meter/1 200 [%d%.]+ms"), log)
    assert.truthy(log:find("GET /api/v3/meter/999 404 [%d%.]+ms"), log)
  end)

  it("loads another data set with --data", function()
    local data = T.write(T.tmpname(".json"), cjson.encode({
      commodities = { { commodityId = 1, commodityCode = "ELECTRIC" } },
      meterTypes = { { meterTypeId = 1, meterTypeCode = "E" } },
      places = { { placeId = 1, placeCode = "P1" } },
      meters = { { meterId = 42, meterCode = "M42", placeId = 1, commodityId = 1, meterTypeId = 1 } },
      meterGroupCategories = { { meterGroupCategoryId = 1, meterGroupCategoryCode = "C" } },
    }))
    local sim = T.start_sim({ "--data", data })
    local r = get(sim, "/api/v3/meter")
    sim.stop()
    assert.equal(200, r.status)
    assert.equal("1", r.headers["totalnumberofrecords"])
    assert.equal(42, r.json()[1].meterId)
  end)
end)

describe("simulator HTTP basics", function()
  local sim
  setup(function() sim = T.start_sim() end)
  teardown(function() sim.stop() end)

  it("requires an ECI-ApiKey (any non-empty key without --api-key)", function()
    assert.equal(401, get(sim, "/api/v3/meter/1", { key = false }).status)
    assert.equal(401, get(sim, "/api/v3/meter/1", { key = "" }).status)
    assert.equal(200, get(sim, "/api/v3/meter/1", { key = "anything" }).status)
    assert.equal(401, get(sim, "/api/__sim/state", { key = false }).status)
  end)

  it("answers 404 for unknown routes and ids, 405 for a wrong method", function()
    assert.equal(404, get(sim, "/api/v3/nothing").status)
    assert.equal(404, get(sim, "/api/v3/meter/999").status)
    local r = call(sim, "DELETE", "/api/v3/meter/1")
    assert.equal(405, r.status)
    assert.equal("GET", r.headers["allow"])
    assert.equal(405, call(sim, "GET", "/api/v3/savings/settings").status)
  end)

  it("checks path ids are int32 ids", function()
    assert_bad(get(sim, "/api/v3/meter/abc"), "meterId")
    assert_bad(get(sim, "/api/v3/meter/0"), "meterId")
    assert_bad(get(sim, "/api/v3/meter/2147483648"), "meterId")
    assert.equal(404, get(sim, "/api/v3/meter/2147483647").status)
  end)

  it("refuses bad JSON, non-object bodies and huge bodies", function()
    assert_bad(call(sim, "PUT", "/api/v3/savings/settings", "{not json"), "body")
    assert_bad(call(sim, "PUT", "/api/v3/savings/settings", "[1,2]"), "body")
    assert_bad(call(sim, "PUT", "/api/v3/savings/settings", ""), "body")
    local r = call(sim, "PUT", "/api/v3/savings/settings", string.rep("x", 2 * 1024 * 1024))
    assert.equal(413, r.status)
    -- still serving
    assert.equal(200, get(sim, "/api/v3/meter/1").status)
  end)

  it("refuses a non-JSON content type", function()
    local r = call(sim, "PUT", "/api/v3/savings/settings", settings_body("[]"),
                   { headers = { ["Content-Type"] = "text/plain" } })
    assert.equal(415, r.status)
  end)

  it("keeps connections alive (HTTP/1.1)", function()
    local r = T.sh(string.format("curl -sv -o /dev/null -o /dev/null -H 'ECI-ApiKey: k' %s %s",
                                 T.q(sim.url .. "/api/v3/meter/1"), T.q(sim.url .. "/api/v3/meter/2")))
    assert.truthy(r.stderr:find("Re%-using existing connection") or r.stderr:find("Reusing existing"), r.stderr)
  end)
end)

describe("simulator meters and groups", function()
  local sim
  setup(function() sim = T.start_sim() end)
  teardown(function() sim.stop() end)

  it("returns a meter in the MeterResponse shape", function()
    local r = get(sim, "/api/v3/meter/1")
    assert.equal(200, r.status)
    local m = r.json()
    assert.equal(1, m.meterId)
    assert.equal("E-HQ-MAIN", m.meterCode)
    assert.equal("ELECTRIC", m.commodity.commodityCode)
    assert.equal(101, m.channels[1].channelId)
    assert.equal(false, m.isEsaCalculatedMeter)
    assert.equal(2, #m.accounts)
    assert.truthy(r.body:find('"meterId":1,', 1, true)) -- integers stay integers
    -- a meter without channels or accounts: empty lists, and nulls
    local five = get(sim, "/api/v3/meter/5")
    assert.truthy(five.body:find('"channels":[]', 1, true))
    assert.truthy(five.body:find('"accounts":[]', 1, true))
    assert.truthy(five.body:find('"route":null', 1, true))
  end)

  it("lists meters with paging headers", function()
    local r = get(sim, "/api/v3/meter?pageSize=7&pageNumber=3")
    assert.equal(200, r.status)
    assert.equal("3", r.headers["pagenumber"])
    assert.equal("7", r.headers["pagesize"])
    assert.equal("20", r.headers["totalnumberofrecords"])
    assert.equal("3", r.headers["totalpages"])
    assert.equal(6, #r.json())
    local d = get(sim, "/api/v3/meter")
    assert.equal("250", d.headers["pagesize"])
    assert.equal(20, #d.json())
    assert_bad(get(sim, "/api/v3/meter?pageSize=1001"), "pageSize")
    assert_bad(get(sim, "/api/v3/meter?pageNumber=0"), "pageNumber")
    assert.equal(0, #get(sim, "/api/v3/meter?pageNumber=9").json())
  end)

  it("filters meters", function()
    local function ids(q)
      local r = get(sim, "/api/v3/meter?filter=" .. q:gsub(" ", "%%20"):gsub("'", "%%27"):gsub("%%%%", "%%25"))
      assert.equal(200, r.status, r.body)
      local out = {}
      for _, m in ipairs(r.json()) do out[#out + 1] = m.meterId end
      return out
    end
    assert.same({ 13, 14, 15, 16 }, ids("commodityCode equals 'WATER'"))
    assert.same({ 13, 14, 15 }, ids("commodityCode equals 'water' and active equals 'true'"))
    assert.same({ 1, 2, 5, 20 }, ids("meterCode like 'E-HQ-%%'"))
    assert.same({ 18, 19, 20 }, ids("meterId greater than '17'"))
    assert.same({ 1, 2 }, ids("meterId less than '3'"))
    assert.same({ 1, 2, 5, 9, 13 }, ids("meterGroupId equals '4'"))
    assert.same({ 16, 20 }, ids("active not equals 'true'"))
    assert_bad(get(sim, "/api/v3/meter?filter=colour%20equals%20'red'"), "colour")
    assert_bad(get(sim, "/api/v3/meter?filter=meterCode%20sounds%20like%20'x'"), "filter")
    assert_bad(get(sim, "/api/v3/meter?filter=meterId%20equals%20'abc'"), "filter")
  end)

  it("lists a meter's groups and the meter groups, with filters", function()
    local r = get(sim, "/api/v3/meter/1/group")
    assert.equal(200, r.status)
    local codes = {}
    for _, g in ipairs(r.json()) do codes[#codes + 1] = g.meterGroupCode end
    assert.same({ "SYS-ELECTRIC", "HQ-METERS" }, codes)
    assert.equal(404, get(sim, "/api/v3/meter/999/group").status)

    local u = get(sim, "/api/v3/meterGroup?filter=userDefinedAutoGroup%20equals%20'true'")
    assert.equal(200, u.status)
    assert.equal("3", u.headers["totalnumberofrecords"])
    local g = u.json()[1]
    assert.equal("ESA-CALCULATED", g.meterGroupCode)
    assert.equal(true, g.userDefinedAutoGroup)
    assert.equal(6, g.userDefinedAutoGroupFilters[1].fieldId)
    assert.equal("isEsaCalculatedMeter", g.userDefinedAutoGroupFilters[1].queryParameterName)
    local c = get(sim, "/api/v3/meterGroup?filter=meterGroupCode%20equals%20'HQ-METERS'").json()
    assert.equal(1, #c)
    assert.equal(4, c[1].meterGroupId)
    assert.equal(5, c[1].memberCount)
    assert.equal("MULTIPLE", c[1].memberCommodityCode)
    assert.equal("8", get(sim, "/api/v3/meterGroup").headers["totalnumberofrecords"])
  end)
end)

describe("simulator operations", function()
  local sim
  setup(function() sim = T.start_sim({ "--task-delay", "300ms" }) end)
  teardown(function() sim.stop() end)
  before_each(function() reset(sim) end)

  describe("ESA conversion", function()
    local path = "/api/v202510/meter/5/esaCalculatedMeter"

    it("converts a meter once; a second conversion is refused", function()
      local r = call(sim, "POST", path, convert_body())
      assert.equal(200, r.status, r.body)
      local m = r.json()
      assert.equal(true, m.isEsaCalculatedMeter)
      assert.equal(1, #m.channels)
      assert.equal("HQ total", m.channels[1].channelCode)
      assert.equal(15, m.channels[1].interval)
      assert.equal(true, get(sim, "/api/v3/meter/5").json().isEsaCalculatedMeter)
      assert_bad(call(sim, "POST", path, convert_body()), "meterId")
    end)

    it("refuses a meter that has ESA channels already", function()
      assert_bad(call(sim, "POST", "/api/v202510/meter/1/esaCalculatedMeter",
                      convert_body({ esaChannelVersion = { formula = "{2}" } })), "already has ESA channels")
    end)

    it("refuses formulas naming non-ESA or unknown meters, and syntax errors with the position", function()
      assert_bad(call(sim, "POST", path, convert_body({ esaChannelVersion = { formula = "{1} + {7}" } })), "{7}")
      assert_bad(call(sim, "POST", path, convert_body({ esaChannelVersion = { formula = "{1} + {999}" } })), "{999}")
      assert_bad(call(sim, "POST", path, convert_body({ esaChannelVersion = { formula = "{5}" } })), "{5}")
      local r = call(sim, "POST", path, convert_body({ esaChannelVersion = { formula = "({1} + * 2" } }))
      assert_bad(r, "position 8")
      assert_bad(call(sim, "POST", path, convert_body({ esaChannelVersion = { formula = "({1} + {2}" } })), "')'")
      assert_bad(call(sim, "POST", path, convert_body({ esaChannelVersion = { formula = "   " } })), "formula")
      assert_bad(call(sim, "POST", path, convert_body({ esaChannelVersion = { formula = "2 * 3" } })), "formula")
      -- none of them changed the meter
      assert.equal(false, get(sim, "/api/v3/meter/5").json().isEsaCalculatedMeter)
      -- a valid formula with numbers, parentheses and all four operators
      assert.equal(200, call(sim, "POST", path, convert_body({
        esaChannelVersion = { formula = " ({1} + {2}) * 0.5 - {17} / 2 " } })).status)
    end)

    it("checks the EsaChannelCreate rules", function()
      assert_bad(call(sim, "POST", path, convert_body({ channelInfo = string.rep("c", 51) })), "channelInfo")
      assert.equal(200, call(sim, "POST", "/api/v202510/meter/6/esaCalculatedMeter",
                             convert_body({ channelInfo = string.rep("c", 50) })).status)
      assert_bad(call(sim, "POST", path, convert_body({ channelInfo = cjson.null })), "channelInfo")
      assert_bad(call(sim, "POST", path, convert_body({ channelDescription = string.rep("d", 256) })), "channelDescription")
      assert_bad(call(sim, "POST", path, convert_body({ channelImportId = string.rep("i", 256) })), "channelImportId")
      assert_bad(call(sim, "POST", path, convert_body({ dataPointId = cjson.null })), "dataPointId")
      assert_bad(call(sim, "POST", path, convert_body({ observationTypeId = "1" })), "observationTypeId")
      assert_bad(call(sim, "POST", path, convert_body({ summarizationMethodId = 2147483648 })), "summarizationMethodId")
      assert_bad(call(sim, "POST", path, convert_body({ isCalculated = false, intervalMinutes = 15 })), "isCalculated")
      assert_bad(call(sim, "POST", path, convert_body({ intervalMinutes = 15 })), "intervalMinutes")
      assert_bad(call(sim, "POST", path, convert_body({ intervalMinutes = 7 })), "intervalMinutes")
      assert_bad(call(sim, "POST", path, convert_body({ isCalculated = "yes" })), "isCalculated")
      assert_bad(call(sim, "POST", path, convert_body({ esaChannelVersion = { formula = "{1}", multiplier = "x" } })),
                 "esaChannelVersion.multiplier")
      assert.equal(404, call(sim, "POST", "/api/v202510/meter/999/esaCalculatedMeter", convert_body()).status)
    end)
  end)

  describe("user-defined auto groups", function()
    it("refresh one recomputes members and lastUpdated; the converted meter joins", function()
      local before = get(sim, "/api/v3/meterGroup?filter=meterGroupId%20equals%20'6'").json()[1]
      assert.equal(0, before.memberCount)
      assert.equal(200, call(sim, "POST", "/api/v202510/meter/5/esaCalculatedMeter", convert_body()).status)
      -- not a member until the refresh
      for _, g in ipairs(get(sim, "/api/v3/meter/5/group").json()) do assert.are_not.equal(6, g.meterGroupId) end
      local r = call(sim, "POST", "/api/v3/meterGroup/6/updateUserAutoGroup")
      assert.equal(200, r.status, r.body)
      local g = r.json()
      assert.equal(1, g.memberCount)
      assert.equal("ELECTRIC", g.memberCommodityCode)
      assert.are_not.equal(before.lastUpdated, g.lastUpdated)
      local found = false
      for _, x in ipairs(get(sim, "/api/v3/meter/5/group").json()) do found = found or x.meterGroupId == 6 end
      assert.is_true(found)
    end)

    it("refresh all refreshes every user-defined auto group", function()
      local r = call(sim, "POST", "/api/v3/meterGroup/updateUserAutoGroups")
      assert.equal(200, r.status)
      local by = {}
      for _, g in ipairs(r.json()) do by[g.meterGroupId] = g end
      assert.equal(4, by[7].memberCount) -- ACTIVE-GAS was stale: 9, 10 -> 9, 10, 11, 12
      assert.equal(2, by[8].memberCount)
      assert.is_nil(by[1])
    end)

    it("refuses system auto groups, manual groups and unknown ids", function()
      assert_bad(call(sim, "POST", "/api/v3/meterGroup/1/updateUserAutoGroup"), "system auto group")
      assert_bad(call(sim, "POST", "/api/v3/meterGroup/4/updateUserAutoGroup"), "manual group")
      assert.equal(404, call(sim, "POST", "/api/v3/meterGroup/999/updateUserAutoGroup").status)
      assert_bad(call(sim, "POST", "/api/v3/meterGroup/x/updateUserAutoGroup"), "meterGroupId")
    end)
  end)

  describe("account-meter edits", function()
    local function edit(id, body, q)
      return call(sim, "PUT", "/api/v3/accountmeter/" .. id .. (q or ""), body)
    end
    local AM2 = { beginDate = "2021-01-01", endDate = "2025-07-01", generalLedgerId = 1, vendorTypeId = 1 }
    local function am2(over)
      local b = {}
      for k, v in pairs(AM2) do b[k] = v end
      for k, v in pairs(over or {}) do b[k] = v end
      return b
    end

    it("changes the dates and keeps them", function()
      local r = edit(2, am2({ vendorTypeId = 2 }))
      assert.equal(200, r.status, r.body)
      local am = r.json()
      assert.equal("2025-07-01", am.endDate)
      assert.equal(2, am.vendorType.vendorTypeId)
      assert.equal(1, am.meter.meterId)
      assert.equal("2001-0001", am.account.accountCode)
      assert.truthy(r.body:find('"formTemplates":[]', 1, true))
      local acc = get(sim, "/api/v3/meter/1").json().accounts
      assert.equal("2025-07-01", acc[2].endDate)
      assert.equal(12, count_bills(sim, 1, 1)) -- deleteBills not asked: bills stay
    end)

    it("deleteBills=true deletes whole bills starting on or after the new end date", function()
      assert.equal(12, count_bills(sim, 1, 2))
      local r = edit(2, am2(), "?deleteBills=true")
      assert.equal(200, r.status, r.body)
      assert.equal("6", r.headers["x-sim-deleted-bills"])
      assert.equal(6, count_bills(sim, 1, 1))
      assert.equal(6, count_bills(sim, 1, 2)) -- other meters' lines went with their bills
    end)

    it("refuses deleteBills where the documents forbid it", function()
      assert_bad(edit(1, { beginDate = "2015-01-01", endDate = "2020-06-30", generalLedgerId = 1, vendorTypeId = 1 },
                      "?deleteBills=true"), "most recent")
      assert_bad(edit(2, am2({ beginDate = "2021-02-01" }), "?deleteBills=true"), "begin date")
      assert_bad(edit(2, am2({ endDate = "3000-01-01" }), "?deleteBills=true"), "end date")
      assert_bad(edit(2, am2(), "?deleteBills=maybe"), "deleteBills")
      assert.equal(12, count_bills(sim, 1, 1))
    end)

    it("checks AccountMeterEdit", function()
      local function without(k) local b = am2(); b[k] = nil; return b end
      assert_bad(edit(2, without("beginDate")), "beginDate")
      assert_bad(edit(2, without("endDate")), "endDate")
      assert_bad(edit(2, without("generalLedgerId")), "generalLedgerId")
      assert_bad(edit(2, without("vendorTypeId")), "vendorTypeId")
      assert_bad(edit(2, am2({ endDate = "2020-01-01" })), "endDate")
      assert_bad(edit(2, am2({ endDate = "2021-01-01" })), "endDate")
      assert_bad(edit(2, am2({ endDate = "3000-01-02" })), "endDate")
      assert_bad(edit(2, am2({ beginDate = "1899-12-30" })), "beginDate")
      assert_bad(edit(2, am2({ endDate = "2025-02-30" })), "endDate")
      assert_bad(edit(2, am2({ endDate = "07/01/2025" })), "endDate")
      assert_bad(edit(2, am2({ endDate = 20250701 })), "endDate")
      assert_bad(edit(2, am2({ generalLedgerId = 99 })), "generalLedgerId")
      assert_bad(edit(2, am2({ vendorTypeId = "1" })), "vendorTypeId")
      assert_bad(edit(2, am2({ beginDate = "2020-01-01" })), "overlaps")
      assert.equal(404, edit(999, am2()).status)
      -- the range ends are legal, date-times too, and null clears the general ledger
      local r = edit(2, am2({ endDate = "3000-01-01T00:00:00", generalLedgerId = cjson.null }))
      assert.equal(200, r.status, r.body)
      assert.truthy(r.body:find('"generalLedger":null', 1, true))
    end)
  end)

  describe("bulk cost-avoidance settings", function()
    local function wait_task(id)
      for _ = 1, 50 do
        local t = get(sim, string.format("/api/v3/savings/task/%d", id)).json()
        if t.endDate ~= cjson.null then return t end
        T.sh("sleep 0.1")
      end
      error("task " .. id .. " did not finish")
    end

    it("lists the filter fields", function()
      local r = get(sim, "/api/v3/savings/filters")
      assert.equal(200, r.status)
      local by = {}
      for _, f in ipairs(r.json()) do by[f.queryParameterName] = f end
      assert.equal(1, by.meterGroupId.fieldId)
      assert.equal("Meter Group", by.meterGroupId.caption)
      assert.equal(2, by.meterCode.fieldId)
      assert.equal(3, by.commodityCode.fieldId)
      assert.equal(4, by.placeCode.fieldId)
      assert.equal(5, by.active.fieldId)
      assert.equal(6, by.isEsaCalculatedMeter.fieldId)
      assert.equal(7, by.meterTypeCode.fieldId)
      assert.equal("Boolean", by.active.dataType.dataTypeCode)
      assert.truthy(#by.meterCode.availableOperator >= 4)
    end)

    it("applies settings to the matching meters through a task that finishes", function()
      local r = call(sim, "PUT", "/api/v3/savings/settings",
                     settings_body('[{"fieldId":3,"operator":"equals","value":"WATER"},{"fieldId":5,"operator":"equals","value":"true"}]'))
      assert.equal(200, r.status, r.body)
      local t = r.json()
      assert.is_number(t.costAvoidanceTaskId)
      assert.equal(3, t.baselineLog.numberOfMeters)
      assert.equal(3, t.savingsLog.numberOfMeters)
      assert.equal(1, #get(sim, "/api/v3/savings/task").json())
      local done = wait_task(t.costAvoidanceTaskId)
      assert.equal("Completed", done.status)
      assert.equal(3, done.baselineLog.successCount)
      assert.equal("WATER", done.filters[1].value)
      for _, m in ipairs(state(sim).meters) do
        if m.meterId == 13 then assert.equal(24, m.costAvoidance.numBaselineMonths) end
        if m.meterId == 16 then assert.equal(12, m.costAvoidance.numBaselineMonths) end
      end
    end)

    it("targets a meter group by fieldId 1 (the demo workflow)", function()
      call(sim, "POST", "/api/v202510/meter/5/esaCalculatedMeter", convert_body())
      call(sim, "POST", "/api/v3/meterGroup/6/updateUserAutoGroup")
      local r = call(sim, "PUT", "/api/v3/savings/settings", string.format(
        '{"filters":[{"fieldId":1,"operator":"equals","value":"6"}],%s,"numBaselineMonths":null}',
        (SETTINGS_NULLS:gsub('"includeMeterInCostAvoidance":null', '"includeMeterInCostAvoidance":true'))))
      assert.equal(200, r.status, r.body)
      assert.equal(1, r.json().baselineLog.numberOfMeters)
      assert.equal(true, get(sim, "/api/v3/meter/5").json().includeInCostAvoidance)
    end)

    it("checks BulkMeterCostAvoidanceSettings", function()
      local P = "/api/v3/savings/settings"
      assert_bad(call(sim, "PUT", P, settings_body("[]", "11")), "numBaselineMonths")
      assert_bad(call(sim, "PUT", P, settings_body("[]", "37")), "numBaselineMonths")
      assert.equal(200, call(sim, "PUT", P, settings_body("[]", "36")).status)
      assert_bad(call(sim, "PUT", P, settings_body("[]", "null")), "at least one")
      assert_bad(call(sim, "PUT", P, '{"filters":[],"numBaselineMonths":12}'), "attemptCoolingAdjustment")
      assert_bad(call(sim, "PUT", P, (settings_body("[]"):gsub('"filters":%[%],', ""))), "filters")
      assert_bad(call(sim, "PUT", P, settings_body('{"fieldId":1}')), "filters")
      assert_bad(call(sim, "PUT", P, settings_body('[{"fieldId":99,"operator":"equals","value":"x"}]')), "fieldId")
      assert_bad(call(sim, "PUT", P, settings_body('[{"fieldId":5,"operator":"like","value":"x"}]')), "operator")
      assert_bad(call(sim, "PUT", P, settings_body('[{"operator":"equals","value":"x"}]')), "filters[0].fieldId")
      assert_bad(call(sim, "PUT", P, settings_body('[{"fieldId":1,"operator":"equals"}]')), "filters[0].value")
      local cool = SETTINGS_NULLS:gsub('"coolingNeededAbove":null', '"coolingNeededAbove":50')
      cool = cool:gsub('"heatingNeededBelow":null', '"heatingNeededBelow":60')
      assert_bad(call(sim, "PUT", P, '{"filters":[],' .. cool .. ',"numBaselineMonths":null}'), "coolingNeededAbove")
      local date = (SETTINGS_NULLS:gsub('"savingsStartDate":null', '"savingsStartDate":"3000-01-02"'))
      assert_bad(call(sim, "PUT", P, '{"filters":[],' .. date .. ',"numBaselineMonths":null}'), "savingsStartDate")
      local typ = (SETTINGS_NULLS:gsub('"attemptCoolingAdjustment":null', '"attemptCoolingAdjustment":"yes"'))
      assert_bad(call(sim, "PUT", P, '{"filters":[],' .. typ .. ',"numBaselineMonths":null}'), "attemptCoolingAdjustment")
    end)

    it("lists tasks with paging and a filter; 404 for an unknown task", function()
      for _ = 1, 3 do call(sim, "PUT", "/api/v3/savings/settings", settings_body("[]")) end
      local r = get(sim, "/api/v3/savings/task?pageSize=2")
      assert.equal("3", r.headers["totalnumberofrecords"])
      assert.equal("2", r.headers["totalpages"])
      assert.equal(2, #r.json())
      local f = get(sim, "/api/v3/savings/task?filter=costAvoidanceTaskId%20equals%20'2'").json()
      assert.equal(1, #f)
      assert.equal(2, f[1].costAvoidanceTaskId)
      assert.equal(404, get(sim, "/api/v3/savings/task/99").status)
    end)
  end)

  describe("data-access releases", function()
    local function release(id, body) return call(sim, "POST", "/api/v202203/utilityPlatform/meter/" .. id .. "/release", body) end
    local function rel(over)
      local b = {}
      for k, v in pairs(RELEASE) do b[k] = v end
      for k, v in pairs(over or {}) do b[k] = v end
      return b
    end

    it("sets Pending, or Declined where the provider supports it", function()
      local r = release(9, rel())
      assert.equal(200, r.status, r.body)
      assert.equal(3, r.json().releaseStatus.dataAccessReleaseStatusId)
      assert.equal("Pending", r.json().releaseStatus.dataAccessReleaseStatusInfo)
      assert.is_string(r.json().submittedDate)
      local d = release(7, rel({ declined = true }))
      assert.equal(200, d.status, d.body)
      assert.equal(5, d.json().releaseStatus.dataAccessReleaseStatusId)
      assert_bad(release(10, rel({ declined = true })), "declined")
      local st = {}
      for _, m in ipairs(state(sim).meters) do st[m.meterId] = m.release.statusId end
      assert.equal(3, st[9]); assert.equal(5, st[7]); assert.equal(2, st[10])
    end)

    it("accepts a file string from the file-store upload, and only such a string", function()
      local pdf = T.write(T.tmpname(".pdf"), "%PDF-1.4 signed release\n")
      local up = T.sh(string.format("curl -s -H 'ECI-ApiKey: k' -F %s %s",
        T.q("file=@" .. pdf .. ";type=application/pdf"), T.q(sim.url .. "/api/v202105/fileStore/fileDataType/1/upload")))
      local file = T.json(up.stdout)
      assert.is_string(file)
      assert.equal(200, release(8, rel({ dataReleaseFile = file })).status)
      assert_bad(release(8, rel({ dataReleaseFile = "fileStore/1/made-up" })), "dataReleaseFile")
    end)

    it("takes uploads as multipart/form-data only, with one non-empty file part", function()
      local url = sim.url .. "/api/v202105/fileStore/fileDataType/1/upload"
      local raw = call(sim, "POST", "/api/v202105/fileStore/fileDataType/1/upload", "PDFDATA")
      assert.equal(415, raw.status)
      local empty = T.write(T.tmpname(".pdf"), "")
      local r = T.sh(string.format("curl -s -w '\n%%{http_code}' -H 'ECI-ApiKey: k' -F %s %s",
        T.q("file=@" .. empty), T.q(url)))
      assert.matches("\n400$", r.stdout)
      r = T.sh(string.format("curl -s -w '\n%%{http_code}' -H 'ECI-ApiKey: k' -F note=hello %s", T.q(url)))
      assert.matches("no file part.*\n400$", r.stdout)
    end)

    it("checks DataAccessReleaseRequest", function()
      assert_bad(release(9, rel({ accountNumber = "112345678901" })), "accountNumber")
      assert_bad(release(9, rel({ accountNumber = "21234567890" })), "accountNumber")
      assert_bad(release(9, rel({ accountNumber = 212345678901 })), "accountNumber")
      assert_bad(release(9, { nameOnBill = "x", serviceAddress = "y" }), "accountNumber")
      assert_bad(release(9, rel({ nameOnBill = cjson.null })), "nameOnBill")
      assert_bad(release(9, rel({ serviceAddress = "" })), "serviceAddress")
      assert_bad(release(9, rel({ declined = "no" })), "declined")
      assert_bad(release(1, rel()), "Not Applicable")
      assert.equal(404, release(999, rel()).status)
    end)
  end)

  it("POST /api/__sim/reset restores the initial data", function()
    call(sim, "POST", "/api/v202510/meter/5/esaCalculatedMeter", convert_body())
    reset(sim)
    assert.equal(false, get(sim, "/api/v3/meter/5").json().isEsaCalculatedMeter)
    assert.equal(200, call(sim, "POST", "/api/v202510/meter/5/esaCalculatedMeter", convert_body()).status)
  end)
end)

describe("simulator faults", function()
  local sim
  setup(function() sim = T.start_sim() end)
  teardown(function() sim.stop() end)
  before_each(function() reset(sim) end)

  local function fault(spec)
    local r = call(sim, "POST", "/api/__sim/faults", spec)
    assert.equal(200, r.status, r.body)
  end

  it("fails the next N matching requests with a status and Retry-After", function()
    fault({ mode = "status", count = 2, status = 503, retryAfter = 2, pathPrefix = "/api/v3/meter" })
    assert.equal(200, get(sim, "/api/v3/savings/filters").status) -- does not match the prefix
    local r = get(sim, "/api/v3/meter/1")
    assert.equal(503, r.status)
    assert.equal("2", r.headers["retry-after"])
    assert.equal(503, get(sim, "/api/v3/meterGroup").status)
    assert.equal(200, get(sim, "/api/v3/meter/1").status)
  end)

  it("answers a text or an HTML body", function()
    fault({ mode = "text" })
    local t = get(sim, "/api/v3/meter/1")
    assert.equal(500, t.status)
    assert.is_false(pcall(T.json, t.body))
    fault({ mode = "text", status = 200 })
    assert.equal(200, get(sim, "/api/v3/meter/1").status)
    fault({ mode = "html", status = 502 })
    local h = get(sim, "/api/v3/meter/1")
    assert.equal(502, h.status)
    assert.truthy(h.body:find("<html>", 1, true))
    assert.truthy(h.headers["content-type"]:find("text/html", 1, true))
  end)

  it("truncates a body (Content-Length larger than sent) and resets a connection mid-body", function()
    fault({ mode = "truncate" })
    local r = curl(sim, "/api/v3/meter/1")
    assert.equal(18, r.code, r.stderr) -- curl: transfer closed with bytes remaining
    fault({ mode = "reset" })
    r = curl(sim, "/api/v3/meter/1")
    assert.equal(56, r.code, r.stderr) -- curl: connection reset by peer
    assert.equal(200, get(sim, "/api/v3/meter/1").status)
  end)

  it("hangs a request without blocking the others", function()
    fault({ mode = "hang", seconds = 2 })
    local r = script(string.format([[
      s=$(date +%%s%%N)
      curl -s -o /dev/null --max-time 10 -H 'ECI-ApiKey: k' %s & hp=$!
      sleep 0.2
      curl -s -o /dev/null -w '%%{http_code}\n' -H 'ECI-ApiKey: k' %s
      echo "other=$(( ($(date +%%s%%N) - s) / 1000000 ))"
      wait $hp; echo "hang_rc=$?"
      echo "hang=$(( ($(date +%%s%%N) - s) / 1000000 ))"]],
      T.q(sim.url .. "/api/v3/meter/1"), T.q(sim.url .. "/api/v3/meter/2")))
    assert.truthy(r.stdout:find("^200\n"), r.stdout)
    assert.truthy(tonumber(r.stdout:match("other=(%d+)")) < 1500, r.stdout)
    assert.truthy(tonumber(r.stdout:match("hang=(%d+)")) >= 1900, r.stdout)
    assert.equal("52", r.stdout:match("hang_rc=(%d+)")) -- empty reply: closed without an answer
  end)

  it("lists and clears queued faults", function()
    fault({ mode = "status", count = 5 })
    assert.equal(5, get(sim, "/api/__sim/faults").json().faults[1].count)
    assert.equal(200, call(sim, "DELETE", "/api/__sim/faults").status)
    assert.equal(200, get(sim, "/api/v3/meter/1").status)
    assert_bad(call(sim, "POST", "/api/__sim/faults", { mode = "explode" }), "mode")
  end)

  it("records requests without the key's value", function()
    call(sim, "DELETE", "/api/__sim/requests")
    get(sim, "/api/v3/meter?pageSize=2", { key = "secret-key-123" })
    call(sim, "PUT", "/api/v3/savings/settings", settings_body("[]"))
    get(sim, "/api/v3/meter/1", { key = false })
    local r = get(sim, "/api/__sim/requests?clear=true")
    assert.equal(200, r.status)
    assert.is_nil(r.body:find("secret-key-123", 1, true))
    local recs = r.json()
    assert.equal(3, #recs)
    assert.equal("GET", recs[1].method)
    assert.equal("/api/v3/meter", recs[1].path)
    assert.equal("pageSize=2", recs[1].query)
    assert.is_true(recs[1].apiKeyPresent)
    assert.is_true(recs[1].apiKeyAccepted)
    assert.is_nil(recs[1].headers["eci-apikey"])
    assert.truthy(recs[2].body:find('"numBaselineMonths":24', 1, true))
    assert.is_false(recs[3].apiKeyPresent)
    assert.equal(401, recs[3].status)
    assert.equal(0, #get(sim, "/api/__sim/requests").json())
  end)

  it("changes latency, fail rate and rate limit at run time", function()
    local r = call(sim, "PUT", "/api/__sim/config", { failRate = 1 })
    assert.equal(200, r.status)
    for _ = 1, 4 do
      local s = get(sim, "/api/v3/meter/1").status
      assert.truthy(s == 500 or s == 503, s)
    end
    assert.equal(200, get(sim, "/api/__sim/config").status) -- the control API is never failed
    reset(sim)
    assert.equal(200, get(sim, "/api/v3/meter/1").status)
  end)
end)

describe("simulator fault options", function()
  it("--api-key accepts that key only", function()
    local sim = T.start_sim({ "--api-key", "right" })
    local wrong = get(sim, "/api/v3/meter/1", { key = "wrong" })
    local right = get(sim, "/api/v3/meter/1", { key = "right" })
    sim.stop()
    assert.equal(401, wrong.status)
    assert.equal(200, right.status)
  end)

  it("--fail-rate 1 fails every request with 500 or 503", function()
    local sim = T.start_sim({ "--fail-rate", "1" })
    local seen = {}
    for _ = 1, 12 do seen[get(sim, "/api/v3/meter/1").status] = true end
    sim.stop()
    assert.is_nil(seen[200])
    assert.truthy(seen[500] or seen[503])
  end)

  it("--rate-limit answers 429 with Retry-After beyond the rate", function()
    local sim = T.start_sim({ "--rate-limit", "2/s" })
    local statuses, retry = {}, nil
    for _ = 1, 6 do
      local r = get(sim, "/api/v3/meter/1")
      statuses[#statuses + 1] = r.status
      if r.status == 429 then retry = r.headers["retry-after"] end
    end
    T.sh("sleep 1.1")
    local after = get(sim, "/api/v3/meter/1").status
    sim.stop()
    assert.equal(200, statuses[1])
    assert.truthy(retry and tonumber(retry) >= 1, table.concat(statuses, ","))
    assert.equal(200, after)
  end)

  it("--latency delays replies without queueing concurrent requests", function()
    local sim = T.start_sim({ "--latency", "300ms", "--quiet" })
    -- one curl process with 40 transfers in parallel (no process start-up in the figure):
    -- served one after another they would take 40 x 300 ms = 12 s; concurrently, about 300 ms.
    -- The bound is half the queued time, so a loaded machine does not fail it.
    local r = script(string.format([[
      s=$(date +%%s%%N)
      curl -s -Z --parallel-max 40 -w '%%{http_code}\n' -H 'ECI-ApiKey: k' $(for i in $(seq 40); do printf -- '-o /dev/null %%s ' %s; done)
      echo "ms=$(( ($(date +%%s%%N) - s) / 1000000 ))"]], T.q(sim.url .. "/api/v3/meter/1")))
    sim.stop()
    local ok = select(2, r.stdout:gsub("200\n", ""))
    assert.equal(40, ok, r.stdout)
    local ms = tonumber(r.stdout:match("ms=(%d+)"))
    assert.truthy(ms >= 300, r.stdout)
    assert.truthy(ms < 6000, "40 requests at 300 ms each were queued: " .. ms .. " ms")
  end)
end)
