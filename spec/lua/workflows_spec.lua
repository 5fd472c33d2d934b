-- The example workflows (scripts/workflows/*.lua, scripts/hello.lua) run by the real binary:
-- with `run --sim` and no arguments (the demos), and against a started simulator through
-- --base-url, where ecap.config().simulator is false and the scripts must not pick ids.
-- Run: ECAPHOST=build/ecaphost ECAP_SRC=. lua5.4 /usr/bin/busted spec/lua/workflows_spec.lua
local T = require "spec.lua.support"
local cjson = require "cjson"

local WF = T.src .. "/scripts/workflows/"
local CONVERT = WF .. "convert_refresh_update.lua"
local RELEASES = WF .. "apply_releases.lua"
local END_AM = WF .. "end_account_meter.lua"

local sim

local function sent(method, prefix)
  local n = 0
  for _, q in ipairs(sim.requests()) do
    if q.method == method and q.path:sub(1, #prefix) == prefix then n = n + 1 end
  end
  return n
end

-- ecaphost run [host options...] script [script args...]
local function run(host, script, args)
  return T.run_script(nil, host, { quiet = true, path = script, args = args })
end

local function has(text, s) assert.truthy(text:find(s, 1, true), "expected " .. s .. " in:\n" .. text) end
-- before .. "<path of script>:<line>: " .. after: an error's text, where it names the script's line.
local function has_at(text, before, script, after)
  local function esc(x) return (x:gsub("%p", "%%%0")) end
  local pat = esc(before) .. "%S*" .. esc(script) .. ":%d+: " .. esc(after)
  assert.truthy(text:find(pat), "expected " .. before .. "<" .. script .. ":line>: " .. after .. " in:\n" .. text)
end
local function lacks(text, s) assert.falsy(text:find(s, 1, true), "unexpected " .. s .. " in:\n" .. text) end

describe("workflows", function()
  setup(function() sim = T.start_sim() end)
  teardown(function() if sim then sim.stop() end end)
  before_each(function() sim.reset() end)

  describe("hello.lua", function()
    it("prints every meter's code", function()
      local r = run({ "--sim" }, T.src .. "/scripts/hello.lua")
      T.expect(0, r)
      has(r.stdout, "E-HQ-MAIN\tHQ Main Electric\n")
      has(r.stdout, "E-HQ-OLD")
      has(r.stdout, "\n20 meters\n")
    end)
  end)

  describe("convert_refresh_update.lua", function()
    it("runs the whole workflow on the demo data with --sim and no arguments", function()
      local r = run({ "--sim" }, CONVERT)
      T.expect(0, r)
      local lines = {}
      for l in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = l end
      assert.are.equal(8, #lines, r.stdout)
      assert.are.equal("convert_refresh_update: simulator demo, ids read from the API", lines[1])
      has(lines[2], "step 1: meter 5 E-HQ-CALC")
      has(lines[2], "formula {1} + {2} over ESA meters 1 E-HQ-MAIN, 2 E-HQ-HVAC")
      has(lines[2], "user-defined auto groups 6,7,8; meter group filter field 1")
      has(lines[3], "step 2: converted meter 5 E-HQ-CALC: isEsaCalculatedMeter=true")
      has(lines[4], "step 3: refreshed 3 groups; meter 5 E-HQ-CALC is in 6 ESA-CALCULATED")
      assert.are.equal("step 4: the update will touch 1 meter", lines[5]) -- cost_avoidance.count
      has(lines[6], "step 4: cost-avoidance task 1 (")
      has(lines[6], "for group 6: 1 meter, status ")
      has(lines[7], "step 5: task 1 Completed at ")
      has(lines[7], "baseline 1 ok / 0 warnings / 0 errors of 1 meter; savings 1 ok")
      assert.are.equal("done", lines[8])
    end)

    it("refuses to run without explicit ids when not talking to --sim: usage, nothing sent", function()
      local r = run({ "--base-url", sim.url }, CONVERT)
      assert.are_not.equal(0, r.code)
      has(r.stderr, "not talking to the simulator (no --sim): no default ids; missing --meter, --group")
      has(r.stderr, "usage: ecaphost run")
      lacks(r.stdout, "step")
      assert.are.same({}, sim.requests())
    end)

    it("refuses when only some ids are given", function()
      local r = run({ "--base-url", sim.url }, CONVERT, { "--meter", "5", "--group", "6" })
      assert.are_not.equal(0, r.code)
      has(r.stderr, "missing --data-point-id, --observation-type-id, --summarization-method-id, --esa-meters (or --formula)")
      assert.are.same({}, sim.requests())
    end)

    it("rejects bad arguments with the usage text", function()
      for _, args in ipairs { { "--meter", "x" }, { "--meter", "1.5" }, { "--bogus", "1" }, { "stray" },
                              { "--meter" }, { "--esa-meters", "1,,2" }, { "--include-in-cost-avoidance", "yes" },
                              { "--formula", "{1}", "--esa-meters", "1" } } do
        local r = run({ "--sim" }, CONVERT, args)
        assert.are.equal(1, r.code, table.concat(args, " ") .. ": " .. r.stderr)
        has(r.stderr, "convert_refresh_update: ")
        has(r.stderr, "usage: ecaphost run")
        lacks(r.stdout, "step 2")
      end
    end)

    it("with explicit ids against a server: the workflow, then a clean failure at step 2 when run again", function()
      local args = { "--meter", "6", "--esa-meters", "3,4", "--group", "6", "--data-point-id", "1",
                     "--observation-type-id", "1", "--summarization-method-id", "1", "--baseline-months", "36" }
      local r = run({ "--base-url", sim.url }, CONVERT, args)
      T.expect(0, r)
      has(r.stdout, "step 1: meter 6 E-PLANT-CALC")
      has(r.stdout, "formula {3} + {4} over ESA meters 3, 4; group 6;")
      has(r.stdout, "step 3: refreshed 1 group; meter 6 E-PLANT-CALC is in 6 ESA-CALCULATED")
      has(r.stdout, "step 5: task 1 Completed")
      -- what the bulk update sent: the meter-group filter, 36 months, the rest null
      local bulk
      for _, q in ipairs(sim.requests()) do if q.path == "/api/v3/savings/settings" then bulk = cjson.decode(q.body) end end
      assert.are.same({ { fieldId = 1, operator = "equals", value = "6" } }, bulk.filters)
      assert.are.equal(36, bulk.numBaselineMonths)
      assert.are.equal(true, bulk.includeMeterInCostAvoidance)
      assert.are.equal(cjson.null, bulk.savingsStartDate)

      sim.clear_requests()
      local again = run({ "--base-url", sim.url }, CONVERT, args)
      assert.are.equal(1, again.code)
      has_at(again.stdout, "step 2 failed: ", "convert_refresh_update.lua",
             "http 400 POST /api/v202510/meter/6/esaCalculatedMeter: ")
      has(again.stdout, "already has ESA channels")
      lacks(again.stdout, "step 3")
      assert.are.equal(0, sent("POST", "/api/v3/meterGroup/"))
      assert.are.equal(0, sent("PUT", "/api/v3/savings/settings"))
    end)

    it("stops at step 3 when the meter is not in the group given", function()
      local r = run({ "--base-url", sim.url }, CONVERT, { "--meter", "6", "--esa-meters", "3", "--group", "7",
        "--data-point-id", "1", "--observation-type-id", "1", "--summarization-method-id", "1" })
      assert.are.equal(1, r.code)
      has(r.stdout, "step 3 failed: after the refresh meter 6 E-PLANT-CALC is in none of the groups 7")
      assert.are.equal(0, sent("PUT", "/api/v3/savings/settings"))
    end)
  end)

  describe("under --dry-run", function()
    local function writes() return (sim.writes()) end

    it("convert_refresh_update.lua prints the conversion and the refreshes, sends none, and stops cleanly", function()
      sim.clear_requests()
      local r = run({ "--base-url", sim.url, "--dry-run" }, CONVERT, { "--meter", "5", "--group", "6",
        "--esa-meters", "1,2", "--data-point-id", "1", "--observation-type-id", "1", "--summarization-method-id", "1" })
      T.expect(0, r)
      has(r.stdout, "DRY-RUN meters.convert_to_esa_calculated POST ")
      has(r.stdout, "step 2: dry run: the conversion is not sent (above)")
      has(r.stdout, "DRY-RUN meter_groups.refresh POST ")
      has(r.stdout, "done (dry run: nothing was sent)")
      assert.are.equal(0, writes())
    end)

    it("apply_releases.lua reports each row as printed, not sent", function()
      sim.clear_requests()
      local r = run({ "--base-url", sim.url, "--dry-run", "--allow-read", WF }, RELEASES, { WF .. "releases.example.csv" })
      T.expect(0, r)
      has(r.stdout, "row 1 meter 7: dry run: not sent")
      has(r.stdout, "4 printed (dry run), 0 failed")
      assert.are.equal(0, writes())
    end)
  end)

  describe("apply_releases.lua", function()
    it("applies the example CSV under --sim, reports each row and writes the result CSV", function()
      local dir = T.tmpdir()
      local out = dir .. "/releases.result.csv"
      local r = run({ "--sim", "--allow-read", WF, "--allow-write", dir }, RELEASES,
                    { WF .. "releases.example.csv", out })
      T.expect(0, r)
      has(r.stdout, "apply_releases: 4 rows from ")
      for i, id in ipairs { 7, 8, 9, 10 } do
        has(r.stdout, string.format("row %d meter %d: ok: Pending (status 3), submitted ", i, id))
      end
      has(r.stdout, "wrote " .. out .. " (4 rows)")
      has(r.stdout, "4 ok, 0 failed")
      local text = T.read(out)
      local lines = {}
      for l in text:gmatch("[^\n]+") do lines[#lines + 1] = l end
      assert.are.equal(5, #lines, text)
      assert.are.equal("meterId,accountNumber,nameOnBill,serviceAddress,releaseFile,fileReference,result,status,message", lines[1])
      has(lines[2], '7,200173450001,Warehouse 7 LLC,"7 Depot Lane, Lancaster, PA 17601",,,ok,Pending,submitted ')
    end)

    it("uses the example CSV next to the script under --sim without arguments", function()
      local r = run({ "--sim", "--allow-read", WF }, RELEASES)
      T.expect(0, r)
      has(r.stdout, "releases.example.csv")
      has(r.stdout, "4 ok, 0 failed")
    end)

    it("reports a bad row and goes on with the others; the bad row sends nothing", function()
      local dir = T.tmpdir()
      local input = T.write(dir .. "/mixed.csv", "meterId,accountNumber,nameOnBill,serviceAddress\n"
        .. "7,200173450001,A,B\n9,2123-4567,C,D\n1,212345678905,E,F\nx,212345678905,G,H\n10,212345678904,I,J\n")
      local out = dir .. "/mixed.result.csv"
      local r = run({ "--base-url", sim.url, "--allow-write", dir }, RELEASES, { input, out, "--concurrency", "2" })
      assert.are.equal(1, r.code, r.stderr)
      has(r.stdout, "row 1 meter 7: ok: Pending")
      has_at(r.stdout, "row 2 meter 9: error: ", "apply_releases.lua",
             'validation: accountNumber must be 12 digits starting with 2 (got "2123-4567")')
      has_at(r.stdout, "row 3 meter 1: error: ", "apply_releases.lua",
             "http 400 POST /api/v202203/utilityPlatform/meter/1/release: ")
      has_at(r.stdout, "row 4 meter x: error: ", "apply_releases.lua", 'validation: meterId must be an integer (got "x")')
      has(r.stdout, "row 5 meter 10: ok: Pending")
      has(r.stdout, "2 ok, 3 failed")
      has(r.stderr, "apply_releases: 3 of 5 rows failed")
      -- rows 2 and 4 were refused before sending: three requests, for meters 7, 1 and 10
      local paths = {}
      for _, q in ipairs(sim.requests()) do paths[#paths + 1] = q.path end
      table.sort(paths)
      assert.are.same({ "/api/v202203/utilityPlatform/meter/1/release", "/api/v202203/utilityPlatform/meter/10/release",
                        "/api/v202203/utilityPlatform/meter/7/release" }, paths)
      local text = T.read(out)
      has_at(text, '9,2123-4567,C,D,,,error,,"', "apply_releases.lua",
             'validation: accountNumber must be 12 digits starting with 2 (got ""2123-4567"")"\n')
      has(text, "10,212345678904,I,J,,,ok,Pending,submitted ")
    end)

    it("needs a CSV argument outside --sim, and --allow-write for an output path", function()
      local r = run({ "--base-url", sim.url }, RELEASES)
      assert.are.equal(1, r.code)
      has(r.stderr, "give the input CSV (no default outside --sim)")
      r = run({ "--sim", "--allow-read", WF }, RELEASES, { WF .. "releases.example.csv", T.tmpdir() .. "/x.csv" })
      assert.are.equal(1, r.code)
      has(r.stderr, "needs --allow-write DIR")
      lacks(r.stdout, "row 1")
      r = run({ "--sim" }, RELEASES)
      assert.are.equal(1, r.code)
      has(r.stdout, "cannot read ")
      has(r.stdout, "--allow-read")
      assert.are.same({}, sim.requests())
    end)
  end)

  describe("end_account_meter.lua", function()
    it("moves the end date of a demo relationship with deleteBills=false under --sim", function()
      local r = run({ "--sim" }, END_AM)
      T.expect(0, r)
      has(r.stdout, "step 1: relationship 2: account 1 2001-0001 - meter 1 E-HQ-MAIN, 2021-01-01 .. 3000-01-01")
      has(r.stdout, "step 2: end date 3000-01-01 -> 2025-10-31 with deleteBills=false: bills after the new end date are kept")
      has(r.stdout, "step 2: done: relationship 2 now 2021-01-01 .. 2025-10-31\n")
    end)

    it("shows the guard: --delete-bills without --yes-delete-bills is refused before sending", function()
      local r = run({ "--base-url", sim.url }, END_AM,
                    { "--meter", "1", "--account-meter", "2", "--end-date", "2025-10-31", "--delete-bills" })
      assert.are.equal(1, r.code)
      has(r.stdout, "WHOLE bills, other meters' lines included; it cannot be undone")
      has_at(r.stdout, "step 2 failed: ", "end_account_meter.lua",
        "validation: deleteBills=true deletes whole bills, other meters' lines included: "
        .. "pass confirm = \"delete bills\" in the options table, or run with --allow-destructive")
      has(r.stdout, "run again with --delete-bills --yes-delete-bills")
      local reqs = sim.requests()
      assert.are.equal(1, #reqs) -- only the read of the meter
      assert.are.same({ "GET", "/api/v3/meter/1" }, { reqs[1].method, reqs[1].path })
    end)

    it("--yes-delete-bills alone cannot consent for the run: refused without a terminal, nothing sent", function()
      local r = run({ "--base-url", sim.url }, END_AM, { "--meter", "1", "--account-meter", "2",
        "--end-date", "2025-10-31", "--delete-bills", "--yes-delete-bills" })
      assert.are.equal(1, r.code)
      has(r.stdout, "the run has not consented: run with --allow-destructive")
      has(r.stdout, "nothing was sent: the run did not consent")
      assert.are.equal(0, sent("PUT", "/api/v3/accountmeter/"))
    end)

    it("--dry-run lists the bills it would delete and sends nothing", function()
      local r = run({ "--base-url", sim.url, "--dry-run" }, END_AM, { "--meter", "1", "--account-meter", "2",
        "--end-date", "2025-10-31", "--delete-bills", "--yes-delete-bills" })
      T.expect(0, r)
      has(r.stdout, "DRY-RUN account_meters.edit PUT " .. sim.url .. "/api/v3/accountmeter/2?deleteBills=true")
      has(r.stdout, "preview: would delete 2 bills of account 2001-0001 (id 1), meter E-HQ-MAIN (id 1) starting on or after 2025-10-31")
      assert.are.equal(0, sent("PUT", "/api/v3/accountmeter/"))
    end)

    it("deletes the bills with --delete-bills --yes-delete-bills under --allow-destructive", function()
      local r = run({ "--base-url", sim.url, "--allow-destructive" }, END_AM, { "--meter", "1", "--account-meter", "2",
        "--end-date", "2025-10-31", "--delete-bills", "--yes-delete-bills" })
      T.expect(0, r)
      has(r.stdout, 'passing {deleteBills = true, confirm = "delete bills"}')
      has(r.stdout, "step 2: done: relationship 2 now 2021-01-01 .. 2025-10-31, bills deleted: 2")
      local put
      for _, q in ipairs(sim.requests()) do if q.method == "PUT" then put = q end end
      assert.are.equal("/api/v3/accountmeter/2", put.path)
      assert.are.equal("deleteBills=true", put.query)
      assert.are.same({ beginDate = "2021-01-01", endDate = "2025-10-31", generalLedgerId = 1, vendorTypeId = 1 },
                      cjson.decode(put.body))
    end)

    it("requires explicit ids outside --sim; a wrong relationship fails at step 1", function()
      local r = run({ "--base-url", sim.url }, END_AM)
      assert.are.equal(1, r.code)
      has(r.stderr, "no default ids; --meter, --account-meter and --end-date are required")
      assert.are.same({}, sim.requests())
      r = run({ "--base-url", sim.url }, END_AM, { "--meter", "9", "--account-meter", "7", "--end-date", "2025-11-30" })
      assert.are.equal(1, r.code)
      has(r.stdout, "step 1 failed: meter 9 has no relationship 7")
      assert.are.equal(0, sent("PUT", "/api/v3/accountmeter/"))
      r = run({ "--sim" }, END_AM, { "--yes-delete-bills" })
      assert.are.equal(1, r.code)
      has(r.stderr, "--yes-delete-bills confirms --delete-bills")
    end)
  end)
end)
