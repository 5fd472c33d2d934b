-- One error form: every error a host function raises (ecap, ecap.<area>, json, log, fs, csv)
-- is an ecap error table with kind, message and where (the script's file:line of the call,
-- also inside an ecap.parallel item and through the Lua-written helpers ecap.pages and
-- ecap.cost_avoidance.wait), tostring(e) is where .. ": " .. the text, and an argument error
-- names the function. Real binary, real simulator.
local T = require "spec.lua.support"
local cjson = require "cjson"

-- The script: line 1 and 2 set up, then one case per line, each making its call on its own
-- line; every result is one JSON line. CASES[i] is on line HEAD + i.
local HEAD = 2
local PRELUDE = [[
local function row(name, ok, e) print(json.encode{ name = name, ok = ok, is_error = getmetatable(e) == "ecap.error", kind = type(e) == "table" and e.kind or nil, message = type(e) == "table" and e.message or nil, where = type(e) == "table" and e.where or nil, text = tostring(e) }) end
local function catch(name, f) local ok, e = pcall(f) row(name, ok, e) end
]]

-- { name, call, kind, message (exact) }
local CASES = {
  { "ecap.sleep", [[ecap.sleep("x")]], "argument", "bad argument #1 to 'ecap.sleep' (number expected, got string)" },
  { "ecap.sleep range", [[ecap.sleep(-1)]], "argument", "bad argument #1 to 'ecap.sleep' (seconds must be between 0 and a year)" },
  { "ecap.request", [[ecap.request("GET")]], "argument", "bad argument #2 to 'ecap.request' (string expected, got no value)" },
  { "ecap.request opts", [[ecap.request("GET", "/api/v3/meter/1", 5)]], "argument", "bad argument #3 to 'ecap.request' (table expected, got number)" },
  { "ecap.parallel", [[ecap.parallel({}, 3)]], "argument", "bad argument #2 to 'ecap.parallel' (function expected, got number)" },
  { "ecap.filter", [[ecap.filter(5)]], "argument", "bad argument #1 to 'ecap.filter' (table expected, got number)" },
  { "ecap.pages", [[ecap.pages(5)]], "argument", "bad argument #1 to 'ecap.pages' (string expected, got number)" },
  { "ecap.cost_avoidance.wait opts", [[ecap.cost_avoidance.wait(1, 5)]], "argument", "bad argument #2 to 'ecap.cost_avoidance.wait' (table expected, got number)" },
  { "http", [[ecap.request("GET", "/api/v3/meter/999999")]], "http", "meter 999999 not found" },
  { "validation", [[ecap.meter_groups.refresh("x")]], "validation", 'meterGroupId must be an integer (got "x")' },
  { "pages iteration", [[for _ in ecap.pages("/api/v3/meter/999999") do end]], "http", "meter 999999 not found" },
  { "wait id", [[ecap.cost_avoidance.wait("x")]], "validation", "cost_avoidance.wait: costAvoidanceTaskId must be an integer 1..2147483647 (got x)" },
  { "wait request", [[ecap.cost_avoidance.wait(999999, { interval = 0.01 })]], "http", "cost avoidance task 999999 not found" },
  { "json.decode", [[json.decode("[1,")]], "json", "json.decode: unexpected end of input at line 1, column 4" },
  { "json.encode", [[json.encode(0/0)]], "json", "json.encode: value: cannot encode NaN" },
  { "json.decode arg", [[json.decode({})]], "argument", "bad argument #1 to 'json.decode' (string expected, got table)" },
  { "json.array", [[json.array(setmetatable({}, {}))]], "argument", "bad argument #1 to 'json.array' (the table already has a metatable)" },
  { "csv.parse", [[csv.parse("a\n\"x")]], "csv", "line 2: unterminated quoted field" },
  { "csv.parse opts", [[csv.parse("a", 5)]], "argument", "bad argument #2 to 'csv.parse' (table expected, got number)" },
  { "csv.parse sep", [[csv.parse("a", { sep = ",," })]], "argument", "bad argument #2 to 'csv.parse' (sep must be one character, not a quote or a line end)" },
  { "csv.encode", [[csv.encode({1}, {"a"})]], "csv", "csv.encode: row 1 is a number, not a table" },
  { "csv.rows", [[csv.rows({})]], "argument", "bad argument #1 to 'csv.rows' (string expected, got table)" },
  { "fs.read arg", [[fs.read({})]], "argument", "bad argument #1 to 'fs.read' (string expected, got table)" },
  { "fs.write arg", [[fs.write("x.txt")]], "argument", "bad argument #2 to 'fs.write' (string expected, got no value)" },
  { "fs.read", [[fs.read("/etc/passwd")]], "sandbox", "fs.read: /etc/passwd: no directory is granted for reading (--allow-read DIR)" },
  { "log.info", [[log.info()]], "argument", "bad argument #1 to 'log.info' (value expected)" },
  { "log.warn format", [[log.warn("%d", "x")]], "argument", nil },
  { "log.error tostring", [[log.error(setmetatable({}, { __tostring = function() return {} end }))]], "argument", "log.error: '__tostring' must return a string" },
}

-- ecap.parallel: errors inside items point at the item's own line; an item whose function
-- is the host's (no line of its own) and a cancelled item point at the ecap.parallel call.
local PARALLEL = [[
local _, errs = ecap.parallel({1, 2, 3, 4}, function(i)
  if i == 1 then ecap.sleep("z") end
  if i == 2 then error("boom") end
  if i == 3 then for _ in ecap.pages("/api/v3/meter/999999") do end end
  if i == 4 then json.decode("{") end
end)
for i = 1, 4 do row("item " .. i, false, errs[i]) end
local _, errs2 = ecap.parallel({"x"}, ecap.sleep)
row("host item", false, errs2[1])
local _, errs3 = ecap.parallel({1, 2}, function(i) error("stop " .. i, 0) end, { concurrency = 1, stop_on_error = true })
row("cancelled", false, errs3[2])
]]

local function script()
  local lines = {}
  for i, c in ipairs(CASES) do
    lines[i] = string.format("catch(%q, function() %s end)", c[1], c[2])
  end
  return PRELUDE .. table.concat(lines, "\n") .. "\n" .. PARALLEL
end

local sim, rows, path

setup(function()
  sim = T.start_sim({ "--quiet" })
  path = T.script(script())
  local r = T.expect(0, T.run_script(nil, nil, { quiet = true, url = sim.url, path = path }))
  rows = {}
  for line in r.stdout:gmatch("[^\n]+") do
    local row = cjson.decode(line)
    rows[row.name] = row
  end
end)

teardown(function() sim.stop() end)

-- The error of a case: an ecap error table at the given line, its text where .. ": " .. kind ...
local function check(name, line, kind, message)
  local e = rows[name]
  assert.is_table(e, name .. ": no result")
  assert.is_false(e.ok, name .. ": no error")
  assert.is_true(e.is_error, name .. ": not an ecap error table: " .. e.text)
  assert.are.equal(kind, e.kind, name .. ": " .. e.text)
  if message then assert.are.equal(message, e.message, name) end
  assert.are.equal(path .. ":" .. line, e.where, name .. ": " .. e.text)
  assert.are.equal(e.where .. ": " .. kind, e.text:sub(1, #e.where + 2 + #kind), name)
  assert.matches(e.message, e.text, 1, true)
  return e
end

describe("errors of host functions", function()
  for i, c in ipairs(CASES) do
    it(c[1] .. ": " .. c[3] .. " error at the call's line", function()
      check(c[1], HEAD + i, c[3], c[4])
    end)
  end

  it("text: file:line, kind, and today's one-line text", function()
    local lines = HEAD
    for i, c in ipairs(CASES) do if c[1] == "http" then lines = HEAD + i end end
    assert.are.equal(path .. ":" .. lines .. ": http 404 GET /api/v3/meter/999999: meter 999999 not found",
                     rows.http.text)
  end)

  it("a bad log format names the log function", function()
    local e = rows["log.warn format"]
    assert.matches("log.warn: ", e.message, 1, true)
    assert.matches("bad argument #2", e.message, 1, true)
    assert.matches("number expected, got string", e.message, 1, true)
  end)
end)

describe("errors that are not the host function's own", function()
  it("pass through log as they are: an error of the script's own __tostring", function()
    local p = T.script([[
local t = setmetatable({}, { __tostring = function() error("mine") end })
local ok, e = pcall(log.info, "%s", t)
print(type(e), e)
]])
    local r = T.expect(0, T.run_script(nil, nil, { quiet = true, url = sim.url, path = p }))
    assert.are.equal("string\t" .. p .. ":1: mine\n", r.stdout)
  end)
end)

describe("errors inside ecap.parallel items", function()
  local base = HEAD + #CASES -- the ecap.parallel call is on base + 1

  it("point at the item's line: an argument error", function()
    check("item 1", base + 2, "argument", "bad argument #1 to 'ecap.sleep' (number expected, got string)")
  end)

  it("point at the item's line: a plain error becomes kind script, its position not repeated", function()
    local e = check("item 2", base + 3, "script", "boom")
    assert.are.equal(e.where .. ": script: boom", e.text)
  end)

  it("point at the item's line through ecap.pages", function()
    check("item 3", base + 4, "http", "meter 999999 not found")
  end)

  it("point at the item's line: json", function()
    check("item 4", base + 5, "json")
  end)

  it("point at the ecap.parallel call when the item's function is the host's", function()
    check("host item", base + 8, "argument", "bad argument #1 to 'ecap.sleep' (number expected, got string)")
  end)

  it("point at the ecap.parallel call when cancelled", function()
    check("cancelled", base + 10, "cancelled")
  end)
end)

describe("an uncaught error", function()
  it("is reported once with its position and kind, then the traceback", function()
    local p = T.script("local x = 1\necap.sleep({})\n")
    local r = T.run_script(nil, nil, { quiet = true, url = sim.url, path = p })
    assert.are.equal(1, r.code, r.stderr)
    assert.matches("ecaphost: " .. p .. ":2: argument: bad argument #1 to 'ecap.sleep' (number expected, got table)\n",
                   r.stderr, 1, true)
    assert.is_nil(r.stderr:find(p .. ":2: " .. p, 1, true), r.stderr)
    assert.matches("stack traceback:", r.stderr, 1, true)
  end)
end)
