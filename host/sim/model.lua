-- The simulator's data: places, meters, accounts, account-meter relationships, bills, groups,
-- cost-avoidance tasks, data-access releases; the response shapes of the seed pages; the
-- operations that change them. The data file format is documented in docs/simulator.md.
local json = require "json"
local C = require "sim.check"
local F = require "sim.filter"
local Formula = require "sim.formula"

local clock = require "sim.clock"

local NULL = json.null
-- obj() encodes as {} and arr() as [] even when empty.
local obj, arr = json.object, json.array

local function nz(v) if v == nil then return NULL end return v end

local function now_text(offset)
  local t = clock.wall() + (offset or 0)
  return os.date("!%Y-%m-%dT%H:%M:%S", math.floor(t))
end

local RELEASE_INFO = { "Not Applicable", "Required", "Pending", "Released", "Declined" }

local Model = {}
Model.__index = Model

-- ---- loading -----------------------------------------------------------------------------
local function need(cond, fmt, ...)
  if not cond then error("data: " .. string.format(fmt, ...), 0) end
end

local function list_of(data, key)
  local v = data[key]
  if v == nil or v == NULL then return {} end
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

local function max_id(t)
  local m = 0
  for id in pairs(t) do if id > m then m = id end end
  return m
end

local function opt(v, default) if v == nil or v == NULL then return default end return v end

-- Builds a model from the decoded data file (a table; it is taken over, not copied).
function Model.new(data, runtime)
  need(type(data) == "table", "the data file must hold a JSON object")
  local m = setmetatable({ runtime = runtime }, Model)
  local s = data.settings
  if s == nil or s == NULL then s = {} end
  m.settings = s
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
  m.bills = by_id(data, "bills", "billId")
  m.groupCategories = by_id(data, "meterGroupCategories", "meterGroupCategoryId")
  m.groups, m.group_order = by_id(data, "meterGroups", "meterGroupId")
  m.tasks, m.task_order = {}, {}
  m.files = {}

  for id, p in pairs(m.places) do
    need(p.placeCode, "places: place %d has no placeCode", id)
    if p.placeTypeId ~= nil then need(m.placeTypes[p.placeTypeId], "place %d: unknown placeTypeId", id) end
  end
  local channel_max = 0
  for id, r in pairs(m.meters) do
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
      if ch.channelId > channel_max then channel_max = ch.channelId end
      ch.channelCode = opt(ch.channelCode, r.meterCode .. "-" .. ch.channelId)
    end
    if r.dataProviderId ~= nil and r.dataProviderId ~= NULL then
      need(m.dataProviders[r.dataProviderId], "meter %d: unknown dataProviderId", id)
    end
    local ca = r.costAvoidance
    if ca == nil or ca == NULL then ca = {} end
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
    local rel = r.release
    if rel == nil or rel == NULL then rel = {} end
    r.release = {
      statusId = opt(rel.statusId, 1),
      submittedDate = opt(rel.submittedDate, NULL),
      releaseId = opt(rel.releaseId, NULL),
    }
    need(RELEASE_INFO[r.release.statusId], "meter %d: release.statusId must be 1..5", id)
    r.createdDate = opt(r.createdDate, "2020-01-01T00:00:00")
    r.modifiedDate = opt(r.modifiedDate, r.createdDate)
  end
  m.next_channel = channel_max + 1
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
    for i, f in ipairs(g.filters) do
      local ok, why = pcall(F.compile, F.meter, C.as_int32(f.fieldId), f.operator, tostring(f.value),
                            "filters[" .. i .. "]")
      need(ok, "meterGroup %d: %s", id, type(why) == "table" and why.message or tostring(why))
    end
  end
  return m
end

-- ---- small views -------------------------------------------------------------------------
function Model:commodity_child(id)
  local c = self.commodities[id]
  local icon = c.commodityIcon or c.icon
  return {
    commodityCode = c.commodityCode, commodityIcon = obj(icon and { code = icon.code, color = icon.color }),
    commodityId = c.commodityId, commodityInfo = nz(c.commodityInfo),
  }
end

function Model:meter_type_child(id)
  local t = self.meterTypes[id]
  return { meterTypeCode = t.meterTypeCode, meterTypeId = t.meterTypeId, meterTypeInfo = nz(t.meterTypeInfo) }
end

function Model:unit_child(id)
  local u = id and id ~= NULL and self.units[id]
  if not u then return NULL end
  return { unitCode = u.unitCode, unitId = u.unitId, unitInfo = nz(u.unitInfo) }
end

function Model:gl_child(id)
  local g = id and id ~= NULL and self.generalLedgers[id]
  if not g then return NULL end
  return { generalLedgerCode = g.generalLedgerCode, generalLedgerId = g.generalLedgerId,
           generalLedgerInfo = nz(g.generalLedgerInfo) }
end

function Model:vendor_type_child(id)
  local v = id and id ~= NULL and self.vendorTypes[id]
  if not v then return NULL end
  return { vendorTypeCode = v.vendorTypeCode, vendorTypeId = v.vendorTypeId }
end

function Model:vendor_child(id)
  local v = self.vendors[id]
  return { vendorCode = v.vendorCode, vendorId = v.vendorId, vendorInfo = nz(v.vendorInfo) }
end

function Model:account_child(id)
  local a = self.accounts[id]
  return {
    accountCode = a.accountCode, accountId = a.accountId, accountInfo = nz(a.accountInfo),
    active = a.active, hasCalculatedMeter = false, hasSplitChildMeter = false,
    hasSplitParentMeter = false, hasSubAccount = false, isSubAccount = false,
    vendor = self:vendor_child(a.vendorId),
  }
end

function Model:meter_child(r)
  return {
    active = r.active, commodity = self:commodity_child(r.commodityId), isCalculatedMeter = false,
    isEsaCalculatedMeter = r.isEsaCalculatedMeter, isSplitChildMeter = false,
    isSplitParentMeter = false, meterCode = r.meterCode, meterId = r.meterId,
    meterInfo = nz(r.meterInfo), meterType = self:meter_type_child(r.meterTypeId),
    serialNumber = nz(r.serialNumber),
  }
end

function Model:place_child(id)
  local p = self.places[id]
  local pt = p.placeTypeId and self.placeTypes[p.placeTypeId]
  return {
    isDataRolledUp = false, placeCode = p.placeCode, placeId = p.placeId, placeInfo = nz(p.placeInfo),
    placeType = pt and {
      icon = obj(), isSystemPlaceType = pt.isSystemPlaceType or false, placeEntityType = obj(),
      placeTypeCode = pt.placeTypeCode, placeTypeId = pt.placeTypeId, placeTypeInfo = nz(pt.placeTypeInfo),
      structure = pt.structure or false,
    } or NULL,
  }
end

-- Relationships of a meter, oldest first.
function Model:account_meters_of(meterId)
  local out = {}
  for _, id in ipairs(self.am_order) do
    local am = self.accountMeters[id]
    if am.meterId == meterId then out[#out + 1] = am end
  end
  return out
end

function Model:meter_response(r)
  local accounts = {}
  for _, am in ipairs(self:account_meters_of(r.meterId)) do
    local a = self.accounts[am.accountId]
    accounts[#accounts + 1] = {
      accountCode = a.accountCode, accountGeneralLedger = self:gl_child(a.generalLedgerId),
      accountId = a.accountId, accountInfo = nz(a.accountInfo), accountMeterId = am.accountMeterId,
      active = a.active, dataAccessReleaseId = r.release.releaseId, endDate = am.endDate,
      hasCalculatedMeter = false, hasSplitChildMeter = false, hasSplitParentMeter = false,
      hasSubAccount = false, isSubAccount = false, meterGeneralLedger = self:gl_child(am.generalLedgerId),
      startDate = am.beginDate, vendor = self:vendor_child(a.vendorId),
      vendorType = self:vendor_type_child(am.vendorTypeId),
    }
  end
  local channels = {}
  for i, ch in ipairs(r.channels) do
    channels[i] = { channelCode = ch.channelCode, channelId = ch.channelId, interval = nz(ch.interval) }
  end
  local p = self.places[r.placeId]
  local address = NULL
  if p.address then
    local a = p.address
    address = {
      addressTypeId = nz(a.addressTypeId), city = nz(a.city), country = nz(a.country),
      latitude = nz(a.latitude), line1 = nz(a.line1), line2 = nz(a.line2), line3 = nz(a.line3),
      longitude = nz(a.longitude), postalCode = nz(a.postalCode), remitTo = nz(a.remitTo),
      state = nz(a.state),
    }
  end
  return {
    accounts = arr(accounts), active = r.active, address = address,
    billEntryNote = nz(r.billEntryNote), channels = arr(channels),
    commodity = self:commodity_child(r.commodityId), createdBy = self.user,
    createdDate = r.createdDate, demandUnit = self:unit_child(r.demandUnitId),
    emissionSource = r.emissionSourceId and { emissionSourceId = r.emissionSourceId } or NULL,
    includeInCostAvoidance = r.costAvoidance.includeMeterInCostAvoidance,
    includeInEnergyStar = r.includeInEnergyStar or false, isCalculatedMeter = false,
    isEsaCalculatedMeter = r.isEsaCalculatedMeter, isSplitChildMeter = false,
    isSplitParentMeter = false, meterCode = r.meterCode, meterDescription = nz(r.meterDescription),
    meterId = r.meterId, meterInfo = nz(r.meterInfo), meterTimeZone = self.timeZone,
    meterType = self:meter_type_child(r.meterTypeId), modifiedBy = self.user,
    modifiedDate = r.modifiedDate, place = self:place_child(r.placeId), primaryUse = NULL,
    properties = obj(), route = NULL, sentinelStatus = nz(r.sentinelStatus),
    serialNumber = nz(r.serialNumber), serialNumberHistory = NULL,
    useUnit = self:unit_child(r.useUnitId), watticsDataPoint = NULL,
  }
end

-- ---- meters ------------------------------------------------------------------------------
function Model:meter(id)
  local r = self.meters[id]
  if not r then C.fail(404, "meter %d not found", id) end
  return r
end

function Model:list(order, records, pred)
  local out = {}
  for _, id in ipairs(order) do
    local r = records[id]
    if pred(self, r) then out[#out + 1] = r end
  end
  return out
end

-- ---- groups ------------------------------------------------------------------------------
local function compile_group_filters(g)
  local preds = {}
  for i, f in ipairs(g.filters) do
    preds[i] = F.compile(F.meter, C.as_int32(f.fieldId), f.operator, tostring(f.value), "filters[" .. i .. "]")
  end
  return preds
end

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

-- Members of a group: manual = its list; system = computed now; user = as of its last refresh.
function Model:members(g)
  if g.kind == "system" then
    self.computing = self.computing or {}
    if self.computing[g.meterGroupId] then return {} end -- a filter naming its own group
    self.computing[g.meterGroupId] = true
    local ok, ids = pcall(self.matching, self, compile_group_filters(g))
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

function Model:group_response(g)
  local members = self:members(g)
  local code
  for _, mid in ipairs(members) do
    local cc = self.commodities[self.meters[mid].commodityId].commodityCode
    if code == nil then code = cc elseif code ~= cc then code = "MULTIPLE" break end
  end
  local filters = {}
  if g.kind == "user" then
    for i, f in ipairs(g.filters) do
      filters[i] = F.response(F.meter.by_id[C.as_int32(f.fieldId)], f.operator, tostring(f.value))
    end
  end
  local cat = self.groupCategories[g.meterGroupCategoryId]
  return {
    autoGroup = g.kind ~= "manual", lastUpdated = nz(g.lastUpdated), limitMembersByTopmost = false,
    memberCommodityCode = code or "", memberCount = #members, memberCountWithTopmost = #members,
    meterGroupCategory = {
      meterGroupCategoryCode = cat.meterGroupCategoryCode,
      meterGroupCategoryId = cat.meterGroupCategoryId,
      meterGroupCategoryInfo = nz(cat.meterGroupCategoryInfo),
    },
    meterGroupCode = g.meterGroupCode, meterGroupId = g.meterGroupId,
    meterGroupInfo = nz(g.meterGroupInfo), userDefinedAutoGroup = g.kind == "user",
    userDefinedAutoGroupFilters = arr(filters),
  }
end

function Model:group(id)
  local g = self.groups[id]
  if not g then C.fail(404, "meter group %d not found", id) end
  return g
end

function Model:refresh_group(g)
  if g.kind == "manual" then
    C.bad("meterGroupId: group %d is a manual group; only user-defined auto groups can be refreshed", g.meterGroupId)
  elseif g.kind == "system" then
    C.bad("meterGroupId: group %d is a system auto group; only user-defined auto groups can be refreshed", g.meterGroupId)
  end
  g.members = self:matching(compile_group_filters(g))
  g.lastUpdated = now_text()
  return g
end

-- ---- account meters ----------------------------------------------------------------------
function Model:account_meter_response(am)
  return {
    account = self:account_child(am.accountId), accountMeterId = am.accountMeterId,
    beginDate = am.beginDate, deregulated = am.deregulated, endDate = am.endDate,
    formTemplates = arr(), generalLedger = self:gl_child(am.generalLedgerId),
    meter = self:meter_child(self.meters[am.meterId]), rates = arr(),
    vendorType = self:vendor_type_child(am.vendorTypeId),
  }
end

-- edit = {beginDate=, endDate=, generalLedgerId=, vendorTypeId=} already checked for types
-- (dates canonical or nil for null). Returns the relationship and the number of deleted bills.
function Model:edit_account_meter(id, edit, delete_bills)
  local am = self.accountMeters[id]
  if not am then C.fail(404, "account meter %d not found", id) end
  local begin = edit.beginDate or am.beginDate
  local finish = edit.endDate or am.endDate
  if C.date_key(finish) <= C.date_key(begin) then
    C.bad("endDate: must be greater than beginDate (%s), got %s", begin, finish)
  end
  if edit.generalLedgerId and not self.generalLedgers[edit.generalLedgerId] then
    C.bad("generalLedgerId: no general ledger %d", edit.generalLedgerId)
  end
  if edit.vendorTypeId and not self.vendorTypes[edit.vendorTypeId] then
    C.bad("vendorTypeId: no vendor type %d", edit.vendorTypeId)
  end
  -- Other relationships of the same account and meter must not overlap the new range.
  local most_recent = true
  for _, oid in ipairs(self.am_order) do
    local o = self.accountMeters[oid]
    if oid ~= id and o.accountId == am.accountId and o.meterId == am.meterId then
      if C.date_key(o.beginDate) > C.date_key(am.beginDate) then most_recent = false end
      if C.date_key(o.beginDate) < C.date_key(finish) and C.date_key(begin) < C.date_key(o.endDate) then
        C.bad("beginDate/endDate: %s..%s overlaps relationship %d (%s..%s) of the same account and meter",
              begin, finish, oid, o.beginDate, o.endDate)
      end
    end
  end
  local deleted = 0
  if delete_bills then
    if not most_recent then
      C.bad("deleteBills: allowed only on the most recent relationship of account %d and meter %d",
            am.accountId, am.meterId)
    end
    if C.date_key(begin) ~= C.date_key(am.beginDate) then
      C.bad("deleteBills: allowed only when the begin date is unchanged (was %s, now %s)", am.beginDate, begin)
    end
    if C.date_key(finish) == C.date_key(am.endDate) then
      C.bad("deleteBills: allowed only when the end date changes (it is still %s)", am.endDate)
    end
  end
  am.beginDate, am.endDate = begin, finish
  am.generalLedgerId = edit.generalLedgerId or NULL
  am.vendorTypeId = edit.vendorTypeId or NULL
  if delete_bills then
    local cut = C.date_key(finish)
    for bid, b in pairs(self.bills) do
      if b.accountId == am.accountId and C.date_key(b.beginDate) >= cut then
        for _, l in ipairs(b.lines) do
          if l.meterId == am.meterId then
            self.bills[bid] = nil
            deleted = deleted + 1
            break
          end
        end
      end
    end
  end
  return am, deleted
end

-- ---- cost avoidance ----------------------------------------------------------------------
local SETTINGS = { "attemptCoolingAdjustment", "attemptHeatingAdjustment", "numBaselineMonths",
                   "baselineStartDate", "coolingNeededAbove", "heatingNeededBelow",
                   "includeMeterInCostAvoidance", "savingsStartDate" }
Model.SETTINGS = SETTINGS

local function uuid4()
  local b = {}
  for i = 1, 16 do b[i] = math.random(0, 255) end
  b[7] = (b[7] & 0x0f) | 0x40
  b[9] = (b[9] & 0x3f) | 0x80
  local h = {}
  for i = 1, 16 do h[i] = string.format("%02x", b[i]) end
  local s = table.concat(h)
  return s:sub(1, 8) .. "-" .. s:sub(9, 12) .. "-" .. s:sub(13, 16) .. "-" .. s:sub(17, 20) .. "-" .. s:sub(21)
end

-- filters: list of {fieldId=int, operator=, value=text}; settings: name -> value (non-null only).
function Model:bulk_cost_avoidance(filters, preds, settings)
  local ids = self:matching(preds)
  local stamp = now_text()
  for _, mid in ipairs(ids) do
    local r = self.meters[mid]
    for k, v in pairs(settings) do r.costAvoidance[k] = v end
    r.modifiedDate = stamp
  end
  local id = (self.task_order[#self.task_order] or 0) + 1
  local t = {
    costAvoidanceTaskId = id, taskGUId = uuid4(), beginWall = clock.wall(),
    finishAt = clock.mono() + self.taskDelaySeconds, delay = self.taskDelaySeconds,
    beginDate = stamp, endDate = NULL, filters = filters, numberOfMeters = #ids, meterIds = ids,
    settings = settings,
  }
  self.tasks[id] = t
  self.task_order[#self.task_order + 1] = id
  return t
end

function Model:task_finished(t)
  if t.endDate == NULL and clock.mono() >= t.finishAt then
    t.endDate = os.date("!%Y-%m-%dT%H:%M:%S", math.floor(t.beginWall + t.delay))
  end
  return t.endDate ~= NULL
end

function Model:task_status(t)
  return self:task_finished(t) and "Completed" or "Processing"
end

function Model:task(id)
  local t = self.tasks[id]
  if not t then C.fail(404, "cost avoidance task %d not found", id) end
  return t
end

function Model:task_response(t)
  local done = self:task_finished(t)
  local status = done and "Completed" or "Processing"
  local function log()
    return { errorCount = 0, numberOfMeters = t.numberOfMeters, status = status,
             successCount = done and t.numberOfMeters or 0, warningCount = 0 }
  end
  local filters = {}
  for i, f in ipairs(t.filters) do filters[i] = F.response(F.meter.by_id[f.fieldId], f.operator, f.value) end
  local s = self.costAvoidanceSettings
  return {
    baselineLog = log(), beginDate = t.beginDate, costAvoidanceTaskId = t.costAvoidanceTaskId,
    endDate = t.endDate, filters = arr(filters), hasAttachments = false, message = NULL,
    reason = "Bulk settings update", savingsLog = log(),
    settings = {
      billSelectionOption = s.billSelectionOption, ignoredSpecialAdjustmentType = s.ignoredSpecialAdjustmentType,
      ignoredWeatherAdjustments = s.ignoredWeatherAdjustments, minimumBillingPeriod = s.minimumBillingPeriod,
      skippedMultiAccountIfBillsMissing = s.skippedMultiAccountIfBillsMissing,
    },
    status = status, taskGUId = t.taskGUId, taskNote = NULL,
    taskType = { taskTypeCode = "COSTAVOIDANCE", taskTypeId = 1, taskTypeInfo = "Cost Avoidance" },
    user = self.user,
  }
end

-- ---- data access releases ----------------------------------------------------------------
function Model:release_state(r)
  return {
    releaseStatus = { dataAccessReleaseStatusId = r.release.statusId,
                      dataAccessReleaseStatusInfo = RELEASE_INFO[r.release.statusId] },
    submittedDate = r.release.submittedDate,
  }
end

function Model:apply_release(r, req)
  if r.release.statusId == 1 then
    C.bad("meterId: meter %d does not need a data access release (status Not Applicable)", r.meterId)
  end
  if req.declined then
    local p = r.dataProviderId and r.dataProviderId ~= NULL and self.dataProviders[r.dataProviderId]
    if not (p and p.supportsDecline) then
      C.bad("declined: the data provider of meter %d does not support declining a release", r.meterId)
    end
  end
  local stamp = now_text()
  r.release = {
    statusId = req.declined and 5 or 3, submittedDate = stamp, releaseId = self.next_release,
    accountNumber = req.accountNumber, nameOnBill = req.nameOnBill, serviceAddress = req.serviceAddress,
    dataReleaseFile = req.dataReleaseFile,
  }
  self.next_release = self.next_release + 1
  r.modifiedDate = stamp
  return r
end

function Model:upload_file(typeId, size)
  local name = string.format("fileStore/%d/%s", typeId, uuid4())
  self.files[name] = { size = size, at = now_text() }
  return name
end

-- ---- ESA calculated meters ---------------------------------------------------------------
-- c: the checked EsaChannelCreate. Refuses a meter with ESA channels and formulas naming
-- unknown or non-ESA meters.
function Model:convert_to_esa(r, c)
  if #r.channels > 0 then
    C.bad("meterId: meter %d already has ESA channels; only a meter with no channels can be converted", r.meterId)
  end
  local refs, err = Formula.parse(c.formula)
  if not refs then C.bad("esaChannelVersion.formula: %s", err) end
  if #refs == 0 then C.bad("esaChannelVersion.formula: must reference at least one ESA meter, as {meterId}") end
  local interval
  for _, id in ipairs(refs) do
    local o = self.meters[id]
    if not o then C.bad("esaChannelVersion.formula: meter {%d} does not exist", id) end
    if #o.channels == 0 then
      C.bad("esaChannelVersion.formula: meter {%d} is not an ESA meter (it has no channels)", id)
    end
    local ch = o.channels[1]
    for _, x in ipairs(o.channels) do if x.isPrimaryValue then ch = x end end
    local iv = C.as_int32(ch.interval)
    if iv and (not interval or iv > interval) then interval = iv end
  end
  local ch = {
    channelId = self.next_channel, channelCode = c.channelInfo, interval = interval or NULL,
    isPrimaryValue = true, isCalculated = true, formula = c.formula, references = refs,
    channelDescription = c.channelDescription, channelImportId = c.channelImportId,
    dataPointId = c.dataPointId, observationTypeId = c.observationTypeId,
    summarizationMethodId = c.summarizationMethodId, version = c.version,
  }
  self.next_channel = self.next_channel + 1
  r.channels = { ch }
  r.isEsaCalculatedMeter = true
  r.modifiedDate = now_text()
  return r
end

-- ---- the whole state (for GET /api/__sim/state) ------------------------------------------
local function values(t, order)
  local out = {}
  if order then
    for _, id in ipairs(order) do if t[id] then out[#out + 1] = t[id] end end
  else
    local ids = {}
    for id in pairs(t) do ids[#ids + 1] = id end
    table.sort(ids)
    for _, id in ipairs(ids) do out[#out + 1] = t[id] end
  end
  return arr(out)
end

function Model:state()
  local groups = {}
  for _, gid in ipairs(self.group_order) do
    local g = self.groups[gid]
    local copy = {}
    for k, v in pairs(g) do copy[k] = v end
    copy.members = arr(self:members(g))
    copy.filters = arr(g.filters)
    groups[#groups + 1] = copy
  end
  local tasks = {}
  for _, id in ipairs(self.task_order) do tasks[#tasks + 1] = self:task_response(self.tasks[id]) end
  return {
    meters = values(self.meters, self.meter_order), accountMeters = values(self.accountMeters, self.am_order),
    bills = values(self.bills), meterGroups = arr(groups), costAvoidanceTasks = arr(tasks),
    accounts = values(self.accounts), places = values(self.places),
    settings = { taskDelaySeconds = self.taskDelaySeconds },
  }
end

Model.now_text = now_text
return Model
