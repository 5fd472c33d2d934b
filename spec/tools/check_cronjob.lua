-- Checks the Kubernetes CronJob of scripts/deploy/kubernetes without a cluster:
--   lua5.4 spec/tools/check_cronjob.lua FILE.yaml
-- Reads the block-style YAML subset the manifest uses (maps, lists, "- key: v" items, flow
-- lists [a, "b", 1], quoted and plain scalars, comments) and refuses anything else, so a
-- construct it does not know fails the check instead of being misread. Integers follow YAML
-- 1.1 as kubectl reads them: 0400 is octal (256). Exit 0 when every rule holds, 1 otherwise
-- (each broken rule on stderr), 2 when the file cannot be read or parsed.

local function fail_parse(n, msg)
  io.stderr:write(string.format("%s:%d: %s\n", arg[1], n, msg))
  os.exit(2)
end

-- Lines without comments and blank lines: { n = line number, indent = spaces, text = rest }.
local function read_lines(path)
  local f, err = io.open(path)
  if not f then
    io.stderr:write(err, "\n")
    os.exit(2)
  end
  local out, n = {}, 0
  for line in f:lines() do
    n = n + 1
    if line:find("\t") then fail_parse(n, "tab in indentation or value") end
    local quote, cut = nil, nil
    for i = 1, #line do
      local c = line:sub(i, i)
      if quote then
        if c == quote then quote = nil end
      elseif c == '"' or c == "'" then
        quote = c
      elseif c == "#" and (i == 1 or line:sub(i - 1, i - 1) == " ") then
        cut = i
        break
      end
    end
    if cut then line = line:sub(1, cut - 1) end
    line = line:gsub("%s+$", "")
    if line ~= "" and line ~= "---" then
      local sp = line:match("^ *")
      out[#out + 1] = { n = n, indent = #sp, text = line:sub(#sp + 1) }
    end
  end
  f:close()
  return out
end

local function scalar(s, n)
  local c = s:sub(1, 1)
  if c == '"' then
    local body = s:match('^"(.*)"$')
    if not body or body:find('\\[^"\\]') then fail_parse(n, "unsupported double-quoted string: " .. s) end
    return (body:gsub('\\(.)', "%1"))
  elseif c == "'" then
    local body = s:match("^'(.*)'$")
    if not body then fail_parse(n, "unterminated single-quoted string: " .. s) end
    return (body:gsub("''", "'"))
  elseif c == "[" then
    local body = s:match("^%[(.*)%]$")
    if not body then fail_parse(n, "unsupported flow sequence: " .. s) end
    local items, cur, quote = {}, "", nil
    for i = 1, #body do
      local ch = body:sub(i, i)
      if quote then
        if ch == quote then quote = nil end
        cur = cur .. ch
      elseif ch == '"' or ch == "'" then
        quote = ch
        cur = cur .. ch
      elseif ch == "," then
        items[#items + 1] = scalar((cur:gsub("^%s+", ""):gsub("%s+$", "")), n)
        cur = ""
      else
        cur = cur .. ch
      end
    end
    cur = cur:gsub("^%s+", ""):gsub("%s+$", "")
    if cur ~= "" then items[#items + 1] = scalar(cur, n) end
    return items
  elseif c:find("[{|>&*!%%@`]") then
    fail_parse(n, "unsupported YAML construct: " .. s)
  elseif s == "true" or s == "false" then
    return s == "true"
  elseif s == "null" or s == "~" then
    return nil
  elseif s:match("^0o[0-7]+$") then
    return tonumber(s:sub(3), 8)
  elseif s:match("^0[0-7]+$") then
    return tonumber(s, 8) -- YAML 1.1, as kubectl reads it
  elseif s:match("^%-?%d+$") then
    return math.tointeger(tonumber(s))
  end
  return s
end

local parse_block

-- A "key: value" or "key:" line: key, rest (rest "" when the value is a block below).
local function split_key(line)
  local key, rest = line.text:match("^([%w%._/%-]+):%s*(.*)$")
  if not key then fail_parse(line.n, "expected 'key: value': " .. line.text) end
  return key, rest
end

local function parse_map(lines, i, indent)
  local map = {}
  while lines[i] and lines[i].indent == indent and not lines[i].text:find("^%- ") and lines[i].text ~= "-" do
    local key, rest = split_key(lines[i])
    if map[key] ~= nil then fail_parse(lines[i].n, "duplicate key " .. key) end
    local nxt = lines[i + 1]
    if rest ~= "" then
      map[key] = scalar(rest, lines[i].n)
      i = i + 1
    elseif nxt and (nxt.indent > indent or (nxt.indent == indent and nxt.text:find("^%-"))) then
      map[key], i = parse_block(lines, i + 1, nxt.indent)
    else
      map[key] = nil
      i = i + 1
    end
  end
  return map, i
end

local function parse_seq(lines, i, indent)
  local seq = {}
  while lines[i] and lines[i].indent == indent and (lines[i].text:find("^%- ") or lines[i].text == "-") do
    local content = lines[i].text:match("^%-%s*(.*)$")
    if content == "" then
      local nxt = lines[i + 1]
      if not nxt or nxt.indent <= indent then fail_parse(lines[i].n, "empty list item") end
      seq[#seq + 1], i = parse_block(lines, i + 1, nxt.indent)
    elseif content:match("^[%w%._/%-]+:%s") or content:match("^[%w%._/%-]+:$") then
      -- "- key: v" opens a map whose keys sit two columns in
      lines[i] = { n = lines[i].n, indent = indent + 2, text = content }
      seq[#seq + 1], i = parse_map(lines, i, indent + 2)
    else
      seq[#seq + 1] = scalar(content, lines[i].n)
      i = i + 1
    end
  end
  return seq, i
end

function parse_block(lines, i, indent)
  if lines[i].text:find("^%-") then return parse_seq(lines, i, indent) end
  return parse_map(lines, i, indent)
end

local function parse(path)
  local lines = read_lines(path)
  if #lines == 0 then fail_parse(0, "empty file") end
  local doc, i = parse_block(lines, 1, lines[1].indent)
  if lines[i] then fail_parse(lines[i].n, "unexpected indentation: " .. lines[i].text) end
  return doc
end

-- ---- the rules ---------------------------------------------------------------------------
local problems = {}
local function check(ok, msg)
  if not ok then problems[#problems + 1] = msg end
  return ok
end

local function get(t, path)
  for key in path:gmatch("[^%.]+") do
    if type(t) ~= "table" then return nil end
    t = t[key]
  end
  return t
end

local function inside(path, dir)
  dir = dir:gsub("/+$", "")
  return type(path) == "string" and path:sub(1, #dir + 1) == dir .. "/" and not path:find("/%.%./")
end

local function by_name(list, name)
  for _, v in ipairs(list or {}) do
    if v.name == name then return v end
  end
end

-- The mount of container c holding path p, and its volume.
local function mount_of(c, p, volumes)
  for _, m in ipairs(c.volumeMounts or {}) do
    if inside(p, m.mountPath) then return m, by_name(volumes, m.name) end
  end
end

-- Every word of a container's command and args.
local function argv(c)
  local out = {}
  for _, k in ipairs({ "command", "args" }) do
    for _, w in ipairs(type(c[k]) == "table" and c[k] or {}) do out[#out + 1] = tostring(w) end
  end
  return out
end

local function option(words, name)
  for i, w in ipairs(words) do
    if w == name then return words[i + 1] end
    if w:sub(1, #name + 1) == name .. "=" then return w:sub(#name + 2) end
  end
end

local doc = parse(arg[1])
check(doc.apiVersion == "batch/v1", "apiVersion must be batch/v1")
check(doc.kind == "CronJob", "kind must be CronJob (got " .. tostring(doc.kind) .. ")")
check(type(get(doc, "spec.schedule")) == "string", "spec.schedule missing")
check(get(doc, "spec.concurrencyPolicy") == "Forbid",
  "spec.concurrencyPolicy must be Forbid (no overlapping runs), got " .. tostring(get(doc, "spec.concurrencyPolicy")))

local job = get(doc, "spec.jobTemplate.spec") or {}
local pod = get(job, "template.spec") or {}
check(math.type(job.backoffLimit) == "integer", "jobTemplate.spec.backoffLimit missing")
check(pod.restartPolicy == "Never",
  "template.spec.restartPolicy must be Never (podFailurePolicy needs it), got " .. tostring(pod.restartPolicy))

local sc = pod.securityContext or {}
check(math.type(sc.runAsUser) == "integer" and sc.runAsUser > 0, "securityContext.runAsUser must be a non-root uid")
check(math.type(sc.runAsGroup) == "integer", "securityContext.runAsGroup missing")
check(math.type(sc.fsGroup) == "integer", "securityContext.fsGroup missing (the key must be readable by the runner)")

-- The ecaphost container: the one running `ecaphost run`.
local main
for _, c in ipairs(pod.containers or {}) do
  local w = argv(c)
  for i, word in ipairs(w) do
    if word == "run" and (i == 1 or w[i - 1]:match("ecaphost$")) then main = c end
  end
end
if check(main, "no container runs `ecaphost run`") then
  local rules = get(job, "podFailurePolicy.rules")
  local failjob = {}
  for _, r in ipairs(type(rules) == "table" and rules or {}) do
    local oc = r.onExitCodes
    if r.action == "FailJob" and oc and oc.operator == "In" and (oc.containerName == nil or oc.containerName == main.name) then
      for _, v in ipairs(oc.values or {}) do failjob[v] = true end
    end
  end
  for _, code in ipairs({ 2, 3, 6 }) do
    check(failjob[code], "podFailurePolicy: exit " .. code .. " of container " .. tostring(main.name)
      .. " must fail the Job (FailJob, operator In), not be retried")
  end

  -- The key: --api-key-file inside a mount. Straight from a Secret only without fsGroup (the
  -- kubelet makes the file 0440 otherwise); with one, an emptyDir an init container fills
  -- with a 0400 copy of a file of the Secret.
  local words = argv(main)
  local key = option(words, "--api-key-file")
  local secret_vol
  for _, v in ipairs(pod.volumes or {}) do
    if v.secret then secret_vol = v end
  end
  if check(secret_vol, "no Secret volume") then
    check(get(secret_vol, "secret.defaultMode") == 256,
      "Secret volume " .. tostring(secret_vol.name) .. ": defaultMode must be 0400 (256), got "
      .. tostring(get(secret_vol, "secret.defaultMode")))
  end
  if check(key, "container " .. tostring(main.name) .. ": no --api-key-file") then
    local _, vol = mount_of(main, key, pod.volumes)
    if check(vol, "--api-key-file " .. key .. " is not inside a volume mount of " .. tostring(main.name)) then
      if vol.secret then
        check(sc.fsGroup == nil, "--api-key-file reads the Secret directly but fsGroup makes it 0440: copy it")
      elseif check(vol.emptyDir and get(vol, "emptyDir.medium") == "Memory",
          "--api-key-file: volume " .. tostring(vol.name) .. " must be a Secret or an emptyDir with medium Memory") then
        local copied
        for _, ic in ipairs(pod.initContainers or {}) do
          local w = argv(ic)
          local src, dst = w[#w - 1], w[#w]
          local _, dvol = mount_of(ic, dst or "", pod.volumes)
          local _, svol = mount_of(ic, src or "", pod.volumes)
          local mode = option(w, "-m") or option(w, "--mode")
          if dst == key and dvol == vol and svol and svol == secret_vol and mode == "0400" then copied = ic end
        end
        check(copied, "no init container copies the Secret's key to " .. key .. " with mode 0400 (install -m 0400 SRC DST)")
      end
    end
  end

  -- The script (the first .lua word: options and the script's arguments may surround it)
  -- comes from a ConfigMap.
  local script
  for _, w in ipairs(words) do
    if not script and w:match("%.lua$") then script = w end
  end
  local _, svol = mount_of(main, script, pod.volumes)
  check(svol and svol.configMap, "the script " .. tostring(script) .. " must come from a ConfigMap volume")
end

if #problems > 0 then
  for _, p in ipairs(problems) do io.stderr:write(arg[1], ": ", p, "\n") end
  os.exit(1)
end
print(arg[1] .. ": ok")
