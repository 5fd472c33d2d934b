/* Calendar arithmetic shared by the date rules (bindings/date.c) and the cron scheduler
 * (host/sched/cron.c): proleptic Gregorian, no time zone. */
#ifndef ECAP_CIVIL_H
#define ECAP_CIVIL_H

/* Days since 1970-01-01 of year y, month m (1..12), day d (H. Hinnant's days_from_civil). */
long long days_from_civil(long long y, int m, int d);

#endif
