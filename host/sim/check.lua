-- Request checks of the simulator, written from the seed pages (never from bindings/).
-- Every failing check raises a `bad request` error: a table {status=400, message=...} that the
-- router turns into a JSON reply {"message": "..."}. The message always starts with the field.
local json = require "json"

local C = {}

local NULL = json.null
C.NULL = NULL

local INT32_MAX = 2147483647
local INT32_MIN = -2147483648

-- Raises an HTTP error; `sim.lua` catches tables with a status.
function C.fail(status, fmt, ...)
  error({ status = status, message = string.format(fmt, ...) }, 0)
end

function C.bad(fmt, ...) C.fail(400, fmt, ...) end

-- Arrays decoded by the project codec carry a shared metatable; the one of "[]" tells us which.
local ARRAY_MT = getmetatable(json.decode("[]"))

function C.is_array(v)
  if type(v) ~= "table" then return false end
  if v[1] ~= nil then return true end
  if next(v) == nil then return ARRAY_MT == nil or getmetatable(v) == ARRAY_MT end
  return false
end

function C.is_object(v)
  if type(v) ~= "table" or v[1] ~= nil then return false end
  if next(v) == nil then return ARRAY_MT == nil or getmetatable(v) ~= ARRAY_MT end
  return true
end

-- An integral JSON number within int32 (1.0 is accepted as 1, like the service's binder).
function C.as_int32(v)
  if math.type(v) == "integer" then
    if v >= INT32_MIN and v <= INT32_MAX then return v end
  elseif math.type(v) == "float" and v == math.floor(v) and v >= INT32_MIN and v <= INT32_MAX then
    return math.tointeger(v)
  end
  return nil
end

-- An id: int32 from 1 to 2147483647. Path parameters come as text.
function C.id(field, v)
  if type(v) == "string" then
    if not v:match("^%d+$") or #v > 10 then
      C.bad("%s: must be an int32 id (1..2147483647), got '%s'", field, v)
    end
    v = math.tointeger(tonumber(v))
  end
  local n = C.as_int32(v)
  if not n or n < 1 then
    C.bad("%s: must be an int32 id (1..2147483647)", field)
  end
  return n
end

-- ---- dates -------------------------------------------------------------------------------
local function leap(y) return (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0 end
local MDAYS = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

-- Parses YYYY-MM-DD or an ISO-8601 date-time (YYYY-MM-DDTHH:MM[:SS[.fff]][Z|+HH:MM]).
-- Returns the canonical text (the date alone, or date and time without zone) and a sort key,
-- or nil and a reason.
function C.parse_date(s)
  if type(s) ~= "string" then return nil, "must be a date string" end
  local y, mo, d, rest = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)(.*)$")
  if not y then return nil, "must be a date (YYYY-MM-DD or ISO-8601 date-time)" end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo < 1 or mo > 12 then return nil, "has no month " .. mo end
  local md = MDAYS[mo] + ((mo == 2 and leap(y)) and 1 or 0)
  if d < 1 or d > md then return nil, "has no day " .. d .. " in that month" end
  local h, mi, sec = 0, 0, 0
  local canon
  if rest == "" then
    canon = string.format("%04d-%02d-%02d", y, mo, d)
  else
    local hh, mm, tail = rest:match("^[Tt ](%d%d):(%d%d)(.*)$")
    if not hh then return nil, "must be a date (YYYY-MM-DD or ISO-8601 date-time)" end
    local ss, tail2 = tail:match("^:(%d%d)(.*)$")
    if ss then tail = tail2 else ss = "00" end
    local frac = tail:match("^%.(%d+)")
    if frac then tail = tail:sub(#frac + 2) end
    if not (tail == "" or tail == "Z" or tail == "z" or tail:match("^[+-]%d%d:?%d%d$")) then
      return nil, "has a bad time zone '" .. tail .. "'"
    end
    h, mi, sec = tonumber(hh), tonumber(mm), tonumber(ss)
    if h > 23 or mi > 59 or sec > 59 then return nil, "has a bad time of day" end
    canon = string.format("%04d-%02d-%02dT%02d:%02d:%02d", y, mo, d, h, mi, sec)
  end
  local key = string.format("%04d-%02d-%02dT%02d:%02d:%02d", y, mo, d, h, mi, sec)
  return canon, key
end

-- Sort key of a stored (canonical) date.
function C.date_key(s)
  if s == nil or s == NULL then return nil end
  local _, key = C.parse_date(s)
  return key
end

-- A wall-clock time (seconds since the epoch) as the service writes date-times: UTC, no zone.
function C.time_text(t)
  return os.date("!%Y-%m-%dT%H:%M:%S", math.floor(t))
end

local MIN_KEY, MAX_KEY = "1899-12-31T00:00:00", "3000-01-01T00:00:00"

-- A date field: returns canonical text; checks the documented range 1899-12-31..3000-01-01.
function C.date(field, v)
  local canon, key = C.parse_date(v)
  if not canon then C.bad("%s: %s", field, key) end
  if key < MIN_KEY or key > MAX_KEY then
    C.bad("%s: must be between 1899-12-31 and 3000-01-01, got '%s'", field, v)
  end
  return canon, key
end

-- ---- body fields -------------------------------------------------------------------------
-- Each returns the value (or nil for null); `how` is "required" (present and not null),
-- "defined" (key present, null allowed) or "optional".
local function presence(body, field, how, path)
  local v = body[field]
  local name = path and (path .. "." .. field) or field
  if v == nil then
    if how == "required" then C.bad("%s: required", name) end
    if how == "defined" then C.bad("%s: required (the key must be present; null is allowed)", name) end
    return nil, name
  end
  if v == NULL then
    if how == "required" then C.bad("%s: required, must not be null", name) end
    return nil, name
  end
  return v, name
end

function C.int(body, field, how, opts, path)
  local v, name = presence(body, field, how, path)
  if v == nil then return nil end
  local n = C.as_int32(v)
  if not n then C.bad("%s: must be an int32 integer", name) end
  opts = opts or {}
  if opts.min and n < opts.min then C.bad("%s: must be at least %d, got %d", name, opts.min, n) end
  if opts.max and n > opts.max then C.bad("%s: must be at most %d, got %d", name, opts.max, n) end
  return n
end

function C.id_field(body, field, how, path)
  local v, name = presence(body, field, how, path)
  if v == nil then return nil end
  local n = C.as_int32(v)
  if not n or n < 1 then C.bad("%s: must be an int32 id (1..2147483647)", name) end
  return n
end

function C.number(body, field, how, path)
  local v, name = presence(body, field, how, path)
  if v == nil then return nil end
  if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge then
    C.bad("%s: must be a number", name)
  end
  return v
end

function C.bool(body, field, how, path)
  local v, name = presence(body, field, how, path)
  if v == nil then return nil end
  if type(v) ~= "boolean" then C.bad("%s: must be true or false", name) end
  return v
end

function C.string(body, field, how, opts, path)
  local v, name = presence(body, field, how, path)
  if v == nil then return nil end
  if type(v) ~= "string" then C.bad("%s: must be a string", name) end
  opts = opts or {}
  if opts.nonempty and v:match("^%s*$") then C.bad("%s: must not be empty", name) end
  if opts.max and utf8.len(v) and utf8.len(v) > opts.max then
    C.bad("%s: at most %d characters, got %d", name, opts.max, utf8.len(v))
  end
  return v
end

function C.date_field(body, field, how, path)
  local v, name = presence(body, field, how, path)
  if v == nil then return nil end
  return (C.date(name, v))
end

local function container(is, what)
  return function(body, field, how, path)
    local v, name = presence(body, field, how, path)
    if v == nil then return nil end
    if not is(v) then C.bad("%s: must be a JSON %s", name, what) end
    return v
  end
end

C.object = container(C.is_object, "object")
C.array = container(C.is_array, "array")

-- Query flag: true/false (any case); nil when absent.
function C.query_bool(query, field)
  local v = query[field]
  if v == nil then return nil end
  local l = v:lower()
  if l == "true" then return true end
  if l == "false" then return false end
  C.bad("%s: must be true or false, got '%s'", field, v)
end

function C.query_int(query, field, default, min, max)
  local v = query[field]
  if v == nil or v == "" then return default end
  local n = v:match("^%d+$") and #v <= 10 and math.tointeger(tonumber(v))
  if not n or n < min or n > max then
    C.bad("%s: must be an integer from %d to %d, got '%s'", field, min, max, v)
  end
  return n
end

return C
