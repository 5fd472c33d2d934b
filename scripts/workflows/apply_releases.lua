-- apply_releases.lua: applies a data-access release to each meter listed in a CSV file and
-- reports each row: ok (with the release status) or the error. A row that fails (a bad
-- account number refused by the binding before anything is sent, a meter the server refuses)
-- is reported and does not stop the others. With an output path and --allow-write, writes the
-- results as CSV as well.
--
-- Input columns: meterId, accountNumber (12 digits starting with 2), nameOnBill,
-- serviceAddress, and optionally releaseFile: the customer's signed authorisation (a path,
-- relative to the CSV's directory unless absolute), uploaded to the file store
-- (ecap.files.upload) and sent as the release's dataReleaseFile. Rows that share a file upload
-- it once. Any other column is ignored. The files must be under an --allow-read (or
-- --allow-write) directory.
--
--   ecaphost run --sim --allow-read scripts/workflows scripts/workflows/apply_releases.lua \
--     scripts/workflows/releases.example.csv
--   ecaphost run --sim --allow-read scripts/workflows --allow-write /tmp \
--     scripts/workflows/apply_releases.lua scripts/workflows/releases.example.csv /tmp/releases.result.csv
-- With the host option --dry-run each release is printed instead of sent (the rows say so).
--
-- Under --sim the CSV argument may be left out: the example next to this script is used
-- (it matches the simulator's demo meters). Options: --concurrency N (default 4),
-- --file-data-type N (the file store's fileDataTypeId for the uploads, default 1).
-- Exit code 0 when every row succeeded, 1 when any failed (after the report and the result file).

local USAGE = [[
usage: ecaphost run --allow-read DIR [--allow-write DIR] apply_releases.lua INPUT.csv [OUTPUT.csv]
         [--concurrency N] [--file-data-type N]
  INPUT.csv   columns meterId, accountNumber, nameOnBill, serviceAddress [, releaseFile]
              (under --allow-read)
  OUTPUT.csv  result file (needs --allow-write): the input columns plus fileReference, result,
              status, message]]

local function usage(problem)
  error((problem and ("apply_releases: " .. problem .. "\n") or "") .. USAGE, 0)
end

local input, output, concurrency
local file_type = 1
do
  local positional, i = {}, 1
  while i <= #arg do
    local a = arg[i]
    if a == "-h" or a == "--help" then usage() end
    local v = a:match("^%-%-concurrency=(.*)$")
    local ft = a:match("^%-%-file%-data%-type=(.*)$")
    if a == "--concurrency" then i = i + 1; v = arg[i] or "" end
    if a == "--file-data-type" then i = i + 1; ft = arg[i] or "" end
    if v then
      concurrency = math.tointeger(tonumber(v))
      if not concurrency or concurrency < 1 or concurrency > 64 then usage("--concurrency wants 1..64") end
    elseif ft then
      file_type = math.tointeger(tonumber(ft))
      if not file_type or file_type < 1 then usage("--file-data-type wants a positive id") end
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

-- ---- upload the signed releases (each distinct file once) --------------------------------
local csv_dir = input:match("^(.*)/[^/]*$") or "."
local function file_path(p)
  if p == nil or p == "" then return nil end
  return p:sub(1, 1) == "/" and p or (csv_dir .. "/" .. p)
end

local files, file_list = {}, {}
for _, r in ipairs(rows) do
  local p = file_path(r.releaseFile)
  if p and not files[p] then
    files[p] = {}
    file_list[#file_list + 1] = p
  end
end
if #file_list > 0 then
  local refs, ferrs = ecap.parallel(file_list, function(p)
    return (ecap.files.upload(file_type, p))
  end, { concurrency = concurrency or 4 })
  local uploaded = 0
  for i, p in ipairs(file_list) do
    files[p] = { ref = refs[i], err = ferrs[i] }
    if ferrs[i] then
      print(string.format("upload %s: error: %s", p, tostring(ferrs[i])))
    else
      uploaded = uploaded + 1
    end
  end
  print(string.format("apply_releases: uploaded %d of %d file%s", uploaded, #file_list,
    #file_list == 1 and "" or "s"))
end

-- ---- apply them --------------------------------------------------------------------------
-- The id goes to the binding as given when it is not a whole number: its error names it.
local function meter_id(text)
  return math.tointeger(tonumber(text)) or text
end

local results, errors = ecap.parallel(rows, function(r)
  local f = files[file_path(r.releaseFile) or false]
  if f and f.err then
    error(f.err, 0) -- the upload failed: this release is not applied
  end
  return ecap.meters.apply_release(meter_id(r.meterId), {
    accountNumber = r.accountNumber,
    nameOnBill = r.nameOnBill,
    serviceAddress = r.serviceAddress,
    dataReleaseFile = f and f.ref or nil,
  })
end, { concurrency = concurrency or 4 })

-- ---- report ------------------------------------------------------------------------------
local out, failed = {}, 0
for i, r in ipairs(rows) do
  local res, e = results[i], errors[i]
  local f = files[file_path(r.releaseFile) or false]
  local line = { meterId = r.meterId, accountNumber = r.accountNumber, nameOnBill = r.nameOnBill,
                 serviceAddress = r.serviceAddress, releaseFile = r.releaseFile or "",
                 fileReference = f and f.ref or "" }
  if e then
    failed = failed + 1
    line.result, line.status, line.message = "error", "", tostring(e)
    print(string.format("row %d meter %s: error: %s", i, r.meterId, tostring(e)))
  elseif ecap.is_dry_run(res) then
    line.result, line.status, line.message = "dry-run", "", "not sent (--dry-run)"
    print(string.format("row %d meter %s: dry run: not sent", i, r.meterId))
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
  local text = csv.encode(out, { "meterId", "accountNumber", "nameOnBill", "serviceAddress", "releaseFile",
                                 "fileReference", "result", "status", "message" })
  local wok, werr = pcall(fs.write, output, text)
  if not wok then
    print(string.format("cannot write %s: %s", output, tostring(werr)))
    error(werr, 0)
  end
  print(string.format("wrote %s (%d rows)", output, #out))
end

print(string.format("%d %s, %d failed", #rows - failed, ecap.config().dry_run and "printed (dry run)" or "ok", failed))
if failed > 0 then
  error(string.format("apply_releases: %d of %d rows failed", failed, #rows), 0)
end
