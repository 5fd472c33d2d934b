-- The safety layer end to end: --dry-run, the call journal, ecaphost journal, --resume (also
-- after a kill -9 in the middle of a journaled ecap.parallel run), and the key in none of it.
-- Run: ECAPHOST=build/ecaphost ECAP_SRC=. lua5.4 /usr/bin/busted spec/lua/safety_spec.lua
local T = require "spec.lua.support"
local cjson = require "cjson"

local KEY = "safety-spec-secret-5150"
local sim
setup(function() sim = T.start_sim({ "--quiet", "--api-key", KEY }) end)
teardown(function() if sim then sim.stop() end end)
before_each(function() sim.reset(); sim.clear_requests() end)

local function run(code, host_opts, args)
  return T.run_script(code, host_opts or {}, { url = sim.url, quiet = true, args = args,
                                               env = { ECAP_API_KEY = KEY }, kill_after = 120 })
end

local function lines(path)
  local out = {}
  for l in (T.read(path) or ""):gmatch("[^\n]+") do out[#out + 1] = cjson.decode(l) end
  return out
end

-- The calls that change something: not GETs, nor the count (a POST that only reads).
local function posts() return (sim.writes()) end

-- Applies releases to meters 7..10; the account number makes each call distinct.
local RELEASES = [[
local n = tonumber(arg[1] or "4")
local items = {}
for i = 1, n do items[i] = i end
local res, errs = ecap.parallel(items, function(i)
  local r, meta = ecap.meters.apply_release(7 + (i % 4), { accountNumber = string.format("2001734%05d", i),
    nameOnBill = "N" .. i, serviceAddress = "A" .. i })
  return meta.skipped and "skipped" or (ecap.is_dry_run(r) and "dry" or "sent")
end, { concurrency = tonumber(arg[2] or "4") })
local count = {}
for i = 1, n do
  local k = res[i] or (errs[i] and errs[i].kind or "?")
  count[k] = (count[k] or 0) + 1
end
for _, k in ipairs { "sent", "skipped", "dry", "validation", "http", "network" } do
  if count[k] then print(k, count[k]) end
end
]]

describe("--dry-run", function()
  it("sends GETs, prints mutating calls instead of sending them, and says what it would send", function()
    local r = T.expect(0, run([[
      local m = ecap.request("GET", "/api/v3/meter/1")
      local t = ecap.cost_avoidance.bulk_update({ filters = { { fieldId = 1, operator = "equals", value = "6" } },
        numBaselineMonths = 24 })
      print("dry", ecap.is_dry_run(t), t.operation, t.method, t.path, t.body.numBaselineMonths)
      print("wait", ecap.cost_avoidance.wait(t) == t)
      print("config", ecap.config().dry_run)
      print("meter", m.meterId)]], { "--dry-run" }))
    assert.matches("DRY-RUN cost_avoidance.bulk_update PUT " .. sim.url .. "/api/v3/savings/settings\n{\n",
      r.stdout, 1, true)
    assert.matches('  "numBaselineMonths": 24,\n', r.stdout, 1, true)
    assert.matches("dry\ttrue\tcost_avoidance.bulk_update\tPUT\t/api/v3/savings/settings\t24\n", r.stdout, 1, true)
    assert.matches("wait\ttrue\nconfig\ttrue\nmeter\t1\n", r.stdout, 1, true)
    assert.matches("dry-run: would send 1 call (cost_avoidance.bulk_update: 1)", r.stderr, 1, true)
    assert.matches("\npreview: would update %d+ meters?\n", r.stdout)
    assert.are.equal(0, posts())
    assert.are.equal(2, #sim.requests()) -- the GET, and the count of the bulk update's preview
  end)

  it("a destructive call is previewed, never sent, without consent", function()
    local r = T.expect(0, run([[
      local t = ecap.cost_avoidance.bulk_update({ filters = {}, numBaselineMonths = 24 }, { confirm = "all meters" })
      print(ecap.is_dry_run(t))]], { "--dry-run" }))
    assert.are.equal("true\n", r.stdout:match("[^\n]*\n$"))
    assert.are.equal(0, posts())
  end)
end)

describe("the call journal", function()
  it("records intent and outcome of every mutating call, 0600, never the key", function()
    local j = T.tmpname(".jsonl")
    sim.fault({ count = 1, mode = "status", status = 500, pathPrefix = "/api/v202203/utilityPlatform/meter/9" })
    local r = run(RELEASES, { "--journal", j }, { "4", "1" })
    T.expect(6, r) -- one release got a 500: outcome unknown
    local recs = lines(j)
    assert.are.equal("run", recs[1].type)
    assert.are.equal(sim.url, recs[1].base_url)
    local intents, outcomes, unknown = 0, 0, 0
    for _, rec in ipairs(recs) do
      if rec.type == "intent" then intents = intents + 1 end
      if rec.type == "outcome" then
        outcomes = outcomes + 1
        if rec.outcome == "unknown" then unknown = unknown + 1 end
      end
    end
    assert.are.same({ 4, 4, 1 }, { intents, outcomes, unknown })
    local mode = T.sh("stat -c %a " .. T.q(j)).stdout
    assert.are.equal("600\n", mode)
    assert.is_nil(T.read(j):find(KEY, 1, true))
    local s = T.run({ "journal", j })
    T.expect(1, s) -- a call of unknown fate: monitoring alerts
    assert.matches("meters.apply_release", s.stdout, 1, true)
    assert.matches("/api/v202203/utilityPlatform/meter/9/release", s.stdout, 1, true)
  end)

  it("reopens the journal on SIGHUP after logrotate moved it", function()
    local j = T.tmpname(".jsonl")
    local script = T.script([[
      local body = { accountNumber = "200173450001", nameOnBill = "A", serviceAddress = "B" }
      ecap.meters.apply_release(7, body)
      ecap.sleep(1.5)
      ecap.meters.apply_release(8, body)]])
    local pidf = T.tmpname(".pid")
    T.sh(string.format("{ ECAP_API_KEY=%s ECAP_CONFIG=/dev/null %s run -q --base-url %s --journal %s %s >/dev/null 2>&1 & echo $! > %s; }",
      T.q(KEY), T.q(T.bin), T.q(sim.url), T.q(j), T.q(script), T.q(pidf)))
    local pid = T.read(pidf):match("%d+")
    os.execute("sleep 0.7")
    assert(os.rename(j, j .. ".1"))
    os.execute("kill -HUP " .. pid)
    os.execute("sleep 2")
    local old, new = lines(j .. ".1"), lines(j)
    assert.are.equal(3, #old) -- run, intent, outcome of the first call
    assert.are.equal(3, #new) -- the run line again, then the second call's intent and outcome
    assert.are.equal("run", new[1].type)
    assert.are.equal(old[1].run, new[1].run)
    assert.are.equal("/api/v202203/utilityPlatform/meter/8/release", new[2].path)
    T.expect(0, T.run({ "journal", j })) -- the rotated-to file reads on its own
  end)

  it("--resume sends only what the journal does not have as done", function()
    local j = T.tmpname(".jsonl")
    local r = T.expect(0, run(RELEASES, { "--journal", j }, { "6" }))
    assert.matches("sent\t6", r.stdout, 1, true)
    sim.clear_requests()
    r = T.expect(0, run(RELEASES, { "--resume", j }, { "8" }))
    assert.matches("sent\t2\nskipped\t6\n", r.stdout, 1, true)
    assert.are.equal(2, posts())
    assert.matches("resume: 6 calls skipped", r.stderr, 1, true)
  end)

  it("--resume refuses a call of unknown outcome unless --resend-unknown, and another host", function()
    local j = T.tmpname(".jsonl")
    sim.fault({ count = 1, mode = "reset", pathPrefix = "/api/v202203/utilityPlatform/meter/8" })
    T.expect(6, run(RELEASES, { "--journal", j }, { "4", "1" }))
    sim.clear_requests()
    local r = run(RELEASES, { "--resume", j }, { "4", "1" })
    T.expect(0, r)
    assert.matches("skipped\t3\nvalidation\t1\n", r.stdout, 1, true)
    assert.are.equal(0, posts())
    r = T.expect(0, run(RELEASES, { "--resume", j, "--resend-unknown" }, { "4", "1" }))
    assert.matches("sent\t1\nskipped\t3\n", r.stdout, 1, true)
    local other = T.run_script("print(1)", { "--resume", j, "--base-url", "http://127.0.0.1:9" },
      { quiet = true, env = { ECAP_API_KEY = KEY } })
    T.expect(3, other)
  end)

  it("after a kill -9 mid-run, --resume applies every release once except the unknown ones", function()
    local j = T.tmpname(".jsonl")
    sim.configure({ latencyMs = 30 })
    -- the journaled run in the background, killed at a moment when calls are in flight
    local script = T.script(RELEASES)
    local pidf = T.tmpname(".pid")
    T.sh(string.format("{ ECAP_API_KEY=%s ECAP_CONFIG=/dev/null %s run -q --base-url %s --journal %s %s 300 16 >/dev/null 2>&1 & echo $! > %s; }",
      T.q(KEY), T.q(T.bin), T.q(sim.url), T.q(j), T.q(script), T.q(pidf)))
    local pid = T.read(pidf):match("%d+")
    os.execute("sleep 0.8")
    os.execute("kill -9 " .. pid)
    os.execute("sleep 0.2")
    sim.configure({ latencyMs = 0 })
    -- what the journal says: some ok, some unknown (intents without outcomes)
    local ok, unknown = {}, {}
    local intents = {}
    for _, rec in ipairs(lines(j)) do
      if rec.type == "intent" then intents[rec.seq] = rec.body.accountNumber end
      if rec.type == "outcome" and rec.outcome == "ok" then ok[intents[rec.seq]] = true end
    end
    for seq, acct in pairs(intents) do if not ok[acct] then unknown[acct] = true end end
    assert.is_true(next(ok) ~= nil, "some releases were done before the kill")
    local r = run(RELEASES, { "--resume", j }, { "300", "16" })
    T.expect(0, r)
    -- every release reached the server once, or (unknown in the journal) at most once
    local seen = {}
    for _, q in ipairs(sim.requests()) do
      if q.method == "POST" then
        local acct = cjson.decode(q.body).accountNumber
        seen[acct] = (seen[acct] or 0) + 1
      end
    end
    for i = 1, 300 do
      local acct = string.format("2001734%05d", i)
      local n = seen[acct] or 0
      if unknown[acct] then
        assert.is_true(n <= 1, acct .. " sent twice")
      else
        assert.are.equal(1, n, acct)
      end
    end
  end)
end)

describe("the key", function()
  it("is in no output of a full run: stdout, stderr, -vv trace, journal, dry-run, error tables", function()
    local j = T.tmpname(".jsonl")
    sim.fault({ count = 1, mode = "status", status = 500, pathPrefix = "/api/v202203/utilityPlatform/meter/9" })
    local script = [[
      local function show(e) print(tostring(e), e and e.kind, json.encode(e and e.headers or {})) end
      local ok, e = pcall(ecap.request, "GET", "/api/v3/meter/999999") show(e)
      ok, e = pcall(ecap.meters.apply_release, 9, { accountNumber = "200173450001", nameOnBill = "A", serviceAddress = "B" }) show(e)
      local r, meta = ecap.request("GET", "/api/v3/meter/1") print(json.encode(meta))
      print(json.encode(ecap.config()))
      log.info("done %s", ecap.inspect(meta))]]
    local outputs = {}
    local r = run(script, { "-vv", "--journal", j })
    outputs[#outputs + 1] = r.stdout .. r.stderr
    outputs[#outputs + 1] = T.read(j)
    r = run(script .. "\nprint(json.encode((ecap.meters.apply_release(7, { accountNumber = '200173450001', nameOnBill = 'A', serviceAddress = 'B' }))))",
      { "-vv", "--dry-run" })
    outputs[#outputs + 1] = r.stdout .. r.stderr
    assert.matches("DRY-RUN meters.apply_release", outputs[3], 1, true)
    assert.matches("ECI-ApiKey: [redacted]", outputs[1], 1, true)
    for i, text in ipairs(outputs) do
      assert.is_nil(text:find(KEY, 1, true), "output " .. i .. " holds the key")
    end
  end)
end)
