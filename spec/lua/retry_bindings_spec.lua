-- The retry table for every mutating binding (issue 9), against the simulator's fault switches:
-- a 503 and a 429 (Retry-After: 1) are sent again (the server did not act) and end ok; a 500,
-- a reset mid-reply, a truncated reply and a hang past --http-timeout are not sent again (the
-- server may have acted): outcome unknown, exit 6; a 400 with a 2 MB body is a failure whose
-- message stays short. Each time the journal holds the intent and the
-- outcome, parseable, and `ecaphost journal` counts it. retry_spec.lua has the rest of the
-- table (Retry-After dates, budgets, GETs, refused connections) on one binding.
-- Run: ECAPHOST=build/ecaphost ECAP_SRC=. lua5.4 /usr/bin/busted spec/lua/retry_bindings_spec.lua
local T = require "spec.lua.support"
local cjson = require "cjson"

local dir = T.tmpdir() .. "/uploads"
os.execute("mkdir -p " .. T.q(dir))
local FILE = T.write(dir .. "/release.pdf", string.rep("%PDF-1.4 release form\n", 2000))

-- Each binding: its call (a script expression), the path its request goes to.
local BINDINGS = {
  { "meter_groups.refresh", "ecap.meter_groups.refresh(6)", "/api/v3/meterGroup/6/updateUserAutoGroup" },
  { "account_meters.edit", [[ecap.account_meters.edit(2, { beginDate = "2021-01-01", endDate = "2025-10-31",
      generalLedgerId = 2, vendorTypeId = 3 }, { deleteBills = false })]], "/api/v3/accountmeter/2" },
  { "cost_avoidance.bulk_update", [[ecap.cost_avoidance.bulk_update({ filters = { { fieldId = 1,
      operator = "equals", value = "6" } }, numBaselineMonths = 24 })]], "/api/v3/savings/settings" },
  { "files.upload", string.format("ecap.files.upload(1, %q)", FILE), "/api/v202105/fileStore/fileDataType/1/upload" },
  { "meters.apply_release", [[ecap.meters.apply_release(7, { accountNumber = "200173450001",
      nameOnBill = "Warehouse 7 LLC", serviceAddress = "7 Depot Lane" })]], "/api/v202203/utilityPlatform/meter/7/release" },
  { "meters.convert_to_esa_calculated", [[ecap.meters.convert_to_esa_calculated(5, {
      channelInfo = "HQ total", dataPointId = 1, observationTypeId = 2, summarizationMethodId = 3,
      isCalculated = true, isPrimaryValue = true, isPrimaryDemand = false,
      esaChannelVersion = { formula = "{1} + {2}", multiplier = 1, offset = 0, unitId = 1 } })]],
    "/api/v202510/meter/5/esaCalculatedMeter" },
}

-- Each fault: the simulator's switch, and what must follow.
local FAULTS = {
  { name = "503 once", fault = { mode = "status", status = 503 }, exit = 0, outcome = "ok", attempts = 2, seen = 2 },
  { name = "429 with Retry-After: 1", fault = { mode = "status", status = 429, retryAfter = 1 }, exit = 0,
    outcome = "ok", attempts = 2, seen = 2 },
  { name = "500", fault = { mode = "status", status = 500 }, exit = 6, outcome = "unknown", attempts = 1, seen = 1 },
  { name = "a reset mid-reply", fault = { mode = "reset" }, exit = 6, outcome = "unknown", attempts = 1, seen = 1 },
  { name = "a truncated reply", fault = { mode = "truncate" }, exit = 6, outcome = "unknown", attempts = 1, seen = 1 },
  { name = "a hang past --http-timeout", fault = { mode = "hang", seconds = 5 }, args = { "--http-timeout", "1" },
    exit = 6, outcome = "unknown", attempts = 1, seen = 1 },
  { name = "400 with a 2 MB body", fault = { mode = "body", status = 400, body = string.rep("x", 1024), ["repeat"] = 2048,
    headers = { ["Content-Type"] = "text/plain" } },
    exit = 0, outcome = "failed", attempts = 1, seen = 1 },
}

describe("every mutating binding follows the retry table", function()
  local sim
  setup(function() sim = T.start_sim() end)
  teardown(function() sim.stop() end)
  before_each(function()
    sim.reset(); sim.clear_requests(); sim.control("DELETE", "/api/__sim/faults")
  end)

  local function seen(path)
    local n = 0
    for _, q in ipairs((sim.requests())) do if q.path == path then n = n + 1 end end
    return n
  end

  for _, b in ipairs(BINDINGS) do
    for _, f in ipairs(FAULTS) do
      it(b[1] .. " after " .. f.name .. ": " .. f.outcome .. ", attempts " .. f.attempts, function()
        local spec = T.merge(f.fault, { count = 1, pathPrefix = b[3] })
        sim.fault(spec)
        local journal = T.tmpname(".jsonl")
        local r = T.run_script("local ok, e = pcall(function() return " .. b[2] .. " end)\n" ..
          "if ok then print('OK') else print('ERR', e.kind, e.outcome, e.attempts, #e.message) end",
          { "--journal", journal, "--allow-read", dir, table.unpack(f.args or {}) }, { url = sim.url, quiet = true, kill_after = 60 })
        T.expect(f.exit, r)
        if f.outcome == "ok" then
          assert.are.equal("OK\n", r.stdout)
        else
          local kind, outcome, attempts, len = r.stdout:match("^ERR\t(%S+)\t(%S+)\t(%d+)\t(%d+)\n$")
          assert.is_truthy(kind, r.stdout)
          assert.are.equal(f.outcome, outcome)
          assert.are.equal(f.attempts, tonumber(attempts))
          assert.is_true(tonumber(len) < 8192, "the error message is cut: " .. len)
        end
        assert.are.equal(f.seen, seen(b[3]))
        -- the journal: the run line, the intent, the outcome, each a JSON object
        local lines = {}
        for l in T.read(journal):gmatch("[^\n]+") do lines[#lines + 1] = cjson.decode(l) end
        assert.are.same({ "run", "intent", "outcome" }, { lines[1].type, lines[2].type, lines[3].type })
        assert.are.equal(b[1], lines[2].operation)
        assert.are.equal(f.outcome, lines[3].outcome)
        assert.are.equal(f.attempts, lines[3].attempts)
        assert.is_true(#T.read(journal) < 64 * 1024, "the journal keeps a 2 MB error body short")
        -- exit 1 when the journal lists calls of unknown outcome (for monitors)
        local s = cjson.decode(T.expect(f.outcome == "unknown" and 1 or 0, T.run({ "journal", "--json", journal })).stdout)
        assert.are.equal(1, s.operations[b[1]][f.outcome])
        if b[1] == "files.upload" then
          assert.are.equal(#T.read(FILE), lines[2].upload.size) -- never the bytes
          assert.is_nil(T.read(journal):find("release form", 1, true))
        end
      end)
    end
  end
end)
