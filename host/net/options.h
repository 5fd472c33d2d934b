/* What the call path needs to know of a run's settings: filled by the command line (cli/),
 * read by the loop and the transfers. The key is the one secret: it is read here in C, added
 * to the request headers in C (net/http.c), and never copied into a Lua state. */
#ifndef ECAP_NET_OPTIONS_H
#define ECAP_NET_OPTIONS_H

#define NET_MAX_IN_FLIGHT_DEFAULT 64
#define NET_MAX_IN_FLIGHT_MAX 1024

struct net_options {
    const char *base_url;     /* scheme://host[:port], no path */
    const char *api_key;      /* secret; NULL = none */
    const char *cacert;       /* CA bundle, or NULL for the system's */
    long http_timeout_ms;     /* total time of one request */
    long connect_timeout_ms;
    int max_in_flight;        /* transfers in flight at once across the run */
    double rate;              /* requests per second; 0 = unlimited */
    int retries;              /* retries after the first attempt (--retries); -1 = default */
    double retry_budget_s;    /* all attempts of one call (--retry-budget); 0 = default */
    int verbose;              /* 1: a line per request and reply; 2: headers and bodies too */
    int dry_run;              /* mutating calls printed, not sent (--dry-run) */
    const char *journal_path; /* the call journal (--journal), or NULL */
    const char *resume_path;  /* the journal of a run to resume (--resume), or NULL */
    int resend_unknown;       /* --resend-unknown: a resumed call of unknown outcome is sent */
    int quiet;                /* no info lines (retries) */
};

#endif
