-- The command line through the real binary: help, version, exit codes, where the base URL and
-- the API key come from (options, environment, config file, key file), the banner, script
-- arguments and how a failing script is reported.
local T = require "spec.lua.support"

local KEY = "cli-key" -- the only key this file's simulator accepts
local CLOSED = "http://127.0.0.1:9"

local sim, conf

-- Options for T.run: env_over over the defaults (the key above, an empty config file), where
-- false removes a variable; a hung binary is killed (exit 137).
local function run_opts(env_over)
  return { env = T.merge({ ECAP_API_KEY = KEY, ECAP_CONFIG = conf }, env_over), kill_after = 60 }
end

-- `ecaphost <args...>`.
local function ecaphost(args, env_over)
  return T.run(args, run_opts(env_over))
end

-- `ecaphost run <opts...> <script> <script_args...>`.
local function run(opts, text, script_args, env_over)
  return T.run_script(text, opts, T.merge(run_opts(env_over), { args = script_args }))
end

local PRINT_URL = [[print(ecap.config().base_url)]]
-- A request that needs the key the simulator accepts; prints its status.
local PING = [[local _, meta = ecap.request("GET", "/api/v3/meter", { query = { pageSize = 1 } }) print(meta.status)]]

local function config_file(text)
  return T.write(T.tmpname(".conf"), text)
end

local function key_file(content, mode)
  local p = T.write(T.tmpname(".key"), content)
  assert(os.execute("chmod " .. mode .. " " .. T.q(p)))
  return p
end

setup(function()
  conf = config_file("# empty\n")
  sim = T.start_sim({ "--quiet", "--api-key", KEY })
end)

teardown(function()
  if sim then sim.stop() end
end)

describe("cli: help and version", function()
  it("--help, -h and help print the usage with the exit codes, exit 0", function()
    for _, flag in ipairs { "--help", "-h", "help" } do
      local r = T.expect(0, ecaphost({ flag }))
      assert.matches("usage: ecaphost run", r.stdout, 1, true)
      assert.matches("3 configuration error", r.stdout, 1, true)
      assert.matches("130 SIGINT, 143 SIGTERM", r.stdout, 1, true)
    end
    assert.matches("usage:", T.expect(0, ecaphost({ "run", "--help" })).stdout)
  end)

  it("--version prints the version, Lua 5.4 and libcurl, exit 0", function()
    local r = T.expect(0, ecaphost({ "--version" }))
    assert.matches("^ecaphost %d+%.%d+%.%d+ %(Lua 5%.4", r.stdout)
    assert.matches("libcurl", r.stdout, 1, true)
  end)

  it("with no arguments prints the usage on stderr, exit 2", function()
    assert.matches("usage:", T.expect(2, ecaphost({})).stderr)
  end)
end)

describe("cli: usage errors exit 2", function()
  local cases = {
    { { "frob" }, "unknown command 'frob'" },
    { { "run", "--bogus", "x.lua" }, "unknown option --bogus" },
    { { "run" }, "run needs a script" },
    { { "run", "--base-url", CLOSED, "/nonexistent/dir/script.lua" }, "cannot open", "no hint" },
    { { "run", "--timeout" }, "--timeout needs a value" },
    { { "run", "--timeout", "abc", "x.lua" }, "--timeout needs a duration" },
    { { "run", "--max-memory", "0", "x.lua" }, "--max-memory needs a size" },
    { { "run", "--http-timeout", "-1", "x.lua" }, "--http-timeout" },
    { { "run", "--environment", "mars", "x.lua" }, "unknown environment 'mars'" },
    { { "run", "-q=1", "x.lua" }, "-q takes no value" },
    { { "ping", "--base-url", CLOSED, "extra" }, "unexpected argument extra" },
  }
  for _, c in ipairs(cases) do
    it(table.concat(c[1], " ") .. " -> " .. c[2], function()
      local r = T.expect(2, ecaphost(c[1]))
      assert.matches(c[2], r.stderr, 1, true)
      if not c[3] then assert.matches("ecaphost --help", r.stderr, 1, true) end
    end)
  end
end)

describe("cli: configuration errors exit 3 before the script starts", function()
  it("no base URL", function()
    local r = T.expect(3, run({}, [[print("ran")]]))
    assert.matches("no base URL", r.stderr, 1, true)
    assert.matches("--base-url", r.stderr, 1, true)
    assert.matches("ECAP_BASE_URL", r.stderr, 1, true)
    assert.are.equal("", r.stdout)
  end)

  it("no API key", function()
    local r = T.expect(3, run({ "--base-url", CLOSED }, [[print("ran")]], nil, { ECAP_API_KEY = false }))
    assert.matches("no API key", r.stderr, 1, true)
    assert.matches("ECAP_API_KEY", r.stderr, 1, true)
    assert.are.equal("", r.stdout)
  end)

  it("a base URL with a path, or another scheme", function()
    assert.matches("scheme, host and port only",
      T.expect(3, run({ "--base-url", "https://app.energycap.com/api" }, PRINT_URL)).stderr, 1, true)
    assert.matches("must start with https://",
      T.expect(3, run({ "--base-url", "ftp://app.energycap.com" }, PRINT_URL)).stderr, 1, true)
  end)

  it("plain http:// to a non-loopback host unless --insecure-http", function()
    local r = T.expect(3, run({ "--base-url", "http://example.com" }, PRINT_URL))
    assert.matches("--insecure-http", r.stderr, 1, true)
    r = T.expect(0, run({ "-q", "--insecure-http", "--base-url", "http://example.com" }, PRINT_URL))
    assert.are.equal("http://example.com\n", r.stdout)
    r = T.expect(0, run({ "-q", "--config", config_file("base_url = http://example.com\ninsecure_http = true\n") },
      PRINT_URL))
    assert.are.equal("http://example.com\n", r.stdout)
  end)

  it("accepts plain http:// to loopback addresses", function()
    for _, url in ipairs { "http://localhost:8080", "http://127.0.0.2:1", "http://127.0.0.1" } do
      assert.are.equal(url .. "\n", T.expect(0, run({ "-q", "--base-url", url }, PRINT_URL)).stdout)
    end
  end)

  it("accepts the IPv6 loopback [::1], with and without a port", function()
    -- Regression (fixed in 2504814): the port was looked for inside "[::1]", so every IPv6
    -- literal was refused as "has a bad port".
    for _, url in ipairs { "http://[::1]:8080", "http://[::1]" } do
      assert.are.equal(url .. "\n", T.expect(0, run({ "-q", "--base-url", url }, PRINT_URL)).stdout)
    end
    assert.matches("--insecure-http", T.expect(3, run({ "--base-url", "http://[2001:db8::1]:80" }, PRINT_URL)).stderr,
      1, true)
  end)
end)

describe("cli: base URL", function()
  local hosts = {
    ["us-east"] = "https://app.energycap.com", ["us-west"] = "https://wce.energycap.com",
    eu = "https://app-eu.energycap.com", fedramp = "https://app.fed-energycap.com",
    implement = "https://implement.energycap.com",
  }
  for name, url in pairs(hosts) do
    it("--environment " .. name .. " -> " .. url, function()
      local r = T.expect(0, run({ "--environment", name }, PRINT_URL))
      assert.are.equal(url .. "\n", r.stdout)
      assert.matches("talking to " .. url .. " (" .. name .. ")", r.stderr, 1, true)
    end)
  end

  it("comes from ECAP_BASE_URL, trailing slash dropped", function()
    local r = T.expect(0, run({ "-q" }, PRINT_URL, nil, { ECAP_BASE_URL = "https://env.example.com/" }))
    assert.are.equal("https://env.example.com\n", r.stdout)
  end)

  it("--base-url wins over ECAP_BASE_URL and the config file", function()
    local r = T.expect(0, run({ "-q", "--base-url", "https://cli.example.com",
      "--config", config_file("base_url = https://file.example.com\n") },
      PRINT_URL, nil, { ECAP_BASE_URL = "https://env.example.com" }))
    assert.are.equal("https://cli.example.com\n", r.stdout)
  end)

  it("ECAP_BASE_URL wins over the config file", function()
    -- Regression (fixed in 2504814): the file's base_url (or environment) was taken before
    -- ECAP_BASE_URL was looked at.
    for _, line in ipairs { "base_url = https://file.example.com", "environment = eu" } do
      local r = T.expect(0, run({ "-q", "--config", config_file(line .. "\n") },
        PRINT_URL, nil, { ECAP_BASE_URL = "https://env.example.com" }))
      assert.are.equal("https://env.example.com\n", r.stdout, line)
    end
  end)

  it("--base-url wins over --environment", function()
    local r = T.expect(0, run({ "-q", "--environment", "eu", "--base-url", "https://cli.example.com" }, PRINT_URL))
    assert.are.equal("https://cli.example.com\n", r.stdout)
  end)

  it("--environment on the command line wins over base_url in the config file", function()
    -- Regression (fixed in 2504814): `--environment eu` silently talked to the file's host.
    local r = T.expect(0, run({ "-q", "--environment", "eu",
      "--config", config_file("base_url = https://file.example.com\n") }, PRINT_URL))
    assert.are.equal("https://app-eu.energycap.com\n", r.stdout)
  end)
end)

describe("cli: config file", function()
  local function key_accepted(opts, env_over)
    return T.expect(0, run(opts, PING, nil, env_over)).stdout
  end

  it("--config FILE gives base_url and api_key_file, with comments and blank lines", function()
    local kf = key_file(KEY .. "\n", "600")
    local cf = config_file("# a comment\n\n  base_url = " .. sim.url .. "  \napi_key_file = " .. kf .. "\n")
    assert.are.equal("200\n", key_accepted({ "-q", "--config", cf }, { ECAP_API_KEY = false }))
  end)

  it("$ECAP_CONFIG names the file", function()
    local kf = key_file(KEY, "600")
    local cf = config_file("base_url = " .. sim.url .. "\napi_key_file = " .. kf .. "\n")
    assert.are.equal("200\n", key_accepted({ "-q" }, { ECAP_API_KEY = false, ECAP_CONFIG = cf }))
  end)

  it("defaults to ~/.config/ecaphost/config, with ~ expanded in api_key_file", function()
    local home = T.tmpdir() .. "/home"
    assert(os.execute("mkdir -p " .. T.q(home .. "/.config/ecaphost")))
    T.write(home .. "/.config/ecaphost/config", "base_url = " .. sim.url .. "\napi_key_file = ~/my.key\n")
    T.write(home .. "/my.key", KEY)
    assert(os.execute("chmod 600 " .. T.q(home .. "/my.key")))
    local r = T.expect(0, run({ "-q" }, PING .. " print(ecap.config().config_file)", nil,
      { ECAP_API_KEY = false, ECAP_CONFIG = false, HOME = home }))
    assert.are.equal("200\n" .. home .. "/.config/ecaphost/config\n", r.stdout)
  end)

  it("an unknown key is an error naming file:line", function()
    local cf = config_file("base_url = " .. sim.url .. "\n\nfrob = 1\n")
    local r = T.expect(3, run({ "--config", cf }, [[print("ran")]]))
    assert.matches(cf .. ":3: unknown key 'frob'", r.stderr, 1, true)
    assert.are.equal("", r.stdout)
  end)

  it("a malformed line is an error naming file:line", function()
    for _, line in ipairs { "just words", "= value", "key =" } do
      local cf = config_file("# ok\nbase_url = " .. sim.url .. "\n" .. line .. "\n")
      local r = T.expect(3, run({ "--config", cf }, [[print("ran")]]))
      assert.matches(cf .. ":3: expected 'key = value'", r.stderr, 1, true)
    end
  end)

  it("a missing --config file is an error", function()
    local r = T.expect(3, run({ "--config", "/nonexistent/ecaphost.conf", "--base-url", CLOSED }, PRINT_URL))
    assert.matches("/nonexistent/ecaphost.conf", r.stderr, 1, true)
  end)

  it("accepts route.<name> for a known binding, and the binding uses it", function()
    local path = "/api/v3/meterGroup/{meterGroupId}/updateUserAutoGroupMoved"
    local cf = config_file("base_url = " .. sim.url .. "\nroute.meter_groups.refresh = POST " .. path .. "\n")
    sim.clear_requests()
    local r = T.expect(0, run({ "-q", "--config", cf }, [[
      print(ecap.config().routes["meter_groups.refresh"])
      print(pcall(ecap.meter_groups.refresh, 7))
    ]]))
    assert.matches("^POST " .. path:gsub("%p", "%%%0") .. "\n", r.stdout)
    local reqs = T.json(sim.http("/api/__sim/requests").body)
    assert.are.equal(1, #reqs)
    assert.are.equal("/api/v3/meterGroup/7/updateUserAutoGroupMoved", reqs[1].path)
  end)

  it("refuses route.<name> for an unknown name, naming file:line", function()
    local cf = config_file("base_url = " .. sim.url .. "\nroute.nope.nothing = POST /api/v3/x\n")
    local r = T.expect(3, run({ "--config", cf }, [[print("ran")]]))
    assert.matches(cf .. ":2: unknown operation \"nope.nothing\"", r.stderr, 1, true)
  end)
end)

describe("cli: API key file", function()
  it("refuses a key file readable by group or others, saying so", function()
    local kf = key_file(KEY, "644")
    local r = T.expect(3, run({ "--base-url", sim.url, "--api-key-file", kf }, PING, nil, { ECAP_API_KEY = false }))
    assert.matches("readable by group or others", r.stderr, 1, true)
    assert.matches("chmod 600", r.stderr, 1, true)
    assert.are.equal("", r.stdout)
    local cf = config_file("base_url = " .. sim.url .. "\napi_key_file = " .. key_file(KEY, "640") .. "\n")
    T.expect(3, run({ "--config", cf }, PING, nil, { ECAP_API_KEY = false }))
  end)

  it("accepts a group-readable key only as a systemd credential ($CREDENTIALS_DIRECTORY), never other-readable", function()
    local creds = T.tmpdir() .. "/credentials"
    os.execute("mkdir -p " .. T.q(creds) .. " && chmod 700 " .. T.q(creds))
    local kf = T.write(creds .. "/ecap-api-key", KEY)
    assert(os.execute("chmod 440 " .. T.q(kf)))
    -- systemd 254+ (an ACL: mode 0440) in the service's credentials directory: accepted
    local r = T.expect(0, run({ "--base-url", sim.url, "--api-key-file", kf }, PING, nil,
      { ECAP_API_KEY = false, CREDENTIALS_DIRECTORY = creds }))
    assert.are.equal("200\n", r.stdout)
    -- the same file without that directory being the credentials one: refused
    T.expect(3, run({ "--base-url", sim.url, "--api-key-file", kf }, PING, nil, { ECAP_API_KEY = false }))
    T.expect(3, run({ "--base-url", sim.url, "--api-key-file", kf }, PING, nil,
      { ECAP_API_KEY = false, CREDENTIALS_DIRECTORY = T.tmpdir() }))
    -- a link into the credentials directory from elsewhere is judged by where the file is
    local link = T.tmpdir() .. "/link.key"
    os.execute("ln -sf " .. T.q(kf) .. " " .. T.q(link))
    T.expect(0, run({ "--base-url", sim.url, "--api-key-file", link }, PING, nil,
      { ECAP_API_KEY = false, CREDENTIALS_DIRECTORY = creds }))
    -- readable by others: refused even there
    assert(os.execute("chmod 444 " .. T.q(kf)))
    T.expect(3, run({ "--base-url", sim.url, "--api-key-file", kf }, PING, nil,
      { ECAP_API_KEY = false, CREDENTIALS_DIRECTORY = creds }))
  end)

  it("accepts mode 600 and sends the key it holds (newline trimmed)", function()
    local kf = key_file(KEY .. "\n", "600")
    local r = T.expect(0, run({ "-q", "--base-url", sim.url, "--api-key-file", kf }, PING, nil, { ECAP_API_KEY = false }))
    assert.are.equal("200\n", r.stdout)
  end)

  it("--api-key-file wins over ECAP_API_KEY", function()
    local kf = key_file(KEY, "600")
    local r = T.expect(0, run({ "-q", "--base-url", sim.url, "--api-key-file", kf }, PING, nil,
      { ECAP_API_KEY = "wrong-key" }))
    assert.are.equal("200\n", r.stdout)
  end)

  it("ECAP_API_KEY wins over api_key_file in the config file", function()
    local cf = config_file("api_key_file = " .. key_file("wrong-key", "600") .. "\n")
    local r = T.expect(0, run({ "-q", "--base-url", sim.url, "--config", cf }, PING))
    assert.are.equal("200\n", r.stdout)
  end)

  it("refuses an empty key file", function()
    local r = T.expect(3, run({ "--base-url", sim.url, "--api-key-file", key_file("\n", "600") }, PING, nil,
      { ECAP_API_KEY = false }))
    assert.matches("empty", r.stderr, 1, true)
  end)
end)

describe("cli: banner", function()
  it("says on stderr which host, before the script's own output", function()
    local r = T.expect(0, run({ "--base-url", CLOSED }, [[log.warn("from the script")]]))
    assert.matches("^ecaphost: talking to " .. CLOSED:gsub("%p", "%%%0") .. "\n", r.stderr)
    assert.matches("from the script", r.stderr, 1, true)
  end)

  it("is silent with --quiet and -q", function()
    for _, q in ipairs { "--quiet", "-q" } do
      local r = T.expect(0, run({ q, "--base-url", CLOSED }, [[print("x")]]))
      assert.are.equal("", r.stderr)
    end
  end)
end)

describe("cli: script arguments", function()
  local ARGS = [[
    print(arg[0] == SCRIPT, #arg, select("#", ...))
    for i = 1, #arg do print(i, arg[i], (select(i, ...))) end
    local c = ecap.config()
    print(c.timeout, c.quiet)
  ]]

  it("gives arg[0], arg[1..n] and ... ; options after the script belong to it", function()
    local path = T.script("")
    local text = ARGS:gsub("SCRIPT", string.format("%q", path))
    T.write(path, text)
    local r = T.expect(0, ecaphost({ "run", "--base-url", CLOSED, path, "one", "two words", "--timeout", "1", "-q" }))
    assert.are.equal("true\t5\t5\n1\tone\tone\n2\ttwo words\ttwo words\n3\t--timeout\t--timeout\n" ..
      "4\t1\t1\n5\t-q\t-q\n0.0\tfalse\n", r.stdout)
    assert.matches("talking to", r.stderr, 1, true) -- -q was the script's, not the host's
  end)

  it("-- ends the host options", function()
    local path = T.script([[print(#arg, arg[1])]])
    local r = T.expect(0, ecaphost({ "run", "-q", "--base-url", CLOSED, "--", path, "--quiet" }))
    assert.are.equal("1\t--quiet\n", r.stdout)
  end)
end)

describe("cli: a failing script", function()
  it("exits 1 with file:line: message and a traceback", function()
    local path = T.script("local function f()\n  error('boom')\nend\nf()\n")
    local r = T.expect(1, ecaphost({ "run", "-q", "--base-url", CLOSED, path }))
    assert.matches(path .. ":2: boom", r.stderr, 1, true)
    assert.matches("stack traceback:", r.stderr, 1, true)
    assert.matches(path .. ":4: in main chunk", r.stderr, 1, true)
  end)

  it("exits 1 with file:line for a syntax error", function()
    local path = T.script("local x = 1\nx = = 2\n")
    local r = T.expect(1, ecaphost({ "run", "-q", "--base-url", CLOSED, path }))
    assert.matches(path .. ":2:", r.stderr, 1, true)
  end)

  it("reports an error table from ecap.request as file:line: http 404 GET ...", function()
    local path = T.script("\n\nlocal m = ecap.request('GET', '/api/v3/meter/999999')\n")
    local r = T.expect(1, ecaphost({ "run", "-q", "--base-url", sim.url, path }))
    assert.matches(path .. ":3: http 404 GET /api/v3/meter/999999: ", r.stderr, 1, true)
    assert.matches("stack traceback:", r.stderr, 1, true)
  end)

  it("reports an error table from a binding as file:line: http 404 POST ...", function()
    local path = T.script("\necap.meter_groups.refresh(999999)\n")
    local r = T.expect(1, ecaphost({ "run", "-q", "--base-url", sim.url, path }))
    assert.matches(path .. ":2: http 404 POST /api/v3/meterGroup/999999/updateUserAutoGroup: ", r.stderr, 1, true)
  end)
end)

describe("cli: ping", function()
  it("exits 1 when it cannot connect", function()
    local r = ecaphost({ "ping", "--base-url", CLOSED })
    T.expect(1, r)
    assert.matches("target:  " .. CLOSED, r.stdout, 1, true)
    -- the error's text, with no position: ping is host code, not a script
    assert.matches("status:  failed: network GET /api/v3/meter: ", r.stdout, 1, true)
  end)

  it("reports target and status, exit 0 with a good key", function()
    local r = T.expect(0, ecaphost({ "ping", "--base-url", sim.url }))
    assert.matches("target:  " .. sim.url, r.stdout, 1, true)
    assert.matches("status:  200", r.stdout, 1, true)
  end)

  it("exits 3 (configuration) with a refused key, showing the 401", function()
    local r = ecaphost({ "ping", "--base-url", sim.url }, { ECAP_API_KEY = "wrong-key" })
    T.expect(3, r)
    assert.matches("status:  401", r.stdout, 1, true)
  end)
end)
