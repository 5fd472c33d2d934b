-- The API key stays out of every path a script can reach, whatever the grants: fs and csv
-- refuse procfs and sysfs (/proc/self/environ, /dev/fd and /dev/stdin lead there) and the key
-- file by its inode (hard links included); the host overwrites $ECAP_API_KEY in its
-- environment block before the script runs; --api-key-fd takes the key on a pipe. Key files
-- and descriptors holding more than 1024 bytes are refused, not truncated.
local T = require "spec.lua.support"

local KEY = "secrets-spec-key-7f3a9c"
local sim, dir, key_path, link_path

-- The key (or a long enough part of it) anywhere in a run's output would be a leak.
local function assert_no_key(r, key)
  key = key or KEY
  local part = key:sub(-10)
  assert.is_nil(r.stdout:find(part, 1, true), "key in stdout: " .. r.stdout)
  assert.is_nil(r.stderr:find(part, 1, true), "key in stderr: " .. r.stderr)
end

-- A script that tries f(path) for each listed function and path and prints one line each:
-- "fname path ok" or "fname path kind".
local TRY = [[
local calls = {
  read = fs.read, lines = function(p) for _ in fs.lines(p) do end end, exists = fs.exists,
  list = fs.list, rows = function(p) for _ in csv.rows(p) do end end,
  write = function(p) fs.write(p, "x") end, append = function(p) fs.append(p, "x") end,
}
local names = {}
for name in (arg[1]):gmatch("[^,]+") do names[#names + 1] = name end
for i = 2, #arg do
  for _, name in ipairs(names) do
    local ok, e = pcall(calls[name], arg[i])
    print(name .. " " .. arg[i] .. " " .. (ok and "ok" or (type(e) == "table" and e.kind or tostring(e))))
  end
end
]]

-- Asserts that every attempt of r was refused with kind "sandbox".
local function assert_all_refused(r, want_lines)
  local n = 0
  for line in r.stdout:gmatch("[^\n]+") do
    n = n + 1
    assert.matches(" sandbox$", line, nil, false)
  end
  assert.are.equal(want_lines, n, T.explain(r))
end

local function run(host_opts, args, env)
  return T.run_script(TRY, host_opts, { quiet = true, args = args, kill_after = 60,
                                        env = T.merge({ ECAP_API_KEY = false }, env) })
end

setup(function()
  sim = T.start_sim({ "--quiet", "--api-key", KEY })
  dir = T.tmpname(".grant")
  assert(os.execute("mkdir -p " .. T.q(dir .. "/sub")))
  key_path = T.write(dir .. "/key", KEY .. "\n")
  assert(os.execute("chmod 600 " .. T.q(key_path)))
  link_path = dir .. "/sub/hardlink"
  assert(os.execute("ln " .. T.q(key_path) .. " " .. T.q(link_path)))
end)

teardown(function()
  if sim then sim.stop() end
end)

describe("the key file under a grant", function()
  it("is refused to every fs function and csv.rows, by name and through a hard link", function()
    local r = T.expect(0, run({ "--base-url", sim.url, "--api-key-file", key_path, "--allow-write", dir },
      { "read,lines,exists,list,rows,write,append", key_path, link_path, dir .. "/sub/../key" }))
    assert_all_refused(r, 21)
    assert_no_key(r)
    assert.are.equal(KEY .. "\n", T.read(key_path)) -- neither written nor appended to
  end)

  it("is refused when the key came on --api-key-fd from that file", function()
    local r = T.sh(string.format("%s run -q --base-url %s --api-key-fd 3 --allow-read %s %s %s %s 3<%s",
      T.q(T.bin), T.q(sim.url), T.q(dir), T.q(T.script(TRY)), "read,exists", T.q(link_path), T.q(key_path)),
      { env = { ECAP_API_KEY = "wrong-key", ECAP_CONFIG = "/dev/null" } })
    T.expect(0, r)
    assert_all_refused(r, 2)
    assert_no_key(r)
  end)

  it("other files of the same grant stay readable", function()
    local other = T.write(dir .. "/data.csv", "a,b\n1,2\n")
    local r = T.expect(0, run({ "--base-url", sim.url, "--api-key-file", key_path, "--allow-read", dir },
      { "read,rows,exists", other }))
    assert.are.equal(("read %s ok\nrows %s ok\nexists %s ok\n"):gsub("%%s", other), r.stdout)
  end)
end)

describe("require", function()
  it("does not load the key file through a module symlinked to it, nor one in /proc", function()
    local lib = T.tmpname(".lib")
    assert(os.execute("mkdir -p " .. T.q(lib)))
    assert(os.execute("ln -s " .. T.q(key_path) .. " " .. T.q(lib .. "/k.lua")))
    assert(os.execute("ln -s /proc/self/environ " .. T.q(lib .. "/env.lua")))
    local script = T.write(lib .. "/main.lua", [[
      print(pcall(require, "k"))
      print(pcall(require, "env"))]])
    local r = T.run({ "run", "-q", "--base-url", sim.url, "--api-key-file", key_path, script },
      { env = { ECAP_API_KEY = false } })
    T.expect(0, r)
    assert_no_key(r)
    local n = 0
    for line in r.stdout:gmatch("[^\n]+") do
      n = n + 1
      assert.matches("^false\t.*not open to scripts", line)
    end
    assert.are.equal(2, n, T.explain(r))
  end)
end)

describe("procfs and sysfs under a grant", function()
  local PATHS = { "/proc/self/environ", "/proc/self/cmdline", "/proc/self/fd", "/proc/self/mem",
                  "/proc/thread-self/environ", "/dev/fd/../environ", "/proc", "/sys" }

  it("are refused: --allow-read /proc /dev /sys does not open /proc/self/environ", function()
    local args = { "read,lines,exists,list,rows" }
    for _, p in ipairs(PATHS) do args[#args + 1] = p end
    local r = T.expect(0, run({ "--base-url", sim.url, "--allow-read", "/proc", "--allow-read", "/dev",
                                "--allow-read", "/sys" }, args, { ECAP_API_KEY = KEY }))
    assert_all_refused(r, 5 * #PATHS)
    assert_no_key(r)
  end)

  it("a symlink inside a grant that leads into /proc is refused too", function()
    local grant = T.tmpname(".grant")
    assert(os.execute("mkdir " .. T.q(grant) .. " && ln -s /proc/self/environ " .. T.q(grant .. "/env")))
    local r = T.expect(0, run({ "--base-url", sim.url, "--allow-read", grant, "--allow-read", "/proc" },
      { "read,lines,exists", grant .. "/env" }, { ECAP_API_KEY = KEY }))
    assert_all_refused(r, 3)
    assert_no_key(r)
  end)
end)

describe("the environment", function()
  it("/proc/PID/environ of a running ecaphost no longer holds $ECAP_API_KEY", function()
    local grant = T.tmpname(".grant")
    assert(os.execute("mkdir " .. T.q(grant)))
    local script = T.script([[fs.write(arg[1] .. "/ready", "x") ecap.sleep(2)]])
    -- The script says it runs (a file), the shell reads the environment block meanwhile.
    local r = T.sh("bash -c " .. T.q(string.format([[
      ECAP_API_KEY=%s ECAP_CONFIG=/dev/null %s run -q --base-url %s --allow-write %s %s %s & pid=$!
      for i in $(seq 200); do [ -e %s/ready ] && break; sleep 0.05; done
      [ -e %s/ready ] && echo running
      tr '\0' '\n' < /proc/$pid/environ | grep -c %s
      wait $pid; echo "exit=$?"]],
      T.q(KEY), T.q(T.bin), T.q(sim.url), T.q(grant), T.q(script), T.q(grant), T.q(grant), T.q(grant),
      T.q(KEY:sub(-10)))))
    assert.matches("running\n0\nexit=0", r.stdout, 1, true)
  end)

  it("the key from the environment still reaches the API", function()
    local r = T.expect(0, T.run_script([[local _, m = ecap.request("GET", "/api/v3/meter/1") print(m.status)]],
      { "--base-url", sim.url }, { quiet = true, env = { ECAP_API_KEY = KEY } }))
    assert.are.equal("200\n", r.stdout)
  end)
end)

describe("--api-key-fd", function()
  local PING = [[local _, m = ecap.request("GET", "/api/v3/meter", { query = { pageSize = 1 } }) print(m.status)]]

  -- Runs PING with --api-key-fd N under bash, redirections given; ECAP_API_KEY is a wrong key,
  -- so only the descriptor's key gets a 200.
  local function ping_fd(fd, redirect, extra)
    return T.sh(string.format("bash -c %s", T.q(string.format("exec %s run -q --base-url %s --api-key-fd %d %s %s %s",
      T.q(T.bin), T.q(sim.url), fd, extra or "", T.q(T.script(PING)), redirect))),
      { env = { ECAP_API_KEY = "wrong-key", ECAP_CONFIG = "/dev/null" } })
  end

  it("reads the key from a pipe (wins over $ECAP_API_KEY); the simulator accepts it", function()
    sim.clear_requests()
    local r = T.expect(0, ping_fd(3, "3< <(printf '%s\\n' " .. T.q(KEY) .. ")"))
    assert.are.equal("200\n", r.stdout)
    local recs = sim.requests()
    assert.are.equal(1, #recs)
    assert.is_true(recs[1].apiKeyAccepted)
  end)

  it("reads the key from a here-string and from standard input", function()
    assert.are.equal("200\n", T.expect(0, ping_fd(3, "3<<<" .. T.q(KEY))).stdout)
    assert.are.equal("200\n", T.expect(0, ping_fd(0, "< <(printf %s " .. T.q(KEY) .. ")")).stdout)
  end)

  it("closes the descriptor before the script runs", function()
    -- a script cannot see descriptors, so ask the kernel: no descriptor of the running process
    -- leads to the file given on fd 3
    local grant = T.tmpname(".grant")
    assert(os.execute("mkdir " .. T.q(grant)))
    local kf = T.write(T.tmpname(".fdkey"), KEY)
    local script = T.script([[fs.write(arg[1] .. "/ready", "x") ecap.sleep(2)]])
    local r = T.sh("bash -c " .. T.q(string.format([[
      %s run -q --base-url %s --api-key-fd 3 --allow-write %s %s %s 3<%s & pid=$!
      for i in $(seq 200); do [ -e %s/ready ] && break; sleep 0.05; done
      echo "open: $(ls -l /proc/$pid/fd | grep -c %s)"
      wait $pid; echo "exit=$?"]], T.q(T.bin), T.q(sim.url), T.q(grant), T.q(script), T.q(grant),
      T.q(kf), T.q(grant), T.q(kf))), { env = { ECAP_API_KEY = "wrong-key", ECAP_CONFIG = "/dev/null" } })
    assert.matches("open: 0\nexit=0", r.stdout, 1, true)
  end)

  it("with --sim: the descriptor is read and closed, the run uses the simulator", function()
    local r = T.expect(0, T.sh(string.format("bash -c %s", T.q(string.format(
      "exec %s run -q --sim --api-key-fd 3 %s 3<<<unused", T.q(T.bin), T.q(T.script(PING)))))))
    assert.are.equal("200\n", r.stdout)
  end)

  it("with --sim, a descriptor the parent did not give is refused, never one of the host's own", function()
    -- the private simulator's sockets would take the lowest free numbers: read before they exist
    for fd = 3, 6 do
      local r = T.sh(string.format("bash -c %s", T.q(string.format(
        "exec 3<&- 4<&- 5<&- 6<&-; exec %s run -q --sim --api-key-fd %d %s", T.q(T.bin), fd,
        T.q(T.script(PING))))))
      assert.are.equal(3, r.code, T.explain(r))
      assert.matches("descriptor " .. fd .. " (--api-key-fd): Bad file descriptor", r.stderr, 1, true)
    end
  end)

  it("refuses a closed descriptor (exit 3), an empty key (exit 3), and --api-key-file with it (exit 2)", function()
    local r = T.expect(3, ping_fd(7, ""))
    assert.matches("descriptor 7", r.stderr, 1, true)
    r = T.expect(3, ping_fd(3, "3</dev/null"))
    assert.matches("empty", r.stderr, 1, true)
    r = T.expect(2, ping_fd(3, "3</dev/null", "--api-key-file " .. T.q(key_path)))
    assert.matches("--api-key-fd", r.stderr, 1, true)
  end)
end)

describe("key size", function()
  -- A key file read into a buffer of 1024 bytes (one for the NUL) lost its last bytes.
  it("a key of 1024 bytes is read whole (it was cut to 1023)", function()
    local long = string.rep("k", 1014) .. "0123456789"
    local lsim = T.start_sim({ "--quiet", "--api-key", long })
    local kf = T.write(T.tmpname(".key"), long)
    assert(os.execute("chmod 600 " .. T.q(kf)))
    local r = T.run_script([[local _, m = ecap.request("GET", "/api/v3/meter/1") print(m.status)]],
      { "--base-url", lsim.url, "--api-key-file", kf }, { quiet = true, env = { ECAP_API_KEY = false } })
    lsim.stop()
    T.expect(0, r)
    assert.are.equal("200\n", r.stdout)
  end)

  it("a key file or descriptor over 1024 bytes is refused with exit 3, naming the limit", function()
    local kf = T.write(T.tmpname(".key"), string.rep("k", 1025))
    assert(os.execute("chmod 600 " .. T.q(kf)))
    local r = T.expect(3, T.run_script("print('ran')", { "--base-url", sim.url, "--api-key-file", kf },
      { env = { ECAP_API_KEY = false } }))
    assert.matches("more than 1024 bytes", r.stderr, 1, true)
    assert.are.equal("", r.stdout)
    r = T.expect(3, T.sh(string.format("%s run --base-url %s --api-key-fd 3 %s 3<%s", T.q(T.bin),
      T.q(sim.url), T.q(T.script("print('ran')")), T.q(kf)), { env = { ECAP_CONFIG = "/dev/null" } }))
    assert.matches("more than 1024 bytes", r.stderr, 1, true)
    assert.are.equal("", r.stdout)
  end)
end)
