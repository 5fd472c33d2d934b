-- Retries against the simulator's fault switches: what is sent again and what is not, decided
-- by "did the server act?", the outcome of every failed call, exit code 6, Retry-After (seconds
-- and HTTP date) within --retry-budget, the -v/-vv trace, ECI-Deprecated, HTML 2xx replies.
-- Run: ECAPHOST=build/ecaphost ECAP_SRC=. lua5.4 /usr/bin/busted spec/lua/retry_spec.lua
local T = require "spec.lua.support"

local sim
setup(function() sim = T.start_sim({ "--quiet" }) end)
teardown(function() if sim then sim.stop() end end)
before_each(function() sim.reset(); sim.clear_requests() end)

local RELEASE = [[ecap.meters.apply_release(8, { accountNumber = "200173450001", nameOnBill = "A", serviceAddress = "B" })]]
local REL_PATH = "/api/v202203/utilityPlatform/meter/8/release"

-- Runs code (host options first); returns the run.
local function run(code, host_opts, opts)
  return T.run_script(code, host_opts or {}, T.merge({ url = sim.url }, opts))
end

-- pcall(f) and print ok, kind, outcome, attempts, status
local function probe(call)
  return "local ok, e = pcall(function() return " .. call .. " end)\n" ..
    "if ok then print('ok') else print('err', e.kind, e.outcome, e.attempts, e.status, e.retry_after or '-') end\n"
end

local function count(method, path)
  local n = 0
  for _, q in ipairs(sim.requests()) do
    if q.method == method and q.path == path then n = n + 1 end
  end
  return n
end

describe("retries", function()
  it("a GET after a 503 burst succeeds; each retry is a log line", function()
    sim.fault({ count = 2, mode = "status", status = 503, pathPrefix = "/api/v3/meter/1" })
    local r = T.expect(0, run(probe([[ecap.request("GET", "/api/v3/meter/1")]])))
    assert.are.equal("ok\n", r.stdout)
    assert.are.equal(3, count("GET", "/api/v3/meter/1"))
    local lines = select(2, r.stderr:gsub("attempt %d failed %(503 service unavailable%); retrying in", ""))
    assert.are.equal(2, lines, r.stderr)
  end)

  it("a mutating call is sent again after 429 and 503 (the server did not act)", function()
    sim.fault({ count = 1, mode = "status", status = 429, retryAfter = 1, pathPrefix = REL_PATH })
    sim.fault({ count = 1, mode = "status", status = 503, pathPrefix = REL_PATH })
    local t0 = os.time()
    local r = T.expect(0, run(probe(RELEASE)))
    assert.are.equal("ok\n", r.stdout)
    assert.are.equal(3, count("POST", REL_PATH))
    assert.is_true(os.time() - t0 >= 1, "Retry-After: 1 was honoured")
  end)

  it("a mutating call is not sent again after a 500: outcome unknown, exit 6 with the list", function()
    sim.fault({ count = 1, mode = "status", status = 500, pathPrefix = REL_PATH })
    local r = run(probe(RELEASE))
    T.expect(6, r)
    assert.are.equal("err\thttp\tunknown\t1\t500\t-\n", r.stdout)
    assert.are.equal(1, count("POST", REL_PATH))
    assert.matches("1 mutating call ended with an unknown outcome", r.stderr, 1, true)
    assert.matches("meters.apply_release POST " .. sim.url .. REL_PATH, r.stderr, 1, true)
  end)

  it("an uncaught unknown outcome also exits 6 (it wins over 1)", function()
    sim.fault({ count = 1, mode = "reset", pathPrefix = REL_PATH })
    local r = run(RELEASE)
    T.expect(6, r)
    assert.matches("outcome unknown", r.stderr, 1, true)
  end)

  it("a GET is read again after a 500, a reset mid-reply and a truncated reply", function()
    for _, f in ipairs { { mode = "status", status = 500 }, { mode = "reset" }, { mode = "truncate" } } do
      sim.reset(); sim.clear_requests()
      f.pathPrefix = "/api/v3/meter/1"
      sim.fault(f)
      local r = T.expect(0, run(probe([[ecap.request("GET", "/api/v3/meter/1")]])))
      assert.are.equal("ok\n", r.stdout, f.mode)
      assert.are.equal(2, count("GET", "/api/v3/meter/1"), f.mode)
    end
  end)

  it("a mutating call cut mid-reply is not sent again: unknown", function()
    for _, mode in ipairs { "reset", "truncate" } do
      sim.reset(); sim.clear_requests()
      sim.fault({ mode = mode, pathPrefix = REL_PATH })
      local r = run(probe(RELEASE))
      T.expect(6, r)
      assert.are.equal("err\tnetwork\tunknown\t1\tnil\t-\n", r.stdout, mode)
      assert.are.equal(1, count("POST", REL_PATH), mode)
    end
  end)

  it("a hang past --http-timeout: a GET is read again, a mutating call is not", function()
    sim.fault({ mode = "hang", seconds = 5, pathPrefix = "/api/v3/meter/1" })
    local r = T.expect(0, run(probe([[ecap.request("GET", "/api/v3/meter/1")]]), { "--http-timeout", "1" }))
    assert.are.equal("ok\n", r.stdout)
    sim.fault({ mode = "hang", seconds = 5, pathPrefix = REL_PATH })
    r = run(probe(RELEASE), { "--http-timeout", "1" })
    T.expect(6, r)
    assert.are.equal("err\ttimeout\tunknown\t1\tnil\t-\n", r.stdout)
  end)

  it("a refused connection is retried for any method: outcome not sent, attempts counted", function()
    local r = T.run_script(probe(RELEASE), { "--retries", "2", "--base-url", "http://127.0.0.1:9" })
    T.expect(0, r)
    assert.are.equal("err\tnetwork\tnot sent\t3\tnil\t-\n", r.stdout)
  end)

  it("--retries 0 sends once", function()
    sim.fault({ count = 1, mode = "status", status = 503, pathPrefix = "/api/v3/meter/1" })
    local r = T.expect(0, run(probe([[ecap.request("GET", "/api/v3/meter/1")]]), { "--retries", "0" }))
    assert.are.equal("err\thttp\tfailed\t1\t503\t-\n", r.stdout)
  end)

  it("honours a Retry-After given as an HTTP date", function()
    local when = os.date("!%a, %d %b %Y %H:%M:%S GMT", os.time() + 2)
    sim.fault({ mode = "body", status = 503, body = "{}", headers = { ["Retry-After"] = when },
                pathPrefix = "/api/v3/meter/1" })
    local t0 = os.time()
    local r = T.expect(0, run(probe([[ecap.request("GET", "/api/v3/meter/1")]])))
    assert.are.equal("ok\n", r.stdout)
    assert.is_true(os.time() - t0 >= 1, "waited for the date")
  end)

  it("a Retry-After beyond what is left of --retry-budget ends the retries at once", function()
    sim.fault({ mode = "status", status = 429, retryAfter = 30, pathPrefix = "/api/v3/meter/1" })
    local t0 = os.time()
    local r = T.expect(0, run(probe([[ecap.request("GET", "/api/v3/meter/1")]]), { "--retry-budget", "5" }))
    assert.are.equal("err\thttp\tfailed\t1\t429\t30.0\n", r.stdout)
    assert.is_true(os.time() - t0 < 5)
  end)

  it("--timeout interrupts a back-off at once (exit 4)", function()
    sim.fault({ mode = "status", status = 503, retryAfter = 20, pathPrefix = "/api/v3/meter/1" })
    local t0 = os.time()
    local r = run([[ecap.request("GET", "/api/v3/meter/1")]], { "--timeout", "1" })
    T.expect(4, r)
    assert.is_true(os.time() - t0 < 10)
  end)

  it("other parallel items go on while one backs off", function()
    sim.fault({ count = 1, mode = "status", status = 503, retryAfter = 2, pathPrefix = "/api/v3/meter/1" })
    local r = T.expect(0, run([[
      local order = {}
      ecap.parallel({ 1, 2, 3 }, function(id)
        ecap.request("GET", "/api/v3/meter/" .. id)
        order[#order + 1] = id
      end, { concurrency = 3 })
      print(table.concat(order, ","))]], { "-q" }))
    -- items 2 and 3 finish (in either order) while item 1 waits out its Retry-After
    assert.matches("^[23],[23],1\n$", r.stdout)
  end)
end)

describe("replies", function()
  it("a 2xx HTML page is an http error, not a success, and is not retried", function()
    sim.fault({ mode = "body", status = 200, body = "<html>sign in</html>",
                headers = { ["Content-Type"] = "text/html; charset=utf-8" }, pathPrefix = REL_PATH })
    local r = T.expect(0, run(probe(RELEASE) .. "print(e.message)"))
    assert.matches("^err\thttp\tfailed\t1\t200\t%-\n", r.stdout)
    assert.matches("HTML page, not the API", r.stdout, 1, true)
    assert.are.equal(1, count("POST", REL_PATH))
  end)

  it("ECI-Deprecated is warned once per operation", function()
    sim.fault({ count = 2, mode = "body", status = 200, body = "{}",
                headers = { ["Content-Type"] = "application/json", ["ECI-Deprecated"] = "use v202510" },
                pathPrefix = "/api/v3/meter/1" })
    local r = T.expect(0, run([[
      ecap.request("GET", "/api/v3/meter/1")
      ecap.request("GET", "/api/v3/meter/1")]]))
    local warnings = select(2, r.stderr:gsub("deprecated: use v202510", ""))
    assert.are.equal(1, warnings, r.stderr)
  end)
end)

describe("the trace", function()
  it("-v: a line per request and reply; -vv: headers and bodies, the key redacted", function()
    local key = "trace-secret-key-4242"
    local quiet_sim = T.start_sim({ "--quiet", "--api-key", key })
    local r = T.expect(0, T.run_script(RELEASE, { "-vv", "-q", "--base-url", quiet_sim.url },
      { env = { ECAP_API_KEY = key } }))
    quiet_sim.stop()
    assert.matches("TRACE > POST " .. quiet_sim.url .. REL_PATH .. " (attempt 1)", r.stderr, 1, true)
    assert.matches("TRACE < 200 POST ", r.stderr, 1, true)
    assert.matches("ECI-ApiKey: [redacted]", r.stderr, 1, true)
    assert.matches('"accountNumber":"200173450001"', r.stderr, 1, true)
    assert.is_nil((r.stdout .. r.stderr):find(key, 1, true))
    local v = T.expect(0, run([[ecap.request("GET", "/api/v3/meter/1")]], { "-v" }))
    assert.matches("TRACE > GET ", v.stderr, 1, true)
    assert.is_nil(v.stderr:find("[redacted]", 1, true)) -- no headers at -v
  end)
end)
