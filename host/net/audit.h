/* The safety layer's record of mutating calls, on the one call path (net/call.c): the call
 * journal (--journal: an intent before the request leaves, an outcome after), --resume (a call
 * the journal records as done is answered from it, not sent again) and --dry-run (a mutating
 * call is printed, not sent). Bindings and ecap.request know nothing of it. */
#ifndef ECAP_AUDIT_H
#define ECAP_AUDIT_H

#include <stddef.h>
#include <lua.h>

#include "retry.h"

struct loop;

/* Opens the run's journal (opts->journal_path) and the journal to resume from
 * (opts->resume_path, refused when written against another base URL), writes the run line
 * (script, args, base URL) and hands both to the loop's ledger. Returns 0, or -1 with err. */
int audit_start(lua_State *L, struct loop *lp, const char *script, int argc, char **argv, char *err,
                size_t errlen);

/* What the audit knows of one mutating call. */
struct audit_call {
    long long seq;                    /* its intent's number in the journal; 0 = not journaled */
    char identity[40];
};

/* Before a mutating call leaves. body: the value index of the JSON body (0 none), body_text
 * its encoded text; upload_fd >= 0 for an upload (its name and size). Returns
 *   0: send it (a->seq > 0 when its intent was queued in the journal),
 *   1: answered from the resumed journal: pushes the journaled reply (and the outcome line
 *      "skipped" is queued);
 * raises when the journal says its outcome is unknown (unless --resend-unknown). */
int audit_before(lua_State *L, struct loop *lp, struct audit_call *a, const char *operation,
                 const char *method, const char *path, const char *query, int body,
                 const char *body_text, size_t body_len, int upload_fd, const char *upload_name,
                 long long upload_size);

/* After the call: its outcome line (the reply's value at value, 0 none; or the error text). */
void audit_after(lua_State *L, struct loop *lp, const struct audit_call *a, enum call_outcome o,
                 long status, int attempts, double duration, int value, const char *error);

/* --dry-run of a mutating call: prints "DRY-RUN <operation> <METHOD> <URL>" and the body
 * (pretty JSON, sorted keys) and each line of preview (or NULL) as "preview: <line>" to
 * stdout, counts it, and pushes what the call returns instead:
 * {dry_run=true, operation=, method=, path=, body=}, or for an upload the string
 * "dry-run:upload:<file name>". [-0, +1] */
void audit_dry_run(lua_State *L, struct loop *lp, const char *operation, const char *method,
                   const char *url, const char *path, int body, const char *upload_name,
                   long long upload_size, const char *preview);

#endif
