-- ecap.request against the real simulator: what it returns, what goes over the wire (checked in
-- the simulator's record of each request), the error tables for every way a call can fail, and
-- the paths it refuses before anything is sent.
local T = require "spec.lua.support"

local KEY = "req-key" -- the only key this file's simulator accepts
local CLOSED = "http://127.0.0.1:9"

local sim, conf, version

-- Runs script text against the simulator (or host_opts' --base-url); returns {code, stdout, stderr}.
local function run(text, host_opts, env_over)
  return T.run_script(text, host_opts, { quiet = true, url = sim.url, kill_after = 60,
    env = T.merge({ ECAP_API_KEY = KEY, ECAP_CONFIG = conf }, env_over) })
end

-- Runs text, expects exit 0 (a failed call must never crash or end the run), returns stdout.
local function out(text, host_opts, env_over)
  return T.expect(0, run(text, host_opts, env_over)).stdout
end

-- Script text that makes one call in pcall and prints the error's fields, one per line
-- ("ok" if it succeeded), then tostring(err) on the last line. The call's own position
-- (line 1 of the script) reads "@1", in where and in tostring.
local function probe(call)
  return [[
    local okr, e = pcall(function() return ]] .. call .. [[ end)
    if okr then print("ok") return end
    if type(e) ~= "table" then print("not a table: " .. tostring(e)) return end
    for _, k in ipairs{"kind", "status", "method", "path", "message", "retry_after"} do
      print(k .. "=" .. tostring(e[k]))
    end
    print("body=" .. type(e.body) .. ":" .. (type(e.body) == "string" and e.body or
      type(e.body) == "table" and tostring(e.body.message) or ""))
    local here = arg[0] .. ":1"
    print("where=" .. (e.where == here and "@1" or tostring(e.where)))
    local text = tostring(e)
    if text:sub(1, #here + 2) == here .. ": " then text = "@1: " .. text:sub(#here + 3) end
    print("tostring=" .. text)
  ]]
end

-- Parses probe output into a table.
local function fields(stdout)
  local f = {}
  for line in stdout:gmatch("[^\n]+") do
    local k, v = line:match("^([%w_]+)=(.*)$")
    if k then f[k] = v else f[#f + 1] = line end
  end
  f.tostring = stdout:match("tostring=(.*)\n$")
  return f
end

setup(function()
  conf = T.write(T.tmpname(".conf"), "# empty\n")
  sim = T.start_sim({ "--quiet", "--api-key", KEY })
  local v = T.run({ "--version" })
  version = v.stdout:match("^ecaphost (%S+)")
  assert.is_truthy(version, v.stdout)
end)

teardown(function()
  if sim then sim.stop() end
end)

before_each(function() sim.reset() end)

describe("request: a successful GET", function()
  it("returns the decoded body with integers as integers", function()
    local got = out([[
      local m = ecap.request("GET", "/api/v3/meter/1")
      print(math.type(m.meterId), "/api/v3/meter/" .. m.meterId, type(m.meterCode))
    ]])
    assert.are.equal("integer\t/api/v3/meter/1\tstring\n", got)
  end)

  it("returns meta with status, lower-case headers (totalpages) and elapsed", function()
    local got = out([[
      local list, meta = ecap.request("GET", "/api/v3/meter", { query = { pageSize = 2 } })
      local upper = {}
      for k in pairs(meta.headers) do if k:find("[A-Z]") then upper[#upper + 1] = k end end
      local total = tonumber(meta.headers["totalnumberofrecords"])
      print(#list, meta.status, math.type(meta.status), meta.headers["totalpages"] == tostring(math.ceil(total / 2)),
        total > 2, meta.headers["content-type"], #upper)
      print(type(meta.elapsed), meta.elapsed >= 0 and meta.elapsed < 10)
    ]])
    assert.are.equal("2\t200\tinteger\ttrue\ttrue\tapplication/json; charset=utf-8\t0\nnumber\ttrue\n", got)
  end)

  it("accepts the method in lower case", function()
    out([[ecap.request("get", "/api/v3/meter/1")]])
    assert.are.equal("GET", sim.requests()[1].method)
  end)

  it("returns nil for a 204", function()
    -- No simulated endpoint answers 204 on its own; a one-shot status fault does.
    sim.fault('{"mode": "status", "status": 204, "count": 1, "pathPrefix": "/api/v3/meter/1"}')
    local got = out([[
      local body, meta = ecap.request("GET", "/api/v3/meter/1")
      print(body, meta.status)
    ]])
    assert.are.equal("nil\t204\n", got)
  end)
end)

describe("request: what goes over the wire", function()
  it("sends the key, JSON content type, Accept and User-Agent ecaphost/<version>", function()
    out([[ecap.request("GET", "/api/v3/meter/1")]])
    local reqs = sim.requests()
    assert.are.equal(1, #reqs)
    local r = reqs[1]
    assert.is_true(r.apiKeyPresent)
    assert.is_true(r.apiKeyAccepted)
    assert.are.equal("application/json", r.headers["content-type"])
    assert.are.equal("application/json", r.headers["accept"])
    assert.are.equal("ecaphost/" .. version, r.headers["user-agent"])
    assert.are.equal("/api/v3/meter/1", r.path)
    assert.are.equal("", r.query)
  end)

  it("URL-encodes opts.query (spaces, quotes, ampersands, UTF-8), keys sorted, lists repeated", function()
    out([[ecap.request("GET", "/api/v3/meter", { query = {
      x = "a b&c=d'\"+/%é", pageSize = 2, flag = true, list = { 1, "two" }, f = 1.5,
      filter = "meterCode like 'E L%'" } })]])
    assert.are.equal("f=1.5&filter=meterCode%20like%20%27E%20L%25%27&flag=true&list=1&list=two&pageSize=2" ..
      "&x=a%20b%26c%3Dd%27%22%2B%2F%25%C3%A9", sim.requests()[1].query)
  end)

  it("refuses query values that are not strings, numbers or booleans", function()
    local f = fields(out(probe([[ecap.request("GET", "/api/v3/meter", { query = { x = print } })]])))
    assert.are.equal("validation", f.kind)
    assert.are.equal(0, #sim.requests())
  end)

  it("sends opts.body as JSON: integers exact, [] kept, {} on request, json.null as null", function()
    out([[ecap.request("POST", "/api/v3/meterGroup/updateUserAutoGroups", { body = {
      int = 2147483647, big = 9007199254740993, neg = -5, zero = 0, f = 1.5,
      empty = {}, arr = json.array({}), obj = json.object({}), n = json.null,
      list = { 1, 2, 3 }, nested = { { id = 42, tags = {} } }, s = "q\"uote" } })]])
    local req = sim.requests()[1]
    assert.are.equal("POST", req.method)
    assert.are.equal("application/json", req.headers["content-type"])
    local b = req.body
    for _, frag in ipairs { '"int":2147483647', '"big":9007199254740993', '"neg":-5', '"zero":0', '"f":1.5',
      '"empty":[]', '"arr":[]', '"obj":{}', '"n":null', '"list":[1,2,3]', '"id":42', '"tags":[]',
      '"s":"q\\"uote"' } do
      assert.matches(frag, b, 1, true)
    end
    assert.is_nil(b:find("%.0[,}%]]"), b) -- no integer went out as 42.0
  end)

  it("re-sends a decoded reply unchanged in its numbers and empty lists", function()
    out([[
      local m = ecap.request("GET", "/api/v3/meter/1")
      ecap.request("POST", "/api/v3/meterGroup/updateUserAutoGroups", { body = { meterId = m.meterId, e = json.decode("[]") } })
    ]])
    assert.matches('"meterId":1[,}]', sim.requests()[2].body)
    assert.matches('"e":[]', sim.requests()[2].body, 1, true)
  end)

  it("refuses a body it cannot encode, before sending", function()
    local f = fields(out(probe([[ecap.request("POST", "/api/v3/meterGroup/updateUserAutoGroups", { body = { x = 0/0 } })]])))
    assert.are.equal("validation", f.kind)
    assert.matches("NaN", f.message)
    assert.are.equal(0, #sim.requests())
  end)

  it("sends extra opts.headers", function()
    out([[ecap.request("GET", "/api/v3/meter/1", { headers = { ["X-Trace-Id"] = "abc-123" } })]])
    assert.are.equal("abc-123", sim.requests()[1].headers["x-trace-id"])
  end)

  it("refuses the key, Host and transport headers in opts.headers, and CR/LF in values", function()
    for _, h in ipairs { '["ECI-ApiKey"] = "x"', '["eci-apikey"] = "x"', 'Host = "evil.example"',
      'Authorization = "Bearer x"', '["Content-Length"] = "1"', '["X-A"] = "a\\r\\nECI-ApiKey: y"',
      '["Bad Name"] = "x"' } do
      local f = fields(out(probe('ecap.request("GET", "/api/v3/meter/1", { headers = { ' .. h .. ' } })')))
      assert.are.equal("validation", f.kind, h)
    end
    assert.are.equal(0, #sim.requests())
  end)

  it("refuses unknown options and methods", function()
    assert.are.equal("validation", fields(out(probe([[ecap.request("GET", "/api/v3/meter/1", { bogus = 1 })]]))).kind)
    assert.are.equal("validation", fields(out(probe([[ecap.request("TRACE", "/api/v3/meter/1")]]))).kind)
    assert.are.equal(0, #sim.requests())
  end)
end)

describe("request: errors", function()
  it("raises an http error table for a 404, with a decoded body and a one-line tostring", function()
    local f = fields(out(probe([[ecap.request("GET", "/api/v3/meter/999999")]])))
    assert.are.equal("http", f.kind)
    assert.are.equal("404", f.status)
    assert.are.equal("GET", f.method)
    assert.are.equal("/api/v3/meter/999999", f.path)
    assert.are.equal("meter 999999 not found", f.message)
    assert.are.equal("table:meter 999999 not found", f.body)
    assert.are.equal("@1", f.where)
    assert.are.equal("@1: http 404 GET /api/v3/meter/999999: meter 999999 not found", f.tostring)
  end)

  it("raises kind=network for a closed port", function()
    local f = fields(out(probe([[ecap.request("GET", "/api/v3/meter/1")]]), { "--base-url", CLOSED }))
    assert.are.equal("network", f.kind)
    assert.are.equal("GET", f.method)
    assert.are.equal("/api/v3/meter/1", f.path)
    assert.matches("^@1: network GET /api/v3/meter/1: .+", f.tostring)
  end)

  it("raises kind=timeout after --http-timeout when the server hangs", function()
    sim.fault('{"mode":"hang","seconds":4}')
    local got = out([[
      local t0 = os.time()
      ]] .. probe([[ecap.request("GET", "/api/v3/meter/1")]]) .. [[
      print("waited=" .. os.difftime(os.time(), t0))
    ]], { "--http-timeout", "1", "--retries", "0" }) -- one attempt: its error (retries: retry_spec)
    local f = fields(got)
    assert.are.equal("timeout", f.kind, got)
    assert.are.equal("/api/v3/meter/1", f.path)
    assert.is_true(tonumber(f.waited) <= 3, got) -- gave up after ~1 s, not the 4 s hang
  end)

  it("turns a text/plain 500 into an http error with the text as body", function()
    sim.fault('{"mode":"text"}')
    local f = fields(out(probe([[ecap.request("GET", "/api/v3/meter/1")]]), { "--retries", "0" }))
    assert.are.equal("http", f.kind)
    assert.are.equal("500", f.status)
    assert.matches("^string:Simulated fault: this is not JSON%.", f.body)
    assert.is_nil(f.tostring:find("\n"), f.tostring)
  end)

  it("turns an HTML 502 into an http error with the page as body", function()
    sim.fault('{"mode":"html"}')
    local got = out(probe([[ecap.request("GET", "/api/v3/meter/1")]]), { "--retries", "0" })
    local f = fields(got)
    assert.are.equal("http", f.kind)
    assert.are.equal("502", f.status)
    assert.matches("^string:<!DOCTYPE html>", f.body)
    assert.matches("<h1>502 Error</h1>", got, 1, true)
    assert.are.equal("@1: http 502 GET /api/v3/meter/1: bad gateway", f.tostring)
  end)

  it("raises an http error with retry_after for a 503 with Retry-After", function()
    sim.fault('{"mode":"status","status":503,"retryAfter":7}')
    local f = fields(out(probe([[ecap.request("GET", "/api/v3/meter/1")]]), { "--retries", "0" }))
    assert.are.equal("http", f.kind)
    assert.are.equal("503", f.status)
    assert.are.equal("7.0", f.retry_after)
  end)

  it("raises kind=network for a truncated reply and a connection reset", function()
    for _, mode in ipairs { "truncate", "reset" } do
      sim.fault('{"mode":"' .. mode .. '"}')
      local f = fields(out(probe([[ecap.request("GET", "/api/v3/meter/1")]]), { "--retries", "0" }))
      assert.are.equal("network", f.kind, mode)
      assert.are.equal("/api/v3/meter/1", f.path, mode)
    end
  end)

  it("keeps working after a fault (the next call succeeds)", function()
    sim.fault('{"mode":"reset"}')
    assert.are.equal("integer\n", out([[
      pcall(ecap.request, "GET", "/api/v3/meter/1")
      print(math.type(ecap.request("GET", "/api/v3/meter/1").meterId))
    ]]))
  end)

  it("raises a 401 http error for a wrong key, never showing the key", function()
    local r = run(probe([[ecap.request("GET", "/api/v3/meter/1")]]), {}, { ECAP_API_KEY = "wrong-key-987" })
    T.expect(0, r)
    local f = fields(r.stdout)
    assert.are.equal("http", f.kind)
    assert.are.equal("401", f.status)
    assert.is_nil((r.stdout .. r.stderr):find("wrong-key-987", 1, true))
    local req = sim.requests()[1]
    assert.is_true(req.apiKeyPresent)
    assert.is_false(req.apiKeyAccepted)
  end)
end)

describe("request: paths that leave /api/ are refused before sending", function()
  local bad = {
    "http://evil.example/api/v3/meter", "https://127.0.0.1/api/v3/meter", "//evil.example/api/v3/meter",
    "api/v3/meter", "/v3/meter", "/API/v3/meter", "/api", "/api/../etc/passwd", "/api/v3/../../x",
    "/api/./v3/meter", "/api/v3/meter/..", "/api/%2e%2e/x", "/api/%2E%2E/x", "/api/.%2e/x",
    "/api/v3%2fmeter", "/api//v3/meter", "/api/v3/meter?pageSize=1", "/api/v3/meter#x",
    "/api/v3/meter 1", "/api/v3\\meter", "/api/v3/meter\r\nX: y",
  }

  it("with kind=validation, and the simulator records no request", function()
    local lines = {}
    for i, p in ipairs(bad) do
      lines[#lines + 1] = string.format([[
        do local okr, e = pcall(ecap.request, "GET", %q)
          print(%d, okr, type(e) == "table" and e.kind) end]], p, i)
    end
    local got = out(table.concat(lines, "\n"))
    local n = 0
    for i, okr, kind in got:gmatch("(%d+)\t(%a+)\t(%a+)\n") do
      n = n + 1
      assert.are.equal("false", okr, bad[tonumber(i)])
      assert.are.equal("validation", kind, bad[tonumber(i)])
    end
    assert.are.equal(#bad, n, got)
    assert.are.same({}, sim.requests())
  end)
end)
