-- end_account_meter.lua: moves the end date of an account–meter relationship
-- (ecap.account_meters.edit), and shows the deleteBills guard.
--
-- An edit replaces the whole relationship, so the script first reads the current one (GET
-- /api/v3/meter/{meterId}: its accounts list) and sends its begin date, general ledger and
-- vendor type unchanged with the new end date.
--
-- deleteBills: with deleteBills=true the server also deletes every bill of that account that
-- has a line for this meter and starts on or after the new end date: WHOLE bills, other
-- meters' lines on them included, and it cannot be undone. So:
--   (no flag)                              edits with deleteBills=false: bills are kept
--   --delete-bills                         asks for it WITHOUT the confirmation: the binding's
--                                          guard refuses before anything is sent (shown, exit 1)
--   --delete-bills --yes-delete-bills      passes {deleteBills = true, confirm = "delete bills"}:
--                                          the script's intent. The person running it must
--                                          consent too: on a terminal ecaphost shows the bills
--                                          it would delete and asks for yes; without a terminal
--                                          the host option --allow-destructive is needed.
-- Try --dry-run first: it lists those bills (count, dates, total cost, other meters) and sends
-- nothing.
--
--   ecaphost run --sim scripts/workflows/end_account_meter.lua
--   ecaphost run --sim scripts/workflows/end_account_meter.lua --delete-bills
--   ecaphost run --sim --dry-run scripts/workflows/end_account_meter.lua --delete-bills --yes-delete-bills
--   ecaphost run --sim scripts/workflows/end_account_meter.lua --delete-bills --yes-delete-bills
--   ecaphost run --sim --allow-destructive scripts/workflows/end_account_meter.lua --delete-bills
--   ecaphost run --environment us-east scripts/workflows/end_account_meter.lua \
--     --meter 1234 --account-meter 5678 --end-date 2025-10-31
--
-- Under --sim with no ids it picks the first open relationship (end 3000-01-01, the most
-- recent of its account and meter) from the demo data by reading the meters, and ends it on
-- 2025-10-31. Without --sim, --meter, --account-meter and --end-date are required.

local USAGE = [==[
usage: ecaphost run [--sim] end_account_meter.lua [--meter ID --account-meter ID --end-date YYYY-MM-DD]
                    [--delete-bills [--yes-delete-bills]]
  --meter ID            the meter of the relationship (its accounts list holds the current values)
  --account-meter ID    the relationship (accountMeterId)
  --end-date DATE       the new end date, after the begin date
  --delete-bills        also delete the bills from the new end date on (deleteBills=true)
  --yes-delete-bills    confirm --delete-bills: whole bills, other meters' lines included
Without --sim, --meter, --account-meter and --end-date are required.]==]

local SIM_END_DATE = "2025-10-31"   -- inside the demo data's bills (they run through 2025)

local function usage(problem)
  error((problem and ("end_account_meter: " .. problem .. "\n") or "") .. USAGE, 0)
end

local opts = {}
do
  local i = 1
  while i <= #arg do
    local a = arg[i]
    if a == "-h" or a == "--help" then usage() end
    if a == "--delete-bills" then opts.delete_bills = true
    elseif a == "--yes-delete-bills" then opts.yes = true
    elseif a == "--meter" or a == "--account-meter" then
      i = i + 1
      local v = arg[i] or ""
      local n = v:match("^%d+$") and math.tointeger(tonumber(v))
      if not n or n < 1 or n > 2147483647 then usage(string.format("%s wants an id, got %q", a, v)) end
      opts[a:sub(3)] = n
    elseif a == "--end-date" then
      i = i + 1
      opts["end-date"] = arg[i]
      if not opts["end-date"] then usage("--end-date needs a value") end
    else
      usage(string.format("unexpected argument %q", a))
    end
    i = i + 1
  end
  if opts.yes and not opts.delete_bills then usage("--yes-delete-bills confirms --delete-bills: give both") end
  if (opts.meter == nil) ~= (opts["account-meter"] == nil) then usage("give --meter and --account-meter together") end
end

local simulator = ecap.config().simulator
if not simulator and not (opts.meter and opts["end-date"]) then
  usage("not talking to the simulator (no --sim): no default ids; --meter, --account-meter and --end-date are required")
end
local end_date = opts["end-date"] or SIM_END_DATE

-- Runs step n; on failure prints "step n failed: <error>" (and hint(err), if any) and stops.
local function step(n, fn, hint)
  local ok, err = pcall(fn)
  if not ok then
    print(string.format("step %d failed: %s", n, tostring(err)))
    local h = hint and hint(err)
    if h then print(h) end
    error(err, 0)
  end
end

local function id_of(child, field)
  if type(child) == "table" and child[field] ~= nil then return child[field] end
  return json.null
end

local function day(s) return type(s) == "string" and s:sub(1, 10) or tostring(s) end

-- ---- step 1: the relationship as it is ---------------------------------------------------
local meter, rel
step(1, function()
  if opts.meter then
    meter = ecap.request("GET", "/api/v3/meter/" .. opts.meter)
    for _, a in ipairs(meter.accounts) do
      if a.accountMeterId == opts["account-meter"] then rel = a end
    end
    if not rel then
      error(string.format("meter %d has no relationship %d (GET /api/v3/meter/%d lists its accounts)",
        opts.meter, opts["account-meter"], opts.meter), 0)
    end
  else
    for m in ecap.pages("/api/v3/meter") do
      for _, a in ipairs(m.accounts) do
        local latest = true
        for _, o in ipairs(m.accounts) do
          if o.accountId == a.accountId and day(o.startDate) > day(a.startDate) then latest = false end
        end
        if not rel and latest and day(a.endDate) == "3000-01-01" and day(a.startDate) < end_date then
          meter, rel = m, a
        end
      end
      if rel then break end
    end
    if not rel then error("no open account-meter relationship in the data", 0) end
  end
  print(string.format("step 1: relationship %d: account %d %s - meter %d %s, %s .. %s, general ledger %s, vendor type %s",
    rel.accountMeterId, rel.accountId, tostring(rel.accountCode), meter.meterId, tostring(meter.meterCode),
    day(rel.startDate), day(rel.endDate), tostring(id_of(rel.meterGeneralLedger, "generalLedgerId")),
    tostring(id_of(rel.vendorType, "vendorTypeId"))))
end)

-- ---- step 2: the edit --------------------------------------------------------------------
local body = {
  beginDate = rel.startDate,                                     -- unchanged
  endDate = end_date,
  generalLedgerId = id_of(rel.meterGeneralLedger, "generalLedgerId"), -- unchanged (null = none)
  vendorTypeId = id_of(rel.vendorType, "vendorTypeId"),          -- unchanged
}

local options
if not opts.delete_bills then
  options = { deleteBills = false }
  print(string.format("step 2: end date %s -> %s with deleteBills=false: bills after the new end date are kept",
    day(rel.endDate), end_date))
else
  print(string.format("step 2: end date %s -> %s with deleteBills=true: deletes every bill of account %d from %s on"
    .. " that has a line for meter %d - WHOLE bills, other meters' lines included; it cannot be undone",
    day(rel.endDate), end_date, rel.accountId, end_date, meter.meterId))
  if opts.yes then
    print("step 2: confirmed by --yes-delete-bills: passing {deleteBills = true, confirm = \"delete bills\"};"
      .. " the run must consent too (yes at the prompt on a terminal, or --allow-destructive)")
    options = { deleteBills = true, confirm = "delete bills" }
  elseif ecap.config().allow_destructive then
    print("step 2: not confirmed by --yes-delete-bills, but the run has --allow-destructive, which lifts"
      .. " the binding's guard: passing {deleteBills = true}")
    options = { deleteBills = true }
  else
    print("step 2: not confirmed (no --yes-delete-bills): passing {deleteBills = true} alone, which the"
      .. " binding's guard refuses before sending anything:")
    options = { deleteBills = true }
  end
end

step(2, function()
  local am, meta = ecap.account_meters.edit(rel.accountMeterId, body, options)
  if ecap.is_dry_run(am) then
    print("step 2: dry run: not sent (the call and its preview are above)")
    return
  end
  local deleted = meta.headers["x-sim-deleted-bills"]   -- the simulator says how many; the API does not
  print(string.format("step 2: done: relationship %d now %s .. %s%s", am.accountMeterId, day(am.beginDate),
    day(am.endDate), options.deleteBills and (", bills deleted: " .. (deleted or "see the bill list")) or ""))
end, function(err)
  if type(err) == "table" and err.rule == "guard" then
    return "nothing was sent: the guard refused. To go ahead, run again with --delete-bills --yes-delete-bills"
  end
  if type(err) == "table" and err.rule == "consent" then
    return "nothing was sent: the run did not consent. Run it from a terminal and answer yes, or add the"
      .. " host option --allow-destructive (--dry-run shows the bills it would delete)"
  end
end)
