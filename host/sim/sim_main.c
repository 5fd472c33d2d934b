/* `ecaphost sim [options]`: runs the simulator in the foreground until SIGINT/SIGTERM. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include "sim.h"

static const char USAGE[] =
    "usage: ecaphost sim [options]\n"
    "\n"
    "Runs the built-in EnergyCAP simulator until SIGINT or SIGTERM.\n"
    "\n"
    "  --port N            port to listen on (default 8080; 0 picks a free port)\n"
    "  --bind ADDR         address to listen on (default 127.0.0.1)\n"
    "  --latency D         delay added to every reply: 50ms, 0.05s or 50 (ms)\n"
    "  --data FILE         JSON data set (default: the embedded demo data)\n"
    "  --api-key KEY       the only ECI-ApiKey accepted (default: any non-empty key)\n"
    "  --fail-rate R       share of requests answered 500/503 at random, 0..1\n"
    "  --rate-limit N/s    requests per second before 429 + Retry-After (also N/min)\n"
    "  --task-delay D      time until a cost-avoidance task finishes (default 1s)\n"
    "  --tls-cert FILE     serve HTTPS with this PEM certificate (chain) ...\n"
    "  --tls-key FILE      ... and this PEM private key\n"
    "  --quiet             no per-request log lines on stderr\n"
    "  --help              this text\n"
    "\n"
    "The first line on stdout is `listening on http://ADDR:PORT` (https with TLS).\n"
    "Formats and the fault-control API (/api/__sim/): docs/simulator.md.\n";

static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A usage error: message on stderr, exit code 2. */
static int bad(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ecaphost sim: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see ecaphost sim --help)\n");
    va_end(ap);
    return 2;
}

/* A number with nothing after it (except an allowed unit suffix, returned in *rest). */
static int parse_number(const char *s, double *out, const char **rest)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v))
        return -1;
    *out = v;
    *rest = end;
    return 0;
}

/* A unit suffix: the number is multiplied by mul, then divided by div. */
struct unit {
    const char *suffix;
    double mul, div;
};

/* A non-negative number followed by one of the units ("" = no suffix). */
static int parse_with_unit(const char *s, const struct unit *units, double *out)
{
    const char *suffix;
    double v;
    if (parse_number(s, &v, &suffix) != 0 || v < 0)
        return -1;
    for (const struct unit *u = units; u->suffix; u++) {
        if (strcmp(suffix, u->suffix) == 0) {
            *out = v * u->mul / u->div;
            return 0;
        }
    }
    return -1;
}

/* 50ms, 0.05s, 2m, or a bare number of milliseconds. */
static int parse_duration_ms(const char *s, double *ms)
{
    static const struct unit units[] = {
        { "", 1, 1 }, { "ms", 1, 1 }, { "s", 1000, 1 }, { "m", 60000, 1 }, { "min", 60000, 1 },
        { NULL, 0, 0 },
    };
    return parse_with_unit(s, units, ms);
}

/* N, N/s, N/sec, N/m, N/min: requests per second. */
static int parse_rate(const char *s, double *per_s)
{
    static const struct unit units[] = {
        { "", 1, 1 }, { "/s", 1, 1 }, { "/sec", 1, 1 }, { "/m", 1, 60 }, { "/min", 1, 60 },
        { NULL, 0, 0 },
    };
    return parse_with_unit(s, units, per_s);
}

int sim_main(int argc, char **argv)
{
    struct sim_options o;
    memset(&o, 0, sizeof o);
    o.bind_addr = "127.0.0.1";
    o.port = 8080;
    o.log = stderr;
    double task_delay_s = -1;

    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(USAGE, stdout);
            return 0;
        }
        if (strcmp(arg, "--quiet") == 0 || strcmp(arg, "-q") == 0) {
            o.log = NULL;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0)
            return bad("unexpected argument '%s'", arg);
        static const char *const known[] = { "--port", "--bind", "--latency", "--data",
                                              "--api-key", "--fail-rate", "--rate-limit",
                                              "--task-delay", "--tls-cert", "--tls-key", NULL };
        size_t nlen = strcspn(arg, "=");
        int is_known = 0;
        for (int k = 0; known[k]; k++)
            if (strlen(known[k]) == nlen && strncmp(known[k], arg, nlen) == 0)
                is_known = 1;
        if (!is_known)
            return bad("unknown option '%.*s'", (int)nlen, arg);
        /* --name value or --name=value */
        char name[32];
        const char *val;
        const char *eq = strchr(arg, '=');
        if (eq) {
            size_t n = (size_t)(eq - arg);
            if (n >= sizeof name)
                return bad("unknown option '%s'", arg);
            memcpy(name, arg, n);
            name[n] = '\0';
            val = eq + 1;
        } else {
            if (strlen(arg) >= sizeof name)
                return bad("unknown option '%s'", arg);
            strcpy(name, arg);
            if (i + 1 >= argc)
                return bad("option %s needs a value", arg);
            val = argv[++i];
        }
        double v;
        const char *rest;
        if (strcmp(name, "--port") == 0) {
            if (parse_number(val, &v, &rest) != 0 || *rest || v < 0 || v > 65535 || v != floor(v))
                return bad("--port: '%s' is not a port number (0..65535)", val);
            o.port = (int)v;
        } else if (strcmp(name, "--bind") == 0) {
            o.bind_addr = val;
        } else if (strcmp(name, "--latency") == 0) {
            if (parse_duration_ms(val, &o.latency_ms) != 0)
                return bad("--latency: '%s' is not a duration (e.g. 50ms, 0.05s)", val);
        } else if (strcmp(name, "--data") == 0) {
            o.data_file = val;
        } else if (strcmp(name, "--api-key") == 0) {
            if (!*val)
                return bad("--api-key: the key must not be empty");
            o.api_key = val;
        } else if (strcmp(name, "--fail-rate") == 0) {
            if (parse_number(val, &v, &rest) != 0 || *rest || v < 0 || v > 1)
                return bad("--fail-rate: '%s' is not a number from 0 to 1", val);
            o.fail_rate = v;
        } else if (strcmp(name, "--rate-limit") == 0) {
            if (parse_rate(val, &o.rate_limit) != 0)
                return bad("--rate-limit: '%s' is not a rate (e.g. 20/s)", val);
        } else if (strcmp(name, "--tls-cert") == 0) {
            o.tls_cert = val;
        } else if (strcmp(name, "--tls-key") == 0) {
            o.tls_key = val;
        } else if (strcmp(name, "--task-delay") == 0) {
            double ms;
            if (parse_duration_ms(val, &ms) != 0 || ms > 3600000.0)
                return bad("--task-delay: '%s' is not a duration (e.g. 1s, 200ms)", val);
            task_delay_s = ms / 1000.0;
        } else {
            return bad("unknown option '%s'", name);
        }
    }

    /* Block the stop signals in every thread (the server's threads inherit this mask) and
     * wait for them here. SIGPIPE is ignored: a client hanging up is not our death. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    signal(SIGPIPE, SIG_IGN);
    if (pthread_sigmask(SIG_BLOCK, &stop, NULL) != 0) {
        fprintf(stderr, "ecaphost sim: cannot block signals\n");
        return 1;
    }

    char err[512];
    struct sim *s = sim_start_with(&o, task_delay_s, err, sizeof err);
    if (!s) {
        fprintf(stderr, "ecaphost sim: %s\n", err);
        return 1;
    }
    if (strchr(o.bind_addr, ':'))
        printf("listening on %s://[%s]:%d\n", sim_scheme(s), o.bind_addr, sim_port(s));
    else
        printf("listening on %s://%s:%d\n", sim_scheme(s), o.bind_addr, sim_port(s));
    fflush(stdout);

    int sig = 0;
    while (sigwait(&stop, &sig) != 0)
        ;
    if (o.log) {
        fprintf(o.log, "ecaphost sim: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
        fflush(o.log);
    }
    sim_stop(s);
    return 0;
}
