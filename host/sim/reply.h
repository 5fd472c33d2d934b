/* What the simulator sends back, and when: JSON replies, replies cut short by a reset or
 * truncate fault, and the waits before a reply (latency, hang) that stopping the server ends. */
#ifndef ECAP_SIM_REPLY_H
#define ECAP_SIM_REPLY_H

#include <pthread.h>
#include <stddef.h>

#include <microhttpd.h>

/* A fault that changes how the reply goes out; sim.lua names them. */
enum reply_fault { FAULT_NONE, FAULT_HANG, FAULT_RESET, FAULT_TRUNCATE };

/* "hang", "reset" or "truncate"; anything else (or NULL) is FAULT_NONE. */
enum reply_fault reply_fault_named(const char *name);

/* A reply with a JSON body (copied) and its Content-Type. NULL when out of memory. */
struct MHD_Response *reply_json(const char *json);

/* The reply when the Lua handler itself failed. NULL when out of memory. */
struct MHD_Response *reply_internal_error(void);

/* The handler's body (copied): whole, or cut short for FAULT_RESET / FAULT_TRUNCATE (which
 * need the connection to reset). NULL when out of memory. */
struct MHD_Response *reply_body(const char *body, size_t len, enum reply_fault fault,
                                struct MHD_Connection *c);

/* Set when the simulator stops; replies sleeping on it wake at once. */
struct stop_flag {
    pthread_mutex_t lock;
    pthread_cond_t cv; /* on CLOCK_MONOTONIC */
    int stopping;
};

int stop_flag_init(struct stop_flag *f); /* 0, or -1 with nothing to destroy */
void stop_flag_destroy(struct stop_flag *f);
void stop_flag_raise(struct stop_flag *f);
/* Sleeps ms milliseconds, or less when the flag is raised. Returns 1 if it was raised. */
int stop_flag_sleep(struct stop_flag *f, double ms);

#endif
