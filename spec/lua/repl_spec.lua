-- `ecaphost repl` through a pseudo-terminal (spec/tools/pty.c, built by CMake) against the
-- simulator, and piped (stdin not a terminal).
local T = require "spec.lua.support"
local cjson = require "cjson"

local PTY = os.getenv("ECAP_PTY") or "./build/pty"

-- Runs `ecaphost <args>` under the pty helper with the steps (a list of lines: "send ...",
-- "expect ...", "sleep ..."). Returns {code=, out=} (out: all the terminal showed). opts.state:
-- XDG_STATE_HOME (history); opts.env: more variables.
local function pty(steps, args, opts)
  opts = opts or {}
  local file = T.write(T.tmpname(".steps"), table.concat(steps, "\n") .. "\n")
  local env = T.merge({ XDG_STATE_HOME = opts.state or T.tmpname(".state"), ECAP_CONFIG = "/dev/null",
                        ECAP_API_KEY = "test-key" }, opts.env)
  local parts = { "env -u ECAP_BASE_URL" }
  for k, v in pairs(env) do parts[#parts + 1] = k .. "=" .. T.q(v) end
  parts[#parts + 1] = T.q(PTY) .. " " .. T.q(file) .. " " .. T.q(T.bin)
  for _, a in ipairs(args) do parts[#parts + 1] = T.q(a) end
  local r = T.sh(table.concat(parts, " "))
  return { code = r.code, out = r.stdout .. r.stderr }
end

-- A statement typed at the prompt: wait for the prompt, a moment for the line editor to read.
local function typed(line)
  return { "expect > ", "sleep 0.1", "send " .. line .. "\\r" }
end

local function steps(...)
  local all = {}
  for _, list in ipairs { ... } do
    for _, s in ipairs(type(list) == "table" and list or { list }) do all[#all + 1] = s end
  end
  return all
end

describe("repl on a terminal", function()
  it("says which host it talks to, runs a multi-line function, prints expressions", function()
    local r = pty(steps(
      typed("function twice(a)"), "expect >> ", "send return a * 2\\r", "expect >> ", "send end\\r",
      typed("twice(21)"), "expect 42",
      typed("{ id = 1, tags = { 'a', 'b' }, none = json.null, f = 1.0 }"),
      "expect f = 1.0,", "expect none = json.null,", "expect tags = { \"a\", \"b\" },",
      typed("1, 'two'"), "expect 1\t\"two\"",
      typed(".exit")), { "repl", "--sim" })
    assert.are.equal(0, r.code, r.out)
    assert.matches("talking to the built-in simulator", r.out, 1, true)
  end)

  it("an error prints its message and the session goes on", function()
    local r = pty(steps(
      typed("x = 5"), typed("error('boom')"), "expect stdin:1: boom",
      typed("x + nil"), "expect attempt to perform arithmetic",
      typed("x = = 1"), "expect unexpected symbol",
      typed("x"), "expect 5", typed(".exit")), { "repl", "--sim" })
    assert.are.equal(0, r.code, r.out)
  end)

  it("Ctrl-C stops an endless loop; the variables survive; Ctrl-C at the prompt clears the line", function()
    local r = pty(steps(
      typed("kept = 'still here'"), typed("while true do end"), "sleep 0.5", "send \\x03",
      "expect interrupted", typed("kept"), "expect \"still here\"",
      "expect > ", "sleep 0.2", "send nonsense(\\x03", "expect > ", "sleep 0.2", "send 6 * 7\\r", "expect 42",
      typed(".exit")), { "repl", "--sim" })
    assert.are.equal(0, r.code, r.out)
    assert.is_nil(r.out:find("nonsense", 1, true) and r.out:find("attempt to call", 1, true), r.out)
  end)

  it("Ctrl-C stops a hanging request and cancels its transfer", function()
    local sim = T.start_sim()
    finally(sim.stop)
    sim.fault { mode = "hang", seconds = 60, pathPrefix = "/api/v3/meter/1", count = 2 }
    -- one transfer at a time: the next request goes out only if the hung one was cancelled
    local r = pty(steps(
      typed("kept = 1"), typed("ecap.request('GET', '/api/v3/meter/1')"), "sleep 0.8", "send \\x03",
      "expect interrupted", typed("ecap.request('GET', '/api/v3/meter/2').meterId + kept"), "expect 3",
      -- an ecap.parallel run: its hung item and the queued ones are all dropped
      typed("ecap.parallel({ 1, 1, 1 }, function(id) return ecap.request('GET', '/api/v3/meter/' .. id) end)"),
      "sleep 0.8", "send \\x03", "expect interrupted",
      typed("ecap.request('GET', '/api/v3/meter/3').meterId + kept"), "expect 4",
      typed(".exit")), { "repl", "--base-url", sim.url, "--max-in-flight", "1" })
    assert.are.equal(0, r.code, r.out)
  end)

  it("a statement stuck in one long C call ends the process 3 s after Ctrl-C, history saved, exit 130", function()
    local state = T.tmpname(".state")
    local r = pty(steps(typed("('a'):rep(1e5):find('.-.-.-.-.-b')"), "sleep 0.5", "send \\x03",
      "expect did not stop within 3 s"), { "repl", "--sim" }, { state = state })
    assert.are.equal(130, r.code, r.out)
    assert.matches("find", T.read(state .. "/ecaphost/history") or "", 1, true)
  end)

  it("--timeout applies to each statement; the session goes on", function()
    local r = pty(steps(typed("while true do end"), "expect time limit", typed("'after'"), "expect \"after\"",
      typed(".exit")), { "repl", "--sim", "--timeout", "0.5" })
    assert.are.equal(0, r.code, r.out)
  end)

  it("completes globals and fields through the read-only proxies", function()
    local r = pty(steps("expect > ", "sleep 0.1", "send ecap.cost_a\\t", "expect voidance.",
      "send bulk\\t", "expect _update", "send \\r", "expect <function>",
      -- ecap.<TAB><TAB> lists the table's fields, the binding areas among them
      "expect > ", "sleep 0.1", "send ecap.\\t\\t", "expect parallel", "send now() > 0\\r", "expect true",
      "expect > ", "sleep 0.1", "send my_long_global = 1\\r", "expect > ", "sleep 0.1", "send my_lo\\t",
      "expect ng_global", "send \\r", "expect 1", typed(".exit")), { "repl", "--sim" })
    assert.are.equal(0, r.code, r.out)
  end)

  it("writes the history (mode 0600) and reads it back in the next session", function()
    local state = T.tmpname(".state")
    local r = pty(steps(typed("history_marker = 7"), typed(".exit")), { "repl", "--sim" }, { state = state })
    assert.are.equal(0, r.code, r.out)
    local file = state .. "/ecaphost/history"
    assert.matches("history_marker", T.read(file) or "", 1, true)
    local mode = io.popen("stat -c %a " .. T.q(file)):read("*l")
    assert.are.equal("600", mode)
    -- up-arrow brings the line back
    r = pty(steps("expect > ", "sleep 0.2", "send \\x1b[A", "expect history_marker = 7", "send \\r",
      typed("history_marker"), "expect 7", typed(".exit")), { "repl", "--sim" }, { state = state })
    assert.are.equal(0, r.code, r.out)
  end)

  it(".help lists every binding with its method, route and description", function()
    local routes = cjson.decode(T.expect(0, T.run { "routes", "--json" }).stdout)
    local r = pty(steps(typed(".help"), "expect .exit", typed(".exit")), { "repl", "--sim" })
    assert.are.equal(0, r.code, r.out)
    for _, route in ipairs(routes) do
      assert.matches("ecap." .. route.name, r.out, 1, true)
      assert.matches(route.path, r.out, 1, true)
      assert.matches(route.description, r.out, 1, true)
    end
  end)

  it("Ctrl-D quits", function()
    local r = pty(steps("expect > ", "sleep 0.1", "send \\x04"), { "repl", "--sim" })
    assert.are.equal(0, r.code, r.out)
  end)

  it("ecaphost alone on a terminal starts it", function()
    local r = pty(steps(typed("1 + 1"), "expect 2", typed(".exit")), {}, { env = { ECAP_BASE_URL = "http://127.0.0.1:9" } })
    assert.are.equal(0, r.code, r.out)
    assert.matches("talking to http://127.0.0.1:9", r.out, 1, true)
  end)
end)

describe("repl with stdin not a terminal", function()
  local function repl(input, args)
    local full = { "repl", "-q", "--base-url", "http://127.0.0.1:9" }
    for _, a in ipairs(args or {}) do full[#full + 1] = a end
    return T.run(full, { stdin = input })
  end

  it("runs each statement when complete, prints expressions, no prompts; exit 0", function()
    local r = T.expect(0, repl("x = 2\nfunction f(a)\n  return a + x\nend\nf(40)\n{ 1, 2 }\n.5 + 1\n"))
    assert.are.equal("42\n{ 1, 2 }\n1.5\n", r.stdout)
  end)

  it("exit 1 when a statement failed; the later ones still run", function()
    local r = T.expect(1, repl("error('first')\nprint('second')\n"))
    assert.are.equal("second\n", r.stdout)
    assert.matches("stdin:1: first", r.stderr, 1, true)
  end)

  it("an unfinished statement at the end is a failure", function()
    local r = T.expect(1, repl("function f()\n"))
    assert.matches("unfinished statement", r.stderr, 1, true)
  end)

  it("-l requires a module into a global, -i runs a script first and keeps its globals", function()
    local dir = T.tmpname(".d")
    os.execute("mkdir -p " .. T.q(dir))
    T.write(dir .. "/helpers.lua", "return { double = function(v) return v * 2 end }")
    local script = T.write(dir .. "/setup.lua", "greeting = 'hi ' .. arg[1]")
    local r = T.expect(0, T.run({ "repl", "-q", "--base-url", "http://127.0.0.1:9", "--lib", dir,
      "-l", "helpers", "-i", script, "there" }, { stdin = "helpers.double(21)\ngreeting\n" }))
    assert.are.equal('42\n"hi there"\n', r.stdout)
  end)

  it("a finalizer that never ends cannot hang the exit: the watchdog ends it (exit 4)", function()
    local r = T.run({ "repl", "-q", "--base-url", "http://127.0.0.1:9" },
      { stdin = "keep = setmetatable({}, { __gc = function() while true do end end })\n", kill_after = 60 })
    T.expect(4, r)
    assert.matches("did not stop", r.stderr, 1, true)
  end)

  it("a bad argument is a usage error", function()
    local r = T.expect(2, repl("", { "--nonsense" }))
    assert.matches("unknown option", r.stderr, 1, true)
  end)
end)
