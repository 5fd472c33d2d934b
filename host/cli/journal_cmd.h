/* `ecaphost journal FILE [--json]`: a journal's summary (see journal_cmd.c). */
#ifndef ECAP_CLI_JOURNAL_CMD_H
#define ECAP_CLI_JOURNAL_CMD_H

/* Runs the command on argv[i..argc). Returns the exit code: 0 no unknown call, 1 some,
 * 2 usage, 3 unreadable or malformed journal. */
int journal_command(int argc, char **argv, int i);

#endif
