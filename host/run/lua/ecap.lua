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

-- ---- previews and the consent prompt of destructive calls (bindings/guard.c) ---------------
local ask, pages = private.ask, ecap.pages

local function date_of(v) return type(v) == "string" and v:sub(1, 10) or nil end

-- A bulk update: how many meters its filters match, asked of the server (it only reads).
local function meters_to_update(body)
  local filters = body and body.filters
  if filters == nil or is_null(filters) then filters = {} end
  local r = ecap.cost_avoidance.count(filters, { onlyMetersInCAP = false })
  local n = type(r) == "table" and r.count
  if math_type(n) ~= "integer" then return "the server's count came back without a number" end
  local desc = type(r.description) == "string" and r.description ~= "" and ("\nthe server's description: " .. r.description) or ""
  return format("would update %d meter%s%s", n, n == 1 and "" or "s", desc)
end

-- The path parameter of path by the run's template ("/api/v3/accountmeter/{accountMeterId}").
local function path_id(path, template)
  local pattern = template:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"):gsub("{[^}]*}", "(%%d+)")
  return math.tointeger(tonumber(path:lower():match("^" .. pattern:lower() .. "/?$")))
end

local function plural(n, word) return format("%d %s%s", n, word, n == 1 and "" or "s") end

-- deleteBills=true: the bills it would delete, by the seed's rule: every bill of the
-- relationship's account with a line for its meter that starts on or after the new end date
-- (whole bills: other meters' lines on them go too). Reads the relationship, then the account's
-- bills, paged.
local function bills_to_delete(path, template, body)
  local id = path_id(path, template)
  if not id then return "cannot tell which relationship " .. path .. " is" end
  local am = ecap.account_meters.get(id)
  local account, meter = am.account or {}, am.meter or {}
  local cut = date_of(body and body.endDate) or date_of(am.endDate)
  if math_type(account.accountId) ~= "integer" or math_type(meter.meterId) ~= "integer" or not cut then
    return format("relationship %d came back without its account, meter or end date", id)
  end
  local n, first, last, total, others, names, unsure = 0, nil, nil, 0, {}, {}, 0
  for b in pages("/api/v3/bill", { query = { filter = format("accountId equals '%d'", account.accountId) },
                                   pageSize = 500 }) do
    local mine, other = false, {}
    for _, m in ipairs(type(b.meters) == "table" and b.meters or {}) do
      if m.meterId == meter.meterId then mine = true else other[#other + 1] = m end
    end
    local begin, known = date_of(b.beginDate), type(b.meters) == "table"
    if not known and (not begin or begin >= cut) or known and mine and not begin then
      unsure = unsure + 1 -- a bill without its meters or its date: never counted as spared
    elseif mine and begin >= cut then
      n = n + 1
      if not first or begin < first then first = begin end
      local finish = date_of(b.endDate) or begin
      if not last or finish > last then last = finish end
      total = total + (tonumber(b.totalCost) or 0)
      for _, m in ipairs(other) do
        if m.meterId ~= nil and not others[m.meterId] then
          others[m.meterId] = true
          names[#names + 1] = tostring(m.meterCode or m.meterId)
        end
      end
    end
  end
  local who = format("account %s (id %d), meter %s (id %d)", tostring(account.accountCode or "?"),
    account.accountId, tostring(meter.meterCode or "?"), meter.meterId)
  if unsure > 0 then
    return format("cannot tell which bills it would delete: %s of account %s (id %d) came without the"
      .. " meters of their lines or a start date (read them before you consent)", plural(unsure, "bill"),
      tostring(account.accountCode or "?"), account.accountId)
  end
  if n == 0 then
    return format("would delete no bills: none of %s starts on or after %s", who, cut)
  end
  local lines = {
    format("would delete %s of %s starting on or after %s", plural(n, "bill"), who, cut),
    format("from %s to %s, total cost %.2f", first, last, total),
    #names == 0 and "no other meter has lines on them"
      or format("whole bills: the lines of %s on them go too: %s", plural(#names, "other meter"),
                concat(names, ", ")),
  }
  return concat(lines, "\n")
end

local function preview(route, path, template, body, query)
  if route == "cost_avoidance.bulk_update" then return meters_to_update(body) end
  if route == "account_meters.edit" then
    local d = type(query) == "table" and query.deleteBills
    if d == true or type(d) == "string" and d:lower() == "true" then
      return bills_to_delete(path, template, body)
    end
  end
  return nil
end

-- A preview never stops the call it describes: a failed read says why instead.
local function try_preview(...)
  local ok, text = pcall(preview, ...)
  if ok then return text end
  return "no preview: " .. tostring(text)
end

local yes_to_all, prompting = false, false
local release_prompt = setmetatable({}, { __close = function() prompting = false end })

local function consent(operation, route, method, path, template, body, query, what)
  if yes_to_all then return true end
  local text = try_preview(route, path, template, body, query)
  while prompting do sleep(0.05) end -- ecap.parallel items: one prompt at a time
  if yes_to_all then return true end
  prompting = true
  local answer
  do
    local _ <close> = release_prompt -- also when Ctrl-C or a REPL interrupt ends the wait
    answer = ask(format("\n%s: a destructive call:\n  %s %s\n  %s\n%s" ..
      "Type yes to send it, all to send every destructive call of this run, anything else to refuse: ",
      operation, method, path, what, text and ("  " .. text:gsub("\n", "\n  ") .. "\n") or ""))
  end
  local a = answer and answer:lower():match("^%s*(.-)%s*$")
  if a == "all" then yes_to_all = true end
  if a == "yes" or a == "all" then return true end
  error(new_error("validation", format("%s: %s: not sent: %s at the prompt", operation, what,
    answer and format("answered %q", answer) or "no answer (end of input)"), { rule = "consent" }), 0)
end

-- bindings/guard.c calls this: "preview" (--dry-run) returns the text under the DRY-RUN line,
-- "ask" returns when the operator says yes.
return function(mode, operation, route, method, path, template, body, query, what)
  if mode == "preview" then return try_preview(route, path, template, body, query) end
  return consent(operation, route, method, path, template, body, query, what)
end
