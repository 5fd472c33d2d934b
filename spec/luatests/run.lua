-- Runs one file of the Lua 5.4.4 test suite (testes/, copied unchanged) inside the sandbox:
--
--   ecaphost run -q --base-url http://127.0.0.1:9 --allow-read spec/luatests spec/luatests/run.lua strings
--
-- It stands in for testes/all.lua: portable mode (_port: no locale or OS-specific checks) and
-- soft mode (_soft: smaller sizes). What the sandbox leaves out on purpose (README, "The
-- sandbox") is stubbed here, never in the host, each stub as small as the tests need:
--   io.stdin  a full userdata with a stable address (a file handle from fs.lines)
--   package   only package.loaded, so nextvar.lua's "clear the globals" keeps the libraries
--   table     a writable layer over the read-only library (nextvar.lua defines table.maxn)
--   os.setlocale  answers nil, as lua does for a locale the system lacks
--   debug     debug.lua next to this file: getinfo(level).currentline only; the rest raises
local name = assert(arg[1], "usage: run.lua TESTFILE (strings, math, ...)")

_port = true
_soft = true
io = { stdin = select(4, fs.lines(arg[0])) }
table = setmetatable({}, { __index = table })
os = setmetatable({ setlocale = function() return nil end }, { __index = os })
package = { loaded = { io = io } }
package.loaded.package = package
for _, n in ipairs { "_G", "string", "table", "math", "utf8", "coroutine", "os" } do
  package.loaded[n] = _G[n]
end

require("testes." .. name) -- a subdirectory: require "math" would return the library itself
print("OK " .. name)
