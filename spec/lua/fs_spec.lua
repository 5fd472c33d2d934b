-- fs, csv.rows and log through the real binary: grants, escapes, atomic write, append,
-- lines, CSV files with quoted multi-line fields, the log line format.
local T = require "spec.lua.support"

local root, inside, outdir, secret

local function sh(cmd)
  assert(os.execute(cmd), cmd)
end

-- Runs script text with the given host options (grants...), in dir if given; returns
-- {code, stdout, stderr}.
local function run(opts, text, dir)
  return T.run_script(text, opts, { url = "http://127.0.0.1:9", dir = dir })
end

-- Script text: prints "ok <value>" or "err <kind>|<tostring(err)>" for a call; the error's
-- position, when it is the call's line (line 1 of the script), reads "@1: ".
local function probe(call)
  return [[
local ok, e = pcall(function() return ]] .. call .. [[ end)
local here = arg[0] .. ":1: "
if ok then print("ok " .. tostring(e)) else
  local text = tostring(e)
  if text:sub(1, #here) == here then text = "@1: " .. text:sub(#here + 1) end
  print("err " .. tostring(type(e) == "table" and e.kind) .. "|" .. text) end
]]
end

local function ls(dir)
  local p = io.popen("ls -A " .. T.q(dir))
  local names = {}
  for l in p:lines() do names[#names + 1] = l end
  p:close()
  table.sort(names)
  return table.concat(names, " ")
end

setup(function()
  root = T.tmpdir() .. "/fs"
  inside, outdir, secret = root .. "/in", root .. "/out", root .. "/secret"
  sh("rm -rf " .. T.q(root) .. " && mkdir -p " .. T.q(inside) .. " " .. T.q(outdir) .. " " .. T.q(secret))
  T.write(secret .. "/key.txt", "top secret\n")
  T.write(inside .. "/data.txt", "one\r\ntwo\nthree")
  sh("ln -s ../secret/key.txt " .. T.q(inside .. "/link"))
  sh("ln -s ../secret " .. T.q(inside .. "/dirlink"))
  sh("ln -s ../secret/key.txt " .. T.q(outdir .. "/outlink"))
  sh("ln -s ../secret/new.txt " .. T.q(outdir .. "/dangling"))
end)

describe("fs grants", function()
  it("refuses every file without a grant", function()
    local r = T.expect(0, run({}, probe("fs.read(" .. string.format("%q", inside .. "/data.txt") .. ")")))
    assert.matches("^err sandbox|", r.stdout)
    assert.matches("no directory is granted for reading %(%-%-allow%-read DIR%)", r.stdout)
  end)

  it("ends the run with exit code 1 and the refusal on stderr when not caught", function()
    local r = run({}, "fs.read('/etc/passwd')")
    assert.are.equal(1, r.code)
    assert.matches("fs.read: /etc/passwd", r.stderr, 1, true)
  end)

  it("reads a file inside a read grant", function()
    local r = T.expect(0, run({ "--allow-read", inside },
      "print(#fs.read(" .. string.format("%q", inside .. "/data.txt") .. "))"))
    assert.are.equal("14\n", r.stdout)
  end)

  it("takes a relative path from the working directory", function()
    local r = T.expect(0, run({ "--allow-read", inside }, "print(fs.read('in/data.txt'):sub(1, 3))", root))
    assert.are.equal("one\n", r.stdout)
  end)

  it("refuses a file outside the grant, by name", function()
    local r = T.expect(0, run({ "--allow-read", inside }, probe("fs.read('/etc/passwd')")))
    assert.are.equal("err sandbox|@1: sandbox: fs.read: /etc/passwd is outside the granted " ..
      "directories (--allow-read)\n", r.stdout)
  end)

  it("refuses a .. escape", function()
    local r = T.expect(0, run({ "--allow-read", inside },
      probe(string.format("fs.read(%q)", inside .. "/../secret/key.txt"))))
    assert.matches("^err sandbox|", r.stdout)
    assert.matches("outside the granted directories", r.stdout, 1, true)
    assert.not_matches("top secret", r.stdout, 1, true)
  end)

  it("refuses a relative .. escape", function()
    local r = T.expect(0, run({ "--allow-read", inside }, probe("fs.read('../secret/key.txt')"), inside))
    assert.matches("^err sandbox|", r.stdout)
  end)

  it("refuses a symlink to a file outside the grant", function()
    local r = T.expect(0, run({ "--allow-read", inside }, probe(string.format("fs.read(%q)", inside .. "/link"))))
    assert.matches("^err sandbox|", r.stdout)
    assert.not_matches("top secret", r.stdout, 1, true)
  end)

  it("refuses a path through a symlinked directory outside the grant", function()
    local r = T.expect(0, run({ "--allow-read", inside },
      probe(string.format("fs.lines(%q)", inside .. "/dirlink/key.txt"))))
    assert.matches("^err sandbox|", r.stdout)
  end)

  it("does not tell whether a file outside the grant exists", function()
    local r = T.expect(0, run({ "--allow-read", inside }, probe(string.format("fs.read(%q)", secret .. "/nope"))))
    assert.matches("^err sandbox|", r.stdout)
  end)

  it("reports a missing file inside the grant as an io error", function()
    local r = T.expect(0, run({ "--allow-read", inside }, probe(string.format("fs.read(%q)", inside .. "/nope.csv"))))
    assert.matches("^err io|@1: io: fs.read: .*/in/nope.csv: No such file or directory", r.stdout)
  end)

  it("refuses writing with only a read grant", function()
    local target = inside .. "/new.txt"
    local r = T.expect(0, run({ "--allow-read", inside }, probe(string.format("fs.write(%q, 'x')", target))))
    assert.matches("^err sandbox|.*no directory is granted for writing %(%-%-allow%-write DIR%)", r.stdout)
    assert.is_nil(T.read(target))
  end)

  it("lets a write grant read too", function()
    local r = T.expect(0, run({ "--allow-write", inside },
      probe(string.format("#fs.read(%q)", inside .. "/data.txt"))))
    assert.are.equal("ok 14\n", r.stdout)
  end)

  it("refuses writing through a symlink to a file outside", function()
    local r = T.expect(0, run({ "--allow-write", outdir },
      probe(string.format("fs.write(%q, 'owned')", outdir .. "/outlink"))))
    assert.matches("^err sandbox|", r.stdout)
    assert.are.equal("top secret\n", T.read(secret .. "/key.txt"))
  end)

  it("refuses writing or appending through a dangling symlink", function()
    for _, call in ipairs({ "write", "append" }) do
      local r = T.expect(0, run({ "--allow-write", outdir },
        probe(string.format("fs.%s(%q, 'x')", call, outdir .. "/dangling"))))
      assert.matches("^err sandbox|", r.stdout)
    end
    assert.is_nil(T.read(secret .. "/new.txt"))
  end)

  it("refuses writing the granted directory's parent through ..", function()
    local r = T.expect(0, run({ "--allow-write", outdir },
      probe(string.format("fs.write(%q, 'x')", outdir .. "/../escaped.txt"))))
    assert.matches("^err sandbox|", r.stdout)
    assert.is_nil(T.read(root .. "/escaped.txt"))
  end)
end)

describe("fs.write", function()
  it("writes a file atomically, replacing the old content and leaving no temporary file", function()
    local target = outdir .. "/report.txt"
    T.write(target, "old content that is longer\n")
    sh("chmod 640 " .. T.q(target))
    local r = T.expect(0, run({ "--allow-write", outdir },
      string.format("fs.write(%q, 'new\\n') print(fs.read(%q))", target, target)))
    assert.are.equal("new\n\n", r.stdout)
    assert.are.equal("new\n", T.read(target))
    local p = io.popen("stat -c %a " .. T.q(target))
    assert.are.equal("640", p:read("*l"))
    p:close()
    assert.not_matches("%.tmp", ls(outdir))
  end)

  it("keeps the old file when the write fails", function()
    local target = outdir .. "/keep.txt"
    T.write(target, "keep me")
    local r = T.expect(0, run({ "--allow-write", outdir },
      probe(string.format("fs.write(%q, 'x')", outdir .. "/nodir/keep.txt"))))
    assert.matches("^err io|", r.stdout)
    assert.are.equal("keep me", T.read(target))
    assert.not_matches("%.tmp", ls(outdir))
  end)

  it("refuses to replace a directory", function()
    local r = T.expect(0, run({ "--allow-write", outdir }, probe(string.format("fs.write(%q, 'x')", outdir))))
    assert.matches("^err io|.*is a directory", r.stdout)
  end)

  it("writes binary content exactly", function()
    local target = outdir .. "/bin.dat"
    T.expect(0, run({ "--allow-write", outdir }, string.format("fs.write(%q, 'a\\0b\\r\\n\\255')", target)))
    assert.are.equal("a\0b\r\n\255", T.read(target))
  end)
end)

describe("fs.append", function()
  it("creates a file and appends to it", function()
    local target = outdir .. "/log.txt"
    os.remove(target)
    T.expect(0, run({ "--allow-write", outdir }, string.format(
      "for i = 1, 3 do fs.append(%q, 'line ' .. i .. '\\n') end", target)))
    assert.are.equal("line 1\nline 2\nline 3\n", T.read(target))
  end)

  it("needs a write grant", function()
    local r = T.expect(0, run({ "--allow-read", inside },
      probe(string.format("fs.append(%q, 'x')", inside .. "/data.txt"))))
    assert.matches("^err sandbox|", r.stdout)
    assert.are.equal("one\r\ntwo\nthree", T.read(inside .. "/data.txt"))
  end)
end)

describe("fs opens beneath the grant", function()
  -- Another process swaps a directory inside the grant for a symlink to an outside directory
  -- as fast as it can while the script reads, lists, writes and appends through it: the path
  -- is checked first, then opened; every open must stay inside the grant (refused or failed
  -- when the swap lands in between, never outside).
  it("refuses an escape made between the check and the open", function()
    local base = root .. "/race"
    local g, o = base .. "/g", base .. "/o"
    sh("rm -rf " .. T.q(base) .. " && mkdir -p " .. T.q(g .. "/d") .. " " .. T.q(o))
    T.write(g .. "/d/f.txt", "inside\n")
    T.write(o .. "/f.txt", "OUTSIDE\n")
    T.write(o .. "/w.txt", "outside w\n")
    T.write(o .. "/a.txt", "outside a\n")
    T.write(o .. "/marker", "")
    local stop = base .. "/stop"
    sh("ln -s ../o " .. T.q(g .. "/x"))
    -- In-process renames (lua5.4, which the build requires): fast enough to hit the window.
    local racer = T.script(string.format([[
local d, x, save, stop = %q, %q, %q, %q
repeat
  for _ = 1, 200 do
    os.rename(d, save) os.rename(x, d) -- d is now the symlink to ../o
    os.rename(d, x) os.rename(save, d)
  end
until io.open(stop)
io.open(stop .. ".done", "w"):close()
]], g .. "/d", g .. "/x", g .. "/d.save", stop))
    sh("lua5.4 " .. T.q(racer) .. " >/dev/null 2>&1 </dev/null &")
    local r = run({ "--allow-write", g }, string.format([[
local p, w, a, dir = %q, %q, %q, %q
local good, out, errs = 0, 0, 0
local function note(ok, bad)
  if not ok then errs = errs + 1 elseif bad then out = out + 1 else good = good + 1 end
end
for i = 1, 3000 do
  local ok, v = pcall(fs.read, p)
  note(ok, ok and v ~= "inside\n")
  ok, v = pcall(fs.list, dir)
  note(ok, ok and table.concat(v, " "):find("marker", 1, true) ~= nil)
  if i %% 10 == 0 then
    note(pcall(fs.write, w, "w"), false)
    note(pcall(fs.append, a, "a"), false)
  end
end
print(good, out, errs)
]], g .. "/d/f.txt", g .. "/d/w.txt", g .. "/d/a.txt", g .. "/d"))
    sh("touch " .. T.q(stop) .. " && for i in $(seq 100); do [ -e " .. T.q(stop .. ".done") ..
      " ] && break; sleep 0.1; done")
    T.expect(0, r)
    local good, out = r.stdout:match("^(%d+)\t(%d+)\t%d+\n$")
    assert.is_not_nil(good, r.stdout)
    assert.are.equal("0", out, "an open landed outside the grant: " .. r.stdout)
    assert.is_true(tonumber(good) > 0, r.stdout)
    assert.are.equal("OUTSIDE\n", T.read(o .. "/f.txt"))
    assert.are.equal("outside w\n", T.read(o .. "/w.txt"))
    assert.are.equal("outside a\n", T.read(o .. "/a.txt"))
    assert.are.equal("a.txt f.txt marker w.txt", ls(o))
  end)
end)

describe("fs.lines, fs.exists, fs.list", function()
  it("iterates lines without line ends, CRLF and a last line without newline included", function()
    local r = T.expect(0, run({ "--allow-read", inside }, string.format(
      "for l in fs.lines(%q) do print('[' .. l .. ']') end", inside .. "/data.txt")))
    assert.are.equal("[one]\n[two]\n[three]\n", r.stdout)
  end)

  it("survives thousands of abandoned and broken-off iterators", function()
    local r = T.expect(0, run({ "--allow-read", inside }, string.format([[
      for i = 1, 5000 do
        for l in fs.lines(%q) do break end
        local it = fs.lines(%q); it()
      end
      print("done")]], inside .. "/data.txt", inside .. "/data.txt")))
    assert.are.equal("done\n", r.stdout)
  end)

  it("tells whether a file exists and lists a directory, sorted", function()
    local r = T.expect(0, run({ "--allow-read", inside }, string.format(
      "print(fs.exists(%q), fs.exists(%q)) print(table.concat(fs.list(%q), ','))",
      inside .. "/data.txt", inside .. "/nope", inside)))
    assert.are.equal("true\tfalse\ndata.txt,dirlink,link\n", r.stdout)
  end)
end)

describe("csv.rows", function()
  it("reads a granted CSV file with quoted multi-line fields", function()
    local path = inside .. "/meters.csv"
    T.write(path, "\239\187\191meter_id, service address ,note\r\n" ..
      "1,\"12 Elm St\r\nSuite 4\",\"say \"\"hi\"\"\"\r\n" ..
      "2,\"1 Oak Ave, Bldg B\",\r\n")
    local r = T.expect(0, run({ "--allow-read", inside }, string.format([[
      for row in csv.rows(%q) do
        print(row.meter_id, (row["service address"]:gsub("\r\n", "|")), row.note)
      end]], path)))
    assert.are.equal("1\t12 Elm St|Suite 4\tsay \"hi\"\n2\t1 Oak Ave, Bldg B\t\n", r.stdout)
  end)

  it("follows the fs rules", function()
    local r = T.expect(0, run({ "--allow-read", inside }, probe(string.format("csv.rows(%q)", secret .. "/key.txt"))))
    assert.matches("^err sandbox|", r.stdout)
  end)

  it("names the file and line of a malformed record", function()
    local path = inside .. "/bad.csv"
    T.write(path, "a,b\n1,2\n3\n")
    local r = T.expect(0, run({ "--allow-read", inside }, probe(string.format("csv.rows(%q)", path))))
    assert.matches("err csv|@1: csv: " .. path:gsub("%p", "%%%0") .. ": line 3: 1 field, header has 2",
      r.stdout)
  end)

  it("streams: 200,000 rows (16 MB) count under --max-memory 32", function()
    local path = inside .. "/big.csv"
    local f = assert(io.open(path, "wb"))
    f:write("meterId,accountNumber,nameOnBill,serviceAddress\n")
    for i = 0, 199999 do
      f:write(string.format('%d,2001734%05d,"Name, %d","%d Main Street\nSuite %d, Lancaster, PA 17601"\n',
        i % 20 + 1, i, i, i, i % 7))
    end
    f:close()
    local r = T.expect(0, run({ "--allow-read", inside, "--max-memory", "32" }, string.format([[
      local n, last = 0
      for row in csv.rows(%q) do n = n + 1; last = row end
      print(n, last.nameOnBill, (last.serviceAddress:gsub("\n", "|")))]], path)))
    assert.are.equal("200000\tName, 199999\t199999 Main Street|Suite 2, Lancaster, PA 17601\n", r.stdout)
    os.remove(path)
  end)

  it("reads records that straddle its read chunks exactly as csv.parse reads the whole text", function()
    -- quoted fields with CR LF, doubled quotes and separators, at every offset around the
    -- 64 KiB chunk boundaries; an unquoted CR LF split across a boundary too
    local path = inside .. "/chunks.csv"
    local parts, size = { "a,b,c\r\n" }, 7
    local i = 0
    while size < 3 * 65536 + 5000 do
      i = i + 1
      local rec = string.format('%d,"x%s\r\ny ""q"", z",%s\r\n', i, string.rep("w", i % 97), string.rep("v", (i * 7) % 13))
      parts[#parts + 1] = rec
      size = size + #rec
    end
    T.write(path, table.concat(parts))
    local r = T.expect(0, run({ "--allow-read", inside }, string.format([[
      local whole = csv.parse(fs.read(%q))
      local n = 0
      for row in csv.rows(%q) do
        n = n + 1
        local w = whole[n]
        if not w or w.a ~= row.a or w.b ~= row.b or w.c ~= row.c then error("row " .. n .. " differs") end
      end
      print(n == #whole, n)]], path, path)))
    assert.matches("^true\t%d+\n$", r.stdout)
  end)

  it("fails at the call, before any row, when a later record is malformed", function()
    local path = inside .. "/late.csv"
    local lines = { "a,b" }
    for i = 1, 5000 do lines[#lines + 1] = i .. ",x" end
    lines[#lines + 1] = "5001"
    T.write(path, table.concat(lines, "\n") .. "\n")
    local r = T.expect(0, run({ "--allow-read", inside }, string.format([[
      local seen = 0
      local ok, e = pcall(function() for _ in csv.rows(%q) do seen = seen + 1 end end)
      print(ok, seen, e.kind, e.line)]], path)))
    assert.are.equal("false\t0\tcsv\t5002\n", r.stdout)
  end)

  it("closes the file when a generic for is left early", function()
    local path = inside .. "/early.csv"
    T.write(path, "a\n1\n2\n3\n")
    local r = T.expect(0, run({ "--allow-read", inside }, string.format([[
      for row in csv.rows(%q) do if row.a == "2" then break end end
      local n = 0
      for _ in csv.rows(%q) do n = n + 1 end
      print(n)]], path, path)))
    assert.are.equal("3\n", r.stdout)
  end)

  it("writes a report that reads back the same", function()
    local path = outdir .. "/report.csv"
    local r = T.expect(0, run({ "--allow-write", outdir }, string.format([[
      local rows = {{id = 1, addr = "1 Elm,\nApt \"2\""}, {id = 2, addr = " x "}}
      fs.write(%q, csv.encode(rows, {"id", "addr"}))
      for row in csv.rows(%q) do print(row.id, row.addr) end]], path, path)))
    assert.are.equal("1\t1 Elm,\nApt \"2\"\n2\t x \n", r.stdout)
    assert.are.equal("id,addr\n1,\"1 Elm,\nApt \"\"2\"\"\"\n2,\" x \"\n", T.read(path))
  end)
end)

describe("log", function()
  it("writes timestamped UTC lines to stderr", function()
    local r = T.expect(0, run({}, [[
      log.info("hello %s %d", "world", 42)
      log.warn("50% done")
      log.error("two\nlines")]]))
    local ts = "%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ"
    assert.matches(ts .. " INFO  hello world 42\n", r.stderr)
    assert.matches(ts .. " WARN  50%% done\n", r.stderr)
    assert.matches(ts .. " ERROR two\\nlines\n", r.stderr)
    assert.are.equal("", r.stdout)
  end)

  it("is silenced by --quiet for info only", function()
    local r = T.expect(0, run({ "--quiet" }, [[log.info("not shown") log.warn("shown")]]))
    assert.not_matches("not shown", r.stderr, 1, true)
    assert.matches("WARN  shown", r.stderr, 1, true)
  end)

  it("raises a normal Lua error for a bad format", function()
    local r = T.expect(0, run({}, [[print(pcall(log.info, "%d", "x"))]]))
    assert.matches("^false\t.*number expected", r.stdout)
  end)
end)
