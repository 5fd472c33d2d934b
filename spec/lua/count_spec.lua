-- ecap.cost_avoidance.count (POST /api/v3/savings/meter/count, GetCostAvoidanceMeterCountV3):
-- the exact request on the wire, the FilterEdit rules before sending (an empty list allowed),
-- and the simulator's counts agreeing with the meters a bulk update then touches.
-- Run: ECAPHOST=build/ecaphost ECAP_SRC=. lua5.4 /usr/bin/busted spec/lua/count_spec.lua
local T = require "spec.lua.support"
local cjson = require "cjson"

describe("ecap.cost_avoidance.count", function()
  local sim
  setup(function() sim = T.start_sim() end)
  teardown(function() sim.stop() end)
  before_each(function() sim.reset(); sim.clear_requests() end)

  local function run(code, host_opts)
    return T.expect(0, T.run_script(code, host_opts or {}, { url = sim.url, quiet = true }))
  end

  it("sends the FilterEdit list as the body and onlyMetersInCAP as the query", function()
    local r = run([[
      local c = ecap.cost_avoidance.count({ { fieldId = 1, operator = "equals", value = "6" } }, { onlyMetersInCAP = false })
      print(math.type(c.count), c.description)]])
    assert.matches("^integer\t", r.stdout)
    local reqs = sim.requests()
    assert.are.equal(1, #reqs)
    assert.are.equal("POST", reqs[1].method)
    assert.are.equal("/api/v3/savings/meter/count", reqs[1].path)
    assert.are.equal("onlyMetersInCAP=false", reqs[1].query)
    assert.are.same({ { fieldId = 1, operator = "equals", value = "6" } }, cjson.decode(reqs[1].body))
  end)

  it("sends an empty list as [] with no guard and no query when no options are given", function()
    run([[ecap.cost_avoidance.count({})]])
    local reqs = sim.requests()
    assert.are.equal(1, #reqs)
    assert.are.equal("[]", reqs[1].body)
    assert.are.equal("", reqs[1].query)
  end)

  it("checks the FilterEdit rules before sending anything", function()
    local r = run([[
      for _, args in ipairs {
        { { { fieldId = 0, operator = "equals", value = "6" } } },
        { { { fieldId = 1, operator = "", value = "6" } } },
        { { { fieldId = 1, operator = "equals" } } },
        { { { fieldId = 1, operator = "equals", value = "6", extra = 1 } } },
        { nil },
        { "6" },
        { {}, { onlyMetersInCap = false } },
        { {}, { onlyMetersInCAP = "no" } },
      } do
        local ok, e = pcall(ecap.cost_avoidance.count, table.unpack(args, 1, 2))
        print(ok, e.kind, e.field, e.rule)
      end]])
    local lines = {}
    for l in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.same({
      "false\tvalidation\tfilters[1].fieldId\trange",
      "false\tvalidation\tfilters[1].operator\tlength",
      "false\tvalidation\tfilters[1].value\trequired",
      "false\tvalidation\tfilters[1].extra\tunknown",
      "false\tvalidation\tfilters\trequired",
      "false\tvalidation\tfilters\ttype",
      "false\tvalidation\tonlyMetersInCap\tunknown",
      "false\tvalidation\tonlyMetersInCAP\ttype",
    }, lines)
    assert.are.same({}, sim.requests())
  end)

  it("counts what a bulk update with the same filters then touches", function()
    local r = run([[
      for _, filters in ipairs {
        { { fieldId = 1, operator = "equals", value = "6" } },
        { { fieldId = 2, operator = "like", value = "ELEC%" } },
        {},
      } do
        local c = ecap.cost_avoidance.count(filters, { onlyMetersInCAP = false })
        local t = ecap.cost_avoidance.bulk_update({ filters = filters, numBaselineMonths = 24 }, { confirm = "all meters" })
        t = ecap.cost_avoidance.wait(t, { interval = 0.05 })
        print(c.count, t.baselineLog.numberOfMeters)
      end]], { "--allow-destructive" })
    local n = 0
    for a, b in r.stdout:gmatch("(%d+)\t(%d+)") do
      n = n + 1
      assert.are.equal(a, b)
    end
    assert.are.equal(3, n, r.stdout)
  end)

  it("counts only meters in cost avoidance by default (onlyMetersInCAP defaults to true)", function()
    local r = run([[
      local all = ecap.cost_avoidance.count({}, { onlyMetersInCAP = false }).count
      local cap = ecap.cost_avoidance.count({}).count
      local n = 0
      for m in ecap.pages("/api/v3/meter") do
        local one = ecap.request("GET", "/api/v3/meter/" .. m.meterId)
        n = n + 1
      end
      print(all, cap, n)]])
    local all, cap, n = r.stdout:match("(%d+)\t(%d+)\t(%d+)")
    assert.are.equal(n, all)
    assert.is_true(tonumber(cap) < tonumber(all), r.stdout)
  end)

  it("the simulator refuses a body that is not a list", function()
    local res = sim.http("/api/v3/savings/meter/count", { method = "POST", body = '{"filters":[]}' })
    assert.are.equal(400, res.status)
  end)
end)
