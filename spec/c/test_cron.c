/* The cron parser, `every` durations and next run times: tables of expressions with their
 * answers, the exact messages of bad fields, and the daylight-saving changes of two zones
 * (America/New_York and Europe/Berlin, 2026) answered as cron does. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sched/cron.h"

static int passed, failed;

#define CHECK(cond, ...)                                                                  \
    do {                                                                                  \
        if (cond) {                                                                       \
            passed++;                                                                     \
        } else {                                                                          \
            failed++;                                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);      \
            fprintf(stderr, __VA_ARGS__);                                                 \
            fputc('\n', stderr);                                                          \
        }                                                                                 \
    } while (0)

/* "2026-03-08T07:00:00Z" -> time_t (the test runs with TZ=UTC, so mktime is timegm). */
static time_t utc(const char *iso)
{
    struct tm tm = {0};
    if (sscanf(iso, "%d-%d-%dT%d:%d:%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
               &tm.tm_sec) != 6) {
        fprintf(stderr, "bad test time %s\n", iso);
        exit(2);
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return mktime(&tm);
}

static void iso(time_t t, char *buf, size_t len)
{
    struct tm tm;
    if (t == (time_t)-1) {
        snprintf(buf, len, "never");
        return;
    }
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const struct next_case {
    const char *expr, *tz, *after, *want;
} next_cases[] = {
    {"0 2 * * *", NULL, "2026-12-02T16:00:00Z", "2026-12-03T02:00:00Z"},
    {"* * * * *", NULL, "2026-12-02T16:00:30Z", "2026-12-02T16:01:00Z"},
    {"15,45 9-17/4 * jan,Dec mon-fri", NULL, "2026-12-02T16:00:00Z", "2026-12-02T17:15:00Z"},
    {"15,45 9-17/4 * jan,Dec mon-fri", NULL, "2026-12-31T17:45:00Z", "2027-01-01T09:15:00Z"},
    {"0 0 1 * mon", NULL, "2026-12-02T00:00:00Z", "2026-12-07T00:00:00Z"}, /* dom OR dow */
    {"0 0 * * 7", NULL, "2026-12-02T00:00:00Z", "2026-12-06T00:00:00Z"},   /* 7 = Sunday */
    {"0 0 1 * *", NULL, "2026-12-02T00:00:00Z", "2027-01-01T00:00:00Z"},
    {"@monthly", NULL, "2026-12-02T00:00:00Z", "2027-01-01T00:00:00Z"},
    {"@weekly", NULL, "2026-12-02T00:00:00Z", "2026-12-06T00:00:00Z"},
    {"@daily", NULL, "2026-12-02T00:00:00Z", "2026-12-03T00:00:00Z"},
    {"@hourly", NULL, "2026-12-02T00:59:59Z", "2026-12-02T01:00:00Z"},
    {"30/10 * * * *", NULL, "2026-12-02T00:55:00Z", "2026-12-02T01:30:00Z"},
    {"0 0 29 2 *", NULL, "2026-03-01T00:00:00Z", "2028-02-29T00:00:00Z"},
    {"0 0 31 2 *", NULL, "2026-03-01T00:00:00Z", "never"},
    {"0 2 * * *", "UTC", "2026-12-02T16:00:00Z", "2026-12-03T02:00:00Z"},
    /* New York, spring: 02:00 EST -> 03:00 EDT on 2026-03-08 (07:00Z). 02:30 does not exist
     * that day: it runs once, at the change; the day after at 02:30 EDT. */
    {"30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", "2026-03-08T07:00:00Z"},
    {"30 2 * * *", "America/New_York", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"},
    {"0 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", "2026-03-08T07:00:00Z"},
    {"*/15 2 * * *", "America/New_York", "2026-03-08T07:00:00Z", "2026-03-09T06:00:00Z"},
    {"0 3 * * *", "America/New_York", "2026-03-07T12:00:00Z", "2026-03-08T07:00:00Z"},
    /* New York, autumn: 02:00 EDT -> 01:00 EST on 2026-11-01 (06:00Z). 01:30 happens twice:
     * it runs once (the first time, EDT); the next run is the day after. */
    {"30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", "2026-11-01T05:30:00Z"},
    {"30 1 * * *", "America/New_York", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"},
    {"*/30 * * * *", "America/New_York", "2026-11-01T05:30:00Z", "2026-11-01T07:00:00Z"},
    {"0 2 * * *", "America/New_York", "2026-10-31T12:00:00Z", "2026-11-01T07:00:00Z"},
    /* Berlin, spring: 02:00 CET -> 03:00 CEST on 2026-03-29 (01:00Z). */
    {"30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z"},
    {"30 2 * * *", "Europe/Berlin", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"},
    /* Berlin, autumn: 03:00 CEST -> 02:00 CET on 2026-10-25 (01:00Z). */
    {"30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", "2026-10-25T00:30:00Z"},
    {"30 2 * * *", "Europe/Berlin", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"},
    {"0 9 * * mon-fri", "Europe/Berlin", "2026-12-04T09:00:00Z", "2026-12-07T08:00:00Z"},
};

static const struct bad_case {
    const char *expr, *msg;
} bad_cases[] = {
    {"75 * * * *", "cron minute field: 75 out of range 0-59"},
    {"* 24 * * *", "cron hour field: 24 out of range 0-23"},
    {"* * 0 * *", "cron day-of-month field: 0 out of range 1-31"},
    {"* * * 13 *", "cron month field: 13 out of range 1-12"},
    {"* * * * 8", "cron day-of-week field: 8 out of range 0-7"},
    {"* * * foo *", "cron month field: unexpected 'foo' (a number 1-12 or jan..dec)"},
    {"* * * * monday", "cron day-of-week field: unexpected 'monday' (a number 0-7 or sun..sat)"},
    {"5-3 * * * *", "cron minute field: range 5-3 is backwards"},
    {"*/0 * * * *", "cron minute field: step 0 out of range 1-59"},
    {"*/ * * * *", "cron minute field: a step needs a number after '/'"},
    {"1,,2 * * * *", "cron minute field: empty list item in '1,,2'"},
    {"1x * * * *", "cron minute field: unexpected 'x'"},
    {"* * * *", "cron: expected 5 fields (minute hour day-of-month month day-of-week), got 4"},
    {"* * * * * *", "cron: expected 5 fields (minute hour day-of-month month day-of-week), got more than 5"},
    {"", "cron: expected 5 fields (minute hour day-of-month month day-of-week), got 0"},
    {"@often", "cron: unknown shortcut '@often' (@hourly, @daily, @weekly, @monthly, @yearly)"},
    {"99999999999 * * * *", "cron minute field: 99999999999 out of range 0-59"},
};

static const struct every_case {
    const char *text;
    long secs; /* 0: refused */
} every_cases[] = {
    {"30s", 30}, {"15m", 900}, {"1h30m", 5400}, {"2d", 172800}, {"1d2h3m4s", 93784}, {"1s", 1},
    {"366d", 366L * 86400}, {"", 0}, {"90", 0}, {"1m1h", 0}, {"0s", 0}, {"1.5h", 0}, {"m", 0},
    {"1h1h", 0}, {"367d", 0}, {" 1s", 0}, {"1s ", 0}, {"-1s", 0},
};

int main(void)
{
    char err[256], got[64];
    struct cron c;
    setenv("TZ", "UTC", 1);
    tzset();
    for (size_t i = 0; i < sizeof next_cases / sizeof next_cases[0]; i++) {
        const struct next_case *k = &next_cases[i];
        if (cron_parse(k->expr, &c, err, sizeof err)) {
            CHECK(0, "%s: %s", k->expr, err);
            continue;
        }
        iso(cron_next(&c, k->tz, utc(k->after)), got, sizeof got);
        CHECK(strcmp(got, k->want) == 0, "'%s' in %s after %s: want %s, got %s", k->expr,
              k->tz ? k->tz : "UTC", k->after, k->want, got);
    }
    /* The zone is put back after each computation. */
    CHECK(strcmp(getenv("TZ"), "UTC") == 0, "TZ is %s", getenv("TZ"));
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        err[0] = 0;
        CHECK(cron_parse(bad_cases[i].expr, &c, err, sizeof err) == -1 && strcmp(err, bad_cases[i].msg) == 0,
              "'%s': want \"%s\", got \"%s\"", bad_cases[i].expr, bad_cases[i].msg, err);
    }
    for (size_t i = 0; i < sizeof every_cases / sizeof every_cases[0]; i++) {
        long secs = 0;
        int rc = every_parse(every_cases[i].text, &secs, err, sizeof err);
        CHECK(every_cases[i].secs ? rc == 0 && secs == every_cases[i].secs : rc == -1,
              "every '%s': rc %d secs %ld", every_cases[i].text, rc, secs);
    }
    CHECK(every_parse("90", &(long){0}, err, sizeof err) == -1
              && strcmp(err, "every '90': expected a duration such as 30s, 15m, 1h30m or 1d (at most 366d)") == 0,
          "%s", err);
    CHECK(cron_check_zone("America/New_York", err, sizeof err) == 0, "%s", err);
    CHECK(cron_check_zone("Mars/Olympus", err, sizeof err) == -1 && strstr(err, "tz 'Mars/Olympus': no such zone in "),
          "%s", err);
    CHECK(cron_check_zone("../../etc/passwd", err, sizeof err) == -1 && strstr(err, "is not an IANA zone name"),
          "%s", err);
    cron_format_local(utc("2026-03-08T07:00:00Z"), "America/New_York", got, sizeof got);
    CHECK(strcmp(got, "2026-03-08 03:00 -0400") == 0, "%s", got);
    cron_format_local(utc("2026-03-08T06:59:00Z"), "America/New_York", got, sizeof got);
    CHECK(strcmp(got, "2026-03-08 01:59 -0500") == 0, "%s", got);
    printf("test_cron: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
