/* The retry table (net/retry.h): what a failed attempt says about the server having acted. */
#define _XOPEN_SOURCE 700 /* strptime */
#define _DEFAULT_SOURCE   /* timegm */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "retry.h"

/* Transport errors after which nothing reached the server, whatever the method. */
static int never_reached(CURLcode r)
{
    switch (r) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR: /* the handshake was cut: no request was sent in it */
        return 1;
    default:
        return 0;
    }
}

/* Certificate and TLS set-up problems: configuration, not weather. */
static int misconfigured(CURLcode r)
{
    switch (r) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_CIPHER:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        return 1;
    default:
        return 0;
    }
}

/* Transport errors after the request (or part of it) left: a GET may be read again. */
static int cut_short(CURLcode r)
{
    switch (r) {
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return 1;
    default:
        return 0;
    }
}

void retry_judge(const struct attempt *a, struct retry_verdict *v)
{
    v->retry = 0;
    v->reason = NULL;
    if (a->result != CURLE_OK) {
        v->reason = curl_easy_strerror(a->result);
        if (misconfigured(a->result)) {
            v->outcome = OUTCOME_NOT_SENT;
        } else if (never_reached(a->result) || (a->sent == 0 && cut_short(a->result))) {
            v->retry = 1; /* a connect timeout, say: nothing was sent */
            v->outcome = OUTCOME_NOT_SENT;
        } else if (cut_short(a->result)) {
            v->retry = !a->mutating;
            v->outcome = a->mutating ? OUTCOME_UNKNOWN : OUTCOME_FAILED;
        } else {
            v->outcome = a->mutating && a->sent > 0 ? OUTCOME_UNKNOWN
                         : a->sent > 0             ? OUTCOME_FAILED
                                                   : OUTCOME_NOT_SENT;
        }
        return;
    }
    if (a->status >= 200 && a->status < 300) {
        v->outcome = OUTCOME_OK;
        return;
    }
    switch (a->status) {
    case 429:
        v->reason = "429 too many requests";
        v->retry = 1;
        v->outcome = OUTCOME_FAILED;
        return;
    case 503:
        v->reason = "503 service unavailable";
        v->retry = 1;
        v->outcome = OUTCOME_FAILED;
        return;
    case 500:
    case 502:
    case 504:
        v->reason = a->status == 500 ? "500 internal server error"
                    : a->status == 502 ? "502 bad gateway" : "504 gateway timeout";
        v->retry = !a->mutating;
        v->outcome = a->mutating ? OUTCOME_UNKNOWN : OUTCOME_FAILED;
        return;
    default:
        v->outcome = OUTCOME_FAILED;
    }
}

double retry_backoff(int n, unsigned *seed)
{
    double ceiling = RETRY_BASE_S, u;
    for (int i = 1; i < n && ceiling < RETRY_CAP_S; i++)
        ceiling *= 2;
    if (ceiling > RETRY_CAP_S)
        ceiling = RETRY_CAP_S;
    /* an LCG is plenty for spreading clients apart; rand() would share state with nothing,
     * but this keeps each loop's sequence its own */
    *seed = *seed * 1103515245u + 12345u;
    u = (double)((*seed >> 8) & 0xFFFFFF) / (double)0x1000000;
    return u * ceiling;
}

int retry_after_parse(const char *value, time_t now, double *secs)
{
    const char *p = value;
    struct tm tm;
    char *end;
    while (isspace((unsigned char)*p))
        p++;
    if (isdigit((unsigned char)*p)) {
        unsigned long long s = strtoull(p, &end, 10);
        while (isspace((unsigned char)*end))
            end++;
        if (*end || s > 86400ull * 366)
            return -1;
        *secs = (double)s;
        return 0;
    }
    memset(&tm, 0, sizeof tm);
    end = strptime(p, "%a, %d %b %Y %H:%M:%S GMT", &tm); /* IMF-fixdate */
    if (!end || *end)
        return -1;
    {
        time_t at = timegm(&tm);
        *secs = at > now ? (double)(at - now) : 0.0;
    }
    return 0;
}

const char *retry_outcome_name(enum call_outcome o)
{
    switch (o) {
    case OUTCOME_OK: return "ok";
    case OUTCOME_FAILED: return "failed";
    case OUTCOME_NOT_SENT: return "not sent";
    case OUTCOME_UNKNOWN: return "unknown";
    }
    return "?";
}
