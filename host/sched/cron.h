/* Schedules of `ecaphost schedule`: the 5-field cron expression (and @hourly..@monthly), the
 * `every` duration, and the next run time of a cron expression in an IANA zone.
 *
 * Zones: the C library knows one zone at a time (TZ). cron_next sets TZ to the job's zone,
 * calls tzset, computes with localtime_r, and puts the previous TZ back. This mutates
 * process-global state, which is safe here because the scheduler process is single-threaded
 * and never runs a script itself; reading the system's zoneinfo (TZif) ourselves would be a
 * second, less tested copy of what glibc already does well.
 *
 * Daylight-saving changes follow cron: every wall-clock time that matches runs once. A time
 * skipped in spring (02:30 when clocks jump 02:00 -> 03:00) runs once at the change (03:00);
 * a time repeated in autumn runs once, at its first occurrence. */
#ifndef ECAP_CRON_H
#define ECAP_CRON_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct cron {
    uint64_t minute;  /* bit n: minute n (0-59) */
    uint32_t hour;    /* 0-23 */
    uint32_t dom;     /* 1-31 */
    uint32_t month;   /* 1-12 */
    uint32_t dow;     /* 0-6, Sunday = 0 (7 is accepted as Sunday) */
    int dom_any, dow_any; /* field was '*': when both are restricted, either matches */
};

/* Parses "m h dom mon dow" or @hourly/@daily/@midnight/@weekly/@monthly/@yearly/@annually.
 * Returns 0, or -1 with a message such as "cron minute field: 75 out of range 0-59". */
int cron_parse(const char *expr, struct cron *c, char *err, size_t errlen);

/* Parses an `every` duration: "30s", "15m", "1h30m", "2d", "90" (seconds). Returns 0 and the
 * seconds in *secs (> 0), or -1 with a message. */
int every_parse(const char *s, long *secs, char *err, size_t errlen);

/* Checks that tz names a zone of the system's zoneinfo ($TZDIR, else /usr/share/zoneinfo).
 * Returns 0, or -1 with a message. */
int cron_check_zone(const char *tz, char *err, size_t errlen);

/* The first time after `after` at which c matches, in zone tz (NULL: local time), or
 * (time_t)-1 when it matches no date within eight years (e.g. "0 0 31 2 *"). */
time_t cron_next(const struct cron *c, const char *tz, time_t after);

/* The instant of a UTC calendar time (month 1-12), without the C library's zone. */
time_t cron_utc(int year, int month, int day, int hour, int min, int sec);

/* Writes t as wall-clock time in zone tz (NULL: local) "2026-03-08 03:00 -0400". */
void cron_format_local(time_t t, const char *tz, char *buf, size_t len);

#endif
