/* The one path every API call takes: ecap.request and all bindings end here.
 *
 * ecap_call builds the URL (base URL + path + URL-encoded query), encodes the body, adds the
 * headers (the key is added in C, in host/net/http.c), starts the transfer on the event loop and
 * either yields the calling coroutine to the loop or, where the caller cannot yield, drives
 * the loop itself until this transfer is done. The results are the decoded body (nil for
 * 204) and {status=, headers=} with lower-case header names; a non-2xx reply, a network
 * failure or a timeout raises an error table (host/lib/errors.h).
 *
 * Must be used as `return ecap_call(L, &c);` from a lua_CFunction: it may yield. */
#ifndef ECAP_CALL_H
#define ECAP_CALL_H

#include <lua.h>

/* A multipart/form-data upload of one file (instead of a JSON body). */
struct call_file {
    int handle;         /* stack index of what owns fd (kept alive with the transfer), 0 = none */
    int fd;
    long long size;
    const char *part;   /* the part's name */
    const char *name;   /* the file name sent in the part */
    const char *type;   /* the part's Content-Type */
};

struct call {
    const char *operation; /* the binding's Lua name, or NULL for ecap.request */
    const char *method; /* "GET", "POST", "PUT", "DELETE", "PATCH" */
    const char *path;   /* must start with /api/; copied before any yield */
    int query;          /* stack index of a table of query parameters, or 0 */
    int body;           /* stack index of the body value (encoded as JSON), or 0 */
    int headers;        /* stack index of a table of extra headers, or 0 */
    struct call_file file; /* a file upload (POST, no body), when file.handle != 0 */
    const char *preview;   /* --dry-run: what the call would change, printed under its line */
    int read_only;         /* a POST that only reads (a count): retried, sent under --dry-run
                            * and not journaled, as a GET is */
};

struct loop;

/* Sends c on the loop lp (the run's). */
int ecap_call(lua_State *L, struct loop *lp, const struct call *c);

/* Why a path may not be used (must start with /api/, no dot segments, no '//', no query,
 * nothing a server might normalise away), or NULL when it is fine. */
const char *call_path_problem(const char *path);

/* Appends the URL-encoded form of s to a luaL_Buffer-free C string builder; exposed for the
 * bindings' path building. Returns the number of bytes written (excluding NUL), or -1 when
 * out is too small. */
int url_escape(const char *s, size_t len, char *out, size_t outlen);

#endif
