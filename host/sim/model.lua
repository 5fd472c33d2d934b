-- The simulator's data: places, meters, accounts, account-meter relationships, bills, groups,
-- cost-avoidance tasks, data-access releases. This file loads and checks the data file (its
-- format is in docs/simulator.md) and answers lookups; the response shapes are in views.lua,
-- the operations that change the data in operations.lua.
local json = require "json"
local C = require "sim.check"
local F = require "sim.filter"
local Views = require "sim.views"
local Operations = require "sim.operations"
local clock = require "sim.clock"

local NULL = json.null

local Model = {}
Model.__index = Model

-- ---- loading -----------------------------------------------------------------------------
local function need(cond, fmt, ...)
  if not cond then error("data: " .. string.format(fmt, ...), 0) end
end

local function opt(v, default) if v == nil or v == NULL then return default end return v end

local function list_of(data, key)
  local v = opt(data[key], {})
  need(type(v) == "table", "%s must be an array", key)
  return v
end

-- Indexes an array of records by their id field; checks ids are unique int32.
local function by_id(data, key, idfield)
  local t, order = {}, {}
  for i, r in ipairs(list_of(data, key)) do
    need(type(r) == "table", "%s[%d] must be an object", key, i)
    local id = C.as_int32(r[idfield])
    need(id and id >= 1, "%s[%d].%s must be an int32 id", key, i, idfield)
    need(not t[id], "%s: duplicate %s %d", key, idfield, id)
    r[idfield] = id
    t[id] = r
    order[#order + 1] = id
  end
  table.sort(order)
  return t, order
end

-- The stored filters of a group, compiled; "filters[i]" names a clause in messages.
local function group_predicates(g)
  local preds = {}
  for i, f in ipairs(g.filters) do
    preds[i] = F.compile(F.meter, C.as_int32(f.fieldId), f.operator, tostring(f.value), "filters[" .. i .. "]")
  end
  return preds
end

-- Checks a meter and fills in the defaults of its optional fields.
local function load_meter(m, id, r)
  need(type(r.meterCode) == "string", "meter %d: meterCode must be a string", id)
  need(m.places[r.placeId], "meter %d: unknown placeId %s", id, tostring(r.placeId))
  need(m.commodities[r.commodityId], "meter %d: unknown commodityId %s", id, tostring(r.commodityId))
  need(m.meterTypes[r.meterTypeId], "meter %d: unknown meterTypeId %s", id, tostring(r.meterTypeId))
  r.meterInfo = opt(r.meterInfo, r.meterCode)
  r.active = opt(r.active, true)
  r.isEsaCalculatedMeter = opt(r.isEsaCalculatedMeter, false)
  r.channels = list_of(r, "channels")
  for _, ch in ipairs(r.channels) do
    need(C.as_int32(ch.channelId), "meter %d: channel without a channelId", id)
    if ch.channelId >= m.next_channel then m.next_channel = ch.channelId + 1 end
    ch.channelCode = opt(ch.channelCode, r.meterCode .. "-" .. ch.channelId)
  end
  if r.dataProviderId ~= nil and r.dataProviderId ~= NULL then
    need(m.dataProviders[r.dataProviderId], "meter %d: unknown dataProviderId", id)
  end
  local ca = opt(r.costAvoidance, {})
  r.costAvoidance = {
    attemptCoolingAdjustment = opt(ca.attemptCoolingAdjustment, false),
    attemptHeatingAdjustment = opt(ca.attemptHeatingAdjustment, false),
    numBaselineMonths = opt(ca.numBaselineMonths, 12),
    baselineStartDate = opt(ca.baselineStartDate, NULL),
    coolingNeededAbove = opt(ca.coolingNeededAbove, 65),
    heatingNeededBelow = opt(ca.heatingNeededBelow, 55),
    includeMeterInCostAvoidance = opt(ca.includeMeterInCostAvoidance, false),
    savingsStartDate = opt(ca.savingsStartDate, NULL),
  }
  local rel = opt(r.release, {})
  r.release = {
    statusId = opt(rel.statusId, 1),
    submittedDate = opt(rel.submittedDate, NULL),
    releaseId = opt(rel.releaseId, NULL),
  }
  need(Views.RELEASE_INFO[r.release.statusId], "meter %d: release.statusId must be 1..5", id)
  r.createdDate = opt(r.createdDate, "2020-01-01T00:00:00")
  r.modifiedDate = opt(r.modifiedDate, r.createdDate)
end

-- Builds a model from the decoded data file (a table; it is taken over, not copied).
function Model.new(data)
  need(type(data) == "table", "the data file must hold a JSON object")
  local m = setmetatable({}, Model)
  local s = opt(data.settings, {})
  m.taskDelaySeconds = tonumber(opt(s.taskDelaySeconds, 1)) or 1
  m.user = s.user or { fullName = "Simulator User", userCode = "SIM", userId = 1 }
  m.costAvoidanceSettings = s.costAvoidanceSettings or {
    billSelectionOption = "Bill Period", ignoredSpecialAdjustmentType = "None",
    ignoredWeatherAdjustments = false, minimumBillingPeriod = 25,
    skippedMultiAccountIfBillsMissing = false,
  }
  m.timeZone = s.timeZone or { timeZoneCode = "EST", timeZoneId = 1,
                               timeZoneInfo = "(UTC-05:00) Eastern Time (US & Canada)" }

  m.commodities = by_id(data, "commodities", "commodityId")
  m.meterTypes = by_id(data, "meterTypes", "meterTypeId")
  m.units = by_id(data, "units", "unitId")
  m.placeTypes = by_id(data, "placeTypes", "placeTypeId")
  m.places = by_id(data, "places", "placeId")
  m.dataProviders = by_id(data, "dataProviders", "dataProviderId")
  m.vendors = by_id(data, "vendors", "vendorId")
  m.vendorTypes = by_id(data, "vendorTypes", "vendorTypeId")
  m.generalLedgers = by_id(data, "generalLedgers", "generalLedgerId")
  m.accounts = by_id(data, "accounts", "accountId")
  m.meters, m.meter_order = by_id(data, "meters", "meterId")
  m.accountMeters, m.am_order = by_id(data, "accountMeters", "accountMeterId")
  m.bills, m.bill_order = by_id(data, "bills", "billId")
  m.groupCategories = by_id(data, "meterGroupCategories", "meterGroupCategoryId")
  m.groups, m.group_order = by_id(data, "meterGroups", "meterGroupId")
  m.tasks, m.task_order = {}, {}
  m.files = {}

  for id, p in pairs(m.places) do
    need(p.placeCode, "places: place %d has no placeCode", id)
    if p.placeTypeId ~= nil then need(m.placeTypes[p.placeTypeId], "place %d: unknown placeTypeId", id) end
  end
  m.next_channel = 1
  for id, r in pairs(m.meters) do load_meter(m, id, r) end
  m.next_release = 1
  for _, r in pairs(m.meters) do
    local rid = C.as_int32(r.release.releaseId)
    if rid and rid >= m.next_release then m.next_release = rid + 1 end
  end
  for id, a in pairs(m.accounts) do
    need(m.vendors[a.vendorId], "account %d: unknown vendorId %s", id, tostring(a.vendorId))
    a.active = opt(a.active, true)
  end
  for id, am in pairs(m.accountMeters) do
    need(m.accounts[am.accountId], "accountMeter %d: unknown accountId", id)
    need(m.meters[am.meterId], "accountMeter %d: unknown meterId", id)
    need(C.parse_date(am.beginDate), "accountMeter %d: bad beginDate", id)
    need(C.parse_date(am.endDate), "accountMeter %d: bad endDate", id)
    am.generalLedgerId = opt(am.generalLedgerId, NULL)
    am.vendorTypeId = opt(am.vendorTypeId, NULL)
    am.deregulated = opt(am.deregulated, false)
  end
  for id, b in pairs(m.bills) do
    need(m.accounts[b.accountId], "bill %d: unknown accountId", id)
    need(C.parse_date(b.beginDate), "bill %d: bad beginDate", id)
    b.lines = list_of(b, "lines")
    for _, l in ipairs(b.lines) do need(m.meters[l.meterId], "bill %d: line with unknown meterId", id) end
  end
  for id, g in pairs(m.groups) do
    need(g.kind == "manual" or g.kind == "system" or g.kind == "user",
         "meterGroup %d: kind must be manual, system or user", id)
    need(m.groupCategories[g.meterGroupCategoryId], "meterGroup %d: unknown meterGroupCategoryId", id)
    g.members = list_of(g, "members")
    g.filters = list_of(g, "filters")
    g.lastUpdated = opt(g.lastUpdated, NULL)
    local ok, why = pcall(group_predicates, g)
    need(ok, "meterGroup %d: %s", id, type(why) == "table" and why.message or tostring(why))
  end
  return m
end

-- ---- lookups -----------------------------------------------------------------------------
local function find(records, id, what)
  local r = records[id]
  if not r then C.fail(404, "%s %d not found", what, id) end
  return r
end

function Model:meter(id) return find(self.meters, id, "meter") end
function Model:group(id) return find(self.groups, id, "meter group") end
function Model:task(id) return find(self.tasks, id, "cost avoidance task") end
function Model:account_meter(id) return find(self.accountMeters, id, "account meter") end

-- The records of `order` (ids) for which pred(model, record) holds.
function Model:list(order, records, pred)
  local out = {}
  for _, id in ipairs(order) do
    local r = records[id] -- nil for a deleted bill: its id stays in the order
    if r and pred(self, r) then out[#out + 1] = r end
  end
  return out
end

-- Relationships of a meter, oldest first.
function Model:account_meters_of(meterId)
  return self:list(self.am_order, self.accountMeters, function(_, am) return am.meterId == meterId end)
end

-- ---- groups ------------------------------------------------------------------------------
-- Meters matching a list of predicates (all must hold), by id.
function Model:matching(preds)
  local ids = {}
  for _, id in ipairs(self.meter_order) do
    local r = self.meters[id]
    local ok = true
    for _, p in ipairs(preds) do if not p(self, r) then ok = false break end end
    if ok then ids[#ids + 1] = id end
  end
  return ids
end

-- Meters that pass the group's filters now.
function Model:filtered_members(g)
  return self:matching(group_predicates(g))
end

-- Members of a group: manual = its list; system = computed now; user = as of its last refresh.
function Model:members(g)
  if g.kind == "system" then
    self.computing = self.computing or {}
    if self.computing[g.meterGroupId] then return {} end -- a filter naming its own group
    self.computing[g.meterGroupId] = true
    local ok, ids = pcall(self.filtered_members, self, g)
    self.computing[g.meterGroupId] = nil
    if not ok then error(ids, 0) end
    return ids
  end
  return g.members
end

function Model:group_ids_of_meter(meterId)
  local out = {}
  for _, gid in ipairs(self.group_order) do
    for _, mid in ipairs(self:members(self.groups[gid])) do
      if mid == meterId then out[#out + 1] = gid break end
    end
  end
  return out
end

-- ---- tasks -------------------------------------------------------------------------------
-- A task finishes taskDelaySeconds after it began; its endDate is set when that is first seen.
function Model:task_finished(t)
  if t.endDate == NULL and clock.mono() >= t.finishAt then
    t.endDate = C.time_text(t.beginWall + t.delay)
  end
  return t.endDate ~= NULL
end

function Model:task_status(t)
  return self:task_finished(t) and "Completed" or "Processing"
end

-- The response shapes and the operations are methods too.
for _, methods in ipairs { Views, Operations } do
  for name, f in pairs(methods) do
    assert(Model[name] == nil, name)
    Model[name] = f
  end
end

return Model
