-- The simulator's ESA formula grammar (the public pages do not give EnergyCAP's own):
--
--   formula := expr
--   expr    := term { ("+" | "-") term }
--   term    := factor { ("*" | "/") factor }
--   factor  := ("+" | "-") factor | number | meterref | "(" expr ")"
--   number  := digits [ "." digits ] | "." digits
--   meterref:= "{" digits "}"          -- a meter id: that meter's primary value channel
--
-- Whitespace (spaces, tabs, newlines) may appear between tokens. Positions in messages count
-- characters from 1.
local Formula = {}

-- Returns the list of referenced meter ids (in order of first appearance, no duplicates), or
-- nil and a message naming the position.
function Formula.parse(src)
  local pos, n = 1, #src
  local refs, seen = {}, {}

  local function skip()
    while pos <= n and src:sub(pos, pos):match("%s") do pos = pos + 1 end
  end
  local function fail(what)
    local c = src:sub(pos, pos)
    if c == "" then error({ msg = what .. " at position " .. pos .. " (end of formula)" }, 0) end
    error({ msg = string.format("%s at position %d (found '%s')", what, pos, c) }, 0)
  end

  local expr
  local depth = 0
  local function factor()
    skip()
    local c = src:sub(pos, pos)
    if c == "+" or c == "-" or c == "(" then
      depth = depth + 1
      if depth > 100 then fail("nested more than 100 deep") end
    end
    if c == "+" or c == "-" then
      pos = pos + 1
      factor()
      depth = depth - 1
    elseif c == "(" then
      pos = pos + 1
      expr()
      depth = depth - 1
      skip()
      if src:sub(pos, pos) ~= ")" then fail("expected ')'") end
      pos = pos + 1
    elseif c == "{" then
      local start = pos
      pos = pos + 1
      local digits = src:match("^%d+", pos)
      if not digits then fail("expected a meter id after '{'") end
      pos = pos + #digits
      if src:sub(pos, pos) ~= "}" then fail("expected '}'") end
      pos = pos + 1
      local id = math.tointeger(tonumber(digits))
      if #digits > 10 or not id or id < 1 or id > 2147483647 then
        error({ msg = string.format("meter reference at position %d is not an int32 id", start) }, 0)
      end
      if not seen[id] then seen[id] = true; refs[#refs + 1] = id end
    elseif c:match("[%d%.]") then
      local num = src:match("^%d+%.%d+", pos) or src:match("^%d+", pos) or src:match("^%.%d+", pos)
      if not num then fail("expected a number") end
      pos = pos + #num
      if src:sub(pos, pos):match("[%d%.]") then fail("unexpected character in number") end
    else
      fail("expected a number, a meter reference {id} or '('")
    end
  end
  -- operand { (op1 | op2) operand }
  local function chain(operand, op1, op2)
    return function()
      operand()
      while true do
        skip()
        local c = src:sub(pos, pos)
        if c ~= op1 and c ~= op2 then return end
        pos = pos + 1
        operand()
      end
    end
  end
  local term = chain(factor, "*", "/")
  expr = chain(term, "+", "-")

  local ok, err = pcall(function()
    expr()
    skip()
    if pos <= n then fail("unexpected character") end
  end)
  if not ok then
    if type(err) == "table" then return nil, err.msg end
    error(err, 0)
  end
  return refs
end

return Formula
