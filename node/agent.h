/* agent.h - `lbwatch agent -c agent.yaml` (or `lbwatch-agent -c agent.yaml`): the process on a
 * load-balancer host.
 *
 * On one libuv loop, every interval it runs its collectors (node/collector.h) through an
 * emitter whose base labels are vantage=<agent name> and probe=<collector name>, with one
 * timestamp per round, adds lbwatch_collector_success{probe=<collector>} (1 or 0) for each,
 * signs the round's samples as one batch with the agent's key (raft/batch.h: origin kind
 * agent, id 0, the agent's name) under the next origin sequence number, and keeps it in a
 * bounded buffer (node/agentbuf.h). Nodes of the cluster pull the buffer over mutual TLS
 * (node/agentserve.h, node/agentproto.h) and propose the batches to raft; every replica
 * verifies them (node/fsm.h), so the agent needs no state on disk and trusts no node with
 * its data.
 *
 * Sequence numbers: the wall clock in ms times 1024 plus a counter, and never below the
 * previous one plus 1 within a run (lbw_agent_next_seq), so they keep increasing across
 * restarts without a file, as long as the clock does not go back across a restart (up to 1024
 * batches per ms).
 *
 * SIGINT/SIGTERM stop it in order (exit 0). Exit 2 for bad usage or configuration (errors are
 * FILE:LINE:COL), 1 when it cannot start (listen address in use, ...).
 */
#ifndef LBW_AGENT_H
#define LBW_AGENT_H

#include <stdint.h>

/* The sequence number after last for a batch made at now_ms. */
uint64_t lbw_agent_next_seq(uint64_t last, int64_t now_ms);

/* The `lbwatch agent` subcommand (argv[0] is "agent") and the `lbwatch-agent` program
 * (node/agentmain.c; argv[0] its path): the same options. Returns the exit code. */
int lbw_agent_main(int argc, char **argv);

#endif
