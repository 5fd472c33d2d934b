/* What a run's call path remembers across calls: the mutating calls whose outcome is unknown
 * (exit code 6 and the end-of-run list), the operations already warned about as deprecated,
 * the dry-run's counts, and the back-off's random sequence. One per loop. */
#ifndef ECAP_LEDGER_H
#define ECAP_LEDGER_H

#include <stddef.h>

struct ledger;

struct ledger *ledger_new(void);
void ledger_free(struct ledger *lg);

/* Records a mutating call of unknown outcome ("operation METHOD path"). -1: out of memory. */
int ledger_note_unknown(struct ledger *lg, const char *operation, const char *method,
                        const char *path);
size_t ledger_unknown_count(const struct ledger *lg);
const char *ledger_unknown(const struct ledger *lg, size_t i);

/* 1 the first time an operation is seen deprecated in this run, else 0. */
int ledger_first_deprecation(struct ledger *lg, const char *operation);

/* Counts one dry-run call of operation; the summary "N calls (op: n, ...)" into out. */
int ledger_count_dry(struct ledger *lg, const char *operation);
size_t ledger_dry_total(const struct ledger *lg);
void ledger_dry_summary(const struct ledger *lg, char *out, size_t outlen);

/* The call journal of the run and the journal a --resume reads (each NULL when not asked for):
 * owned by the ledger from here on (closed and freed with it). */
struct journal;
struct journal_index;
void ledger_set_journal(struct ledger *lg, struct journal *j, struct journal_index *resume,
                        const char *run_id);
struct journal *ledger_journal(const struct ledger *lg);
struct journal_index *ledger_resume(const struct ledger *lg);
const char *ledger_run_id(const struct ledger *lg);
/* The journal's run line (JSON text), kept to begin a file reopened after logrotate.
 * -1: out of memory. */
int ledger_set_run_line(struct ledger *lg, const char *line, size_t len);
const char *ledger_run_line(const struct ledger *lg, size_t *len);
/* The next sequence number of a journaled call in this run (1, 2, ...). */
long long ledger_next_seq(struct ledger *lg);
/* Calls answered from the resumed journal (skipped as done). */
void ledger_count_skipped(struct ledger *lg);
size_t ledger_skipped(const struct ledger *lg);

/* The back-off's random state, seeded per run. */
unsigned *ledger_seed(struct ledger *lg);

#endif
