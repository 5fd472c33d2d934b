/* Exit codes of ecaphost: documented in --help and the README; the scheduler and cron jobs
 * read them, so they are stable. */
#ifndef ECAP_EXIT_CODES_H
#define ECAP_EXIT_CODES_H

enum exit_code {
    EXIT_OK = 0,
    EXIT_SCRIPT = 1,
    EXIT_USAGE = 2,
    EXIT_CONFIG = 3,
    EXIT_TIME_LIMIT = 4,
    EXIT_MEMORY_LIMIT = 5,
    EXIT_UNKNOWN_OUTCOME = 6, /* a mutating call may or may not have been done */
    EXIT_SIGINT = 130,
    EXIT_SIGTERM = 143,
};

#endif
