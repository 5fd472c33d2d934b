-- apply_releases.lua: applies a data-access release to each meter listed in a CSV file and
-- reports each row: ok (with the release status) or the error. A row that fails (a bad
-- account number refused by the binding before anything is sent, a meter the server refuses)
-- is reported and does not stop the others. With an output path and --allow-write, writes the
-- results as CSV as well.
--
-- Input columns: meterId, accountNumber (12 digits starting with 2), nameOnBill,
-- serviceAddress; any other column is ignored. The file must be under an --allow-read (or
-- --allow-write) directory.
--
--   ecaphost run --sim --allow-read scripts/workflows scripts/workflows/apply_releases.lua \
--     scripts/workflows/releases.example.csv
--   ecaphost run --sim --allow-read scripts/workflows --allow-write /tmp \
--     scripts/workflows/apply_releases.lua scripts/workflows/releases.example.csv /tmp/releases.result.csv
--
-- Under --sim the CSV argument may be left out: the example next to this script is used
-- (it matches the simulator's demo meters). Options: --concurrency N (default 4).
-- Exit code 0 when every row succeeded, 1 when any failed (after the report and the result file).

local USAGE = [[
usage: ecaphost run --allow-read DIR [--allow-write DIR] apply_releases.lua INPUT.csv [OUTPUT.csv] [--concurrency N]
  INPUT.csv   columns meterId, accountNumber, nameOnBill, serviceAddress (under --allow-read)
  OUTPUT.csv  result file (needs --allow-write): the input columns plus result, status, message]]

local function usage(problem)
  error((problem and ("apply_releases: " .. problem .. "\n") or "") .. USAGE, 0)
end

local input, output, concurrency
do
  local positional, i = {}, 1
  while i <= #arg do
    local a = arg[i]
    if a == "-h" or a == "--help" then usage() end
    local v = a:match("^%-%-concurrency=(.*)$")
    if a == "--concurrency" then i = i + 1; v = arg[i] or "" end
    if v then
      concurrency = math.tointeger(tonumber(v))
      if not concurrency or concurrency < 1 or concurrency > 64 then usage("--concurrency wants 1..64") end
    elseif a:sub(1, 2) == "--" then
      usage("unknown option " .. a)
    else
      positional[#positional + 1] = a
    end
    i = i + 1
  end
  if #positional > 2 then usage("too many arguments") end
  input, output = positional[1], positional[2]
end

if not input then
  if not ecap.config().simulator then usage("give the input CSV (no default outside --sim)") end
  input = (arg[0]:match("^(.*)/[^/]*$") or ".") .. "/releases.example.csv"
end
if output and #ecap.config().allow_write == 0 then
  usage("writing " .. output .. " needs --allow-write DIR (a directory holding it)")
end

-- ---- read the rows -----------------------------------------------------------------------
local rows = {}
local ok, err = pcall(function()
  for r in csv.rows(input) do rows[#rows + 1] = r end
end)
if not ok then
  print(string.format("cannot read %s: %s", input, tostring(err)))
  error(err, 0)
end
if #rows == 0 then usage(input .. " has no rows") end
for _, col in ipairs({ "meterId", "accountNumber", "nameOnBill", "serviceAddress" }) do
  if rows[1][col] == nil then usage(string.format("%s has no column %s", input, col)) end
end
print(string.format("apply_releases: %d row%s from %s", #rows, #rows == 1 and "" or "s", input))

-- ---- apply them --------------------------------------------------------------------------
-- The id goes to the binding as given when it is not a whole number: its error names it.
local function meter_id(text)
  return math.tointeger(tonumber(text)) or text
end

local results, errors = ecap.parallel(rows, function(r)
  return ecap.meters.apply_release(meter_id(r.meterId), {
    accountNumber = r.accountNumber,
    nameOnBill = r.nameOnBill,
    serviceAddress = r.serviceAddress,
  })
end, { concurrency = concurrency or 4 })

-- ---- report ------------------------------------------------------------------------------
local out, failed = {}, 0
for i, r in ipairs(rows) do
  local res, e = results[i], errors[i]
  local line = { meterId = r.meterId, accountNumber = r.accountNumber, nameOnBill = r.nameOnBill,
                 serviceAddress = r.serviceAddress }
  if e then
    failed = failed + 1
    line.result, line.status, line.message = "error", "", tostring(e)
    print(string.format("row %d meter %s: error: %s", i, r.meterId, tostring(e)))
  else
    local st = res.releaseStatus or {}
    line.result = "ok"
    line.status = tostring(st.dataAccessReleaseStatusInfo)
    line.message = "submitted " .. tostring(res.submittedDate)
    print(string.format("row %d meter %s: ok: %s (status %s), submitted %s", i, r.meterId,
      tostring(st.dataAccessReleaseStatusInfo), tostring(st.dataAccessReleaseStatusId), tostring(res.submittedDate)))
  end
  out[i] = line
end

if output then
  local text = csv.encode(out, { "meterId", "accountNumber", "nameOnBill", "serviceAddress", "result", "status", "message" })
  local wok, werr = pcall(fs.write, output, text)
  if not wok then
    print(string.format("cannot write %s: %s", output, tostring(werr)))
    error(werr, 0)
  end
  print(string.format("wrote %s (%d rows)", output, #out))
end

print(string.format("%d ok, %d failed", #rows - failed, failed))
if failed > 0 then
  error(string.format("apply_releases: %d of %d rows failed", failed, #rows), 0)
end
