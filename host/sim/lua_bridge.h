/* The simulator's Lua side: one state running sim/sim.lua, shared by every connection thread
 * under `lock`. */
#ifndef ECAP_SIM_LUA_BRIDGE_H
#define ECAP_SIM_LUA_BRIDGE_H

#include <pthread.h>
#include <stddef.h>

#include <lua.h>
#include <microhttpd.h>

#include "lib/embedded.h"
#include "reply.h"
#include "sim.h"

/* The simulator's embedded Lua sources and demo data (host/sim/). */
extern const struct embedded_file embedded_sim[];

struct lua_bridge {
    lua_State *L;
    int handler_ref;      /* sim.sim's handle function, in the registry */
    pthread_mutex_t lock; /* every call into L */
};

/* A multipart/form-data upload, streamed through MHD's post processor: what the simulator
 * keeps of it (never the bytes). */
struct upload_info {
    char part[64];          /* the name of the first file part ("file") */
    char filename[256];     /* its file name, as sent */
    char content_type[128]; /* its Content-Type */
    unsigned long long size;
    unsigned long crc32;    /* zlib's crc32 of its bytes */
    int files;              /* file parts seen */
    int too_big;            /* past the simulator's upload cap */
};

/* A request as the handler sees it. */
struct bridge_request {
    const char *method, *path;
    const char *query; /* raw, without the '?'; "" when none */
    const char *body;  /* NULL when none */
    size_t len;
    struct MHD_Connection *conn; /* its headers are passed on */
    const struct upload_info *upload; /* a streamed multipart upload, or NULL */
};

/* What the handler decided, beside the reply itself. */
struct verdict {
    unsigned status;
    enum reply_fault fault;
    double hang_s;     /* FAULT_HANG: how long to hold the connection before closing it */
    double latency_ms; /* to wait before replying, outside the lock */
};

/* Reads a whole file (at most the data-file cap) into a malloc'ed, NUL-terminated buffer;
 * *len excludes the NUL. NULL with "PATH: reason" in err. */
char *sim_read_file(const char *path, size_t *len, char *err, size_t errlen);

/* Loads the data set (o->data_file, or the embedded demo) into a new state running sim.sim.
 * Returns 0, or -1 with a message in err and nothing left to close. */
int bridge_open(struct lua_bridge *b, const struct sim_options *o, double task_delay_s,
                char *err, size_t errlen);
void bridge_close(struct lua_bridge *b);

/* Runs the handler under the lock and builds its reply. NULL when out of memory. */
struct MHD_Response *bridge_handle(struct lua_bridge *b, const struct bridge_request *rq,
                                   struct verdict *v);

#endif
