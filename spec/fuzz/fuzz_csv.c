/* libFuzzer target: csv.parse / csv.encode (host/lib/csv.c), driven through a lua_State set up as
 * spec/c/test_csv.c does (csv_open, which also opens fs for csv.rows: fs needs no host state
 * until a file function runs, and the fuzzer only calls parse and encode).
 *
 * For every input and for header=true and header=false:
 *   - csv.parse either returns or raises a clean error: under lua_pcall, an error table of
 *     kind "csv" (host/lib/errors.h) with an integer line >= 1; anything else aborts;
 *   - when it parses, csv.encode(rows, header) must succeed (every value is a string), and
 *     csv.parse of that text must give the same header and the same rows (abort otherwise).
 * The comparison is a small Lua function (compiled once) so that a mismatch reports the row
 * and column.
 *
 * spec/fuzz/crashes/ keeps the inputs of findings since fixed, as regression seeds. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "lib/errors.h"
#include "lib/libs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static lua_State *L;
static int roundtrip_ref;

/* roundtrip(csv, text, header) -> nil on success, or a string describing the mismatch.
 * A parse error of the ORIGINAL text is raised (the C side checks it is clean); any error
 * after that is a finding and comes back as a string. */
static const char roundtrip_src[] =
    "local csv, text, header = ...\n"
    "local opts = {header = header}\n"
    "local rows, hdr = csv.parse(text, opts)\n"
    "local function show(t)\n"
    "  if type(t) ~= 'table' then return tostring(t) end\n"
    "  local out = {}\n"
    "  for i = 1, #t do out[i] = string.format('%q', t[i]) end\n"
    "  return '{' .. table.concat(out, ',') .. '}'\n"
    "end\n"
    "local ok, text2 = pcall(csv.encode, rows, hdr)\n"
    "if not ok then return 'csv.encode failed: ' .. tostring(text2) end\n"
    "if type(text2) ~= 'string' then return 'csv.encode returned a ' .. type(text2) end\n"
    "local ok2, rows2, hdr2 = pcall(csv.parse, text2, opts)\n"
    "if not ok2 then\n"
    "  return 'the encoding does not parse: ' .. tostring(rows2) .. '\\nencoding: ' .. string.format('%q', text2)\n"
    "end\n"
    "local function differ(what)\n"
    "  return what .. '\\nencoding: ' .. string.format('%q', text2)\n"
    "end\n"
    "if header then\n"
    "  if #hdr ~= #hdr2 then\n"
    "    return differ('header has ' .. #hdr .. ' names, after the round trip ' .. #hdr2 .. ': ' .. show(hdr) .. ' vs ' .. show(hdr2))\n"
    "  end\n"
    "  for c = 1, #hdr do\n"
    "    if hdr[c] ~= hdr2[c] then\n"
    "      return differ(string.format('header column %d: %q became %q', c, hdr[c], tostring(hdr2[c])))\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if #rows ~= #rows2 then\n"
    "  return differ(#rows .. ' rows, after the round trip ' .. #rows2)\n"
    "end\n"
    "for r = 1, #rows do\n"
    "  local a, b = rows[r], rows2[r]\n"
    "  if header then\n"
    "    local n = 0\n"
    "    for k in pairs(b) do n = n + 1 end\n"
    "    if n ~= #hdr then return differ('row ' .. r .. ' has ' .. n .. ' fields after the round trip') end\n"
    "    for c = 1, #hdr do\n"
    "      local k = hdr[c]\n"
    "      if a[k] ~= b[k] then\n"
    "        return differ(string.format('row %d, column %q: %q became %q', r, k, tostring(a[k]), tostring(b[k])))\n"
    "      end\n"
    "    end\n"
    "  else\n"
    "    if #a ~= #b then\n"
    "      return differ('row ' .. r .. ' has ' .. #a .. ' fields, after the round trip ' .. #b .. ': ' .. show(a) .. ' vs ' .. show(b))\n"
    "    end\n"
    "    for c = 1, #a do\n"
    "      if a[c] ~= b[c] then\n"
    "        return differ(string.format('row %d, field %d: %q became %q', r, c, a[c], tostring(b[c])))\n"
    "      end\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return nil\n";

/* A fresh state per input: nothing carries over between inputs (a crash reproduces from its
 * input alone), and lua_close frees all an input allocated, so libFuzzer's leak check (which
 * runs after any input whose mallocs and frees do not balance) stays quiet and fast unless
 * something really leaks. */
static void new_state(void)
{
    L = luaL_newstate();
    if (!L)
        abort();
    luaL_openlibs(L);
    err_init(L);
    luaL_requiref(L, "csv", csv_open, 1);
    lua_pop(L, 1);
    if (luaL_loadbuffer(L, roundtrip_src, sizeof roundtrip_src - 1, "=roundtrip") != LUA_OK) {
        fprintf(stderr, "fuzz_csv: %s\n", lua_tostring(L, -1));
        abort();
    }
    roundtrip_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

static void fail(const char *what, int header, const uint8_t *data, size_t size)
{
    fprintf(stderr, "fuzz_csv (header=%s): %s\n", header ? "true" : "false", what);
    fprintf(stderr, "input (%zu bytes): ", size);
    for (size_t i = 0; i < size && i < 2000; i++) {
        unsigned char c = data[i];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            fputc(c, stderr);
        else
            fprintf(stderr, "\\x%02x", c);
    }
    fputc('\n', stderr);
    abort();
}

/* A clean csv error: an ecap error table of kind "csv" with a line number >= 1. */
static int clean_csv_error(int idx)
{
    int ok;
    if (!err_is(L, idx))
        return 0;
    lua_getfield(L, idx, "kind");
    lua_getfield(L, idx, "line");
    ok = lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), "csv") == 0
         && lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1;
    lua_pop(L, 2);
    return ok;
}

static void run(const uint8_t *data, size_t size, int header)
{
    lua_settop(L, 0);
    lua_rawgeti(L, LUA_REGISTRYINDEX, roundtrip_ref);
    lua_getglobal(L, "csv");
    lua_pushlstring(L, (const char *)data, size);
    lua_pushboolean(L, header);
    if (lua_pcall(L, 3, 1, 0) != LUA_OK) {
        if (!clean_csv_error(1)) {
            err_tostring(L, 1);
            fail(lua_pushfstring(L, "csv.parse raised an unclean error: %s", lua_tostring(L, -1)),
                 header, data, size);
        }
    } else if (!lua_isnil(L, 1)) {
        fail(lua_tostring(L, 1), header, data, size);
    }
    lua_settop(L, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    new_state();
    run(data, size, 0);
    run(data, size, 1);
    lua_close(L);
    L = NULL;
    return 0;
}
