-- The response shapes of the seed pages, built from the model's records. These are methods of
-- the model (model.lua merges them in); `self` is the model.
local json = require "json"
local C = require "sim.check"
local F = require "sim.filter"

local NULL = json.null
-- obj() encodes as {} and arr() as [] even when empty.
local obj, arr = json.object, json.array

local function nz(v) if v == nil then return NULL end return v end

-- records[id] for an id that may be nil or null.
local function optional(records, id)
  if id ~= nil and id ~= NULL then return records[id] end
end

local V = {}

-- dataAccessReleaseStatusInfo by dataAccessReleaseStatusId.
V.RELEASE_INFO = { "Not Applicable", "Required", "Pending", "Released", "Declined" }

-- ---- children: the small records embedded in responses ------------------------------------
function V:commodity_child(id)
  local c = self.commodities[id]
  local icon = c.commodityIcon or c.icon
  return {
    commodityCode = c.commodityCode, commodityIcon = obj(icon and { code = icon.code, color = icon.color }),
    commodityId = c.commodityId, commodityInfo = nz(c.commodityInfo),
  }
end

function V:meter_type_child(id)
  local t = self.meterTypes[id]
  return { meterTypeCode = t.meterTypeCode, meterTypeId = t.meterTypeId, meterTypeInfo = nz(t.meterTypeInfo) }
end

function V:unit_child(id)
  local u = optional(self.units, id)
  if not u then return NULL end
  return { unitCode = u.unitCode, unitId = u.unitId, unitInfo = nz(u.unitInfo) }
end

function V:gl_child(id)
  local g = optional(self.generalLedgers, id)
  if not g then return NULL end
  return { generalLedgerCode = g.generalLedgerCode, generalLedgerId = g.generalLedgerId,
           generalLedgerInfo = nz(g.generalLedgerInfo) }
end

function V:vendor_type_child(id)
  local v = optional(self.vendorTypes, id)
  if not v then return NULL end
  return { vendorTypeCode = v.vendorTypeCode, vendorTypeId = v.vendorTypeId }
end

function V:vendor_child(id)
  local v = self.vendors[id]
  return { vendorCode = v.vendorCode, vendorId = v.vendorId, vendorInfo = nz(v.vendorInfo) }
end

function V:account_child(id)
  local a = self.accounts[id]
  return {
    accountCode = a.accountCode, accountId = a.accountId, accountInfo = nz(a.accountInfo),
    active = a.active, hasCalculatedMeter = false, hasSplitChildMeter = false,
    hasSplitParentMeter = false, hasSubAccount = false, isSubAccount = false,
    vendor = self:vendor_child(a.vendorId),
  }
end

function V:meter_child(r)
  return {
    active = r.active, commodity = self:commodity_child(r.commodityId), isCalculatedMeter = false,
    isEsaCalculatedMeter = r.isEsaCalculatedMeter, isSplitChildMeter = false,
    isSplitParentMeter = false, meterCode = r.meterCode, meterId = r.meterId,
    meterInfo = nz(r.meterInfo), meterType = self:meter_type_child(r.meterTypeId),
    serialNumber = nz(r.serialNumber),
  }
end

function V:place_child(id)
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

-- ---- responses ---------------------------------------------------------------------------
function V:meter_response(r)
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


function V:group_response(g)
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

function V:account_meter_response(am)
  return {
    account = self:account_child(am.accountId), accountMeterId = am.accountMeterId,
    beginDate = am.beginDate, deregulated = am.deregulated, endDate = am.endDate,
    formTemplates = arr(), generalLedger = self:gl_child(am.generalLedgerId),
    meter = self:meter_child(self.meters[am.meterId]), rates = arr(),
    vendorType = self:vendor_type_child(am.vendorTypeId),
  }
end

-- A bill as GET /api/v3/bill lists it. The reference pages we bind do not publish the bill's
-- shape: these fields are our inference (docs/simulator.md), enough for the deleteBills
-- preview (its account, dates, total cost and the meters its lines are for).
function V:bill_response(b)
  local meters, seen, total = {}, {}, 0
  for _, l in ipairs(b.lines) do
    total = total + (l.cost or 0)
    if not seen[l.meterId] then
      seen[l.meterId] = true
      meters[#meters + 1] = self:meter_child(self.meters[l.meterId])
    end
  end
  return {
    billId = b.billId, account = self:account_child(b.accountId), beginDate = b.beginDate,
    endDate = b.endDate, totalCost = total, meters = arr(meters),
  }
end

function V:task_response(t)
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


function V:release_state(r)
  return {
    releaseStatus = { dataAccessReleaseStatusId = r.release.statusId,
                      dataAccessReleaseStatusInfo = V.RELEASE_INFO[r.release.statusId] },
    submittedDate = r.release.submittedDate,
  }
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

function V:state()
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

return V
