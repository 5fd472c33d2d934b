-- `run -e CHUNK`, `run -` (the script from stdin) and each command's own --help, through the
-- real binary.
local T = require "spec.lua.support"

local URL = "http://127.0.0.1:9" -- nothing listens: these scripts make no request

local function run(args, opts)
  local full = { "run", "-q", "--base-url", URL }
  for _, a in ipairs(args) do full[#full + 1] = a end
  return T.run(full, opts)
end

describe("run -e", function()
  it("runs the chunk with arg[0] = -e and the rest as arg and ...", function()
    local r = T.expect(0, run { "-e", "print(arg[0], arg[1], select('#', ...), ...)", "a", "b" })
    assert.are.equal("-e\ta\t2\ta\tb\n", r.stdout)
  end)

  it("a returned value is not the exit code (as under lua -e)", function()
    T.expect(0, run { "-e", "return 3" })
  end)

  it("an error is exit 1 with the chunk named (command line)", function()
    local r = T.expect(1, run { "-e", "error('boom')" })
    assert.matches("(command line):1: boom", r.stderr, 1, true)
    r = T.expect(1, run { "-e", "x = = 1" })
    assert.matches("(command line):1:", r.stderr, 1, true)
  end)

  it("require looks in the working directory and the --lib directories", function()
    local dir, lib = T.tmpname(".d"), T.tmpname(".lib")
    os.execute("mkdir -p " .. T.q(dir) .. " " .. T.q(lib))
    T.write(dir .. "/here.lua", "return 'from cwd'")
    T.write(lib .. "/there.lua", "return 'from lib'")
    local r = T.expect(0, run({ "--lib", lib, "-e", "print(require 'here', require 'there')" }, { dir = dir }))
    assert.are.equal("from cwd\tfrom lib\n", r.stdout)
  end)

  it("needs its chunk", function()
    local r = T.expect(2, T.run { "run", "-e" })
    assert.matches("run -e needs a chunk", r.stderr, 1, true)
  end)

  it("talks to the simulator with --sim", function()
    local r = T.expect(0, T.run { "run", "-q", "--sim", "-e", "print(ecap.request('GET', '/api/v3/meter/1').meterId)" })
    assert.are.equal("1\n", r.stdout)
  end)
end)

describe("run -", function()
  it("reads the whole script from stdin; arg[0] is -", function()
    local r = T.expect(0, run({ "-", "x" }, { stdin = "local a = ...\nprint(arg[0], a)\nprint(#arg)\n" }))
    assert.are.equal("-\tx\n1\n", r.stdout)
  end)

  it("an error names stdin and exits 1", function()
    local r = T.expect(1, run({ "-" }, { stdin = "\n\nerror('boom')\n" }))
    assert.matches("stdin:3: boom", r.stderr, 1, true)
  end)

  it("require looks in the working directory", function()
    local dir = T.tmpname(".d")
    os.execute("mkdir -p " .. T.q(dir))
    T.write(dir .. "/mod.lua", "return { v = 42 }")
    local r = T.expect(0, run({ "-" }, { stdin = "print(require('mod').v)", dir = dir }))
    assert.are.equal("42\n", r.stdout)
  end)

  it("a script on stdin larger than --max-memory is refused with exit 5", function()
    local big = "-- " .. string.rep("x", 400 * 1024) .. "\nprint(1)\n"
    local r = T.expect(5, run({ "--max-memory", "0.25", "-" }, { stdin = big }))
    assert.matches("larger than --max-memory", r.stderr, 1, true)
    assert.are.equal("", r.stdout)
  end)
end)

describe("each command's --help", function()
  it("run --help shows run's forms and options", function()
    local r = T.expect(0, T.run { "run", "--help" })
    assert.matches("ecaphost run [options] -e CHUNK", r.stdout, 1, true)
    assert.matches("--max-memory", r.stdout, 1, true)
    assert.is_nil(r.stdout:find("ecaphost ping", 1, true))
  end)

  it("ping --help shows the connection options only", function()
    local r = T.expect(0, T.run { "ping", "--help" })
    assert.matches("usage: ecaphost ping", r.stdout, 1, true)
    assert.matches("--base-url", r.stdout, 1, true)
    assert.is_nil(r.stdout:find("--max-memory", 1, true))
  end)

  it("repl --help shows -l and -i", function()
    local r = T.expect(0, T.run { "repl", "--help" })
    assert.matches("usage: ecaphost repl", r.stdout, 1, true)
    assert.matches("-l MODULE", r.stdout, 1, true)
    assert.matches("-i SCRIPT", r.stdout, 1, true)
  end)

  it("ecaphost alone, not on a terminal, prints the usage and exits 2", function()
    local r = T.expect(2, T.run {})
    assert.matches("usage: ecaphost run", r.stderr, 1, true)
  end)
end)
