/* `ecaphost routes`: the binding table as a person or a program reads it. */
#ifndef ECAP_CLI_ROUTES_H
#define ECAP_CLI_ROUTES_H

#include "bindings/bindings.h"

/* Prints rt on stdout, as aligned text or (json) one JSON array. Returns 0 or -1. */
int routes_print(const struct routes *rt, int json);

#endif
