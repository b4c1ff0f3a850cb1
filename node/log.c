/* log.c - levelled logging to stderr. See log.h. */
#include "node/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum lbw_log_level current = LBW_LOG_INFO;
static const char *const names[] = {"debug", "info", "warn", "error"};

void lbw_log_set_level(enum lbw_log_level level) { current = level; }
enum lbw_log_level lbw_log_get_level(void) { return current; }

int lbw_log_parse_level(const char *s, enum lbw_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum lbw_log_level)i;
            return 0;
        }
    }
    return -1;
}

void lbw_log(enum lbw_log_level level, const char *component, const char *fmt, ...)
{
    char line[1024], stamp[32];
    struct timespec ts;
    struct tm tm;
    va_list ap;

    if (level < current)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    /* one fprintf per line so concurrent threads do not interleave within a line */
    fprintf(stderr, "%s.%03ldZ %-5s [%s] %s\n", stamp, ts.tv_nsec / 1000000, names[level],
            component, line);
}
