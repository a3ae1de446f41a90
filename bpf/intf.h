/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Types and constants shared by the BPF programs in bpf/ and the Rust
 * userspace in src/ (Rust sees them through bindgen as bpf_intf.rs).
 *
 * Why here: sizes of per-CPU stat arrays, the reasons a migration is refused
 * and the feature vector layout must be identical on both sides.
 */
#ifndef __MLSCHED_INTF_H
#define __MLSCHED_INTF_H

#ifndef __VMLINUX_H__
typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef signed int s32;
typedef signed long long s64;
#endif

enum mlsched_consts {
	MAX_CPUS		= 1024,
	MAX_LLCS		= 256,
	MAX_NODES		= 64,
	/* DSQ ids: per-CPU DSQ = cpu, per-LLC shared DSQ = LLC_DSQ_BASE + llc */
	LLC_DSQ_BASE		= 1 << 16,
	NSEC_PER_USEC		= 1000,
	/* Upper bounds of the BPF tree evaluator (the model loader enforces them) */
	MODEL_MAX_NODES		= 1024,
	MODEL_MAX_DEPTH		= 16,
	/* Vectors the tree.bpf.c programs replay or time in one run */
	TREE_MAX_VECTORS	= 1 << 16,
	/* Per-task NUMA placement (bpf/numa.bpf.h, src/sched/numa.rs) */
	NUMA_TRACK_NODES	= 16,		/* nodes counted per task (a power of 2) */
	NUMA_PFN_RANGES		= 64,		/* node pfn ranges (zones) looked up */
	NUMA_TRACKED_TASKS	= 1 << 16,	/* tasks with counts (LRU) */
	NUMA_MIN_PAGES		= 32,		/* fewer counted pages: no placement */
	NUMA_PAGES_CAP		= 1 << 16,	/* halve a task's counts past this total */
	/* Outcomes of recorded decisions (bpf/outcome.bpf.h, src/sched/record.rs) */
	OUTCOME_WINDOW_US	= 10000,	/* moves "again" or "back" are looked for this long */
	PROP_ONE		= 1000000,	/* a propensity of 1, in millionths */
};

/* Feature indices, in schema order (bpf/features.def). */
enum mlsched_feature {
#define FEATURE(name, ...) FEAT_##name,
#include "features.def"
#undef FEATURE
	NR_FEATURES,
};

/* The inputs of one migration decision, in schema encoding. */
struct mig_features {
	s64 f[NR_FEATURES];
};

/* Why can_migrate() answered as it did; one stat counter per value. */
enum mig_verdict {
	MIG_ALLOWED		= 0,	/* allowed: task is cold */
	MIG_ALLOWED_FAILS	= 1,	/* allowed although hot: balancing failed too often */
	MIG_DENY_AFFINITY	= 2,	/* dst not in p->cpus_ptr */
	MIG_DENY_RUNNING	= 3,	/* task is running */
	MIG_DENY_PINNED		= 4,	/* migration disabled */
	MIG_DENY_HOT		= 5,	/* task is cache-hot */
	MIG_DENY_KTHREAD	= 6,	/* per-CPU kthread (hard guard of the ML policy) */
	MIG_ML_ALLOWED		= 7,	/* the model said migrate */
	MIG_ML_DENIED		= 8,	/* the model said stay */
	MIG_EXPLORE_ALLOWED	= 9,	/* --explore's coin said migrate where the policy said stay */
	MIG_EXPLORE_DENIED	= 10,	/* --explore's coin said stay where the policy said migrate */
	NR_MIG_VERDICTS,
};

/*
 * What a queued wakeup's enqueue did to get it run (the wait breakdown of
 * the stats: how long wakeups of each outcome waited).
 */
enum wake_outcome {
	WAKE_PREEMPTED		= 0,	/* a running task was preempted for it */
	WAKE_KICKED		= 1,	/* an idle CPU was kicked for it (or its own CPU, running nothing of ours) */
	WAKE_TOO_SOON		= 2,	/* a task it could preempt had not run preempt_min_ns yet: deferred */
	WAKE_NOT_BEHIND		= 3,	/* nothing to preempt (not far enough ahead, shielded, or not ours) */
	WAKE_PREEMPTED_HERE	= 4,	/* the task of the CPU that ran the wakeup was preempted */
	NR_WAKE_OUTCOMES,
};

/*
 * Where a migration decision was made: the `point` column of a dataset
 * (src/learn/dataset.rs).  The kernel's balancer decides in load_balance()
 * (busy, idle or newly idle: the idle_type feature) and in active
 * balancing.  This scheduler asks its gate, can_migrate(), wherever it can
 * move a task off its CPU: when an idle CPU steals (2, 3), and at each of
 * its placements (5-8; enum mig_path names them A, B and C).  Each point
 * has its own heuristic (can_migrate_decide()), which is the rule the
 * scheduler followed there before the gate asked.  Values are never
 * renumbered: datasets and model files store them.
 */
enum mig_point {
	POINT_KERNEL_BALANCE	= 0,	/* collector: load_balance() to a CPU with no task */
	POINT_KERNEL_ACTIVE	= 1,	/* collector: active balancing (LBF_ACTIVE_LB) */
	POINT_STEAL_CPU_DSQ	= 2,	/* scheduler: steal from another CPU's DSQ */
	POINT_STEAL_LLC_DSQ	= 3,	/* scheduler: steal from another LLC's shared DSQ */
	POINT_KERNEL_BUSY_DST	= 4,	/* collector: load_balance() to a CPU that has tasks */
	/* The scheduler's placements (enum mig_path), each behind the gate too: */
	POINT_WAKE_IDLE		= 5,	/* A: select_cpu's idle CPU is not prev (dst: that CPU) */
	POINT_ENQ_WAKEUP	= 6,	/* B: a wakeup's enqueue: its CPU's DSQ or its LLC's pool (dst: the pool) */
	POINT_ENQ_REQUEUE	= 7,	/* B: any other enqueue (preempted, slice ended): likewise */
	POINT_PREEMPT_WAKEE	= 8,	/* C: a preempting wakee onto the waking CPU's local DSQ */
	NR_MIG_POINTS,
};

/*
 * Per-point counters of the gate, in the `mlsched_gate` map (index point *
 * NR_POINT_STATS + one of these), which `--stats` and the benchmark read
 * alike.
 */
enum point_stat {
	POINT_DECIDED		= 0,	/* can_migrate() answered at this point */
	POINT_ALLOWED		= 1,	/* ... and let the task move */
	POINT_WALKS		= 2,	/* the tree walked (ml at a point the model declares, shadow anywhere) */
	POINT_AGREE		= 3,	/* ... and its verdict equals the point's heuristic */
	NR_POINT_STATS,
	NR_GATE_COUNTERS = NR_MIG_POINTS * NR_POINT_STATS,
};

/* Per-CPU counters, summed by userspace (src/sched/stats.rs). */
enum stat_idx {
	STAT_DISPATCH_LOCAL,	/* direct dispatch from select_cpu/enqueue to an idle CPU */
	STAT_DISPATCH_CPU_DSQ,	/* consumed from the CPU's own DSQ */
	STAT_DISPATCH_LLC_DSQ,	/* consumed from the LLC's shared DSQ */
	STAT_DISPATCH_STOLEN,	/* moved from another CPU's or LLC's DSQ */
	STAT_STEAL_FAILED,	/* a steal scan found nothing it may take */
	STAT_KICKS,		/* idle CPUs kicked to pull work */
	STAT_KEEP_PREV,		/* prev went on: its vtime was not ahead of the queues */
	STAT_ML_MIGRATE,	/* tree walks that ended in "migrate" (ml and shadow) */
	STAT_ML_STAY,		/* tree walks that ended in "stay" */
	STAT_ML_AGREE,		/* ... whose verdict equals the heuristic's */
	STAT_ML_FALLBACK_WALK,	/* walks past the depth bound or on a bad node: heuristic used */
	STAT_ML_FALLBACK_STALE,	/* userspace heartbeat stale: heuristic used */
	STAT_ML_FALLBACK_NOMODEL, /* no model loaded: heuristic used */
	STAT_SAMPLES,		/* decisions sent to userspace's linfa twin */
	STAT_SAMPLES_DROPPED,	/* ... that the ring buffer could not take */
	STAT_STARVATION_GUARD,	/* dispatch served a task that waited > 100 ms first */
	STAT_IDLE_REFUSED,	/* a CPU went idle while a task it was refused waited */
	STAT_KICK_WASTED,	/* a kicked idle CPU found nothing to run */
	STAT_KICK_BACKOFF,	/* tick kicks skipped: the last ones found nothing */
	STAT_PREEMPT,		/* wakeups that preempted a CPU's running task */
	STAT_PREEMPT_LOCAL,	/* ... the CPU that woke them (wake_local) */
	STAT_STEAL_NOPID,	/* steal candidates bpf_task_from_pid() did not find */
	STAT_RECORDS,		/* decisions sent to `run --record` */
	STAT_RECORDS_DROPPED,	/* ... that its ring buffer could not take */
	STAT_RCU_BOOST,		/* preempted RCU readers queued first, or kept at slice end */
	STAT_PREEMPT_DEFERRED,	/* wakeups that armed a CPU's preemption timer (preempt_min_ns not run yet) */
	STAT_PREEMPT_TIMER,	/* ... timers that fired and preempted */
	STAT_EXPLORED,		/* decisions --explore's coin chose (either action) */
	STAT_EXPLORE_FLIPPED,	/* ... where it chose otherwise than the policy */
	STAT_OUT_SUPERSEDED,	/* decisions made while the task's recorded one waited for its outcome */
	STAT_OUT_CENSORED,	/* recorded decisions whose task left sched_ext before it ran */
	STAT_OUT_DROPPED,	/* outcomes the ring buffer could not take */
	STAT_WAKE_OUT_WAITS,	/* + enum wake_outcome: queued wakeups that ran, by outcome */
	STAT_WAKE_OUT_NS = STAT_WAKE_OUT_WAITS + NR_WAKE_OUTCOMES, /* + outcome: their waits until they ran (ns) */
	STAT_MIG_BASE = STAT_WAKE_OUT_NS + NR_WAKE_OUTCOMES, /* + enum mig_verdict: can_migrate() results */
	NR_MLSCHED_STATS = STAT_MIG_BASE + NR_MIG_VERDICTS,
};

/* Migration policy (`run --policy`). */
enum mlsched_policy {
	POLICY_HEURISTIC	= 0,	/* the kernel's rule (can_migrate_decide) */
	POLICY_ML		= 1,	/* hard guards, then the tree */
	POLICY_SHADOW		= 2,	/* act on the heuristic, walk the tree beside it */
};

/*
 * The decision tree as BPF walks it (src/sched/model_map.rs writes it).
 * Internal node: x[feature] < threshold -> left, else right.
 * Leaf: feature = -1, verdict 0 (stay) or 1 (migrate).
 */
struct model_node {
	s64 threshold;
	s32 feature;
	u16 left;
	u16 right;
	u32 verdict;
	u32 pad;
};

/* model_node's children are u16. */
_Static_assert(MODEL_MAX_NODES <= 65536, "model_node.left/right are u16");

/*
 * One of two banks (the `model_banks` array map).  Userspace writes the
 * bank BPF is not reading, then flips `model_active` in .bss: BPF never
 * sees a half-written tree (scx_rusty's tuner does the same with a
 * generation).  Generation 0 means empty.
 */
struct model_bank {
	u64 generation;
	u32 nr_nodes;
	u32 depth;
	u32 points;		/* bit (1 << enum mig_point): the points the model was trained for */
	u32 pad;
	struct model_node nodes[MODEL_MAX_NODES];
};

/* A sampled decision, sent through the `samples` ring buffer to the twin. */
struct mig_sample {
	struct mig_features in;
	u64 generation;		/* of the model that walked it */
	s32 src;
	s32 dst;
	s32 tree;		/* the tree's verdict: 0 stay, 1 migrate */
	s32 heuristic;		/* can_migrate_decide()'s enum mig_verdict */
	s32 acted;		/* the verdict acted on (enum mig_verdict) */
	u32 policy;		/* enum mlsched_policy */
	u32 point;		/* enum mig_point */
};


/*
 * How a task was placed where it next runs: stamped in its context at the
 * placement, read in ops.running, which counts a move by the path that
 * placed the task when it runs on another CPU than the one it last ran
 * on.  The counters live in the `mlsched_moves` map (enum move_idx), which
 * `--stats` and the benchmark read alike.
 */
enum mig_path {
	PATH_OTHER		= 0,	/* nothing of ours placed it since it last ran */
	PATH_WAKE_IDLE		= 1,	/* A: select_cpu's idle CPU, dispatched straight to it */
	PATH_LLC_POOL		= 2,	/* B: the LLC's shared DSQ, which any CPU of the LLC serves */
	PATH_PREEMPT_WAKEE	= 3,	/* C: a preempting wakee, on the waking CPU's local DSQ */
	PATH_STEAL		= 4,	/* a steal from another CPU's or LLC's DSQ (the gate asked) */
	PATH_OWN_QUEUE		= 5,	/* its own CPU's DSQ */
	NR_MIG_PATHS,
};

/* Indices of the `mlsched_moves` per-CPU counters. */
enum move_idx {
	MOVES_PATH		= 0,	/* + enum mig_path: moves seen in ops.running */
	MOVES_TRACEPOINT	= NR_MIG_PATHS,	/* sched_migrate_task of tasks in sched_ext */
	NR_MOVE_COUNTERS,
};

/*
 * What `run --record` receives through the `records` ring buffer: each
 * record starts with its kind.  A decision comes first, then its outcome
 * (or its censoring) under the same id, once known (bpf/outcome.bpf.h).
 */
enum rec_kind {
	REC_DECISION		= 1,	/* struct mig_record */
	REC_OUTCOME		= 2,	/* struct mig_outcome: what followed the decision */
	REC_CENSORED		= 3,	/* struct mig_outcome: the task left before it ran */
};

/* Why a decision was not explored (enum explore_block; 0: it could be). */
enum explore_block {
	EXPLORE_OK		= 0,	/* explorable: the policy decided */
	EXPLORE_GUARD		= 1,	/* a hard guard decided (affinity, migration disabled, running, per-CPU kthread) */
	EXPLORE_RCU		= 2,	/* the task is a preempted RCU reader */
	EXPLORE_STARVED		= 3,	/* a steal of a task past the starvation bound */
	EXPLORE_OFF		= 4,	/* --explore is off */
};

/* How an outcome's window ended (mig_outcome.closed_by). */
enum outcome_close {
	CLOSED_WINDOW		= 0,	/* OUTCOME_WINDOW_US passed (seen at the task's next event) */
	CLOSED_EXIT		= 1,	/* the task left sched_ext (or the scheduler unloaded) first */
};

/* A decision `run --record` writes to its serving dataset. */
struct mig_record {
	u32 kind;		/* REC_DECISION */
	u32 point;		/* enum mig_point */
	u64 id;			/* its outcome's id */
	u64 generation;		/* of the model the policy walked (0: none, or the heuristic) */
	struct mig_features in;
	s32 src;
	s32 dst;
	s32 verdict;		/* the verdict acted on (enum mig_verdict) */
	s32 policy_verdict;	/* the policy's own verdict, before --explore's coin */
	u32 prop_ppm;		/* the probability of the action taken, in millionths */
	u32 explored;		/* the coin chose the action */
	u32 explore_block;	/* enum explore_block */
	u32 pad;
};

/* What followed a recorded decision, up to OUTCOME_WINDOW_US after it ran. */
struct mig_outcome {
	u32 kind;		/* REC_OUTCOME or REC_CENSORED */
	u32 closed_by;		/* enum outcome_close */
	u64 id;			/* of its decision */
	u64 wait_ns;		/* from the decision to the task's next run */
	u64 run_ns;		/* the length of that run (0: still running at the close) */
	u64 window_ns;		/* how long moves were looked for after it started */
	s32 run_cpu;		/* where that run was */
	u8 moved;		/* run_cpu is not the decision's src */
	u8 moved_again;		/* it ran on another CPU than run_cpu in the window */
	u8 moved_back;		/* ... on src, after having moved */
	u8 pad;
};

/* Argument of the SEC("syscall") program that tests can_migrate_decide(). */
struct decide_arg {
	struct mig_features in;
	u32 point;		/* enum mig_point: each has its own heuristic */
	s32 verdict;		/* out: enum mig_verdict */
};

/*
 * What one steal saw: steal_from() returns these flags OR'd with the
 * candidate budget it left (the low byte).
 */
enum scan_seen {
	SCAN_BUDGET_MASK	= 0xff,
	SCAN_MOVED		= 1 << 8,	/* moved a task */
	SCAN_REFUSED		= 1 << 9,	/* refused a task for a reason that may pass */
	SCAN_PINNED		= 1 << 10,	/* refused a pinned task (affinity, migration disabled, kthread) */
};

/*
 * Argument of the SEC("syscall") program that tests balance_failed_next():
 * the failure count after a steal that saw `seen` (enum scan_seen flags).
 */
struct balance_arg {
	u64 failed;		/* in: nr_balance_failed before; out: after */
	s32 seen;
	s32 idle_type;		/* 0 busy, 1 idle, 2 newly idle */
};

/*
 * Argument of the SEC("syscall") programs of bpf/tree.bpf.c: walk the tree
 * in bank `bank` on the vectors of the `vectors` map.
 *   tree_replay: vectors [0, nr) once, verdicts into the `verdicts` map.
 *   tree_bench:  vectors [0, nr) `loops` times, timed with bpf_ktime_get_ns;
 *                with `empty` set, the same loop without the walk (overhead).
 */
struct tree_run_arg {
	u32 bank;
	u32 nr;
	u32 loops;
	u32 empty;
	u64 elapsed_ns;		/* out */
	u64 decisions;		/* out */
	u64 migrate;		/* out: walks that said migrate */
	u64 bad;		/* out: walks past the depth bound or on a bad node */
};

/*
 * Argument of tree.bpf.c's fill_bench (`bench inference`): fill the
 * feature vector of "move the calling task from @src to @dst" `loops`
 * times, timed inside the program; with `empty` set, the same loop
 * without the fill (overhead).
 */
struct fill_run_arg {
	s32 src;
	s32 dst;
	u32 loops;
	u32 empty;
	u64 elapsed_ns;		/* out */
	s64 check;		/* out: a sum of the last vector, so that the fill is not optimised out */
};

/*
 * The benchmark's per-workload counters (bpf/benchtrace.bpf.c, read by
 * src/bench/trace.rs): the compile and fio each run in a cgroup of their
 * own, and every task is counted under the workload of its cgroup.  The
 * `bench_wl` per-CPU array holds one block of NR_WL_COUNTERS per workload.
 */
enum bench_workload {
	WL_COMPILE		= 0,
	WL_FIO			= 1,
	WL_OTHER		= 2,	/* any other task (idle excluded) */
	NR_WORKLOADS,
};

/* Log2 buckets of run lengths in µs: [0,1) [1,2) [2,4) ... the last open. */
enum bench_consts {
	NR_RUN_BUCKETS		= 16,
};

enum wl_counter {
	WLC_SWITCHES		= 0,	/* its tasks' switches off a CPU */
	WLC_INVOLUNTARY		= 1,	/* ... while still runnable: preempted, or its slice ended */
	WLC_BY_WL		= 2,	/* + enum bench_workload of the task that ran next, per involuntary switch */
	WLC_RUN_NS		= WLC_BY_WL + NR_WORKLOADS,	/* summed length of its runs (switch-in to switch-out) */
	WLC_RUNS,
	WLC_RUN_HIST,			/* + the run length's bucket (NR_RUN_BUCKETS) */
	WLC_MIGRATIONS		= WLC_RUN_HIST + NR_RUN_BUCKETS,	/* sched_migrate_task */
	WLC_WAIT_NS,			/* summed runqueue wait: runnable (woken, new or preempted) until it ran */
	WLC_WAITS,
	WLC_WAKEUPS,			/* sched_wakeup and sched_wakeup_new */
	NR_WL_COUNTERS,
};

#endif /* __MLSCHED_INTF_H */
