#pragma once
// The C++ agent types of the session benchmarks. Sites are `mstream site` processes of the
// same binary, so every process that may host one of these agents (or attach one, as a shell)
// must call register_bench_agent_types() before it starts a site or a shell: `mstream` does it
// from main(), and each session benchmark does it for its own (shell) process.
//
// Every agent keeps its state in its briefcase, so it travels with each move.
//   bench.counter        counts the messages it consumes and its relocations; the message
//                        "stats" (not counted) returns "APPENDS HOPS". The minimal agent of the
//                        move experiment (seed 004 §3) and the idle agent of the memory bench.
//   bench.pipe_sender    ARGS "RECEIVER SITE_A SITE_B". The message "go N K" makes it append N
//                        data messages to RECEIVER, moving to the other of its two sites after
//                        every K (K = 0: never), from its relocation handler on; "stats"
//                        returns "SENT MOVES".
//   bench.pipe_receiver  ARGS "SITE_A SITE_B". Consumes data messages, moving to the other of
//                        its two sites after every K of them; "reset K" starts a run, "stats"
//                        returns "CONSUMED LAST_NS MOVES" (LAST_NS: CLOCK_MONOTONIC when the
//                        last data message was consumed; one clock for every process here).
//   bench.failover       times its failure handler: "stats" returns "FAILURES FAILED_NS SITE"
//                        (FAILED_NS: CLOCK_MONOTONIC when on_failure ran, 0 if it did not;
//                        SITE: where it runs). No briefcase: a recovered stream restarts from
//                        its initial state, so FAILURES is 0 before a failure and 1 after.
//
// Thread-safety: register_bench_agent_types() may be called from any thread, any number of
// times; it registers once.

#include <string_view>

namespace mstream::bench {

inline constexpr std::string_view kCounterAgent = "bench.counter";
inline constexpr std::string_view kPipeSenderAgent = "bench.pipe_sender";
inline constexpr std::string_view kPipeReceiverAgent = "bench.pipe_receiver";
inline constexpr std::string_view kFailoverAgent = "bench.failover";

// The first byte of a pipeline data message; anything else is a command from the shell.
inline constexpr char kDataTag = 'd';

void register_bench_agent_types();

}  // namespace mstream::bench
