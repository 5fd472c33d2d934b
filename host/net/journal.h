/* The call journal (--journal FILE): one JSON line per event of a mutating call, so that a
 * crash, a kill -9 or a network failure leaves a record of exactly what was sent, and a run can
 * be resumed without sending again what is done.
 *
 * Lines (UTF-8 JSON objects, one per line, keys sorted; a torn last line is tolerated by every
 * reader, and so is a torn line right before a run line: a crashed run's end, see journal_open):
 *   {"type":"run", "run":ID, "time":UTC, "script":PATH, "args":[...], "base_url":URL, "version":V}
 *   {"type":"intent", "run":ID, "seq":N, "time":UTC, "operation":"meters.apply_release",
 *    "method":"POST", "path":"/api/...", "query":"a=1&b=2" (the URL's query, sorted; "" none),
 *    "body":<the JSON sent, as a value> or null, "upload":{"name","size","crc32"} or null,
 *    "identity":HEX}
 *   {"type":"outcome", "run":ID, "seq":N, "time":UTC, "outcome":"ok"|"failed"|"unknown"|
 *    "not sent"|"skipped", "status":HTTP status or null, "attempts":N, "duration":seconds,
 *    "response":<the decoded reply> or null, "error":TEXT or null}
 * The intent is written and fsync'd before the request leaves; the outcome after. An intent
 * without an outcome is a call whose fate is unknown. Never the API key, never a file's bytes.
 *
 * Identity of a call (for --resume): operation, method, path, query and body (an upload: file
 * name, size and crc32) -- journal_identity() -- plus its occurrence number in the run: the
 * third identical call of a run matches the third journaled one. */
#ifndef ECAP_JOURNAL_H
#define ECAP_JOURNAL_H

#include <stddef.h>

struct journal;

/* Opens (creating with mode 0600, else appending) the journal at path. Returns NULL with a
 * message in err; refuses what is not a regular file, and an existing file writable by group
 * or others (anyone could forge an "ok" that --resume trusts). When the file ends with a torn
 * line (a crash), a newline is queued to end it (journal_pending is then true): the first
 * record a writer appends must be its run line, since readers skip an undecodable line only
 * at the end or right before a run line. */
struct journal *journal_open(const char *path, char *err, size_t errlen);

/* A warning for the caller to show after journal_open or journal_reopen (an existing file
 * readable by group or others: used, since logrotate's `create 0640` is common), or NULL. */
const char *journal_warning(const struct journal *j);

/* Queues one line (a JSON object without its newline). Nothing is written until
 * journal_sync. Returns 0, or -1 with errno: ENOMEM, or EINVAL when line holds a newline. */
int journal_append(struct journal *j, const char *line, size_t len);

/* Writes every queued line and fdatasyncs once (group commit: the intents of every call
 * started in one turn of the event loop share one fsync). Returns 0 (at once when nothing is
 * queued), or -1 with errno; what was not written stays queued. */
int journal_sync(struct journal *j);

/* Whether lines are queued and not yet synced. */
int journal_pending(const struct journal *j);

/* Reopens the path (after logrotate moved the file: SIGHUP). What is queued is synced to the
 * old file first. Returns 0, or -1 with errno (the old file stays in use). */
int journal_reopen(struct journal *j);

/* Syncs and closes; NULL is fine. A failing sync is not reported: call journal_sync first
 * to know. */
void journal_close(struct journal *j);

/* The identity of a call as a hex string (into out, JOURNAL_ID_LEN bytes): FNV-1a 128 of
 * operation, method, path, query and body text, NUL-separated (a NULL field hashes as "";
 * body NULL = no body; an upload passes as body the JSON text of its "upload" object). */
#define JOURNAL_ID_LEN 33
void journal_identity(const char *operation, const char *method, const char *path,
                      const char *query, const char *body, size_t body_len, char *out);

/* ---- reading (--resume, `ecaphost journal`) ---------------------------------------------- */

enum journal_outcome { J_NONE = 0 /* no outcome line: unknown */, J_OK, J_FAILED, J_UNKNOWN,
                       J_NOT_SENT, J_SKIPPED };

/* The outcome as written in the journal ("ok", "not sent", ...; J_NONE is "unknown"). */
const char *journal_outcome_name(enum journal_outcome o);

/* One journaled call: its intent and outcome. Strings owned by the index; time and query may
 * be NULL. */
struct journal_call {
    const char *run, *time, *operation, *method, *path, *query, *identity;
    long long seq;
    enum journal_outcome outcome;   /* J_NONE: no outcome line */
    const char *response;           /* JSON text of the reply, or NULL */
    size_t line;                    /* the intent's line number */
};

struct journal_index;

/* Reads a journal for --resume: every intent with its outcome (paired by run and seq; an
 * outcome before its intent is malformed), grouped by identity in file order. base_url: the
 * journal's first run line must name it (a journal written against another host is refused);
 * NULL: not checked (`ecaphost journal`). Returns NULL with a message in err (naming the line
 * of a malformed record; a torn last line is skipped). A journal must start with a run line.
 *
 * A journal can hold several runs (a resumed run appends): the k-th call of an identity in
 * each run is its k-th occurrence, and what the occurrences of all runs came to is merged in
 * file order: "ok" or "skipped" in any run makes it J_OK (done, with that reply: a skipped
 * call's outcome must carry the reply it returned); "not sent" does not hide an earlier
 * attempt; otherwise the latest attempt's outcome counts. */
struct journal_index *journal_index_load(const char *path, const char *base_url, char *err,
                                         size_t errlen);

/* The next journaled call of this identity (its occurrence in the new run = how many times it
 * was taken before, plus one). Returns 0 and fills *outcome and *response (the JSON text of
 * the reply as journaled, NUL-terminated, owned by the index; "null" when none), or -1 when
 * the journal has no further call of that identity. */
int journal_index_take(struct journal_index *idx, const char *identity,
                       enum journal_outcome *outcome, const char **response);

/* Every call of the journal in the order of their intents (i < journal_index_count), and how
 * many run lines it holds: for `ecaphost journal`. */
size_t journal_index_count(const struct journal_index *idx);
const struct journal_call *journal_index_call(const struct journal_index *idx, size_t i);
size_t journal_index_runs(const struct journal_index *idx);

void journal_index_free(struct journal_index *idx);

#endif
