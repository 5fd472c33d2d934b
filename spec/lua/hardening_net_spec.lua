-- The request path under hostile scripts and odd replies (issue 8): a finalizer that edits the
-- query table mid-call, header counts and sizes, the key header's size, replies decoded by
-- their Content-Type. Real binary, real simulator.
local T = require "spec.lua.support"

describe("request path hardening", function()
  local sim

  setup(function() sim = T.start_sim({ "--quiet" }) end)
  teardown(function() sim.stop() end)
  before_each(function() sim.reset() end)

  local function run(text, host_opts, opts)
    return T.run_script(text, host_opts, T.merge({ quiet = true, url = sim.url }, opts))
  end

  local function out(text, host_opts)
    return T.expect(0, run(text, host_opts)).stdout
  end

  describe("opts.query", function()
    -- The host used to keep raw char* keys of the script's table while it allocated: a finalizer
    -- that deletes keys mid-call, and a later GC cycle, freed them under it (the ASan build
    -- reports a heap-use-after-free in lua_pushstring <- add_query; the release build showed
    -- freed bytes in an error message). Every finalizer here leaves garbage larger than the live
    -- heap, so each allocation check in the call runs a whole GC cycle and the next finalizer;
    -- the K-th one after the call starts deletes the z keys, for every K over the call.
    it("survives a finalizer that deletes query keys during the call", function()
      local stdout = out([[
        local q, calls, started, K, chain
        local function arm()
          setmetatable({}, { __gc = function()
            if not chain then return end
            started = true
            calls = calls + 1
            if calls == K then
              for k in pairs(q) do if k:sub(1, 1) == "z" then q[k] = nil end end
            end
            local garbage = string.rep("g", 1 << 17)
            arm()
          end })
        end
        for k = 1, 16 do
          q = {}
          for i = 1, 20 do q[string.rep(string.char(96 + i), 100) .. i] = i end
          for i = 1, 8 do q[string.rep("z", 60) .. i] = i end
          chain, started, calls, K = true, false, 0, -1
          arm()
          while not started do local _ = {} end
          K, calls = k, 0
          local ok, err = pcall(ecap.request, "GET", "/api/v3/meter/1", { query = q })
          chain = false
          if not ok then
            -- the only acceptable failure: a key vanished, and the message names it intact
            local msg = tostring(err)
            assert(msg:find("query parameter " .. string.rep("z", 60) .. "%d must be"), msg)
          end
        end
        print("ok")
      ]])
      assert.are.equal("ok\n", stdout)
    end)
  end)

  describe("opts.headers", function()
    it("takes at most 64 extra headers and 8 KB per header line", function()
      local stdout = out([[
        local function try(n, size)
          local h = {}
          for i = 1, n do h["X-H" .. i] = string.rep("v", size) end
          local ok, err = pcall(ecap.request, "GET", "/api/v3/meter/1", { headers = h })
          return ok and "ok" or (err.kind .. ": " .. err.message)
        end
        print(try(64, 10))
        print(try(65, 10))
        print(try(1, 8192 - #"X-H1: "))
        print(try(1, 8192 - #"X-H1: " + 1))
      ]])
      local lines = {}
      for l in stdout:gmatch("[^\n]+") do lines[#lines + 1] = l end
      assert.are.equal("ok", lines[1], stdout)
      assert.matches("validation: opts.headers: too many headers (at most 64)", lines[2], 1, true)
      assert.are.equal("ok", lines[3], stdout)
      assert.matches("validation: opts.headers: header X-H1 is too long (at most 8192 bytes per line)",
                     lines[4], 1, true)
    end)

    -- Header lists, URL copies and reply buffers are the host's memory spent for the script:
    -- 1024 requests waiting at once with 32 KB of headers each hold 32 MB, past --max-memory 16.
    it("counts the requests' header lists against --max-memory", function()
      sim.configure({ latencyMs = 300 })
      local r = run([[
        local h = {}
        for i = 1, 16 do h["X-H" .. i] = string.rep("v", 2000) end
        local outer = {}
        for i = 1, 32 do outer[i] = i end
        ecap.parallel(outer, function()
          ecap.parallel(outer, function()
            ecap.request("GET", "/api/v3/meter/1", { headers = h })
          end, { concurrency = 32 })
        end, { concurrency = 32 })
        print("done")
      ]], { "--max-memory", "16" })
      T.expect(5, r)
      assert.matches("memory limit exceeded", r.stderr, 1, true)
    end)
  end)

  describe("the key header", function()
    it("takes a key longer than a fixed line buffer", function()
      local r = run([[print(ecap.request("GET", "/api/v3/meter/1").meterId)]], nil,
                    { env = { ECAP_API_KEY = string.rep("k", 1200) } })
      T.expect(0, r)
      assert.are.equal("1\n", r.stdout)
      local req = sim.requests()
      assert.is_true(req[#req].apiKeyPresent)
    end)
  end)
end)

describe("reply bodies", function()
  local sim

  setup(function() sim = T.start_sim({ "--quiet" }) end)
  teardown(function() sim.stop() end)
  before_each(function() sim.reset() end)

  -- Each case: a reply the simulator sends for /api/caseN, and what ecap.request gives back.
  local cases = {
    { ct = "application/json", body = "42", want = "number 42" },
    { ct = "application/json", body = "true", want = "boolean true" },
    { ct = "application/json", body = "false", want = "boolean false" },
    { ct = "application/json", body = "null", want = "null" },
    { ct = "application/json", body = "\239\187\191{\"a\":1}", want = "table a=1" },
    { ct = "APPLICATION/JSON; Charset=UTF-8", body = " [1,2]", want = "table #2" },
    { ct = "application/problem+json; charset=utf-8", body = "{\"a\":2}", want = "table a=2" },
    { body = "42", want = "number 42" },
    { body = "\"s\"", want = "string s" },
    { body = "hello", want = "string hello" },
    { ct = "text/plain", body = "42", want = "string 42" },
    { ct = "text/plain", body = "{\"a\":1}", want = "string {\"a\":1}" },
    { ct = "application/json", body = "{bad", want = "error http reply is not valid JSON" },
    { ct = "application/json", body = "{bad", status = 500, want = "error http 500 body {bad" },
  }

  it("decodes by Content-Type: JSON types always, no type when it parses, other types never", function()
    for i, c in ipairs(cases) do
      sim.fault({ mode = "body", pathPrefix = "/api/case" .. i .. "/", status = c.status,
                  body = c.body, headers = c.ct and { ["Content-Type"] = c.ct } or nil })
    end
    local r = T.expect(0, T.run_script([[
      local function show(v)
        if v == json.null then return "null" end
        if type(v) == "table" then
          return v.a and ("table a=" .. v.a) or ("table #" .. #v)
        end
        return type(v) .. " " .. tostring(v)
      end
      for i = 1, tonumber(arg[1]) do
        local ok, v = pcall(ecap.request, "GET", "/api/case" .. i .. "/x")
        if ok then
          print(show(v))
        elseif v.status ~= 200 then
          print("error " .. v.kind .. " " .. v.status .. " body " .. tostring(v.body))
        else
          print("error " .. v.kind .. " " .. v.message)
        end
      end
    ]], { "--retries", "0" }, { quiet = true, url = sim.url, args = { tostring(#cases) } }))
    local i = 0
    for line in r.stdout:gmatch("[^\n]+") do
      i = i + 1
      assert.matches(cases[i].want, line, 1, true)
    end
    assert.are.equal(#cases, i, r.stdout)
  end)
end)
