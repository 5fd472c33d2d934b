/* One run: the settings the command line gives it (run_options, filled by cli/) and the record
 * of the run itself (struct host), made by the runner and passed explicitly to what needs it
 * (the ecap functions and the sandbox's require hold it as an upvalue). */
#ifndef ECAP_HOST_H
#define ECAP_HOST_H

#include <stddef.h>

#include "bindings/bindings.h"
#include "lib/embedded.h"
#include "lib/libs.h"
#include "net/options.h"

#define RUN_MAX_LIB_DIRS 16

/* The run layer's embedded Lua helpers (run/lua/), see lib/embedded.h. */
extern const struct embedded_file embedded_run[];

struct run_options {
    struct net_options net;
    struct fs_grants fs;
    struct consent consent;
    const struct routes *routes;    /* built-in routes with the config's overrides */
    struct upload_options upload;   /* ecap.files.upload's part name and size cap */
    size_t max_memory;              /* bytes; 0 = unlimited */
    double timeout_s;               /* wall clock for the run; 0 = none */
    const char *const *lib_dirs;    /* require() also looks here */
    int n_lib_dirs;
    int quiet;                      /* no banner, progress or log.info */
    int simulator;                  /* talking to the built-in simulator */
    const char *environment;        /* --environment name, or NULL (ecap.config) */
    const char *config_path;        /* config file read, or NULL (ecap.config) */
};

struct loop;

struct host {
    const struct run_options *opts;
    struct loop *loop;
    struct bindings_env bindings;   /* the loop, routes and consent, for the bindings */
    const char *script_dir;         /* directory of the main script (require), or NULL */
};

#endif
