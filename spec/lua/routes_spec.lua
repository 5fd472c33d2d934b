-- The route table as data: `ecaphost routes` (text and --json, with and without a config
-- override), and ecap.request going through the bindings' destructive guard when its method
-- and path match a guarded route (issue 8: before this, a raw PUT with deleteBills=true or a
-- bulk update with empty filters went straight through).
-- Run: ECAPHOST=build/ecaphost ECAP_SRC=. lua5.4 /usr/bin/busted spec/lua/routes_spec.lua
local T = require "spec.lua.support"
local cjson = require "cjson"

local function config_file(text)
  return T.write(T.tmpname(".conf"), text)
end

describe("ecaphost routes", function()
  it("lists every binding with method, route, provenance and description", function()
    local r = T.expect(0, T.run({ "routes" }))
    for _, name in ipairs { "meter_groups.refresh", "account_meters.edit", "cost_avoidance.bulk_update",
                            "cost_avoidance.count", "files.upload", "meters.apply_release",
                            "meters.convert_to_esa_calculated", "account_meters.get" } do
      assert.matches(name, r.stdout, 1, true)
    end
    assert.matches("PUT  /api/v3/accountmeter/{accountMeterId}", r.stdout, 1, true)
    assert.matches("confirmed: edit an account", r.stdout, 1, true)
    assert.matches("inferred: mass update", r.stdout, 1, true)
  end)

  it("--json gives one array with the same facts", function()
    local r = T.expect(0, T.run({ "routes", "--json" }))
    local list = cjson.decode(r.stdout)
    assert.are.equal(8, #list)
    local byname = {}
    for _, e in ipairs(list) do byname[e.name] = e end
    assert.are.same({ name = "cost_avoidance.bulk_update", method = "PUT", path = "/api/v3/savings/settings",
                      provenance = "inferred",
                      description = byname["cost_avoidance.bulk_update"].description },
                    byname["cost_avoidance.bulk_update"])
    assert.are.equal("confirmed", byname["meters.apply_release"].provenance)
    assert.is_nil(byname["meters.apply_release"].origin)
  end)

  it("shows a config override as config with its file and line", function()
    local cf = config_file("# routes\nroute.cost_avoidance.bulk_update = POST /api/v3/savings/settings/bulk\n")
    local r = T.expect(0, T.run({ "routes", "--config", cf }))
    assert.matches("POST /api/v3/savings/settings/bulk", r.stdout, 1, true)
    assert.matches("config (" .. cf .. ":2)", r.stdout, 1, true)
    local list = cjson.decode(T.expect(0, T.run({ "routes", "--json", "--config", cf })).stdout)
    assert.are.equal("config", list[3].provenance)
    assert.are.equal(cf .. ":2", list[3].origin)
  end)

  it("refuses a bad override naming file:line (exit 3) and a bad argument (exit 2)", function()
    local cf = config_file("route.meters.apply_release = POST /api/x/{id}\n")
    local r = T.expect(3, T.run({ "routes", "--config", cf }))
    assert.matches(cf .. ":1: route meters.apply_release: placeholder {id}", r.stderr, 1, true)
    T.expect(2, T.run({ "routes", "--bogus" }))
  end)
end)

describe("ecap.request on a guarded route", function()
  local sim
  setup(function() sim = T.start_sim() end)
  teardown(function() sim.stop() end)
  before_each(function() sim.reset(); sim.clear_requests() end)

  local EDIT = [[{ beginDate = "2020-01-01", endDate = "2024-12-31", generalLedgerId = 1, vendorTypeId = 1 }]]

  -- Each case: the script's call, and whether it must be refused without consent.
  local cases = {
    { "PUT with deleteBills=true", [[ecap.request("PUT", "/api/v3/accountmeter/1", { query = { deleteBills = true }, body = ]] .. EDIT .. [[ })]], true },
    { "deleteBills='true' as text", [[ecap.request("PUT", "/api/v3/accountmeter/1", { query = { deleteBills = "TRUE" }, body = ]] .. EDIT .. [[ })]], true },
    { "another spelling of the path", [[ecap.request("put", "/api/v3/AccountMeter/%31/", { query = { deleteBills = true }, body = ]] .. EDIT .. [[ })]], true },
    { "bulk update with empty filters", [[ecap.request("PUT", "/api/v3/savings/settings", { body = { filters = json.array{}, numBaselineMonths = 24 } })]], true },
    { "bulk update with filters = null", [[ecap.request("PUT", "/api/v3/savings/settings", { body = { filters = json.null, numBaselineMonths = 24 } })]], true },
    { "bulk update without filters", [[ecap.request("PUT", "/api/v3/savings/settings", { body = { numBaselineMonths = 24 } })]], true },
    { "deleteBills=false", [[ecap.request("PUT", "/api/v3/accountmeter/1", { query = { deleteBills = false }, body = ]] .. EDIT .. [[ })]], false },
    { "bulk update with a filter", [[ecap.request("PUT", "/api/v3/savings/settings", { body = { filters = { { fieldId = 1, operator = "equals", value = "7" } }, numBaselineMonths = 24 } })]], false },
    { "a GET of the same path", [[ecap.request("GET", "/api/v3/accountmeter/1", { query = { deleteBills = true } })]], false },
  }

  for _, c in ipairs(cases) do
    it((c[3] and "refuses " or "lets through ") .. c[1], function()
      local r = T.run_script("local ok, e = pcall(function() return " .. c[2] .. " end)\n" ..
        "if ok then print('SENT') else print(e.kind, e.rule, tostring(e)) end", {}, { url = sim.url, quiet = true })
      T.expect(0, r)
      local reqs = T.json(sim.http("/api/__sim/requests").body)
      local writes = 0
      for _, q in ipairs(reqs) do if q.method ~= "GET" then writes = writes + 1 end end
      if c[3] then
        assert.matches("^validation\tconsent\t", r.stdout, nil, false)
        assert.matches("the run has not consented", r.stdout, 1, true)
        assert.matches("--allow-destructive", r.stdout, 1, true)
        assert.are.equal(0, writes, "nothing may be sent")
      else
        assert.is_nil(r.stdout:find("guard", 1, true), r.stdout)
      end
    end)
  end

  it("names both ways for the run to consent", function()
    local r = T.run_script([[print(select(2, pcall(ecap.request, "PUT", "/api/v3/accountmeter/1",
      { query = { deleteBills = true }, body = {} })))]], {}, { url = sim.url, quiet = true })
    assert.matches("run with --allow-destructive (config allow_destructive = true), or from a terminal to "
      .. "answer yes at the prompt", r.stdout, 1, true)
  end)

  it("follows a config override of the guarded route", function()
    local cf = config_file("base_url = " .. sim.url ..
      "\nroute.cost_avoidance.bulk_update = POST /api/v3/savings/bulk/{nothing}\n")
    local r = T.run({ "run", "--config", cf, T.script("print(1)") })
    T.expect(3, r) -- a placeholder the operation has not: refused at start
    cf = config_file("base_url = " .. sim.url .. "\nroute.cost_avoidance.bulk_update = POST /api/v3/savings/bulk\n")
    r = T.expect(0, T.run({ "run", "-q", "--config", cf, T.script([[
      local ok, e = pcall(ecap.request, "POST", "/api/v3/savings/bulk", { body = { filters = json.array{}, numBaselineMonths = 24 } })
      print(ok, e.rule)
      ok, e = pcall(ecap.request, "PUT", "/api/v3/savings/settings", { body = { filters = json.array{}, numBaselineMonths = 24 } })
      print(e.rule)]]) }))
    assert.matches("^false\tconsent\n", r.stdout)
    -- the old path is no longer the bulk update's: not guarded (the simulator answers it)
    assert.is_nil(r.stdout:find("consent\n.*consent"), r.stdout)
  end)

  it("--allow-destructive lets the raw call through", function()
    local r = T.expect(0, T.run_script([[
      local ok, e = pcall(ecap.request, "PUT", "/api/v3/savings/settings", { body = { filters = json.array{}, numBaselineMonths = 24 } })
      print(ok or e.kind)]], { "--allow-destructive" }, { url = sim.url, quiet = true }))
    assert.is_nil(r.stdout:find("validation", 1, true), r.stdout)
    local reqs = T.json(sim.http("/api/__sim/requests").body)
    assert.are.equal("PUT", reqs[#reqs].method)
  end)
end)
