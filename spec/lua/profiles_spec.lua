-- Profiles: `[name]` sections of the config file, chosen with --profile or $ECAP_PROFILE (run,
-- ping) or a scheduled job's `profile`; the lines before any section are the defaults.
local T = require "spec.lua.support"

local KEY = "profile-key" -- the only key this file's simulator accepts
local CLOSED = "http://127.0.0.1:9"
local sim, good_key, bad_key

local PING = [[local _, meta = ecap.request("GET", "/api/v3/meter", { query = { pageSize = 1 } })
print(ecap.config().base_url, meta.status)]]

local function key_file(content)
  local p = T.write(T.tmpname(".key"), content .. "\n")
  assert(os.execute("chmod 600 " .. T.q(p)))
  return p
end

-- defaults: a closed port and a wrong key; [production]: the simulator and the right key;
-- [half]: only the right key (the default base URL stays).
local function config()
  return T.write(T.tmpname(".conf"), table.concat({
    "# defaults",
    "base_url = " .. CLOSED,
    "api_key_file = " .. bad_key,
    "[production]",
    "base_url = " .. sim.url,
    "api_key_file = " .. good_key,
    "[half]",
    "api_key_file = " .. good_key,
  }, "\n") .. "\n")
end

local function run(args, env)
  return T.run(args, { env = T.merge({ ECAP_API_KEY = false }, env), kill_after = 30 })
end

setup(function()
  sim = T.start_sim({ "--quiet", "--api-key", KEY })
  good_key, bad_key = key_file(KEY), key_file("wrong-key")
end)

teardown(function()
  if sim then sim.stop() end
end)

describe("profiles", function()
  it("--profile NAME applies the section on top of the defaults", function()
    local conf = config()
    local r = T.expect(0, run({ "run", "-q", "--config", conf, "--profile", "production", T.script(PING) }))
    assert.matches(sim.url .. "\t200", r.stdout, 1, true)
    -- without a profile: the defaults (a closed port)
    r = T.expect(1, run({ "run", "-q", "--config", conf, T.script(PING) }))
    assert.matches("127.0.0.1 port 9", r.stderr, 1, true)
    -- a profile that sets only the key keeps the defaults' base URL
    r = T.expect(1, run({ "run", "-q", "--config", conf, "--profile", "half", T.script(PING) }))
    assert.matches("127.0.0.1 port 9", r.stderr, 1, true)
  end)

  it("$ECAP_PROFILE selects one; --profile wins over it; ping takes it too", function()
    local conf = config()
    local r = T.expect(0, run({ "run", "-q", "--config", conf, T.script(PING) }, { ECAP_PROFILE = "production" }))
    assert.matches(sim.url .. "\t200", r.stdout, 1, true)
    T.expect(1, run({ "run", "-q", "--config", conf, "--profile", "half", T.script(PING) }, { ECAP_PROFILE = "production" }))
    r = T.expect(0, run({ "ping", "--config", conf, "--profile", "production" }))
    assert.matches("200 OK", r.stdout, 1, true)
  end)

  it("an unknown profile, or one without a config file, is a configuration error (exit 3)", function()
    local conf = config()
    local r = T.expect(3, run({ "run", "--config", conf, "--profile", "nope", T.script(PING) }))
    assert.matches("has no profile [nope]", r.stderr, 1, true)
    r = T.expect(3, run({ "run", "--profile", "nope", T.script(PING) }, { ECAP_CONFIG = T.tmpname(".missing") }))
    assert.matches("profile [nope] needs a config file", r.stderr, 1, true)
  end)

  it("checks the keys of every section, and section names", function()
    local conf = T.write(T.tmpname(".conf"), "base_url = " .. sim.url .. "\n[other]\nbase_ulr = x\n")
    local r = T.expect(3, run({ "run", "--config", conf, T.script(PING) }))
    assert.matches(conf .. ":3: unknown key 'base_ulr'", r.stderr, 1, true)
    conf = T.write(T.tmpname(".conf"), "[bad name]\n")
    r = T.expect(3, run({ "run", "--config", conf, T.script(PING) }))
    assert.matches(conf .. ":1: expected [profile] with a name", r.stderr, 1, true)
  end)

  it("a scheduled job's profile reaches its own base URL and key", function()
    local conf = config()
    local dir = T.tmpname(".d")
    assert(os.execute("mkdir -p " .. T.q(dir)))
    T.write(dir .. "/ping.lua", PING)
    T.write(dir .. "/jobs.lua", [[return {
      { name = "prod", every = "1h", script = "ping.lua", profile = "production" },
      { name = "plain", every = "1h", script = "ping.lua" } }]])
    local env = { XDG_STATE_HOME = dir .. "/state", STATE_DIRECTORY = false }
    local r = T.expect(0, run({ "schedule", "--config", conf, "--once", "prod", dir .. "/jobs.lua" }, env))
    assert.matches(sim.url .. "\t200", r.stdout, 1, true)
    r = T.expect(1, run({ "schedule", "--config", conf, "--once", "plain", dir .. "/jobs.lua" }, env))
    assert.matches("127.0.0.1 port 9", r.stdout, 1, true)
  end)

  it("a job's unknown profile is found by schedule --check (exit 3)", function()
    local conf = config()
    local dir = T.tmpname(".d")
    assert(os.execute("mkdir -p " .. T.q(dir)))
    T.write(dir .. "/ping.lua", PING)
    T.write(dir .. "/jobs.lua", [[return { { name = "x", every = "1h", script = "ping.lua", profile = "nope" } }]])
    local r = T.expect(3, run({ "schedule", "--config", conf, "--check", dir .. "/jobs.lua" }))
    assert.matches('jobs.lua: job "x": profile: config file ' .. conf .. " has no profile [nope]", r.stderr, 1, true)
    -- the scheduler's own --profile (passed to every run) too
    T.write(dir .. "/jobs.lua", [[return { { name = "x", every = "1h", script = "ping.lua" } }]])
    r = T.expect(3, run({ "schedule", "--config", conf, "--profile", "nope", "--check", dir .. "/jobs.lua" }))
    assert.matches("config file " .. conf .. " has no profile [nope]", r.stderr, 1, true)
  end)
end)
