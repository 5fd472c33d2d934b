-- convert_refresh_update.lua: convert a meter to an ESA calculated meter, refresh the
-- user-defined auto group it belongs in, then bulk-update the cost-avoidance settings of that
-- group's meters and wait for the task.
--
--   step 1  look up the ids: the savings filter field for "meter group" (GET
--           /api/v3/savings/filters); with no arguments under --sim also the meter, the ESA
--           meters of the formula and the user-defined auto groups (all read from the API)
--   step 2  ecap.meters.convert_to_esa_calculated(meter, formula channel "{a} + {b}")
--   step 3  ecap.meter_groups.refresh(group) (no --group: every user-defined auto group), then
--           GET /api/v3/meter/{meter}/group: the meter must now be in the group
--   step 4  ecap.cost_avoidance.count(filters) says how many meters the update touches, then
--           ecap.cost_avoidance.bulk_update{filters = {meter group equals <group>}, ...}
--   step 5  ecap.cost_avoidance.wait(task): the finished task's counts
--
-- Demo, against the built-in simulator's data (every id read from the API, none hard-coded):
--   ecaphost run --sim scripts/workflows/convert_refresh_update.lua
-- For real (all ids explicit: without --sim the script never picks ids itself):
--   ecaphost run --environment us-east scripts/workflows/convert_refresh_update.lua \
--     --meter 1234 --esa-meters 1001,1002 --group 77 \
--     --data-point-id 1 --observation-type-id 1 --summarization-method-id 1 --baseline-months 24
-- See first what it would send: the host option --dry-run prints the conversion and the
-- refreshes (sending only reads) and stops after step 3: the group the meter falls into is only
-- known once it is converted.
--
-- Each `run --sim` starts a fresh simulator, so the demo always works. Run twice against
-- the same server (e.g. `ecaphost sim` and --base-url, ids explicit), the second run fails
-- cleanly at step 2 for the same --meter ("step 2 failed: http 400 ... already has ESA
-- channels") and changes nothing. Without --meter the lookup skips converted meters: it takes
-- only a meter that is not an ESA calculated meter and has no channels, so it picks another.

local USAGE = [[
usage: ecaphost run [--sim] convert_refresh_update.lua [options]
  --meter ID                   meter to convert (no channels yet)
  --esa-meters ID[,ID...]      ESA meters of the formula: {ID} + {ID} ...
  --formula TEXT               the formula itself instead of --esa-meters, e.g. "{12} - {13}"
  --group ID                   user-defined auto group to refresh and update
  --data-point-id ID           } ids of the new formula channel (required without --sim;
  --observation-type-id ID     } under --sim they default to 1)
  --summarization-method-id ID }
  --channel-info TEXT          channel name, at most 50 characters (default "Calculated total")
  --baseline-months N          numBaselineMonths, 12..36 (default 24)
  --include-in-cost-avoidance true|false   (default true)
  --filter-field ID            savings filter field of "meter group" (default: looked up)
  --wait SECONDS               how long to wait for the task (default 300; 0 = do not wait)
Without --sim, --meter, --esa-meters (or --formula), --group and the three channel ids are
required: the script never chooses what to change in a real database.]]

local function usage(problem)
  error((problem and ("convert_refresh_update: " .. problem .. "\n") or "") .. USAGE, 0)
end

-- ---- arguments ---------------------------------------------------------------------------
local OPTIONS = {
  ["meter"] = "id", ["esa-meters"] = "ids", ["formula"] = "text", ["group"] = "id",
  ["data-point-id"] = "id", ["observation-type-id"] = "id", ["summarization-method-id"] = "id",
  ["channel-info"] = "text", ["baseline-months"] = "int", ["include-in-cost-avoidance"] = "bool",
  ["filter-field"] = "id", ["wait"] = "int",
}

local function parse_id(name, s)
  local n = math.tointeger(tonumber(s))
  if not n or n < 1 or n > 2147483647 or not s:match("^%d+$") then
    usage(string.format("--%s wants an id (a whole number >= 1), got %q", name, s))
  end
  return n
end

local function parse_args(argv)
  local opts, i = {}, 1
  while i <= #argv do
    local a = argv[i]
    if a == "-h" or a == "--help" then usage() end
    local name, value = a:match("^%-%-([%w%-]+)=(.*)$")
    if not name then
      name = a:match("^%-%-([%w%-]+)$")
      if not name then usage(string.format("unexpected argument %q", a)) end
      i = i + 1
      value = argv[i]
      if value == nil then usage("--" .. name .. " needs a value") end
    end
    local kind = OPTIONS[name]
    if not kind then usage("unknown option --" .. name) end
    if opts[name] ~= nil then usage("--" .. name .. " given twice") end
    if kind == "id" then
      opts[name] = parse_id(name, value)
    elseif kind == "ids" then
      local list = {}
      for part in (value .. ","):gmatch("([^,]*),") do list[#list + 1] = parse_id(name, part) end
      opts[name] = list
    elseif kind == "int" then
      local n = math.tointeger(tonumber(value))
      if not n or not value:match("^%d+$") then usage(string.format("--%s wants a number, got %q", name, value)) end
      opts[name] = n
    elseif kind == "bool" then
      if value ~= "true" and value ~= "false" then usage(string.format("--%s wants true or false, got %q", name, value)) end
      opts[name] = value == "true"
    else
      opts[name] = value
    end
    i = i + 1
  end
  if opts["esa-meters"] and opts["formula"] then usage("give --esa-meters or --formula, not both") end
  return opts
end

local opts = parse_args(arg)
local simulator = ecap.config().simulator

if not simulator then
  local missing = {}
  for _, k in ipairs({ "meter", "group", "data-point-id", "observation-type-id", "summarization-method-id" }) do
    if opts[k] == nil then missing[#missing + 1] = "--" .. k end
  end
  if not opts["esa-meters"] and not opts["formula"] then missing[#missing + 1] = "--esa-meters (or --formula)" end
  if #missing > 0 then
    usage("not talking to the simulator (no --sim): no default ids; missing " .. table.concat(missing, ", "))
  end
end

-- ---- helpers -----------------------------------------------------------------------------
-- Runs step n; on failure prints "step n failed: <error>" and stops the run with that error.
local function step(n, fn)
  local ok, err = pcall(fn)
  if not ok then
    print(string.format("step %d failed: %s", n, tostring(err)))
    error(err, 0)
  end
end

local function fail(fmt, ...) error(string.format(fmt, ...), 0) end

local function meter_label(m)
  if m.meterCode == nil then return tostring(m.meterId) end
  return string.format("%d %s", m.meterId, m.meterCode)
end

local function plural(n, word) return string.format("%s %s%s", tostring(n), word, n == 1 and "" or "s") end

-- ---- the workflow ------------------------------------------------------------------------
local all_meters     -- every meter (MeterResponse), read once when ids are looked up
local function meters()
  if not all_meters then
    all_meters = {}
    for m in ecap.pages("/api/v3/meter", { pageSize = 500 }) do all_meters[#all_meters + 1] = m end
  end
  return all_meters
end

local meter          -- MeterResponse of the meter to convert
local esa = {}       -- ESA meters of the formula (MeterResponse, or {meterId=} when given)
local formula
local group_ids      -- user-defined auto groups to refresh
local group          -- the group the meter falls into (GroupMeterGroupResponse)
local filter_field   -- savings filter field id of "meter group"
local task

print(string.format("convert_refresh_update: %s", simulator
  and (next(opts) and "simulator, ids from the command line" or "simulator demo, ids read from the API")
  or ("API " .. tostring(ecap.config().base_url))))

step(1, function()
  -- the filter field of "meter group", by its query parameter name
  filter_field = opts["filter-field"]
  if not filter_field then
    local fields = ecap.request("GET", "/api/v3/savings/filters")
    for _, f in ipairs(fields) do
      if f.queryParameterName == "meterGroupId" then filter_field = f.fieldId break end
    end
    if not filter_field then fail("GET /api/v3/savings/filters lists no meterGroupId field (give --filter-field)") end
  end

  if opts.meter then
    meter = ecap.request("GET", "/api/v3/meter/" .. opts.meter)
  else
    -- a meter that is neither an ESA calculated meter nor has channels, virtual ones first
    local candidates = {}
    for _, m in ipairs(meters()) do
      if not m.isEsaCalculatedMeter and #m.channels == 0 then candidates[#candidates + 1] = m end
    end
    for _, m in ipairs(candidates) do
      if not meter or (m.meterType.meterTypeCode == "VIRTUAL" and meter.meterType.meterTypeCode ~= "VIRTUAL") then
        meter = m
      end
    end
    if not meter then fail("no meter left to convert (every meter has channels or is an ESA calculated meter)") end
  end

  if opts.formula then
    formula = opts.formula
  elseif opts["esa-meters"] then
    for i, id in ipairs(opts["esa-meters"]) do esa[i] = { meterId = id } end
  else
    -- ESA meters (with channels, not calculated) of the same commodity, same place first: two
    local function fits(m, same_place)
      return m.meterId ~= meter.meterId and #m.channels > 0 and not m.isEsaCalculatedMeter
        and m.commodity.commodityId == meter.commodity.commodityId
        and (not same_place or m.place.placeId == meter.place.placeId)
    end
    for _, same_place in ipairs({ true, false }) do
      for _, m in ipairs(meters()) do
        if #esa < 2 and fits(m, same_place) then
          local dup = false
          for _, e in ipairs(esa) do dup = dup or e.meterId == m.meterId end
          if not dup then esa[#esa + 1] = m end
        end
      end
    end
    if #esa == 0 then fail("no ESA meter of commodity %s for the formula", meter.commodity.commodityCode) end
  end
  if not formula then
    local refs = {}
    for i, e in ipairs(esa) do refs[i] = "{" .. e.meterId .. "}" end
    formula = table.concat(refs, " + ")
  end

  if opts.group then
    group_ids = { opts.group }
  else
    group_ids = {}
    for g in ecap.pages("/api/v3/meterGroup", { query = { filter = ecap.filter { { "autoGroup", "equals", true } } } }) do
      if g.userDefinedAutoGroup then group_ids[#group_ids + 1] = g.meterGroupId end
    end
    if #group_ids == 0 then fail("no user-defined auto group (GET /api/v3/meterGroup)") end
  end

  local labels = {}
  for i, e in ipairs(esa) do labels[i] = meter_label(e) end
  print(string.format("step 1: meter %s (%s) to convert; formula %s%s; %s %s; meter group filter field %d",
    meter_label(meter), meter.meterInfo or "", formula,
    #labels > 0 and (" over ESA meters " .. table.concat(labels, ", ")) or "",
    opts.group and "group" or "user-defined auto groups", table.concat(group_ids, ","), filter_field))
end)

step(2, function()
  local body = {
    channelInfo = opts["channel-info"] or "Calculated total",
    channelDescription = "Formula channel: " .. formula,
    dataPointId = opts["data-point-id"] or 1,
    observationTypeId = opts["observation-type-id"] or 1,
    summarizationMethodId = opts["summarization-method-id"] or 1,
    isCalculated = true,        -- a Primary Value formula channel: no intervalMinutes
    isPrimaryValue = true,
    isPrimaryDemand = false,
    esaChannelVersion = { formula = formula, multiplier = 1, offset = 0 },
  }
  local m = ecap.meters.convert_to_esa_calculated(meter.meterId, body)
  if ecap.is_dry_run(m) then
    print("step 2: dry run: the conversion is not sent (above)")
    return
  end
  local ch = m.channels[1]
  print(string.format("step 2: converted meter %s: isEsaCalculatedMeter=%s, channel %s (%s)",
    meter_label(m), tostring(m.isEsaCalculatedMeter), ch and tostring(ch.channelId) or "?",
    ch and tostring(ch.channelCode) or "?"))
end)

step(3, function()
  local refreshed = {}
  local results, errors = ecap.parallel(group_ids, function(id) return ecap.meter_groups.refresh(id) end,
                                        { concurrency = 4 })
  for i, id in ipairs(group_ids) do
    if errors[i] then error(errors[i], 0) end
    refreshed[id] = results[i]
  end
  if ecap.config().dry_run then
    -- nothing was converted or refreshed: the group the meter would fall into is not known yet
    print(string.format("step 3: dry run: %s not refreshed (above); steps 4 and 5 need the group"
      .. " meter %s falls into once converted: not previewed", plural(#group_ids, "group"), meter_label(meter)))
    return
  end
  for _, g in ipairs(ecap.request("GET", "/api/v3/meter/" .. meter.meterId .. "/group")) do
    if refreshed[g.meterGroupId] then group = refreshed[g.meterGroupId] break end
  end
  if not group then
    fail("after the refresh meter %s is in none of the groups %s", meter_label(meter), table.concat(group_ids, ","))
  end
  print(string.format("step 3: refreshed %s; meter %s is in %d %s (%s): %s, updated %s",
    plural(#group_ids, "group"), meter_label(meter), group.meterGroupId, tostring(group.meterGroupCode),
    tostring(group.meterGroupInfo), plural(group.memberCount, "member"), tostring(group.lastUpdated)))
end)

if ecap.config().dry_run then
  print("done (dry run: nothing was sent)")
  return
end

step(4, function()
  local filters = { { fieldId = filter_field, operator = "equals", value = tostring(group.meterGroupId) } }
  -- the documented preview: how many meters these filters reach (in cost avoidance or not)
  local preview = ecap.cost_avoidance.count(filters, { onlyMetersInCAP = false })
  print(string.format("step 4: the update will touch %s", plural(preview.count, "meter")))
  task = ecap.cost_avoidance.bulk_update {
    filters = filters,
    numBaselineMonths = opts["baseline-months"] or 24,
    includeMeterInCostAvoidance = opts["include-in-cost-avoidance"] ~= false,
  }   -- the other six settings are sent as null: unchanged
  print(string.format("step 4: cost-avoidance task %d (%s) for group %d: %s, status %s, started %s",
    task.costAvoidanceTaskId, tostring(task.taskGUId), group.meterGroupId,
    plural(task.baselineLog and task.baselineLog.numberOfMeters, "meter"), tostring(task.status),
    tostring(task.beginDate)))
end)

step(5, function()
  local wait = opts.wait or 300
  if wait == 0 then
    print("step 5: not waiting (--wait 0); poll GET /api/v3/savings/task/" .. task.costAvoidanceTaskId)
    return
  end
  local t = ecap.cost_avoidance.wait(task, { timeout = wait, interval = 1 })
  local b, s = t.baselineLog or {}, t.savingsLog or {}
  print(string.format("step 5: task %d %s at %s: baseline %s ok / %s warnings / %s errors of %s;"
    .. " savings %s ok / %s warnings / %s errors", t.costAvoidanceTaskId, tostring(t.status),
    tostring(t.endDate), tostring(b.successCount), tostring(b.warningCount), tostring(b.errorCount),
    plural(b.numberOfMeters, "meter"), tostring(s.successCount), tostring(s.warningCount), tostring(s.errorCount)))
end)

print("done")
