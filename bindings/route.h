/* The route table: Lua name -> method, path template, path parameters, body schema, options
 * (query parameters), the destructive-operation guard, a description and where the route comes
 * from. Internal to bindings/ and its tests and fuzzers; the host sees bindings.h. */
#ifndef ECAP_ROUTE_H
#define ECAP_ROUTE_H

#include <lua.h>

#include "bindings.h"
#include "net/call.h"
#include "schema.h"

#define ROUTE_MAX_PARAMS 4

/* A destructive call: judged on what would be sent (the validated body copy at body and the
 * query table at query, 0 when absent). When the call is destructive, check pushes the
 * offending value and returns a short description of what it does ("deleteBills=true deletes
 * whole bills, other meters' lines included"); otherwise it pushes nothing and returns NULL.
 * Written for the binding's copies and for ecap.request's raw arguments alike. */
struct route_guard {
    const char *field;   /* the field blamed in the error: "deleteBills", "filters" */
    const char *confirm; /* the word opts.confirm must hold: "delete bills" */
    const char *(*check)(lua_State *L, int body, int query);
};

struct route {
    const char *name;                      /* Lua name "<area>.<function>" */
    const char *method;                    /* built-in route (an override replaces both) */
    const char *path;                      /* "/api/v3/meter/{meterId}/..." */
    const char *params[ROUTE_MAX_PARAMS];  /* path parameters = the leading Lua arguments */
    const struct schema *body;             /* next argument, or NULL for no body */
    const struct field *body_value;        /* or: a body that is not an object (a list) */
    unsigned char file;                    /* or: a file path, sent as a multipart upload */
    const struct schema *options;          /* optional last argument, or NULL */
    const struct route_guard *guard;       /* destructive calls need consent, or NULL */
    unsigned char reads;                   /* a POST that only reads: treated as a GET (call.h) */
    unsigned char preview;                 /* dry-run and the consent prompt say what it would
                                            * change (the run's preview hook, guard.c) */
    const char *description;               /* one line, for `ecaphost routes` and help */
    enum route_provenance provenance;      /* of the built-in method and path */
};

/* The built-in table (bindings/routes.c). */
extern const struct route route_table[];
extern const int route_count;

/* Index of the route named name, or -1. */
int route_find(const char *name);

/* Checks the arguments of a call of route i (at stack indices 1..top), pushes what the request
 * needs (path string, body copy, query table) and fills c to point at them. Raises a
 * validation error on any violation (the guard included), before anything is sent. Returns
 * the guard's finding when the call still needs the run's consent (guard_binding), or NULL. */
const char *route_prepare(lua_State *L, const struct bindings_env *env, int i, struct call *c);

/* The one destructive-operation guard (bindings/guard.c). guard_binding: a call of route r
 * with the validated copies (body, query, opts: stack indices or 0) raises a validation error
 * (rule "guard") when r's guard finds it destructive and neither opts.confirm holds the guard's
 * word nor the run consents; returns what the call does when it is destructive and still
 * needs the run's consent (a prompt), else NULL. guard_request: the same judgement for
 * ecap.request's raw body and query, which cannot confirm: never raises. */
const char *guard_binding(lua_State *L, const struct consent *consent, const struct route *r,
                          int body, int query, int opts);
const char *guard_request(lua_State *L, const struct consent *consent, const struct route *r,
                          int body, int query);

/* The one way a bound call leaves (bindings and ecap.request): r is its route (NULL for an
 * ecap.request that matches no guarded route), tmpl the run's path template of r, what the
 * guard's finding that still needs the run's consent (or NULL). Under --dry-run, a route with a
 * preview gets the hook's text under its DRY-RUN line; a call needing consent is refused with a
 * validation error (rule "consent") unless stdin and stderr are terminals, where the hook shows
 * the preview and asks. Use as `return guard_send(...)`: it may yield. */
int guard_send(lua_State *L, struct loop *lp, const struct route *r, const char *tmpl,
               const char *what, const struct call *c);

/* ecap.files.upload (bindings/files.c): opens the granted file named by the validated path at
 * path_idx, checks it (a regular, non-empty file within the size cap, a name safe in a
 * header) and fills f; its handle is pushed and stays on the stack. */
void upload_prepare(lua_State *L, const struct upload_options *up, const char *operation,
                    int path_idx, int opts_idx, struct call_file *f);

/* The guards of the area files. */
extern const struct route_guard guard_delete_bills;
extern const struct route_guard guard_all_meters;

#endif
