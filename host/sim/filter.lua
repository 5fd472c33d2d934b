-- Filter fields and operators of the simulator.
--
-- One field set per kind of record. The meter fields (with their fieldIds) are what
-- GET /api/v3/savings/filters lists, what user-defined auto groups filter on, and what bulk
-- cost-avoidance updates filter on; list endpoints accept the same fields in their `filter`
-- query (`<queryParameterName> <operator> '<value>'`, clauses joined with ` and `).
local C = require "sim.check"

local F = {}

F.DATA_TYPES = {
  Number = { dataTypeCode = "Number", dataTypeId = 1, dataTypeInfo = "Number" },
  String = { dataTypeCode = "String", dataTypeId = 2, dataTypeInfo = "String" },
  Boolean = { dataTypeCode = "Boolean", dataTypeId = 3, dataTypeInfo = "Boolean" },
  Date = { dataTypeCode = "Date", dataTypeId = 4, dataTypeInfo = "Date" },
}

F.OPERATORS = {
  Number = { "equals", "not equals", "greater than", "greater than or equal", "less than",
             "less than or equal" },
  String = { "equals", "not equals", "like", "not like", "greater than", "less than" },
  Boolean = { "equals", "not equals" },
  Date = { "equals", "not equals", "greater than", "greater than or equal", "less than",
           "less than or equal" },
}

-- A field: fieldId, queryParameterName, caption, type, get(model, record) -> value or list.
-- A list value (e.g. a meter's group ids) matches `equals` when any element does.
local function field(id, name, caption, typ, get, extra)
  local f = { fieldId = id, queryParameterName = name, caption = caption, type = typ, get = get }
  for k, v in pairs(extra or {}) do f[k] = v end
  return f
end

-- Meter fields (the savings filters). `m` is a model, `r` a meter record.
F.meter_fields = {
  field(1, "meterGroupId", "Meter Group", "Number",
        function(m, r) return m:group_ids_of_meter(r.meterId) end, { recommended = true }),
  field(2, "meterCode", "Meter Code", "String", function(_, r) return r.meterCode end),
  field(3, "commodityCode", "Commodity Code", "String",
        function(m, r) return m.commodities[r.commodityId].commodityCode end),
  field(4, "placeCode", "Place Code", "String", function(m, r) return m.places[r.placeId].placeCode end),
  field(5, "active", "Active", "Boolean", function(_, r) return r.active end),
  field(6, "isEsaCalculatedMeter", "ESA Calculated Meter", "Boolean",
        function(_, r) return r.isEsaCalculatedMeter end),
  field(7, "meterTypeCode", "Meter Type", "String",
        function(m, r) return m.meterTypes[r.meterTypeId].meterTypeCode end),
  field(8, "meterId", "Meter ID", "Number", function(_, r) return r.meterId end),
  field(9, "meterInfo", "Meter Name", "String", function(_, r) return r.meterInfo end),
  field(10, "commodityId", "Commodity", "Number", function(_, r) return r.commodityId end),
  field(11, "placeId", "Place", "Number", function(_, r) return r.placeId end),
  field(12, "includeInCostAvoidance", "Include in Cost Avoidance", "Boolean",
        function(_, r) return r.costAvoidance.includeMeterInCostAvoidance end),
  field(13, "isEsaMeter", "ESA Meter (has interval channels)", "Boolean",
        function(_, r) return #r.channels > 0 end),
  field(14, "dataAccessReleaseStatusId", "Data Access Release Status", "Number",
        function(_, r) return r.release.statusId end),
}

F.group_fields = {
  field(101, "meterGroupId", "Meter Group ID", "Number", function(_, g) return g.meterGroupId end),
  field(102, "meterGroupCode", "Meter Group Code", "String", function(_, g) return g.meterGroupCode end),
  field(103, "meterGroupInfo", "Meter Group Name", "String", function(_, g) return g.meterGroupInfo end),
  field(104, "autoGroup", "Auto Group", "Boolean", function(_, g) return g.kind ~= "manual" end),
  field(105, "userDefinedAutoGroup", "User-Defined Auto Group", "Boolean",
        function(_, g) return g.kind == "user" end),
  field(106, "meterGroupCategoryCode", "Meter Group Category Code", "String",
        function(m, g) return m.groupCategories[g.meterGroupCategoryId].meterGroupCategoryCode end),
  field(107, "meterGroupCategoryId", "Meter Group Category", "Number",
        function(_, g) return g.meterGroupCategoryId end),
}

F.task_fields = {
  field(201, "costAvoidanceTaskId", "Task ID", "Number", function(_, t) return t.costAvoidanceTaskId end),
  field(202, "status", "Status", "String", function(m, t) return m:task_status(t) end),
  field(203, "beginDate", "Begin Date", "Date", function(_, t) return t.beginDate end),
  field(204, "finished", "Finished", "Boolean", function(m, t) return m:task_finished(t) end),
}

-- Bill fields: `filter=accountId equals '1234'` is the documented example.
F.bill_fields = {
  field(301, "billId", "Bill ID", "Number", function(_, b) return b.billId end),
  field(302, "accountId", "Account", "Number", function(_, b) return b.accountId end),
  field(303, "beginDate", "Begin Date", "Date", function(_, b) return b.beginDate end),
  field(304, "endDate", "End Date", "Date", function(_, b) return b.endDate end),
  field(305, "meterId", "Meter", "Number", function(_, b)
    local ids = {}
    for i, l in ipairs(b.lines) do ids[i] = l.meterId end
    return ids
  end),
}

local function index(fields)
  local by_id, by_name = {}, {}
  for _, f in ipairs(fields) do
    by_id[f.fieldId] = f
    by_name[f.queryParameterName:lower()] = f
  end
  return { list = fields, by_id = by_id, by_name = by_name }
end
F.meter = index(F.meter_fields)
F.group = index(F.group_fields)
F.task = index(F.task_fields)
F.bill = index(F.bill_fields)

local function has_op(f, op)
  for _, o in ipairs(F.OPERATORS[f.type]) do if o == op then return true end end
  return false
end

-- Turns a text value into the field's type; nil + reason when it does not fit.
local function coerce(f, text)
  if f.type == "Number" then
    local n = tonumber(text)
    if not n then return nil, "is not a number" end
    return n
  elseif f.type == "Boolean" then
    local l = text:lower()
    if l == "true" or l == "1" then return true end
    if l == "false" or l == "0" then return false end
    return nil, "is not true or false"
  elseif f.type == "Date" then
    local canon, key = C.parse_date(text)
    if not canon then return nil, key end
    return key
  end
  return text:lower()
end

-- `like`: % matches any run of characters, _ one character; case-insensitive.
local function like_to_pattern(v)
  local out = {}
  for ch in v:lower():gmatch(utf8.charpattern) do
    if ch == "%" then out[#out + 1] = ".-"
    elseif ch == "_" then out[#out + 1] = "."
    elseif ch:match("^[%^%$%(%)%.%[%]%*%+%-%?%%]$") then out[#out + 1] = "%" .. ch
    else out[#out + 1] = ch end
  end
  return "^" .. table.concat(out) .. "$"
end

local function norm(f, v)
  if v == nil or v == C.NULL then return nil end
  if f.type == "String" then return tostring(v):lower() end
  if f.type == "Date" then return C.date_key(v) end
  return v
end

local function test_one(op, have, want, pat)
  if op == "like" then return have ~= nil and have:match(pat) ~= nil end
  if op == "not like" then return have == nil or have:match(pat) == nil end
  if op == "equals" then return have == want end
  if op == "not equals" then return have ~= want end
  if have == nil then return false end
  if op == "greater than" then return have > want end
  if op == "greater than or equal" then return have >= want end
  if op == "less than" then return have < want end
  if op == "less than or equal" then return have <= want end
  return false
end

-- Compiles one clause {field, operator, value(text)} into a predicate on (model, record).
-- `where` names the clause in messages.
function F.compile(fields, fieldref, operator, value, where)
  local f
  if math.type(fieldref) == "integer" then
    f = fields.by_id[fieldref]
    if not f then C.bad("%s.fieldId: unknown filter field %d (see GET /api/v3/savings/filters)", where, fieldref) end
  else
    f = fields.by_name[tostring(fieldref):lower()]
    if not f then C.bad("%s: unknown filter field '%s'", where, tostring(fieldref)) end
  end
  local op = tostring(operator):lower():gsub("%s+", " ")
  if not has_op(f, op) then
    C.bad("%s: operator '%s' is not available for %s (one of: %s)", where, tostring(operator),
          f.queryParameterName, table.concat(F.OPERATORS[f.type], ", "))
  end
  local want, pat
  if op == "like" or op == "not like" then
    pat = like_to_pattern(value)
  else
    local why
    want, why = coerce(f, value)
    if want == nil then C.bad("%s: value '%s' %s (field %s is %s)", where, value, why, f.queryParameterName, f.type) end
  end
  local pred = function(model, rec)
    local have = f.get(model, rec)
    if type(have) == "table" then -- a list: any element matches; `not ...` means none does
      local positive = ({ ["not equals"] = "equals", ["not like"] = "like" })[op]
      for _, h in ipairs(have) do
        if test_one(positive or op, norm(f, h), want, pat) then return positive == nil end
      end
      return positive ~= nil
    end
    return test_one(op, norm(f, have), want, pat)
  end
  return pred, f, op
end

-- Parses a `filter` query: field operator 'value' [and field operator 'value' ...].
-- Values are single-quoted ('' inside a value is a quote); bare words/numbers are accepted too.
function F.parse_query(fields, text)
  local clauses = {}
  local i, n = 1, #text
  local function skip() i = text:find("[^%s]", i) or n + 1 end
  skip()
  if i > n then return function() return true end end
  while true do
    local name = text:match("^[%a_][%w_%.]*", i)
    if not name then C.bad("filter: expected a field name at position %d", i) end
    i = i + #name
    skip()
    -- The operator is every word up to the value.
    local words = {}
    while true do
      local w = text:match("^%a+", i)
      if not w then break end
      -- A bare (unquoted) word value follows the operator: stop when what we have is an operator
      words[#words + 1] = w
      i = i + #w
      skip()
      if text:sub(i, i) == "'" then break end
      local joined = table.concat(words, " "):lower()
      local nextw = text:match("^%a+", i)
      local f = fields.by_name[name:lower()]
      if f and has_op(f, joined) and not (nextw and has_op(f, joined .. " " .. nextw:lower())) then
        break
      end
    end
    if #words == 0 then C.bad("filter: expected an operator after '%s' at position %d", name, i) end
    local op = table.concat(words, " ")
    local value
    if text:sub(i, i) == "'" then
      local buf, j = {}, i + 1
      while true do
        local c = text:sub(j, j)
        if c == "" then C.bad("filter: unterminated quoted value starting at position %d", i) end
        if c == "'" then
          if text:sub(j + 1, j + 1) == "'" then buf[#buf + 1] = "'"; j = j + 2
          else j = j + 1; break end
        else buf[#buf + 1] = c; j = j + 1 end
      end
      value = table.concat(buf)
      i = j
    else
      value = text:match("^[^%s']+", i)
      if not value then C.bad("filter: expected a value after '%s %s' at position %d", name, op, i) end
      i = i + #value
    end
    clauses[#clauses + 1] = (F.compile(fields, name, op, value, "filter"))
    skip()
    if i > n then break end
    local conj = text:match("^[Aa][Nn][Dd]%s", i)
    if not conj then C.bad("filter: expected ' and ' at position %d", i) end
    i = i + 3
    skip()
  end
  return function(model, rec)
    for _, p in ipairs(clauses) do if not p(model, rec) then return false end end
    return true
  end
end

-- FilterResponse shape of a field, with the operator and value of a clause when given.
function F.response(f, operator, value)
  local ops = {}
  for k, o in ipairs(F.OPERATORS[f.type]) do ops[k] = o end
  return {
    availableOperator = ops,
    caption = f.caption,
    dataFieldId = f.fieldId,
    dataType = {
      dataTypeCode = F.DATA_TYPES[f.type].dataTypeCode,
      dataTypeId = F.DATA_TYPES[f.type].dataTypeId,
      dataTypeInfo = F.DATA_TYPES[f.type].dataTypeInfo,
    },
    fieldId = f.fieldId,
    hidden = false,
    operator = operator == nil and C.NULL or operator,
    queryParameterName = f.queryParameterName,
    recommended = f.recommended or false,
    required = false,
    value = value == nil and C.NULL or value,
  }
end

return F
