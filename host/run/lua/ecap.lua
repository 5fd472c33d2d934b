-- Helpers of the ecap table written in Lua: trusted host code, loaded once per run with the
-- real ecap table (before it is frozen) and a table of private primitives.
local ecap, private = ...
local request, sleep = ecap.request, ecap.sleep
local new_error, now, is_null, progress = private.error, private.now, private.is_null, private.progress
local type, tostring, ipairs, select = type, tostring, ipairs, select
local math_type, format, concat = math.type, string.format, table.concat

-- A bad argument, as the host's C functions report it: kind "argument", naming the function.
local function check_arg(fname, n, v, expected, optional)
  if type(v) == expected or optional and v == nil then return end
  error(new_error("argument", format("bad argument #%d to '%s' (%s expected, got %s)",
    n, fname, expected, type(v))), 3)
end

local function check_id(fname, v, what)
  if math_type(v) == "float" and v == math.floor(v) then v = math.tointeger(v) end
  if math_type(v) ~= "integer" or v < 1 or v > 2147483647 then
    error(new_error("validation", format("%s: %s must be an integer 1..2147483647 (got %s)",
      fname, what, tostring(v)), { field = what, rule = "type", value = v }), 3)
  end
  return v
end

-- ecap.filter{ {"meterCode", "like", "ELEC%"}, {"active", "equals", true} }
--   -> "meterCode like 'ELEC%' and active equals 'true'"
function ecap.filter(clauses)
  check_arg("ecap.filter", 1, clauses, "table")
  local parts = {}
  for i, c in ipairs(clauses) do
    if type(c) ~= "table" then
      error(new_error("validation", format("ecap.filter: clause %d must be {field, operator, value}", i)), 2)
    end
    local field, op, value = c[1], c[2], c[3]
    if type(field) ~= "string" or not field:match("^[%a_][%w_%.]*$") then
      error(new_error("validation", format("ecap.filter: clause %d: bad field name %s", i, tostring(field))), 2)
    end
    if type(op) ~= "string" or not op:match("^%a[%a ]*%a$") and not op:match("^%a$") then
      error(new_error("validation", format("ecap.filter: clause %d: bad operator %s", i, tostring(op))), 2)
    end
    local vt = type(value)
    if vt ~= "string" and vt ~= "number" and vt ~= "boolean" then
      error(new_error("validation", format("ecap.filter: clause %d: value must be a string, number or boolean (got %s)", i, vt)), 2)
    end
    value = tostring(value)
    if value:find("'", 1, true) then
      error(new_error("validation", format(
        "ecap.filter: clause %d: value %s contains a single quote, which the API's filter syntax cannot escape", i, value)), 2)
    end
    parts[#parts + 1] = format("%s %s '%s'", field, op, value)
  end
  if #parts == 0 then
    error(new_error("validation", "ecap.filter: no clauses"), 2)
  end
  return concat(parts, " and ")
end

-- for record in ecap.pages("/api/v3/meter", {query = {filter = ...}, pageSize = 500}) do ... end
function ecap.pages(path, opts)
  check_arg("ecap.pages", 1, path, "string")
  check_arg("ecap.pages", 2, opts, "table", true)
  opts = opts or {}
  if opts.query ~= nil and type(opts.query) ~= "table" then
    error(new_error("validation", "ecap.pages: opts.query must be a table"), 2)
  end
  local size = opts.pageSize or 250
  if math_type(size) ~= "integer" or size < 1 or size > 1000 then
    error(new_error("validation", "ecap.pages: pageSize must be an integer 1..1000"), 2)
  end
  local query = {}
  for k, v in pairs(opts.query or {}) do query[k] = v end
  query.pageSize = size
  local page, records, i, total_pages, done = 0, nil, 0, nil, false
  local seen, started, total_records = 0, now(), nil
  local function fetch()
    page = page + 1
    query.pageNumber = page
    local body, meta = request("GET", path, { query = query })
    if type(body) ~= "table" then body = {} end
    records, i = body, 0
    total_pages = tonumber(meta.headers["totalpages"]) or total_pages
    total_records = tonumber(meta.headers["totalnumberofrecords"]) or total_records
    if total_pages and total_pages > 1 then
      local rate = seen / math.max(now() - started, 1e-3)
      progress(format("pages: page %d/%d  %d/%s records  %.0f/s", page, total_pages, seen,
        total_records and tostring(total_records) or "?", rate))
    end
    if total_pages then
      done = page >= total_pages
    else
      done = #body < size
    end
  end
  return function()
    while true do
      if records and i < #records then
        i = i + 1
        seen = seen + 1
        return records[i]
      end
      if done then
        if total_pages and total_pages > 1 and records then progress() end
        records = nil
        return nil
      end
      fetch()
    end
  end
end

-- ecap.is_dry_run(v): v is what a mutating call returned under --dry-run (it was not sent).
function ecap.is_dry_run(v)
  return type(v) == "table" and rawget(v, "dry_run") == true
    or type(v) == "string" and v:sub(1, 15) == "dry-run:upload:"
end

ecap.cost_avoidance = ecap.cost_avoidance or {}

-- ecap.cost_avoidance.wait(task_or_id [, {timeout = 600, interval = 2}]) -> the finished task
function ecap.cost_avoidance.wait(task, opts)
  check_arg("ecap.cost_avoidance.wait", 2, opts, "table", true)
  opts = opts or {}
  if ecap.is_dry_run(task) then return task end -- never sent: nothing to wait for
  local id = task
  if type(task) == "table" then id = task.costAvoidanceTaskId end
  id = check_id("cost_avoidance.wait", id, "costAvoidanceTaskId")
  local timeout, interval = opts.timeout or 600, opts.interval or 2
  if type(timeout) ~= "number" or timeout < 0 or type(interval) ~= "number" or interval <= 0 then
    error(new_error("validation", "cost_avoidance.wait: timeout must be >= 0 and interval > 0 (seconds)"), 2)
  end
  local deadline = now() + timeout
  while true do
    local t = request("GET", "/api/v3/savings/task/" .. id)
    if type(t) == "table" and t.endDate ~= nil and not is_null(t.endDate) then
      return t
    end
    local left = deadline - now()
    if left <= 0 then
      error(new_error("timeout", format("cost avoidance task %d not finished after %gs", id, timeout),
        { task = t }), 2)
    end
    sleep(interval < left and interval or left)
  end
end
