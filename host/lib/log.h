/* The process's log lines on stderr, in one format: text (the default), or with
 * --log-format json one JSON object per line:
 *
 *   {"level":"INFO","msg":"...","run_id":"...","time":"2026-12-02T16:40:05.123Z"}
 *
 * (keys sorted; `job` and `run_id` when known, and a line's own fields, e.g. the trace's). The
 * message and every text field are escaped as in a text line (text_escape: control characters
 * as \n, \xNN, ...), so a JSON line never carries terminal controls and is always valid UTF-8. log.* lines
 * (libs.h's log_write) follow the format; so do the host's own messages (log_host). */
#ifndef ECAP_LOG_H
#define ECAP_LOG_H

#include <stddef.h>

enum log_format { LOG_TEXT, LOG_JSON };

/* "text" -> LOG_TEXT, "json" -> LOG_JSON, anything else -1. */
int log_format_parse(const char *name);

/* Sets the process's format. Returns 0, or -1 when out of memory (the format stays text). */
int log_set_format(enum log_format f);
int log_is_json(void);

/* `job` and `run_id` of every JSON line from here on (copied; NULL: none). log_offer_run_id
 * sets run_id only when none is set (the call journal's id, unless the scheduler gave one). */
void log_set_context(const char *job, const char *run_id);
void log_offer_run_id(const char *run_id);

/* A field of one JSON line besides time, level and msg: text s, or (s NULL) the number n. */
struct log_field {
    const char *key;
    const char *s;
    double n;
};

/* Under LOG_JSON writes one JSON line (msg escaped; fields added) and returns 0; returns 1 in
 * text mode and -1 when the line cannot be encoded: the caller then writes its text line. */
int log_json(const char *level, const char *msg, size_t len, const struct log_field *fields, int n_fields);

/* A message of the host's own (not a log.* line): in text "ecaphost: <message>" as it always
 * was (log_plain: the message alone), under LOG_JSON a line of the given level. */
void log_host(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_plain(const char *level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The current UTC time as "2026-12-02T16:40:05.123Z" (milliseconds). */
void log_time_ms(char *buf, size_t len);

#endif
