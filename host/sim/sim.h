/* The built-in EnergyCAP simulator: an HTTP server (libmicrohttpd) in front of domain logic
 * written in Lua (host/sim/sim.lua, embedded). It judges requests with its own code, written
 * from the seed pages, never with the client's validation (bindings/). */
#ifndef ECAP_SIM_H
#define ECAP_SIM_H

#include <stddef.h>
#include <stdio.h>

struct sim_options {
    const char *bind_addr; /* "127.0.0.1" by default */
    int port;              /* 0 = any free port */
    double latency_ms;     /* added to every reply, without blocking other requests */
    const char *data_file; /* JSON data set; NULL = embedded demo data */
    const char *api_key;   /* NULL = any non-empty key is accepted */
    double fail_rate;      /* 0..1: share of requests answered 500/503 */
    double rate_limit;     /* requests per second before 429 + Retry-After; 0 = none */
    FILE *log;             /* one line per request, or NULL */
    const char *tls_cert;  /* PEM certificate (chain) file: serve HTTPS; NULL = plain HTTP */
    const char *tls_key;   /* PEM private key file, with tls_cert */
};

struct sim;

/* Starts serving in background threads. Returns NULL with a message in err on failure. */
struct sim *sim_start(const struct sim_options *o, char *err, size_t errlen);
/* The same, with the delay after which a cost-avoidance task finishes (seconds; < 0 = the
 * data file's settings.taskDelaySeconds, 1 s by default). */
struct sim *sim_start_with(const struct sim_options *o, double task_delay_s, char *err,
                           size_t errlen);
int sim_port(const struct sim *s);
/* "https" when serving TLS, else "http". */
const char *sim_scheme(const struct sim *s);
void sim_stop(struct sim *s);

/* `ecaphost sim [options]`: argv[0] is "sim". Returns the process exit code. */
int sim_main(int argc, char **argv);

#endif
