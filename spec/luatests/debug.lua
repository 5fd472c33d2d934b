-- A stand-in for the debug library, which the sandbox does not offer (README, "The sandbox"),
-- for the Lua 5.4.4 tests run by run.lua: getinfo(level [, "l"]) knows the current line (from
-- the position error() adds) and that a level without one is a C function; every other use
-- raises "debug.<name> is not available in the sandbox", where the test stops.
local M = {}

function M.getinfo(level, what)
  if type(level) == "number" and (what == nil or what == "l") then
    local _, where = pcall(error, "", level + 2) -- +1 for this function, +1 for pcall
    if where == "" then return { what = "C", currentline = -1 } end
    local src, line = tostring(where):match("^(.*):(%d+): $")
    if line then return { currentline = tonumber(line), short_src = src } end
  end
  error("debug.getinfo is not available in the sandbox (the test stub knows only currentline)", 2)
end

return setmetatable(M, { __index = function(_, k)
  return function() error("debug." .. k .. " is not available in the sandbox", 2) end
end })
