/* fuzz_sockdiag.c - libFuzzer target for the NETLINK_SOCK_DIAG reply parser. Input: two
 * big-endian ports to watch, then the bytes of one recvmsg (sequence number 1 is ours). Any
 * input must parse without a memory error; the tally must stay consistent (a port's states
 * never add up to more than the socket messages received, quantiles within [min, max]) and
 * emit only canonical series keys. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "probes/sockdiag.h"

static void check_sample(void *arg, const char *key, int64_t ts_ms, double value)
{
    struct lbw_key_parsed k;
    (void)arg;
    (void)ts_ms;
    (void)value;
    if (lbw_key_parse(key, strlen(key), &k) != 0)
        abort();
}

static void check_port(const struct lbw_sockdiag_tally *t, const struct lbw_sockdiag_port *p)
{
    uint64_t states = 0;
    for (size_t s = 0; s < LBW_SOCKDIAG_STATES; s++)
        states += p->states[s];
    if (states > t->sockets || p->rtt_count > states || p->listeners > states)
        abort();
    if (p->rtt_count == 0)
        return;
    static const double qs[] = {0.01, 0.5, 0.9, 0.99, 1};
    for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
        double q = lbw_sockdiag_rtt_quantile(p, qs[i]);
        if (!(q >= p->rtt_min && q <= p->rtt_max))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct lbw_sockdiag_tally t;
    static const struct lbw_label base[] = {{"vantage", "fuzz"}};
    struct lbw_emitter e = {check_sample, NULL, base, 1, 0};
    if (size < 4)
        return 0;
    uint16_t ports[2] = {(uint16_t)(data[0] << 8 | data[1]), (uint16_t)(data[2] << 8 | data[3])};
    unsigned char *msg = malloc(size - 4 ? size - 4 : 1);
    if (!msg)
        return 0;
    memcpy(msg, data + 4, size - 4);
    lbw_sockdiag_tally_init(&t, ports, ports[0] == ports[1] ? 1 : 2, 1);
    int r = lbw_sockdiag_parse(&t, msg, size - 4);
    if (r == 1 && !t.done)
        abort();
    for (size_t i = 0; i < t.nports; i++)
        check_port(&t, &t.ports[i]);
    lbw_sockdiag_emit(&t, &e);
    free(msg);
    return 0;
}
