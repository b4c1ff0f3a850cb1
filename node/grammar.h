/* grammar.h - the value grammars of configuration files (node and agent): durations, sizes,
 * host:port and host names. Pure functions over strings; docs/configuration.md ("Value
 * types") is the user's view of them.
 */
#ifndef LBW_GRAMMAR_H
#define LBW_GRAMMAR_H

#include <stddef.h>
#include <stdint.h>

/* Parses a duration: an integer followed by ms, s, m, h, d or w, optionally repeated
 * ("1h30m"). Returns 0 and milliseconds, or -1. */
int lbw_parse_duration(const char *s, uint64_t *ms);

/* Parses a size: an integer with an optional B, KiB, MiB, GiB, TiB (or K, M, G, T) suffix. */
int lbw_parse_size(const char *s, uint64_t *bytes);

/* Writes ms the way lbw_parse_duration reads it, largest units first ("1h30m", "100ms",
 * "400d"; weeks are shown as days). Returns buf. */
char *lbw_format_duration(uint64_t ms, char *buf, size_t len);

/* Writes bytes in the largest binary unit that divides it exactly ("16MiB", "1000B").
 * Returns buf. */
char *lbw_format_size(uint64_t bytes, char *buf, size_t len);

/* Parses "host:port" or "[v6]:port" into a newly allocated host and a port 1-65535.
 * Returns 0, or -1 with a reason in err. */
int lbw_parse_hostport(const char *s, char **host, uint16_t *port, char *err, size_t errlen);

/* 1 when h is an IPv4 address in dotted-quad form, resp. an IPv6 address (no brackets). */
int lbw_host_is_ipv4(const char *h);
int lbw_host_is_ipv6(const char *h);

/* 1 when h is a DNS name: labels of letters, digits, '-' and '_', 1-63 long, not starting or
 * ending with '-', 253 characters at most. */
int lbw_host_is_dns_name(const char *h);

#endif
