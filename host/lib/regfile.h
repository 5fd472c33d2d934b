/* Opening a file the host reads whole (a script, a module, a config file): regular files only,
 * so that a FIFO or a device can never make the host wait outside every limit. */
#ifndef ECAP_REGFILE_H
#define ECAP_REGFILE_H

#include <stdio.h>

/* Opens path for reading when it is a regular file. Returns NULL with errno set when it cannot
 * be opened, or with errno 0 when it is something else (a FIFO, a device, a directory). Opened
 * with O_NONBLOCK and checked with fstat: it never waits for a FIFO's writer, and what is
 * checked is what is read. */
FILE *regfile_open(const char *path);

/* Why regfile_open failed, given its errno: strerror's text or "not a regular file". */
const char *regfile_why(int err);

#endif
