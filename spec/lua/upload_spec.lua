-- ecap.files.upload (POST /api/v202105/fileStore/fileDataType/{id}/upload, multipart): the exact
-- request on the wire (the simulator's log keeps the part's name, file name, size and crc32,
-- never the bytes), streaming under a small memory limit, every refusal before sending, the
-- reference taken by a release, and apply_releases' releaseFile column.
-- Run: ECAPHOST=build/ecaphost ECAP_SRC=. lua5.4 /usr/bin/busted spec/lua/upload_spec.lua
local T = require "spec.lua.support"

-- zlib's crc32 of a file, from the gzip trailer (no Lua zlib needed): 8-digit lower-case hex.
local function crc32_of(path)
  local r = T.sh("{ gzip -c " .. T.q(path) .. " | tail -c 8 | head -c 4 | od -An -tx4; }")
  return (r.stdout:gsub("%s", ""))
end

describe("ecap.files.upload", function()
  local sim, dir
  setup(function()
    sim = T.start_sim()
    dir = T.tmpdir() .. "/uploads"
    os.execute("mkdir -p " .. T.q(dir))
  end)
  teardown(function() sim.stop() end)
  before_each(function() sim.reset(); sim.clear_requests() end)

  local function run(code, host_opts)
    local opts = { "--allow-read", dir }
    for _, o in ipairs(host_opts or {}) do opts[#opts + 1] = o end
    return T.run_script(code, opts, { url = sim.url, quiet = true })
  end

  it("sends one file part as multipart/form-data, and returns the reference", function()
    local path = T.write(dir .. "/signed release.pdf", string.rep("%PDF signed\n", 1000))
    local r = T.expect(0, run(string.format([[print(ecap.files.upload(7, %q))]], path)))
    assert.matches("^fileStore/7/", r.stdout)
    local reqs = sim.requests()
    assert.are.equal(1, #reqs)
    local q = reqs[1]
    assert.are.equal("POST", q.method)
    assert.are.equal("/api/v202105/fileStore/fileDataType/7/upload", q.path)
    assert.matches("^multipart/form%-data; boundary=", q.headers["content-type"])
    assert.is_true(q.apiKeyPresent)
    assert.are.equal("application/json", q.headers["accept"])
    assert.are.same({ part = "file", fileName = "signed release.pdf", contentType = "application/pdf",
                      size = 12000, crc32 = crc32_of(path), files = 1 }, q.upload)
  end)

  it("takes the part's type from opts.contentType, and the part name from the config", function()
    local path = T.write(dir .. "/auth.bin", "xyz")
    local cf = T.write(T.tmpname(".conf"), "upload.part_name = document\n")
    T.expect(0, run(string.format([[ecap.files.upload(1, %q, { contentType = "application/x-signed" })]], path),
      { "--config", cf }))
    local u = sim.requests()[1].upload
    assert.are.equal("document", u.part)
    assert.are.equal("application/x-signed", u.contentType)
    T.expect(0, run(string.format([[ecap.files.upload(1, %q)]], path)))
    assert.are.equal("application/octet-stream", sim.requests()[2].upload.contentType)
  end)

  it("streams the file: 40 MB under --max-memory 32", function()
    local path = dir .. "/big.pdf"
    T.sh("{ head -c 41943040 /dev/urandom > " .. T.q(path) .. "; }")
    local cf = T.write(T.tmpname(".conf"), "upload.max_mb = 64\n")
    T.expect(0, run(string.format([[print(ecap.files.upload(2, %q))]], path), { "--max-memory", "32", "--config", cf }))
    local u = sim.requests()[1].upload
    assert.are.equal(41943040, u.size)
    assert.are.equal(crc32_of(path), u.crc32)
    os.remove(path)
  end)

  it("refuses before sending anything", function()
    T.write(dir .. "/ok.pdf", "data")
    T.write(dir .. "/empty.pdf", "")
    T.write(dir .. "/quote\".pdf", "data")
    T.write(dir .. "/two.pdf", string.rep("x", 2 * 1024 * 1024))
    local cf = T.write(T.tmpname(".conf"), "upload.max_mb = 1\n")
    local r = T.expect(0, run(string.format([[
      local D = %q
      for _, args in ipairs {
        { 0, D .. "/ok.pdf" },
        { 1.5, D .. "/ok.pdf" },
        { 1, D .. "/empty.pdf" },
        { 1, D .. "/missing.pdf" },
        { 1, "/etc/passwd" },
        { 1, D },
        { 1, D .. '/quote".pdf' },
        { 1, D .. "/two.pdf" },
        { 1, D .. "/ok.pdf", { contentType = "not a type" } },
        { 1, D .. "/ok.pdf", { content_type = "text/plain" } },
        { 1, nil },
        { 1, 42 },
      } do
        local ok, e = pcall(ecap.files.upload, args[1], args[2], args[3])
        print(ok, e.kind, e.field or e.path or "", e.rule or "")
      end]], dir), { "--config", cf }))
    local lines = {}
    for l in r.stdout:gmatch("[^\n]+") do lines[#lines + 1] = l end
    assert.are.same({
      "false\tvalidation\tfileDataTypeId\trange",
      "false\tvalidation\tfileDataTypeId\ttype",
      "false\tvalidation\tpath\trange",
      "false\tio\t" .. dir .. "/missing.pdf\t",
      "false\tsandbox\t/etc/passwd\t--allow-read",
      "false\tio\t" .. dir .. "\t",
      "false\tvalidation\tpath\tformat",
      "false\tvalidation\tpath\trange",
      "false\tvalidation\tcontentType\tpattern",
      "false\tvalidation\tcontent_type\tunknown",
      "false\tvalidation\tpath\trequired",
      "false\tvalidation\tpath\ttype",
    }, lines)
    assert.are.same({}, sim.requests())
  end)

  it("gives a reference that a release takes; a made-up one is refused by the server", function()
    local path = T.write(dir .. "/signed.pdf", "%PDF signed")
    local r = T.expect(0, run(string.format([[
      local body = { accountNumber = "200173450001", nameOnBill = "Warehouse 7 LLC", serviceAddress = "7 Depot Lane" }
      body.dataReleaseFile = ecap.files.upload(1, %q)
      local st = ecap.meters.apply_release(8, body)
      print("applied", st.releaseStatus.dataAccessReleaseStatusId)
      body.dataReleaseFile = "fileStore/1/00000000-made-up"
      local ok, e = pcall(ecap.meters.apply_release, 9, body)
      print(ok, e.status, e.message)]], path)))
    assert.matches("applied\t3", r.stdout, 1, true)
    assert.matches("false\t400\tdataReleaseFile: fileStore/1/00000000-made-up was not returned by a file-store upload",
      r.stdout, 1, true)
  end)

  it("apply_releases uploads each distinct releaseFile once (50 rows, 3 files)", function()
    local rel = dir .. "/rel"
    os.execute("mkdir -p " .. T.q(rel))
    for _, f in ipairs { "a", "b", "c" } do T.write(rel .. "/" .. f .. ".pdf", "signed " .. f) end
    local lines = { "meterId,accountNumber,nameOnBill,serviceAddress,releaseFile" }
    for i = 0, 49 do
      lines[#lines + 1] = string.format('%d,2001734500%02d,Name %d,"%d Main St",%s.pdf', ({ 8, 9, 10 })[i % 3 + 1],
        i, i, i, ({ "a", "b", "c" })[i % 3 + 1])
    end
    T.write(rel .. "/rel.csv", table.concat(lines, "\n") .. "\n")
    local r = T.run({ "run", "-q", "--base-url", sim.url, "--allow-read", rel, "--allow-write", rel,
                      T.src .. "/scripts/workflows/apply_releases.lua", rel .. "/rel.csv", rel .. "/out.csv" })
    T.expect(0, r)
    local uploads, releases = 0, 0
    for _, q in ipairs(sim.requests()) do
      if q.upload then uploads = uploads + 1 end
      if q.path:match("/release$") then releases = releases + 1 end
    end
    assert.are.equal(3, uploads)
    assert.are.equal(50, releases)
    local out = T.read(rel .. "/out.csv")
    assert.matches("releaseFile,fileReference,result", out, 1, true)
    assert.matches(",a.pdf,fileStore/1/", out, 1, true)
  end)
end)
