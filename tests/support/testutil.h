/* testutil.h - helpers for tests that run real servers: free loopback ports, child processes,
 * waiting for a port, temp dirs. Every child is put in its own process group and stopped by
 * tu_stop(); tu_stop_all() at the end of a suite kills whatever is left. */
#ifndef LBW_TESTUTIL_H
#define LBW_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* A TCP port on 127.0.0.1 that was free a moment ago. */
uint16_t tu_free_port(void);

/* Starts argv (argv[0] is looked up in PATH) with stdin from /dev/null and stdout+stderr
 * appended to logfile (or /dev/null when NULL). Returns the pid, or -1. */
pid_t tu_spawn(char *const argv[], const char *logfile);

/* Waits until a TCP connect to 127.0.0.1:port succeeds. Returns 0, or -1 after timeout_ms. */
int tu_wait_port(uint16_t port, int timeout_ms);

/* SIGTERM, then SIGKILL after 2 s; reaps the child. Returns its wait status. */
int tu_stop(pid_t pid);
void tu_stop_all(void);

/* Runs argv to completion, capturing up to outlen-1 bytes of stdout into out (may be NULL).
 * Returns the exit status, or -1. */
int tu_run(char *const argv[], char *out, size_t outlen);

/* mkdtemp under $TMPDIR or /tmp with the given prefix; the path is written into out. */
int tu_tmpdir(const char *prefix, char *out, size_t outlen);
void tu_rmrf(const char *path);

/* Writes len bytes to path (0600). Returns 0 or -1. */
int tu_write_file(const char *path, const void *data, size_t len);

#endif
