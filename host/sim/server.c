/* The simulator's HTTP server: libmicrohttpd in front of the Lua domain logic (sim/sim.lua).
 *
 * Why libmicrohttpd (Debian's libmicrohttpd-dev 0.9.75): a small C library with real HTTP/1.1
 * (keep-alive, chunked uploads, Expect: 100-continue), limits on connections and header memory,
 * and a thread-per-connection mode that makes simulated latency trivial and safe.
 *
 * Threading: MHD_USE_THREAD_PER_CONNECTION. Each connection has its own thread; the Lua state
 * is shared and every call into it holds `s->lock`. The reply is built under the lock; the
 * simulated latency (and a "hang" fault) is slept AFTER the lock is released, on the
 * connection's own thread, with a timed wait on `s->stop_cv` so sim_stop wakes sleepers at
 * once. We chose this over MHD_suspend_connection + a timer thread: with one thread per
 * connection a sleep blocks nobody else, there is no timer wheel or resume bookkeeping, and the
 * cost (a thread per open connection, 1 MiB of reserved stack each) is small for a test server
 * that sees at most a few hundred connections.
 *
 * Measured on this 2-core machine (RelWithDebInfo build, `ecaphost sim --port 0 --quiet`):
 *   wrk -t2 -c8 -d5s -H 'ECI-ApiKey: k' http://127.0.0.1:PORT/api/v3/meter/1
 *       -> ~9,200 requests/s, mean latency 1.0 ms (a full MeterResponse each, keep-alive)
 *   wrk -t2 -c8 -d5s -H 'ECI-ApiKey: k' http://127.0.0.1:PORT/api/v3/savings/filters
 *       -> ~6,400 requests/s
 *   wrk -t2 -c8 -d5s -H 'ECI-ApiKey: k' 'http://127.0.0.1:PORT/api/v3/meter?pageSize=5'
 *       -> ~3,700 requests/s
 * With --latency 200ms:
 *   wrk -t2 -c300 -d5s --latency -H 'ECI-ApiKey: k' http://127.0.0.1:PORT/api/v3/meter/1
 *       -> ~1,430 requests/s (the ceiling is 300 / 0.2 s = 1,500), p50 201 ms, p99 237 ms
 *   curl -s -Z --parallel-max 300 --parallel-immediate (300 URLs, one process)
 *       -> all 300 answered 200 in 283 ms wall; each took 215..248 ms: nothing queued.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <microhttpd.h>

#include "embedded.h"
#include "json.h"
#include "sim.h"

#define BODY_CAP (1024u * 1024u)   /* larger request bodies get 413 */
#define DATA_CAP (64u << 20)       /* a --data file larger than this is refused */

struct sim {
    struct MHD_Daemon *daemon;
    lua_State *L;
    int handler_ref;
    pthread_mutex_t lock; /* every call into L */

    pthread_mutex_t stop_lock; /* with stop_cv: sleepers wake when stopping is set */
    pthread_cond_t stop_cv;
    int stopping;

    int port;
    FILE *log;
};

/* One request in flight; created by the URI log callback (which sees the raw request-target,
 * query string included), freed by the completion callback. */
struct req {
    char *uri;
    char *body;
    size_t len, cap;
    int started;
    int too_big;
    double t0;
};

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleeps ms milliseconds, or less when the simulator stops. Returns 1 if stopping. */
static int sim_wait(struct sim *s, double ms)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    double secs = ms / 1000.0;
    time_t whole = (time_t)secs;
    long nsec = (long)((secs - (double)whole) * 1e9);
    until.tv_sec += whole;
    until.tv_nsec += nsec;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec += 1;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->stop_lock);
    while (!s->stopping) {
        int rc = pthread_cond_timedwait(&s->stop_cv, &s->stop_lock, &until);
        if (rc == ETIMEDOUT)
            break;
    }
    int stopping = s->stopping;
    pthread_mutex_unlock(&s->stop_lock);
    return stopping;
}

/* ---- Lua side ------------------------------------------------------------------------- */

static int l_mono(lua_State *L)
{
    lua_pushnumber(L, mono_now());
    return 1;
}

static int l_wall(lua_State *L)
{
    lua_pushnumber(L, wall_now());
    return 1;
}

/* Registers every embedded host/sim/NAME.lua as package.preload["sim.NAME"], and the clock. */
static int setup_modules(lua_State *L)
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
    for (const struct embedded_file *f = embedded_files; f->name; f++) {
        size_t n = strlen(f->name);
        if (strncmp(f->name, "sim/", 4) != 0 || n < 9 || strcmp(f->name + n - 4, ".lua") != 0)
            continue;
        char modname[128], chunkname[140];
        if (n - 4 >= sizeof modname)
            continue;
        snprintf(modname, sizeof modname, "sim.%.*s", (int)(n - 8), f->name + 4);
        snprintf(chunkname, sizeof chunkname, "@host/%s", f->name);
        if (luaL_loadbufferx(L, f->data, f->len, chunkname, "t") != LUA_OK)
            return lua_error(L);
        lua_setfield(L, -2, modname);
    }
    lua_pop(L, 1);
    return 0;
}

static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
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
        if (n == cap) {
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

/* ---- HTTP side ------------------------------------------------------------------------ */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls;
    (void)c;
    struct req *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->uri = strdup(uri ? uri : "");
    if (!r->uri) {
        free(r);
        return NULL;
    }
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    struct req *r = *con_cls;
    if (r) {
        free(r->uri);
        free(r->body);
        free(r);
        *con_cls = NULL;
    }
}

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

/* A reply cut short: Content-Length announces `len`, `send` bytes go out, then the
 * connection closes (truncate) or is reset with an RST (reset). */
struct cut {
    char *data;
    size_t len, send;
    int reset;
    struct MHD_Connection *conn;
};

static ssize_t cut_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct cut *k = cls;
    if (pos < k->send) {
        size_t n = k->send - (size_t)pos;
        if (n > max)
            n = max;
        memcpy(buf, k->data + pos, n);
        return (ssize_t)n;
    }
    if (k->reset) {
        /* Let the first part reach the peer, then abort the connection with an RST. MHD
         * would shut the socket down with a FIN before closing it, so we close it here: with
         * SO_LINGER 0 the close sends an RST, and dup2 does that close atomically while
         * putting a fresh unconnected socket under the same descriptor, which MHD then shuts
         * down and closes harmlessly (in thread-per-connection mode nothing else polls it). */
        struct timespec ts = { 0, 50 * 1000000L };
        nanosleep(&ts, NULL);
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(k->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (ci) {
            struct linger lg = { 1, 0 };
            int fd = ci->connect_fd;
            if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0) {
                int spare = socket(AF_INET, SOCK_STREAM, 0);
                if (spare >= 0) {
                    (void)dup2(spare, fd);
                    close(spare);
                }
            }
        }
    }
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

static void cut_free(void *cls)
{
    struct cut *k = cls;
    free(k->data);
    free(k);
}

static struct MHD_Response *cut_response(const char *body, size_t len, int reset,
                                         struct MHD_Connection *c)
{
    struct cut *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    size_t announced = len > 0 ? len : 64;
    k->data = malloc(announced);
    if (!k->data) {
        free(k);
        return NULL;
    }
    memset(k->data, ' ', announced);
    if (len)
        memcpy(k->data, body, len);
    k->len = announced;
    k->send = len / 2;
    k->reset = reset;
    k->conn = c;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(announced, 4096, cut_read, k, cut_free);
    if (!resp)
        cut_free(k);
    return resp;
}

static void log_line(struct sim *s, const char *method, const struct req *r, const char *url,
                     int status, const char *note)
{
    if (!s->log)
        return;
    double ms = (mono_now() - r->t0) * 1000.0;
    fprintf(s->log, "%s %s %d %.1fms%s%s\n", method, r->uri ? r->uri : url, status, ms,
            note ? " " : "", note ? note : "");
    fflush(s->log);
}

static enum MHD_Result send_simple(struct sim *s, struct MHD_Connection *c, struct req *r,
                                   const char *method, const char *url, unsigned status,
                                   const char *json)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(json), (void *)json, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/json; charset=utf-8");
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    log_line(s, method, r, url, (int)status, NULL);
    return ret;
}

enum action { ACT_NONE, ACT_HANG, ACT_RESET, ACT_TRUNCATE };

struct call_args {
    struct sim *s;
    struct MHD_Connection *c;
    struct req *r;
    const char *method, *url;
};

/* Runs under lua_pcall: M.handle(method, path, rawquery, headers, body) -> 6 results. */
static int call_protected(lua_State *L)
{
    struct call_args *a = lua_touserdata(L, 1);
    lua_rawgeti(L, LUA_REGISTRYINDEX, a->s->handler_ref);
    lua_pushstring(L, a->method);
    lua_pushstring(L, a->url);
    const char *q = a->r->uri ? strchr(a->r->uri, '?') : NULL;
    lua_pushstring(L, q ? q + 1 : "");
    lua_newtable(L);
    MHD_get_connection_values(a->c, MHD_HEADER_KIND, push_header, L);
    lua_pushlstring(L, a->r->body ? a->r->body : "", a->r->len);
    lua_call(L, 5, 6);
    return 6;
}

/* Calls the Lua handler under the lock and builds the reply. */
static struct MHD_Response *call_handler(struct sim *s, struct MHD_Connection *c, struct req *r,
                                         const char *method, const char *url, unsigned *status,
                                         enum action *act, double *arg, double *latency_ms)
{
    struct MHD_Response *resp = NULL;
    *status = 500;
    *act = ACT_NONE;
    *arg = 0;
    *latency_ms = 0;

    struct call_args ca = { s, c, r, method, url };
    pthread_mutex_lock(&s->lock);
    lua_State *L = s->L;
    int top = lua_gettop(L);
    /* Everything that may allocate in L runs protected: a memory error becomes a 500. */
    lua_pushcfunction(L, call_protected);
    lua_pushlightuserdata(L, &ca);
    if (lua_pcall(L, 1, 6, 0) != LUA_OK) {
        const char *msg = lua_tostring(L, -1);
        fprintf(stderr, "ecaphost sim: internal error: %s\n", msg ? msg : "(no message)");
        static const char body[] = "{\"message\":\"simulator internal error\"}";
        resp = MHD_create_response_from_buffer(sizeof body - 1, (void *)body,
                                               MHD_RESPMEM_PERSISTENT);
        if (resp)
            MHD_add_response_header(resp, "Content-Type", "application/json; charset=utf-8");
        lua_settop(L, top);
        pthread_mutex_unlock(&s->lock);
        return resp;
    }
    lua_Integer st = lua_tointeger(L, top + 1);
    *status = (st >= 100 && st <= 599) ? (unsigned)st : 500;
    size_t blen = 0;
    const char *body = "";
    if (lua_type(L, top + 2) == LUA_TSTRING)
        body = lua_tolstring(L, top + 2, &blen);
    const char *a = lua_type(L, top + 4) == LUA_TSTRING ? lua_tostring(L, top + 4) : NULL;
    if (a && strcmp(a, "hang") == 0)
        *act = ACT_HANG;
    else if (a && strcmp(a, "reset") == 0)
        *act = ACT_RESET;
    else if (a && strcmp(a, "truncate") == 0)
        *act = ACT_TRUNCATE;
    *arg = lua_tonumber(L, top + 5);
    *latency_ms = lua_tonumber(L, top + 6);

    if (*act == ACT_RESET || *act == ACT_TRUNCATE)
        resp = cut_response(body, blen, *act == ACT_RESET, c);
    else
        resp = MHD_create_response_from_buffer(blen, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (resp && lua_istable(L, top + 3)) {
        lua_pushnil(L);
        while (lua_next(L, top + 3)) {
            if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING)
                MHD_add_response_header(resp, lua_tostring(L, -2), lua_tostring(L, -1));
            lua_pop(L, 1);
        }
    }
    lua_settop(L, top);
    pthread_mutex_unlock(&s->lock);
    return resp;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    (void)version;
    struct sim *s = cls;
    struct req *r = *con_cls;
    if (!r) {
        r = on_uri(NULL, url, c);
        if (!r)
            return MHD_NO;
        *con_cls = r;
    }
    if (!r->started) {
        r->started = 1;
        r->t0 = mono_now();
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno || n > BODY_CAP)
                return send_simple(s, c, r, method, url, 413,
                                   "{\"message\":\"body: larger than the 1 MiB limit\"}");
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->too_big)
            return MHD_YES;
        if (r->len + n > BODY_CAP) {
            r->too_big = 1;
            free(r->body);
            r->body = NULL;
            r->len = r->cap = 0;
            return MHD_YES;
        }
        if (r->len + n > r->cap) {
            size_t cap = r->cap ? r->cap : 4096;
            while (cap < r->len + n)
                cap *= 2;
            char *nb = realloc(r->body, cap);
            if (!nb)
                return MHD_NO;
            r->body = nb;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload_data, n);
        r->len += n;
        return MHD_YES;
    }
    if (r->too_big)
        return send_simple(s, c, r, method, url, 413,
                           "{\"message\":\"body: larger than the 1 MiB limit\"}");

    unsigned status;
    enum action act;
    double arg, latency_ms;
    struct MHD_Response *resp =
        call_handler(s, c, r, method, url, &status, &act, &arg, &latency_ms);
    if (!resp)
        return MHD_NO;
    /* Outside the lock: other requests go on while this one waits. */
    if (latency_ms > 0 && sim_wait(s, latency_ms)) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    if (act == ACT_HANG) {
        sim_wait(s, arg * 1000.0);
        MHD_destroy_response(resp);
        log_line(s, method, r, url, 0, "(hang: closed without a reply)");
        return MHD_NO;
    }
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    log_line(s, method, r, url, (int)status,
             act == ACT_RESET ? "(reset mid-body)" : act == ACT_TRUNCATE ? "(truncated)" : NULL);
    return ret;
}

/* ---- start / stop --------------------------------------------------------------------- */

static void sim_free(struct sim *s)
{
    if (s->L)
        lua_close(s->L);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->stop_lock);
    pthread_cond_destroy(&s->stop_cv);
    free(s);
}

struct sim *sim_start_with(const struct sim_options *o, double task_delay_s, char *err,
                           size_t errlen)
{
    struct sim *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_condattr_t ca;
    if (pthread_mutex_init(&s->lock, NULL) != 0) {
        free(s);
        snprintf(err, errlen, "cannot create a mutex");
        return NULL;
    }
    if (pthread_mutex_init(&s->stop_lock, NULL) != 0) {
        pthread_mutex_destroy(&s->lock);
        free(s);
        snprintf(err, errlen, "cannot create a mutex");
        return NULL;
    }
    if (pthread_condattr_init(&ca) != 0 ||
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) != 0 ||
        pthread_cond_init(&s->stop_cv, &ca) != 0) {
        pthread_mutex_destroy(&s->lock);
        pthread_mutex_destroy(&s->stop_lock);
        free(s);
        snprintf(err, errlen, "cannot create a condition variable");
        return NULL;
    }
    pthread_condattr_destroy(&ca);
    s->log = o->log;

    /* The data set: a file, or the embedded demo. */
    char *file = NULL;
    const char *data;
    size_t dlen;
    if (o->data_file) {
        file = read_file(o->data_file, &dlen, err, errlen);
        if (!file)
            goto fail;
        data = file;
    } else {
        const struct embedded_file *f = embedded_find("sim/demo.json");
        if (!f) {
            snprintf(err, errlen, "the embedded demo data (sim/demo.json) is missing");
            goto fail;
        }
        data = f->data;
        dlen = f->len;
    }

    s->L = luaL_newstate();
    if (!s->L) {
        snprintf(err, errlen, "cannot create a Lua state");
        free(file);
        goto fail;
    }
    luaL_openlibs(s->L);
    struct init_args ia = { o, task_delay_s, data, dlen };
    lua_pushcfunction(s->L, init_lua);
    lua_pushlightuserdata(s->L, &ia);
    if (lua_pcall(s->L, 1, 1, 0) != LUA_OK) {
        const char *msg = lua_tostring(s->L, -1);
        snprintf(err, errlen, "%s%s%s", o->data_file ? o->data_file : "",
                 o->data_file ? ": " : "", msg ? msg : "cannot start the simulator");
        free(file);
        goto fail;
    }
    free(file);
    s->handler_ref = (int)lua_tointeger(s->L, -1);
    lua_pop(s->L, 1);

    /* The listening address. */
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    struct sockaddr *sa;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_AUTO;
    const char *bind = o->bind_addr ? o->bind_addr : "127.0.0.1";
    if (o->port < 0 || o->port > 65535) {
        snprintf(err, errlen, "port %d out of range", o->port);
        goto fail;
    }
    memset(&a4, 0, sizeof a4);
    memset(&a6, 0, sizeof a6);
    if (inet_pton(AF_INET, bind, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)o->port);
        sa = (struct sockaddr *)&a4;
    } else if (inet_pton(AF_INET6, bind, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)o->port);
        sa = (struct sockaddr *)&a6;
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, errlen, "bad bind address '%s' (want an IPv4 or IPv6 address)", bind);
        goto fail;
    }

    s->daemon = MHD_start_daemon(
        flags, (uint16_t)o->port, NULL, NULL, on_request, s,
        MHD_OPTION_SOCK_ADDR, sa,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)2000,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)120,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
        MHD_OPTION_THREAD_STACK_SIZE, (size_t)(1024 * 1024),
        MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)1024,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, (void *)s,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, (void *)s,
        MHD_OPTION_END);
    if (!s->daemon) {
        snprintf(err, errlen, "cannot listen on %s:%d (address in use or not available)", bind,
                 o->port);
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : o->port;
    return s;

fail:
    sim_free(s);
    return NULL;
}

struct sim *sim_start(const struct sim_options *o, char *err, size_t errlen)
{
    return sim_start_with(o, -1, err, errlen);
}

int sim_port(const struct sim *s)
{
    return s->port;
}

void sim_stop(struct sim *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->stop_lock);
    s->stopping = 1;
    pthread_cond_broadcast(&s->stop_cv);
    pthread_mutex_unlock(&s->stop_lock);
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    sim_free(s);
}
