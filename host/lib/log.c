/* The log module: log.info/warn/error(fmt, ...) write one timestamped line to stderr,
 *
 *   2026-11-23T18:35:16Z INFO  message
 *
 * (UTC, ISO 8601, the level padded to five characters). The message is string.format(fmt, ...);
 * a call with a single argument writes that value as tostring would (so log.error(err) shows an
 * error table's text, and a lone message with a '%' in it is not a format). A bad format
 * raises an "argument" error naming the log function; errors of the script's own __tostring
 * pass as they are. Control characters in the message are escaped (\n, \r, \xNN; C1
 * controls too), so one call is one line and data from the API cannot drive the terminal.
 * --quiet silences info only; the message is formatted anyway, so a bad format fails the same
 * way with and without --quiet. Under --log-format json each line is a JSON object instead
 * (log.h), written by the one writer here that the host's own messages and the scheduler use. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>

#include "errors.h"
#include "json.h"
#include "libs.h"
#include "log.h"
#include "text.h"

/* ---- the process's format (log.h) ---------------------------------------------------------- */

static lua_State *codec;        /* LOG_JSON: a plain state for the JSON codec; NULL: text */
static char *ctx_job, *ctx_run_id;

int log_format_parse(const char *name)
{
    return strcmp(name, "text") == 0 ? LOG_TEXT : strcmp(name, "json") == 0 ? LOG_JSON : -1;
}

int log_set_format(enum log_format f)
{
    if (f == LOG_TEXT && codec) {
        lua_close(codec);
        codec = NULL;
    } else if (f == LOG_JSON && !codec && !(codec = luaL_newstate())) {
        return -1;
    }
    return 0;
}

int log_is_json(void)
{
    return codec != NULL;
}

static void replace(char **slot, const char *v)
{
    free(*slot);
    *slot = v ? strdup(v) : NULL; /* out of memory: the line goes without it */
}

void log_set_context(const char *job, const char *run_id)
{
    replace(&ctx_job, job);
    replace(&ctx_run_id, run_id);
}

void log_offer_run_id(const char *run_id)
{
    if (!ctx_run_id)
        replace(&ctx_run_id, run_id);
}

void log_time_ms(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (!gmtime_r(&ts.tv_sec, &tm))
        memset(&tm, 0, sizeof tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000));
}

struct json_line {
    const char *level, *msg;
    size_t len;
    const struct log_field *fields;
    int n_fields;
};

/* [-0, +0] t[key] = s[0..len) escaped (text_escape: valid UTF-8, no controls) on the table on
 * top, when s is not NULL. */
static void set_text_len(lua_State *L, const char *key, const char *s, size_t len)
{
    luaL_Buffer b;
    if (!s)
        return;
    luaL_buffinit(L, &b);
    text_escape(&b, s, len, TEXT_ALL);
    luaL_pushresult(&b);
    lua_setfield(L, -2, key);
}

static void set_text(lua_State *L, const char *key, const char *s)
{
    set_text_len(L, key, s, s ? strlen(s) : 0);
}

/* Under lua_pcall on the codec's state: builds the line's object and writes it, newline
 * included, with one write (lines of several processes sharing a file stay whole). */
static int write_json_line(lua_State *L)
{
    const struct json_line *l = lua_touserdata(L, 1);
    char when[40], err[128], *text;
    size_t len;
    lua_createtable(L, 0, 5 + l->n_fields);
    for (int i = 0; i < l->n_fields; i++) {
        const struct log_field *f = &l->fields[i];
        if (f->s) {
            set_text(L, f->key, f->s);
            continue;
        }
        if (f->n == floor(f->n) && fabs(f->n) < 9e15)
            lua_pushinteger(L, (lua_Integer)f->n);
        else
            lua_pushnumber(L, f->n);
        lua_setfield(L, -2, f->key);
    }
    log_time_ms(when, sizeof when);
    set_text(L, "time", when);
    set_text(L, "level", l->level);
    set_text(L, "job", ctx_job);
    set_text(L, "run_id", ctx_run_id);
    set_text_len(L, "msg", l->msg, l->len);
    if (!(text = json_encode(L, -1, &len, err, sizeof err)))
        return luaL_error(L, "%s", err);
    {
        struct iovec iov[2] = {{text, len}, {"\n", 1}};
        fflush(stderr);
        if (writev(STDERR_FILENO, iov, 2) < 0) {
            /* stderr gone: nothing to tell it to */
        }
    }
    json_free(L, text, len);
    return 0;
}

int log_json(const char *level, const char *msg, size_t len, const struct log_field *fields, int n_fields)
{
    struct json_line l = {level, msg, len, fields, n_fields};
    int top, rc;
    if (!codec)
        return 1;
    top = lua_gettop(codec);
    lua_pushcfunction(codec, write_json_line);
    lua_pushlightuserdata(codec, &l);
    rc = lua_pcall(codec, 1, 0, 0);
    lua_settop(codec, top);
    return rc == LUA_OK ? 0 : -1;
}

/* log_host / log_plain: the message formatted (malloc'd), then a JSON line or the text one. */
static void host_line(const char *level, const char *prefix, const char *fmt, va_list ap)
{
    va_list again;
    char small[512], *msg = small;
    int n;
    va_copy(again, ap);
    n = vsnprintf(small, sizeof small, fmt, ap);
    if (n >= (int)sizeof small && (msg = malloc((size_t)n + 1)))
        vsnprintf(msg, (size_t)n + 1, fmt, again);
    va_end(again);
    if (!msg) { /* out of memory: the message cut */
        msg = small;
        n = (int)sizeof small - 1;
    }
    if (n >= 0 && log_json(level, msg, (size_t)n, NULL, 0) != 0) {
        fprintf(stderr, "%s%s\n", prefix, msg);
        fflush(stderr);
    }
    if (msg != small)
        free(msg);
}

void log_host(const char *level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    host_line(level, "ecaphost: ", fmt, ap);
    va_end(ap);
}

void log_plain(const char *level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    host_line(level, "", fmt, ap);
    va_end(ap);
}

/* ---- the log module ------------------------------------------------------------------------ */

/* Upvalue 2 of the log functions: --quiet. */
static int quiet(lua_State *L)
{
    return lua_toboolean(L, lua_upvalueindex(2));
}

/* Pushes string.format: upvalue 1 when it holds it, else the loaded string library's. */
static void push_format(lua_State *L)
{
    if (lua_type(L, lua_upvalueindex(1)) == LUA_TFUNCTION) {
        lua_pushvalue(L, lua_upvalueindex(1));
        return;
    }
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    if (lua_getfield(L, -1, "string") != LUA_TTABLE ||
        lua_getfield(L, -1, "format") != LUA_TFUNCTION)
        luaL_error(L, "log: the string library is not loaded");
    lua_replace(L, -3);
    lua_pop(L, 1);
}

static int to_text(lua_State *L)
{
    luaL_tolstring(L, 1, NULL);
    return 1;
}

static int log_info(lua_State *L);
static int log_warn(lua_State *L);
static int log_error(lua_State *L);

/* Message handler of the formatting: an error raised by the function the log function called
 * itself (string.format or to_text: a bad directive, a bad argument for it, a __tostring that
 * returns no string) becomes the log function's argument error. Level 1 raised it; level 2
 * is the log function when that is the formatter, else (the script's __tostring, a stop of
 * the run) the error passes as it is. */
static int format_failed(lua_State *L)
{
    lua_Debug ar;
    lua_CFunction f = NULL;
    if (lua_type(L, 1) == LUA_TSTRING && lua_getstack(L, 2, &ar)) {
        lua_getinfo(L, "f", &ar);
        f = lua_tocfunction(L, -1);
        lua_settop(L, 1);
    }
    if (f != log_info && f != log_warn && f != log_error)
        return 1;
    err_push_funcname(L, 2);
    err_push(L, "argument", "%s: %s", lua_isstring(L, -1) ? lua_tostring(L, -1) : "log",
             lua_tostring(L, 1));
    return 1;
}

/* Replaces the arguments by the message text. */
static void message(lua_State *L)
{
    int n = lua_gettop(L);
    err_checkany(L, 1);
    lua_pushcfunction(L, format_failed);
    lua_insert(L, 1);
    if (n == 1)
        lua_pushcfunction(L, to_text);
    else
        push_format(L);
    lua_insert(L, 2);
    if (lua_pcall(L, n, 1, 1) != LUA_OK)
        lua_error(L);
    lua_remove(L, 1);
}

static void timestamp(char *out, size_t size)
{
    time_t now = time(NULL);
    struct tm tm;
    if (!gmtime_r(&now, &tm) || strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, size, "0000-00-00T00:00:00Z");
}

/* [-0, +0] One line: "<UTC time> LEVEL message", the message escaped (text_escape); or the
 * JSON line (log.h). */
void log_write_fields(lua_State *L, const char *level, const char *msg, size_t len, const struct log_field *fields,
                      int n_fields)
{
    char head[48], ts[32];
    const char *line;
    luaL_Buffer b;
    if (log_json(level, msg, len, fields, n_fields) == 0)
        return;
    timestamp(ts, sizeof ts);
    snprintf(head, sizeof head, "%s %-5s ", ts, level);
    luaL_buffinit(L, &b);
    luaL_addstring(&b, head);
    text_escape(&b, msg, len, TEXT_ALL);
    luaL_addchar(&b, '\n');
    luaL_pushresult(&b);
    line = lua_tolstring(L, -1, &len);
    fwrite(line, 1, len, stderr); /* one write per line */
    fflush(stderr);
    lua_pop(L, 1);
}

void log_write(lua_State *L, const char *level, const char *msg, size_t len)
{
    log_write_fields(L, level, msg, len, NULL, 0);
}

static int emit(lua_State *L, const char *level, int silenced)
{
    size_t len;
    const char *msg;
    message(L);
    msg = lua_tolstring(L, -1, &len);
    if (!silenced)
        log_write(L, level, msg, len);
    return 0;
}

static int log_info(lua_State *L)
{
    return emit(L, "INFO", quiet(L));
}

static int log_warn(lua_State *L)
{
    return emit(L, "WARN", 0);
}

static int log_error(lua_State *L)
{
    return emit(L, "ERROR", 0);
}

static const luaL_Reg log_funcs[] = {
    {"info", log_info},
    {"warn", log_warn},
    {"error", log_error},
    {NULL, NULL},
};

void log_open(lua_State *L, int quiet_run)
{
    luaL_newlibtable(L, log_funcs);
    /* string.format as it is now, so that a script cannot swap the function log calls */
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    if (lua_getfield(L, -1, "string") == LUA_TTABLE)
        lua_getfield(L, -1, "format");
    else
        lua_pushnil(L);
    lua_replace(L, -3);
    lua_pop(L, 1);
    lua_pushboolean(L, quiet_run);
    luaL_setfuncs(L, log_funcs, 2);
}
