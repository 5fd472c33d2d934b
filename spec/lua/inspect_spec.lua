-- ecap.inspect (the readable printer, also the REPL's) and json.encode's options through the
-- real binary: nested, cyclic, empty, null-bearing and huge tables; output that pastes back.
local T = require "spec.lua.support"

-- Runs a script that prints; returns its stdout (the run must succeed).
local function out(text)
  local r = T.expect(0, T.run_script(text, nil, { quiet = true, url = "http://127.0.0.1:9" }))
  return r.stdout
end

describe("ecap.inspect", function()
  it("prints nested tables sorted, indented, arrays as arrays, in Lua syntax", function()
    local got = out([[print(ecap.inspect({ 3, 2, 1, zeta = { a = 1, b = { "x", "y" } }, alpha = true,
      ["end"] = 1, ["with space"] = 2, [10] = "ten", [1.5] = "f", deep = { list = { { id = 1 }, { id = 2 } } } }))]])
    assert.are.equal([[{
  3, 2, 1,
  [1.5] = "f",
  [10] = "ten",
  alpha = true,
  deep = {
    list = {
      { id = 1 },
      { id = 2 },
    },
  },
  ["end"] = 1,
  ["with space"] = 2,
  zeta = {
    a = 1,
    b = { "x", "y" },
  },
}
]], got)
  end)

  it("keeps integers and floats apart, json.null, strings quoted to paste back", function()
    local got = out([[print(ecap.inspect({ i = 1, f = 1.0, n = json.null, s = 'a "q"\n\tb\\', z = -0.0,
      big = math.maxinteger, inf = math.huge, tiny = 0.1 }, { indent = 0 }))]])
    assert.are.equal([[{ big = 9223372036854775807, f = 1.0, i = 1, inf = math.huge, n = json.null, s = "a \"q\"\n\tb\\", tiny = 0.1, z = -0.0 }]] .. "\n", got)
  end)

  it("output pastes back as Lua and reads back equal", function()
    local got = out([[
      local v = { 1, 2.5, "x\0y\255", { nested = { true, false } }, key = json.null, e = json.array{}, o = json.object{} }
      local text = ecap.inspect(v)
      local back = load("return " .. text)()
      print(back[1], math.type(back[2]), back[3] == "x\0y\255", back[4].nested[2], back.key == json.null,
            getmetatable(back.e), getmetatable(back.o))
    ]])
    assert.are.equal("1\tfloat\ttrue\tfalse\ttrue\tjson.array\tjson.object\n", got)
  end)

  it("shows empty tables, and json's empty array and object markers", function()
    assert.are.equal("{}\tjson.array{}\tjson.object{}\n",
      out([[print(ecap.inspect({}), ecap.inspect(json.array{}), ecap.inspect(json.decode("{}")))]]))
  end)

  it("shows a cycle as <cycle>", function()
    local got = out([[local t = { name = "root" }; t.me = t; t.kids = { { up = t } }
      print(ecap.inspect(t, { indent = 0 }))]])
    assert.are.equal('{ kids = { { up = <cycle> } }, me = <cycle>, name = "root" }\n', got)
  end)

  it("cuts deep nesting and long tables with a note of what was left out", function()
    local got = out([[
      local big = {} for i = 1, 1000 do big[i] = i end
      local deep = { a = { b = { c = { x = 1, y = 2 } } } }
      print(ecap.inspect(big, { max_items = 3, indent = 0 }))
      print(ecap.inspect(deep, { depth = 2, indent = 0 }))
      local h = {} for i = 1, 200000 do h["k" .. i] = i end
      local s = ecap.inspect(h)
      print(select(2, s:gsub("\n", "")), s:match("%-%-%[%[ %d+ more %]%]"))
    ]])
    assert.are.equal("{ 1, 2, 3, --[[ 997 more ]] }\n{ a = { b = { --[[ 1 entry ]] } } }\n102\t--[[ 199900 more ]]\n", got)
  end)

  it("cuts huge output at 1 MB with a note", function()
    local got = out([[
      local s = ecap.inspect({ string.rep("x", 2000000) })
      print(#s <= 1048576, s:match("%-%-%[%[ output cut at %d+ bytes %]%]$"))
    ]])
    assert.are.equal("true\t--[[ output cut at 1048576 bytes ]]\n", got)
  end)

  it("reads tables raw: no metamethod of the script runs", function()
    local got = out([[
      local called = false
      local t = setmetatable({ a = 1 }, { __index = function() called = true end,
        __pairs = function() called = true end, __tostring = function() called = true; return "x" end,
        __len = function() called = true; return 5 end })
      print(ecap.inspect(t), called)
    ]])
    assert.are.equal("{ a = 1 }\tfalse\n", got)
  end)

  it("shows the host's read-only tables through their proxies", function()
    local got = out([[print(ecap.inspect(json, { indent = 0 }))]])
    assert.are.equal("{ array = <function>, decode = <function>, encode = <function>, null = json.null, object = <function> }\n", got)
  end)

  it("refuses unknown options and bad values", function()
    local got = out([[
      for _, o in ipairs { { colour = 1 }, { depth = -1 }, { max_items = 0 }, { indent = 2.5 }, 5 } do
        print(select(2, pcall(ecap.inspect, {}, o)))
      end
    ]])
    assert.matches("unknown option colour (known: depth, max_items, indent)", got, 1, true)
    assert.matches("opts.depth must be an integer 0..100 (got -1)", got, 1, true)
    assert.matches("opts.max_items must be an integer 1..", got, 1, true)
    assert.matches("opts.indent must be an integer 0..8 (got 2.5)", got, 1, true)
    assert.matches("opts must be a table (got number)", got, 1, true)
  end)
end)

describe("json.encode options", function()
  it("indent writes pretty JSON with sorted keys; empty containers stay [] and {}", function()
    local got = out([[print(json.encode({ b = { 1, {} }, a = json.null, c = json.object{} }, { indent = 2 }))]])
    assert.are.equal('{\n  "a": null,\n  "b": [\n    1,\n    []\n  ],\n  "c": {}\n}\n', got)
  end)

  it("without options stays compact", function()
    assert.are.equal('{"a":[1,2]}\n', out([[print(json.encode({ a = { 1, 2 } }))]]))
  end)

  it("an unknown option or a bad indent is an error, not ignored", function()
    local got = out([[
      print(select(2, pcall(json.encode, {}, { indnet = 2 })))
      print(select(2, pcall(json.encode, {}, { indent = 9 })))
    ]])
    assert.matches("json.encode: unknown option indnet (known: indent)", got, 1, true)
    assert.matches("json.encode: indent must be an integer 0..8 (got 9)", got, 1, true)
  end)
end)
