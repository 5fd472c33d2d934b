-- Lua compatibility inside the sandbox: files of the Lua 5.4.4 test suite (spec/luatests/testes,
-- copied unchanged) run under the real binary through spec/luatests/run.lua. Each passes, or
-- stops exactly where it needs the debug library, which the sandbox does not offer on purpose
-- (README, "The sandbox"): everything before that line has run and passed, so a sandbox defect
-- earlier in the file still fails this spec. spec/luatests/README.md has the table.
local T = require "spec.lua.support"

local DIR = T.src .. "/spec/luatests"

local PASS = { "strings", "math", "sort", "tpack", "utf8", "vararg", "pm", "nextvar", "literals" }

-- file -> the line where it first needs debug, and what it calls there
local STOPS_AT_DEBUG = {
  closure = { 243, "debug.upvalueid" },
  ["goto"] = { 188, "debug.upvalueid" },
  events = { 438, "debug.setmetatable" },
  calls = { 299, "debug.getinfo" },       -- getinfo(function).source
  constructs = { 279, "debug.getinfo" },  -- getinfo(1, "n").name
  coroutine = { 345, "debug.sethook" },
}

local function run_test(name)
  return T.run({ "run", "-q", "--base-url", "http://127.0.0.1:9", "--timeout", "120",
                 "--allow-read", DIR, DIR .. "/run.lua", name }, { kill_after = 150 })
end

describe("Lua 5.4.4 test suite in the sandbox", function()
  for _, name in ipairs(PASS) do
    it(name .. ".lua passes", function()
      local r = T.expect(0, run_test(name))
      assert.matches("OK " .. name .. "\n", r.stdout, 1, true)
    end)
  end

  for name, stop in pairs(STOPS_AT_DEBUG) do
    it(name .. ".lua runs up to line " .. stop[1] .. ", where it needs " .. stop[2], function()
      local r = T.expect(1, run_test(name))
      assert.matches("testes/" .. name .. ".lua:" .. stop[1] .. ": " .. stop[2] ..
        " is not available in the sandbox", r.stderr, 1, true)
    end)
  end
end)
