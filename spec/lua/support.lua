-- Shared test support for the busted specs: run the real ecaphost binary, start the real
-- simulator, make raw HTTP requests with the curl command-line tool.
-- Used as: local T = require "spec.lua.support"
local luassert = require "luassert"
local cjson = require "cjson"

local M = {}

M.bin = os.getenv("ECAPHOST") or "./build/ecaphost"
M.src = os.getenv("ECAP_SRC") or "."

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
M.q = shell_quote

local tmpdir
function M.tmpdir()
  if not tmpdir then
    local p = io.popen("mktemp -d /tmp/ecapspec.XXXXXX")
    tmpdir = p:read("*l")
    p:close()
    -- busted ends with os.exit(code, true), which closes the state: the files go with it
    -- (set ECAP_KEEP_TMP=1 to keep them for a look after a failure).
    M._cleanup = setmetatable({}, { __gc = function()
      if not os.getenv("ECAP_KEEP_TMP") then os.execute("rm -rf " .. shell_quote(tmpdir)) end
    end })
  end
  return tmpdir
end

local seq = 0
function M.tmpname(suffix)
  seq = seq + 1
  return string.format("%s/f%d%s", M.tmpdir(), seq, suffix or "")
end

function M.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

function M.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

-- Writes a Lua script to a temp file and returns its path.
function M.script(text)
  return M.write(M.tmpname(".lua"), text)
end

-- Runs a shell command line; returns {code=, stdout=, stderr=}.
-- opts.env: table of environment variables; opts.stdin: text fed to standard input.
function M.sh(cmdline, opts)
  opts = opts or {}
  local out, err = M.tmpname(".out"), M.tmpname(".err")
  local env = ""
  for k, v in pairs(opts.env or {}) do
    env = env .. k .. "=" .. shell_quote(v) .. " "
  end
  local input = "</dev/null"
  if opts.stdin then
    input = "<" .. shell_quote(M.write(M.tmpname(".in"), opts.stdin))
  end
  local full = string.format("%s%s %s >%s 2>%s", env, cmdline, input, shell_quote(out), shell_quote(err))
  local ok, how, code = os.execute(full)
  if how == "signal" then code = 128 + code end
  local r = { code = code, stdout = M.read(out) or "", stderr = M.read(err) or "" }
  os.remove(out); os.remove(err)
  return r
end

-- Why a run failed, for assertion messages: its exit code and both output streams.
function M.explain(r)
  return "exit " .. tostring(r.code) .. "\nstdout: " .. r.stdout .. "\nstderr: " .. r.stderr
end

-- Asserts that run r exited with code; returns r.
function M.expect(code, r)
  luassert.are.equal(code, r.code, M.explain(r))
  return r
end

-- A new table with the fields of each argument in turn, later ones winning (nil ones skipped).
function M.merge(...)
  local t = {}
  for i = 1, select("#", ...) do
    for k, v in pairs(select(i, ...) or {}) do t[k] = v end
  end
  return t
end

local function absolute(path)
  if path:sub(1, 1) == "/" then return path end
  return os.getenv("PWD") .. "/" .. path
end

-- Runs `ecaphost <args...>`; args is a list of strings (quoted here). Returns {code=, stdout=,
-- stderr=}. opts.env: variables over the defaults ECAP_API_KEY=test-key, ECAP_CONFIG=/dev/null
-- (false removes one); ECAP_BASE_URL and XDG_CONFIG_HOME come only from there, never from the
-- caller. opts.stdin: text on standard input; opts.dir: working directory; opts.kill_after:
-- seconds after which a hung binary is killed (exit 137) rather than hanging the suite.
function M.run(args, opts)
  opts = opts or {}
  local env = { ECAP_API_KEY = "test-key", ECAP_CONFIG = "/dev/null" }
  for k, v in pairs(opts.env or {}) do env[k] = v or nil end
  local parts = { "env" }
  for _, name in ipairs { "ECAP_BASE_URL", "XDG_CONFIG_HOME" } do
    if not env[name] then parts[#parts + 1] = "-u " .. name end
  end
  local bin = M.bin
  if opts.dir then
    parts[#parts + 1] = "-C " .. shell_quote(opts.dir)
    bin = absolute(bin) -- env -C changes directory before it runs the binary
  end
  if opts.kill_after then parts[#parts + 1] = "timeout -s KILL " .. opts.kill_after end
  parts[#parts + 1] = shell_quote(bin)
  for _, a in ipairs(args) do parts[#parts + 1] = shell_quote(a) end
  return M.sh(table.concat(parts, " "), { env = env, stdin = opts.stdin })
end

-- Runs script text (or the script file opts.path) as
-- `ecaphost run [-q] <host_opts...> [--base-url opts.url] <script> <opts.args...>`:
-- -q with opts.quiet, --base-url unless host_opts give one. The other opts are M.run's.
function M.run_script(text, host_opts, opts)
  opts = opts or {}
  local args = { "run" }
  if opts.quiet then args[#args + 1] = "-q" end
  local has_base = false
  for _, a in ipairs(host_opts or {}) do
    args[#args + 1] = a
    has_base = has_base or a == "--base-url"
  end
  if opts.url and not has_base then
    args[#args + 1] = "--base-url"
    args[#args + 1] = opts.url
  end
  args[#args + 1] = opts.path or M.script(text)
  for _, a in ipairs(opts.args or {}) do args[#args + 1] = a end
  return M.run(args, opts)
end

-- Starts `ecaphost sim --port 0 <args>` in the background and reads its first line.
-- Returns {url=, port=, pid=, stop=function}. opts.cacert: the CA file that verifies a TLS
-- simulator (--tls-cert), for its control calls.
function M.start_sim(args, opts)
  args = args or {}
  local cacert = (opts or {}).cacert
  local log = M.tmpname(".simlog")
  local parts = { shell_quote(M.bin), "sim", "--port", "0" }
  for _, a in ipairs(args) do parts[#parts + 1] = shell_quote(a) end
  local cmd = string.format("%s </dev/null 2>%s & echo $!", table.concat(parts, " "), shell_quote(log))
  local p = io.popen(cmd, "r")
  local pid = p:read("*l")
  local first = p:read("*l")
  -- The pipe stays open until the simulator exits; keep the handle so stop() can close it.
  local url = first and first:match("^listening on (https?://[%d%.]+:%d+)")
  if not url then
    os.execute("kill " .. pid .. " 2>/dev/null")
    error("simulator did not start: " .. tostring(first) .. "\n" .. (M.read(log) or ""))
  end
  local sim = { url = url, port = tonumber(url:match(":(%d+)$")), pid = pid, log = log }
  function sim.stop()
    os.execute("kill " .. pid .. " 2>/dev/null")
    p:close()
  end
  function sim.log_text() return M.read(log) or "" end
  for i, a in ipairs(args) do
    if a == "--api-key" then sim.key = args[i + 1] end -- the only key it accepts
  end

  -- M.http against the simulator, with the key it accepts.
  function sim.http(path, opts)
    return M.http(url .. path, M.merge(opts, { key = sim.key, cacert = cacert }))
  end
  -- A control call (/api/__sim/...) that must answer 200. body: JSON text, or a table to encode.
  -- Returns the decoded answer (nil if empty) and the raw body.
  function sim.control(method, path, body)
    if type(body) == "table" then body = cjson.encode(body) end
    local r = sim.http(path, { method = method, body = body })
    luassert.are.equal(200, r.status, method .. " " .. path .. ": " .. r.body)
    return r.body ~= "" and M.json(r.body) or nil, r.body
  end
  function sim.reset() return sim.control("POST", "/api/__sim/reset") end
  -- The requests recorded since the last reset (decoded, and the raw body).
  function sim.requests() return sim.control("GET", "/api/__sim/requests") end
  function sim.clear_requests() return sim.control("DELETE", "/api/__sim/requests") end
  -- The recorded requests that change something (not GETs, nor the count: a POST that only
  -- reads): their number, and the paths of the reads in order.
  function sim.writes()
    local n, reads = 0, {}
    for _, q in ipairs((sim.requests())) do
      if q.method == "GET" or q.path == "/api/v3/savings/meter/count" then reads[#reads + 1] = q.path
      else n = n + 1 end
    end
    return n, reads
  end
  -- Queues a fault: spec as for POST /api/__sim/faults.
  function sim.fault(spec) return sim.control("POST", "/api/__sim/faults", spec) end
  -- Changes settings: as for PUT /api/__sim/config.
  function sim.configure(settings) return sim.control("PUT", "/api/__sim/config", settings) end
  return sim
end

-- Raw HTTP with the curl tool: returns {status=, body=, headers={lower-case name = value}}.
-- opts: method, body (string), headers (table), key (ECI-ApiKey value; false for none),
-- cacert (CA file for https).
function M.http(url, opts)
  opts = opts or {}
  local hdr, body = M.tmpname(".hdr"), M.tmpname(".body")
  local parts = { "curl", "-s", "-o", shell_quote(body), "-D", shell_quote(hdr),
                  "-w", "'%{http_code}'", "-X", opts.method or "GET", "--max-time", "20" }
  local key = opts.key
  if key == nil then key = "test-key" end
  if key then parts[#parts + 1] = "-H " .. shell_quote("ECI-ApiKey: " .. key) end
  parts[#parts + 1] = "-H 'Content-Type: application/json'"
  for k, v in pairs(opts.headers or {}) do parts[#parts + 1] = "-H " .. shell_quote(k .. ": " .. v) end
  if opts.cacert then parts[#parts + 1] = "--cacert " .. shell_quote(opts.cacert) end
  if opts.body then
    parts[#parts + 1] = "--data-binary @" .. shell_quote(M.write(M.tmpname(".req"), opts.body))
  end
  parts[#parts + 1] = shell_quote(url)
  local p = io.popen(table.concat(parts, " "), "r")
  local status = tonumber(p:read("*a"))
  p:close()
  local headers = {}
  for line in (M.read(hdr) or ""):gmatch("[^\r\n]+") do
    local k, v = line:match("^([^:]+):%s*(.*)$")
    if k then headers[k:lower()] = v end
  end
  local r = { status = status, body = M.read(body) or "", headers = headers }
  os.remove(hdr); os.remove(body)
  return r
end

-- Decodes JSON with lua-cjson (the spec side's own decoder, independent of ecaphost's).
function M.json(text)
  return cjson.decode(text)
end

return M
