/* The simulator's Lua side: the state, its modules (the embedded sim/NAME.lua, json, a clock),
 * the data set it starts from, and the call of sim.sim's handle for each request. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lualib.h>

#include "lib/embedded.h"
#include "lib/limits.h"
#include "lib/json.h"
#include "lua_bridge.h"

#define DATA_CAP (64u << 20) /* a --data file larger than this is refused */

/* ---- the state ------------------------------------------------------------------------ */

static int l_mono(lua_State *L)
{
    lua_pushnumber(L, now_monotonic());
    return 1;
}

static int l_wall(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushnumber(L, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
    return 1;
}

/* Registers json, sim.clock, and every embedded host/sim/NAME.lua as
 * package.preload["sim.NAME"]. */
static void setup_modules(lua_State *L)
{
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    json_open(L);
    lua_setfield(L, -2, "json");
    lua_newtable(L);
    lua_pushcfunction(L, l_mono);
    lua_setfield(L, -2, "mono");
    lua_pushcfunction(L, l_wall);
    lua_setfield(L, -2, "wall");
    lua_setfield(L, -2, "sim.clock");
    lua_pop(L, 1);

    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    for (const struct embedded_file *f = embedded_sim; f->name; f++) {
        size_t n = strlen(f->name);
        if (strncmp(f->name, "sim/", 4) != 0 || n < 9 || strcmp(f->name + n - 4, ".lua") != 0)
            continue;
        char modname[128], chunkname[140];
        if (n - 4 >= sizeof modname)
            continue;
        snprintf(modname, sizeof modname, "sim.%.*s", (int)(n - 8), f->name + 4);
        snprintf(chunkname, sizeof chunkname, "@host/%s", f->name);
        if (luaL_loadbufferx(L, f->data, f->len, chunkname, "t") != LUA_OK)
            lua_error(L);
        lua_setfield(L, -2, modname);
    }
    lua_pop(L, 1);
}

char *sim_read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    if (!buf) {
        fclose(f);
        snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    for (;;) {
        if (n + 1 >= cap) { /* room for the NUL */
            if (cap >= DATA_CAP) {
                snprintf(err, errlen, "%s: larger than %u MiB", path, DATA_CAP >> 20);
                goto fail;
            }
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                snprintf(err, errlen, "%s: out of memory", path);
                goto fail;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error", path);
        goto fail;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
fail:
    free(buf);
    fclose(f);
    return NULL;
}

/* Protected part of the start-up: modules, require "sim.sim", M.init(cfg, data). */
struct init_args {
    const struct sim_options *o;
    double task_delay_s;
    const char *data;
    size_t len;
};

static int init_lua(lua_State *L)
{
    struct init_args *a = lua_touserdata(L, 1);
    setup_modules(L);
    lua_getglobal(L, "require");
    lua_pushstring(L, "sim.sim");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "handle");
    if (!lua_isfunction(L, -1))
        return luaL_error(L, "sim.sim has no handle function");
    lua_pushvalue(L, -1);
    int ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);
    lua_getfield(L, -1, "init");
    lua_newtable(L);
    if (a->o->api_key) {
        lua_pushstring(L, a->o->api_key);
        lua_setfield(L, -2, "apiKey");
    }
    lua_pushnumber(L, a->o->latency_ms);
    lua_setfield(L, -2, "latencyMs");
    lua_pushnumber(L, a->o->fail_rate);
    lua_setfield(L, -2, "failRate");
    lua_pushnumber(L, a->o->rate_limit);
    lua_setfield(L, -2, "rateLimit");
    if (a->task_delay_s >= 0) {
        lua_pushnumber(L, a->task_delay_s);
        lua_setfield(L, -2, "taskDelaySeconds");
    }
    lua_pushlstring(L, a->data, a->len);
    lua_call(L, 2, 0);
    lua_pushinteger(L, ref);
    return 1;
}

int bridge_open(struct lua_bridge *b, const struct sim_options *o, double task_delay_s,
                char *err, size_t errlen)
{
    b->L = NULL;
    if (pthread_mutex_init(&b->lock, NULL) != 0) {
        snprintf(err, errlen, "cannot create a mutex");
        return -1;
    }

    char *file = NULL;
    struct init_args ia = { o, task_delay_s, NULL, 0 };
    if (o->data_file) {
        file = sim_read_file(o->data_file, &ia.len, err, errlen);
        if (!file)
            goto fail;
        ia.data = file;
    } else {
        const struct embedded_file *f = embedded_find(embedded_sim, "sim/demo.json");
        if (!f) {
            snprintf(err, errlen, "the embedded demo data (sim/demo.json) is missing");
            goto fail;
        }
        ia.data = f->data;
        ia.len = f->len;
    }

    b->L = luaL_newstate();
    if (!b->L) {
        snprintf(err, errlen, "cannot create a Lua state");
        goto fail;
    }
    luaL_openlibs(b->L);
    lua_pushcfunction(b->L, init_lua);
    lua_pushlightuserdata(b->L, &ia);
    if (lua_pcall(b->L, 1, 1, 0) != LUA_OK) {
        const char *msg = lua_tostring(b->L, -1);
        snprintf(err, errlen, "%s%s%s", o->data_file ? o->data_file : "",
                 o->data_file ? ": " : "", msg ? msg : "cannot start the simulator");
        goto fail;
    }
    free(file);
    b->handler_ref = (int)lua_tointeger(b->L, -1);
    lua_pop(b->L, 1);
    return 0;

fail:
    free(file);
    bridge_close(b);
    return -1;
}

void bridge_close(struct lua_bridge *b)
{
    if (b->L)
        lua_close(b->L);
    b->L = NULL;
    pthread_mutex_destroy(&b->lock);
}

/* ---- a request ------------------------------------------------------------------------ */

/* Header names go to Lua in lower case, as sim.lua looks them up. */
static enum MHD_Result push_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    lua_State *L = cls;
    char name[256];
    size_t n = strlen(key);
    if (n >= sizeof name)
        return MHD_YES; /* absurd header names are not passed on */
    for (size_t i = 0; i < n; i++) {
        char ch = key[i];
        name[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    name[n] = '\0';
    lua_pushstring(L, value ? value : "");
    lua_setfield(L, -2, name);
    return MHD_YES;
}

struct call_args {
    const struct lua_bridge *b;
    const struct bridge_request *rq;
};

/* Runs under lua_pcall: M.handle(method, path, rawquery, headers, body) -> 6 results. */
static int call_protected(lua_State *L)
{
    const struct call_args *a = lua_touserdata(L, 1);
    const struct bridge_request *rq = a->rq;
    lua_rawgeti(L, LUA_REGISTRYINDEX, a->b->handler_ref);
    lua_pushstring(L, rq->method);
    lua_pushstring(L, rq->path);
    lua_pushstring(L, rq->query);
    lua_newtable(L);
    MHD_get_connection_values(rq->conn, MHD_HEADER_KIND, push_header, L);
    lua_pushlstring(L, rq->body ? rq->body : "", rq->len);
    if (rq->upload) {
        const struct upload_info *u = rq->upload;
        lua_createtable(L, 0, 7);
        lua_pushstring(L, u->part);
        lua_setfield(L, -2, "part");
        lua_pushstring(L, u->filename);
        lua_setfield(L, -2, "filename");
        lua_pushstring(L, u->content_type);
        lua_setfield(L, -2, "contentType");
        lua_pushinteger(L, (lua_Integer)u->size);
        lua_setfield(L, -2, "size");
        {
            char crc[16]; /* lua_pushfstring knows no %08x */
            snprintf(crc, sizeof crc, "%08lx", u->crc32 & 0xffffffffUL);
            lua_pushstring(L, crc);
            lua_setfield(L, -2, "crc32");
        }
        lua_pushinteger(L, u->files);
        lua_setfield(L, -2, "files");
        lua_pushboolean(L, u->too_big);
        lua_setfield(L, -2, "tooBig");
    } else {
        lua_pushnil(L);
    }
    lua_call(L, 6, 6);
    return 6;
}

struct MHD_Response *bridge_handle(struct lua_bridge *b, const struct bridge_request *rq,
                                   struct verdict *v)
{
    v->status = 500;
    v->fault = FAULT_NONE;
    v->hang_s = 0;
    v->latency_ms = 0;

    struct call_args ca = { b, rq };
    pthread_mutex_lock(&b->lock);
    lua_State *L = b->L;
    int top = lua_gettop(L);
    /* Everything that may allocate in L runs protected: a memory error becomes a 500. */
    lua_pushcfunction(L, call_protected);
    lua_pushlightuserdata(L, &ca);
    if (lua_pcall(L, 1, 6, 0) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        fprintf(stderr, "ecaphost sim: internal error: %s\n", msg ? msg : "(no message)");
        lua_settop(L, top);
        pthread_mutex_unlock(&b->lock);
        return reply_internal_error();
    }
    lua_Integer st = lua_tointeger(L, top + 1);
    v->status = (st >= 100 && st <= 599) ? (unsigned)st : 500;
    size_t blen = 0;
    const char *body = "";
    if (lua_type(L, top + 2) == LUA_TSTRING)
        body = lua_tolstring(L, top + 2, &blen);
    v->fault = reply_fault_named(lua_type(L, top + 4) == LUA_TSTRING ? lua_tostring(L, top + 4)
                                                                     : NULL);
    v->hang_s = lua_tonumber(L, top + 5);
    v->latency_ms = lua_tonumber(L, top + 6);

    struct MHD_Response *resp = reply_body(body, blen, v->fault, rq->conn);
    if (resp && lua_istable(L, top + 3)) {
        lua_pushnil(L);
        while (lua_next(L, top + 3)) {
            if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING)
                MHD_add_response_header(resp, lua_tostring(L, -2), lua_tostring(L, -1));
            lua_pop(L, 1);
        }
    }
    lua_settop(L, top);
    pthread_mutex_unlock(&b->lock);
    return resp;
}
