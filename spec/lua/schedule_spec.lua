-- `ecaphost schedule` through the real binary against the real simulator: every = "1s" jobs
-- run on time, an overlapping tick is skipped, a failing script and a timeout are recorded and
-- the scheduler goes on, on_failure gets the record in arg[1], SIGTERM ends it cleanly with the
-- run log complete, SIGHUP reloads (a broken file keeps the old schedule), a second instance is
-- refused with 75, --check finds a job script's syntax error, and no run's environment holds
-- the key.
local T = require "spec.lua.support"

local KEY = "sched-key" -- the only key this file's simulator accepts
local sim, keyfile
local started = {} -- schedulers started, killed in teardown if a test left one behind

local function sleep(s) os.execute("sleep " .. s) end

-- A fresh directory with files { ["jobs.lua"] = text, ["jobs/x.lua"] = text, ... }.
local function project(files)
  local dir = T.tmpname(".d")
  assert(os.execute("mkdir -p " .. T.q(dir .. "/jobs") .. " " .. T.q(dir .. "/alerts")))
  for name, text in pairs(files) do T.write(dir .. "/" .. name, text) end
  return dir
end

-- The environment of every scheduler here: its own state directory, no config, no key in the
-- environment unless a test gives one.
local function env_for(dir, extra)
  return T.merge({ XDG_STATE_HOME = dir .. "/state", ECAP_CONFIG = "/dev/null", ECAP_API_KEY = false,
                   STATE_DIRECTORY = false }, extra)
end

-- `ecaphost schedule --base-url SIM --api-key-file KEY <args...>` (host options unless
-- opts.no_key), run to its end.
local function schedule(dir, args, opts)
  opts = opts or {}
  local full = { "schedule", "--base-url", sim.url }
  if not opts.no_key then
    full[#full + 1] = "--api-key-file"
    full[#full + 1] = keyfile
  end
  for _, a in ipairs(args) do full[#full + 1] = a end
  return T.run(full, { env = env_for(dir, opts.env), kill_after = 30, dir = dir })
end

-- The same in the background: returns { pid=, wait=function(seconds) -> exit code or nil,
-- signal=function(name), err=function() -> stderr so far }.
local function start(dir, args, opts)
  opts = opts or {}
  local env = env_for(dir, opts.env)
  local parts, sets = { "env" }, {}
  for k, v in pairs(env) do
    if v then sets[#sets + 1] = k .. "=" .. T.q(v) else parts[#parts + 1] = "-u " .. k end
  end
  for _, s in ipairs(sets) do parts[#parts + 1] = s end
  parts[#parts + 1] = T.q(T.bin:sub(1, 1) == "/" and T.bin or os.getenv("PWD") .. "/" .. T.bin)
  for _, a in ipairs { "schedule", "--base-url", sim.url } do parts[#parts + 1] = T.q(a) end
  if not opts.no_key then parts[#parts + 1] = "--api-key-file " .. T.q(keyfile) end
  for _, a in ipairs(args) do parts[#parts + 1] = T.q(a) end
  local pidf, rcf, errf = dir .. "/sched.pid", dir .. "/sched.rc", dir .. "/sched.err"
  local cmd = string.format("(cd %s && sh -c 'echo $$ >\"$0\"; exec \"$@\"' %s %s >%s 2>%s </dev/null; echo $? >%s) &",
    T.q(dir), T.q(pidf), table.concat(parts, " "), T.q(dir .. "/sched.out"), T.q(errf), T.q(rcf))
  assert(os.execute(cmd))
  local h = {}
  for _ = 1, 50 do
    h.pid = tonumber(T.read(pidf) or "")
    if h.pid then break end
    sleep(0.1)
  end
  assert(h.pid, "the scheduler did not start")
  started[#started + 1] = h.pid
  function h.signal(name) os.execute("kill -" .. name .. " " .. h.pid) end
  function h.err() return T.read(errf) or "" end
  function h.wait(seconds)
    for _ = 1, seconds * 10 do
      local rc = tonumber(T.read(rcf) or "")
      if rc then return rc end
      sleep(0.1)
    end
  end
  return h
end

local function records(dir)
  local out = {}
  for line in (T.read(dir .. "/state/ecaphost/runs.jsonl") or ""):gmatch("[^\n]+") do
    out[#out + 1] = T.json(line)
  end
  return out
end

local function of_job(recs, job, outcome)
  local out = {}
  for _, r in ipairs(recs) do
    if r.job == job and (not outcome or r.outcome == outcome) then out[#out + 1] = r end
  end
  return out
end

-- Waits (up to `seconds`) until pred(records) is true; returns the records.
local function wait_for(dir, seconds, pred)
  for _ = 1, seconds * 10 do
    local recs = records(dir)
    if pred(recs) then return recs end
    sleep(0.1)
  end
  return records(dir)
end

local function epoch(iso)
  local y, mo, d, h, mi, s = iso:match("^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)Z$")
  -- days from civil (the spec's own arithmetic, independent of the host's)
  y, mo = tonumber(y), tonumber(mo)
  if mo <= 2 then y = y - 1 end
  local era = y // 400
  local yoe = y - era * 400
  local doy = (153 * (mo + (mo > 2 and -3 or 9)) + 2) // 5 + tonumber(d) - 1
  local days = era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468
  return days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(s)
end

local OK_JOB = [[
local _, meta = ecap.request("GET", "/api/v3/meter", { query = { pageSize = 1 } })
print("status", meta.status, ...)
]]
local ALERT = [[
local rec = json.decode(arg[1])
fs.write("alerts/" .. rec.job .. "-" .. rec.pid .. ".json", arg[1])
]]

setup(function()
  sim = T.start_sim({ "--quiet", "--api-key", KEY })
  keyfile = T.write(T.tmpname(".key"), KEY .. "\n")
  assert(os.execute("chmod 600 " .. T.q(keyfile)))
end)

teardown(function()
  for _, pid in ipairs(started) do os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
  if sim then sim.stop() end
end)

describe("schedule: runs", function()
  local dir, h, rc, recs

  -- One scheduler for the whole block (the suite must stay short): four jobs for ~4.5 s,
  -- then SIGTERM while `slow` runs; it gets its --grace and the scheduler exits 0.
  setup(function()
    dir = project {
      ["jobs.lua"] = [[
return {
  max_parallel = 4,
  jobs = {
    { name = "ok", every = "1s", script = "jobs/ok.lua", args = { "a b", 7 } },
    { name = "slow", every = "1s", script = "jobs/slow.lua" },
    { name = "crash", every = "1s", script = "jobs/crash.lua",
      on_failure = { script = "jobs/alert.lua", allow_write = "alerts" } },
    { name = "hang", every = "1s", script = "jobs/hang.lua", timeout = 1 },
  },
}
]],
      ["jobs/ok.lua"] = OK_JOB,
      ["jobs/slow.lua"] = [[ecap.sleep(2.2) print("slow done")]],
      ["jobs/crash.lua"] = [[error("boom")]],
      ["jobs/hang.lua"] = [[while true do end]],
      ["jobs/alert.lua"] = ALERT,
    }
    h = start(dir, { "--grace", "10", "jobs.lua" })
    sleep(4.5)
    h.signal("TERM")
    rc = h.wait(20)
    recs = records(dir)
  end)

  it("stops cleanly on SIGTERM (exit 0) with every started run in the run log", function()
    assert.are.equal(0, rc, h.err())
    assert.matches("scheduler stopped", h.err(), 1, true)
    local pids = {}
    for _, r in ipairs(recs) do if r.pid then pids[r.pid] = r end end
    local n = 0
    for pid in h.err():gmatch("run started %(pid (%d+)") do
      n = n + 1
      assert.is_truthy(pids[tonumber(pid)], "no record of run " .. pid .. "\n" .. h.err())
    end
    assert.is_true(n >= 8, h.err())
    -- slow was running at SIGTERM: it finished within the grace, and is recorded ok
    assert.is_true(#of_job(recs, "slow", "ok") >= 1, h.err())
  end)

  it("runs an every = 1s job once a second, on its scheduled times, with its output kept", function()
    -- Every tick is recorded once, run or skipped (a slow machine may still be running the
    -- previous one; a scheduler starved of CPU for over a second runs a missed tick once):
    -- scheduled seconds increasing, none started early, none far late.
    local ticks, ok = of_job(recs, "ok"), of_job(recs, "ok", "ok")
    assert.is_true(#ticks >= 3 and #ok >= 2, h.err())
    for i, r in ipairs(ticks) do
      if i > 1 then assert.is_true(epoch(r.scheduled) > epoch(ticks[i - 1].scheduled)) end
    end
    for _, r in ipairs(ok) do
      assert.are.equal(0, r.exit_code)
      assert.is_true(epoch(r.start) >= epoch(r.scheduled))
      assert.is_true(epoch(r.start) - epoch(r.scheduled) <= 5, r.start .. " for " .. r.scheduled)
      assert.are.equal("status\t200\ta b\t7", r.output_tail[#r.output_tail])
      assert.matches("status\t200\ta b\t7", T.read(r.output), 1, true)
      local prefix = dir .. "/state/ecaphost/output/ok/"
      assert.are.equal(prefix, r.output:sub(1, #prefix))
    end
  end)

  it("skips the tick of a job that is still running, and records it", function()
    local skipped = of_job(recs, "slow", "skipped")
    assert.is_true(#skipped >= 1, h.err())
    local null = T.json("[null]")[1]
    assert.are.equal(null, skipped[1].start)
    assert.are.equal(null, skipped[1].exit_code)
    assert.matches("tick skipped (the previous run is still running)", h.err(), 1, true)
  end)

  it("records a failing script (error, 1) and a timeout (timeout, 4), and goes on", function()
    local crash = of_job(recs, "crash", "error")
    assert.is_true(#crash >= 2, h.err())
    assert.are.equal(1, crash[1].exit_code)
    assert.matches("boom", table.concat(crash[1].output_tail, "\n"), 1, true)
    local hang = of_job(recs, "hang", "timeout")
    assert.is_true(#hang >= 1, h.err())
    assert.are.equal(4, hang[1].exit_code)
    -- the scheduler went on: ok ran after the first failure
    local last_ok = of_job(recs, "ok")
    assert.is_true(epoch(last_ok[#last_ok].start) > epoch(crash[1]["end"]))
  end)

  it("runs on_failure with the run-log record in arg[1], with its own allow_write", function()
    local crash = of_job(recs, "crash", "error")
    local alert = T.read(string.format("%s/alerts/crash-%d.json", dir, crash[1].pid))
    assert.is_truthy(alert, h.err())
    local rec = T.json(alert)
    assert.are.equal("crash", rec.job)
    assert.are.equal("error", rec.outcome)
    assert.are.equal(crash[1].start, rec.start)
    assert.matches("on_failure ended: ok", h.err(), 1, true)
  end)

  it("--status prints each job's last outcome, and exits 1 when one failed", function()
    local r = T.expect(1, schedule(dir, { "--status", "jobs.lua" }))
    assert.matches("crash%s+error", r.stdout)
    assert.matches("ok%s+ok%s+%S+%s+next %d+%-%d+%-%d+T%d+:%d+:%d+Z %(every 1s%)", r.stdout)
  end)
end)

describe("schedule: limits", function()
  it("runs at most max_parallel jobs at once; a due job waits for a slot", function()
    local dir = project {
      ["jobs.lua"] = [[return { max_parallel = 1, jobs = {
        { name = "a", every = "1s", script = "jobs/a.lua" },
        { name = "b", every = "1s", script = "jobs/b.lua" } } }]],
      ["jobs/a.lua"] = [[ecap.sleep(0.6)]],
      ["jobs/b.lua"] = [[ecap.sleep(0.6)]],
    }
    local h = start(dir, { "jobs.lua" })
    local recs = wait_for(dir, 8, function(r) return #of_job(r, "a") >= 2 and #of_job(r, "b") >= 2 end)
    h.signal("TERM")
    assert.are.equal(0, h.wait(15), h.err())
    assert.is_true(#of_job(recs, "a") >= 2 and #of_job(recs, "b") >= 2, h.err())
    local running, most = 0, 0
    for line in h.err():gmatch("[^\n]+") do
      if line:find(": run started", 1, true) then running = running + 1 end
      if line:find(": run ended", 1, true) then running = running - 1 end
      most = math.max(most, running)
    end
    assert.are.equal(1, most, h.err())
  end)

  it("stops runs still going when --grace is over: recorded killed (143), exit 0", function()
    local dir = project {
      ["jobs.lua"] = [[return { { name = "long", every = "1s", script = "jobs/long.lua" } }]],
      ["jobs/long.lua"] = [[ecap.sleep(60)]],
    }
    local h = start(dir, { "--grace", "0.5", "jobs.lua" })
    for _ = 1, 50 do
      if h.err():find("run started", 1, true) then break end
      sleep(0.1)
    end
    h.signal("TERM")
    assert.are.equal(0, h.wait(15), h.err())
    local long = of_job(records(dir), "long")
    assert.are.equal(1, #long, h.err())
    assert.are.equal("killed", long[1].outcome)
    assert.are.equal(143, long[1].exit_code)
  end)
end)

describe("schedule: reload, lock, --once", function()
  it("reloads on SIGHUP, keeps the old schedule when the new file is broken, refuses a second instance", function()
    local dir = project {
      ["jobs.lua"] = [[return { { name = "a", every = "1s", script = "jobs/ok.lua", args = { "A" } } }]],
      ["jobs/ok.lua"] = OK_JOB,
    }
    local h = start(dir, { "jobs.lua" })
    wait_for(dir, 5, function(r) return #of_job(r, "a") >= 1 end)

    local second = T.expect(75, schedule(dir, { "jobs.lua" }))
    assert.matches("already scheduled by pid " .. h.pid, second.stderr, 1, true)

    T.write(dir .. "/jobs.lua", [[return { { name = "b", every = "1s", script = "jobs/ok.lua", args = { "B" } } }]])
    h.signal("HUP")
    local recs = wait_for(dir, 5, function(r) return #of_job(r, "b") >= 1 end)
    assert.is_true(#of_job(recs, "b") >= 1, h.err())
    assert.matches("reloaded jobs.lua: 1 jobs", h.err(), 1, true)

    T.write(dir .. "/jobs.lua", [[return { { name = "c", every = "1s", script = "jobs/ok.lua" ]])
    h.signal("HUP")
    for _ = 1, 30 do
      if h.err():find("reload failed", 1, true) then break end
      sleep(0.1)
    end
    local n_b = #of_job(records(dir), "b")
    recs = wait_for(dir, 5, function(r) return #of_job(r, "b") > n_b end)
    assert.is_true(#of_job(recs, "b") > n_b, h.err())
    assert.are.equal(0, #of_job(recs, "c"))
    assert.matches("reload failed, keeping the old schedule: jobs.lua:1: ", h.err(), 1, true)

    h.signal("TERM")
    assert.are.equal(0, h.wait(15), h.err())
  end)

  it("keeps its state in $STATE_DIRECTORY, else $XDG_STATE_HOME/ecaphost, else ~/.local/state/ecaphost; --run-log FILE", function()
    local dir = project {
      ["jobs.lua"] = [[return { { name = "s", every = "1h", script = "jobs/ok.lua" } }]],
      ["jobs/ok.lua"] = OK_JOB,
    }
    local function once(env, extra)
      local args = extra or {}
      args[#args + 1] = "--once"
      args[#args + 1] = "s"
      args[#args + 1] = "jobs.lua"
      return T.expect(0, schedule(dir, args, { env = env }))
    end
    once({ STATE_DIRECTORY = dir .. "/sd:" .. dir .. "/other" })
    assert.are.equal(1, #T.json("[" .. T.read(dir .. "/sd/runs.jsonl"):gsub("\n$", ""):gsub("\n", ",") .. "]"))
    once({ XDG_STATE_HOME = false, HOME = dir .. "/home" })
    assert.is_truthy(T.read(dir .. "/home/.local/state/ecaphost/runs.jsonl"))
    once({}, { "--run-log", "mine.jsonl" })
    local rec = T.json(T.read(dir .. "/mine.jsonl"))
    assert.are.equal("s", rec.job)
    assert.are.equal("ok", rec.outcome)
    assert.matches(dir .. "/state/ecaphost/output/s/", rec.output, 1, true)
  end)

  it("--log-format json writes each log line as a JSON object, with job and run_id", function()
    local dir = project {
      ["jobs.lua"] = [[return { { name = "j", every = "1s", script = "jobs/ok.lua" } }]],
      ["jobs/ok.lua"] = OK_JOB,
    }
    local h = start(dir, { "--log-format", "json", "jobs.lua" })
    local recs = wait_for(dir, 5, function(r) return #r >= 1 end)
    h.signal("TERM")
    assert.are.equal(0, h.wait(15), h.err())
    local ended
    for line in h.err():gmatch("[^\n]+") do
      local o = T.json(line)
      assert.matches("^%d+%-%d+%-%d+T%d+:%d+:%d+%.%d%d%dZ$", o.time)
      assert.is_truthy(o.level and o.msg, line)
      if o.msg:find("^run ended") and o.run_id == recs[1].run_id then ended = o end
    end
    assert.is_truthy(ended, h.err())
    assert.are.equal("j", ended.job)
    assert.matches("^j/%d+T%d+Z$", recs[1].run_id)
    -- the run inherits the format: its output file's stderr lines are JSON too, with the
    -- scheduler's job and run_id (stdout, the script's print, stays as printed)
    local n = 0
    for line in T.read(recs[1].output):gmatch("[^\n]+") do
      if line:sub(1, 1) == "{" then
        local o = T.json(line)
        assert.are.same({ "j", recs[1].run_id }, { o.job, o.run_id })
        n = n + 1
      end
    end
    assert.is_true(n >= 1, T.read(recs[1].output))
  end)

  it("--once NAME runs the job now and exits with its code; an unknown name is a usage error", function()
    local dir = project {
      ["jobs.lua"] = [[return {
        { name = "good", every = "1h", script = "jobs/ok.lua", args = { "once" } },
        { name = "bad", every = "1h", script = "jobs/bad.lua" },
      }]],
      ["jobs/ok.lua"] = OK_JOB,
      ["jobs/bad.lua"] = [[error("once failed")]],
    }
    local r = T.expect(0, schedule(dir, { "--once", "good", "jobs.lua" }))
    assert.matches("status\t200\tonce", r.stdout, 1, true)
    r = T.expect(1, schedule(dir, { "--once", "bad", "jobs.lua" }))
    assert.matches("once failed", r.stdout, 1, true)
    r = T.expect(2, schedule(dir, { "--once", "nope", "jobs.lua" }))
    assert.matches("jobs.lua has no job named 'nope'", r.stderr, 1, true)
    local recs = records(dir)
    assert.are.equal("ok", of_job(recs, "good")[1].outcome)
    assert.are.equal("error", of_job(recs, "bad")[1].outcome)
  end)
end)

describe("schedule: the call journal and dry_run", function()
  local RELEASE_JOB = [[
local r = ecap.meters.apply_release(7, { accountNumber = "200173450001", nameOnBill = "A", serviceAddress = "B" })
print("released", ecap.is_dry_run(r))
]]
  local function posts() return (sim.writes()) end
  local function lines(path)
    local out = {}
    for l in (T.read(path) or ""):gmatch("[^\n]+") do out[#out + 1] = T.json(l) end
    return out
  end

  it("gives each job a journal in STATE/journal/<job>.jsonl, named by the run-log record; journal = false: none", function()
    local dir = project {
      ["jobs.lua"] = [[return {
        { name = "rel", every = "1h", script = "jobs/rel.lua" },
        { name = "own", every = "1h", script = "jobs/rel.lua", journal = "j/own.jsonl" },
        { name = "off", every = "1h", script = "jobs/rel.lua", journal = false },
      }]],
      ["jobs/rel.lua"] = RELEASE_JOB,
    }
    T.expect(0, schedule(dir, { "--once", "rel", "jobs.lua" }))
    local path = dir .. "/state/ecaphost/journal/rel.jsonl"
    local recs = lines(path)
    assert.are.same({ "run", "intent", "outcome" }, { recs[1].type, recs[2].type, recs[3].type })
    assert.are.equal("meters.apply_release", recs[2].operation)
    assert.are.equal("ok", recs[3].outcome)
    assert.are.equal("700\n", T.sh("stat -c %a " .. T.q(dir .. "/state/ecaphost/journal")).stdout)
    assert.are.equal(path, of_job(records(dir), "rel")[1].journal)
    assert.matches("(every 1h)  journal " .. path .. "\n", T.expect(0, schedule(dir, { "--status", "jobs.lua" })).stdout,
      1, true)

    assert(os.execute("mkdir " .. T.q(dir .. "/j")))
    T.expect(0, schedule(dir, { "--once", "own", "jobs.lua" }))
    assert.are.equal("ok", lines(dir .. "/j/own.jsonl")[3].outcome)
    assert.are.equal(dir .. "/j/own.jsonl", of_job(records(dir), "own")[1].journal)

    T.expect(0, schedule(dir, { "--once", "off", "jobs.lua" }))
    assert.is_nil(T.read(dir .. "/state/ecaphost/journal/off.jsonl"))
    assert.are.equal(T.json("[null]")[1], of_job(records(dir), "off")[1].journal)
  end)

  it("gives on_failure runs no journal", function()
    local dir = project {
      ["jobs.lua"] = [[return { { name = "f", every = "1h", script = "jobs/fail.lua", on_failure = "jobs/rel.lua" } }]],
      ["jobs/fail.lua"] = [[error("no")]],
      ["jobs/rel.lua"] = RELEASE_JOB,
    }
    local r = T.expect(1, schedule(dir, { "--once", "f", "jobs.lua" }))
    assert.matches("released\tfalse", r.stdout, 1, true) -- on_failure ran and sent its release
    local recs = lines(dir .. "/state/ecaphost/journal/f.jsonl")
    assert.are.equal(1, #recs) -- the job's run line; the on_failure call is in no journal
    assert.are.equal("run", recs[1].type)
  end)

  it("dry_run = true: the job's mutating call is printed, not sent", function()
    local dir = project {
      ["jobs.lua"] = [[return { { name = "dry", every = "1h", script = "jobs/rel.lua", dry_run = true } }]],
      ["jobs/rel.lua"] = RELEASE_JOB,
    }
    sim.clear_requests()
    local r = T.expect(0, schedule(dir, { "--once", "dry", "jobs.lua" }))
    assert.are.equal(0, posts())
    local rec = of_job(records(dir), "dry")[1]
    local out = T.read(rec.output)
    assert.matches("DRY-RUN meters.apply_release POST " .. sim.url .. "/api/v202203/utilityPlatform/meter/7/release",
      out, 1, true)
    assert.matches("released\ttrue", out, 1, true)
    assert.matches("dry-run: would send 1 call (meters.apply_release: 1)", r.stdout, 1, true)
  end)

  it("journal must be true, false or a file", function()
    local dir = project {
      ["jobs.lua"] = [[return { { name = "x", every = "1m", script = "jobs/rel.lua", journal = 1 } }]],
      ["jobs/rel.lua"] = RELEASE_JOB,
    }
    assert.matches('jobs.lua: job "x": journal must be true, false or a file (got number)',
      T.expect(3, schedule(dir, { "--check", "jobs.lua" })).stderr, 1, true)
  end)
end)

describe("schedule: the file", function()
  it("--check compiles every job's script and names the one with a syntax error (exit 3)", function()
    local dir = project {
      ["jobs.lua"] = [[return { { name = "fine", every = "1m", script = "jobs/ok.lua" },
                                { name = "broken", every = "1m", script = "jobs/broken.lua" } }]],
      ["jobs/ok.lua"] = OK_JOB,
      ["jobs/broken.lua"] = "print(\n",
    }
    local r = T.expect(3, schedule(dir, { "--check", "jobs.lua" }))
    assert.matches('jobs.lua: job "broken": script: ', r.stderr, 1, true)
    assert.matches("broken.lua:2: unexpected symbol", r.stderr, 1, true)
    T.write(dir .. "/jobs/broken.lua", "print('fixed')\n")
    r = T.expect(0, schedule(dir, { "--check", "jobs.lua" }))
    assert.matches("jobs.lua: 2 jobs, every script compiles", r.stdout, 1, true)
  end)

  it("names the file, the job and the field of a bad schedule (exit 3)", function()
    local cases = {
      { [[{ name = "nightly-ca", cron = "75 2 * * *", script = "jobs/ok.lua" }]],
        'jobs.lua: job "nightly-ca": cron minute field: 75 out of range 0-59' },
      { [[{ name = "x", every = "15 minutes", script = "jobs/ok.lua" }]],
        'jobs.lua: job "x": every \'15 minutes\': expected a duration such as 30s, 15m, 1h30m or 1d' },
      { [[{ name = "x", cron = "0 2 * * *", tz = "Mars/Olympus", script = "jobs/ok.lua" }]],
        'jobs.lua: job "x": tz \'Mars/Olympus\': no such zone' },
      { [[{ name = "x", every = "1m", script = "jobs/ok.lua", timout = 5 }]],
        'jobs.lua: job "x": unknown field timout' },
      { [[{ name = "x", every = "1m" }]], 'jobs.lua: job "x": script missing' },
      { [[{ every = "1m", script = "jobs/ok.lua" }]], "jobs.lua: job 1: name missing" },
      { [[{ name = "x", script = "jobs/ok.lua" }]], 'jobs.lua: job "x": every or cron missing' },
      { [[{ name = "x", every = "1m", script = "jobs/ok.lua" }, { name = "x", every = "1m", script = "jobs/ok.lua" }]],
        'jobs.lua: job "x": name used by another job' },
      { [[{ name = "x", every = "1m", script = "jobs/ok.lua", args = { {} } }]],
        'jobs.lua: job "x": args[1] must be a string or a number (got table)' },
      { [[{ name = "../x", every = "1m", script = "jobs/ok.lua" }]], "jobs.lua: job 1: name '../x' must be" },
      { [[{ name = "x", every = "1m", cron = "* * * * *", script = "jobs/ok.lua" }]],
        'jobs.lua: job "x": give either every or cron, not both' },
      { [[{ name = "x", every = "1m", tz = "UTC", script = "jobs/ok.lua" }]], 'jobs.lua: job "x": tz applies to cron' },
      { [[{ name = "x", cron = "0 0 31 2 *", script = "jobs/ok.lua" }]], 'jobs.lua: job "x": cron \'0 0 31 2 *\' matches no date' },
      { [[{ name = "x", every = "1m", script = "jobs/ok.lua", timeout = 0 }]], 'jobs.lua: job "x": timeout must be seconds' },
      { [[{ name = "x", every = "1m", script = "jobs/ok.lua", allow_write = { 1 } }]],
        'jobs.lua: job "x": allow_write[1] must be a non-empty string' },
      { [[{ name = "x", every = "1m", script = "jobs/ok.lua", dry_run = "yes" }]],
        'jobs.lua: job "x": dry_run must be true or false (got string)' },
      { [[{ name = "x", every = "1m", script = "jobs/ok.lua", on_failure = "jobs/none.lua" }]],
        'jobs.lua: job "x": on_failure: cannot open ' },
      { [[jobs = { { name = "x", every = "1m", script = "jobs/ok.lua" } }, max_parallel = 0]],
        "jobs.lua: max_parallel must be a whole number from 1 to 256" },
      { [[jobs = {}, parallel = 2]], "jobs.lua: unknown top-level field parallel (known: max_parallel, jobs)" },
      { [[{ name = "x", every = "1m", script = "jobs/ok.lua" }, extra = 1]], "jobs.lua: the job list has a non-list key" },
      { "", "jobs.lua: no jobs" },
    }
    for _, c in ipairs(cases) do
      local dir = project { ["jobs.lua"] = "return { " .. c[1] .. " }", ["jobs/ok.lua"] = OK_JOB }
      local r = T.expect(3, schedule(dir, { "--check", "jobs.lua" }))
      assert.matches(c[2], r.stderr, 1, true)
    end
  end)

  it("reads the file in a bare state: no files, no endless loop, not even in a finalizer", function()
    local dir = project {
      ["io.lua"] = [[io.open("/etc/passwd") return {}]],
      ["loop.lua"] = [[while true do end]],
      ["gc.lua"] = [[setmetatable({}, { __gc = function() while true do end end })
                     return { { name = "x", every = "1m", script = "jobs/ok.lua" } }]],
      ["jobs/ok.lua"] = OK_JOB,
    }
    -- a finalizer would run when the state closes, where no hook can stop it: no setmetatable
    assert.matches("attempt to call a nil value (global 'setmetatable')",
      T.expect(3, schedule(dir, { "--check", "gc.lua" })).stderr, 1, true)
    assert.matches("attempt to index a nil value (global 'io')",
      T.expect(3, schedule(dir, { "--check", "io.lua" })).stderr, 1, true)
    assert.matches("loop.lua: the schedule file runs too long",
      T.expect(3, schedule(dir, { "--check", "loop.lua" })).stderr, 1, true)
  end)

  it("--list prints each job with its next three run times", function()
    local dir = project {
      ["jobs.lua"] = [[return { { name = "nightly", cron = "0 2 * * *", tz = "America/New_York", script = "jobs/ok.lua" } }]],
      ["jobs/ok.lua"] = OK_JOB,
    }
    local r = T.expect(0, schedule(dir, { "--list", "jobs.lua" }))
    assert.matches("nightly  cron 0 2 * * * (America/New_York)", r.stdout, 1, true)
    local n = 0
    for _ in r.stdout:gmatch("T0[67]:00:00Z %(%d+%-%d+%-%d+ 02:00 %-0[45]00%)") do n = n + 1 end
    assert.are.equal(3, n, r.stdout)
  end)

  it("usage errors exit 2", function()
    local dir = project {}
    assert.matches("schedule needs a schedule file", T.expect(2, schedule(dir, {})).stderr, 1, true)
    assert.matches("unknown option --bogus", T.expect(2, schedule(dir, { "--bogus", "x.lua" })).stderr, 1, true)
  end)
end)

describe("schedule: the API key", function()
  it("never reaches a run's environment", function()
    -- A script cannot read /proc (fs refuses it whatever the grants), so the spec looks at the
    -- running job's environment from outside while the job sleeps.
    local dir = project {
      ["jobs.lua"] = [[return { { name = "env", every = "1h", script = "jobs/env_probe_job.lua" } }]],
      ["jobs/env_probe_job.lua"] = [[ecap.sleep(3) print("slept")]],
    }
    -- The scheduler has the key in its environment (and a key file for the run to use).
    local s = start(dir, { "--once", "env", "jobs.lua" }, { env = { ECAP_API_KEY = KEY } })
    local seen, found = 0, 0
    for _ = 1, 40 do
      local r = T.sh("{ for p in $(pgrep -f env_probe_job.lua); do tr '\\0' '\\n' < /proc/$p/environ 2>/dev/null | grep -c '^ECAP_API_KEY=' ; echo seen; done; }")
      seen = seen + select(2, r.stdout:gsub("seen", ""))
      for n in r.stdout:gmatch("(%d+)\n") do found = found + tonumber(n) end
      if seen > 0 then break end
      os.execute("sleep 0.1")
    end
    assert.are.equal(0, s.wait(30))
    assert.is_true(seen > 0, "the job was not seen running")
    assert.are.equal(0, found, "a run had ECAP_API_KEY in its environment")
  end)

  it("reaches the run on a pipe (--api-key-fd) when the scheduler holds it", function()
    if not T.run({ "run", "--help" }).stdout:find("--api-key-fd", 1, true) then
      pending("needs run --api-key-fd (the hardening branch)")
      return
    end
    local dir = project {
      ["jobs.lua"] = [[return { { name = "key", every = "1h", script = "jobs/ok.lua", args = { "piped" } } }]],
      ["jobs/ok.lua"] = OK_JOB,
    }
    local r = T.expect(0, schedule(dir, { "--once", "key", "jobs.lua" }, { no_key = true, env = { ECAP_API_KEY = KEY } }))
    assert.matches("status\t200\tpiped", r.stdout, 1, true)
  end)
  it("reads --api-key-fd once and pipes the key to every run, not just the first", function()
    local dir = project {
      ["jobs.lua"] = [[return { { name = "fd", every = "1s", script = "jobs/ok.lua" } }]],
      ["jobs/ok.lua"] = OK_JOB,
    }
    -- the key on descriptor 3 of the scheduler; SIGTERM after three and a half seconds
    T.sh(string.format("cd %s && env -u ECAP_API_KEY -u STATE_DIRECTORY XDG_STATE_HOME=%s ECAP_CONFIG=/dev/null "
      .. "timeout -s TERM 3.5 %s schedule --base-url %s --api-key-fd 3 jobs.lua 3<%s", T.q(dir), T.q(dir .. "/state"),
      T.q(T.bin:sub(1, 1) == "/" and T.bin or os.getenv("PWD") .. "/" .. T.bin), sim.url, T.q(keyfile)))
    local runs = of_job(records(dir), "fd")
    assert.is_true(#runs >= 2, "runs: " .. #runs)
    for _, r in ipairs(runs) do assert.are.equal("ok", r.outcome, r.stderr_tail and table.concat(r.stderr_tail, "\n")) end
  end)
end)
