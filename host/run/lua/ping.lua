-- `ecaphost ping`: one small authenticated GET, to check the key and the connection.
-- Host code: its return value is the exit code.
local cfg = ecap.config()
local target = cfg.base_url .. (cfg.environment and (" (" .. cfg.environment .. ")") or "")
  .. (cfg.simulator and " (built-in simulator)" or "")
local ok, body, meta = pcall(ecap.request, "GET", "/api/v3/meter", { query = { pageSize = 1 } })
if ok then
  print(string.format("target:  %s\nstatus:  %d OK (API key accepted)\nlatency: %.1f ms",
    target, meta.status, meta.elapsed * 1000))
else
  local e = body
  print(string.format("target:  %s", target))
  if type(e) == "table" and e.status then
    print(string.format("status:  %d %s", e.status, e.message or ""))
  else
    print(string.format("status:  failed: %s", tostring(e)))
  end
  -- A refused key is a configuration problem (exit 3); anything else a failed run (exit 1).
  return (type(e) == "table" and (e.status == 401 or e.status == 403)) and 3 or 1
end
return 0
