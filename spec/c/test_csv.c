/* csv.parse / csv.encode driven through a lua_State: the RFC 4180 cases, the choices this
 * host makes (BOM, empty lines, lone CR, header trimming), errors with their line numbers, and
 * a run under an allocator that fails at every possible point (no crash, no leak). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "lib/errors.h"
#include "lib/libs.h"

#include "check.h"

/* An allocator that fails once `budget` allocations have been made (budget < 0: never). */
static long budget = -1;

static void *test_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    (void)ud;
    (void)osize;
    if (nsize == 0) {
        free(ptr);
        return NULL;
    }
    if (budget == 0 && nsize > osize)
        return NULL;
    if (budget > 0)
        budget--;
    return realloc(ptr, nsize);
}

static lua_State *new_state(void)
{
    lua_State *L = lua_newstate(test_alloc, NULL);
    if (!L) {
        fprintf(stderr, "cannot create a Lua state\n");
        exit(2);
    }
    luaL_openlibs(L);
    err_init(L);
    luaL_requiref(L, "csv", csv_open, 1);
    lua_pop(L, 1);
    lua_pushlightuserdata(L, NULL); /* what json.null is */
    lua_setglobal(L, "null");
    return L;
}

static char result[4096];

/* Runs a chunk named "t"; returns tostring of its first result, or "ERR " .. tostring(error)
 * (an error table's text starts with its where, "t:1: "). The allocation budget applies to
 * the run only. */
static const char *eval_budget(lua_State *L, const char *code, long n)
{
    int ok;
    const char *s;
    budget = n;
    ok = luaL_loadbuffer(L, code, strlen(code), "=t") == LUA_OK && lua_pcall(L, 0, 1, 0) == LUA_OK;
    budget = -1;
    s = luaL_tolstring(L, -1, NULL);
    snprintf(result, sizeof result, "%s%s", ok ? "" : "ERR ", s);
    lua_settop(L, 0);
    return result;
}

static const char *eval(lua_State *L, const char *code)
{
    return eval_budget(L, code, -1);
}

static int eval_is(lua_State *L, const char *code, const char *want)
{
    const char *got = eval(L, code);
    if (strcmp(got, want) == 0)
        return 1;
    fprintf(stderr, "  code: %s\n  want: %s\n  got:  %s\n", code, want, got);
    return 0;
}

#define IS(code, want) CHECK(eval_is(L, code, want))

static void test_parse(lua_State *L)
{
    IS("local r = csv.parse('a,b\\n1,2\\n3,4\\n') return #r .. r[1].a .. r[1].b .. r[2].a .. r[2].b",
       "21234");
    IS("local r = csv.parse('a,b\\r\\n1,2\\r\\n') return #r .. r[1].a .. r[1].b", "112");
    IS("local r = csv.parse('a,b\\n1,2') return #r .. r[1].b", "12");
    IS("return csv.parse('a,b\\n\"x,y\",2\\n')[1].a", "x,y");
    IS("return csv.parse('a\\n\"he said \"\"hi\"\"\"\\n')[1].a", "he said \"hi\"");
    IS("return csv.parse('a\\n\"\"\"\"\\n')[1].a", "\"");
    IS("return csv.parse('addr,id\\n\"123 Main St\\nSuite 4\",7\\n')[1].addr",
       "123 Main St\nSuite 4");
    IS("return csv.parse('addr,id\\r\\n\"1 Elm\\r\\nApt 2\",7\\r\\n')[1].addr", "1 Elm\r\nApt 2");
    IS("return csv.parse('\\239\\187\\191id,name\\n1,x\\n')[1].id", "1");
    IS("local r = csv.parse('a,b,c\\n,,\\n')[1] return r.a .. '|' .. r.b .. '|' .. r.c", "||");
    IS("local r = csv.parse('a,b\\n\"\",x\\n')[1] return type(r.a) .. #r.a .. r.b", "string0x");
    IS("return #csv.parse('a,b\\n\\n1,2\\n\\n\\n3,4\\n\\n')", "2");
    IS("local r = csv.parse('a,b\\r1,2\\r3,4') return #r .. r[2].b", "24");
    IS("local r = csv.parse(' a ,\\tb\\t\\n 1 ,2\\n')[1] return r.a .. '|' .. r.b", " 1 |2");
    IS("return csv.parse('size\\n12\" pipe\\n')[1].size", "12\" pipe");
    IS("return csv.parse('a;b\\n\"x;y\";2\\n', {sep=';'})[1].a", "x;y");
    IS("return type(csv.parse('a,b\\n1,2\\n')[1][1])", "nil");
}

static void test_header(lua_State *L)
{
    IS("local r, h = csv.parse('z,a,m\\n1,2,3\\n') return table.concat(h, ',')", "z,a,m");
    IS("local r, h = csv.parse('') return #r .. #h", "00");
    IS("local r, h = csv.parse('a,b\\n') return #r .. #h", "02");
    IS("local r = csv.parse('a,b\\n1,2\\n3\\n4,5,6\\n', {header=false})"
       " return #r .. #r[1] .. #r[2] .. #r[3] .. r[1][1] .. r[4][3]", "4221a6");
    IS("return select('#', csv.parse('a\\n1\\n', {header=false}))", "1");
    IS("return csv.parse(',a\\n1,2\\n')[1]['']", "1");
}

static void test_errors(lua_State *L)
{
    IS("return csv.parse('a,b\\n1,2\\n3,4\\n5,\"open\\n6,7\\n')",
       "ERR t:1: csv: line 4: unterminated quoted field");
    IS("return csv.parse('a,b,c,d\\n1,2,3,4\\n1,2,3,4\\n\\n1,2,3,4\\n1,2,3,4\\n1,2,3,4,5\\n')",
       "ERR t:1: csv: line 7: 5 fields, header has 4");
    IS("return csv.parse('a,b\\n1\\n')", "ERR t:1: csv: line 2: 1 field, header has 2");
    IS("return csv.parse('a,b\\n\"x\\ny\",1\\r\\n\"p\\r\\nq\",2\\n1,2,3\\n')",
       "ERR t:1: csv: line 6: 3 fields, header has 2");
    IS("return csv.parse('a,b\\n\"ab\"c,d\\n')",
       "ERR t:1: csv: line 2: unexpected 'c' after a closing quote");
    IS("return csv.parse('a, a\\n1,2\\n')", "ERR t:1: csv: line 1: duplicate column 'a'");
    IS("local ok, e = pcall(csv.parse, 'a\\n\"x') return e.kind .. e.line", "csv2");
    IS("local e = select(2, pcall(csv.parse, {})) return e.kind .. ' ' .. e.message",
       "argument bad argument #1 to '?' (string expected, got table)"); /* no sandbox, no names */
    IS("local e = select(2, pcall(csv.parse, 'a', {sep=',,'}))"
       " return e.kind .. ' ' .. tostring(e):match('sep must be')", "argument sep must be");
}

static void test_encode(lua_State *L)
{
    IS("return csv.encode({{a='1', b='x'}, {a='2', b='y'}}, {'a', 'b'})", "a,b\n1,x\n2,y\n");
    IS("return csv.encode({{a='x,y', b='say \"hi\"'}}, {'a', 'b'})",
       "a,b\n\"x,y\",\"say \"\"hi\"\"\"\n");
    IS("return csv.encode({{a='1 Elm\\nApt 2', b=' pad'}}, {'a', 'b'})",
       "a,b\n\"1 Elm\nApt 2\",\" pad\"\n");
    IS("return csv.encode({{n=42, f=1.5, t=true, z=null}}, {'n', 'f', 't', 'z', 'missing'})",
       "n,f,t,z,missing\n42,1.5,true,,\n");
    IS("return csv.encode({{1, 'a,b'}, {}, {3}})", "1,\"a,b\"\n\n3\n");
    /* a lone empty field is quoted: an empty line would be skipped when read back (fuzz_csv) */
    IS("return csv.encode({{''}, {'x'}})", "\"\"\nx\n");
    IS("return csv.encode({{a=null}, {}}, {'a'})", "a\n\"\"\n\"\"\n");
    IS("return csv.encode({}, {''})", "\"\"\n");
    IS("return #csv.parse(csv.encode({{''}, {''}}), {header=false})", "2");
    IS("return csv.encode({}, {'x y', 'q\"'})", "x y,\"q\"\"\"\n");
    IS("return csv.encode({{a='1'}}, {'a'}, {eol='\\r\\n', sep=';'})", "a\r\n1\r\n");
    IS("return csv.encode({{'\\239\\187\\191x'}})", "\"\357\273\277x\"\n");
    IS("return csv.encode({{a='x;y'}}, {'a'}, {sep=';'})", "a\n\"x;y\"\n");
    IS("return tostring(select(2, pcall(csv.encode, {{a={}}}, {'a'})))"
       ":match('^t:1: csv: csv.encode: row 1, column 1: cannot encode a table') ~= nil", "true");
    IS("return tostring(select(2, pcall(csv.encode, {1}, {'a'}))):match('row 1 is a number') ~= nil",
       "true");
    IS("return tostring(select(2, pcall(csv.encode, {}, {'a', 2}))):match('header column 2') ~= nil",
       "true");
    /* round trip through both directions */
    IS("local rows = {{id='1', addr='1 Elm,\\r\\nApt \"2\"', note=''}, {id='2', addr=' x ', "
       "note='\\239\\187\\191'}}"
       " local back = csv.parse(csv.encode(rows, {'id', 'addr', 'note'}))"
       " for i, r in ipairs(rows) do for k, v in pairs(r) do"
       "   if back[i][k] ~= v then return 'differs at ' .. i .. k end end end"
       " return #back", "2");
}

/* Every allocation failure point of a parse and an encode: a clean error, never a crash;
 * ASan (the sanitizer build) reports any leak. */
static void test_alloc_failures(void)
{
    const char *code =
        "local r = csv.parse('id,addr\\n1,\"a,\\nb \"\"q\"\"\"\\n2,x\\n')"
        " return csv.encode(r, {'id', 'addr'})";
    const char *want = "id,addr\n1,\"a,\nb \"\"q\"\"\"\n2,x\n";
    int ok = 0, errors = 0;
    for (long n = 0; n < 100000 && !ok; n++) {
        lua_State *L = new_state();
        const char *got;
        got = eval_budget(L, code, n);
        if (strcmp(got, want) == 0)
            ok = 1;
        else if (strncmp(got, "ERR ", 4) == 0)
            errors++;
        else
            fprintf(stderr, "  allocation failure %ld gave: %s\n", n, got);
        lua_close(L);
    }
    CHECK(ok);
    CHECK(errors > 10);
}

int main(void)
{
    lua_State *L = new_state();
    test_parse(L);
    test_header(L);
    test_errors(L);
    test_encode(L);
    lua_close(L);
    test_alloc_failures();
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
