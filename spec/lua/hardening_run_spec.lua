-- A run's edges (issue 8): limits while finalizers run, reading the script and the config,
-- exit codes chosen by status rather than message text, the error report escaped and bounded.
local T = require "spec.lua.support"

local CLOSED = "http://127.0.0.1:9" -- nothing listens: these scripts make no call

local function run(host_opts, text, opts)
  return T.run_script(text, host_opts, T.merge({ quiet = true, url = CLOSED, kill_after = 30 }, opts))
end

local function mkfifo()
  local path = T.tmpname(".fifo")
  assert(os.execute("mkfifo " .. T.q(path)))
  return path
end

describe("run: limits while finalizers run at the end", function()
  it("a __gc busy past --timeout exits 4 with the message", function()
    local r = T.expect(4, run({ "--timeout", "0.5" }, [[
      setmetatable({}, { __gc = function() local t = ecap.now() while ecap.now() - t < 1.5 do end end })
    ]]))
    assert.matches("time limit exceeded (--timeout)", r.stderr, 1, true)
  end)

  it("a __gc sleeping past --timeout exits 4 with the message", function()
    local r = T.expect(4, run({ "--timeout", "0.5" }, [[
      setmetatable({}, { __gc = function() ecap.sleep(1.5) end })
    ]]))
    assert.matches("time limit exceeded (--timeout)", r.stderr, 1, true)
  end)

  it("SIGINT while a __gc runs exits 130 with the message", function()
    local path = T.script([[
      setmetatable({}, { __gc = function() local t = ecap.now() while ecap.now() - t < 1.5 do end end })
    ]])
    local r = T.sh("sh -c " .. T.q(string.format("env ECAP_CONFIG=/dev/null ECAP_API_KEY=x %s run -q " ..
      "--base-url %s %s & p=$!; sleep 0.5; kill -INT $p; wait $p", T.q(T.bin), CLOSED, T.q(path))))
    T.expect(130, r)
    assert.matches("interrupted (SIGINT)", r.stderr, 1, true)
  end)
end)

describe("run: reading the script and the config", function()
  it("refuses a FIFO as the script (exit 2) instead of waiting for a writer", function()
    local r = T.expect(2, T.run({ "run", "-q", "--base-url", CLOSED, "--timeout", "5", mkfifo() }, { kill_after = 20 }))
    assert.matches("not a regular file", r.stderr, 1, true)
  end)

  it("refuses a directory as the script (exit 2)", function()
    local r = T.expect(2, T.run({ "run", "-q", "--base-url", CLOSED, T.tmpdir() }))
    assert.matches("not a regular file", r.stderr, 1, true)
  end)

  it("refuses a FIFO as --config (exit 3) instead of waiting for a writer", function()
    local r = T.expect(3, T.run({ "run", "-q", "--base-url", CLOSED, "--config", mkfifo(), T.script("") },
      { kill_after = 20 }))
    assert.matches("not a regular file", r.stderr, 1, true)
  end)

  it("refuses a FIFO as a required module", function()
    local dir = T.tmpname(".d")
    assert(os.execute("mkdir " .. T.q(dir) .. " && mkfifo " .. T.q(dir .. "/mod.lua")))
    local r = T.expect(0, run({ "--lib", dir }, [[
      local ok, e = pcall(require, "mod")
      print(ok, tostring(e):match("not a regular file") ~= nil)
    ]]))
    assert.are.equal("false\ttrue\n", r.stdout)
  end)

  it("a memory limit hit while loading exits 5 with the message", function()
    local path = T.tmpname(".lua")
    local f = assert(io.open(path, "wb"))
    f:write('local s = "', string.rep("x", 50 * 1024 * 1024), '"\n')
    f:close()
    local r = T.expect(5, T.run({ "run", "-q", "--base-url", CLOSED, "--max-memory", "16", path }))
    assert.matches("memory limit exceeded (--max-memory)", r.stderr, 1, true)
    os.remove(path)
  end)

  it("skips a first '#' line and a BOM, keeping line numbers", function()
    local r = T.expect(1, run({}, "\239\187\191#!/usr/bin/env ecaphost run\nprint('ran')\nerror('here')\n"))
    assert.are.equal("ran\n", r.stdout)
    assert.matches(".lua:3: here", r.stderr, 1, true)
  end)
end)

describe("run: exit codes from the status, not the message", function()
  it("a syntax error under a directory named 'cannot open' exits 1", function()
    local dir = T.tmpname(" cannot open")
    assert(os.execute("mkdir " .. T.q(dir)))
    local path = T.write(dir .. "/s.lua", "x = = 1\n")
    local r = T.expect(1, T.run({ "run", "-q", "--base-url", CLOSED, path }))
    assert.matches("unexpected symbol", r.stderr, 1, true)
  end)

  it("a missing script exits 2", function()
    T.expect(2, T.run({ "run", "-q", "--base-url", CLOSED, T.tmpname(".lua") }))
  end)

  describe("an uncaught HTTP 401", function()
    local sim
    setup(function() sim = T.start_sim({ "--quiet", "--api-key", "good-key" }) end)
    teardown(function() sim.stop() end)

    it("exits 3 (the key was refused), as ping does", function()
      local r = T.expect(3, run({}, [[ecap.request("GET", "/api/v3/meter/1")]],
        { url = sim.url, env = { ECAP_API_KEY = "bad-key" } }))
      assert.matches("401", r.stderr, 1, true)
    end)

    it("caught and re-raised as a string exits 1 (a script error)", function()
      T.expect(1, run({}, [[
        local ok, e = pcall(ecap.request, "GET", "/api/v3/meter/1")
        error("wrapped: " .. tostring(e))
      ]], { url = sim.url, env = { ECAP_API_KEY = "bad-key" } }))
    end)
  end)
end)

describe("run: the error report", function()
  it("escapes control characters and newlines of the message, keeps the traceback's lines", function()
    local r = T.expect(1, run({}, [[
      local function f() error("line1\nforged line\27]0;title\7 end") end
      f()
    ]]))
    assert.matches("line1\\nforged line\\x1b]0;title\\x07 end", r.stderr, 1, true)
    assert.is_nil(r.stderr:find("\27", 1, true))
    assert.is_nil(r.stderr:find("\nforged", 1, true))
    assert.matches("\nstack traceback:\n\t", r.stderr, 1, true)
    assert.matches("in local 'f'", r.stderr, 1, true)
  end)

  it("escapes an error table's message (a server's text)", function()
    local r = T.expect(1, run({}, [[error(setmetatable({}, { __tostring = function() return "a\r\n\27[2Jb" end }))]]))
    assert.matches("a\\r\\n\\x1b[2Jb", r.stderr, 1, true)
    assert.is_nil(r.stderr:find("\27", 1, true))
  end)

  it("bounds a huge message and says how much was left out", function()
    local r = T.expect(1, run({}, [[error(string.rep("y", 5 * 1024 * 1024))]]))
    assert.matches("%.%.%. %(%d+ bytes more%)", r.stderr)
    assert.is_true(#r.stderr < 8192, "stderr has " .. #r.stderr .. " bytes")
    assert.matches("stack traceback:", r.stderr, 1, true)
  end)

  it("escapes a syntax error's message", function()
    local r = T.expect(1, run({}, "x = '\27]0;t\n"))
    assert.matches("unfinished string", r.stderr, 1, true)
    assert.is_nil(r.stderr:find("\27", 1, true))
  end)
end)

describe("sandbox: a field that does not exist on the host's modules is an error", function()
  it("names the field and suggests the nearest one", function()
    local r = T.expect(0, run({}, [[
      for _, f in ipairs{
        function() return ecap.meter.apply_release end,
        function() return ecap.cost_avoidence end,
        function() return ecap.meters.apply_releas end,
        function() return ecap.frobnicate end,
        function() return json.encod end,
      } do
        local ok, e = pcall(f)
        print(ok, type(e) == "table" and e.kind, e.message)
      end
    ]]))
    local lines = {}
    for l in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.matches("false\tscript\t", lines[1], 1, true)
    assert.matches("ecap has no field 'meter' (did you mean 'meters'?)", lines[1], 1, true)
    assert.matches("ecap has no field 'cost_avoidence' (did you mean 'cost_avoidance'?)", lines[2], 1, true)
    assert.matches("ecap.meters has no field 'apply_releas' (did you mean 'apply_release'?)", lines[3], 1, true)
    assert.matches("ecap has no field 'frobnicate'", lines[4], 1, true)
    assert.is_nil(lines[4]:find("did you mean", 1, true))
    assert.matches("json has no field 'encod' (did you mean 'encode'?)", lines[5], 1, true)
  end)

  it("keeps the standard libraries lenient (portable code probes them)", function()
    local r = T.expect(0, run({}, [[print(table.nothing, string.nothing, math.nothing)]]))
    assert.are.equal("nil\tnil\tnil\n", r.stdout)
  end)
end)

describe("cli: host options after the script", function()
  local path
  setup(function() path = T.script([[print(#arg, arg[1])]]) end)

  it("are passed to the script, with one warning", function()
    local r = T.expect(0, T.run({ "run", "--base-url", CLOSED, path, "--allow-read=/tmp", "--timeout", "5" }))
    assert.are.equal("3\t--allow-read=/tmp\n", r.stdout)
    local _, n = r.stderr:gsub("after the script is passed to the script", "")
    assert.are.equal(1, n)
    assert.matches("--allow-read after the script is passed to the script; put host options first", r.stderr, 1, true)
  end)

  it("no warning under -q, after --, or for the script's own options", function()
    for _, args in ipairs{
      { "run", "-q", "--base-url", CLOSED, path, "--timeout", "5" },
      { "run", "--base-url", CLOSED, "--", path, "--timeout", "5" },
      { "run", "--base-url", CLOSED, path, "--delete-bills", "-x" }, -- the script's own options
    } do
      local r = T.expect(0, T.run(args))
      assert.is_nil(r.stderr:find("after the script", 1, true), r.stderr)
    end
  end)
end)

describe("run: an error in a required module", function()
  it("keeps the module's frames in the traceback, and the module can be required again", function()
    local dir = T.tmpname(".lib")
    assert(os.execute("mkdir " .. T.q(dir)))
    T.write(dir .. "/broken.lua", "local function inner()\n  error('module broke')\nend\ninner()\n")
    local r = T.expect(1, run({ "--lib", dir }, [[
      local ok, e = pcall(require, "broken")
      local ok2, e2 = pcall(require, "broken") -- tried again, not "loop in module loading"
      print(ok, ok2, e2:match("module broke") ~= nil)
      require "broken"
    ]]))
    assert.are.equal("false\tfalse\ttrue\n", r.stdout)
    assert.matches("broken.lua:2: in local 'inner'", r.stderr, 1, true)
    assert.matches("broken.lua:4: in main chunk", r.stderr, 1, true)
  end)
end)
