-- Every numeric option of the host and the simulator, flags and config file keys, table-driven:
-- NaN, infinities, negative, exponent and hex spellings and out-of-range values are refused
-- with exit 2 (flag) or 3 (config file line), naming the option; good values mean what the
-- docs say. Durations go through one parser (host/lib/duration.c): a bare number is seconds
-- everywhere, the simulator's --latency included.
local T = require "spec.lua.support"

-- ecap.config() as JSON on stdout.
local SHOW_CONFIG = [[print(json.encode(ecap.config()))]]

-- Spellings no numeric option accepts.
local NEVER = { "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e999", "1e3", "-1", "0x10", "", " 5", "5x" }

-- Host flags: name, out-of-range values (beyond NEVER), good value and what ecap.config() shows.
local HOST_FLAGS = {
  { "--http-timeout", { "0", "0.0001", "86401", "25h" }, "500ms", "http_timeout", 0.5 },
  { "--connect-timeout", { "0", "0.0001", "86401", "25h" }, "1m", nil, nil },
  { "--timeout", { "0", "0.0001", "2592001", "721h" }, "1h30m", "timeout", 5400 },
  { "--max-memory", { "0", "0.1", "1048577" }, "64", "max_memory_mb", 64 },
  { "--max-in-flight", { "0", "1.5", "1025" }, "8", "max_in_flight", 8 },
  { "--rate", { "0", "0.0001", "1000001", "20/h", "20/" }, "600/min", "rate", 10 },
}

-- Config file keys: name, out-of-range values, good value, field of ecap.config(), value.
local FILE_KEYS = {
  { "http_timeout", { "0", "86401", "-5s" }, "2m", "http_timeout", 120 },
  { "connect_timeout", { "0", "86401", "-5s" }, "1.5", nil, nil },
}

-- Simulator flags: name, out-of-range values, good value, field of GET /api/__sim/config, value.
local SIM_FLAGS = {
  { "--port", { "65536", "1.5" } },
  { "--latency", { "601", "11m" }, "0.25", "latencyMs", 250 },
  { "--fail-rate", { "1.5", "2" }, "0.5", "failRate", 0.5 },
  { "--rate-limit", { "1000001/s", "20/h", "x/s" }, "600/min", "rateLimit", 10 },
  { "--task-delay", { "3601", "2h" }, "2", "taskDelaySeconds", 2 },
}

local function run_host(opts, env)
  return T.run_script(SHOW_CONFIG, opts, { quiet = true, kill_after = 30, env = env })
end

local function bad_values(extra)
  local all = {}
  for _, v in ipairs(NEVER) do all[#all + 1] = v end
  for _, v in ipairs(extra) do all[#all + 1] = v end
  return all
end

describe("numeric host flags", function()
  for _, f in ipairs(HOST_FLAGS) do
    local flag, out_of_range, good, field, want = f[1], f[2], f[3], f[4], f[5]
    it(flag .. " refuses NaN, infinities and out-of-range values with exit 2", function()
      for _, v in ipairs(bad_values(out_of_range)) do
        local r = run_host({ "--sim", flag, v })
        assert.are.equal(2, r.code, flag .. " '" .. v .. "' " .. T.explain(r))
        assert.matches(flag .. " needs", r.stderr, 1, true)
        assert.are.equal("", r.stdout) -- the script never ran
      end
    end)

    it(flag .. " " .. good .. " is accepted" .. (field and (" as " .. field .. " = " .. want) or ""), function()
      local r = T.expect(0, run_host({ "--sim", flag, good }))
      if field then assert.are.equal(want, T.json(r.stdout)[field]) end
    end)
  end

  it("--flag=value is checked the same way", function()
    local r = T.expect(2, run_host({ "--sim", "--timeout=nan" }))
    assert.matches("--timeout needs", r.stderr, 1, true)
  end)

  it("--api-key-fd refuses what is not a descriptor number", function()
    for _, v in ipairs(bad_values({ "1.5", "99999999999" })) do
      local r = run_host({ "--sim", "--api-key-fd", v })
      assert.are.equal(2, r.code, "'" .. v .. "' " .. T.explain(r))
      assert.matches("--api-key-fd needs", r.stderr, 1, true)
    end
  end)
end)

describe("numeric config file keys", function()
  for _, k in ipairs(FILE_KEYS) do
    local key, out_of_range, good, field, want = k[1], k[2], k[3], k[4], k[5]
    it(key .. " refuses NaN, infinities and out-of-range values with exit 3, naming file:line", function()
      for _, v in ipairs(bad_values(out_of_range)) do
        if v ~= "" and v ~= " 5" then -- an empty value is a malformed line; spaces are trimmed
          local conf = T.write(T.tmpname(".conf"), "# numbers\n" .. key .. " = " .. v .. "\n")
          local r = run_host({ "--sim", "--config", conf })
          assert.are.equal(3, r.code, key .. " = '" .. v .. "' " .. T.explain(r))
          assert.matches(conf .. ":2: " .. key .. " must be", r.stderr, 1, true)
          assert.are.equal("", r.stdout)
        end
      end
    end)

    it(key .. " = " .. good .. " is accepted", function()
      local conf = T.write(T.tmpname(".conf"), key .. " = " .. good .. "\n")
      local r = T.expect(0, run_host({ "--sim", "--config", conf }))
      if field then assert.are.equal(want, T.json(r.stdout)[field]) end
    end)
  end
end)

describe("numeric simulator flags", function()
  for _, f in ipairs(SIM_FLAGS) do
    local flag, out_of_range, good, field, want = f[1], f[2], f[3], f[4], f[5]
    it(flag .. " refuses NaN, infinities and out-of-range values with exit 2", function()
      for _, v in ipairs(bad_values(out_of_range)) do
        -- a value wrongly accepted starts the server: killed after a while, exit 137
        local r = T.run({ "sim", "--port", "0", "--quiet", flag, v }, { kill_after = 5 })
        assert.are.equal(2, r.code, flag .. " '" .. v .. "' " .. T.explain(r))
        assert.matches(flag .. ":", r.stderr, 1, true)
      end
    end)

    if good then
      it(flag .. " " .. good .. " sets " .. field .. " = " .. want, function()
        local sim = T.start_sim({ "--quiet", flag, good })
        local settings = sim.control("GET", "/api/__sim/config")
        sim.stop()
        assert.are.equal(want, settings[field])
      end)
    end
  end

  it("a bare --latency number is seconds, as for every other duration", function()
    local sim = T.start_sim({ "--quiet", "--latency", "1" })
    local settings = sim.control("GET", "/api/__sim/config")
    sim.stop()
    assert.are.equal(1000, settings.latencyMs)
  end)

  it("--latency and --task-delay take the host's units, 1h30m style included", function()
    local sim = T.start_sim({ "--quiet", "--latency", "50ms", "--task-delay", "1m30s" })
    local settings = sim.control("GET", "/api/__sim/config")
    sim.stop()
    assert.are.equal(50, settings.latencyMs)
    assert.are.equal(90, settings.taskDelaySeconds)
  end)
end)
