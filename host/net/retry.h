/* Whether to send a failed call again: one table, decided by "did the server certainly not
 * act?" (issue: safe against production). Any method is sent again when the server certainly
 * did not act: nothing left the host (DNS, connection refused, connect timeout, a TLS
 * handshake cut), or it answered 429 / 503 (it refuses before acting). GET alone is also sent
 * again after a read timeout, a reset mid-reply, 500, 502 or 504; for a mutating call the fate
 * of such an attempt is unknown, and it is never resent. A certificate that fails
 * verification is configuration, not weather: never retried. */
#ifndef ECAP_RETRY_H
#define ECAP_RETRY_H

#include <time.h>
#include <curl/curl.h>

#define RETRIES_DEFAULT 4          /* retries after the first attempt (--retries) */
#define RETRY_BUDGET_DEFAULT 120.0 /* seconds all attempts of one call may take (--retry-budget) */
#define RETRY_BASE_S 0.5           /* full-jitter back-off: uniform in [0, min(cap, base*2^n)) */
#define RETRY_CAP_S 30.0

enum call_outcome {
    OUTCOME_OK,       /* a 2xx from the API */
    OUTCOME_FAILED,   /* the server answered with an error: it did not do the call */
    OUTCOME_NOT_SENT, /* nothing left the host */
    OUTCOME_UNKNOWN,  /* a mutating call that may or may not have been done */
};

/* What is known of one finished attempt. */
struct attempt {
    int mutating;     /* any method but GET */
    CURLcode result;  /* CURLE_OK: the server answered with status */
    long status;
    long sent;        /* request bytes that left (CURLINFO_REQUEST_SIZE) */
};

struct retry_verdict {
    int retry;                /* send again (within --retries and --retry-budget) */
    enum call_outcome outcome; /* if it is not sent again */
    const char *reason;       /* for the log line: "connection refused", "503", ... */
};

void retry_judge(const struct attempt *a, struct retry_verdict *v);

/* The wait before retry number n (1-based), full jitter; *seed is advanced. */
double retry_backoff(int n, unsigned *seed);

/* Seconds a Retry-After header asks for (delta-seconds or an HTTP date, against now). Returns
 * 0, or -1 when the value is neither. */
int retry_after_parse(const char *value, time_t now, double *secs);

const char *retry_outcome_name(enum call_outcome o);

#endif
