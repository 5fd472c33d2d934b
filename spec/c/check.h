/* The CHECK macro of the C unit tests: counts passed and failed checks, prints each failure
 * with its line. A test's main ends with `return failed ? 1 : 0;`. */
#ifndef ECAP_SPEC_CHECK_H
#define ECAP_SPEC_CHECK_H

#include <stdio.h>

static int passed, failed;

#define CHECK(cond)                                                                       \
    do {                                                                                  \
        if (cond) {                                                                       \
            passed++;                                                                     \
        } else {                                                                          \
            failed++;                                                                     \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);      \
        }                                                                                 \
    } while (0)

#endif
