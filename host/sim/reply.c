/* The simulator's replies: JSON, cut short (reset / truncate faults), and the stop-aware wait
 * behind latency and hang faults. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <netinet/in.h>

#include "reply.h"

#define JSON_TYPE "application/json; charset=utf-8"

enum reply_fault reply_fault_named(const char *name)
{
    if (!name)
        return FAULT_NONE;
    if (strcmp(name, "hang") == 0)
        return FAULT_HANG;
    if (strcmp(name, "reset") == 0)
        return FAULT_RESET;
    if (strcmp(name, "truncate") == 0)
        return FAULT_TRUNCATE;
    return FAULT_NONE;
}

struct MHD_Response *reply_json(const char *json)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(json), (void *)json, MHD_RESPMEM_MUST_COPY);
    if (resp)
        MHD_add_response_header(resp, "Content-Type", JSON_TYPE);
    return resp;
}

struct MHD_Response *reply_internal_error(void)
{
    static const char body[] = "{\"message\":\"simulator internal error\"}";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (resp)
        MHD_add_response_header(resp, "Content-Type", JSON_TYPE);
    return resp;
}

/* ---- replies cut short ---------------------------------------------------------------- */

/* Content-Length announces all of `data`, `send` bytes go out, then the connection closes
 * (truncate) or is reset with an RST (reset). */
struct cut {
    char *data;
    size_t send;
    int reset;
    struct MHD_Connection *conn;
};

/* Aborts the connection with an RST. MHD would shut the socket down with a FIN before closing
 * it, so we close it here: with SO_LINGER 0 the close sends an RST, and dup2 does that close
 * atomically while putting a fresh unconnected socket under the same descriptor, which MHD
 * then shuts down and closes harmlessly (in thread-per-connection mode nothing else polls it). */
static void reset_connection(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return;
    struct linger lg = { 1, 0 };
    int fd = ci->connect_fd;
    if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) != 0)
        return;
    int spare = socket(AF_INET, SOCK_STREAM, 0);
    if (spare >= 0) {
        (void)dup2(spare, fd);
        close(spare);
    }
}

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
        /* Let the first part reach the peer before the RST overtakes it. */
        struct timespec ts = { 0, 50 * 1000000L };
        nanosleep(&ts, NULL);
        reset_connection(k->conn);
    }
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

static void cut_free(void *cls)
{
    struct cut *k = cls;
    free(k->data);
    free(k);
}

/* An empty body still announces 64 bytes (spaces), so that something is missing. */
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
    k->send = len / 2;
    k->reset = reset;
    k->conn = c;
    struct MHD_Response *resp =
        MHD_create_response_from_callback(announced, 4096, cut_read, k, cut_free);
    if (!resp)
        cut_free(k);
    return resp;
}

struct MHD_Response *reply_body(const char *body, size_t len, enum reply_fault fault,
                                struct MHD_Connection *c)
{
    if (fault == FAULT_RESET || fault == FAULT_TRUNCATE)
        return cut_response(body, len, fault == FAULT_RESET, c);
    return MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
}

/* ---- waiting -------------------------------------------------------------------------- */

int stop_flag_init(struct stop_flag *f)
{
    pthread_condattr_t ca;
    f->stopping = 0;
    if (pthread_mutex_init(&f->lock, NULL) != 0)
        return -1;
    if (pthread_condattr_init(&ca) != 0) {
        pthread_mutex_destroy(&f->lock);
        return -1;
    }
    /* Deadlines are monotonic: a wall-clock step must not stretch or cut a wait. */
    int ok = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) == 0 &&
             pthread_cond_init(&f->cv, &ca) == 0;
    pthread_condattr_destroy(&ca);
    if (!ok) {
        pthread_mutex_destroy(&f->lock);
        return -1;
    }
    return 0;
}

void stop_flag_destroy(struct stop_flag *f)
{
    pthread_mutex_destroy(&f->lock);
    pthread_cond_destroy(&f->cv);
}

void stop_flag_raise(struct stop_flag *f)
{
    pthread_mutex_lock(&f->lock);
    f->stopping = 1;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->lock);
}

int stop_flag_sleep(struct stop_flag *f, double ms)
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
    pthread_mutex_lock(&f->lock);
    while (!f->stopping) {
        if (pthread_cond_timedwait(&f->cv, &f->lock, &until) == ETIMEDOUT)
            break;
    }
    int stopping = f->stopping;
    pthread_mutex_unlock(&f->lock);
    return stopping;
}
