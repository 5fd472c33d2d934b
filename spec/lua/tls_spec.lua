-- TLS against a local HTTPS simulator (`ecaphost sim --tls-cert --tls-key`) whose certificate
-- comes from a throw-away CA made here with the openssl tool: verification is always on,
-- --cacert adds a private CA, a wrong CA is refused, and a redirect never carries the key on.
local T = require "spec.lua.support"

-- Runs a shell command that must succeed (openssl output goes to a log shown on failure).
local function must(cmd)
  local log = T.tmpname(".log")
  local ok = os.execute(cmd .. " >" .. T.q(log) .. " 2>&1")
  assert(ok, cmd .. "\n" .. (T.read(log) or ""))
end

-- A CA (name.pem, name.key) in dir.
local function make_ca(dir, name)
  must(string.format("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
    .. "-keyout %s -out %s -days 2 -subj /CN=ecaphost-test-%s",
    T.q(dir .. "/" .. name .. ".key"), T.q(dir .. "/" .. name .. ".pem"), name))
  return dir .. "/" .. name .. ".pem"
end

describe("TLS", function()
  local dir, ca, other_ca, sim, plain

  setup(function()
    dir = T.tmpname(".tls")
    must("mkdir -p " .. T.q(dir))
    ca = make_ca(dir, "ca")
    other_ca = make_ca(dir, "other")
    -- the server certificate names 127.0.0.1, the address the base URL uses
    T.write(dir .. "/ext", "subjectAltName=IP:127.0.0.1\n")
    must(string.format("openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
      .. "-keyout %s/srv.key -out %s/srv.csr -subj /CN=127.0.0.1", T.q(dir), T.q(dir)))
    must(string.format("openssl x509 -req -in %s/srv.csr -CA %s -CAkey %s/ca.key -CAcreateserial "
      .. "-out %s/srv.pem -days 2 -extfile %s/ext", T.q(dir), T.q(ca), T.q(dir), T.q(dir), T.q(dir)))
    sim = T.start_sim({ "--quiet", "--tls-cert", dir .. "/srv.pem", "--tls-key", dir .. "/srv.key" },
                      { cacert = ca })
    plain = T.start_sim({ "--quiet" })
  end)
  teardown(function()
    if sim then sim.stop() end
    if plain then plain.stop() end
  end)
  before_each(function()
    sim.reset()
    plain.reset()
  end)

  local script = [[
    local ok, v = pcall(ecap.request, "GET", "/api/v3/meter/1")
    if ok then print("ok", v.meterId) else print("error", v.kind, v.status, v.message) end
  ]]
  local function call(host_opts)
    return T.expect(0, T.run_script(script, host_opts, { quiet = true, url = sim.url })).stdout
  end

  it("serves https and says so on its first line", function()
    assert.matches("^https://127%.0%.0%.1:%d+$", sim.url)
  end)

  it("verifies the server: without --cacert the throw-away CA is unknown", function()
    local out = call({})
    assert.matches("error\tnetwork", out, 1, true)
    assert.matches("SSL certificate problem", out, 1, true)
    assert.are.equal(0, #sim.requests())
  end)

  it("accepts the server with --cacert naming its CA", function()
    assert.are.equal("ok\t1\n", call({ "--cacert", ca }))
  end)

  it("refuses the server with --cacert naming another CA", function()
    local out = call({ "--cacert", other_ca })
    assert.matches("error\tnetwork", out, 1, true)
    assert.matches("SSL certificate problem", out, 1, true)
    assert.are.equal(0, #sim.requests())
  end)

  it("follows no redirect: a 302 comes back as the error and the other listener sees nothing", function()
    sim.fault({ mode = "body", status = 302, headers = { Location = plain.url .. "/api/v3/meter/1" } })
    local out = call({ "--cacert", ca })
    assert.matches("error\thttp\t302", out, 1, true)
    assert.are.equal(1, #sim.requests())
    assert.are.equal(0, #plain.requests())
  end)
end)

describe("ecaphost sim --tls-cert", function()
  it("refuses a certificate without its key (exit 1, a clear message)", function()
    local r = T.run({ "sim", "--port", "0", "--tls-cert", "/nonexistent.pem" })
    T.expect(1, r)
    assert.matches("--tls-cert and --tls-key go together", r.stderr, 1, true)
  end)

  it("names a certificate file it cannot read", function()
    local r = T.run({ "sim", "--port", "0", "--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key" })
    T.expect(1, r)
    assert.matches("/nonexistent.pem", r.stderr, 1, true)
  end)
end)
