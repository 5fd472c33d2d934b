-- The simulator's request handling: authentication, faults, the route table, the endpoints.
-- server.c calls M.init once and then M.handle for every request, under one lock.
--
-- M.handle(method, path, rawquery, headers, body) returns
--   status, body, headers, action, action_arg, latency_ms
-- where action is nil, "hang" (hold the reply action_arg seconds, then close), "reset" (send
-- part of the body, then reset the connection) or "truncate" (announce the full length, send
-- part, close); latency_ms is slept by the server outside the lock.
local json = require "json"
local C = require "sim.check"
local F = require "sim.filter"
local Model = require "sim.model"
local clock = require "sim.clock"

local NULL = json.null
local arr = json.array

local M = {}

local config      -- runtime knobs: latencyMs, failRate, rateLimit, apiKey
local initial     -- the startup config (restored by POST /api/__sim/reset)
local data_text   -- the data file, kept to rebuild the model on reset
local model
local faults = {} -- queued faults, oldest first
local requests = {} -- recorded requests, newest last
local MAX_RECORDED = 500
local bucket = { tokens = 0, at = 0 }
local seq = 0

local JSON_TYPE = "application/json; charset=utf-8"

local function encode(v)
  return json.encode(v)
end

local function reply(status, value, headers)
  headers = headers or {}
  headers["Content-Type"] = JSON_TYPE
  return { status = status, body = encode(value), headers = headers }
end

local function message(status, text, headers)
  return reply(status, { message = text }, headers)
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- ---- query strings -----------------------------------------------------------------------
local function unescape(s)
  s = s:gsub("+", " ")
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local function parse_query(raw)
  local q = {}
  for part in (raw or ""):gmatch("[^&]+") do
    local k, v = part:match("^([^=]*)=(.*)$")
    if not k then k, v = part, "" end
    q[unescape(k)] = unescape(v)
  end
  return q
end

-- Query keys are matched case-insensitively (ASP.NET binds them so).
local function query_get(q)
  local lower = {}
  for k, v in pairs(q) do lower[k:lower()] = v end
  return setmetatable({}, { __index = function(_, k) return lower[k:lower()] end })
end

-- ---- paging ------------------------------------------------------------------------------
local function paged(list, query, view)
  local number = C.query_int(query, "pageNumber", 1, 1, 2147483647)
  local size = C.query_int(query, "pageSize", 250, 1, 1000)
  local total = #list
  local pages = (total + size - 1) // size
  local out = {}
  local first = (number - 1) * size + 1
  for i = first, math.min(total, first + size - 1) do out[#out + 1] = view(list[i]) end
  return reply(200, arr(out), {
    PageNumber = tostring(number), PageSize = tostring(size),
    TotalNumberOfRecords = tostring(total), TotalPages = tostring(pages),
  })
end

local function filter_of(fields, query)
  local text = query.filter
  if text == nil then return function() return true end end
  return F.parse_query(fields, text)
end

-- ---- request bodies ----------------------------------------------------------------------
local function json_body(req, shape)
  local ct = req.headers["content-type"]
  if ct and not ct:lower():find("application/json", 1, true) then
    C.fail(415, "Content-Type must be application/json, got '%s'", ct)
  end
  if req.body == nil or req.body:match("^%s*$") then C.bad("body: a JSON request body is required") end
  local ok, v, err = pcall(json.decode, req.body)
  if not ok then err = v; v = nil end
  if v == nil then C.bad("body: not valid JSON: %s", tostring(err)) end
  if shape == "array" then
    if not C.is_array(v) then C.bad("body: must be a JSON array") end
  elseif not C.is_object(v) then
    C.bad("body: must be a JSON object")
  end
  return v
end

-- ---- endpoints ---------------------------------------------------------------------------
local H = {}

-- GET of one record: its id from the path, found (or 404) and shown.
local function get_one(id_name, find, view)
  return function(_, p)
    return reply(200, view(model, find(model, C.id(id_name, p[id_name]))))
  end
end

-- GET of a list: the records that pass the `filter` query, one page of them, each shown.
local function get_list(fields, order_key, records_key, view)
  return function(req)
    local list = model:list(model[order_key], model[records_key], filter_of(fields, req.query))
    return paged(list, req.query, function(r) return view(model, r) end)
  end
end

H.get_meter = get_one("meterId", Model.meter, Model.meter_response)
H.list_meters = get_list(F.meter, "meter_order", "meters", Model.meter_response)
H.get_group = get_one("meterGroupId", Model.group, Model.group_response)
H.list_groups = get_list(F.group, "group_order", "groups", Model.group_response)
H.get_task = get_one("taskId", Model.task, Model.task_response)
H.list_tasks = get_list(F.task, "task_order", "tasks", Model.task_response)
H.get_account_meter = get_one("accountMeterId", Model.account_meter, Model.account_meter_response)
H.list_bills = get_list(F.bill, "bill_order", "bills", Model.bill_response)

function H.meter_groups(req, p)
  local r = model:meter(C.id("meterId", p.meterId))
  local out = {}
  for _, gid in ipairs(model:group_ids_of_meter(r.meterId)) do
    out[#out + 1] = model:group_response(model.groups[gid])
  end
  return reply(200, arr(out))
end

function H.refresh_group(req, p)
  local g = model:group(C.id("meterGroupId", p.meterGroupId))
  return reply(200, model:group_response(model:refresh_group(g)))
end

function H.refresh_groups()
  local out = {}
  for _, gid in ipairs(model.group_order) do
    local g = model.groups[gid]
    if g.kind == "user" then out[#out + 1] = model:group_response(model:refresh_group(g)) end
  end
  return reply(200, arr(out))
end

function H.edit_account_meter(req, p)
  local id = C.id("accountMeterId", p.accountMeterId)
  local delete_bills = C.query_bool(req.query, "deleteBills") or false
  local b = json_body(req)
  local edit = {
    beginDate = C.date_field(b, "beginDate", "defined"),
    endDate = C.date_field(b, "endDate", "defined"),
    generalLedgerId = C.id_field(b, "generalLedgerId", "defined"),
    vendorTypeId = C.id_field(b, "vendorTypeId", "defined"),
  }
  local am, deleted = model:edit_account_meter(id, edit, delete_bills)
  return reply(200, model:account_meter_response(am), { ["X-Sim-Deleted-Bills"] = tostring(deleted) })
end

local SETTINGS = { "attemptCoolingAdjustment", "attemptHeatingAdjustment", "numBaselineMonths",
                   "baselineStartDate", "coolingNeededAbove", "heatingNeededBelow",
                   "includeMeterInCostAvoidance", "savingsStartDate" }

-- A FilterEdit list judged and compiled against the meter fields: the clauses as echoed in a
-- task, and the predicates of the meters they match. where(i) names element i in errors.
local function compile_filters(filters, where_of)
  local clauses, preds = {}, {}
  for i, f in ipairs(filters) do
    local where = where_of(i)
    if not C.is_object(f) then C.bad("%s: must be an object {fieldId, operator, value}", where) end
    local fieldId = C.id_field(f, "fieldId", "required", where)
    local operator = C.string(f, "operator", "required", { nonempty = true }, where)
    local value = f.value
    if value == nil or value == NULL then C.bad("%s.value: required", where) end
    if type(value) == "number" or type(value) == "boolean" then value = tostring(value) end
    if type(value) ~= "string" then C.bad("%s.value: must be a string", where) end
    local pred, fld, op = F.compile(F.meter, fieldId, operator, value, where)
    preds[#preds + 1] = pred
    clauses[#clauses + 1] = { fieldId = fld.fieldId, operator = op, value = value }
  end
  return clauses, preds
end

function H.bulk_settings(req)
  local b = json_body(req)
  local filters = C.array(b, "filters", "defined") or {}
  local clauses, preds = compile_filters(filters, function(i) return "filters[" .. (i - 1) .. "]" end)
  local s = {
    attemptCoolingAdjustment = C.bool(b, "attemptCoolingAdjustment", "defined"),
    attemptHeatingAdjustment = C.bool(b, "attemptHeatingAdjustment", "defined"),
    numBaselineMonths = C.int(b, "numBaselineMonths", "defined", { min = 12, max = 36 }),
    baselineStartDate = C.date_field(b, "baselineStartDate", "defined"),
    coolingNeededAbove = C.int(b, "coolingNeededAbove", "defined"),
    heatingNeededBelow = C.int(b, "heatingNeededBelow", "defined"),
    includeMeterInCostAvoidance = C.bool(b, "includeMeterInCostAvoidance", "defined"),
    savingsStartDate = C.date_field(b, "savingsStartDate", "defined"),
  }
  if next(s) == nil then
    C.bad("settings: at least one of %s must not be null", table.concat(SETTINGS, ", "))
  end
  if s.coolingNeededAbove and s.heatingNeededBelow and s.coolingNeededAbove < s.heatingNeededBelow then
    C.bad("coolingNeededAbove: must be greater than or equal to heatingNeededBelow (%d < %d)",
          s.coolingNeededAbove, s.heatingNeededBelow)
  end
  local t = model:bulk_cost_avoidance(clauses, preds, s)
  return reply(200, model:task_response(t))
end

-- POST /api/v3/savings/meter/count (GetCostAvoidanceMeterCountV3): how many meters a bulk
-- operation with these filters would touch. Body: a FilterEdit array ([] = every meter);
-- onlyMetersInCAP (default true) counts only meters included in cost avoidance.
function H.meter_count(req)
  local b = json_body(req, "array")
  local _, preds = compile_filters(b, function(i) return "[" .. (i - 1) .. "]" end)
  local only = C.query_bool(req.query, "onlyMetersInCAP")
  if only == nil then only = true end
  local n = 0
  for _, mid in ipairs(model:matching(preds)) do
    if not only or model.meters[mid].costAvoidance.includeMeterInCostAvoidance == true then n = n + 1 end
  end
  return reply(200, { count = n, description = string.format("%d meter%s%s", n, n == 1 and "" or "s",
    only and " included in cost avoidance" or "") })
end

function H.savings_filters()
  local out = {}
  for i, f in ipairs(F.meter_fields) do out[i] = F.response(f) end
  return reply(200, arr(out))
end

function H.release(req, p)
  local r = model:meter(C.id("meterId", p.meterId))
  local b = json_body(req)
  local rel = {
    accountNumber = C.string(b, "accountNumber", "required"),
    dataReleaseFile = C.string(b, "dataReleaseFile", "optional"),
    declined = C.bool(b, "declined", "optional") or false,
    nameOnBill = C.string(b, "nameOnBill", "required", { nonempty = true }),
    serviceAddress = C.string(b, "serviceAddress", "required", { nonempty = true }),
  }
  if not rel.accountNumber:match("^2%d%d%d%d%d%d%d%d%d%d%d$") then
    C.bad("accountNumber: must be a 12 digit number starting with 2, got '%s'", rel.accountNumber)
  end
  return reply(200, model:release_state(model:apply_release(r, rel)))
end

local INTERVALS = { [5] = true, [10] = true, [15] = true, [30] = true, [60] = true, [1440] = true,
                    [10080] = true, [43200] = true }

function H.convert_esa(req, p)
  local r = model:meter(C.id("meterId", p.meterId))
  local b = json_body(req)
  local c = {
    channelDescription = C.string(b, "channelDescription", "optional", { max = 255 }),
    channelImportId = C.string(b, "channelImportId", "optional", { max = 255 }),
    channelInfo = C.string(b, "channelInfo", "required", { max = 50, nonempty = true }),
    dataPointId = C.id_field(b, "dataPointId", "required"),
    observationTypeId = C.id_field(b, "observationTypeId", "required"),
    summarizationMethodId = C.id_field(b, "summarizationMethodId", "required"),
    intervalMinutes = C.int(b, "intervalMinutes", "optional"),
    isCalculated = C.bool(b, "isCalculated", "optional"),
    isPrimaryDemand = C.bool(b, "isPrimaryDemand", "optional"),
    isPrimaryValue = C.bool(b, "isPrimaryValue", "optional"),
  }
  local v = C.object(b, "esaChannelVersion", "optional") or {}
  local P = "esaChannelVersion"
  c.version = {
    formula = C.string(v, "formula", "optional", nil, P),
    isValuePositive = C.bool(v, "isValuePositive", "optional", P),
    maximumReading = C.number(v, "maximumReading", "optional", P),
    minimumReading = C.number(v, "minimumReading", "optional", P),
    multiplier = C.number(v, "multiplier", "optional", P),
    observationRuleId = C.id_field(v, "observationRuleId", "optional", P),
    offset = C.number(v, "offset", "optional", P),
    rollbackAllowance = C.number(v, "rollbackAllowance", "optional", P),
    rolloverValue = C.number(v, "rolloverValue", "optional", P),
    unitId = C.id_field(v, "unitId", "optional", P),
  }
  if c.intervalMinutes ~= nil and not INTERVALS[c.intervalMinutes] then
    C.bad("intervalMinutes: must be one of 5, 10, 15, 30, 60, 1440, 10080, 43200, got %d", c.intervalMinutes)
  end
  if c.isCalculated ~= true then
    C.bad("isCalculated: must be true: the conversion creates a Primary Value formula channel")
  end
  if c.intervalMinutes ~= nil then
    C.bad("intervalMinutes: must be null when isCalculated is true")
  end
  c.formula = c.version.formula
  if c.formula == nil or c.formula:match("^%s*$") then
    C.bad("esaChannelVersion.formula: required (a non-empty formula) when isCalculated is true")
  end
  return reply(200, model:meter_response(model:convert_to_esa(r, c)))
end

-- The file-store upload (UploadFile): multipart/form-data with one file part, streamed by the
-- server (server.c) which hands over only its name, size and checksum.
function H.upload(req, p)
  local typeId = C.id("fileDataTypeId", p.fileDataTypeId)
  local u = req.upload
  if not u then
    C.fail(415, "Content-Type must be multipart/form-data with one file part, got '%s'",
      tostring(req.headers["content-type"]))
  end
  if u.tooBig then C.fail(413, "file: larger than the simulator's upload limit") end
  if u.files < 0 then C.bad("body: malformed multipart/form-data") end
  if u.files == 0 then C.bad("file: the upload has no file part") end
  if u.files > 1 then C.bad("file: one file part expected, got %d", u.files) end
  if u.size == 0 then C.bad("file: the uploaded file %s is empty", u.filename) end
  return reply(200, model:upload_file(typeId, u))
end

-- ---- the control API (/api/__sim/) ---------------------------------------------------------
local MODES = { status = 503, hang = 0, reset = 200, truncate = 200, text = 500, html = 502, body = 200 }

local function fault_view(f)
  return { count = f.count, mode = f.mode, status = f.status, retryAfter = f.retryAfter or NULL,
           pathPrefix = f.pathPrefix or NULL, method = f.method or NULL, seconds = f.seconds,
           body = f.body or NULL, ["repeat"] = f.times, headers = f.headers and json.object(f.headers) or NULL }
end

local function faults_view()
  local out = {}
  for i, f in ipairs(faults) do out[i] = fault_view(f) end
  return { faults = arr(out) }
end

function H.add_fault(req)
  local b = json_body(req)
  local mode = C.string(b, "mode", "required")
  if MODES[mode] == nil then
    C.bad("mode: must be one of status, hang, reset, truncate, text, html, body; got '%s'", mode)
  end
  local headers = b.headers
  if headers ~= nil and headers ~= NULL then
    if type(headers) ~= "table" then C.bad("headers: must be an object of header names to strings") end
    for k, v in pairs(headers) do
      if type(k) ~= "string" or type(v) ~= "string" or not k:match("^[%w-]+$") or v:find("[\r\n]") then
        C.bad("headers: must be an object of header names to strings (one line each)")
      end
    end
  else
    headers = nil
  end
  local f = {
    count = C.int(b, "count", "optional", { min = 1, max = 1000000 }) or 1,
    mode = mode,
    status = C.int(b, "status", "optional", { min = 100, max = 599 }) or MODES[mode],
    retryAfter = C.int(b, "retryAfter", "optional", { min = 0, max = 86400 }),
    pathPrefix = C.string(b, "pathPrefix", "optional"),
    method = C.string(b, "method", "optional"),
    seconds = C.number(b, "seconds", "optional") or 60,
    body = C.string(b, "body", "optional"),
    times = C.int(b, "repeat", "optional", { min = 1, max = 64 * 1024 * 1024 }) or 1,
    headers = headers,
  }
  if #(f.body or "") * f.times > 64 * 1024 * 1024 then C.bad("repeat: body x repeat must be at most 64 MiB") end
  if f.seconds < 0 or f.seconds > 600 then C.bad("seconds: must be from 0 to 600") end
  if f.method then f.method = f.method:upper() end
  faults[#faults + 1] = f
  return reply(200, faults_view())
end

function H.list_faults() return reply(200, faults_view()) end

function H.clear_faults()
  faults = {}
  return reply(200, faults_view())
end

function H.list_requests(req)
  local out = arr(requests)
  local r = reply(200, out)
  if C.query_bool(req.query, "clear") then requests = {} end
  return r
end

function H.clear_requests()
  requests = {}
  return reply(200, arr())
end

local function runtime_view()
  return {
    latencyMs = config.latencyMs, failRate = config.failRate, rateLimit = config.rateLimit,
    taskDelaySeconds = model.taskDelaySeconds, apiKeyRequired = config.apiKey ~= nil,
  }
end

function H.get_config() return reply(200, runtime_view()) end

function H.put_config(req)
  local b = json_body(req)
  local lat = C.number(b, "latencyMs", "optional")
  local fr = C.number(b, "failRate", "optional")
  local rl = C.number(b, "rateLimit", "optional")
  local td = C.number(b, "taskDelaySeconds", "optional")
  if lat and (lat < 0 or lat > 600000) then C.bad("latencyMs: must be from 0 to 600000") end
  if fr and (fr < 0 or fr > 1) then C.bad("failRate: must be from 0 to 1") end
  if rl and rl < 0 then C.bad("rateLimit: must be 0 (none) or more") end
  if td and (td < 0 or td > 3600) then C.bad("taskDelaySeconds: must be from 0 to 3600") end
  if lat then config.latencyMs = lat end
  if fr then config.failRate = fr end
  if rl then config.rateLimit = rl; bucket = { tokens = rl, at = clock.mono() } end
  if td then model.taskDelaySeconds = td end
  return reply(200, runtime_view())
end

local function load_model()
  local ok, data = pcall(json.decode, data_text)
  if not ok or data == nil then error("data: not valid JSON: " .. tostring(ok and "empty" or data), 0) end
  model = Model.new(data)
end

function H.reset()
  load_model()
  if initial.taskDelaySeconds then model.taskDelaySeconds = initial.taskDelaySeconds end
  faults, requests = {}, {}
  config = copy(initial)
  bucket = { tokens = config.rateLimit, at = clock.mono() }
  return reply(200, { message = "simulator reset to its initial data" })
end

function H.state() return reply(200, model:state()) end

-- ---- routes ------------------------------------------------------------------------------
local routes = {}

local function route(method, pattern, handler)
  local segs = {}
  for s in pattern:gmatch("[^/]+") do
    local name = s:match("^{(.+)}$")
    segs[#segs + 1] = name and { param = name } or { lit = s:lower() }
  end
  routes[#routes + 1] = { method = method, segs = segs, handler = handler, pattern = pattern }
end

route("GET", "/api/v3/meter", H.list_meters)
route("GET", "/api/v3/meter/{meterId}", H.get_meter)
route("GET", "/api/v3/meter/{meterId}/group", H.meter_groups)
route("GET", "/api/v3/meterGroup", H.list_groups)
route("GET", "/api/v3/meterGroup/{meterGroupId}", H.get_group)
route("POST", "/api/v3/meterGroup/updateUserAutoGroups", H.refresh_groups)
route("POST", "/api/v3/meterGroup/{meterGroupId}/updateUserAutoGroup", H.refresh_group)
route("GET", "/api/v3/accountmeter/{accountMeterId}", H.get_account_meter)
route("PUT", "/api/v3/accountmeter/{accountMeterId}", H.edit_account_meter)
route("GET", "/api/v3/bill", H.list_bills)
route("PUT", "/api/v3/savings/settings", H.bulk_settings)
route("GET", "/api/v3/savings/filters", H.savings_filters)
route("POST", "/api/v3/savings/meter/count", H.meter_count)
route("GET", "/api/v3/savings/task", H.list_tasks)
route("GET", "/api/v3/savings/task/{taskId}", H.get_task)
route("POST", "/api/v202203/utilityPlatform/meter/{meterId}/release", H.release)
route("POST", "/api/v202510/meter/{meterId}/esaCalculatedMeter", H.convert_esa)
route("POST", "/api/v202105/fileStore/fileDataType/{fileDataTypeId}/upload", H.upload)
route("POST", "/api/__sim/faults", H.add_fault)
route("GET", "/api/__sim/faults", H.list_faults)
route("DELETE", "/api/__sim/faults", H.clear_faults)
route("GET", "/api/__sim/requests", H.list_requests)
route("DELETE", "/api/__sim/requests", H.clear_requests)
route("POST", "/api/__sim/reset", H.reset)
route("GET", "/api/__sim/config", H.get_config)
route("PUT", "/api/__sim/config", H.put_config)
route("GET", "/api/__sim/state", H.state)

-- Finds the route: handler + params, or nil + (list of allowed methods | nil).
local function match(method, path)
  local segs = {}
  for s in path:gmatch("[^/]+") do segs[#segs + 1] = s end
  local allowed = {}
  for _, r in ipairs(routes) do
    if #r.segs == #segs then
      local params, ok = {}, true
      for i, s in ipairs(r.segs) do
        if s.lit then
          if s.lit ~= segs[i]:lower() then ok = false break end
        else
          params[s.param] = segs[i]
        end
      end
      -- A literal segment wins over a parameter (updateUserAutoGroups vs {meterGroupId}).
      if ok then
        if r.method == method then return r.handler, params end
        allowed[#allowed + 1] = r.method
      end
    end
  end
  if #allowed > 0 then return nil, allowed end
  return nil
end

-- ---- faults, limits, auth ----------------------------------------------------------------
local function take_fault(method, path)
  local lpath = path:lower()
  for i, f in ipairs(faults) do
    if (not f.pathPrefix or lpath:sub(1, #f.pathPrefix) == f.pathPrefix:lower())
       and (not f.method or f.method == method) then
      f.count = f.count - 1
      if f.count <= 0 then table.remove(faults, i) end
      return f
    end
  end
  return nil
end

local function rate_limited()
  local rate = config.rateLimit
  if not rate or rate <= 0 then return nil end
  local now = clock.mono()
  local burst = math.max(1, rate)
  bucket.tokens = math.min(burst, bucket.tokens + (now - bucket.at) * rate)
  bucket.at = now
  if bucket.tokens >= 1 then
    bucket.tokens = bucket.tokens - 1
    return nil
  end
  return math.max(1, math.ceil((1 - bucket.tokens) / rate))
end

local HTML = [[<!DOCTYPE html>
<html><head><title>%d Error</title></head>
<body><h1>%d Error</h1><p>The server encountered a temporary error (simulated fault).</p></body></html>
]]

local function fault_reply(f)
  local headers = {}
  if f.retryAfter then headers["Retry-After"] = tostring(f.retryAfter) end
  if f.mode == "status" then
    return message(f.status, "simulated fault: status " .. f.status, headers)
  elseif f.mode == "text" then
    headers["Content-Type"] = "text/plain; charset=utf-8"
    return { status = f.status, body = "Simulated fault: this is not JSON.\n", headers = headers }
  elseif f.mode == "html" then
    headers["Content-Type"] = "text/html; charset=utf-8"
    return { status = f.status, body = string.format(HTML, f.status, f.status), headers = headers }
  elseif f.mode == "body" then
    -- exactly the given body and headers: no Content-Type unless the fault names one
    for k, v in pairs(f.headers or {}) do headers[k] = v end
    return { status = f.status, body = string.rep(f.body or "", f.times), headers = headers }
  end
end

local function record(req, key_present, key_ok)
  local headers = {}
  for k, v in pairs(req.headers) do
    if k ~= "eci-apikey" then headers[k] = v end
  end
  seq = seq + 1
  local body = req.body or ""
  if #body > 65536 then body = body:sub(1, 65536) end
  local rec = {
    seq = seq, time = C.time_text(clock.wall()), method = req.method, path = req.path, query = req.rawquery,
    headers = json.object(headers), apiKeyPresent = key_present, apiKeyAccepted = key_ok, body = body,
  }
  if req.upload then -- what was uploaded, never the bytes
    local u = req.upload
    rec.upload = { part = u.part, fileName = u.filename, contentType = u.contentType, size = u.size,
                   crc32 = u.crc32, files = u.files }
  end
  requests[#requests + 1] = rec
  if #requests > MAX_RECORDED then table.remove(requests, 1) end
  return rec
end

local function dispatch(req)
  local handler, params = match(req.method, req.path)
  if not handler then
    if params then
      table.sort(params)
      return message(405, string.format("method %s is not allowed on %s", req.method, req.path),
                     { Allow = table.concat(params, ", ") })
    end
    return message(404, "no such resource: " .. req.method .. " " .. req.path)
  end
  local ok, res = pcall(handler, req, params)
  if ok then return res end
  if type(res) == "table" and res.status then return message(res.status, res.message) end
  error(res, 0)
end

function M.handle(method, path, rawquery, headers, body, upload)
  local req = { method = method, path = path, rawquery = rawquery or "", headers = headers, body = body,
                upload = upload }
  local ok_q, q = pcall(parse_query, rawquery)
  req.query = query_get(ok_q and q or {})
  local control = path:lower():sub(1, 10) == "/api/__sim"

  local key = headers["eci-apikey"]
  local present = key ~= nil and key ~= ""
  local accepted = present and (config.apiKey == nil or key == config.apiKey)
  local rec = not control and record(req, present, accepted) or nil
  local latency = control and 0 or config.latencyMs

  local res, action, arg
  if not accepted then
    res = message(401, present and "the ECI-ApiKey is not valid" or "an ECI-ApiKey header is required")
  end
  if not res and not control then
    local wait = rate_limited()
    if wait then
      res = message(429, "rate limit exceeded", { ["Retry-After"] = tostring(wait) })
    end
  end
  if not res and not control then
    local f = take_fault(method, path)
    if f then
      if f.mode == "hang" then
        action, arg = "hang", f.seconds
        res = message(504, "hung")
      elseif f.mode == "reset" or f.mode == "truncate" then
        action = f.mode -- the request is served (state changes happen); the reply is cut
      else
        res = fault_reply(f)
      end
    end
  end
  if not res and not control and config.failRate > 0 and math.random() < config.failRate then
    if math.random() < 0.5 then
      res = message(500, "simulated random failure")
    else
      res = message(503, "simulated random failure (unavailable)", { ["Retry-After"] = "1" })
    end
  end
  if not res then res = dispatch(req) end
  if rec then rec.status = res.status end
  return res.status, res.body, res.headers, action, arg, latency
end

-- cfg: {apiKey=, latencyMs=, failRate=, rateLimit=}; text: the data file (JSON).
function M.init(cfg, text)
  initial = {
    apiKey = cfg.apiKey, latencyMs = cfg.latencyMs or 0, failRate = cfg.failRate or 0,
    rateLimit = cfg.rateLimit or 0,
  }
  config = copy(initial)
  data_text = text
  load_model()
  if cfg.taskDelaySeconds then model.taskDelaySeconds = cfg.taskDelaySeconds end
  initial.taskDelaySeconds = cfg.taskDelaySeconds
  bucket = { tokens = math.max(1, config.rateLimit), at = clock.mono() }
  return true
end

return M
