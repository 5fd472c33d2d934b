/* One HTTP transfer on libcurl: set-up (URL, method, headers with the key added here, body),
 * collection of the reply, and the classification of its outcome. Scheduling is the loop's. */
#ifndef ECAP_HTTP_H
#define ECAP_HTTP_H

#include <stddef.h>
#include <curl/curl.h>

struct loop;
struct task;
struct net_options;
struct limits;

#define HTTP_HEADERS_MAX 64          /* extra headers a script may add to one request */
#define HTTP_HEADER_LINE_MAX 8192    /* bytes of one extra header line, "Name: value" */

struct membuf {
    char *data;
    size_t len, cap;
};

enum xfer_state { X_NEW, X_QUEUED, X_ACTIVE, X_DONE };

struct xfer {
    CURL *easy;
    struct loop *lp;
    struct task *waiter;        /* task to wake when done, or NULL (a caller driving the loop) */
    enum xfer_state state;
    struct xfer *next_queued;
    struct curl_slist *headers; /* extra headers of this call (common ones live in the loop) */
    struct curl_slist *headers_tail;
    size_t charged;             /* request-side bytes (URL, header list) charged to lim */
    char method[8];
    char *url;
    size_t max_body;            /* replies larger than this fail (memory limit) */
    struct limits *lim;         /* the run's memory budget, charged for the reply buffers */
    struct membuf body, head;   /* reply body and raw header lines */
    long status;
    CURLcode result;
    int too_large;
    double elapsed;             /* seconds */
    char errbuf[CURL_ERROR_SIZE];
    curl_mime *mime;            /* a multipart upload (xfer_set_file), or NULL */
    int journaled;              /* its intent is in the journal: synced before it starts */
    int file_fd;                /* its file, read with pread: owned by the caller */
    curl_off_t file_pos;
};

/* Attaches x to the loop and its memory budget; before xfer_add_header. */
void xfer_init(struct xfer *x, struct loop *lp);

/* Appends one header line (copied) to x->headers in constant time, charging it to the run's
 * budget. Returns 0, or -1 when out of memory or past --max-memory (then the run's stop flag
 * is set, as the Lua allocator does: limits_check raises it). */
int xfer_add_header(struct xfer *x, const char *line);

/* Prepares x for a request (xfer_init first); body may be NULL (no body). The body pointer must stay valid
 * until the transfer is done (call.c keeps it in a Lua string referenced by the transfer).
 * x->headers may hold this call's extra headers already; the common ones are added to it.
 * Returns 0, or -1 with a message in err. */
int xfer_prepare(struct xfer *x, struct loop *lp, const char *method, const char *url,
                 const char *body, size_t body_len, char *err, size_t errlen);

/* Makes the prepared POST x a multipart/form-data upload of one file part named part: size
 * bytes read from fd (never loaded whole; the caller keeps fd open until the transfer is
 * released), with the part's file name and Content-Type; the JSON Content-Type header goes.
 * Returns 0, or -1 with a message in err. */
int xfer_set_file(struct xfer *x, int fd, long long size, const char *part, const char *name,
                  const char *type, char *err, size_t errlen);

/* Makes a finished x ready to be submitted again (a retry): the reply is dropped, the request
 * (URL, headers, body, file) kept as it was. */
void xfer_rearm(struct xfer *x);

/* The header list x sends (its own, or the loop's common one). */
const struct curl_slist *xfer_header_list(const struct xfer *x);

/* Frees everything x holds and returns its charge; detaches it from the loop first. */
void xfer_release(struct xfer *x);

/* The headers every request sends, built once per loop: ECI-ApiKey, Content-Type, Accept,
 * User-Agent. NULL on allocation failure. */
struct curl_slist *http_common_headers(const struct net_options *opts);

/* Frees a header list, wiping each line first (a list may hold the ECI-ApiKey line). */
void http_headers_free(struct curl_slist *h);

void membuf_free(struct membuf *b, struct limits *lim);

#endif
