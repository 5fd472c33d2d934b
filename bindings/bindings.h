/* The EnergyCAP operations bound as Lua functions: routes and body rules as data
 * (bindings/routes.c), one validator (bindings/validate.c), one destructive-operation guard
 * (bindings/guard.c), one call path (net/call.h). */
#ifndef ECAP_BINDINGS_H
#define ECAP_BINDINGS_H

#include <stddef.h>
#include <lua.h>

#define ROUTES_MAX 32        /* operations the table can hold */
#define ROUTE_PATH_MAX 256   /* longest path template */
#define ROUTE_METHOD_MAX 8   /* "DELETE" and its NUL, with room */

enum route_provenance {
    ROUTE_CONFIRMED, /* method and path shown by the published reference */
    ROUTE_INFERRED,  /* our inference: the reference page lacks its method/path line */
    ROUTE_CONFIG,    /* overridden by the config file */
};

/* A route override from the config file: `route.<name> = METHOD /api/...` at origin. */
struct route_override {
    const char *name;   /* "meter_groups.refresh" */
    const char *spec;   /* "POST /api/v3/meterGroup/{meterGroupId}/updateUserAutoGroup" */
    const char *origin; /* "file:line" */
};

/* The routes of one run: the built-in table with the overrides applied. A value: copy it,
 * keep it as long as the run. */
struct routes {
    int n;
    struct route_now {
        char method[ROUTE_METHOD_MAX];
        char path[ROUTE_PATH_MAX];
        enum route_provenance provenance;
        char origin[160];   /* "file:line" of the override, or "" */
    } r[ROUTES_MAX];
};

/* Fills rt with the built-in routes, then applies the overrides (each checked: known name,
 * method, path under /api/ with the seed's placeholders). Returns 0, or -1 with a message
 * in err that starts with the override's origin. */
int routes_init(struct routes *rt, const struct route_override *ov, int n, char *err,
                size_t errlen);

/* What is needed to let a run's destructive calls through (bindings/guard.c). */
struct consent {
    int allow_destructive; /* --allow-destructive */
};

/* The file-store upload (ecap.files.upload): the multipart shape is our inference, so its
 * part name and size cap are settings (config keys upload.part_name, upload.max_mb). */
#define UPLOAD_PART_DEFAULT "file"
#define UPLOAD_MAX_MB_DEFAULT 50
struct upload_options {
    const char *part_name;   /* NULL = UPLOAD_PART_DEFAULT */
    long long max_bytes;     /* 0 = UPLOAD_MAX_MB_DEFAULT MB */
};

struct loop;

/* What the bindings of one run work with; outlives the Lua state. */
struct bindings_env {
    struct loop *loop;
    const struct routes *routes;
    const struct consent *consent;
    const struct upload_options *upload; /* NULL = the defaults */
};

/* Adds the binding sub-tables (meter_groups, account_meters, cost_avoidance, meters) and
 * their functions to the table at ecap_idx; env must outlive the state. */
void bindings_register(lua_State *L, int ecap_idx, const struct bindings_env *env);

/* ecap.request's way out: when method and path of c match a guarded route of env (after
 * overrides, as the server routes paths) and its raw query and body make the call destructive,
 * the run must consent (guard.c: --allow-destructive or a yes at the terminal's prompt; no
 * confirm word: ecap.request has no options for it). Then sends c. Use as `return ...`: it
 * may yield. */
struct call;
int bindings_request(lua_State *L, const struct bindings_env *env, const struct call *c);

/* The run's preview hook (the function at idx, from host/run/lua/ecap.lua): called as
 * hook(mode, operation, route, method, path, template, body, query, what) where mode is
 * "preview" (--dry-run: returns the text printed under the DRY-RUN line, or nil) or "ask"
 * (returns when the operator said yes, raises when not). */
void bindings_set_preview_hook(lua_State *L, int idx);

/* Route listing for `ecaphost routes` and help: the i-th route (0 <= i < bindings_count())
 * of rt. Returns 0, or -1 past the end. */
struct route_info {
    const char *name, *method, *path, *description, *origin;
    enum route_provenance provenance;
};
int bindings_count(void);
int bindings_route_info(const struct routes *rt, int i, struct route_info *out);
const char *bindings_provenance_name(enum route_provenance p);

#endif
