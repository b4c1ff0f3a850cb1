/* side.h - the side channel between cluster nodes, beside raft's own streams.
 *
 * Every node keeps one outgoing mutual-TLS link (raft/transport.h, channel 'F') to every other
 * member and answers on the links others open to it. On a link flow length-prefixed frames:
 *
 *   u32 length (of type + body) | u8 type | body
 *   HELLO   u8 name length, name, u8 web URL length, web URL      (first frame each way)
 *   PING    u64 sender's clock (ms)                               (every second, outgoing)
 *   PONG    the PING's body echoed
 *   SUBMIT  an entry for the leader to propose                    (follower -> leader)
 *
 * Any frame from a peer counts as contact, so every node knows which members it can reach
 * and when it last heard from each, and learns their web URLs. Peer identities come from the
 * verified certificates of the links, never from frame contents. Frames over 8 MiB, unknown
 * types and malformed bodies close the link.
 */
#ifndef LBW_SIDE_H
#define LBW_SIDE_H

#include <stddef.h>
#include <stdint.h>
#include <raft.h>
#include <uv.h>

#include "probes/tlsio.h"
#include "raft/identity.h"

#define LBW_SIDE_FRAME_MAX (8u << 20)
#define LBW_URL_MAX 256

struct lbw_side;

struct lbw_side_config {
    uv_loop_t *loop;
    struct raft_uv_transport *transport;    /* dials links (lbw_transport_dial_side) */
    const char *web_url;                    /* ours, sent in HELLO */
    void *arg;
    /* An entry arrived in a SUBMIT from a verified peer. The leader proposes it. */
    void (*on_submit)(void *arg, uint64_t from_id, const uint8_t *entry, size_t len);
};

int lbw_side_new(struct lbw_side **out, const struct lbw_side_config *cfg);

/* The members to keep links to (this node is skipped if listed). Links to members no longer
 * listed are closed. Addresses are "a.b.c.d:port" raft addresses. */
struct lbw_side_member {
    uint64_t id;
    const char *address;
};
void lbw_side_set_members(struct lbw_side *s, const struct lbw_side_member *m, size_t n);

/* Hands over an accepted side-channel session (from the transport's on_side_channel). */
void lbw_side_accept(struct lbw_side *s, struct lbw_tlsio *io, const struct lbw_identity *peer);

/* Sends an entry to node id for it to propose. Returns 0 if queued on an open link, -1 if
 * there is no open link to id or the link has more than 32 MiB waiting. */
int lbw_side_submit(struct lbw_side *s, uint64_t id, const uint8_t *entry, size_t len);

struct lbw_side_peer {
    uint64_t id;
    char name[LBW_NAME_MAX];    /* from its certificate */
    char web[LBW_URL_MAX];      /* from its HELLO, "" until heard */
    int link_up;                /* our outgoing link is open */
    uint64_t last_rx;           /* uv_now() of the last frame from it on any link, 0 = never */
    int64_t last_rx_wall_ms;    /* the same as wall-clock ms, 0 = never */
};

/* What this node knows of peer id. Returns 1 if known, else 0. */
int lbw_side_peer(const struct lbw_side *s, uint64_t id, struct lbw_side_peer *out);

struct lbw_side_stats {
    uint64_t frames_in, frames_out;
    uint64_t submits_in, submits_out;
    uint64_t links_opened, links_closed, bad_frames;
};
void lbw_side_stats(const struct lbw_side *s, struct lbw_side_stats *out);

/* Closes every link and frees once all have closed; cb (may be NULL) then runs. */
void lbw_side_close(struct lbw_side *s, void (*cb)(void *arg), void *arg);

#endif
