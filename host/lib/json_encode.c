/* Lua values -> JSON text (see json.c for the design and the measurements). */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <lua.h>
#include <lauxlib.h>
#include "json.h"
#include "json_codec.h"

/* ---------------------------------------------------------------------------------------- */
/* Encoder: straight into one buffer from the state's allocator                             */
/* ---------------------------------------------------------------------------------------- */

/* One step of the path to the value being encoded: a key (key != NULL) or a 1-based index.
 * Key pointers stay valid because every key is on the Lua stack while its value is
 * encoded. */
typedef struct {
    const char *key;
    size_t keylen;
    lua_Integer index;
} PathStep;

/* An object member waiting to be written in key order; its value sits in stack slot vidx. */
typedef struct {
    const char *key;
    size_t keylen;
    int vidx;
} Member;

typedef struct {
    lua_State *L;
    lua_Alloc alloc;
    void *ud;
    char *buf;
    size_t len, cap;
    int mt_array, mt_object;            /* stack slots holding the two metatables */
    int indent;                         /* spaces per level; 0 = compact, one line */
    int depth;                          /* tables being encoded, outermost first */
    const void *open[JSON_MAXDEPTH];    /* ... and their identities, to detect cycles */
    PathStep path[JSON_MAXDEPTH + 1];
    int npath;
    Member *members;                    /* one scratch array shared by all nesting levels */
    size_t nmembers, capmembers;
    char *err;
    size_t errlen;
} Encoder;

static int enc_value(Encoder *e, int idx);

static int is_ident(const char *s, size_t n)
{
    size_t i;
    if (n == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
        return 0;
    for (i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '_'))
            return 0;
    }
    return 1;
}

/* Appends to err (bounded, always terminated); returns the new length. */
static size_t err_append(Encoder *e, size_t at, const char *s, size_t n)
{
    if (at + 1 >= e->errlen)
        return at;
    if (n > e->errlen - 1 - at)
        n = e->errlen - 1 - at;
    memcpy(e->err + at, s, n);
    e->err[at + n] = '\0';
    return at + n;
}

/* Writes "<path>: <message>" into err, the path in Lua syntax from the root "value":
 * value.filters[2]["odd key"]. */
json_printf(2, 3)
static int enc_fail(Encoder *e, const char *fmt, ...)
{
    char tmp[64];
    size_t at = 0;
    int i;
    va_list ap;
    if (e->err == NULL || e->errlen == 0)
        return -1;
    at = err_append(e, at, "value", 5);
    for (i = 0; i < e->npath; i++) {
        const PathStep *s = &e->path[i];
        if (s->key == NULL) {
            snprintf(tmp, sizeof tmp, "[%lld]", (long long)s->index);
            at = err_append(e, at, tmp, strlen(tmp));
        } else if (is_ident(s->key, s->keylen)) {
            at = err_append(e, at, ".", 1);
            at = err_append(e, at, s->key, s->keylen);
        } else {
            size_t j;
            at = err_append(e, at, "[\"", 2);
            for (j = 0; j < s->keylen && j < 40; j++) {
                unsigned char c = (unsigned char)s->key[j];
                char shown = (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') ? (char)c : '?';
                at = err_append(e, at, &shown, 1);
            }
            at = err_append(e, at, j < s->keylen ? "...\"]" : "\"]", j < s->keylen ? 5 : 2);
        }
    }
    at = err_append(e, at, ": ", 2);
    if (at + 1 < e->errlen) {
        va_start(ap, fmt);
        vsnprintf(e->err + at, e->errlen - at, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Makes room for n more bytes, doubling the buffer. */
static json_noinline int buf_grow(Encoder *e, size_t n)
{
    size_t ncap = e->cap ? e->cap : 256;
    char *nbuf;
    while (ncap - e->len < n) {
        if (ncap > SIZE_MAX / 2)
            return enc_fail(e, "out of memory");
        ncap *= 2;
    }
    nbuf = (char *)e->alloc(e->ud, e->buf, e->buf ? e->cap : 0, ncap);
    if (nbuf == NULL)
        return enc_fail(e, "out of memory");
    e->buf = nbuf;
    e->cap = ncap;
    return 0;
}

#define buf_reserve(e, n) ((e)->cap - (e)->len >= (n) ? 0 : buf_grow((e), (n)))

static int buf_add(Encoder *e, const char *s, size_t n)
{
    if (buf_reserve(e, n) != 0)
        return -1;
    memcpy(e->buf + e->len, s, n);
    e->len += n;
    return 0;
}

static int buf_addchar(Encoder *e, char c)
{
    if (buf_reserve(e, 1) != 0)
        return -1;
    e->buf[e->len++] = c;
    return 0;
}

static int enc_integer(Encoder *e, lua_Integer v)
{
    char tmp[24], *p = tmp + sizeof tmp;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;   /* exact even for LUA_MININTEGER */
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    return buf_add(e, p, (size_t)(tmp + sizeof tmp - p));
}

/* Floats: integral values up to 2^53 (where every integer is exact) print as integers, the
 * rest with the fewest of 15, 16, 17 significant digits that read back to the same double. */
static int enc_float(Encoder *e, double v)
{
    char tmp[40], out[40];
    size_t i, n = 0;
    int dot = 0;
    if (isnan(v))
        return enc_fail(e, "cannot encode NaN");
    if (isinf(v))
        return enc_fail(e, v > 0 ? "cannot encode inf" : "cannot encode -inf");
    if (v == floor(v) && fabs(v) <= 9007199254740992.0) {
        if (v == 0 && signbit(v))
            return buf_add(e, "-0.0", 4); /* "-0" would decode as the integer 0 */
        return enc_integer(e, (lua_Integer)v);
    }
    snprintf(tmp, sizeof tmp, "%.15g", v);
    if (strtod(tmp, NULL) != v) {
        snprintf(tmp, sizeof tmp, "%.16g", v);
        if (strtod(tmp, NULL) != v)
            snprintf(tmp, sizeof tmp, "%.17g", v);
    }
    /* the locale may have put another decimal separator (even a multibyte one) in place of
     * '.': keep only what JSON allows */
    for (i = 0; tmp[i] != '\0'; i++) {
        char c = tmp[i];
        if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == 'e') {
            out[n++] = c;
        } else if (!dot) {
            out[n++] = '.';
            dot = 1;
        }
    }
    return buf_add(e, out, n);
}

/* A string (or key) as a JSON string: '"', '\\' and control characters escaped, '/' and
 * everything else copied; invalid UTF-8 is refused rather than passed on to the server. */
static int enc_string(Encoder *e, const char *str, size_t len, int iskey)
{
    static const char hexd[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)str, *end = p + len, *run = p;
    size_t n;
    if (buf_reserve(e, len + 2) != 0)
        return -1;
    e->buf[e->len++] = '"';
    while (p < end) {
        unsigned char c = *p;
        char esc[6];
        size_t elen = 2;
        switch (str_class[c]) {
        case C_PLAIN:
            p++;
            continue;
        case C_HIGH:
            if ((n = utf8_len(p, end)) == 0)
                return enc_fail(e, iskey ? "invalid UTF-8 in key" : "invalid UTF-8 in string");
            p += n;
            continue;
        case C_QUOTE:
        case C_BSLASH:
            esc[0] = '\\';
            esc[1] = (char)c;
            break;
        default:
            esc[0] = '\\';
            switch (c) {
            case '\b': esc[1] = 'b'; break;
            case '\f': esc[1] = 'f'; break;
            case '\n': esc[1] = 'n'; break;
            case '\r': esc[1] = 'r'; break;
            case '\t': esc[1] = 't'; break;
            default:
                memcpy(esc + 1, "u00", 3);
                esc[4] = hexd[c >> 4];
                esc[5] = hexd[c & 15];
                elen = 6;
            }
        }
        if (buf_add(e, (const char *)run, (size_t)(p - run)) != 0
            || buf_add(e, esc, elen) != 0)
            return -1;
        run = ++p;
    }
    if (buf_add(e, (const char *)run, (size_t)(end - run)) != 0)
        return -1;
    return buf_addchar(e, '"');
}

/* Names the key at idx that does not fit the table's kind. */
static int key_error(Encoder *e, int idx, int marked_object)
{
    lua_State *L = e->L;
    int t = lua_type(L, idx);
    const char *what = t == LUA_TNUMBER && !lua_isinteger(L, idx) ? "non-integer number"
                                                                    : lua_typename(L, t);
    if (marked_object)
        return enc_fail(e, "cannot encode object with %s key", what);
    if (t == LUA_TSTRING || lua_isinteger(L, idx))
        return enc_fail(e, "cannot encode table with mixed keys");
    return enc_fail(e, "cannot encode table with %s key", what);
}

/* Pretty output only: a line break and the indent of `level`. */
static int enc_newline(Encoder *e, int level)
{
    size_t n = (size_t)level * (size_t)e->indent;
    if (e->indent == 0)
        return 0;
    if (buf_reserve(e, n + 1) != 0)
        return -1;
    e->buf[e->len++] = '\n';
    memset(e->buf + e->len, ' ', n);
    e->len += n;
    return 0;
}

/* The closing bracket of a container that had members (pretty: on its own line). */
static int enc_close(Encoder *e, char c, int had_members)
{
    if (had_members && enc_newline(e, e->depth - 1) != 0)
        return -1;
    return buf_addchar(e, c);
}

static int enc_array(Encoder *e, int idx, lua_Integer n)
{
    lua_State *L = e->L;
    lua_Integer i;
    int step = e->npath++;
    if (buf_addchar(e, '[') != 0)
        return -1;
    for (i = 1; i <= n; i++) {
        if ((i > 1 && buf_addchar(e, ',') != 0) || enc_newline(e, e->depth) != 0)
            return -1;
        e->path[step].key = NULL;
        e->path[step].index = i;
        lua_rawgeti(L, idx, i);
        if (enc_value(e, lua_gettop(L)) != 0)
            return -1;
        lua_pop(L, 1);
    }
    e->npath--;
    return enc_close(e, ']', n > 0);
}

static int enc_member(Encoder *e, const char *key, size_t keylen, int vidx, int first)
{
    int step = e->npath;
    if ((!first && buf_addchar(e, ',') != 0) || enc_newline(e, e->depth) != 0
        || enc_string(e, key, keylen, 1) != 0 || buf_add(e, ": ", e->indent ? 2 : 1) != 0)
        return -1;
    e->path[step].key = key;
    e->path[step].keylen = keylen;
    e->npath++;
    if (enc_value(e, vidx) != 0)
        return -1;
    e->npath--;
    return 0;
}

/* Object in pairs() order: the fallback for objects too big to sort on the Lua stack (see
 * JSON_SORT_MAX), and the only way with JSON_SORT_KEYS 0. */
static int enc_object_unsorted(Encoder *e, int idx, int marked)
{
    lua_State *L = e->L;
    int first = 1;
    size_t keylen;
    const char *key;
    if (buf_addchar(e, '{') != 0)
        return -1;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            return key_error(e, -2, marked);
        key = lua_tolstring(L, -2, &keylen);
        if (enc_member(e, key, keylen, lua_gettop(L), first) != 0)
            return -1;
        first = 0;
        lua_pop(L, 1);
    }
    return enc_close(e, '}', !first);
}

static int member_cmp(const void *a, const void *b)
{
    const Member *x = (const Member *)a, *y = (const Member *)b;
    size_t n = x->keylen < y->keylen ? x->keylen : y->keylen;
    int c = memcmp(x->key, y->key, n);
    if (c != 0)
        return c;
    return x->keylen < y->keylen ? -1 : x->keylen > y->keylen;
}

static int members_grow(Encoder *e)
{
    size_t ncap = e->capmembers ? e->capmembers * 2 : 64;
    Member *m;
    if (ncap > SIZE_MAX / sizeof(Member))
        return enc_fail(e, "out of memory");
    m = (Member *)e->alloc(e->ud, e->members, e->capmembers * sizeof(Member),
                           ncap * sizeof(Member));
    if (m == NULL)
        return enc_fail(e, "out of memory");
    e->members = m;
    e->capmembers = ncap;
    return 0;
}

/* Object with sorted keys: every key/value pair is left on the Lua stack by lua_next (the
 * key is copied back for the next step), a Member per pair records where, and the Members
 * are sorted. The caller restores the stack top. */
static int enc_object(Encoder *e, int idx, int marked)
{
    lua_State *L = e->L;
    size_t first = e->nmembers, i, n;
    int top = lua_gettop(L);
    if (!JSON_SORT_KEYS)
        return enc_object_unsorted(e, idx, marked);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        Member *m;
        if (lua_type(L, -2) != LUA_TSTRING)
            return key_error(e, -2, marked);
        if (e->nmembers >= JSON_SORT_MAX || !lua_checkstack(L, 3)) {
            lua_settop(L, top);
            e->nmembers = first;
            return enc_object_unsorted(e, idx, marked);
        }
        if (e->nmembers == e->capmembers && members_grow(e) != 0)
            return -1;
        m = &e->members[e->nmembers++];
        m->key = lua_tolstring(L, -2, &m->keylen);
        m->vidx = lua_gettop(L);
        lua_pushvalue(L, -2);
    }
    n = e->nmembers - first;
    if (n > 1)
        qsort(e->members + first, n, sizeof(Member), member_cmp);
    if (buf_addchar(e, '{') != 0)
        return -1;
    for (i = 0; i < n; i++) {
        Member m = e->members[first + i];   /* a copy: nested objects may move the array */
        if (enc_member(e, m.key, m.keylen, m.vidx, i == 0) != 0)
            return -1;
    }
    e->nmembers = first;
    return enc_close(e, '}', n > 0);
}

/* A table without our metatables: no entries -> [], keys 1..n -> array, string keys ->
 * object; anything else is refused. */
static int enc_plain(Encoder *e, int idx)
{
    lua_State *L = e->L;
    lua_Integer count = 0, max = 0;
    lua_pushnil(L);
    if (!lua_next(L, idx))
        return buf_add(e, "[]", 2);
    if (lua_type(L, -2) == LUA_TSTRING) {
        lua_pop(L, 2);
        return enc_object(e, idx, 0);
    }
    do {
        lua_Integer k;
        if (!lua_isinteger(L, -2))
            return key_error(e, -2, 0);
        k = lua_tointeger(L, -2);
        if (k < 1)
            return enc_fail(e, "cannot encode sparse array (index %lld)", (long long)k);
        count++;
        if (k > max)
            max = k;
        lua_pop(L, 1);
    } while (lua_next(L, idx));
    if (count != max)
        return enc_fail(e, "cannot encode sparse array (%lld values, largest index %lld)",
                        (long long)count, (long long)max);
    return enc_array(e, idx, max);
}

/* A table marked json.array holds exactly 1..#t: other keys would be dropped silently, so they
 * are an error, as in an unmarked table. */
static int enc_marked_array(Encoder *e, int idx)
{
    lua_State *L = e->L;
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx), count = 0;
    if (!lua_checkstack(L, 3))
        return enc_fail(e, "Lua stack overflow");
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1 || lua_tointeger(L, -1) > n) {
            lua_pop(L, 1);
            return enc_fail(e, "a table marked json.array has keys other than 1..%lld", (long long)n);
        }
        count++;
    }
    if (count != n)
        return enc_fail(e, "a table marked json.array has holes (cannot encode sparse array)");
    return enc_array(e, idx, n);
}

static int enc_table(Encoder *e, int idx)
{
    lua_State *L = e->L;
    const void *self = lua_topointer(L, idx);
    int i, r, top = lua_gettop(L), kind = 0;
    if (e->depth >= JSON_MAXDEPTH)
        return enc_fail(e, "nesting deeper than %d levels", JSON_MAXDEPTH);
    for (i = 0; i < e->depth; i++)
        if (e->open[i] == self)
            return enc_fail(e, "cannot encode a cycle (a table that contains itself)");
    if (!lua_checkstack(L, 4))
        return enc_fail(e, "Lua stack overflow");
    /* lua_getmetatable is raw: a __metatable field does not hide the real one from C */
    if (lua_getmetatable(L, idx)) {
        if (lua_rawequal(L, -1, e->mt_array))
            kind = 1;
        else if (lua_rawequal(L, -1, e->mt_object))
            kind = 2;
        lua_pop(L, 1);
    }
    e->open[e->depth++] = self;
    if (kind == 1)
        r = enc_marked_array(e, idx);
    else if (kind == 2)
        r = enc_object(e, idx, 1);
    else
        r = enc_plain(e, idx);
    e->depth--;
    lua_settop(L, top);
    return r;
}

static int enc_value(Encoder *e, int idx)
{
    lua_State *L = e->L;
    size_t len;
    const char *s;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return buf_add(e, "null", 4);
    case LUA_TBOOLEAN:
        return lua_toboolean(L, idx) ? buf_add(e, "true", 4) : buf_add(e, "false", 5);
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            return enc_integer(e, lua_tointeger(L, idx));
        return enc_float(e, lua_tonumber(L, idx));
    case LUA_TSTRING:
        s = lua_tolstring(L, idx, &len);
        return enc_string(e, s, len, 0);
    case LUA_TTABLE:
        return enc_table(e, idx);
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL)
            return buf_add(e, "null", 4);
        return enc_fail(e, "cannot encode light userdata");
    default:
        return enc_fail(e, "cannot encode %s", luaL_typename(L, idx));
    }
}

/* Nothing below the two push_*_mt calls raises a Lua error: lua_next, lua_rawget*,
 * lua_checkstack, lua_tolstring on strings and friends neither allocate nor call
 * metamethods, so the buffer taken from the allocator cannot leak through a longjmp. */
char *json_encode(lua_State *L, int idx, size_t *len, char *err, size_t errlen)
{
    return json_encode_pretty(L, idx, 0, len, err, errlen);
}

char *json_encode_pretty(lua_State *L, int idx, int indent, size_t *len, char *err, size_t errlen)
{
    Encoder e;
    int top = lua_gettop(L), r;
    char *out = NULL;
    idx = lua_absindex(L, idx);
    e.L = L;
    e.alloc = lua_getallocf(L, &e.ud);
    e.buf = NULL;
    e.len = e.cap = 0;
    e.indent = indent;
    e.depth = 0;
    e.npath = 0;
    e.members = NULL;
    e.nmembers = e.capmembers = 0;
    e.err = err;
    e.errlen = err != NULL ? errlen : 0;
    if (e.errlen > 0)
        err[0] = '\0';
    if (len != NULL)
        *len = 0;
    if (!lua_checkstack(L, 8)) {
        enc_fail(&e, "Lua stack overflow");
        return NULL;
    }
    json_push_array_mt(L);
    json_push_object_mt(L);
    e.mt_array = top + 1;
    e.mt_object = top + 2;
    r = enc_value(&e, idx);
    lua_settop(L, top);
    if (e.members != NULL)
        e.alloc(e.ud, e.members, e.capmembers * sizeof(Member), 0);
    if (r == 0 && buf_reserve(&e, 1) == 0) {
        /* hand back exactly len + 1 bytes (NUL-terminated), the size json_free reports to
         * the allocator, so a counting allocator stays balanced */
        e.buf[e.len] = '\0';
        out = (char *)e.alloc(e.ud, e.buf, e.cap, e.len + 1);
        if (out == NULL) {                      /* a shrink that failed: copy instead */
            out = (char *)e.alloc(e.ud, NULL, 0, e.len + 1);
            if (out != NULL)
                memcpy(out, e.buf, e.len + 1);
            else
                enc_fail(&e, "out of memory");
            e.alloc(e.ud, e.buf, e.cap, 0);
        }
        if (out != NULL && len != NULL)
            *len = e.len;
        return out;
    }
    if (e.buf != NULL)
        e.alloc(e.ud, e.buf, e.cap, 0);
    return NULL;
}

void json_free(lua_State *L, char *buf, size_t len)
{
    void *ud;
    lua_Alloc f;
    if (buf == NULL)
        return;
    f = lua_getallocf(L, &ud);
    f(ud, buf, len + 1, 0);
}
