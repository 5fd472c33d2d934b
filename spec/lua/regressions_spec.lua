-- Bugs found by the code reviews of this release, each pinned by the case that showed it.
-- (Bugs found by the other specs stay in those specs, next to the behaviour they guard.)
local T = require "spec.lua.support"

describe("regressions", function()
  local sim

  setup(function() sim = T.start_sim({ "--quiet" }) end)
  teardown(function() sim.stop() end)
  before_each(function() sim.reset() end)

  local function out(text, host_opts, args)
    local r = T.run_script(text, host_opts, { quiet = true, url = sim.url, args = args })
    T.expect(0, r)
    return r.stdout
  end

  it("builds a query longer than Lua's buffer size (use-after-free in the URL builder)", function()
    out([[
      local q = { a = {}, b = string.rep("v", 3000) }
      for i = 1, 300 do q.a[i] = string.rep("w", 10) .. i end
      ecap.request("GET", "/api/v3/meter", { query = q })
    ]])
    local req = sim.requests()
    local query = req[#req].query
    assert.truthy(query:find("b=" .. string.rep("v", 3000), 1, true))
    assert.truthy(query:find("a=wwwwwwwwww300", 1, true))
    local n = 0
    for _ in query:gmatch("a=") do n = n + 1 end
    assert.are.equal(300, n)
  end)

  it("writes float query values as their shortest round-trip text", function()
    out([[ecap.request("GET", "/api/v3/meter", { query = { x = 0.1, y = 1e21, z = 2.5 } })]])
    local req = sim.requests()
    assert.are.equal("x=0.1&y=1e%2B21&z=2.5", req[#req].query)
  end)

  it("refuses a body on a GET (curl would have sent a POST)", function()
    local got = out([[
      local ok, e = pcall(ecap.request, "GET", "/api/v3/meter", { body = { a = 1 } })
      print(ok, e.kind)
    ]])
    assert.are.equal("false\tvalidation\n", got)
    assert.are.equal(0, #sim.requests())
  end)

  it("does not let opts.headers duplicate Content-Type, Accept, User-Agent", function()
    local got = out([[
      for _, h in ipairs({ "Content-Type", "accept", "User-Agent", "Expect" }) do
        local ok, e = pcall(ecap.request, "GET", "/api/v3/meter/1", { headers = { [h] = "text/plain" } })
        print(h, ok, e.kind)
      end
    ]])
    assert.are.equal("Content-Type\tfalse\tvalidation\naccept\tfalse\tvalidation\n" ..
                     "User-Agent\tfalse\tvalidation\nExpect\tfalse\tvalidation\n", got)
  end)

  it("does not let a script resume or close a host task (use-after-free in parallel/timers)", function()
    local got = out([[
      local main, ismain = coroutine.running()
      print(ismain, coroutine.resume(main))
      local T1
      local r = ecap.parallel({ 1, 2 }, function(i)
        if i == 1 then T1 = coroutine.running(); ecap.sleep(0.2); return "one" end
        ecap.sleep(0.01)
        local ok, msg = coroutine.resume(T1)
        local ok2, e2 = pcall(coroutine.close, T1)
        return tostring(ok) .. " " .. msg .. " / " .. tostring(ok2)
      end)
      print(r[1], r[2])
    ]])
    assert.are.equal("true\tfalse\tcannot resume non-suspended coroutine\n" ..
                     "one\tfalse cannot resume non-suspended coroutine / false\n", got)
  end)

  it("keeps string arithmetic coercion (\"10\" + 1) in the sandbox", function()
    assert.are.equal("11\t14\n", out([[print("10" + 1, arg[1] * 2)]], nil, { "7" }))
  end)

  it("lets a module that failed to load be required again", function()
    local dir = T.tmpname(".lib")
    os.execute("mkdir -p " .. T.q(dir))
    T.write(dir .. "/flaky.lua", [[
      loads = (loads or 0) + 1
      if loads == 1 then error("first load fails") end
      return { n = loads }
    ]])
    local got = out([[
      print((pcall(require, "flaky")))
      local ok, m = pcall(require, "flaky")
      print(ok, ok and m.n)
    ]], { "--lib", dir })
    assert.are.equal("false\ntrue\t2\n", got)
  end)

  it("refuses limits that would round to 'none'", function()
    for _, a in ipairs({ { "--max-memory", "0.0000001" }, { "--http-timeout", "0.00001" },
                         { "--connect-timeout", "0" } }) do
      local r = T.run({ "run", a[1], a[2], "--base-url", sim.url, T.script("print(1)") })
      assert.are.equal(2, r.code, a[1] .. " " .. a[2] .. ": " .. T.explain(r))
    end
  end)

  it("counts reply buffers against --max-memory", function()
    -- 64 replies of ~16 KB each held at once are more than a 0.5 MB budget can take.
    local r = T.run_script([[
      local items = {}
      for i = 1, 64 do items[i] = i end
      local _, errs = ecap.parallel(items, function()
        return #ecap.request("GET", "/api/v3/meter", { query = { pageSize = 1000 } })
      end, { concurrency = 64 })
    ]], { "--max-memory", "0.5" }, { quiet = true, url = sim.url })
    assert.are_not.equal(0, r.code, T.explain(r))
    assert.matches("memory", r.stderr)
  end)
end)
