-- hello.lua: a first ecaphost script. Prints the code and name of every meter, reading all
-- pages of GET /api/v3/meter with ecap.pages.
--
--   ecaphost run --sim scripts/hello.lua
--   ECAP_API_KEY=... ecaphost run --environment us-east scripts/hello.lua
local n = 0
for meter in ecap.pages("/api/v3/meter") do
  n = n + 1
  print(meter.meterCode, meter.meterInfo)
end
print(n .. " meters")
