-- Consent belongs to the run (issue 9): a destructive call (deleteBills=true, a bulk update of
-- every meter) needs the script's confirm AND the run's consent: --allow-destructive (config
-- allow_destructive = true), or a yes typed at a prompt when stdin and stderr are terminals.
-- Without either it is refused before anything is sent. --dry-run previews instead: "would
-- update N meters" from the documented count, and the bills deleteBills would delete, read
-- from the relationship and the account's bills.
-- Run: ECAPHOST=build/ecaphost ECAP_SRC=. lua5.4 /usr/bin/busted spec/lua/consent_spec.lua
local T = require "spec.lua.support"

-- Relationship 2 of the demo data: account 1, meter 1, open-ended and the most recent of the
-- pair, so deleteBills is allowed; the bills from 2025-07 on have lines for meter 1.
local EDIT = [[ecap.account_meters.edit(2, { beginDate = "2021-01-01", endDate = "2025-06-30",
  generalLedgerId = json.null, vendorTypeId = json.null }, { deleteBills = true, confirm = "delete bills" })]]
local BULK_ALL = [[ecap.cost_avoidance.bulk_update({ filters = {}, numBaselineMonths = 24 }, { confirm = "all meters" })]]

local has_script = os.execute("command -v script >/dev/null 2>&1")

describe("consent of the run", function()
  local sim
  setup(function() sim = T.start_sim() end)
  teardown(function() sim.stop() end)
  before_each(function() sim.reset(); sim.clear_requests() end)

  local function writes() return sim.writes() end

  local function bills_of_meter_1_from(date)
    local n = 0
    for _, b in ipairs(sim.control("GET", "/api/__sim/state").bills) do
      local mine = false
      for _, l in ipairs(b.lines) do mine = mine or l.meterId == 1 end
      if mine and b.accountId == 1 and b.beginDate >= date then n = n + 1 end
    end
    return n
  end

  it("refuses a confirmed destructive call when the run has not consented (no terminal), sending nothing", function()
    for _, call in ipairs { EDIT, BULK_ALL } do
      local r = T.expect(0, T.run_script("local ok, e = pcall(function() return " .. call .. " end)\n" ..
        "print(ok, e.kind, e.rule, e.message)", {}, { url = sim.url, quiet = true }))
      assert.matches("^false\tvalidation\tconsent\t", r.stdout)
      assert.matches("the run has not consented: run with --allow-destructive (config allow_destructive = true), "
        .. "or from a terminal to answer yes at the prompt", r.stdout, 1, true)
    end
    assert.are.equal(0, (writes()))
    -- uncaught: exit 1, and the message names both ways
    local r = T.expect(1, T.run_script(EDIT, {}, { url = sim.url, quiet = true }))
    assert.matches("--allow-destructive", r.stderr, 1, true)
    assert.matches("from a terminal", r.stderr, 1, true)
  end)

  it("still wants the script's confirm when the run has not consented", function()
    local r = T.expect(0, T.run_script([[print(select(2, pcall(ecap.cost_avoidance.bulk_update,
      { filters = {}, numBaselineMonths = 24 })).rule)]], {}, { url = sim.url, quiet = true }))
    assert.are.equal("guard\n", r.stdout)
  end)

  it("--allow-destructive sends it without previews (no extra reads)", function()
    local before = bills_of_meter_1_from("2025-06-30")
    assert.is_true(before > 0)
    T.expect(0, T.run_script(EDIT .. "\n" .. BULK_ALL, { "--allow-destructive" }, { url = sim.url, quiet = true }))
    local n, reads = writes()
    assert.are.equal(2, n)
    assert.are.same({}, reads)
    assert.are.equal(0, bills_of_meter_1_from("2025-06-30"))
  end)

  it("config allow_destructive = true consents too", function()
    local cf = T.write(T.tmpname(".conf"), "base_url = " .. sim.url .. "\nallow_destructive = true\n")
    T.expect(0, T.run({ "run", "-q", "--config", cf, T.script(EDIT) }))
    assert.are.equal(1, (writes()))
  end)

  it("ecap.request's raw destructive call needs the run's consent alone", function()
    local raw = [[ecap.request("PUT", "/api/v3/savings/settings", { body = { filters = json.array{},
      numBaselineMonths = 24, attemptCoolingAdjustment = json.null, attemptHeatingAdjustment = json.null,
      baselineStartDate = json.null, coolingNeededAbove = json.null, heatingNeededBelow = json.null,
      includeMeterInCostAvoidance = json.null, savingsStartDate = json.null } })]]
    local r = T.expect(0, T.run_script("print(select(2, pcall(function() return " .. raw .. " end)).rule)",
      {}, { url = sim.url, quiet = true }))
    assert.are.equal("consent\n", r.stdout)
    assert.are.equal(0, (writes()))
    T.expect(0, T.run_script(raw, { "--allow-destructive" }, { url = sim.url, quiet = true }))
    assert.are.equal(1, (writes()))
  end)

  describe("--dry-run", function()
    it("previews a bulk update with the server's count and needs no consent", function()
      local r = T.expect(0, T.run_script(BULK_ALL .. "\n" .. [[
        ecap.cost_avoidance.bulk_update({ filters = { { fieldId = 3, operator = "equals", value = "ELECTRIC" } },
          numBaselineMonths = 24 })]], { "--dry-run" }, { url = sim.url, quiet = true }))
      local all = T.json(sim.http("/api/v3/savings/meter/count?onlyMetersInCAP=false", { method = "POST", body = "[]" }).body)
      local elec = T.json(sim.http("/api/v3/savings/meter/count?onlyMetersInCAP=false", { method = "POST",
        body = '[{"fieldId":3,"operator":"equals","value":"ELECTRIC"}]' }).body)
      assert.is_true(elec.count < all.count)
      assert.matches(string.format("\npreview: would update %d meters\n", all.count), r.stdout, 1, true)
      assert.matches(string.format("\npreview: would update %d meters\n", elec.count), r.stdout, 1, true)
      local n, reads = writes()
      assert.are.equal(0, n)
      assert.are.equal(2 + 2, #reads) -- the two previews' counts, and the two made here
    end)

    it("lists the bills deleteBills would delete: count, dates, cost, other meters", function()
      local r = T.expect(0, T.run_script(EDIT, { "--dry-run" }, { url = sim.url, quiet = true }))
      local n, first, last, total, others = 0, nil, nil, 0, {}
      for _, b in ipairs(sim.control("GET", "/api/__sim/state").bills) do
        local mine = false
        for _, l in ipairs(b.lines) do mine = mine or l.meterId == 1 end
        if mine and b.accountId == 1 and b.beginDate >= "2025-06-30" then
          n = n + 1
          first = (not first or b.beginDate < first) and b.beginDate or first
          last = (not last or b.endDate > last) and b.endDate or last
          for _, l in ipairs(b.lines) do
            total = total + l.cost
            if l.meterId ~= 1 then others[l.meterId] = true end
          end
        end
      end
      assert.is_true(n > 0 and next(others) ~= nil)
      assert.matches("DRY-RUN account_meters.edit PUT " .. sim.url .. "/api/v3/accountmeter/2?deleteBills=true",
        r.stdout, 1, true)
      assert.matches(string.format("preview: would delete %d bills of account 2001-0001 (id 1), meter E-HQ-MAIN "
        .. "(id 1) starting on or after 2025-06-30\npreview: from %s to %s, total cost %.2f\n"
        .. "preview: whole bills: the lines of 1 other meter on them go too: E-HQ-HVAC\n", n, first, last, total),
        r.stdout, 1, true)
      local w, reads = writes()
      assert.are.equal(0, w)
      assert.are.equal("/api/v3/accountmeter/2", reads[1])
      assert.are.equal("/api/v3/bill", reads[2])
      assert.are.equal(n, bills_of_meter_1_from("2025-06-30")) -- nothing deleted
    end)

    it("never says 'no bills' when the bill list does not name the meters of its lines", function()
      sim.fault({ count = 1, mode = "body", status = 200, pathPrefix = "/api/v3/bill",
        headers = { ["Content-Type"] = "application/json" },
        body = '[{"billId":9,"beginDate":"2025-12-01","endDate":"2025-12-31","totalCost":5}]' })
      local r = T.expect(0, T.run_script(EDIT, { "--dry-run" }, { url = sim.url, quiet = true }))
      assert.matches("preview: cannot tell which bills it would delete: 1 bill of account 2001-0001 (id 1) came "
        .. "without the meters of their lines or a start date", r.stdout, 1, true)
      assert.is_nil(r.stdout:find("would delete no bills", 1, true))
    end)

    it("says why when a preview read fails, and still prints the call", function()
      sim.fault({ count = 1, mode = "status", status = 404, pathPrefix = "/api/v3/accountmeter/2" })
      local r = T.expect(0, T.run_script(EDIT, { "--dry-run", "--retries", "0" }, { url = sim.url, quiet = true }))
      assert.matches("DRY-RUN account_meters.edit PUT", r.stdout, 1, true)
      assert.matches("\npreview: no preview: ", r.stdout, 1, true)
      assert.matches("404", r.stdout, 1, true)
    end)
  end)

  describe("the prompt on a terminal", function()
    -- Runs the script under util-linux `script` (a terminal on stdin and stderr), typing answers.
    -- delay: seconds before the answers are typed.
    local function on_tty(text, answers, host_args, delay)
      local typescript = T.tmpname(".tty")
      local cmd = { T.q(T.bin), "run", "-q", "--base-url", sim.url }
      for _, a in ipairs(host_args or {}) do cmd[#cmd + 1] = T.q(a) end
      cmd[#cmd + 1] = T.q(T.script(text))
      local line = string.format("timeout -s KILL 30 script -qec %s %s", T.q(table.concat(cmd, " ")), T.q(typescript))
      if delay then
        line = "sh -c " .. T.q(string.format("(sleep %g; cat %s) | %s", delay,
          T.q(T.write(T.tmpname(".in"), answers)), line))
        answers = nil
      end
      local r = T.sh(line, { env = { ECAP_API_KEY = "test-key", ECAP_CONFIG = "/dev/null" }, stdin = answers })
      r.screen = T.read(typescript) or ""
      return r
    end
    local function count(s, plain)
      local n, i = 0, 1
      while true do
        local at = s:find(plain, i, true)
        if not at then return n end
        n, i = n + 1, at + 1
      end
    end

    it("shows the preview and sends on yes", function()
      if not has_script then return pending("no `script` command") end
      local r = on_tty(EDIT .. "\nprint('SENT')", "yes\n")
      assert.are.equal(0, r.code, r.screen)
      assert.matches("account_meters.edit: a destructive call:", r.screen, 1, true)
      assert.matches("deleteBills=true deletes whole bills", r.screen, 1, true)
      assert.matches("would delete %d+ bills of account 2001%-0001", r.screen)
      assert.matches("SENT", r.screen, 1, true)
      assert.are.equal(1, (writes()))
      assert.are.equal(0, bills_of_meter_1_from("2025-06-30"))
    end)

    it("refuses on anything else, with a validation error naming the answer", function()
      if not has_script then return pending("no `script` command") end
      local r = on_tty("local ok, e = pcall(function() return " .. EDIT .. " end)\nprint(e.kind, e.rule, e.message)", "nope\n")
      assert.are.equal(0, r.code, r.screen)
      assert.matches('validation\tconsent\taccount_meters.edit: deleteBills=true deletes whole bills, other '
        .. 'meters\' lines included: not sent: answered "nope" at the prompt', r.screen, 1, true)
      assert.are.equal(0, (writes()))
    end)

    it("all: one prompt, then every destructive call of the run goes", function()
      if not has_script then return pending("no `script` command") end
      local r = on_tty(BULK_ALL .. "\n" .. BULK_ALL .. "\n" .. EDIT .. "\nprint('DONE')", "all\n")
      assert.are.equal(0, r.code, r.screen)
      assert.are.equal(1, count(r.screen, "a destructive call:"))
      assert.matches("would update %d+ meters", r.screen)
      assert.are.equal(3, (writes()))
    end)

    it("asks ecap.parallel items one at a time", function()
      if not has_script then return pending("no `script` command") end
      local r = on_tty([[
        local res, errs = ecap.parallel({ 1, 2, 3 }, function()
          return ecap.cost_avoidance.bulk_update({ filters = {}, numBaselineMonths = 24 }, { confirm = "all meters" }) and true
        end, { concurrency = 3 })
        local refused = 0
        for _, e in pairs(errs) do if e.rule == "consent" then refused = refused + 1 end end
        print("REFUSED", refused)]], "yes\nno\nyes\n")
      assert.are.equal(0, r.code, r.screen)
      assert.are.equal(3, count(r.screen, "a destructive call:"))
      -- each prompt is answered before the next is shown
      local prompts = {}
      for at in r.screen:gmatch("()cost_avoidance.bulk_update: a destructive call:") do prompts[#prompts + 1] = at end
      for i = 2, #prompts do
        assert.is_truthy(r.screen:sub(prompts[i - 1], prompts[i]):find("anything else to refuse: ", 1, true))
      end
      assert.matches("REFUSED\t1", r.screen, 1, true)
      assert.are.equal(2, (writes()))
    end)

    it("waits on the event loop: other items go on while the operator reads the prompt", function()
      if not has_script then return pending("no `script` command") end
      local r = on_tty([[
        local t0, gets, during = ecap.now(), 0, nil
        ecap.parallel({ 1, 2 }, function(i)
          if i == 1 then
            ecap.sleep(0.2)
            local before = gets
            ecap.cost_avoidance.bulk_update({ filters = {}, numBaselineMonths = 24 }, { confirm = "all meters" })
            during = gets - before
          else
            while ecap.now() - t0 < 2.5 do ecap.request("GET", "/api/v3/meter/1"); gets = gets + 1 end
          end
        end)
        print("GETS WHILE ASKING", during)]], "yes\n", nil, 1)
      assert.are.equal(0, r.code, r.screen)
      -- a prompt that blocked the loop would leave room for the preview's read alone (a few GETs)
      local n = tonumber(r.screen:match("GETS WHILE ASKING\t(%d+)"))
      assert.is_true(n and n > 20, r.screen)
    end)

    it("--allow-destructive does not ask", function()
      if not has_script then return pending("no `script` command") end
      local r = on_tty(EDIT, "", { "--allow-destructive" })
      assert.are.equal(0, r.code, r.screen)
      assert.is_nil(r.screen:find("a destructive call:", 1, true))
      assert.are.equal(1, (writes()))
    end)
  end)
end)
