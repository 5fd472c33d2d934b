/* The one validator: walks a schema (bindings/schema.h) over a script's value and pushes the
 * copy to send, or raises one validation error.
 *
 * Safety, because scripts are untrusted: only raw table access (lua_rawget/lua_next), so no
 * metamethod of the script runs; the walk follows the schema, never the data, so its depth is
 * the schema's (cycles and deep nesting in the data are never entered); numeric keys are never
 * converted with lua_tolstring (that would break lua_next); every value shown in a message is
 * escaped and cut short, so a message stays one short line whatever the script passed. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "lib/errors.h"
#include "lib/json.h"
#include "lib/text.h"
#include "schema.h"

#define SHOW_MAX 48 /* bytes of a string shown in a message */

/* ---- messages ------------------------------------------------------------------------------ */

/* Appends s[0..len) to out (size outsz, used *n), escaped so it stays one printable line
 * (quotes, backslashes, control bytes and invalid UTF-8 as \xNN), at most max source bytes. */
static void put_escaped(char *out, size_t outsz, size_t *n, const char *s, size_t len, size_t max)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < len && *n + 8 < outsz;) {
        size_t k = utf8_len(u + i, u + len);
        if (i >= max) {
            memcpy(out + *n, "...", 3);
            *n += 3;
            break;
        }
        if (k == 1 && (u[i] == '"' || u[i] == '\\'))
            *n += (size_t)snprintf(out + *n, outsz - *n, "\\%c", u[i]);
        else if (k == 0 || (k == 1 && (u[i] < 0x20 || u[i] == 0x7f)))
            *n += (size_t)snprintf(out + *n, outsz - *n, "\\x%02x", u[i]), k = 1;
        else if (*n + k + 8 < outsz)
            memcpy(out + *n, u + i, k), *n += k;
        else
            break;
        i += k;
    }
    out[*n] = '\0';
}

const char *schema_show(lua_State *L, int idx)
{
    char buf[SHOW_MAX * 4 + 16];
    size_t n = 0;
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return lua_pushliteral(L, "nil");
    case LUA_TBOOLEAN:
        return lua_pushstring(L, lua_toboolean(L, idx) ? "true" : "false");
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            return lua_pushfstring(L, "%I", (LUAI_UACINT)lua_tointeger(L, idx));
        snprintf(buf, sizeof buf, "%.14g", (double)lua_tonumber(L, idx));
        if (strspn(buf, "-0123456789") == strlen(buf))
            strcat(buf, ".0"); /* 2.0 is not the integer 2: say so */
        return lua_pushstring(L, buf);
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        buf[n++] = '"';
        put_escaped(buf, sizeof buf - 2, &n, s, len, SHOW_MAX);
        buf[n++] = '"';
        buf[n] = '\0';
        return lua_pushstring(L, buf);
    }
    case LUA_TLIGHTUSERDATA:
        if (json_is_null(L, idx))
            return lua_pushliteral(L, "null");
        /* fall through */
    default:
        return lua_pushfstring(L, "a %s", luaL_typename(L, idx));
    }
}

static const char *top_path(struct vctx *v)
{
    return v->len ? v->path : v->top;
}

int schema_get(lua_State *L, int obj, const char *name)
{
    lua_pushstring(L, name);
    return lua_rawget(L, obj);
}

const char *schema_path(struct vctx *v, const char *rel)
{
    snprintf(v->full, sizeof v->full, "%s%s%s", v->path, v->len ? "." : "", rel);
    return v->full;
}

_Noreturn void schema_fail(lua_State *L, struct vctx *v, const char *field, const char *rule,
                           int vidx, const char *fmt, ...)
{
    va_list ap;
    char msg[2048]; /* C formatting: lua_pushfstring knows no %lld or %zu */
    vidx = vidx ? lua_absindex(L, vidx) : 0;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    err_push(L, "validation", "%s", msg);
    if (field) {
        lua_pushstring(L, field);
        lua_setfield(L, -2, "field");
    }
    lua_pushstring(L, rule);
    lua_setfield(L, -2, "rule");
    if (vidx) {
        lua_pushvalue(L, vidx);
        lua_setfield(L, -2, "value");
    }
    lua_pushstring(L, v->operation);
    lua_setfield(L, -2, "operation");
    lua_error(L);
    abort(); /* not reached: lua_error longjmps, but its declaration does not say so */
}

/* ---- the walk ------------------------------------------------------------------------------ */

/* Appends a path component: ".name" (just "name" at the top), or text as it is ("[2]");
 * returns the old length to restore. A path that would not fit is cut (it only ever names a
 * field in a message). */
static size_t path_push(struct vctx *v, const char *name, int dotted)
{
    size_t old = v->len, room = sizeof v->path - v->len;
    int n = snprintf(v->path + v->len, room, "%s%s", dotted && v->len ? "." : "", name);
    if (n > 0)
        v->len += (size_t)n < room ? (size_t)n : room - 1;
    return old;
}

static void path_pop(struct vctx *v, size_t old)
{
    v->len = old;
    v->path[old] = '\0';
}

static const char *type_want(enum schema_type t)
{
    switch (t) {
    case ST_INT32: return "an integer";
    case ST_NUMBER: return "a finite number";
    case ST_BOOL: return "a boolean";
    case ST_STRING: return "a string";
    case ST_DATE: return "a date string (YYYY-MM-DD or ISO-8601 date-time)";
    case ST_ARRAY: return "an array (a table with keys 1..n)";
    case ST_OBJECT: return "a table";
    }
    return "?";
}

_Noreturn static void fail_type(lua_State *L, struct vctx *v, const struct field *f, int idx)
{
    const char *p = top_path(v);
    schema_fail(L, v, p, "type", idx, "%s must be %s (got %s)", p, type_want(f->type),
                       schema_show(L, idx));
}

/* An integer value: a Lua integer, or a float holding an exact integer (2.0, not 1.5). */
static int get_integer(lua_State *L, int idx, long long *out)
{
    double d;
    if (lua_type(L, idx) != LUA_TNUMBER)
        return 0;
    if (lua_isinteger(L, idx)) {
        *out = (long long)lua_tointeger(L, idx);
        return 1;
    }
    d = (double)lua_tonumber(L, idx);
    if (!(d >= -9.0e18 && d <= 9.0e18) || floor(d) != d) /* NaN fails the first test */
        return 0;
    *out = (long long)d;
    return 1;
}

static void check_int(lua_State *L, struct vctx *v, const struct field *f, int idx)
{
    long long x, lo = f->has_range ? f->min : INT32_MIN, hi = f->has_range ? f->max : INT32_MAX;
    const char *p = top_path(v), *list;
    if (!get_integer(L, idx, &x))
        fail_type(L, v, f, idx);
    if (x < lo || x > hi)
        schema_fail(L, v, p, "range", idx, "%s must be %lld..%lld (got %s)", p, lo, hi,
                    schema_show(L, idx));
    if (f->n_allowed) {
        size_t i;
        for (i = 0; i < f->n_allowed && f->allowed[i] != x; i++)
            ;
        if (i == f->n_allowed) {
            luaL_Buffer b;
            luaL_buffinit(L, &b);
            for (i = 0; i < f->n_allowed; i++) {
                char num[32];
                snprintf(num, sizeof num, "%s%lld", i ? ", " : "", f->allowed[i]);
                luaL_addstring(&b, num);
            }
            luaL_pushresult(&b);
            list = lua_tostring(L, -1);
            schema_fail(L, v, p, "one_of", idx, "%s must be one of %s (got %s)", p, list,
                        schema_show(L, idx));
        }
    }
    lua_pushinteger(L, (lua_Integer)x); /* 2.0 is sent as 2: the server's int32 refuses 2.0 */
}

/* Length in UTF-16 code units (the server is .NET: MaxLength counts those), or -1 when s is
 * not valid UTF-8. */
static long utf16_length(const unsigned char *s, size_t len)
{
    long n = 0;
    for (size_t i = 0, k; i < len; i += k) {
        if (!(k = utf8_len(s + i, s + len)))
            return -1;
        n += k == 4 ? 2 : 1; /* 4 bytes: past U+FFFF, a surrogate pair */
    }
    return n;
}

static void check_string(lua_State *L, struct vctx *v, const struct field *f, int idx)
{
    size_t len;
    const char *s, *p = top_path(v);
    long n;
    if (lua_type(L, idx) != LUA_TSTRING) /* a number is not a string here: no coercion */
        fail_type(L, v, f, idx);
    s = lua_tolstring(L, idx, &len);
    n = utf16_length((const unsigned char *)s, len);
    if (n < 0)
        schema_fail(L, v, p, "encoding", idx, "%s must be UTF-8 text (got %s)", p,
                    schema_show(L, idx));
    if (f->max_len && (size_t)n > f->max_len)
        schema_fail(L, v, p, "length", idx, "%s must be at most %zu characters (got %ld)", p,
                    f->max_len, n);
    if (f->min_len && (size_t)n < f->min_len)
        schema_fail(L, v, p, "length", idx, "%s must be at least %zu character%s (got %ld)", p,
                    f->min_len, f->min_len == 1 ? "" : "s", n);
    if (f->check && !f->check(s, len))
        schema_fail(L, v, p, "pattern", idx, "%s must be %s (got %s)", p, f->check_desc,
                    schema_show(L, idx));
    lua_pushvalue(L, idx);
}

static void check_date(lua_State *L, struct vctx *v, const struct field *f, int idx)
{
    size_t len;
    const char *s, *p = top_path(v);
    struct date d;
    if (lua_type(L, idx) != LUA_TSTRING)
        fail_type(L, v, f, idx);
    s = lua_tolstring(L, idx, &len);
    if (date_parse(s, len, &d))
        schema_fail(L, v, p, "format", idx,
                    "%s must be a date YYYY-MM-DD or YYYY-MM-DDThh:mm[:ss[.fff]][Z|+hh:mm] "
                    "with a real calendar day (got %s)", p, schema_show(L, idx));
    if (date_cmp_local(&d, &date_min) < 0 || date_cmp_local(&d, &date_max) > 0)
        schema_fail(L, v, p, "range", idx, "%s must be between 1899-12-31 and 3000-01-01 (got %s)",
                    p, schema_show(L, idx));
    lua_pushvalue(L, idx);
}

static void check_value(lua_State *L, struct vctx *v, const struct field *f, int idx);

static void check_array(lua_State *L, struct vctx *v, const struct field *f, int idx)
{
    lua_Integer n = 0, max = 0;
    if (lua_type(L, idx) != LUA_TTABLE)
        fail_type(L, v, f, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (!lua_isinteger(L, -2) || lua_tointeger(L, -2) < 1)
            fail_type(L, v, f, idx);
        if (lua_tointeger(L, -2) > max)
            max = lua_tointeger(L, -2);
        n++;
        lua_pop(L, 1);
    }
    if (max != n) /* holes: {[1]=a, [3]=b} would not survive as a JSON array */
        fail_type(L, v, f, idx);
    luaL_checkstack(L, 16, "validating an array");
    lua_createtable(L, (int)(n < 1024 ? n : 1024), 0);
    json_mark_array(L, -1);
    for (lua_Integer i = 1; i <= n; i++) {
        char sub[32];
        size_t old;
        snprintf(sub, sizeof sub, "[%lld]", (long long)i);
        old = path_push(v, sub, 0);
        lua_rawgeti(L, idx, i);
        check_value(L, v, f->elem, lua_gettop(L));
        lua_rawseti(L, -3, i);
        lua_pop(L, 1);
        path_pop(v, old);
    }
}

/* Every key of the script's table must be a field of the schema: a typo such as
 * numBaselineMonth must not be dropped or sent. */
static void check_unknown(lua_State *L, struct vctx *v, const struct schema *s, int idx)
{
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        size_t i = s->n_fields, len, n = 0;
        int val = lua_gettop(L);
        char key[SHOW_MAX * 4 + 8];
        if (lua_type(L, -2) == LUA_TSTRING) {
            const char *k = lua_tolstring(L, -2, &len);
            for (i = 0; i < s->n_fields; i++)
                if (strlen(s->fields[i].name) == len && memcmp(s->fields[i].name, k, len) == 0)
                    break;
            if (i == s->n_fields)
                put_escaped(key, sizeof key, &n, k, len, SHOW_MAX);
        } else {
            snprintf(key, sizeof key, "[%s]", schema_show(L, val - 1)); /* we fail below */
        }
        if (i == s->n_fields) {
            luaL_Buffer b;
            const char *p;
            size_t old = path_push(v, key, lua_type(L, val - 1) == LUA_TSTRING);
            p = lua_pushstring(L, v->path);
            path_pop(v, old);
            luaL_buffinit(L, &b);
            for (i = 0; i < s->n_fields; i++) {
                if (i)
                    luaL_addstring(&b, ", ");
                luaL_addstring(&b, s->fields[i].name);
            }
            luaL_pushresult(&b);
            schema_fail(L, v, p, "unknown", val, "unknown field %s (known: %s)", p,
                        lua_tostring(L, -1)); /* p is a Lua string below it on the stack */
        }
        lua_pop(L, 1);
    }
}

static void check_object(lua_State *L, struct vctx *v, const struct schema *s, int idx)
{
    int copy;
    luaL_checkstack(L, 16, "validating a table");
    check_unknown(L, v, s, idx);
    lua_createtable(L, 0, (int)s->n_fields);
    json_mark_object(L, -1); /* {} with every field optional and absent is still an object */
    copy = lua_gettop(L);
    for (size_t i = 0; i < s->n_fields; i++) {
        const struct field *f = &s->fields[i];
        size_t old = path_push(v, f->name, 1);
        lua_pushstring(L, f->name);
        lua_rawget(L, idx);
        if (lua_isnil(L, -1) && f->presence == SP_DEFINED && f->fill_null) {
            json_push_null(L); /* "Required (defined)": the key is sent, null = no change */
        } else {
            check_value(L, v, f, lua_gettop(L));
        }
        if (!lua_isnil(L, -1)) {
            lua_pushstring(L, f->name);
            lua_insert(L, -2);
            lua_rawset(L, copy);
        } else {
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
        path_pop(v, old);
    }
    if (s->rule)
        s->rule(L, copy, v);
}

/* Checks the value at idx (absolute) described by f, whose path is already in v; pushes the
 * copy (nil for an optional value left out). */
static void check_value(lua_State *L, struct vctx *v, const struct field *f, int idx)
{
    const char *p = top_path(v);
    if (lua_isnil(L, idx)) {
        if (f->presence == SP_REQUIRED)
            schema_fail(L, v, p, "required", 0, "%s is required", p);
        if (f->presence == SP_DEFINED)
            schema_fail(L, v, p, "required", 0,
                        "%s is required (defined): give a value, or json.null for none", p);
        lua_pushnil(L);
        return;
    }
    if (json_is_null(L, idx)) {
        if (f->presence == SP_REQUIRED)
            schema_fail(L, v, p, "required", idx, "%s is required (got null)", p);
        if (f->no_null)
            fail_type(L, v, f, idx);
        json_push_null(L);
        return;
    }
    switch (f->type) {
    case ST_INT32:
        check_int(L, v, f, idx);
        break;
    case ST_NUMBER:
        if (lua_type(L, idx) != LUA_TNUMBER || !isfinite((double)lua_tonumber(L, idx)))
            fail_type(L, v, f, idx);
        lua_pushvalue(L, idx);
        break;
    case ST_BOOL:
        if (!lua_isboolean(L, idx))
            fail_type(L, v, f, idx);
        lua_pushvalue(L, idx);
        break;
    case ST_STRING:
        check_string(L, v, f, idx);
        break;
    case ST_DATE:
        check_date(L, v, f, idx);
        break;
    case ST_ARRAY:
        check_array(L, v, f, idx);
        break;
    case ST_OBJECT:
        if (lua_type(L, idx) != LUA_TTABLE)
            fail_type(L, v, f, idx);
        check_object(L, v, f->schema, idx);
        break;
    }
}

void schema_check(lua_State *L, int idx, const struct field *f, const char *operation)
{
    struct vctx v;
    v.operation = operation;
    v.top = f->name;
    v.len = 0;
    v.path[0] = '\0';
    if (f->type == ST_ARRAY) /* a list at the top: its elements are "filters[2]", not "[2]" */
        path_push(&v, f->name, 0);
    luaL_checkstack(L, 16, "validating");
    check_value(L, &v, f, lua_absindex(L, idx));
}

void schema_validate(lua_State *L, int idx, const struct schema *s, const char *operation)
{
    const struct field body = {.name = "body", .type = ST_OBJECT, .presence = SP_REQUIRED,
                               .no_null = 1, .schema = s};
    schema_check(L, idx, &body, operation);
}
