-- The json module through the real binary: integers stay integers, json.null both ways, empty
-- arrays and objects keep their kind, json.array/json.object markers, exact number output,
-- clear errors (NaN, inf, cycles, mixed keys, bad input), and protected metatables.
local T = require "spec.lua.support"

local conf

-- Helpers every script gets: show(v) prints numbers with their math.type; try(f, ...) gives
-- "ok:<value>" or "error:<message>".
local PRELUDE = [[
local function show(v)
  if math.type(v) then return tostring(v) .. ":" .. math.type(v) end
  return tostring(v)
end
local function try(f, ...)
  local okr, v = pcall(f, ...)
  return okr and "ok:" .. show(v) or "error:" .. tostring(v)
end
]]

-- Runs the prelude plus one `print(<expr>)` per case { expression, ... }; returns the printed
-- lines.
local function eval(cases)
  local text = { PRELUDE }
  for _, c in ipairs(cases) do text[#text + 1] = "print(" .. c[1] .. ")" end
  local r = T.expect(0, T.run_script(table.concat(text, "\n"), nil,
    { quiet = true, url = "http://127.0.0.1:9", env = { ECAP_CONFIG = conf } }))
  local lines = {}
  for l in r.stdout:gmatch("([^\n]*)\n") do lines[#lines + 1] = l end
  return lines
end

-- Checks pairs { expression, expected printed text } in one run of the binary.
local function expect_all(cases)
  local got = eval(cases)
  for i, c in ipairs(cases) do
    assert.are.equal(c[2], got[i], c[1])
  end
end

-- Expects each expression (a call in try(...)) to fail with a message containing the pattern.
local function expect_errors(cases)
  local got = eval(cases)
  for i, c in ipairs(cases) do
    assert.matches("^error:", got[i] or "", nil, c[1])
    assert.matches(c[2], got[i], 1, true)
  end
end

setup(function()
  conf = T.write(T.tmpname(".conf"), "# empty\n")
end)

describe("json.decode", function()
  it("gives integers for integral numbers and floats for the others", function()
    expect_all {
      { [[show(json.decode("42"))]], "42:integer" },
      { [[show(json.decode("-7"))]], "-7:integer" },
      { [[show(json.decode("0"))]], "0:integer" },
      { [[show(json.decode("42.5"))]], "42.5:float" },
      { [[show(json.decode("-0.25"))]], "-0.25:float" },
      { [[show(json.decode("2.0"))]], "2.0:float" },
      { [[show(json.decode("1.5e3"))]], "1500.0:float" },
      { [[show(json.decode("2147483648"))]], "2147483648:integer" },
      { [[show(json.decode("9007199254740993"))]], "9007199254740993:integer" },
      { [[show(json.decode("9223372036854775807"))]], "9223372036854775807:integer" },
      { [[show(json.decode("-9223372036854775808"))]], "-9223372036854775808:integer" },
      { [[math.type(json.decode("9223372036854775808"))]], "float" },
      { [["/api/v3/meter/" .. json.decode('{"meterId": 42}').meterId]], "/api/v3/meter/42" },
      { [[show(json.decode('[1, 2.5, 3]')[3])]], "3:integer" },
    }
  end)

  it("gives json.null for null, keeping the key and the array length", function()
    expect_all {
      { [[json.decode("null") == json.null, type(json.null)]], "true\tuserdata" },
      { [[json.decode('{"a": null}').a == json.null]], "true" },
      { [[#json.decode('[1, null, 3]'), json.decode('[1, null, 3]')[2] == json.null]], "3\ttrue" },
      { [[tostring(json.null)]], "json.null" },
    }
  end)

  it("decodes strings with escapes and \\u sequences, surrogate pairs included", function()
    expect_all {
      { [[json.decode('"a\\"b\\\\c\\/d\\n"') == 'a"b\\c/d\n']], "true" },
      { [[json.decode('"\\u00e9"') == "é"]], "true" },
      { [[json.decode('"\\ud83d\\ude00"') == "\u{1F600}"]], "true" },
    }
  end)

  it("raises a clear error naming the position for bad input", function()
    expect_errors {
      { [[try(json.decode, '{"a":}')]], "line 1, column 6" },
      { [[try(json.decode, '[1, 2')]], "end of input" },
      { [[try(json.decode, '')]], "end of input" },
      { [[try(json.decode, 'nul')]], "invalid literal" },
      { [[try(json.decode, '[1] x')]], "after the value" },
      { [[try(json.decode, '{"a":1,}')]], "json.decode" },
      { [[try(json.decode, '"\\ud83d"')]], "surrogate" },
      { [[try(json.decode, '{\n"a":\n  x}')]], "line 3" },
      { [[try(json.decode, string.rep("[", 100000))]], "nesting" },
    }
  end)

  it("decodes a large document", function()
    expect_all {
      { [[#json.decode("[" .. string.rep('{"id":1,"v":[1.5,null,"x"],"o":{}},', 19999) .. '{"id":2}]')]], "20000" },
    }
  end)
end)

describe("json.encode", function()
  it("writes integers exactly and floats so they read back the same", function()
    expect_all {
      { [[json.encode(2147483647), json.encode(-2147483648)]], "2147483647\t-2147483648" },
      { [[json.encode(math.maxinteger), json.encode(math.mininteger)]], "9223372036854775807\t-9223372036854775808" },
      { [[json.encode(9007199254740993)]], "9007199254740993" },
      { [[json.encode({ id = 42 })]], '{"id":42}' },
      { [[json.encode(1.5), json.encode(0.1)]], "1.5\t0.1" },
      { [[json.decode(json.encode(1/3)) == 1/3, json.decode(json.encode(123456.789e-30)) == 123456.789e-30]], "true\ttrue" },
    }
  end)

  it("writes json.null as null", function()
    expect_all {
      { [[json.encode(json.null)]], "null" },
      { [[json.encode({ a = json.null })]], '{"a":null}' },
      { [[json.encode({ 1, json.null, 3 })]], "[1,null,3]" },
    }
  end)

  it("writes strings with the needed escapes", function()
    expect_all {
      { [[json.encode('q"b\\s\n\1')]], [["q\"b\\s\n\u0001"]] },
      { [[json.encode("é")]], [["é"]] },
    }
  end)

  it("raises clear errors for NaN, inf, cycles, mixed keys and values JSON cannot hold", function()
    expect_errors {
      { [[try(json.encode, 0/0)]], "NaN" },
      { [[try(json.encode, 1/0)]], "inf" },
      { [[try(json.encode, { x = -1/0 })]], "value.x: cannot encode -inf" },
      { [[try(json.encode, (function() local t = {} t.self = t return t end)())]], "cycle" },
      { [[try(json.encode, { list = (function() local t = {} t[1] = t return t end)() })]], "cycle" },
      { [[try(json.encode, { 1, 2, x = 3 })]], "mixed keys" },
      { [[try(json.encode, { 1, nil, 3 })]], "sparse" },
      { [[try(json.encode, { f = print })]], "value.f: cannot encode function" },
      { [[try(json.encode, { [true] = 1 })]], "boolean key" },
      { [[try(json.encode, { [1.5] = 1 })]], "key" },
      { [[try(json.encode, (function() local t = {} local d = t for _ = 1, 1000 do d[1] = {} d = d[1] end return t end)())]],
        "json.encode" },
    }
  end)

  it("encodes a table shared twice (not a cycle)", function()
    expect_all {
      { [[json.encode((function() local s = { 1 } return { a = s, b = { s } } end)())]], '{"a":[1],"b":[[1]]}' },
    }
  end)
end)

describe("json: empty arrays and objects", function()
  it("keeps [] and {} as they came", function()
    expect_all {
      { [[json.encode(json.decode("[]")), json.encode(json.decode("{}"))]], "[]\t{}" },
      { [=[json.encode(json.decode('[[],{},{"a":[]},[{}]]'))]=], '[[],{},{"a":[]},[{}]]' },
      { [[json.encode(json.decode('{"o":{}}'))]], '{"o":{}}' },
    }
  end)

  it("writes an unmarked empty table as []", function()
    expect_all {
      { [[json.encode({})]], "[]" },
      { [[json.encode({ list = {} })]], '{"list":[]}' },
    }
  end)

  it("honours json.object and json.array, which return the table they mark", function()
    expect_all {
      { [[json.encode(json.object({}))]], "{}" },
      { [[json.encode({ filters = json.object({}) })]], '{"filters":{}}' },
      { [[json.encode(json.array({}))]], "[]" },
      { [[json.encode(json.array({ 1, 2 }))]], "[1,2]" },
      { [[json.encode(json.object({ a = 1 }))]], '{"a":1}' },
      { [[(function() local t = {} return rawequal(json.object(t), t) and rawequal(json.array(t), t) end)()]], "true" },
    }
  end)

  it("lets a decoded [] or {} be filled like any table", function()
    expect_all {
      { [[(function() local a = json.decode("[]") a[1] = 5 return json.encode(a) end)()]], "[5]" },
      { [[(function() local o = json.decode("{}") o.k = 1 return json.encode(o) end)()]], '{"k":1}' },
    }
  end)
end)

describe("json: protection", function()
  it("shows the markers' metatables only as names, and refuses to change them", function()
    expect_all {
      { [[getmetatable(json.decode("[]")), getmetatable(json.decode("{}"))]], "json.array\tjson.object" },
      { [[getmetatable(json.array({})), getmetatable(json.object({}))]], "json.array\tjson.object" },
      { [[getmetatable(json.null)]], "json.null" },
      { [[(pcall(setmetatable, json.decode("[]"), nil)), (pcall(setmetatable, json.decode("{}"), {}))]], "false\tfalse" },
      { [[(function() local a = json.decode("[]") pcall(setmetatable, a, nil) return json.encode(a) end)()]], "[]" },
    }
  end)

  it("keeps the json table read-only", function()
    expect_errors {
      { [[try(function() json.encode = nil end)]], "read-only" },
      { [[try(function() json.null = false end)]], "read-only" },
      { [[try(function() json.extra = 1 end)]], "read-only" },
    }
  end)
end)
