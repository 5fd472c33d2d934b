/* Setting up one libcurl transfer and collecting its reply. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lib/limits.h"
#include "http.h"
#include "loop.h"
#include "options.h"

struct curl_slist *loop_common_headers(struct loop *lp);

#define MEMBUF_FIRST 4096           /* first allocation of a reply buffer */
#define REPLY_HEADERS_MAX (1 << 20) /* bytes of reply header lines kept */
#define KEY_HEADER "ECI-ApiKey: "

/* Reply buffers are charged to the run's memory budget (the Lua allocator's): 64 transfers in
 * flight must not hold 64 times --max-memory outside it. */
void membuf_free(struct membuf *b, struct limits *lim)
{
    if (lim && b->data)
        limits_release(lim, b->cap);
    free(b->data);
    memset(b, 0, sizeof *b);
}

static int membuf_add(struct membuf *b, const char *p, size_t n, size_t max, struct limits *lim)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : MEMBUF_FIRST;
        char *d;
        while (cap < b->len + n + 1)
            cap *= 2;
        if (max && cap > max + 1)
            cap = max + 1;
        if (b->len + n + 1 > cap)
            return -1;
        if (lim && limits_charge(lim, cap - b->cap))
            return -1;
        d = realloc(b->data, cap);
        if (!d) {
            if (lim)
                limits_release(lim, cap - b->cap);
            return -1;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0;
    return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    if (membuf_add(&x->body, p, size * n, x->max_body, x->lim)) {
        x->too_large = 1;
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    }
    return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct xfer *x = ud;
    /* A new status line (after a 100 Continue, say) starts the header block over. */
    if (size * n >= 5 && memcmp(p, "HTTP/", 5) == 0)
        x->head.len = 0;
    if (membuf_add(&x->head, p, size * n, REPLY_HEADERS_MAX, x->lim))
        return 0;
    return size * n;
}

/* Overwrites n bytes in a way the compiler may not drop (the bytes held a secret). */
static void wipe(void *p, size_t n)
{
    volatile char *v = p;
    while (n--)
        *v++ = 0;
}

void http_headers_free(struct curl_slist *h)
{
    for (struct curl_slist *s = h; s; s = s->next)
        wipe(s->data, strlen(s->data)); /* one of them holds the key: wipe before freeing */
    curl_slist_free_all(h);
}

/* The key's header line, in a buffer sized for it and wiped once curl has copied it. */
static struct curl_slist *append_key(struct curl_slist *h, const char *key)
{
    size_t n = sizeof KEY_HEADER + strlen(key);
    char *line = malloc(n);
    struct curl_slist *t;
    if (!line)
        return NULL;
    snprintf(line, n, "%s%s", KEY_HEADER, key);
    t = curl_slist_append(h, line);
    wipe(line, n);
    free(line);
    return t;
}

struct curl_slist *http_common_headers(const struct net_options *opts)
{
    struct curl_slist *h = NULL, *t;
    const char *fixed[] = {"Content-Type: application/json", "Accept: application/json",
                           ("User-Agent: ecaphost/" ECAP_VERSION), "Expect:"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        t = curl_slist_append(h, fixed[i]);
        if (!t)
            goto fail;
        h = t;
    }
    if (opts->api_key) {
        if (!(t = append_key(h, opts->api_key)))
            goto fail;
        h = t;
    }
    return h;
fail:
    http_headers_free(h);
    return NULL;
}

/* Charges n request-side bytes to the run's budget; past it, stops the run like the Lua
 * allocator does (a script's requests must not hold memory outside --max-memory). */
static int charge(struct xfer *x, size_t n)
{
    if (!x->lim)
        return 0;
    if (limits_charge(x->lim, n)) {
        if (x->lim->stop == STOP_NONE)
            x->lim->stop = STOP_MEMORY;
        return -1;
    }
    x->charged += n;
    return 0;
}

void xfer_init(struct xfer *x, struct loop *lp)
{
    x->lp = lp;
    x->lim = loop_limits(lp);
}

int xfer_add_header(struct xfer *x, const char *line)
{
    size_t n = sizeof(struct curl_slist) + strlen(line) + 1;
    struct curl_slist *node;
    if (charge(x, n))
        return -1;
    /* A one-node list linked at our tail: curl_slist_append walks the whole list each time. */
    if (!(node = curl_slist_append(NULL, line))) {
        limits_release(x->lim, n);
        x->charged -= n;
        return -1;
    }
    if (x->headers_tail)
        x->headers_tail->next = node;
    else
        x->headers = node;
    x->headers_tail = node;
    return 0;
}

int xfer_prepare(struct xfer *x, struct loop *lp, const char *method, const char *url,
                 const char *body, size_t body_len, char *err, size_t errlen)
{
    const struct net_options *opts = loop_options(lp);
    CURL *e;
    struct curl_slist *headers = loop_common_headers(lp);
    size_t url_len = strlen(url) + 1;
    xfer_init(x, lp);
    x->state = X_NEW;
    snprintf(x->method, sizeof x->method, "%s", method);
    snprintf(err, errlen, "out of memory");
    if (charge(x, url_len) || !(x->url = malloc(url_len)))
        return -1;
    memcpy(x->url, url, url_len);
    if (!(x->easy = e = loop_easy_get(lp)))
        return -1;
    if (x->headers) {
        /* This call's extra headers come first; the common ones are appended to its list. */
        for (struct curl_slist *s = headers; s; s = s->next)
            if (xfer_add_header(x, s->data))
                return -1;
        headers = x->headers;
    }
    curl_easy_setopt(e, CURLOPT_URL, x->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)x);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L); /* a redirect must not carry the key elsewhere */
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, opts->http_timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, opts->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    if (opts->cacert)
        curl_easy_setopt(e, CURLOPT_CAINFO, opts->cacert);
    if (strcmp(method, "GET") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    if (body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    } else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 || strcmp(method, "PATCH") == 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    }
    return 0;
}

/* The file part's bytes, read where curl asks (a retry or a redirect seeks back). */
static size_t file_read(char *buf, size_t size, size_t n, void *arg)
{
    struct xfer *x = arg;
    ssize_t r = pread(x->file_fd, buf, size * n, (off_t)x->file_pos);
    if (r < 0)
        return CURL_READFUNC_ABORT;
    x->file_pos += r;
    return (size_t)r;
}

static int file_seek(void *arg, curl_off_t offset, int origin)
{
    struct xfer *x = arg;
    if (origin != SEEK_SET)
        return CURL_SEEKFUNC_CANTSEEK;
    x->file_pos = offset;
    return CURL_SEEKFUNC_OK;
}

int xfer_set_file(struct xfer *x, int fd, long long size, const char *part, const char *name,
                  const char *type, char *err, size_t errlen)
{
    curl_mimepart *p;
    snprintf(err, errlen, "out of memory");
    if (x->headers) { /* the bindings' uploads carry no extra headers */
        snprintf(err, errlen, "an upload takes no extra headers");
        return -1;
    }
    /* curl writes the multipart Content-Type with its boundary: the JSON one must not be sent */
    for (struct curl_slist *s = loop_common_headers(x->lp); s; s = s->next)
        if (strncasecmp(s->data, "Content-Type:", 13) != 0 && xfer_add_header(x, s->data))
            return -1;
    x->file_fd = fd;
    x->file_pos = 0;
    if (!(x->mime = curl_mime_init(x->easy)) || !(p = curl_mime_addpart(x->mime)))
        return -1;
    if (curl_mime_name(p, part) != CURLE_OK || curl_mime_filename(p, name) != CURLE_OK
        || curl_mime_type(p, type) != CURLE_OK
        || curl_mime_data_cb(p, (curl_off_t)size, file_read, file_seek, NULL, x) != CURLE_OK)
        return -1;
    curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(x->easy, CURLOPT_MIMEPOST, x->mime);
    return 0;
}

void xfer_rearm(struct xfer *x)
{
    membuf_free(&x->body, x->lim);
    membuf_free(&x->head, x->lim);
    x->result = CURLE_OK;
    x->too_large = 0;
    x->errbuf[0] = '\0';
    x->file_pos = 0;
    x->state = X_NEW;
}

const struct curl_slist *xfer_header_list(const struct xfer *x)
{
    return x->headers ? x->headers : loop_common_headers(x->lp);
}

void xfer_release(struct xfer *x)
{
    if (x->lp)
        loop_detach(x->lp, x);
    if (x->easy) {
        if (x->lp)
            loop_easy_put(x->lp, x->easy);
        else
            curl_easy_cleanup(x->easy);
    }
    curl_mime_free(x->mime); /* after the easy handle let go of it */
    x->mime = NULL;
    http_headers_free(x->headers);
    free(x->url);
    membuf_free(&x->body, x->lim);
    membuf_free(&x->head, x->lim);
    if (x->lim && x->charged)
        limits_release(x->lim, x->charged);
    x->charged = 0;
    x->easy = NULL;
    x->headers = x->headers_tail = NULL;
    x->url = NULL;
    x->lp = NULL;
}
