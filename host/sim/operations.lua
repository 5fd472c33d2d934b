-- The operations of the seed pages that change the model's data. Requests reach them already
-- checked for types (sim.lua); these check the rules that need the data. Methods of the model
-- (model.lua merges them in); `self` is the model.
local json = require "json"
local C = require "sim.check"
local Formula = require "sim.formula"
local clock = require "sim.clock"

local NULL = json.null

local function now_text() return C.time_text(clock.wall()) end

local O = {}

-- ---- groups ------------------------------------------------------------------------------
function O:refresh_group(g)
  if g.kind == "manual" then
    C.bad("meterGroupId: group %d is a manual group; only user-defined auto groups can be refreshed", g.meterGroupId)
  elseif g.kind == "system" then
    C.bad("meterGroupId: group %d is a system auto group; only user-defined auto groups can be refreshed", g.meterGroupId)
  end
  g.members = self:filtered_members(g)
  g.lastUpdated = now_text()
  return g
end

-- ---- account meters ----------------------------------------------------------------------
-- edit = {beginDate=, endDate=, generalLedgerId=, vendorTypeId=} already checked for types
-- (dates canonical or nil for null). Returns the relationship and the number of deleted bills.
function O:edit_account_meter(id, edit, delete_bills)
  local am = self:account_meter(id)
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
function O:bulk_cost_avoidance(filters, preds, settings)
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

-- ---- data access releases and files -----------------------------------------------------
function O:apply_release(r, req)
  if r.release.statusId == 1 then
    C.bad("meterId: meter %d does not need a data access release (status Not Applicable)", r.meterId)
  end
  if req.dataReleaseFile and not self.files[req.dataReleaseFile] then
    C.bad("dataReleaseFile: %s was not returned by a file-store upload", req.dataReleaseFile)
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

-- u: {filename=, size=, crc32=, contentType=} of a streamed upload. Returns the reference a
-- release's dataReleaseFile takes.
function O:upload_file(typeId, u)
  local name = string.format("fileStore/%d/%s", typeId, uuid4())
  self.files[name] = { fileDataTypeId = typeId, fileName = u.filename, size = u.size, crc32 = u.crc32,
                       contentType = u.contentType, at = now_text() }
  return name
end

-- ---- ESA calculated meters ---------------------------------------------------------------
-- c: the checked EsaChannelCreate. Refuses a meter with ESA channels and formulas naming
-- unknown or non-ESA meters.
function O:convert_to_esa(r, c)
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

return O
