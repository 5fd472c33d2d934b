/* Cron expressions, `every` durations and next run times (see cron.h for the zone choice). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cron.h"
#include "lib/civil.h"

#define DAY 86400LL

struct field {
    const char *name;
    int lo, hi;
    const char *const *names; /* names for lo, lo+1, ... (or NULL) */
};

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                           "jul", "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const dow_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const struct field fields[5] = {
    {"minute", 0, 59, NULL},
    {"hour", 0, 23, NULL},
    {"day-of-month", 1, 31, NULL},
    {"month", 1, 12, month_names},
    {"day-of-week", 0, 7, dow_names}, /* 7 is Sunday too */
};

/* One number or name at *p; advances *p. Returns 0 or -1 with err. */
static int parse_value(const struct field *f, const char **p, int *out, char *err, size_t errlen)
{
    const char *s = *p;
    if (isdigit((unsigned char)*s)) {
        long v = 0;
        while (isdigit((unsigned char)*s)) {
            if (v < 100000)
                v = v * 10 + (*s - '0');
            s++;
        }
        if (v < f->lo || v > f->hi) {
            snprintf(err, errlen, "cron %s field: %.*s out of range %d-%d", f->name, (int)(s - *p), *p, f->lo,
                     f->hi);
            return -1;
        }
        *out = (int)v;
        *p = s;
        return 0;
    }
    if (f->names && isalpha((unsigned char)s[0]) && isalpha((unsigned char)s[1]) && isalpha((unsigned char)s[2])
        && !isalpha((unsigned char)s[3])) {
        for (int i = 0; f->names[i]; i++)
            if (strncasecmp(s, f->names[i], 3) == 0) {
                *out = f->lo + i;
                *p = s + 3;
                return 0;
            }
    }
    snprintf(err, errlen, "cron %s field: unexpected '%.*s'%s", f->name, (int)strcspn(s, ",-/"), s,
             f->names == month_names ? " (a number 1-12 or jan..dec)"
             : f->names == dow_names ? " (a number 0-7 or sun..sat)" : "");
    return -1;
}

/* One comma-separated item: *, N, N-M, each optionally /STEP (N/STEP means N-max/STEP). */
static int parse_item(const struct field *f, const char *s, uint64_t *bits, char *err, size_t errlen)
{
    int a = f->lo, b = f->hi, step = 1;
    if (*s == '*') {
        s++;
    } else {
        if (parse_value(f, &s, &a, err, errlen))
            return -1;
        b = a;
        if (*s == '-') {
            s++;
            if (parse_value(f, &s, &b, err, errlen))
                return -1;
            if (b < a) {
                snprintf(err, errlen, "cron %s field: range %d-%d is backwards", f->name, a, b);
                return -1;
            }
        } else if (*s == '/') {
            b = f->hi;
        }
    }
    if (*s == '/') {
        long v = 0;
        s++;
        if (!isdigit((unsigned char)*s)) {
            snprintf(err, errlen, "cron %s field: a step needs a number after '/'", f->name);
            return -1;
        }
        while (isdigit((unsigned char)*s)) {
            if (v < 100000)
                v = v * 10 + (*s - '0');
            s++;
        }
        if (v < 1 || v > f->hi) {
            snprintf(err, errlen, "cron %s field: step %ld out of range 1-%d", f->name, v, f->hi);
            return -1;
        }
        step = (int)v;
    }
    if (*s) {
        snprintf(err, errlen, "cron %s field: unexpected '%s'", f->name, s);
        return -1;
    }
    for (int v = a; v <= b; v += step)
        *bits |= (uint64_t)1 << v;
    return 0;
}

static int parse_field(const struct field *f, char *text, uint64_t *bits, char *err, size_t errlen)
{
    char *save = NULL, *item;
    *bits = 0;
    if (text[0] == ',' || text[strlen(text) - 1] == ',' || strstr(text, ",,")) {
        snprintf(err, errlen, "cron %s field: empty list item in '%s'", f->name, text);
        return -1;
    }
    for (item = strtok_r(text, ",", &save); item; item = strtok_r(NULL, ",", &save))
        if (parse_item(f, item, bits, err, errlen))
            return -1;
    return 0;
}

static const struct { const char *name, *expr; } shortcuts[] = {
    {"@hourly", "0 * * * *"},  {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
    {"@weekly", "0 0 * * 0"},  {"@monthly", "0 0 1 * *"}, {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
};

int cron_parse(const char *expr, struct cron *c, char *err, size_t errlen)
{
    char buf[256], *tok[6], *save = NULL;
    uint64_t bits[5];
    int n = 0;
    while (isspace((unsigned char)*expr))
        expr++;
    if (*expr == '@') {
        size_t len = strcspn(expr, " \t");
        for (size_t i = 0; i < sizeof shortcuts / sizeof shortcuts[0]; i++)
            if (strlen(shortcuts[i].name) == len && strncmp(expr, shortcuts[i].name, len) == 0
                && expr[len + strspn(expr + len, " \t")] == 0)
                return cron_parse(shortcuts[i].expr, c, err, errlen);
        snprintf(err, errlen, "cron: unknown shortcut '%s' (@hourly, @daily, @weekly, @monthly, @yearly)", expr);
        return -1;
    }
    if (strlen(expr) >= sizeof buf) {
        snprintf(err, errlen, "cron: expression too long");
        return -1;
    }
    strcpy(buf, expr);
    for (char *t = strtok_r(buf, " \t", &save); t && n < 6; t = strtok_r(NULL, " \t", &save))
        tok[n++] = t;
    if (n != 5) {
        snprintf(err, errlen, "cron: expected 5 fields (minute hour day-of-month month day-of-week), got %s%d",
                 n > 5 ? "more than " : "", n > 5 ? 5 : n);
        return -1;
    }
    memset(c, 0, sizeof *c);
    c->dom_any = tok[2][0] == '*';
    c->dow_any = tok[4][0] == '*';
    for (int i = 0; i < 5; i++)
        if (parse_field(&fields[i], tok[i], &bits[i], err, errlen))
            return -1;
    c->minute = bits[0];
    c->hour = (uint32_t)bits[1];
    c->dom = (uint32_t)bits[2];
    c->month = (uint32_t)bits[3];
    c->dow = (uint32_t)(bits[4] & 0x7f) | (uint32_t)((bits[4] >> 7) & 1); /* 7 -> Sunday */
    return 0;
}

int every_parse(const char *s, long *secs, char *err, size_t errlen)
{
    static const char units[] = "dhms";
    static const long scale[] = {86400, 3600, 60, 1};
    const char *p = s;
    int last = -1;
    long total = 0;
    if (!*p)
        goto bad;
    while (*p) {
        long v = 0;
        const char *u;
        if (!isdigit((unsigned char)*p))
            goto bad;
        while (isdigit((unsigned char)*p)) {
            if (v > 1000000)
                goto bad;
            v = v * 10 + (*p++ - '0');
        }
        if (!*p || !(u = strchr(units, *p)) || u - units <= last)
            goto bad;
        last = (int)(u - units);
        total += v * scale[last];
        if (total > 366L * 86400)
            goto bad;
        p++;
    }
    if (total <= 0)
        goto bad;
    *secs = total;
    return 0;
bad:
    snprintf(err, errlen, "every '%s': expected a duration such as 30s, 15m, 1h30m or 1d (at most 366d)", s);
    return -1;
}

int cron_check_zone(const char *tz, char *err, size_t errlen)
{
    const char *dir = getenv("TZDIR");
    char path[4096];
    struct stat st;
    if (!*tz || tz[0] == '/' || strstr(tz, "..") || strspn(tz, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                              "0123456789/_+-.") != strlen(tz)) {
        snprintf(err, errlen, "tz '%s' is not an IANA zone name (e.g. America/New_York)", tz);
        return -1;
    }
    if (!dir || !*dir)
        dir = "/usr/share/zoneinfo";
    snprintf(path, sizeof path, "%s/%s", dir, tz);
    if (stat(path, &st) || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "tz '%s': no such zone in %s", tz, dir);
        return -1;
    }
    return 0;
}

/* ---- civil time arithmetic (proleptic Gregorian, no zone) --------------------------------- */


struct civil {
    long long y;
    int m, d, hh, mm, dow;
};

static void civil_from_secs(long long w, struct civil *c)
{
    long long z = (w >= 0 ? w : w - (DAY - 1)) / DAY, secs = w - z * DAY, era, doe, yoe, doy, mp;
    c->dow = (int)((z % 7 + 11) % 7); /* 1970-01-01 was a Thursday */
    c->hh = (int)(secs / 3600);
    c->mm = (int)(secs % 3600 / 60);
    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    c->d = (int)(doy - (153 * mp + 2) / 5 + 1);
    c->m = (int)(mp < 10 ? mp + 3 : mp - 9);
    c->y = yoe + era * 400 + (c->m <= 2);
}

time_t cron_utc(int year, int month, int day, int hour, int min, int sec)
{
    return (time_t)(days_from_civil(year, month, day) * DAY + hour * 3600LL + min * 60LL + sec);
}

/* Wall-clock time of instant t in the current zone, as seconds of a zone-less calendar. */
static long long wall(time_t t)
{
    struct tm tm;
    localtime_r(&t, &tm);
    return days_from_civil(tm.tm_year + 1900LL, tm.tm_mon + 1, tm.tm_mday) * DAY + tm.tm_hour * 3600LL
           + tm.tm_min * 60 + tm.tm_sec;
}

/* The first instant whose wall-clock time is w; in a spring gap, the instant of the change. */
static time_t first_instant(long long w)
{
    long long o1 = wall((time_t)(w - DAY)) - (w - DAY), o2 = wall((time_t)(w + DAY)) - (w + DAY);
    long long ta = w - o1, tb = w - o2, best = -1, lo, hi;
    if (wall((time_t)ta) == w)
        best = ta;
    if (wall((time_t)tb) == w && (best < 0 || tb < best))
        best = tb;
    if (best >= 0)
        return (time_t)best;
    if (o1 == o2)
        return (time_t)ta; /* not expected: two changes within a day */
    lo = ta < tb ? ta : tb;  /* wall(lo) < w <= wall(hi) across the gap */
    hi = ta < tb ? tb : ta;
    while (hi - lo > 1) {
        long long mid = lo + (hi - lo) / 2;
        if (wall((time_t)mid) >= w)
            hi = mid;
        else
            lo = mid;
    }
    return (time_t)hi;
}

static int bit(uint64_t set, int n)
{
    return (int)((set >> n) & 1);
}

static time_t next_in_current_zone(const struct cron *c, time_t after)
{
    long long w = wall(after), limit;
    w = (w >= 0 ? w / 60 : (w - 59) / 60) * 60 + 60;
    limit = w + 8 * 366 * DAY;
    while (w < limit) {
        struct civil cv;
        long long day;
        int dom_ok, dow_ok;
        civil_from_secs(w, &cv);
        day = days_from_civil(cv.y, cv.m, cv.d);
        if (!bit(c->month, cv.m)) {
            w = (cv.m == 12 ? days_from_civil(cv.y + 1, 1, 1) : days_from_civil(cv.y, cv.m + 1, 1)) * DAY;
            continue;
        }
        dom_ok = bit(c->dom, cv.d);
        dow_ok = bit(c->dow, cv.dow);
        if (!(c->dom_any || c->dow_any ? dom_ok && dow_ok : dom_ok || dow_ok)) {
            w = (day + 1) * DAY;
            continue;
        }
        if (!bit(c->hour, cv.hh)) {
            w = day * DAY + (cv.hh + 1) * 3600LL;
            continue;
        }
        if (bit(c->minute, cv.mm)) {
            time_t t = first_instant(w);
            if (t > after)
                return t;
        }
        w += 60;
    }
    return (time_t)-1;
}

/* Sets TZ to tz (":" + name) for a computation; *saved gets the old value to restore. */
static int zone_enter(const char *tz, char **saved, int *had)
{
    const char *old = getenv("TZ");
    char name[512];
    *had = old != NULL;
    *saved = old ? strdup(old) : NULL;
    if (old && !*saved)
        return -1;
    snprintf(name, sizeof name, ":%s", tz);
    setenv("TZ", name, 1);
    tzset();
    return 0;
}

static void zone_leave(char *saved, int had)
{
    if (had)
        setenv("TZ", saved, 1);
    else
        unsetenv("TZ");
    free(saved);
    tzset();
}

time_t cron_next(const struct cron *c, const char *tz, time_t after)
{
    char *saved;
    int had;
    time_t t;
    if (!tz)
        return next_in_current_zone(c, after);
    if (zone_enter(tz, &saved, &had))
        return (time_t)-1;
    t = next_in_current_zone(c, after);
    zone_leave(saved, had);
    return t;
}

void cron_format_local(time_t t, const char *tz, char *buf, size_t len)
{
    struct tm tm;
    char *saved = NULL;
    int had = 0, entered = tz && zone_enter(tz, &saved, &had) == 0;
    long long off;
    localtime_r(&t, &tm);
    off = (wall(t) - (long long)t) / 60;
    snprintf(buf, len, "%04d-%02d-%02d %02d:%02d %c%02lld%02lld", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, off < 0 ? '-' : '+', (off < 0 ? -off : off) / 60, (off < 0 ? -off : off) % 60);
    if (entered)
        zone_leave(saved, had);
}
