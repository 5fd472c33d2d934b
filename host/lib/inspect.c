/* The readable printer (see inspect.h). In C rather than Lua: it reads tables raw and sorts
 * keys of mixed types without calling into the script, and a REPL result of 10^5 entries prints
 * without a Lua-level walk. The output buffer lives in a userdata with __gc, so a memory error
 * raised mid-walk (the state's allocator counts it against --max-memory) leaks nothing. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "errors.h"
#include "inspect.h"
#include "json.h"
#include "json_codec.h"

#define MAX_DEPTH 100      /* opts.depth ceiling: keeps the recursion far from the C stack end */
#define INLINE_WIDTH 78    /* a scalar-only table this short goes on one line */
#define BUF_MT "ecap.inspect.buffer"

struct buffer {
    char *p;
    size_t len, cap;
    lua_Alloc f;
    void *ud;
};

struct walker {
    lua_State *L;
    const struct inspect_opts *o;
    struct buffer *b;
    int level;
    int cut;                       /* max_bytes reached: nothing more is written */
    int mt_array, mt_object;       /* stack slots of json's array/object metatables */
    const void *open[MAX_DEPTH + 1];
};

/* A key of a table's hash part, sorted before printing: numbers, strings, booleans, others. */
struct skey {
    int rank;
    lua_Number num;
    const char *s;
    size_t len;
    const void *ptr;
    int pos; /* index in the keys table that anchors the key */
};

void inspect_defaults(struct inspect_opts *o)
{
    o->depth = 6;
    o->max_items = 100;
    o->indent = 2;
    o->max_bytes = 1 << 20;
    o->unwrap = NULL;
}

static int buf_gc(lua_State *L)
{
    struct buffer *b = luaL_checkudata(L, 1, BUF_MT);
    if (b->p)
        b->f(b->ud, b->p, b->cap, 0);
    b->p = NULL;
    return 0;
}

static void put(struct walker *w, const char *s, size_t n)
{
    struct buffer *b = w->b;
    if (w->cut)
        return;
    if (b->len + n > w->o->max_bytes) {
        w->cut = 1;
        return;
    }
    if (b->cap - b->len < n) {
        size_t ncap = b->cap ? b->cap : 256;
        char *np;
        while (ncap - b->len < n)
            ncap *= 2;
        if (!(np = b->f(b->ud, b->p, b->p ? b->cap : 0, ncap)))
            luaL_error(w->L, "not enough memory");
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

#define put_lit(w, s) put((w), (s), sizeof(s) - 1)

static void put_indent(struct walker *w, int level)
{
    static const char spaces[] = "                                ";
    size_t n = (size_t)level * (size_t)w->o->indent;
    for (; n > 0 && !w->cut; n -= n < 32 ? n : 32)
        put(w, spaces, n < 32 ? n : 32);
}

static void put_string(struct walker *w, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len, *run = p;
    put_lit(w, "\"");
    while (p < end && !w->cut) {
        char esc[8];
        size_t n = 2;
        if (*p >= 0x20 && *p < 0x7f && *p != '"' && *p != '\\') {
            p++;
            continue;
        }
        if (*p >= 0x80 && (n = utf8_len(p, end)) > 0) {
            p += n;
            continue;
        }
        put(w, (const char *)run, (size_t)(p - run));
        switch (*p) {
        case '"': memcpy(esc, "\\\"", 2); n = 2; break;
        case '\\': memcpy(esc, "\\\\", 2); n = 2; break;
        case '\n': memcpy(esc, "\\n", 2); n = 2; break;
        case '\r': memcpy(esc, "\\r", 2); n = 2; break;
        case '\t': memcpy(esc, "\\t", 2); n = 2; break;
        default: n = (size_t)snprintf(esc, sizeof esc, "\\x%02X", *p);
        }
        put(w, esc, n);
        run = ++p;
    }
    put(w, (const char *)run, (size_t)(end - run));
    put_lit(w, "\"");
}

/* Floats keep a decimal point or exponent (1.0, not 1) and the digits that read back equal. */
static void put_float(struct walker *w, lua_Number v)
{
    char tmp[48], out[48];
    size_t n = 0;
    int exact = 0;
    if (isnan(v)) {
        put_lit(w, "0/0");
        return;
    }
    if (isinf(v)) {
        if (v > 0)
            put_lit(w, "math.huge");
        else
            put_lit(w, "-math.huge");
        return;
    }
    for (int prec = 15; prec <= 17 && !exact; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, (double)v);
        exact = strtod(tmp, NULL) == v;
    }
    for (size_t i = 0; tmp[i]; i++) {
        char c = tmp[i];
        /* another locale's decimal separator (maybe multibyte) becomes '.' */
        if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == 'e')
            out[n++] = c;
        else if (n == 0 || out[n - 1] != '.')
            out[n++] = '.';
    }
    if (!memchr(out, '.', n) && !memchr(out, 'e', n)) {
        out[n++] = '.';
        out[n++] = '0';
    }
    put(w, out, n);
}

static void put_number(struct walker *w, int idx)
{
    char tmp[32];
    if (lua_isinteger(w->L, idx)) {
        lua_Integer i = lua_tointeger(w->L, idx);
        if (i == LUA_MININTEGER)
            put_lit(w, "math.mininteger"); /* its digits read back as a float */
        else
            put(w, tmp, (size_t)snprintf(tmp, sizeof tmp, LUA_INTEGER_FMT, i));
    } else {
        put_float(w, lua_tonumber(w->L, idx));
    }
}

int inspect_is_name(const char *s, size_t n)
{
    static const char *const reserved[] = {
        "and", "break", "do", "else", "elseif", "end", "false", "for", "function", "goto", "if", "in",
        "local", "nil", "not", "or", "repeat", "return", "then", "true", "until", "while", NULL,
    };
    if (n == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '_'))
            return 0;
    for (const char *const *r = reserved; *r; r++)
        if (strlen(*r) == n && memcmp(*r, s, n) == 0)
            return 0;
    return 1;
}

static void put_value(struct walker *w, int idx);

static void put_key(struct walker *w, int idx)
{
    size_t n = 0;
    const char *s = lua_type(w->L, idx) == LUA_TSTRING ? lua_tolstring(w->L, idx, &n) : NULL;
    if (s && inspect_is_name(s, n)) {
        put(w, s, n);
    } else {
        put_lit(w, "[");
        put_value(w, idx);
        put_lit(w, "]");
    }
    put_lit(w, " = ");
}

static int skey_cmp(const void *a, const void *b)
{
    const struct skey *x = a, *y = b;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    if (x->rank == 0 || x->rank == 2)
        return x->num < y->num ? -1 : x->num > y->num;
    if (x->rank == 1) {
        int c = memcmp(x->s, y->s, x->len < y->len ? x->len : y->len);
        return c ? c : (x->len > y->len) - (x->len < y->len);
    }
    return ((uintptr_t)x->ptr > (uintptr_t)y->ptr) - ((uintptr_t)x->ptr < (uintptr_t)y->ptr);
}

/* [-0, +2] Pushes a table of the keys of t's hash part (those not in 1..narray) and a userdata
 * array of their sort records, sorted; returns their count. */
static int sorted_keys(lua_State *L, int t, lua_Integer narray, int total)
{
    int nkeys = total - (int)narray, k = 0;
    struct skey *sk;
    lua_createtable(L, nkeys, 0);
    sk = lua_newuserdatauv(L, (size_t)(nkeys > 0 ? nkeys : 1) * sizeof *sk, 0);
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 1 && lua_tointeger(L, -1) <= narray)
            continue;
        if (k >= nkeys) /* cannot happen: total counted the same keys */
            break;
        memset(&sk[k], 0, sizeof sk[k]);
        switch (lua_type(L, -1)) {
        case LUA_TNUMBER: sk[k].rank = 0; sk[k].num = lua_tonumber(L, -1); break;
        case LUA_TSTRING: sk[k].rank = 1; sk[k].s = lua_tolstring(L, -1, &sk[k].len); break;
        case LUA_TBOOLEAN: sk[k].rank = 2; sk[k].num = lua_toboolean(L, -1); break;
        default: sk[k].rank = 3; sk[k].ptr = lua_topointer(L, -1);
        }
        sk[k].pos = k + 1;
        lua_pushvalue(L, -1);
        lua_rawseti(L, -4, k + 1); /* anchors the key (and its string) */
        k++;
    }
    qsort(sk, (size_t)k, sizeof *sk, skey_cmp);
    return k;
}

/* An empty table: `{}`, or json's marker when it carries one (so `[]` vs `{}` survives). */
static void put_empty(struct walker *w, int t)
{
    lua_State *L = w->L;
    int kind = 0;
    if (lua_getmetatable(L, t)) {
        kind = lua_rawequal(L, -1, w->mt_array) ? 1 : lua_rawequal(L, -1, w->mt_object) ? 2 : 0;
        lua_pop(L, 1);
    }
    if (kind == 1)
        put_lit(w, "json.array{}");
    else if (kind == 2)
        put_lit(w, "json.object{}");
    else
        put_lit(w, "{}");
}

/* Array items i and i+1 (0-based) are both scalars: they may share a line. */
static int packable(lua_State *L, int t, int i)
{
    int prev = lua_rawgeti(L, t, i), cur = lua_rawgeti(L, t, i + 1);
    lua_pop(L, 2);
    return prev != LUA_TTABLE && cur != LUA_TTABLE;
}

/* Array item i (0-based) after ", " on the current line, or on a new line when the line would
 * grow past INLINE_WIDTH (the item is written first, then moved down if it does not fit). */
static void put_packed(struct walker *w, int t, int i)
{
    struct buffer *b = w->b;
    size_t sep = b->len, item, ilen, ind = (size_t)(w->level + 1) * (size_t)w->o->indent, line;
    size_t start = sep;
    put_lit(w, ", ");
    item = b->len;
    lua_rawgeti(w->L, t, i + 1);
    put_value(w, -1);
    lua_pop(w->L, 1);
    if (w->cut)
        return;
    while (start > 0 && b->p[start - 1] != '\n')
        start--;
    line = b->len - start;
    if (line <= INLINE_WIDTH)
        return;
    ilen = b->len - item;
    put_indent(w, w->level + 1); /* room for the indent: ", " becomes ",\n" + indent */
    if (w->cut)
        return;
    memmove(b->p + sep + 2 + ind, b->p + item, ilen);
    memcpy(b->p + sep, ",\n", 2);
    memset(b->p + sep + 2, ' ', ind);
}

/* The entries of t, inline ("{ a = 1, b = 2 }") or one per line. */
static void put_entries(struct walker *w, int t, lua_Integer narray, int total, int is_inline)
{
    lua_State *L = w->L;
    int shown = total < w->o->max_items ? total : w->o->max_items, nkeys = 0, keys = 0;
    char note[64];
    struct skey *sk = NULL;
    if (shown > narray) {
        nkeys = sorted_keys(L, t, narray, total);
        sk = lua_touserdata(L, -1);
        keys = lua_gettop(L) - 1;
    }
    put_lit(w, "{");
    for (int i = 0; i < shown && !w->cut; i++) {
        if (is_inline) {
            put(w, i ? ", " : " ", i ? 2 : 1);
        } else if (i > 0 && i < narray && packable(L, t, i)) {
            put_packed(w, t, i);
            continue;
        } else {
            put(w, i ? ",\n" : "\n", i ? 2 : 1);
            put_indent(w, w->level + 1);
        }
        if (i < narray) {
            lua_rawgeti(L, t, i + 1);
        } else {
            if (i - narray >= nkeys)
                break;
            lua_rawgeti(L, keys, sk[i - narray].pos);
            put_key(w, -1);
            lua_rawget(L, t);
        }
        w->level++;
        put_value(w, lua_gettop(L));
        w->level--;
        lua_pop(L, 1);
    }
    if (shown < total) {
        int n = snprintf(note, sizeof note, "--[[ %d more ]]", total - shown);
        put(w, is_inline ? ", " : ",\n", 2);
        if (!is_inline)
            put_indent(w, w->level + 1);
        put(w, note, (size_t)n);
    }
    if (is_inline) {
        put_lit(w, " }");
    } else {
        put(w, shown < total ? "\n" : ",\n", shown < total ? 1 : 2); /* the note is a comment */
        put_indent(w, w->level);
        put_lit(w, "}");
    }
    if (sk)
        lua_pop(L, 2);
}

/* True when no value of t is a table: such a table may go on one line. */
static int scalars_only(lua_State *L, int t)
{
    lua_pushnil(L);
    while (lua_next(L, t)) {
        int nested = lua_type(L, -1) == LUA_TTABLE;
        lua_pop(L, 1);
        if (nested) {
            lua_pop(L, 1);
            return 0;
        }
    }
    return 1;
}

static void put_table(struct walker *w, int t)
{
    lua_State *L = w->L;
    const void *self;
    lua_Integer narray = 0;
    int total = 0, top = lua_gettop(L);
    char note[64];
    luaL_checkstack(L, 8, "ecap.inspect: nesting too deep");
    if (w->o->unwrap && w->o->unwrap(L, t))
        t = lua_gettop(L);
    self = lua_topointer(L, t);
    for (int i = 0; i < w->level; i++)
        if (w->open[i] == self) {
            put_lit(w, "<cycle>");
            lua_settop(L, top);
            return;
        }
    for (lua_pushnil(L); lua_next(L, t); lua_pop(L, 1))
        total++;
    while (narray < total && lua_rawgeti(L, t, narray + 1) != LUA_TNIL) {
        lua_pop(L, 1);
        narray++;
    }
    lua_settop(L, top + (t > top));
    if (total == 0) {
        put_empty(w, t);
    } else if (w->level >= w->o->depth) {
        put(w, note, (size_t)snprintf(note, sizeof note, "{ --[[ %d entr%s ]] }", total, total == 1 ? "y" : "ies"));
    } else {
        size_t start = w->b->len;
        w->open[w->level] = self;
        if (w->o->indent == 0 || scalars_only(L, t)) {
            put_entries(w, t, narray, total, 1);
            if (w->o->indent > 0 && !w->cut &&
                w->b->len - start + (size_t)(w->level * w->o->indent) > INLINE_WIDTH) {
                w->b->len = start; /* too long for one line */
                put_entries(w, t, narray, total, 0);
            }
        } else {
            put_entries(w, t, narray, total, 0);
        }
    }
    lua_settop(L, top);
}

static void put_value(struct walker *w, int idx)
{
    lua_State *L = w->L;
    size_t n;
    const char *s;
    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TNIL: put_lit(w, "nil"); break;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx))
            put_lit(w, "true");
        else
            put_lit(w, "false");
        break;
    case LUA_TNUMBER: put_number(w, idx); break;
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &n);
        put_string(w, s, n);
        break;
    case LUA_TTABLE: put_table(w, idx); break;
    case LUA_TLIGHTUSERDATA:
        if (json_is_null(L, idx)) {
            put_lit(w, "json.null");
            break;
        }
        /* fall through */
    default:
        put(w, "<", 1);
        s = luaL_typename(L, idx);
        put(w, s, strlen(s));
        put(w, ">", 1);
    }
}

void inspect_push(lua_State *L, int idx, const struct inspect_opts *o)
{
    struct walker w;
    struct buffer *b;
    char note[80];
    idx = lua_absindex(L, idx);
    memset(&w, 0, sizeof w);
    w.L = L;
    w.o = o;
    luaL_checkstack(L, 8, "ecap.inspect");
    b = lua_newuserdatauv(L, sizeof *b, 0);
    memset(b, 0, sizeof *b);
    b->f = lua_getallocf(L, &b->ud);
    if (luaL_newmetatable(L, BUF_MT)) {
        lua_pushcfunction(L, buf_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    w.b = b;
    json_push_array_mt(L);
    w.mt_array = lua_gettop(L);
    json_push_object_mt(L);
    w.mt_object = lua_gettop(L);
    put_value(&w, idx);
    if (w.cut) {
        w.cut = 0;
        w.b->len = w.b->len > o->max_bytes - 64 ? o->max_bytes - 64 : w.b->len; /* room for the note */
        put(&w, note, (size_t)snprintf(note, sizeof note, "\n--[[ output cut at %zu bytes ]]", o->max_bytes));
    }
    lua_pop(L, 2);
    lua_pushlstring(L, b->p ? b->p : "", b->len);
    lua_remove(L, -2); /* the buffer: its __gc frees the bytes */
}

/* An integer option in lo..hi, or a validation error naming it. */
static int int_opt(lua_State *L, const char *fname, const char *name, int lo, int hi)
{
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < lo || lua_tointeger(L, -1) > hi)
        err_raise(L, "validation", "%s: opts.%s must be an integer %d..%d (got %s)", fname, name, lo, hi,
                  luaL_tolstring(L, -1, NULL));
    return (int)lua_tointeger(L, -1);
}

void inspect_read_opts(lua_State *L, int idx, struct inspect_opts *o, const char *fname)
{
    if (lua_isnoneornil(L, idx))
        return;
    idx = lua_absindex(L, idx);
    if (!lua_istable(L, idx))
        err_raise(L, "validation", "%s: opts must be a table (got %s)", fname, luaL_typename(L, idx));
    for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1)) {
        const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
        if (strcmp(k, "depth") == 0)
            o->depth = int_opt(L, fname, k, 0, MAX_DEPTH);
        else if (strcmp(k, "max_items") == 0)
            o->max_items = int_opt(L, fname, k, 1, INT32_MAX);
        else if (strcmp(k, "indent") == 0)
            o->indent = int_opt(L, fname, k, 0, 8);
        else
            err_raise(L, "validation", "%s: unknown option %s (known: depth, max_items, indent)", fname,
                      luaL_tolstring(L, -2, NULL));
    }
}
