-- Many calls at once: ecap.parallel, the non-blocking bindings, --max-in-flight / --rate,
-- ecap.pages, ecap.sleep, ecap.cost_avoidance.wait, ecap.filter. Real binary, real simulator.
-- Timing assertions are generous bounds (they must hold under ASan too): they tell overlap
-- (N x L / C) from no overlap (N x L), nothing finer.
local T = require "spec.lua.support"

describe("many calls at once", function()
  local sim

  setup(function() sim = T.start_sim({ "--quiet" }) end)
  teardown(function() sim.stop() end)
  before_each(function() sim.reset() end)

  local function set_latency(ms) sim.configure({ latencyMs = ms }) end

  local function recorded()
    return T.json(sim.http("/api/__sim/requests").body)
  end

  local function clear_recorded()
    sim.http("/api/__sim/requests", { method = "DELETE" })
  end

  -- Runs a script against the simulator; extra host options before the script.
  local function run(text, opts)
    return T.run_script(text, opts, { quiet = true, url = sim.url })
  end

  local function ok(text, opts)
    return T.expect(0, run(text, opts)).stdout
  end

  describe("ecap.parallel", function()
    it("overlaps calls: 40 calls at 200 ms, 8 at a time, take about 1 s, not 8 s", function()
      set_latency(200)
      local out = ok([[
        local ids = {}
        for i = 1, 40 do ids[i] = (i % 20) + 1 end
        local t0 = ecap.now()
        local res, errs = ecap.parallel(ids, function(id)
          return ecap.request("GET", "/api/v3/meter/" .. id).meterId
        end, { concurrency = 8 })
        assert(next(errs) == nil, "unexpected errors")
        for i = 1, 40 do assert(res[i] == ids[i], "result out of order at " .. i) end
        print(string.format("%.3f", ecap.now() - t0))
      ]])
      local secs = tonumber(out)
      assert.is_true(secs >= 0.95, "faster than the latency allows: " .. secs)
      assert.is_true(secs < 4.0, "calls did not overlap: " .. secs .. " s")
    end)

    it("keeps results and errors in item order, whatever order items finish in", function()
      local out = ok([[
        local items = {}
        for i = 1, 10 do items[i] = i end
        local res, errs = ecap.parallel(items, function(i)
          ecap.sleep(0.02 * (10 - i))        -- later items finish first
          if i % 3 == 0 then error({ kind = "mine", n = i }) end
          return i * 10
        end, { concurrency = 10 })
        for i = 1, 10 do
          if i % 3 == 0 then
            assert(res[i] == nil and errs[i] and errs[i].n == i, "error " .. i)
          else
            assert(res[i] == i * 10 and errs[i] == nil, "result " .. i)
          end
        end
        print("ok")
      ]])
      assert.equal("ok\n", out)
    end)

    it("turns a failed call into an error table and keeps the other results", function()
      local out = ok([[
        local res, errs = ecap.parallel({ 1, 999999, 2 }, function(id)
          return ecap.request("GET", "/api/v3/meter/" .. id).meterId
        end)
        print(res[1], res[2], res[3], errs[2].kind, errs[2].status, errs[1], errs[3])
        local res2, errs2 = ecap.parallel({}, function() end)
        print(#res2, next(errs2))
      ]])
      assert.equal("1\tnil\t2\thttp\t404\tnil\tnil\n0\tnil\n", out)
    end)

    it("gives a plain Lua error an error table of kind script", function()
      local out = ok([[
        local _, errs = ecap.parallel({ 1 }, function() error("boom") end)
        print(errs[1].kind, tostring(errs[1]):match("boom") ~= nil)
      ]])
      assert.equal("script\ttrue\n", out)
    end)

    it("with stop_on_error starts nothing after the first failure and cancels the rest", function()
      local out = ok([[
        local res, errs = ecap.parallel({ 1, 999999, 2, 3, 4 }, function(id)
          return ecap.request("GET", "/api/v3/meter/" .. id).meterId
        end, { concurrency = 1, stop_on_error = true })
        for i = 1, 5 do print(i, res[i], errs[i] and errs[i].kind) end
      ]])
      assert.equal("1\t1\tnil\n2\tnil\thttp\n3\tnil\tcancelled\n4\tnil\tcancelled\n5\tnil\tcancelled\n", out)
    end)

    it("refuses bad options", function()
      for _, o in ipairs({ "{concurrency = 0}", "{concurrency = 1025}", "{concurrency = 1.5}", "{stop_on_error = 1}" }) do
        local out = ok("local ok, e = pcall(ecap.parallel, {1}, function() end, " .. o .. ") print(ok, e.kind)")
        assert.equal("false\tvalidation\n", out, o)
      end
    end)

    it("nests, and works where the script cannot yield (sort, gsub, metamethod, own coroutine)", function()
      local out = ok([[
        local function code(id) return ecap.request("GET", "/api/v3/meter/" .. id).meterCode end
        local ids = { 3, 1, 2 }
        table.sort(ids, function(a, b) return code(a) < code(b) end)
        local s = ("1 2"):gsub("%d", function(d) return code(tonumber(d)) end)
        local mt = setmetatable({}, { __index = function(_, k) ecap.sleep(0.01) return code(k) end })
        local co = coroutine.wrap(function()
          local r = ecap.parallel({ 1, 2, 3 }, function(id) return code(id) end, { concurrency = 2 })
          coroutine.yield(table.concat(r, ","))
        end)
        local nested = ecap.parallel({ 1, 2 }, function(i)
          local inner = ecap.parallel({ i, i + 2 }, function(id) ecap.sleep(0.01) return code(id) end)
          return table.concat(inner, "+")
        end)
        print(#ids, s == code(1) .. " " .. code(2), mt[5] == code(5), co() == code(1) .. "," .. code(2) .. "," .. code(3),
              nested[1] == code(1) .. "+" .. code(3), nested[2] == code(2) .. "+" .. code(4))
      ]])
      assert.equal("3\ttrue\ttrue\ttrue\ttrue\ttrue\n", out)
    end)

    it("still enforces the memory limit inside items", function()
      local r = run([[
        ecap.parallel({ 1, 2 }, function()
          local t = {}
          for i = 1, 1e9 do t[i] = string.rep("x", 100) .. i end
        end)
      ]], { "--max-memory", "32" })
      assert.equal(5, r.code, r.stderr)
      assert.matches("memory limit", r.stderr)
    end)

    it("still enforces the time limit inside items, even under pcall", function()
      local r = run([[
        ecap.parallel({ 1, 2 }, function() while true do pcall(function() while true do end end) end end)
      ]], { "--timeout", "1" })
      assert.equal(4, r.code, r.stderr)
      assert.matches("time limit", r.stderr)
    end)

    it("draws no progress line when stderr is not a terminal", function()
      local r = T.run({ "run", "--base-url", sim.url, T.script([[
        ecap.parallel({ 1, 2, 3 }, function(i) ecap.sleep(0.01) return i end)
      ]]) })
      assert.equal(0, r.code, r.stderr)
      assert.is_nil(r.stderr:find("parallel:", 1, true))
    end)
  end)

  describe("progress", function()
    -- util-linux `script` gives the binary a terminal on stderr.
    local has_script = os.execute("command -v script >/dev/null 2>&1")

    it("shows done/total, rate, errors, ETA on a terminal, and clears the line at the end", function()
      if not has_script then return pending("no `script` command") end
      local typescript = T.tmpname(".tty")
      local path = T.script([[
        local items = {}
        for i = 1, 20 do items[i] = i end
        ecap.parallel(items, function() ecap.sleep(0.03) end, { concurrency = 2 })
        for _ in ecap.pages("/api/v3/meter", { pageSize = 5 }) do ecap.sleep(0.02) end
        print("end")
      ]])
      local cmd = string.format("script -qec %s %s", T.q(T.q(T.bin) .. " run --base-url " .. sim.url .. " " .. T.q(path)),
                                T.q(typescript))
      local r = T.sh(cmd, { env = { ECAP_API_KEY = "test-key", ECAP_CONFIG = "/dev/null" } })
      assert.equal(0, r.code, r.stderr)
      local screen = T.read(typescript)
      assert.matches("parallel: %d+/20 +[%d.]+/s +errors 0 +ETA %d+s", screen)
      assert.matches("pages: page %d+/%d+", screen)
      assert.matches("\r\27%[Kend", screen)  -- cleared before the script's next output
    end)
  end)

  describe("host-wide limits", function()
    it("--max-in-flight caps calls in flight across the run", function()
      set_latency(200)
      local out = ok([[
        local items = {}
        for i = 1, 10 do items[i] = 1 end
        local t0 = ecap.now()
        local _, errs = ecap.parallel(items, function(id) return ecap.request("GET", "/api/v3/meter/1") end,
                                      { concurrency = 10 })
        assert(next(errs) == nil)
        print(string.format("%.3f", ecap.now() - t0))
      ]], { "--max-in-flight", "2" })
      -- 10 calls, 2 at a time, 200 ms each: at least 5 rounds.
      assert.is_true(tonumber(out) >= 0.95, "cap not applied: " .. out)
    end)

    it("--rate spaces calls out", function()
      local out = ok([[
        local t0 = ecap.now()
        for i = 1, 6 do ecap.request("GET", "/api/v3/meter/1") end
        print(string.format("%.3f", ecap.now() - t0))
      ]], { "--rate", "10/s" })
      assert.is_true(tonumber(out) >= 0.45, "rate not applied: " .. out)
    end)
  end)

  describe("ecap.pages", function()
    it("iterates every record, fetching the next page only when needed", function()
      clear_recorded()
      local out = ok([[
        local it = ecap.pages("/api/v3/meter", { pageSize = 3 })
        it(); it()
        print("after two")
      ]])
      local reqs = recorded()
      assert.equal(1, #reqs, "fetched more than one page for two records")
      local q = reqs[1].query
      assert.truthy(q:find("pageSize=3", 1, true) and q:find("pageNumber=1", 1, true), q)

      local out2 = ok([[
        local n, codes = 0, {}
        for m in ecap.pages("/api/v3/meter", { pageSize = 3, query = { filter = ecap.filter{ { "active", "equals", true } } } }) do
          n = n + 1
          codes[m.meterCode] = true
        end
        local total = 0
        for _ in pairs(codes) do total = total + 1 end
        print(n, total)
      ]])
      local n, distinct = out2:match("^(%d+)\t(%d+)")
      assert.is_true(tonumber(n) > 3, "expected several pages: " .. out2)
      assert.equal(n, distinct, "a record came twice")
    end)

    it("refuses a bad page size", function()
      local out = ok([[print(pcall(ecap.pages, "/api/v3/meter", { pageSize = 5000 }))]])
      assert.matches("pageSize must be an integer 1..1000", out)
    end)
  end)

  describe("ecap.sleep", function()
    it("sleeps without burning CPU, and sleeps overlap in parallel", function()
      local out = ok([[
        local c0, t0 = os.clock(), ecap.now()
        ecap.sleep(0.3)
        local cpu, wall = os.clock() - c0, ecap.now() - t0
        local items = {}
        for i = 1, 20 do items[i] = i end
        local t1 = ecap.now()
        ecap.parallel(items, function() ecap.sleep(0.3) end, { concurrency = 20 })
        print(string.format("%.3f %.3f %.3f", wall, cpu, ecap.now() - t1))
      ]])
      local wall, cpu, par = out:match("([%d.]+) ([%d.]+) ([%d.]+)")
      assert.is_true(tonumber(wall) >= 0.29, out)
      assert.is_true(tonumber(cpu) < 0.1, "sleep burned CPU: " .. out)
      assert.is_true(tonumber(par) < 2.0, "sleeps did not overlap: " .. out)
    end)

    it("refuses negative seconds, and otherwise sleeps at least the time given, yielding or not", function()
      local out = ok([[
        local ok, err = pcall(ecap.sleep, -1)
        print(ok, tostring(err))
        local t0 = ecap.now()
        ecap.sleep(0.2)                                   -- the main task yields
        local t1 = ecap.now()
        local mt = setmetatable({}, { __index = function() ecap.sleep(0.2) return ecap.now() end })
        local t2 = mt.x                                   -- a metamethod cannot yield: drives the loop
        local order = {}
        ecap.parallel({ 0.3, 0.1, 0.2 }, function(s)
          ecap.sleep(s)
          order[#order + 1] = s
        end, { concurrency = 3 })
        print(string.format("%.3f %.3f %s", t1 - t0, t2 - t1, table.concat(order, ",")))
      ]])
      local first, second = out:match("^([^\n]*)\n([^\n]*)\n$")
      assert.matches("false", first, 1, true)
      assert.matches("seconds must be between 0 and a year", first, 1, true)
      local yielded, driven, order = second:match("^([%d.]+) ([%d.]+) (%S+)$")
      assert.is_true(tonumber(yielded) >= 0.2 and tonumber(yielded) < 5, out)
      assert.is_true(tonumber(driven) >= 0.2 and tonumber(driven) < 5, out)
      assert.are.equal("0.1,0.2,0.3", order, out)
    end)
  end)

  describe("ecap.cost_avoidance.wait", function()
    local bulk = [[
      local filters = ecap.request("GET", "/api/v3/savings/filters")
      local field
      for _, f in ipairs(filters) do if f.queryParameterName == "commodityCode" then field = f.fieldId end end
      local task = ecap.cost_avoidance.bulk_update{
        filters = { { fieldId = field, operator = "equals", value = "ELECTRIC" } },
        numBaselineMonths = 24,
      }
    ]]

    it("polls until the task has an end date", function()
      sim.http("/api/__sim/config", { method = "PUT", body = '{"taskDelaySeconds": 0.5}' })
      local out = ok(bulk .. [[
        local t0 = ecap.now()
        local done = ecap.cost_avoidance.wait(task, { interval = 0.1, timeout = 10 })
        print(done.costAvoidanceTaskId == task.costAvoidanceTaskId, done.endDate ~= json.null, ecap.now() - t0 >= 0.3)
      ]])
      assert.equal("true\ttrue\ttrue\n", out)
    end)

    it("raises a timeout error past its timeout", function()
      sim.http("/api/__sim/config", { method = "PUT", body = '{"taskDelaySeconds": 30}' })
      local out = ok(bulk .. [[
        local ok, e = pcall(ecap.cost_avoidance.wait, task.costAvoidanceTaskId, { interval = 0.1, timeout = 0.3 })
        print(ok, e.kind, tostring(e):match("not finished") ~= nil)
      ]])
      assert.equal("false\ttimeout\ttrue\n", out)
    end)
  end)

  describe("ecap.filter", function()
    it("builds the API's filter syntax, every value single-quoted", function()
      local out = ok([[print(ecap.filter{ { "meterCode", "like", "ELEC%" }, { "active", "equals", true }, { "meterId", "greater than", 5 } })]])
      assert.equal("meterCode like 'ELEC%' and active equals 'true' and meterId greater than '5'\n", out)
    end)

    it("refuses a value with a single quote, since the API documents no escape", function()
      local out = ok([[local ok, e = pcall(ecap.filter, { { "meterInfo", "equals", "O'Brien" } }) print(ok, e.kind, e.message)]])
      assert.matches("^false\tvalidation\t.*single quote", out)
    end)
  end)
end)
