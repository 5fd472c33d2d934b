/* The one parser of numbers, durations and rates (lib/duration.c) used by every numeric flag
 * and config key of the host and the simulator: what it accepts, what it means, and that NaN,
 * infinities, signs, exponents and hex never get through. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "lib/duration.h"

static int near(double a, double b)
{
    return fabs(a - b) <= 1e-9 * (fabs(b) > 1 ? fabs(b) : 1);
}

static const struct {
    const char *text;
    double seconds;
} good_durations[] = {
    {"30", 30},       {"0.05", 0.05}, {"50", 50},     {".5", 0.5},        {"5.", 5},
    {"0", 0},         {"50ms", 0.05}, {"0.05s", 0.05}, {"1m", 60},        {"2min", 120},
    {"2h", 7200},     {"1h30m", 5400}, {"1h30m15s", 5415}, {"1m500ms", 60.5}, {"1.5h", 5400},
    {"0ms", 0},       {"1h0.5s", 3600.5},
};

/* NaN, infinities, negatives, exponents, hex, whitespace, unknown or repeated units, units
 * out of order, a number without a unit after a unit. */
static const char *const bad_durations[] = {
    "",      "nan",   "NaN",   "-nan",  "inf",    "-inf",    "Infinity", "+1",
    "-1",    "-0.5s", "1e3",   "1e999", "0x10",   "0x1p3",   " 1",       "1 ",
    "1 s",   "s",     "ms",    ".",     "1.2.3",  "1d",      "1sec",     "1mm",
    "1s1s",  "1m1h",  "1s30m", "1m2min", "1h30",  "1h-5m",   "1hnan",    "1h.s",
    "99999999999999999999999999999999999999999999999999999999999999999999", /* > 64 chars */
};

static const struct {
    const char *text;
    double per_s;
} good_rates[] = {
    {"20", 20}, {"20/s", 20}, {"20/sec", 20}, {"600/m", 10}, {"600/min", 10}, {"0.5", 0.5}, {"0", 0},
};

static const char *const bad_rates[] = {
    "", "nan", "inf", "-1", "1e3", "20/h", "20/", "/s", "20 /s", "nan/s", "inf/min", "0x10",
};

static void test_durations(void)
{
    for (size_t i = 0; i < sizeof good_durations / sizeof good_durations[0]; i++) {
        double v = -1;
        int rc = duration_parse(good_durations[i].text, &v);
        CHECK(rc == 0);
        CHECK(near(v, good_durations[i].seconds));
        if (rc != 0 || !near(v, good_durations[i].seconds))
            fprintf(stderr, "  duration '%s' -> rc %d, %g\n", good_durations[i].text, rc, v);
    }
    for (size_t i = 0; i < sizeof bad_durations / sizeof bad_durations[0]; i++) {
        double v = 12345;
        int rc = duration_parse(bad_durations[i], &v);
        CHECK(rc == -1);
        CHECK(v == 12345); /* nothing written on failure */
        if (rc != -1)
            fprintf(stderr, "  duration '%s' accepted as %g\n", bad_durations[i], v);
    }
}

static void test_rates(void)
{
    for (size_t i = 0; i < sizeof good_rates / sizeof good_rates[0]; i++) {
        double v = -1;
        CHECK(rate_parse(good_rates[i].text, &v) == 0);
        CHECK(near(v, good_rates[i].per_s));
    }
    for (size_t i = 0; i < sizeof bad_rates / sizeof bad_rates[0]; i++) {
        double v = 0;
        int rc = rate_parse(bad_rates[i], &v);
        CHECK(rc == -1);
        if (rc != -1)
            fprintf(stderr, "  rate '%s' accepted as %g\n", bad_rates[i], v);
    }
}

static void test_decimals(void)
{
    const char *end = NULL;
    double v = 0;
    CHECK(decimal_parse("12abc", &v, &end) == 0 && v == 12 && strcmp(end, "abc") == 0);
    CHECK(decimal_parse_all("1048576", &v) == 0 && v == 1048576);
    CHECK(decimal_parse_all("0.25", &v) == 0 && v == 0.25);
    CHECK(decimal_parse_all("12abc", &v) == -1);
    CHECK(decimal_parse_all("nan", &v) == -1);
    CHECK(decimal_parse_all("inf", &v) == -1);
    CHECK(decimal_parse_all("-3", &v) == -1);
    CHECK(decimal_parse_all("", &v) == -1);
}

int main(void)
{
    test_durations();
    test_rates();
    test_decimals();
    printf("test_duration: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
