/* assign.h - the replicated table of which node pulls each agent.
 *
 * One row per agent: its name, the node that owns it (pulls it, node/agentpull.h) and the
 * raft index of the entry that made the assignment. The table is part of the state machine
 * (node/fsm.h): it changes only when an op is applied, in log order on every replica, and
 * travels in snapshots, so every replica names the same owner for an agent at the same
 * applied index, and there is at most one owner at any time.
 *
 * Ops are the payload of LBW_ENTRY_ASSIGN entries (raft/batch.h), signed by the node that led
 * when it proposed them (the state machine verifies that). Every op is a compare-and-set: it
 * names the index of the assignment it replaces (0: the agent has no row), and an op whose
 * expectation no longer holds - a leader that was deposed meanwhile, a duplicate - changes
 * nothing (stale).
 *
 * Op format, version 1 (integers big-endian), nothing after:
 *   u8  version                  1
 *   u8  op                       1 ASSIGN, 2 RELEASE
 *   u8  agent name length, name  (lbw_identity_name_valid)
 *   u64 expect                   index of the row's assignment it replaces, 0: no row
 *   u64 node                     ASSIGN: the new owner (1..2^63-1); RELEASE: 0
 *
 * Serialisation (in snapshots), version 1, nothing after:
 *   u8  version                  1
 *   u32 nrows                    at most LBW_ASSIGN_MAX
 *   per row, names strictly ascending (bytewise):
 *       u8 name length, name, u64 node (>= 1), u64 index (>= 1)
 *
 * Everything from the network is untrusted: decoding and restoring are bounds-checked and a
 * refused input changes nothing. Loop thread only.
 */
#ifndef LBW_ASSIGN_H
#define LBW_ASSIGN_H

#include <stddef.h>
#include <stdint.h>

#include "raft/identity.h"

#define LBW_ASSIGN_MAX 256                          /* rows (agents) at most */
#define LBW_ASSIGN_OP_MAX (3 + LBW_NAME_MAX + 16)   /* bytes of an encoded op at most */
#define LBW_ASSIGN_VERSION 1

enum lbw_assign_op_type { LBW_ASSIGN_SET = 1, LBW_ASSIGN_RELEASE = 2 };

struct lbw_assign_op {
    enum lbw_assign_op_type type;
    char agent[LBW_NAME_MAX];
    uint64_t expect;            /* the index of the assignment it replaces; 0: none */
    uint64_t node;              /* SET: the new owner; RELEASE: 0 */
};

struct lbw_assignment {
    char agent[LBW_NAME_MAX];
    uint64_t node;
    uint64_t index;             /* raft index of the op that made it */
};

enum lbw_assign_result {
    LBW_ASSIGN_OK,
    LBW_ASSIGN_STALE,           /* the expectation did not hold: nothing changed */
    LBW_ASSIGN_INVALID,         /* does not decode, or the table is full */
    LBW_ASSIGN_RESULTS
};
const char *lbw_assign_result_name(enum lbw_assign_result r);  /* "ok", "stale", "invalid" */

struct lbw_assign;

struct lbw_assign *lbw_assign_new(void);
void lbw_assign_free(struct lbw_assign *t);

/* Encodes op into out (outlen bytes). Returns its length, or -1 if op is not valid. */
long lbw_assign_op_encode(const struct lbw_assign_op *op, uint8_t *out, size_t outlen);

/* Decodes an op (untrusted). Returns 0, or -1 if it is not exactly one valid op. */
int lbw_assign_op_decode(const uint8_t *p, size_t len, struct lbw_assign_op *out);

/* Applies the op in payload as the entry at index (greater than every index applied before).
 * *op gets what was decoded (zeroed if nothing). */
enum lbw_assign_result lbw_assign_apply(struct lbw_assign *t, uint64_t index,
                                        const uint8_t *payload, size_t len,
                                        struct lbw_assign_op *op);

/* The row of agent, or NULL. Valid until the table next changes. */
const struct lbw_assignment *lbw_assign_find(const struct lbw_assign *t, const char *agent);

/* Every row, by name. Valid until the table next changes. */
const struct lbw_assignment *lbw_assign_rows(const struct lbw_assign *t, size_t *n);

/* The table as described above, into *out (malloc'd). Returns 0, or -1 without memory. */
int lbw_assign_serialize(const struct lbw_assign *t, uint8_t **out, size_t *len);

/* Replaces the table with a serialised one (untrusted). Returns 0, -1 if malformed or -2
 * without memory (the table is then unchanged). */
int lbw_assign_restore(struct lbw_assign *t, const uint8_t *p, size_t len);

/* Makes the table empty (a snapshot of a version that had none). */
void lbw_assign_clear(struct lbw_assign *t);

#endif
