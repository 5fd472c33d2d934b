-- --log-format json for run and repl: every stderr line one JSON object (time with ms, level,
-- msg, run_id when known, the trace's fields), the key never in it; text stays the default; a
-- bad value is a usage error, a bad config value a configuration error.
-- Run: ECAPHOST=build/ecaphost ECAP_SRC=. lua5.4 /usr/bin/busted spec/lua/log_format_spec.lua
local T = require "spec.lua.support"

local KEY = "log-format-spec-key-0451"
local sim
setup(function() sim = T.start_sim({ "--quiet", "--api-key", KEY }) end)
teardown(function() if sim then sim.stop() end end)
before_each(function() sim.reset(); sim.clear_requests() end)

local TIME = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$"

-- Every line of stderr decoded (a line that is not JSON fails the test, naming it).
local function objects(stderr)
  local out = {}
  for line in stderr:gmatch("[^\n]+") do
    local ok, o = pcall(T.json, line)
    assert(ok and type(o) == "table", "not a JSON object: " .. line .. "\n--- stderr:\n" .. stderr)
    assert.matches(TIME, o.time)
    assert.is_string(o.level, line)
    assert.is_string(o.msg, line)
    out[#out + 1] = o
  end
  return out
end

local function find(objs, pred)
  for _, o in ipairs(objs) do if pred(o) then return o end end
end

local LOGS = [[
log.info("info %d", 1)
log.warn("warn line")
log.error("error\nwith \27[31m controls")
local m = ecap.request("GET", "/api/v3/meter/1")
local r = ecap.meters.apply_release(7, { accountNumber = "200173450001", nameOnBill = "A", serviceAddress = "B" })
print("meter", m.meterId)
]]

describe("run --log-format json", function()
  it("writes every stderr line as a JSON object: log.*, the banner, retries, the -vv trace; never the key", function()
    local j = T.tmpname(".jsonl")
    sim.fault({ count = 1, mode = "status", status = 503, pathPrefix = "/api/v3/meter/1" })
    local r = T.expect(0, T.run_script(LOGS, { "--log-format", "json", "-vv", "--journal", j },
      { url = sim.url, env = { ECAP_API_KEY = KEY } }))
    assert.matches("meter\t1\n", r.stdout, 1, true)
    assert.is_nil(r.stderr:find(KEY, 1, true))
    local objs = objects(r.stderr)
    assert.is_truthy(find(objs, function(o) return o.level == "INFO" and o.msg:find("^talking to") end), r.stderr)
    assert.is_truthy(find(objs, function(o) return o.level == "INFO" and o.msg == "info 1" end), r.stderr)
    assert.is_truthy(find(objs, function(o) return o.level == "WARN" and o.msg == "warn line" end), r.stderr)
    -- escaped as in a text line: one line, no terminal control
    assert.is_truthy(find(objs, function(o) return o.level == "ERROR" and o.msg == "error\\nwith \\x1b[31m controls" end),
      r.stderr)
    -- the retry after the 503 is a host INFO line
    assert.is_truthy(find(objs, function(o) return o.level == "INFO" and o.msg:find("503") end), r.stderr)
    -- the trace: a request and a reply line with their fields; -vv's key header redacted
    local req = find(objs, function(o) return o.level == "TRACE" and o.method == "POST" and o.attempt == 1 end)
    assert.is_truthy(req, r.stderr)
    assert.are.equal(sim.url .. "/api/v202203/utilityPlatform/meter/7/release", req.url)
    local reply = find(objs, function(o) return o.level == "TRACE" and o.status == 200 and o.method == "GET" end)
    assert.is_truthy(reply, r.stderr)
    assert.are.equal(2, reply.attempt) -- after the 503
    assert.is_number(reply.bytes)
    assert.is_number(reply.ms)
    assert.is_truthy(find(objs, function(o) return o.msg == ">   ECI-ApiKey: [redacted]" end), r.stderr)
    -- run_id: the journal's, once it is open
    local run_id = T.json(T.read(j):match("[^\n]+")).run
    assert.are.equal(run_id, find(objs, function(o) return o.msg == "info 1" end).run_id)
  end)

  it("reports a script error, the dry-run summary and a limit as JSON lines", function()
    local r = T.expect(1, T.run_script([[error("boom")]], { "--log-format", "json" }, { url = sim.url, quiet = true }))
    local e = objects(r.stderr)[1]
    assert.are.equal("ERROR", e.level)
    assert.matches(": boom\\nstack traceback:", e.msg, 1, true)

    r = T.expect(0, T.run_script(LOGS, { "--log-format", "json", "--dry-run" },
      { url = sim.url, quiet = true, env = { ECAP_API_KEY = KEY } }))
    assert.is_truthy(find(objects(r.stderr), function(o)
      return o.msg == "dry-run: would send 1 call (meters.apply_release: 1)" end), r.stderr)

    r = T.expect(4, T.run_script([[while true do end]], { "--log-format", "json", "--timeout", "0.2" },
      { url = sim.url, quiet = true }))
    assert.are.equal("ERROR", objects(r.stderr)[1].level)
  end)

  it("adds job and run_id from --log-job and --log-run-id (the scheduler's)", function()
    local r = T.expect(0, T.run_script([[log.warn("w")]],
      { "--log-format", "json", "--log-job", "nightly", "--log-run-id", "nightly/20261202T020000Z" },
      { url = sim.url, quiet = true }))
    local o = objects(r.stderr)[1]
    assert.are.same({ "nightly", "nightly/20261202T020000Z" }, { o.job, o.run_id })
    -- bytes that are not UTF-8 are escaped, as in the message: the line stays JSON
    r = T.expect(0, T.run_script([[log.warn("w")]], { "--log-format", "json", "--log-job", "a\xffb" },
      { url = sim.url, quiet = true }))
    assert.are.equal("a\\xffb", objects(r.stderr)[1].job)
  end)

  it("is text by default, and from the config file's log_format = json", function()
    local r = T.expect(0, T.run_script([[log.warn("w")]], {}, { url = sim.url, quiet = true }))
    assert.matches("^%d+%-%d+%-%d+T%d+:%d+:%d+Z WARN  w\n$", r.stderr)
    local cfg = T.write(T.tmpname(".conf"), "log_format = json\n")
    r = T.expect(0, T.run_script([[log.warn("w")]], {}, { url = sim.url, quiet = true, env = { ECAP_CONFIG = cfg } }))
    assert.are.equal("w", objects(r.stderr)[1].msg)
    -- the flag wins over the file
    r = T.expect(0, T.run_script([[log.warn("w")]], { "--log-format", "text" },
      { url = sim.url, quiet = true, env = { ECAP_CONFIG = cfg } }))
    assert.matches("Z WARN  w\n$", r.stderr)
  end)

  it("refuses another value: exit 2 for the flag, 3 for the config file", function()
    local r = T.expect(2, T.run_script([[print(1)]], { "--log-format", "xml" }, { url = sim.url }))
    assert.matches("--log-format needs text or json (got 'xml')", r.stderr, 1, true)
    r = T.expect(2, T.run({ "repl", "--log-format", "xml" }, { stdin = "print(1)\n" }))
    assert.matches("--log-format needs text or json (got 'xml')", r.stderr, 1, true)
    local cfg = T.write(T.tmpname(".conf"), "log_format = xml\n")
    r = T.expect(3, T.run_script([[print(1)]], {}, { url = sim.url, env = { ECAP_CONFIG = cfg } }))
    assert.matches("log_format must be text or json (got 'xml')", r.stderr, 1, true)
  end)
end)

describe("repl --log-format json", function()
  it("writes every stderr line of a piped session as JSON, the -v trace and statement errors included", function()
    local r = T.expect(1, T.run({ "repl", "--base-url", sim.url, "--log-format", "json", "-v" }, {
      env = { ECAP_API_KEY = KEY },
      stdin = 'log.info("from the repl")\nx = ecap.request("GET", "/api/v3/meter/2")\nerror("stmt failed")\nx.meterId\n',
    }))
    assert.matches("2\n", r.stdout, 1, true)
    assert.is_nil(r.stderr:find(KEY, 1, true))
    local objs = objects(r.stderr)
    assert.is_truthy(find(objs, function(o) return o.msg == "from the repl" end), r.stderr)
    assert.is_truthy(find(objs, function(o) return o.level == "TRACE" and o.status == 200 end), r.stderr)
    assert.is_truthy(find(objs, function(o) return o.level == "ERROR" and o.msg:find("stmt failed", 1, true) end),
      r.stderr)
  end)
end)
