-- `ecaphost journal FILE [--json]` on hand-written journals: the counts per operation, the
-- unknown calls listed (an intent without an outcome, or an outcome "unknown"), the exit codes
-- (0 none unknown, 1 some, 2 usage, 3 unreadable or malformed, naming the line), a torn last
-- line tolerated, and text from the journal escaped before it reaches the terminal.
-- Run: ECAPHOST=build/ecaphost ECAP_SRC=. lua5.4 /usr/bin/busted spec/lua/journal_spec.lua
local T = require "spec.lua.support"
local cjson = require "cjson"

local ID_A, ID_B, ID_C = ("a"):rep(32), ("b"):rep(32), ("c"):rep(32)

local function run_line(run)
  return cjson.encode { type = "run", run = run, time = "2026-12-02T10:00:00Z", script = "s.lua",
                        args = {}, base_url = "http://127.0.0.1:1", version = "0.1.0" }
end

local function intent(run, seq, op, method, path, id, query)
  return cjson.encode { type = "intent", run = run, seq = seq, time = "2026-12-02T10:00:0" .. seq .. "Z",
                        operation = op, method = method, path = path, query = query or "",
                        body = cjson.null, upload = cjson.null, identity = id }
end

local function outcome(run, seq, o)
  return cjson.encode { type = "outcome", run = run, seq = seq, time = "2026-12-02T10:01:00Z",
                        outcome = o, status = o == "ok" and 200 or cjson.null, attempts = 1,
                        duration = 0.1, response = o == "ok" and { id = seq } or cjson.null,
                        error = cjson.null }
end

local function journal(lines, tail)
  local p = T.write(T.tmpname(".jsonl"), table.concat(lines, "\n") .. "\n" .. (tail or ""))
  os.execute("chmod 600 " .. T.q(p))
  return p
end

-- Two runs: the second resumed the first.
local function mixed()
  return journal {
    run_line "r1",
    intent("r1", 1, "meters.apply_release", "POST", "/api/v3/meter/1/release", ID_A),
    outcome("r1", 1, "ok"),
    intent("r1", 2, "meters.apply_release", "POST", "/api/v3/meter/2/release", ID_B, "force=true"),
    intent("r1", 3, "account_meters.edit", "PUT", "/api/v3/accountmeter/9", ID_C),
    outcome("r1", 3, "failed"),
    run_line "r2",
    intent("r2", 1, "meters.apply_release", "POST", "/api/v3/meter/1/release", ID_A),
    outcome("r2", 1, "skipped"),
    intent("r2", 2, "meters.apply_release", "POST", "/api/v3/meter/2/release", ID_B, "force=true"),
    outcome("r2", 2, "not sent"),
    intent("r2", 3, "account_meters.edit", "PUT", "/api/v3/accountmeter/9", ID_C),
    outcome("r2", 3, "unknown"),
  }
end

describe("ecaphost journal", function()
  it("counts each operation's outcomes and lists the unknown calls; exit 1", function()
    local r = T.expect(1, T.run { "journal", mixed() })
    assert.matches("2 runs, 6 calls", r.stdout, 1, true)
    local release = r.stdout:match("meters%.apply_release +([%d ]+)\n")
    local edit = r.stdout:match("account_meters%.edit +([%d ]+)\n")
    assert.are.same({ "1", "0", "1", "1", "1" }, { (release or ""):match("(%d+) +(%d+) +(%d+) +(%d+) +(%d+)") })
    assert.are.same({ "0", "1", "1", "0", "0" }, { (edit or ""):match("(%d+) +(%d+) +(%d+) +(%d+) +(%d+)") })
    assert.matches("2 calls whose outcome is unknown", r.stdout, 1, true)
    assert.matches("2026-12-02T10:00:02Z r1 meters.apply_release POST /api/v3/meter/2/release?force=true identity "
                   .. ID_B, r.stdout, 1, true)
    assert.matches("2026-12-02T10:00:03Z r2 account_meters.edit PUT /api/v3/accountmeter/9 identity " .. ID_C,
                   r.stdout, 1, true)
    assert.are.equal("", r.stderr)
  end)

  it("--json gives the same facts as one object", function()
    local r = T.expect(1, T.run { "journal", "--json", mixed() })
    local s = cjson.decode(r.stdout)
    assert.are.equal(2, s.runs)
    assert.are.equal(6, s.calls)
    assert.are.same({ ok = 1, failed = 0, unknown = 1, ["not sent"] = 1, skipped = 1 },
                    s.operations["meters.apply_release"])
    assert.are.same({ ok = 0, failed = 1, unknown = 1, ["not sent"] = 0, skipped = 0 },
                    s.operations["account_meters.edit"])
    assert.are.equal(2, #s.unknown)
    assert.are.same({ time = "2026-12-02T10:00:02Z", run = "r1", seq = 2, operation = "meters.apply_release",
                      method = "POST", path = "/api/v3/meter/2/release", query = "force=true",
                      identity = ID_B, line = 4 }, s.unknown[1])
    assert.are.equal("r2", s.unknown[2].run)
  end)

  it("exits 0 when no call is unknown; a torn last line is skipped", function()
    local p = journal({ run_line "r1",
                        intent("r1", 1, "meters.apply_release", "POST", "/api/v3/meter/1/release", ID_A),
                        outcome("r1", 1, "ok") },
                      '{"type":"intent","run":"r1","seq":2,"ti')
    local r = T.expect(0, T.run { "journal", p })
    assert.matches("1 run, 1 call\n", r.stdout, 1, true)
    assert.is_nil(r.stdout:find("unknown (", 1, true))
    r = T.expect(0, T.run { "journal", "--json", p })
    local s = cjson.decode(r.stdout)
    assert.are.equal(0, #s.unknown)
    assert.are.equal(1, s.operations["meters.apply_release"].ok)
  end)

  it("an empty journal: exit 0, an empty summary", function()
    local p = journal({ run_line "r1" })
    T.expect(0, T.run { "journal", p })
    local s = cjson.decode(T.expect(0, T.run { "journal", "--json", p }).stdout)
    assert.are.same({ runs = 1, calls = 0 }, { runs = s.runs, calls = s.calls })
    assert.are.equal("[]", T.run({ "journal", "--json", p }).stdout:match('"unknown":(%b[])'))
  end)

  it("exits 3 naming the line of a malformed record, or the unreadable file", function()
    local p = journal { run_line "r1", '{"type":"intent","run":"r1"', outcome("r1", 1, "ok") }
    local r = T.expect(3, T.run { "journal", p })
    assert.matches("line 2: not a JSON record", r.stderr, 1, true)
    assert.are.equal("", r.stdout)
    p = journal { run_line "r1", intent("r1", 1, "x", "POST", "/api/x", ID_A), outcome("r1", 1, "maybe") }
    r = T.expect(3, T.run { "journal", "--json", p })
    assert.matches("line 3:", r.stderr, 1, true)
    assert.matches('"outcome" is not ok', r.stderr, 1, true)
    r = T.expect(3, T.run { "journal", T.tmpdir() .. "/missing.jsonl" })
    assert.matches("missing.jsonl: No such file", r.stderr, 1, true)
    r = T.expect(3, T.run { "journal", T.tmpdir() })
    assert.matches("not a regular file", r.stderr, 1, true)
  end)

  it("exits 2 for a usage error", function()
    assert.matches("needs a journal FILE", T.expect(2, T.run { "journal" }).stderr, 1, true)
    assert.matches("unknown option --jsn", T.expect(2, T.run { "journal", "--jsn", "x" }).stderr, 1, true)
    assert.matches("one journal at a time", T.expect(2, T.run { "journal", "a", "b" }).stderr, 1, true)
    assert.matches("usage: ecaphost journal", T.expect(0, T.run { "journal", "--help" }).stdout, 1, true)
    assert.matches("ecaphost journal [--json] FILE", T.expect(0, T.run { "--help" }).stdout, 1, true)
  end)

  it("escapes the journal's text before it reaches the terminal", function()
    local p = journal { run_line "r1",
                        intent("r1", 1, "x\27[2J", "POST", "/api/\27]0;owned\7", ID_A) }
    local r = T.expect(1, T.run { "journal", p })
    assert.is_nil(r.stdout:find("\27", 1, true))
    assert.matches("x\\x1b[2J", r.stdout, 1, true)
  end)
end)
