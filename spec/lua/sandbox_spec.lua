-- The sandbox, adversarially, through the real binary: what a script can reach (an allow-list),
-- what it cannot change (read-only tables, protected metatables), bytecode, require, the limits
-- (time, memory, a long C call, signals), and the API key, which must never be reachable.
local T = require "spec.lua.support"

local KEY = "secret-xyz" -- the simulator of this file accepts only this key
local CLOSED = "http://127.0.0.1:9"

local sim, conf

-- Runs script text: host_opts before the script, opts.args after it, opts.env over the defaults
-- (the key above, an empty config file, the simulator's URL unless host_opts name another).
local function run(text, host_opts, opts)
  opts = opts or {}
  return T.run_script(text, host_opts, { url = sim.url, path = opts.path, args = opts.args,
    env = T.merge({ ECAP_API_KEY = KEY, ECAP_CONFIG = conf }, opts.env),
    kill_after = opts.kill_after or 60 })
end

-- Runs text quietly, expects exit 0, returns stdout without the trailing newline.
local function out(text, host_opts, opts)
  local h = { "-q" }
  for _, a in ipairs(host_opts or {}) do h[#h + 1] = a end
  return (T.expect(0, run(text, h, opts)).stdout:gsub("\n$", ""))
end

local function now()
  local p = io.popen("date +%s.%N")
  local t = tonumber(p:read("*l"))
  p:close()
  return t
end

-- Runs and measures the wall-clock time.
local function timed(text, host_opts, opts)
  local t0 = now()
  local r = run(text, host_opts, opts)
  r.elapsed = now() - t0
  return r
end

setup(function()
  conf = T.write(T.tmpname(".conf"), "# empty: no config file settings\n")
  sim = T.start_sim({ "--quiet", "--api-key", KEY })
end)

teardown(function()
  if sim then sim.stop() end
end)

describe("sandbox: globals", function()
  it("has exactly the allow-listed globals", function()
    local got = out([[
      local names = {}
      for k in pairs(_G) do names[#names + 1] = k end
      table.sort(names)
      print(table.concat(names, " "))
    ]])
    assert.are.equal("_G _VERSION arg assert collectgarbage coroutine csv ecap error fs getmetatable " ..
      "ipairs json load log math next os pairs pcall print rawequal rawget rawlen rawset require " ..
      "select setmetatable string table tonumber tostring type utf8 xpcall", got)
  end)

  it("has no io, package, debug, dofile, loadfile, string.dump or dangerous os functions", function()
    local got = out([[
      local present = {}
      local function check(name, v) if v ~= nil then present[#present + 1] = name end end
      check("io", io); check("package", package); check("debug", debug)
      check("dofile", dofile); check("loadfile", loadfile); check("loadstring", loadstring)
      check("string.dump", string.dump); check("('').dump", ("").dump)
      for _, f in ipairs{"execute", "exit", "getenv", "remove", "rename", "tmpname", "setlocale"} do
        check("os." .. f, os[f])
      end
      print("present: " .. table.concat(present, ","))
    ]])
    assert.are.equal("present: ", got)
  end)

  it("reduces os to time, date, clock and difftime", function()
    assert.are.equal("clock date difftime time", out([[
      local names = {}
      for k in pairs(os) do names[#names + 1] = k end
      table.sort(names)
      print(table.concat(names, " "))
    ]]))
  end)

  it("refuses require of C modules and of the hidden standard libraries", function()
    -- The directory of the real C modules is even granted with --lib: still only Lua source.
    local got = out([[
      for _, name in ipairs{"cjson", "socket", "lfs", "io", "debug", "package", "os.exec"} do
        local okr, e = pcall(require, name)
        print(name, okr, okr and type(e) or e.kind == "script" and e.message:match("not found") and "not found" or tostring(e))
      end
    ]], { "--lib", "/usr/lib/x86_64-linux-gnu/lua/5.4" })
    for _, name in ipairs { "cjson", "socket", "lfs", "io", "debug", "package", "os.exec" } do
      assert.matches(name .. "\tfalse\tnot found", got, 1, true)
    end
  end)

  it("refuses module names that could leave the search directories", function()
    local got = out([[
      for _, name in ipairs{"../x", "/etc/passwd", "a..b", "a/b", ".hidden", ""} do
        local okr, e = pcall(require, name)
        print(okr, e.kind == "argument" and e.message:match("bad module name") ~= nil)
      end
    ]])
    assert.are.equal(("false\ttrue\n"):rep(6), got .. "\n")
  end)

  it("allows the collectgarbage options that never hold the collector back", function()
    local got = out([[
      print(math.type(collectgarbage("count")))
      for _, o in ipairs{"collect", "step", "isrunning", "incremental", "generational", "stop", "restart",
                         "setpause", "setstepmul"} do
        print(o, (pcall(collectgarbage, o)))
      end
      print("default", (pcall(collectgarbage)))
      print("tuning", (pcall(collectgarbage, "incremental", 1000)))
    ]])
    assert.are.equal("float\ncollect\ttrue\nstep\ttrue\nisrunning\ttrue\nincremental\ttrue\n" ..
      "generational\ttrue\nstop\tfalse\nrestart\tfalse\nsetpause\tfalse\nsetstepmul\tfalse\n" ..
      "default\ttrue\ntuning\tfalse", got)
  end)
end)

describe("sandbox: load", function()
  -- Real Lua 5.4 bytecode made on the spec side (where string.dump exists), as a string literal.
  local function bytecode_literal()
    local bc = string.dump(function() return "escaped" end)
    assert.are.equal("escaped", load(bc, "bc", "b")()) -- it is loadable bytecode outside
    return string.format("%q", bc)
  end

  it("refuses bytecode in every mode, also through a reader function", function()
    local got = out([[
      local bc = ]] .. bytecode_literal() .. [[
      local results = {}
      for _, mode in ipairs{"nil", "b", "bt", "t"} do
        local f, e = load(bc, "bc", mode ~= "nil" and mode or nil)
        results[#results + 1] = mode .. "=" .. tostring(f == nil and e:match("binary chunk") ~= nil)
      end
      local given = false
      local f = load(function() if given then return nil end given = true return bc end, "r", "b")
      results[#results + 1] = "reader=" .. tostring(f == nil)
      local g = load("\27Lua handmade", "hm", "b")
      results[#results + 1] = "handmade=" .. tostring(g == nil)
      print(table.concat(results, " "))
    ]])
    assert.are.equal("nil=true b=true bt=true t=true reader=true handmade=true", got)
  end)

  it("loads text into the sandbox environment", function()
    local got = out([[
      print(load("return io == nil and package == nil and ecap ~= nil")())
      load("shared_global = 41 + 1")()
      print(shared_global)
      print(load("return y", "c", "t", { y = 7 })())
      local f, e = load("return (", "broken")
      print(f, e:match("broken") ~= nil)
    ]])
    assert.are.equal("true\n42\n7\nnil\ttrue", got)
  end)
end)

describe("sandbox: read-only tables", function()
  it("refuses new and changed fields on every protected table", function()
    local got = out([[
      local writable = {}
      for _, name in ipairs{"ecap", "json", "log", "fs", "csv", "string", "table", "math", "os",
                            "utf8", "coroutine"} do
        local t = _G[name]
        local some = next(t) or (function() for k in pairs(t) do return k end end)()
        local okn = pcall(function() t.injected = 1 end)
        local okc = pcall(function() t[some] = nil end)
        local okr, v = pcall(function() return t.injected end) -- the host's modules read strictly
        if okn or okc or (okr and v ~= nil) or t[some] == nil then writable[#writable + 1] = name end
      end
      print("writable: " .. table.concat(writable, ","))
    ]])
    assert.are.equal("writable: ", got)
  end)

  it("refuses writes to nested tables with a message naming them", function()
    local got = out([[
      local okm, em = pcall(function() ecap.meters.x = 1 end)
      local okw, ew = pcall(function() ecap.cost_avoidance.wait = nil end)
      print(okm, em)
      print(okw, type(ecap.cost_avoidance.wait))
    ]])
    assert.matches("^false\t[^\n]*ecap%.meters is read%-only", got)
    assert.matches("\nfalse\tfunction$", got)
  end)

  it("keeps the metatables of protected tables out of reach", function()
    local got = out([[
      for _, t in ipairs{ecap, json, string, ecap.meters} do
        local mt = getmetatable(t)
        print(type(mt), (pcall(setmetatable, t, {})), (pcall(setmetatable, t, nil)))
      end
    ]])
    assert.are.equal(("string\tfalse\tfalse\n"):rep(4), got .. "\n")
  end)

  it("protects the string metatable: getmetatable(\"\") gives a string, not the string table", function()
    local got = out([[
      local mt = getmetatable("")
      print(type(mt), mt.__index, rawequal(mt, string))
      print(pcall(function() string.rep = function() return "evil" end end))
      print(("x"):rep(3), ("abc"):upper())
      print((pcall(setmetatable, "", {})))
    ]])
    local lines = {}
    for l in (got .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = l end
    assert.are.equal("string\tnil\tfalse", lines[1])
    assert.matches("^false\t.*string is read%-only", lines[2])
    assert.are.equal("xxx\tABC", lines[3])
    assert.are.equal("false", lines[4])
  end)

  it("does not hand out a writable table through pairs()", function()
    -- Regression (fixed in 2b91a6d): __pairs returned `next, <the real table>, nil`, so
    -- `local _, real = pairs(ecap)` gave the table behind the proxy, writable.
    local got = out([[
      local _, real = pairs(ecap)
      pcall(function() real.request = "replaced" end)
      local _, rs = pairs(string)
      pcall(function() rs.format = "replaced" end)
      print(type(ecap.request), type(require("ecap").request), type(string.format))
    ]])
    assert.are.equal("function\tfunction\tfunction", got)
  end)

  it("refuses rawset on a proxy like any other write", function()
    -- Before: rawset changed the (empty) proxy itself, so the script's own view of ecap.request
    -- or string.rep could be swapped. rawset on the script's own tables still works.
    sim.reset()
    local got = out([[
      for _, t in ipairs{ecap, string, ecap.meters, json} do
        local ok, e = pcall(rawset, t, "request", function() error("fake request called") end)
        print(ok, tostring(e):match("is read%-only %(cannot set request%)") ~= nil)
      end
      print(type(ecap.request), math.type(ecap.request("GET", "/api/v3/meter/1").meterId), ("ab"):rep(2))
      local own = setmetatable({}, { __newindex = function() error("no") end })
      print(rawset(own, "x", 1) == own, own.x)
    ]])
    assert.are.equal(("false\ttrue\n"):rep(4) .. "function\tinteger\tabab\ntrue\t1", got)
  end)

  it("lets the script shadow its globals without affecting the host", function()
    local got = out([[
      ecap, json, string = nil, { encode = function() return "evil" end }, nil
      local e = require "ecap"
      local body = e.request("POST", "/api/v3/meterGroup/updateUserAutoGroups", { body = { ok = 1 } })
      print(type(e.request), type(body), ("x"):rep(2))
    ]])
    assert.are.equal("function\ttable\txx", got)
    local _, raw = sim.requests()
    assert.matches('"body":"{\\"ok\\":1}"', raw, 1, true)
  end)

  it("protects json.null and the error tables' metatables", function()
    local got = out([[
      print(getmetatable(json.null), (pcall(setmetatable, json.null, {})))
      local _, e = pcall(ecap.request, "GET", "/api/v3/meter/999999")
      print(getmetatable(e), (pcall(setmetatable, e, {})))
    ]])
    assert.are.equal("json.null\tfalse\necap.error\tfalse", got)
  end)
end)

describe("sandbox: require", function()
  local dir, libdir

  setup(function()
    dir = T.tmpdir() .. "/req"
    libdir = T.tmpdir() .. "/reqlib"
    assert(os.execute("mkdir -p " .. T.q(dir) .. " " .. T.q(libdir .. "/pkg")))
    T.write(dir .. "/helper.lua", [[
      local name, path = ...
      return { name = name, io = io, package = package, debug = debug,
               same_ecap = rawequal(require "ecap", ecap),
               write_ok = pcall(function() ecap.x = 1 end) }
    ]])
    T.write(libdir .. "/pkg/mod.lua", [[
      libmod_loaded = (libmod_loaded or 0) + 1
      return { double = function(x) return 2 * x end }
    ]])
  end)

  it("loads Lua source from the script's directory, in the sandbox", function()
    T.write(dir .. "/main.lua", [[
      local h = require "helper"
      print(h.name, h.io, h.package, h.debug, h.same_ecap, h.write_ok, rawequal(h, require "helper"))
    ]])
    assert.are.equal("helper\tnil\tnil\tnil\ttrue\tfalse\ttrue", out(nil, nil, { path = dir .. "/main.lua" }))
  end)

  it("loads dotted names from --lib directories, once", function()
    assert.are.equal("42\t1", out([[
      local m = require "pkg.mod"
      require "pkg.mod"
      print(m.double(21), libmod_loaded)
    ]], { "--lib", libdir }))
  end)

  it("does not search --lib directories it was not given", function()
    local got = out([[print(pcall(require, "pkg.mod"))]])
    assert.matches("^false\t[^\n]*: script: module 'pkg.mod' not found", got)
  end)

  it("returns the ecap table (and json, log) from require", function()
    assert.are.equal("true\ttrue\ttrue", out([[
      print(rawequal(require "ecap", ecap), rawequal(require "json", json), rawequal(require "log", log))
    ]]))
  end)

  it("returns the sandbox's standard libraries from require, as lua does", function()
    assert.are.equal(("true"):rep(10, "\t"), out([[
      local same = {}
      for _, n in ipairs{"utf8", "string", "table", "math", "coroutine", "os", "csv", "fs", "_G"} do
        same[#same + 1] = tostring(rawequal(require(n), _G[n]))
      end
      print(table.concat(same, "\t"), require("utf8").char(72, 105) == "Hi")
    ]]))
  end)
end)

describe("sandbox: limits", function()
  it("stops an endless loop inside pcall with exit 4 under --timeout 1", function()
    local r = timed([[while true do pcall(function() while true do end end) end]], { "-q", "--timeout", "1" })
    T.expect(4, r)
    assert.matches("time limit", r.stderr)
    assert.is_true(r.elapsed >= 0.9 and r.elapsed < 10, "took " .. r.elapsed)
  end)

  it("stops a loop in a coroutine, and one in an xpcall handler, with exit 4", function()
    for _, text in ipairs {
      [[local co = coroutine.wrap(function() while true do end end) while true do pcall(co) end]],
      [[while true do xpcall(function() error("x") end, function() while true do end end) end]],
      [[while true do pcall(error, setmetatable({}, {__gc = function() while true do end end})) end]],
    } do
      local r = timed(text, { "-q", "--timeout", "1" })
      assert.are.equal(4, r.code, text .. "\n" .. T.explain(r))
      assert.is_true(r.elapsed < 10, "took " .. r.elapsed)
    end
  end)

  it("stops string.rep bombs inside pcall with exit 5 under --max-memory 64", function()
    local r = run([[while true do pcall(string.rep, "x", 2^30) end]], { "-q", "--max-memory", "64" })
    T.expect(5, r)
    assert.matches("memory limit", r.stderr)
  end)

  it("stops a table-growing bomb with exit 5", function()
    local r = run([[
      local t, i = {}, 0
      while true do i = i + 1; t[i] = { i, tostring(i) .. "padding" } end
    ]], { "-q", "--max-memory", "64" })
    T.expect(5, r)
  end)

  it("stops a bomb that catches the memory error and retries smaller", function()
    local r = run([[
      local keep, n = {}, 2^26
      while true do
        local okr, s = pcall(string.rep, "y", n)
        if okr then keep[#keep + 1] = s else n = math.max(1024, n // 2) end
      end
    ]], { "-q", "--max-memory", "64" })
    T.expect(5, r)
  end)

  it("ends a long single C call (pathological pattern) by the watchdog, exit 4", function()
    local r = timed([[
      local s = string.rep("a", 26)
      print(s:find(string.rep("(a*)", 30) .. "b"))
    ]], { "-q", "--timeout", "1" })
    T.expect(4, r)
    assert.matches("time limit", r.stderr)
    assert.is_true(r.elapsed >= 0.9 and r.elapsed < 15, "took " .. r.elapsed)
  end)

  it("does not crash on a runaway __tostring of a raised error object", function()
    -- Regression (fixed in 2b91a6d): the error's __tostring ran unprotected after the run,
    -- and a raising or looping one made Lua panic (SIGABRT, exit 134).
    local r = run([[error(setmetatable({}, { __tostring = function() error("inner") end }))]], { "-q" })
    T.expect(1, r)
    r = timed([[error(setmetatable({}, { __tostring = function() while true do end end }))]],
      { "-q", "--timeout", "1" })
    T.expect(4, r)
    r = run([[error(setmetatable({}, { __tostring = function() return string.rep("x", 2^28) end }))]],
      { "-q", "--max-memory", "64" })
    T.expect(5, r)
    r = run([[error(setmetatable({}, { __tostring = function() return "custom message" end }))]], { "-q" })
    T.expect(1, r)
    assert.matches("custom message", r.stderr, 1, true)
  end)

  it("ends a runaway __gc finalizer at the end of the run under --timeout", function()
    -- Regression (fixed in 2b91a6d): the watchdog stopped before lua_close ran the
    -- finalizers, and hooks do not run inside them: the process hung (killed here after 10 s,
    -- exit 137) despite --timeout 1.
    local r = timed([[x = setmetatable({}, { __gc = function() while true do end end })]],
      { "-q", "--timeout", "1" }, { kill_after = 10 })
    T.expect(4, r)
    assert.is_true(r.elapsed < 9.5, "took " .. r.elapsed)
  end)

  local function signal_run(sig, text)
    local script, errf, outf = T.script(text), T.tmpname(".err"), T.tmpname(".out")
    local cmd = string.format(
      "(env -u ECAP_BASE_URL ECAP_CONFIG=%s ECAP_API_KEY=%s %s run --base-url %s %s >%s 2>%s & pid=$!; " ..
      "i=0; while ! grep -q started %s && [ $i -lt 300 ]; do sleep 0.05; i=$((i+1)); done; " ..
      "sleep 0.2; kill -%s $pid; wait $pid)",
      T.q(conf), T.q(KEY), T.q(T.bin), T.q(CLOSED), T.q(script), T.q(outf), T.q(errf), T.q(errf), sig)
    local r = T.sh(cmd)
    r.stderr, r.stdout = T.read(errf) or "", T.read(outf) or ""
    return r
  end

  it("ends with 130 on SIGINT and 143 on SIGTERM, also inside pcall", function()
    local text = [[log.warn("started") while true do pcall(function() while true do end end) end]]
    local r = signal_run("INT", text)
    T.expect(130, r)
    assert.matches("interrupted %(SIGINT%)", r.stderr)
    r = signal_run("TERM", text)
    T.expect(143, r)
    assert.matches("terminated %(SIGTERM%)", r.stderr)
  end)

  it("ends a script waiting in ecap.sleep on SIGTERM", function()
    local r = signal_run("TERM", [[log.warn("started") ecap.sleep(60)]])
    T.expect(143, r)
  end)
end)

describe("sandbox: the API key", function()
  -- Walks everything reachable from _G (tables through pairs, metatables, tostring of every
  -- value, ecap.config(), a reply's meta, error tables) looking for the key. A planted canary
  -- proves the walk finds what is there.
  local walker = [[
    local needle, canary = "secret" .. "-xyz", "can" .. "ary-123"
    planted = { deep = { deeper = { "x" .. canary } } }
    local seen, hits, found, n = {}, {}, false, 0
    local function check(s, path)
      n = n + 1
      if s:find(needle, 1, true) then hits[#hits + 1] = path end
      if s:find(canary, 1, true) then found = true end
    end
    local function walk(v, path, depth)
      local t = type(v)
      if t == "string" then return check(v, path) end
      if t == "number" or t == "boolean" or t == "nil" then return end
      local okt, s = pcall(tostring, v)
      if okt and type(s) == "string" then check(s, path .. "<tostring>") end
      if depth > 30 or seen[v] then return end
      seen[v] = true
      local mt = getmetatable(v)
      if mt ~= nil then walk(mt, path .. "<mt>", depth + 1) end
      if t == "table" then
        for k, x in pairs(v) do
          walk(k, path .. "<key>", depth + 1)
          walk(x, path .. "." .. tostring(k), depth + 1)
        end
        for k, x in next, v do walk(x, path .. "[raw]." .. tostring(k), depth + 1) end
      end
    end
    walk(_G, "_G", 0)
    walk(ecap.config(), "config", 0)
    walk(getmetatable(""), "stringmt", 0)
    walk({ ecap.request("GET", "/api/v3/meter", { query = { pageSize = 1 } }) }, "reply", 0)
    walk({ pcall(ecap.request, "GET", "/api/v3/meter/999999") }, "http_error", 0)
    walk({ pcall(ecap.request, "GET", "/nope") }, "validation_error", 0)
    print("visited " .. n, "canary " .. tostring(found), "hits " .. table.concat(hits, ","))
  ]]

  it("cannot be found anywhere a script can reach", function()
    local got = out(walker)
    local visited = tonumber(got:match("visited (%d+)"))
    assert.is_true(visited > 200, got)
    assert.matches("canary true", got, 1, true)
    assert.matches("hits $", got)
  end)

  it("is not in ecap.config(), which says only that there is one", function()
    assert.are.equal("true\tnil\tnil", out([[
      local c = ecap.config()
      print(c.has_api_key, c.api_key, c.key)
    ]]))
  end)

  it("never appears on stderr when a run fails", function()
    local cases = {
      { [[ecap.request("GET", "/api/v3/meter/999999")]], {} },
      { [[ecap.request("GET", "/api/v3/meter/1")]], { "--base-url", CLOSED } },
      { [[ecap.request("GET", "http://evil.example/api/v3/meter")]], {} },
      { [[error("plain failure")]], {} },
      { [[print("x")]], { "--base-url", "http://evil.example" } },
    }
    for _, c in ipairs(cases) do
      local r = run(c[1], c[2])
      assert.are_not.equal(0, r.code, T.explain(r))
      assert.is_nil(r.stderr:find(KEY, 1, true), r.stderr)
      assert.is_nil(r.stdout:find(KEY, 1, true), r.stdout)
    end
  end)

  it("reaches the server only as the ECI-ApiKey header (recorded as present and accepted)", function()
    sim.reset()
    T.expect(0, run([[ecap.request("POST", "/api/v3/meterGroup/updateUserAutoGroups", { body = { a = 1 },
      query = { q = "v" }, headers = { ["X-Note"] = "n" } })]], { "-q" }))
    local reqs, raw = sim.requests()
    assert.are.equal(1, #reqs)
    assert.is_true(reqs[1].apiKeyPresent)
    assert.is_true(reqs[1].apiKeyAccepted)
    assert.is_nil(raw:find(KEY, 1, true), raw)
  end)
end)
