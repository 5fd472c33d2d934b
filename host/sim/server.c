/* The simulator's HTTP server: libmicrohttpd in front of the Lua domain logic (sim/sim.lua).
 * This file holds the MHD plumbing (start, stop, collecting each request and its body); the
 * Lua side is in lua_bridge.c, the replies and fault writing in reply.c.
 *
 * Why libmicrohttpd (Debian's libmicrohttpd-dev 0.9.75): a small C library with real HTTP/1.1
 * (keep-alive, chunked uploads, Expect: 100-continue), limits on connections and header memory,
 * and a thread-per-connection mode that makes simulated latency trivial and safe.
 *
 * Threading: MHD_USE_THREAD_PER_CONNECTION. Each connection has its own thread; the Lua state
 * is shared and every call into it holds the bridge's lock. The reply is built under the lock;
 * the simulated latency (and a "hang" fault) is slept AFTER the lock is released, on the
 * connection's own thread, with a timed wait on `s->stop` so sim_stop wakes sleepers at once.
 * We chose this over MHD_suspend_connection + a timer thread: with one thread per connection a
 * sleep blocks nobody else, there is no timer wheel or resume bookkeeping, and the cost (a
 * thread per open connection, 1 MiB of reserved stack each) is small for a test server that
 * sees at most a few hundred connections.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <microhttpd.h>
#include <zlib.h>

#include "lib/limits.h"
#include "lua_bridge.h"
#include "reply.h"
#include "sim.h"

#define BODY_CAP (1024u * 1024u) /* larger request bodies get 413 */
#define UPLOAD_CAP (256ull << 20) /* a streamed file-store upload: larger is refused (413) */
#define POST_BUFFER 65536         /* MHD's post processor buffer */
#define UPLOAD_PREFIX "/api/v202105/fileStore/fileDataType/"

struct sim {
    struct MHD_Daemon *daemon;
    struct lua_bridge bridge;
    struct stop_flag stop;
    int port;
    FILE *log;
    char *tls_cert, *tls_key; /* PEM text, kept for the daemon's life; the key wiped at stop */
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
    struct MHD_PostProcessor *pp; /* a multipart upload, streamed (never held whole) */
    struct upload_info up;
};

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
        if (r->pp)
            MHD_destroy_post_processor(r->pp);
        free(r->uri);
        free(r->body);
        free(r);
        *con_cls = NULL;
    }
}

/* Appends a piece of the upload; past BODY_CAP the body is dropped and marked too big.
 * Returns -1 when out of memory. */
static int collect_body(struct req *r, const char *data, size_t n)
{
    if (r->too_big)
        return 0;
    if (r->len + n > BODY_CAP) {
        r->too_big = 1;
        free(r->body);
        r->body = NULL;
        r->len = r->cap = 0;
        return 0;
    }
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + n)
            cap *= 2;
        char *nb = realloc(r->body, cap);
        if (!nb)
            return -1;
        r->body = nb;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    return 0;
}

/* The file-store upload route: POST /api/v202105/fileStore/fileDataType/{id}/upload. */
static int is_upload_route(const char *method, const char *url)
{
    size_t n = strlen(UPLOAD_PREFIX), d;
    if (strcmp(method, "POST") != 0 || strncmp(url, UPLOAD_PREFIX, n) != 0)
        return 0;
    d = strspn(url + n, "0123456789");
    return d > 0 && strcmp(url + n + d, "/upload") == 0;
}

/* MHD's post processor hands each piece of each part here: a file part is counted and
 * checksummed, never kept. */
static enum MHD_Result on_part(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *filename, const char *content_type,
                               const char *transfer_encoding, const char *data, uint64_t off,
                               size_t size)
{
    struct upload_info *u = cls;
    (void)kind;
    (void)transfer_encoding;
    if (!filename)
        return MHD_YES; /* a plain form field: not a file */
    if (off == 0) {
        u->files++;
        if (u->files == 1) {
            snprintf(u->part, sizeof u->part, "%s", key ? key : "");
            snprintf(u->filename, sizeof u->filename, "%s", filename);
            snprintf(u->content_type, sizeof u->content_type, "%s", content_type ? content_type : "");
            u->crc32 = crc32(0L, Z_NULL, 0);
        }
    }
    if (u->files == 1 && size > 0) {
        u->size += size;
        if (u->size > UPLOAD_CAP) {
            u->too_big = 1;
            return MHD_NO;
        }
        u->crc32 = crc32(u->crc32, (const Bytef *)data, (uInt)size);
    }
    return MHD_YES;
}

static void log_line(struct sim *s, const char *method, const struct req *r, const char *url,
                     int status, const char *note)
{
    if (!s->log)
        return;
    double ms = (now_monotonic() - r->t0) * 1000.0;
    fprintf(s->log, "%s %s %d %.1fms%s%s\n", method, r->uri ? r->uri : url, status, ms,
            note ? " " : "", note ? note : "");
    fflush(s->log);
}

static enum MHD_Result send_too_big(struct sim *s, struct MHD_Connection *c, struct req *r,
                                    const char *method, const char *url)
{
    struct MHD_Response *resp = reply_json("{\"message\":\"body: larger than the 1 MiB limit\"}");
    if (!resp)
        return MHD_NO;
    enum MHD_Result ret = MHD_queue_response(c, 413, resp);
    MHD_destroy_response(resp);
    log_line(s, method, r, url, 413, NULL);
    return ret;
}

/* MHD calls this first with the headers, then once per piece of the body, then once more
 * with nothing left: that last call answers. */
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
        r->t0 = now_monotonic();
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
        if (ct && strncasecmp(ct, "multipart/form-data", 19) == 0 && is_upload_route(method, url)) {
            /* streamed: exempt from BODY_CAP, capped by UPLOAD_CAP in on_part */
            r->pp = MHD_create_post_processor(c, POST_BUFFER, on_part, &r->up);
            if (r->pp)
                return MHD_YES;
        }
        if (cl) {
            char *end;
            errno = 0;
            unsigned long long n = strtoull(cl, &end, 10);
            if (errno || n > BODY_CAP)
                return send_too_big(s, c, r, method, url);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->pp) {
            if (!r->up.too_big && MHD_post_process(r->pp, upload_data, n) != MHD_YES && !r->up.too_big)
                r->up.files = -1; /* a malformed multipart body: the handler refuses it */
            return MHD_YES;
        }
        return collect_body(r, upload_data, n) == 0 ? MHD_YES : MHD_NO;
    }
    if (r->too_big)
        return send_too_big(s, c, r, method, url);

    const char *q = r->uri ? strchr(r->uri, '?') : NULL;
    struct bridge_request rq = { method, url, q ? q + 1 : "", r->body, r->len, c, r->pp ? &r->up : NULL };
    struct verdict v;
    struct MHD_Response *resp = bridge_handle(&s->bridge, &rq, &v);
    if (!resp)
        return MHD_NO;
    /* Outside the lock: other requests go on while this one waits. The latency counts from
     * the request's arrival, so the simulator's own work (and its wait for the lock) is part
     * of it, not added to it: a busy simulator still answers on time. */
    double wait_ms = v.latency_ms - (now_monotonic() - r->t0) * 1000.0;
    if (wait_ms > 0 && stop_flag_sleep(&s->stop, wait_ms)) {
        MHD_destroy_response(resp);
        return MHD_NO;
    }
    if (v.fault == FAULT_HANG) {
        stop_flag_sleep(&s->stop, v.hang_s * 1000.0);
        MHD_destroy_response(resp);
        log_line(s, method, r, url, 0, "(hang: closed without a reply)");
        return MHD_NO;
    }
    enum MHD_Result ret = MHD_queue_response(c, v.status, resp);
    MHD_destroy_response(resp);
    log_line(s, method, r, url, (int)v.status,
             v.fault == FAULT_RESET      ? "(reset mid-body)"
             : v.fault == FAULT_TRUNCATE ? "(truncated)"
                                         : NULL);
    return ret;
}

/* ---- start / stop --------------------------------------------------------------------- */

/* The daemon's address: an IPv4 or IPv6 literal. Sets *flags' MHD_USE_IPv6 for the latter. */
static int listen_address(const char *bind, int port, struct sockaddr_in *a4,
                          struct sockaddr_in6 *a6, struct sockaddr **sa, unsigned *flags)
{
    memset(a4, 0, sizeof *a4);
    memset(a6, 0, sizeof *a6);
    if (inet_pton(AF_INET, bind, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *sa = (struct sockaddr *)a4;
        return 0;
    }
    if (inet_pton(AF_INET6, bind, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *sa = (struct sockaddr *)a6;
        *flags |= MHD_USE_IPv6;
        return 0;
    }
    return -1;
}

static void free_tls(struct sim *s)
{
    if (s->tls_key) {
        volatile char *p = s->tls_key; /* a private key: wipe before freeing */
        while (*p)
            *p++ = 0;
    }
    free(s->tls_key);
    free(s->tls_cert);
    s->tls_key = s->tls_cert = NULL;
}

/* --tls-cert / --tls-key: reads both PEM files and adds MHD_USE_TLS (GnuTLS in MHD). */
static int load_tls(struct sim *s, const struct sim_options *o, unsigned *flags, char *err,
                    size_t errlen)
{
    size_t n;
    if (!o->tls_cert && !o->tls_key)
        return 0;
    if (!o->tls_cert || !o->tls_key) {
        snprintf(err, errlen, "--tls-cert and --tls-key go together");
        return -1;
    }
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        snprintf(err, errlen, "this libmicrohttpd was built without TLS support: cannot serve HTTPS");
        return -1;
    }
    if (!(s->tls_cert = sim_read_file(o->tls_cert, &n, err, errlen)) ||
        !(s->tls_key = sim_read_file(o->tls_key, &n, err, errlen)))
        return -1;
    *flags |= MHD_USE_TLS;
    return 0;
}

struct sim *sim_start_with(const struct sim_options *o, double task_delay_s, char *err,
                           size_t errlen)
{
    struct sim *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (stop_flag_init(&s->stop) != 0) {
        free(s);
        snprintf(err, errlen, "cannot create a mutex or condition variable");
        return NULL;
    }
    s->log = o->log;
    if (bridge_open(&s->bridge, o, task_delay_s, err, errlen) != 0)
        goto fail_stop;

    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    struct sockaddr *sa;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_AUTO;
    const char *bind = o->bind_addr ? o->bind_addr : "127.0.0.1";
    if (o->port < 0 || o->port > 65535) {
        snprintf(err, errlen, "port %d out of range", o->port);
        goto fail_bridge;
    }
    if (listen_address(bind, o->port, &a4, &a6, &sa, &flags) != 0) {
        snprintf(err, errlen, "bad bind address '%s' (want an IPv4 or IPv6 address)", bind);
        goto fail_bridge;
    }

    if (load_tls(s, o, &flags, err, errlen) != 0)
        goto fail_bridge;
    /* The TLS options only with MHD_USE_TLS (MHD complains about them otherwise). */
    struct MHD_OptionItem tls[] = {
        { MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key },
        { MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert },
        { MHD_OPTION_END, 0, NULL },
    };

    s->daemon = MHD_start_daemon(
        flags, (uint16_t)o->port, NULL, NULL, on_request, s,
        MHD_OPTION_ARRAY, s->tls_cert ? tls : tls + 2,
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
        goto fail_bridge;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : o->port;
    return s;

fail_bridge:
    free_tls(s);
    bridge_close(&s->bridge);
fail_stop:
    stop_flag_destroy(&s->stop);
    free(s);
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
    stop_flag_raise(&s->stop);
    if (s->daemon)
        MHD_stop_daemon(s->daemon);
    free_tls(s);
    bridge_close(&s->bridge);
    stop_flag_destroy(&s->stop);
    free(s);
}

const char *sim_scheme(const struct sim *s)
{
    return s->tls_cert ? "https" : "http";
}
