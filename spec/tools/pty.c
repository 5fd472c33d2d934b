/* pty: drives a program through a pseudo-terminal for the REPL specs (a tiny `expect`).
 *
 *   pty STEPS CMD [ARGS...]
 *
 * STEPS is a file of lines, run in order:
 *   send TEXT      write TEXT to the terminal (escapes: \n \r \t \\ \xHH; \x03 is Ctrl-C)
 *   expect TEXT    wait (10 s at most) until the output since the last match holds TEXT
 *   sleep S        wait S seconds (reading output meanwhile)
 * Then it waits for the program to end (10 s at most). The whole output goes to stdout; the exit
 * code is the program's (128+N for a signal), or 124 after a timeout (the reason on stderr). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TIMEOUT_S 10.0

static char *out;
static size_t out_len, out_cap, matched; /* output so far; where the next expect looks from */
static int master = -1;
static pid_t child;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fail(const char *what, const char *text)
{
    fwrite(out, 1, out_len, stdout);
    fprintf(stderr, "pty: %s%s\n", what, text);
    if (child > 0)
        kill(child, SIGKILL);
    exit(124);
}

/* Reads what the program wrote within ms milliseconds; returns -1 once it has closed. */
static int pump(int ms)
{
    struct pollfd p = {master, POLLIN, 0};
    char buf[4096];
    ssize_t n;
    if (poll(&p, 1, ms) <= 0)
        return 0;
    n = read(master, buf, sizeof buf);
    if (n <= 0)
        return -1;
    if (out_len + (size_t)n + 1 > out_cap) {
        out_cap = (out_len + (size_t)n + 1) * 2;
        if (!(out = realloc(out, out_cap)))
            fail("out of memory", "");
    }
    memcpy(out + out_len, buf, (size_t)n);
    out_len += (size_t)n;
    out[out_len] = 0;
    return 1;
}

static size_t unescape(char *s)
{
    size_t o = 0;
    for (size_t i = 0; s[i]; i++) {
        if (s[i] != '\\' || !s[i + 1]) {
            s[o++] = s[i];
            continue;
        }
        switch (s[++i]) {
        case 'n': s[o++] = '\n'; break;
        case 'r': s[o++] = '\r'; break;
        case 't': s[o++] = '\t'; break;
        case 'x': {
            char hex[3] = {s[i + 1], s[i + 1] ? s[i + 2] : 0, 0};
            s[o++] = (char)strtol(hex, NULL, 16);
            i += 2;
            break;
        }
        default: s[o++] = s[i];
        }
    }
    s[o] = 0;
    return o;
}

static void expect(const char *text)
{
    double end = now() + TIMEOUT_S;
    char *hit;
    while (!(out && (hit = strstr(out + matched, text)))) {
        if (now() > end || pump(50) < 0)
            fail("no match for: ", text);
    }
    matched = (size_t)(hit - out) + strlen(text);
}

static void run_steps(FILE *f)
{
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        size_t n = strlen(line);
        if (n && line[n - 1] == '\n')
            line[--n] = 0;
        if (strncmp(line, "send ", 5) == 0) {
            size_t len = unescape(line + 5);
            pump(0);
            if (write(master, line + 5, len) != (ssize_t)len)
                fail("cannot write to the terminal", "");
        } else if (strncmp(line, "expect ", 7) == 0) {
            unescape(line + 7);
            expect(line + 7);
        } else if (strncmp(line, "sleep ", 6) == 0) {
            double end = now() + atof(line + 6);
            while (now() < end && pump(20) >= 0) {
            }
        } else if (n) {
            fail("bad step: ", line);
        }
    }
}

int main(int argc, char **argv)
{
    struct winsize ws = {24, 80, 0, 0};
    FILE *steps;
    int status;
    double end;
    if (argc < 3 || !(steps = fopen(argv[1], "r"))) {
        fprintf(stderr, "usage: pty STEPS CMD [ARGS...]\n");
        return 2;
    }
    if ((master = posix_openpt(O_RDWR | O_NOCTTY)) < 0 || grantpt(master) || unlockpt(master)) {
        perror("pty");
        return 2;
    }
    ioctl(master, TIOCSWINSZ, &ws);
    if ((child = fork()) == 0) {
        int slave;
        setsid();
        if ((slave = open(ptsname(master), O_RDWR)) < 0) /* becomes the controlling terminal */
            _exit(127);
        dup2(slave, 0);
        dup2(slave, 1);
        dup2(slave, 2);
        close(slave);
        close(master);
        if (!getenv("TERM"))
            setenv("TERM", "xterm", 1);
        execvp(argv[2], argv + 2);
        _exit(127);
    }
    run_steps(steps);
    end = now() + TIMEOUT_S;
    for (;;) {
        pid_t w = waitpid(child, &status, WNOHANG);
        if (w == child)
            break;
        if (now() > end)
            fail("the program did not end", "");
        if (pump(50) < 0)
            poll(NULL, 0, 10); /* closed: it is exiting */
    }
    while (pump(0) > 0) {
    }
    fwrite(out ? out : "", 1, out_len, stdout);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
