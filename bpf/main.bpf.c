/* SPDX-License-Identifier: GPL-2.0 */
/*
 * scx_mlsched: the sched_ext scheduler.
 *
 * What: a vtime-fair scheduler with one dispatch queue (DSQ) per CPU and one
 * shared DSQ per LLC.
 *   - select_cpu: the kernel's idle-CPU search (SMT-, WAKE_SYNC- and
 *     LLC-aware) within p->cpus_ptr.  A task that finds an idle CPU is
 *     dispatched straight to it (the gate's point A).
 *   - enqueue: pinned tasks and cache-hot wakeups (slept less than the
 *     migration cost) go to their CPU's DSQ; everything else, preempted
 *     tasks included, to the LLC's shared DSQ, which every CPU of the LLC
 *     serves, and an idle CPU the task may use is kicked (point B).  A queued wakeup
 *     preempts a running task whose vtime is well ahead (the fair class's
 *     wakeup preemption): its CPU's, or for the LLC's DSQ the waking CPU's
 *     if it may, else the one furthest ahead among --preempt-scan CPUs of
 *     the LLC (none by default).  A wakee that preempts the CPU running
 *     its wakeup goes straight onto that CPU's local DSQ, at its head, so
 *     that it is what the CPU runs next (point C, when that CPU is not
 *     its own).  A task that has not run --preempt-min-us yet (250 us)
 *     is preempted by a timer when it has, rather than at the end of its
 *     slice.
 *   - dispatch: a CPU takes the lower-vtime head of its own DSQ and its
 *     LLC's DSQ; with both empty it keeps prev if prev still wants to run,
 *     else steals, nearest queues first (its LLC, its node, other nodes).
 *   - tick: a busy CPU with queued work another CPU could run kicks an idle
 *     CPU allowed to run it (the periodic balance of the fair class),
 *     backing off while kicked CPUs find nothing.
 * Vtime advances by runtime * 100 / weight and orders the queues.  Every
 * enqueue clamps a task's vtime to at most one slice behind vtime_now
 * (which follows the vtimes that start running, or are kept running, one
 * slice per start at most), so that no queue can drift far behind another
 * and starve it.  Since dispatch runs before prev is re-enqueued, dispatch
 * itself compares prev's vtime (with its current run) with the queue heads
 * and lets prev go on while it is not ahead: that is what gives nice
 * levels their weight ratio on a shared CPU.  A task preempted inside an
 * RCU read-side section is queued first and kept until it leaves it (see
 * rcu_reader()): vtime order must not hold up an RCU grace period.
 *
 * Why: every place that can move a task off its CPU passes through
 * can_migrate(p, src, dst, point), the counterpart of the kernel's
 * can_migrate_task(): steals, and the placements A, B and C above (enum
 * mig_point in intf.h).  It computes the feature vector of
 * bpf/features.def and decides by --policy: each point's heuristic
 * (can_migrate_decide: at steals the kernel's rules, affinity, migration
 * disabled, running, cache-hot unless balancing failed more than
 * cache_nice_tries times; at the placements the rule they followed before
 * they asked; its userspace twin is src/sched/heuristic.rs), or the learned
 * tree (tree.bpf.h) behind hard guards at the points its model declares,
 * or the heuristic with the tree walked beside it (shadow).
 * The NUMA features come from a page-allocator tracepoint (numa.bpf.h,
 * loaded with the scheduler on machines with several nodes, for the ml and
 * shadow policies or --record) that counts each task's pages per node, as
 * the collector does.
 * Tree decisions are sampled to userspace, where linfa checks each one;
 * with `run --record`, decisions of any policy are sent to userspace too,
 * which writes them as a serving dataset (src/sched/record.rs).
 */
#include <scx/common.bpf.h>
#include "intf.h"
#include "tree.bpf.h"
#include "numa.bpf.h"
#include "taskhist.bpf.h"

char _license[] SEC("license") = "GPL";

/* Set by userspace before load (src/scheduler.rs). */
const volatile u64 slice_ns = 3ULL * 1000 * 1000;
const volatile u64 migration_cost_ns = 500ULL * 1000;
const volatile u64 cache_nice_tries = 1;
const volatile u32 preempt_scan = 0;	/* other CPUs of the LLC a queued wakeup may preempt */
const volatile u32 wake_local = 1;	/* try the waking CPU first (off: --no-wake-local) */
const volatile u64 preempt_min_ns = 250000;	/* the run a wakeup preemption waits for (--preempt-min-us) */
const volatile u32 preempt_direct = 1;	/* a preempting wakee goes to its victim's local DSQ (off: --no-direct-preempt) */
const volatile u32 requeue_local = 0;	/* B: a cache-hot requeue stays on its CPU's DSQ, as a wakeup does (--requeue-local) */
const volatile u32 nr_cpus = 1;
const volatile u32 nr_llcs = 1;
const volatile s32 cpu_llc[MAX_CPUS];
const volatile s32 cpu_node[MAX_CPUS];
const volatile s32 llc_node[MAX_LLCS];

/* Migration policy and the model's freshness (see can_migrate()). */
const volatile u32 policy = POLICY_HEURISTIC;
const volatile u64 sample_every = 64;	/* per CPU; 0: no samples */
const volatile u64 record_every = 0;	/* per CPU; 0: `run` does not --record */
const volatile u32 explore_thresh = 0;	/* --explore EPS as EPS * 2^32 (0: off; see bpf/outcome.bpf.h) */
const volatile u32 explore_ppm = 0;	/* ... as EPS * PROP_ONE */
const volatile u64 feed_timeout_ns = 1000ULL * 1000 * 1000;

/* Written by userspace while running (src/sched/model_map.rs, scheduler.rs). */
volatile u32 model_active;	/* the bank of model_banks that BPF walks */
volatile u64 feed_stamp_ns;	/* userspace's last heartbeat (CLOCK_MONOTONIC) */

/* Test hook (hidden --debug-error-after-ms): exit with an error after this long. */
const volatile u64 debug_error_after_ns;

UEI_DEFINE(uei);

static u64 init_time;

/*
 * The system's "now" in vtime: it follows the largest vtime that started
 * running, at most one slice per start (see mlsched_running).
 */
static u64 vtime_now;

/*
 * The task's recorded decision waiting for its outcome, and which decision
 * of its current episode may be recorded (bpf/outcome.bpf.h).
 */
struct task_outcome {
	u64 id;			/* the pending decision's record id; 0: none */
	u64 decided_at;		/* when it was made (ns) */
	u64 run_at;		/* when the task next started running; 0: not yet */
	u64 run_ns;		/* the length of that run */
	s32 src;		/* the decision's source CPU */
	s32 run_cpu;		/* where that run was */
	u8 ran;			/* run_ns is known */
	u8 moved, moved_again, moved_back;
	u8 stage;		/* this episode's stage whose first decision may be recorded */
	u8 stage_done;		/* ... that decision was made */
};

struct mls_task_ctx {
	u64 enq_at;		/* when the task was last queued (ns) */
	u64 last_stop;		/* when the task last stopped running (ns) */
	u64 started;		/* when it last started running (ns) */
	u64 rcu_debt;		/* vtime waived while queued first as an RCU reader (see rcu_reader()) */
	bool woken;		/* queued by a wakeup, not yet running */
	u8 wake_outcome;	/* enum wake_outcome of that wakeup */
	u8 placed;		/* enum mig_path of its placement since it last ran */
	bool ours;		/* in sched_ext (ops.enable to ops.disable) */
	s32 last_cpu;		/* the CPU it last ran on (-1: none yet) */
	struct task_hist hist;	/* run lengths and moves, for the features (bpf/taskhist.bpf.h) */
	struct task_outcome out;	/* --record's pending decision (bpf/outcome.bpf.h) */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct mls_task_ctx);
} task_ctx_stor SEC(".maps");

struct cpu_ctx {
	u64 nr_balance_failed;	/* failed balances, counted as the kernel does (see steal()) */
	/*
	 * Per decision point, so that a rare point (a steal) is sampled and
	 * recorded as often as before the placements asked the gate.
	 */
	u64 nr_tree_walks[NR_MIG_POINTS];	/* for sampling every sample_every-th walk */
	u64 nr_decisions[NR_MIG_POINTS];	/* for recording every record_every-th decision */
};

/*
 * What each CPU runs, for other CPUs to read: a waking task compares its
 * vtime with it to decide whether to preempt (wakeup_preempt()).
 */
struct cpu_run {
	u64 vtime;		/* dsq_vtime of the running task when it started */
	u64 started;		/* when it started (0: nothing of ours runs) */
	u64 weight;		/* its p->scx.weight */
	bool shielded;		/* it waited > STARVATION_NS, or is an RCU reader: no wakeup preempts it */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_CPUS);
	__type(key, u32);
	__type(value, struct cpu_run);
} cpu_run_stor SEC(".maps");

/*
 * Tick kicks back off while kicked CPUs find nothing (the fair class's
 * balance_interval, doubled on failure).  Shared by all CPUs: a race only
 * costs a kick more or less.
 */
#define KICK_BACKOFF_MAX_NS	(64ULL * 1000 * 1000)
static u64 kick_backoff_ns;
static u64 last_tick_kick_ns;

/* Decisions the tree made, for the userspace twin (src/sched/twin.rs). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} samples SEC(".maps");

/* Decisions of any policy, for `run --record` (a serving dataset). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1024 * 1024);
} records SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct cpu_ctx);
} cpu_ctx_stor SEC(".maps");

struct stats_val {
	u64 cnt[NR_MLSCHED_STATS];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct stats_val);
} stats SEC(".maps");

static void stat_add(u32 idx, u64 v)
{
	u32 zero = 0;
	struct stats_val *s = bpf_map_lookup_elem(&stats, &zero);

	if (s && idx < NR_MLSCHED_STATS)
		s->cnt[idx] += v;
}

static void stat_inc(u32 idx)
{
	stat_add(idx, 1);
}

/*
 * Task migrations, by the path that placed the task (enum mig_path), and
 * every migration of a task in sched_ext as the kernel's own tracepoint
 * sees it.  A map of its own, so that the benchmark finds it by name.
 */
struct moves_val {
	u64 cnt[NR_MOVE_COUNTERS];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct moves_val);
} mlsched_moves SEC(".maps");

static void moves_inc(u32 idx)
{
	u32 zero = 0;
	struct moves_val *m = bpf_map_lookup_elem(&mlsched_moves, &zero);

	if (m && idx < NR_MOVE_COUNTERS)
		m->cnt[idx]++;
}

/*
 * The gate's decisions per decision point (enum point_stat): a map of its
 * own, so that the benchmark finds it by name.
 */
struct gate_val {
	u64 cnt[NR_GATE_COUNTERS];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct gate_val);
} mlsched_gate SEC(".maps");

/* Stamp how @p was placed (see ops.running). */
static void placed_by(struct task_struct *p, u8 path)
{
	struct mls_task_ctx *tctx = bpf_task_storage_get(&task_ctx_stor, p, 0, 0);

	if (tctx)
		tctx->placed = path;
}

static struct cpu_ctx *this_cpu_ctx(void)
{
	u32 zero = 0;

	return bpf_map_lookup_elem(&cpu_ctx_stor, &zero);
}

static s32 llc_of(s32 cpu)
{
	/* MEMBER_VPTR: a bounds check the verifier can follow */
	const volatile s32 *v = MEMBER_VPTR(cpu_llc, [(u32)cpu]);

	return v ? *v : 0;
}

static s32 node_of(s32 cpu)
{
	/* MEMBER_VPTR: a bounds check the verifier can follow */
	const volatile s32 *v = MEMBER_VPTR(cpu_node, [(u32)cpu]);

	return v ? *v : 0;
}

static s32 node_of_llc(u32 llc)
{
	const volatile s32 *v = MEMBER_VPTR(llc_node, [llc]);

	return v ? *v : 0;
}

static u64 llc_dsq(s32 cpu)
{
	return LLC_DSQ_BASE + llc_of(cpu);
}

/*
 * nr_running of @cpu's runqueue: the kernel's own counter, which the
 * collector reads as env->src_rq->nr_running.  sched_ext counts a task on
 * the rq of its CPU wherever it is queued (a per-CPU or an LLC DSQ).  Read
 * without @cpu's rq lock, as the kernel's balancer reads remote rqs.
 */
static __always_inline s64 rq_nr_running(s32 cpu)
{
	struct rq *rq = bpf_per_cpu_ptr(&runqueues, cpu);

	return rq ? BPF_CORE_READ(rq, nr_running) : 0;
}

/* After node_of(), llc_of() and rq_nr_running(), which it uses. */
#include "fill.bpf.h"

static bool tctx_is_hot(const struct mls_task_ctx *tctx, u64 now)
{
	return tctx && tctx->last_stop && now - tctx->last_stop < migration_cost_ns;
}

/*
 * The kernel's refusals that no policy may override, in the kernel's
 * order: migration disabled, dst outside the cpumask, running.  Returns the
 * refusal, or -1.
 */
static __always_inline s32 mig_hard_rules(const struct mig_features *in)
{
	if (in->f[FEAT_migration_disabled])
		return MIG_DENY_PINNED;
	if (!in->f[FEAT_dst_allowed])
		return MIG_DENY_AFFINITY;
	if (in->f[FEAT_running])
		return MIG_DENY_RUNNING;
	return -1;
}

static bool point_is_enqueue(u32 point)
{
	return point == POINT_ENQ_WAKEUP || point == POINT_ENQ_REQUEUE;
}

/*
 * The heuristic, on features and the decision point only: at each point
 * the rule the scheduler followed there before the gate asked (so that
 * --policy heuristic behaves exactly as it did), and at steals the kernel's
 * can_migrate_task() rules in the kernel's order.  Pure, so that a
 * SEC("syscall") program can test it against its userspace twin
 * (src/sched/heuristic.rs).
 *   A (wake idle), C (preempt wakee): allow.  The idle search chose the CPU;
 *     C is asked only where the direct-preemption rule already holds.
 *   B (enqueue): a pinned task stays (migration disabled, or allowed on one
 *     CPU only: dst_allowed 0 for the pool), and so does a cache-hot
 *     wakeup; anything else goes to the LLC's pool.  A preempted task is
 *     hot too, but leaves: its CPU runs another task now.  With
 *     --requeue-local (issue #24's hypothesis H2, off by default) a
 *     cache-hot requeue stays on its CPU's queue as a wakeup does, as the
 *     fair class keeps a preempted task on its runqueue; idle CPUs steal it.
 */
static __always_inline s32 can_migrate_decide(const struct mig_features *in, u32 point)
{
	s32 hard;

	if (point == POINT_WAKE_IDLE || point == POINT_PREEMPT_WAKEE)
		return MIG_ALLOWED;
	hard = mig_hard_rules(in);
	if (hard >= 0)
		return hard;
	if (point == POINT_ENQ_REQUEUE && !requeue_local)
		return MIG_ALLOWED;
	if (point_is_enqueue(point))
		return in->f[FEAT_delta_hot] ? MIG_DENY_HOT : MIG_ALLOWED;
	if (!in->f[FEAT_delta_hot])
		return MIG_ALLOWED;
	if (in->f[FEAT_extra_fails])
		return MIG_ALLOWED_FAILS;
	return MIG_DENY_HOT;
}

static bool point_is_steal(u32 point)
{
	return point == POINT_STEAL_CPU_DSQ || point == POINT_STEAL_LLC_DSQ;
}

/*
 * The features can_migrate_decide() reads (the kernel rule's inputs:
 * delta_hot, extra_fails, running, dst_allowed, migration_disabled) of
 * "move @p from @src to @dst" at @point, as mig_features_fill() defines
 * them, into @in, with balance_failed_any (from the same per-CPU context);
 * the others are left alone.  Returns @p's context (NULL
 * if it has none), and the time read, in @now.
 */
static __always_inline struct mls_task_ctx *mig_rule_fill(struct mig_features *in,
							  struct task_struct *p, s32 dst,
							  u32 point, u64 *now)
{
	u32 zero = 0;
	/* dst's failed balances: at a steal dst is this CPU; the pool has none. */
	struct cpu_ctx *cctx = point_is_enqueue(point) ? NULL :
		bpf_map_lookup_percpu_elem(&cpu_ctx_stor, &zero, dst);
	struct mls_task_ctx *tctx = bpf_task_storage_get(&task_ctx_stor, p, 0, 0);

	*now = scx_bpf_now();
	in->f[FEAT_delta_hot] = tctx_is_hot(tctx, *now);
	in->f[FEAT_extra_fails] = cctx && cctx->nr_balance_failed > cache_nice_tries;
	in->f[FEAT_balance_failed_any] = cctx && cctx->nr_balance_failed > 0;
	/* Placements run as the task wakes or leaves its CPU: not running. */
	in->f[FEAT_running] = point_is_steal(point) && scx_bpf_task_running(p);
	in->f[FEAT_dst_allowed] = point_is_enqueue(point) ? p->nr_cpus_allowed > 1 :
				  bpf_cpumask_test_cpu(dst, p->cpus_ptr);
	in->f[FEAT_migration_disabled] = is_migration_disabled(p);
	return tctx;
}

/*
 * Fill the feature vector of "move @p from @src to @dst" as the scheduler
 * sees it at @point (the scheduler column of bpf/features.def: each
 * feature means what the collector's does; the header of features.def
 * says what the placements' dst features are).  At an enqueue (B), @dst is
 * @src: the pool is @src's LLC's.  mig_rule_fill() does the rule's
 * inputs, fill_portable() (bpf/fill.bpf.h) what needs no sched_ext
 * (`bench inference` times it natively).
 */
static void mig_features_fill(struct mig_features *in, struct task_struct *p,
			      s32 src, s32 dst, s64 idle_type, u32 point)
{
	u64 now;
	struct mls_task_ctx *tctx = mig_rule_fill(in, p, dst, point, &now);
	const struct task_hist *hist = NULL;

	/* Not `tctx ? &tctx->hist : NULL`: no offset on a maybe-NULL pointer. */
	if (tctx)
		hist = &tctx->hist;
	fill_portable(in, p, hist, src, dst, now);
	in->f[FEAT_idle_type] = idle_type;
	in->f[FEAT_weight] = (s64)p->scx.weight * 1024 / 100;
	in->f[FEAT_dst_len] = point_is_enqueue(point) ? (s64)scx_bpf_dsq_nr_queued(llc_dsq(src)) :
			      rq_nr_running(dst);
	in->f[FEAT_vtime_lead_us] = vtime_lead_us((s64)(p->scx.dsq_vtime - vtime_now));
	in->f[FEAT_decision_point] = point;
}

/*
 * The hard guards of the ML policy, in C before the tree: a move the kernel
 * would refuse or that breaks affinity.  No model, however bad, gets past
 * them (the shipped tree answers "migrate" for a cold task with migration
 * disabled).  Returns the refusal, or -1 to let the tree decide.
 */
static __always_inline s32 ml_guard(const struct mig_features *in)
{
	s32 hard = mig_hard_rules(in);

	if (hard >= 0)
		return hard;
	if (in->f[FEAT_per_cpu_kthread])
		return MIG_DENY_KTHREAD;
	return -1;
}

static bool verdict_allows(s32 verdict)
{
	return verdict == MIG_ALLOWED || verdict == MIG_ALLOWED_FAILS ||
	       verdict == MIG_ML_ALLOWED || verdict == MIG_EXPLORE_ALLOWED;
}

/*
 * The tree's verdict on @in (1 migrate, 0 stay), or -1 when the heuristic
 * must decide instead: no model, userspace's heartbeat older than
 * feed_timeout_ns (userspace hung: the features it feeds, and the twin,
 * are stale), or a walk without a verdict.  Each fallback has its stat.
 */
static int ml_verdict(const struct model_bank *b, const struct mig_features *in, u64 *generation)
{
	u64 now = bpf_ktime_get_ns();
	int v;

	/* Signed: userspace may write a stamp newer than @now meanwhile. */
	if (feed_timeout_ns && (s64)(now - feed_stamp_ns) > (s64)feed_timeout_ns) {
		stat_inc(STAT_ML_FALLBACK_STALE);
		return -1;
	}
	if (!b || !b->generation) {
		stat_inc(STAT_ML_FALLBACK_NOMODEL);
		return -1;
	}
	*generation = b->generation;
	v = tree_walk(b, in);
	if (v < 0)
		stat_inc(STAT_ML_FALLBACK_WALK);
	return v;
}

/* Send every sample_every-th tree decision of this CPU at @point to the twin. */
/* (Inlined: a BPF function takes 5 arguments at most.) */
static __always_inline void sample_decision(const struct mig_features *in, u64 generation,
			    s32 src, s32 dst, s32 tree, s32 heuristic, s32 acted, u32 point)
{
	struct cpu_ctx *cctx = this_cpu_ctx();
	struct mig_sample *s;
	u64 *n;

	if (!sample_every || !cctx)
		return;
	n = MEMBER_VPTR(*cctx, .nr_tree_walks[point]);
	if (!n || ++*n % sample_every)
		return;
	s = bpf_ringbuf_reserve(&samples, sizeof(*s), 0);
	if (!s) {
		stat_inc(STAT_SAMPLES_DROPPED);
		return;
	}
	__builtin_memcpy(&s->in, in, sizeof(*in));
	s->generation = generation;
	s->src = src;
	s->dst = dst;
	s->tree = tree;
	s->heuristic = heuristic;
	s->acted = acted;
	s->policy = policy;
	s->point = point;
	bpf_ringbuf_submit(s, 0);
	stat_inc(STAT_SAMPLES);
}

/* Per-point counter @what (enum point_stat) of @point. */
static void point_stat_inc(u32 point, u32 what)
{
	u32 zero = 0, idx = point * NR_POINT_STATS + what;
	struct gate_val *g = bpf_map_lookup_elem(&mlsched_gate, &zero);
	u64 *cnt;

	if (!g || point >= NR_MIG_POINTS || what >= NR_POINT_STATS)
		return;
	/*
	 * MEMBER_VPTR bounds idx as the verifier sees it: clang folds the
	 * checks above into point * 4 | what, whose bounds it loses.
	 */
	cnt = MEMBER_VPTR(*g, .cnt[idx]);
	if (cnt)
		(*cnt)++;
}

/*
 * Does model bank @b decide at @point?  A model file declares the points
 * it was trained for (model_bank.points); elsewhere the point's heuristic
 * decides.  With no model, ml_verdict()'s fallback decides (and counts it).
 */
static bool model_decides_at(const struct model_bank *b, u32 point)
{
	if (!b || !b->generation)
		return true;
	return point < 32 && (b->points & (1U << point));
}

/*
 * The ml and shadow policies on a filled vector: returns the verdict to act
 * on.  ml acts on the tree only at the points its model declares; shadow
 * walks it at every point, so that its agreement with each point's
 * heuristic is known before a model is trained there.  Global (noinline):
 * the verifier checks it once, on its own.
 */
__noinline int ml_gate(const struct mig_features *in, s32 heuristic, s32 src, s32 dst, u32 point)
{
	/* Read once: a swap between two reads could mix two models' points. */
	const struct model_bank *b = model_bank_get(model_active);
	u64 generation = 0;
	s32 guard;
	int tree;

	if (!in)
		return heuristic;
	if (policy == POLICY_ML && !model_decides_at(b, point))
		return heuristic;
	guard = ml_guard(in);
	if (guard >= 0)
		return policy == POLICY_ML ? guard : heuristic;
	tree = ml_verdict(b, in, &generation);
	if (tree < 0)
		return heuristic;
	stat_inc(tree ? STAT_ML_MIGRATE : STAT_ML_STAY);
	point_stat_inc(point, POINT_WALKS);
	if ((bool)tree == verdict_allows(heuristic)) {
		stat_inc(STAT_ML_AGREE);
		point_stat_inc(point, POINT_AGREE);
	}
	if (policy == POLICY_ML) {
		s32 verdict = tree ? MIG_ML_ALLOWED : MIG_ML_DENIED;

		sample_decision(in, generation, src, dst, tree, heuristic, verdict, point);
		return verdict;
	}
	sample_decision(in, generation, src, dst, tree, heuristic, heuristic, point);
	return heuristic;
}

/*
 * Was @p preempted inside an RCU read-side critical section (and is still
 * inside it)?  Under preemptible RCU (every Debian kernel:
 * PREEMPT_DYNAMIC), such a task blocks the grace period until it runs
 * again, and the kernel ejects a scheduler
 * that leaves a grace period blocked for 21 s (an RCU stall).  Vtime order
 * can do that to a low-weight task: a nice-19 khugepaged, preempted while
 * copying a huge page under rcu_read_lock (collapse_huge_page), queued 1 s
 * of vtime behind a dozen stress-ng workers and ran 3 ms per ~4 s (RCU
 * stall ejection in tests/vm/sustained.sh, VM/TCG, in CI and locally).
 * Such a reader is queued first (the vtime it skips is owed, and charged
 * when it runs), kept when its slice ends, and shielded from wakeup
 * preemption: what CONFIG_RCU_BOOST does for the fair class, without the
 * 500 ms delay.
 *
 * The test is the flag rcu_note_context_switch() sets on a reader that is
 * switched out, at the start of __schedule(), before any of our callbacks
 * run; the outermost rcu_read_unlock() clears it.  Not the nesting depth:
 * inside our callbacks the current task's depth counts the rcu_read_lock()
 * of the BPF trampoline itself (every preempted task looked like a reader,
 * 40 million boosts in 120 s).  Kernels without preemptible RCU have no
 * such field, and no such stall.
 */
static bool rcu_reader(const struct task_struct *p)
{
	if (!bpf_core_field_exists(p->rcu_read_unlock_special))
		return false;
	return BPF_CORE_READ(p, rcu_read_unlock_special.b.blocked) != 0;
}

/*
 * A queued task that waited longer than this is served first, whatever the
 * vtimes say.  A safety net: the clamp in vtime_clamped() keeps the queues'
 * vtimes close, but the kernel ejects a scheduler that leaves a runnable
 * task waiting for 30 s, so no ordering mistake may last that long.
 * STAT_STARVATION_GUARD counts how often it decides.
 */
#define STARVATION_NS	(100ULL * 1000 * 1000)

static bool tctx_waited_too_long(const struct mls_task_ctx *tctx, u64 now)
{
	return tctx && tctx->enq_at && now - tctx->enq_at > STARVATION_NS;
}

/* After ml_guard(), rcu_reader() and the starvation bound, which it uses. */
#include "outcome.bpf.h"

/*
 * can_migrate - may @p move from CPU @src to CPU @dst, deciding at @point?
 * The one gate of every migration this scheduler makes on its own: steals,
 * and the placements A, B and C (enum mig_point).
 * A global function (verified once, on its own, with @p a trusted task
 * pointer): inlined into the steal loops, its branches made the verifier
 * give up on ops.dispatch (over a million instructions) once the tree was
 * in it.
 *   heuristic: can_migrate_decide(), the kernel's rule.
 *   ml:        ml_guard(), then the tree (the heuristic when it cannot).
 *   shadow:    acts like heuristic; the tree walks beside it, for the stats
 *              and the twin.
 */
__noinline int can_migrate(struct task_struct *p __arg_trusted, s32 src, s32 dst, s64 idle_type,
			   u32 point)
{
	struct mig_features in = {};
	struct mig_decision d = {.src = src, .dst = dst, .point = point};
	s32 verdict;
	u64 now;

	if (!p)
		return MIG_DENY_AFFINITY;
	/*
	 * The heuristic alone, unrecorded, reads only the rule's inputs, and
	 * at A and C nothing: fill only those (the placements ask on every
	 * wakeup and enqueue).  The verdict is the same: mig_rule_fill() is
	 * the part of mig_features_fill() that can_migrate_decide() reads
	 * (heuristic.rs tests that its twin reads nothing else).
	 */
	if (policy == POLICY_HEURISTIC && !record_every && !explore_thresh) {
		if (point != POINT_WAKE_IDLE && point != POINT_PREEMPT_WAKEE)
			mig_rule_fill(&in, p, dst, point, &now);
	} else {
		mig_features_fill(&in, p, src, dst, idle_type, point);
	}
	verdict = can_migrate_decide(&in, point);
	if (policy != POLICY_HEURISTIC)
		verdict = ml_gate(&in, verdict, src, dst, point);
	d.policy_verdict = verdict;
	if (explore_thresh || record_every)
		verdict = explore(p, &in, &d);
	d.verdict = verdict;
	stat_inc(STAT_MIG_BASE + verdict);
	point_stat_inc(point, POINT_DECIDED);
	if (verdict_allows(verdict))
		point_stat_inc(point, POINT_ALLOWED);
	record_decision(p, &in, &d);
	return verdict;
}

/*
 * A refusal the kernel's balancer counts as "pinned" (LBF_ALL_PINNED stays
 * set): no balancing, however often it fails, can move such a task.
 */
static bool verdict_pinned(s32 verdict)
{
	return verdict == MIG_DENY_AFFINITY || verdict == MIG_DENY_PINNED ||
	       verdict == MIG_DENY_KTHREAD;
}

/*
 * select_cpu: the kernel's own idle-CPU search (scx_bpf_select_cpu_and(),
 * or scx_bpf_select_cpu_dfl() before 6.17), as scx_bpfland does: prev_cpu
 * if its whole SMT core is idle, WAKE_SYNC to the waker's CPU, a fully
 * idle core, then any idle CPU of prev's LLC, node, and system, within
 * p->cpus_ptr.  A task that finds one is dispatched straight to it, if
 * the gate lets it move there (point A, when the CPU is not prev).  A
 * refusal releases the idle CPU the search claimed (cleared from the idle
 * mask): kicked, it runs dispatch and goes idle again unless it finds
 * work.  The task is then enqueued for prev, where point B decides between
 * prev's DSQ and the LLC's pool (from which that CPU may still take it, if
 * B allows the pool).  A kick that finds nothing counts as wasted, so
 * frequent refusals here slow the tick's kicks (kick_backoff_ns).
 */
s32 BPF_STRUCT_OPS(mlsched_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool is_idle = false;
	s32 cpu;

	if (__COMPAT_HAS_scx_bpf_select_cpu_and) {
		cpu = scx_bpf_select_cpu_and(p, prev_cpu, wake_flags, p->cpus_ptr, 0);
		is_idle = cpu >= 0;
	} else {
		cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);
	}
	if (is_idle && cpu != prev_cpu &&
	    !verdict_allows(can_migrate(p, prev_cpu, cpu, 1, POINT_WAKE_IDLE))) {
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
		return prev_cpu;
	}
	if (is_idle) {
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, slice_ns, 0);
		stat_inc(STAT_DISPATCH_LOCAL);
		placed_by(p, PATH_WAKE_IDLE);
		return cpu;
	}
	return prev_cpu;
}

/*
 * A task's vtime as the queues see it: at most one slice behind vtime_now,
 * and at most one lowest-weight slice (vtime_delta(1, slice_ns), 100
 * slices) ahead of it.
 *
 * Behind: a sleeper gets that much credit and no more; a task that ran
 * little while others raced ahead (yielders, or tasks on a busy CPU while
 * another CPU ran low-weight tasks) is brought up, so that queues cannot
 * drift apart.  Applied on every enqueue, not only wakeups: the drift seen
 * without it starved a pinned ksoftirqd for 38 s behind preempted CPU hogs.
 *
 * Ahead: a low-weight task's vtime leaps 100 times faster than a nice-0
 * one's, and its wait is that lead divided by how fast vtime_now moves
 * (about CPUs / runnable tasks of real time).  A nice-19 khugepaged that
 * ran 44 ms in a row (an RCU reader kept on its CPU, see rcu_reader())
 * led by 4.4 s and waited 39 s behind stress-ng workers: the kernel's
 * watchdog ejected the scheduler (tests/vm/sustained.sh, VM/TCG).  The
 * fair class bounds a task's lag the same way (about two slices of its own
 * weight).  The bound is at least one whole slice of the lowest weight, so
 * weight ratios hold for every task that runs a slice at a time.
 */
#define VTIME_AHEAD_MAX	(slice_ns * 100)

static u64 vtime_clamped(u64 vtime)
{
	u64 floor = vtime_now - slice_ns, ceil = vtime_now + VTIME_AHEAD_MAX;

	if (time_before(vtime, floor))
		return floor;
	return time_after(vtime, ceil) ? ceil : vtime;
}

/*
 * vtime_now follows the tasks that start running (or are kept running),
 * but moves at most one slice per start: a low-weight task's vtime leaps
 * (nice 19 ages 100 times faster than nice 0), and following it in one
 * step would drag every other task's floor up and flatten their weight
 * ratios.
 */
static void vtime_now_follow(u64 vtime)
{
	if (time_after(vtime, vtime_now)) {
		u64 ahead = vtime - vtime_now;

		vtime_now += ahead < slice_ns ? ahead : slice_ns;
	}
}

/* Vtime advance of @used ns of run: weight 100 is nice 0; heavier tasks age slower. */
static u64 vtime_delta(u64 weight, u64 used)
{
	return used * 100 / (weight ? weight : 1);
}

/* How long the task has been running since ops.running (0 if unknown). */
static u64 current_run(const struct mls_task_ctx *tctx, u64 now)
{
	return tctx->started && now > tctx->started ? now - tctx->started : 0;
}

static struct cpu_run *cpu_run_of(s32 cpu)
{
	u32 key = cpu;

	return bpf_map_lookup_elem(&cpu_run_stor, &key);
}

/*
 * Kick @cpu if it is idle, so that it runs dispatch: but not the CPU
 * running this code, unless its idle task is what runs (an interrupt on an
 * idle CPU).  Anywhere else that CPU is not idle and reschedules before it
 * can be: a task running there blocks into dispatch; a task queued again
 * as it leaves the CPU is put back only after balance (our dispatch) found
 * the next task, or a higher class took the CPU.  The one requeue that
 * precedes idling is SCX_ENQ_LAST, which needs SCX_OPS_ENQ_LAST: this
 * scheduler does not set it (the kernel then runs such a task on, as
 * keep_prev() does).
 * The kick would only queue an irq_work on this CPU whose idle check then
 * fails: up to one interrupt per call (issue #24: with --requeue-local,
 * about one per requeue kept home, 40,000 more per run, the "IPIs" that
 * doubled).
 */
static void kick_if_idle(s32 cpu)
{
	if (cpu == bpf_get_smp_processor_id() &&
	    !(bpf_get_current_task_btf()->flags & PF_IDLE))
		return;
	scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
}

/*
 * Wake one idle CPU that @p may run on, so that it runs dispatch and takes
 * work.  scx_bpf_pick_idle_cpu() claims the CPU (clears its idle bit), so
 * that two enqueues do not kick the same one.  Returns whether it kicked.
 */
static void kick_claimed(s32 cpu)
{
	scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
	stat_inc(STAT_KICKS);
}

static bool kick_idle_cpu(const struct cpumask *allowed)
{
	s32 cpu = scx_bpf_pick_idle_cpu(allowed, 0);

	if (cpu < 0)
		return false;
	kick_claimed(cpu);
	return true;
}

/*
 * A task woke up and is queued behind @cpu's running task.  The fair
 * class's wakeup preemption, in vtime: the wakee preempts when its vtime
 * is more than half a slice behind the running task's (with the run so
 * far), and that task has run at least preempt_min_ns.  Without it an I/O
 * task waits out the running task's whole slice after each completion.
 *
 * preempt_min_ns is --preempt-min-us, 250 us by default.  The fair
 * class's protected run (RUN_TO_PARITY: its base slice, 1.5 ms at 2 CPUs)
 * was tried as the default (issue "CPU-bound throughput", hypothesis 1):
 * the compile ran 4-15 % faster under emulation, and fio lost 9-15 % of
 * its IOPS, in every round: a point further along the trade-off, not a
 * way off it.  The default scheduler preempts the compile for fio twice
 * as often as this rule does, and compiles no slower.
 *
 * The minimum run is kept for every task.  Waiving it when the running
 * task took the CPU as the wakee blocked (so that a completion within
 * the minimum run does not wait out a slice) let two ping-ponging tasks
 * preempt a third within microseconds, again and again: a nice-19
 * khugepaged preempted inside an RCU read-side section made no progress
 * for 21 s, and the kernel ejected the scheduler for an RCU stall
 * (tests/vm/sustained.sh, under emulation).
 */

/* preempt_lead()'s refusals. */
#define LEAD_TOO_SOON	(-1)	/* will be far enough ahead once it has run preempt_min_ns */
#define LEAD_NOT_BEHIND	(-2)	/* shielded, or not far enough ahead of the wakee */

/* For LEAD_TOO_SOON: which run, and how long until it has run preempt_min_ns. */
struct too_soon {
	u64 started;
	u64 ns;
};

/*
 * How far @cpu's running task is ahead of a wakee of @vtime, if the wakee
 * may preempt it (the rule above); LEAD_* if it may not; 0 if @cpu runs
 * nothing of ours (idle, between two tasks, or a task of another class).
 * For LEAD_TOO_SOON it fills @soon.
 */
static s64 preempt_lead(s32 cpu, u64 vtime, u64 now, struct too_soon *soon)
{
	struct cpu_run *cr = cpu_run_of(cpu);
	u64 curr, started;
	s64 ran;

	if (!cr || !(started = cr->started))
		return 0;
	if (cr->shielded)
		return LEAD_NOT_BEHIND;
	/* Clocks of two CPUs: @now may be a little behind started. */
	ran = (s64)(now - started);
	if (ran < 0)
		ran = 0;
	/* A run younger than preempt_min_ns: as it will be then. */
	curr = cr->vtime + vtime_delta(cr->weight, ran < preempt_min_ns ? preempt_min_ns : ran);
	if (!time_before(vtime + slice_ns / 2, curr))
		return LEAD_NOT_BEHIND;
	if (ran < preempt_min_ns) {
		soon->started = started;
		soon->ns = preempt_min_ns - ran;
		return LEAD_TOO_SOON;
	}
	return (s64)(curr - vtime);
}

/*
 * Deferred wakeup preemption.  A wakee that may preempt a task but for its
 * preempt_min_ns would otherwise wait until a CPU's slice ends, which the
 * tick notices (every 4 ms at HZ=250): 4.2-6.0 ms on average in the
 * benchmark's VM (stats "too soon", before this timer).  Instead, a timer
 * of that CPU fires when the task has run preempt_min_ns, and applies the
 * wakeup rule again, to the lowest-vtime head of the queues the CPU
 * serves (the wakee, unless another CPU took it): it preempts if that head
 * may preempt whatever runs then, re-arms if that run is still too young,
 * and does nothing otherwise.  One timer per CPU, armed at most once per
 * run (@started).
 */
struct preempt_timer {
	struct bpf_timer timer;
	u64 started;		/* cpu_run.started of the run it was armed for */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MAX_CPUS);
	__type(key, u32);
	__type(value, struct preempt_timer);
} preempt_timers SEC(".maps");

static int preempt_timer_fn(void *map, u32 *key, struct preempt_timer *t)
{
	s32 cpu = *key;
	struct task_struct *mine = __COMPAT_scx_bpf_dsq_peek(cpu);
	struct task_struct *ours = __COMPAT_scx_bpf_dsq_peek(llc_dsq(cpu));
	struct too_soon soon = {};
	u64 vtime;
	s64 lead;

	/* (Tested one by one: the verifier refuses "mine | ours".) */
	if (mine) {
		vtime = mine->scx.dsq_vtime;
		if (ours && time_before(ours->scx.dsq_vtime, vtime))
			vtime = ours->scx.dsq_vtime;
	} else if (ours) {
		vtime = ours->scx.dsq_vtime;
	} else {
		return 0;
	}
	lead = preempt_lead(cpu, vtime, scx_bpf_now(), &soon);
	if (lead > 0) {
		scx_bpf_kick_cpu(cpu, SCX_KICK_PREEMPT);
		stat_inc(STAT_PREEMPT_TIMER);
	} else if (lead == LEAD_TOO_SOON) {
		t->started = soon.started;
		bpf_timer_start(&t->timer, soon.ns, 0);
	}
	return 0;
}

/* Arm @cpu's preemption timer for the run and time in @soon. */
static void preempt_defer(s32 cpu, const struct too_soon *soon)
{
	u32 key = cpu;
	struct preempt_timer *t = bpf_map_lookup_elem(&preempt_timers, &key);

	if (!t || t->started == soon->started)
		return;
	t->started = soon->started;
	if (!bpf_timer_start(&t->timer, soon->ns, 0))
		stat_inc(STAT_PREEMPT_DEFERRED);
}

/*
 * The outcome of a wakeup whose best candidate had @lead (see
 * preempt_lead()), kicking that CPU if it runs nothing of ours or may be
 * preempted.
 */
static u8 wakeup_kick(s32 cpu, s64 lead)
{
	if (!lead) {
		kick_if_idle(cpu);
		return WAKE_KICKED;
	}
	if (lead > 0) {
		scx_bpf_kick_cpu(cpu, SCX_KICK_PREEMPT);
		stat_inc(STAT_PREEMPT);
		return cpu == bpf_get_smp_processor_id() ? WAKE_PREEMPTED_HERE : WAKE_PREEMPTED;
	}
	return lead == LEAD_TOO_SOON ? WAKE_TOO_SOON : WAKE_NOT_BEHIND;
}

/*
 * Queue wakee @p on @dsq, where @cpu's task had @lead (see wakeup_kick()).
 *
 * With preempt_direct (the default), a wakee that preempts the task of
 * the CPU running the wakeup goes instead straight onto that CPU's local
 * DSQ, at its head, with SCX_ENQ_PREEMPT: it is the task that runs when
 * the CPU reschedules, on the way out of this interrupt or wakeup.  Queued
 * on a shared DSQ, it competed with every task queued there, and tasks
 * preempted earlier had the lower vtimes (clamped to the same floor as the
 * wakee, but earlier): the preemption could run one of them, and the
 * wakee waited on.  (The fair class preempts when the wakee is what it
 * picks next.)  Not for another CPU: bound to that CPU, the wakee waited
 * until its IPI was taken, 3.85 ms on average in the benchmark's VM (a
 * vCPU the host is not running takes it late), against 0.95 ms queued on
 * the shared DSQ, where the first CPU of the LLC to reschedule takes it.
 */
static __always_inline u8 wakeup_queue(struct task_struct *p, u64 dsq, s32 cpu, s64 lead, u64 vtime,
		       u64 enq_flags)
{
	s32 src = scx_bpf_task_cpu(p);
	bool direct = lead > 0 && preempt_direct && cpu == bpf_get_smp_processor_id();

	/*
	 * Onto another CPU than its own: the gate decides (point C).  Refused,
	 * the wakee neither goes there nor preempts there: it waits in @dsq.
	 */
	if (direct && cpu != src &&
	    !verdict_allows(can_migrate(p, src, cpu, 0, POINT_PREEMPT_WAKEE))) {
		scx_bpf_dsq_insert_vtime(p, dsq, slice_ns, vtime, enq_flags);
		return WAKE_NOT_BEHIND;
	}
	if (direct) {
		scx_bpf_task_set_dsq_vtime(p, vtime);
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL_ON | cpu, slice_ns, enq_flags | SCX_ENQ_PREEMPT);
		stat_inc(STAT_PREEMPT);
		return WAKE_PREEMPTED_HERE;
	}
	scx_bpf_dsq_insert_vtime(p, dsq, slice_ns, vtime, enq_flags);
	return wakeup_kick(cpu, lead);
}

/* A wakee for @cpu's own DSQ: only @cpu can run it soon. */
static u8 wakeup_preempt(struct task_struct *p, s32 cpu, u64 vtime, u64 enq_flags)
{
	struct too_soon soon = {};
	s64 lead = preempt_lead(cpu, vtime, scx_bpf_now(), &soon);

	if (lead == LEAD_TOO_SOON)
		preempt_defer(cpu, &soon);
	return wakeup_queue(p, cpu, cpu, lead, vtime, enq_flags);
}

/*
 * A wakee for its LLC's shared DSQ, and no idle CPU for it: any CPU
 * of the LLC it may run on will do.  Look at its previous CPU and the next
 * ones of the LLC, preempt_scan CPUs in all, and preempt the one whose
 * task is furthest ahead (the fair class looks at the wakee's CPU only,
 * but its wakee is queued there; ours waits for whichever CPU of the LLC
 * comes first).  With preempt_scan 1, the previous CPU only; with 0, none
 * (only the CPU that runs the wakeup, if wake_local).
 * With wake_local (the default), the CPU that runs the wakeup comes first:
 * when its task is far enough ahead it is preempted, without a cross-CPU
 * IPI (a wakeup queued to another CPU's wakelist runs there instead; an I/O
 * completion's wakeup runs on the CPU that took the interrupt, and a
 * task's wakeup on its waker's), as the fair class's wake_affine() pulls a
 * wakee to its waker's CPU.  In the benchmark's VM a local preemption's
 * wakee waited 600-700 us on average, a remote one's 790-890 us.
 *
 * Every CPU looked at whose task will be far enough ahead once it has run
 * preempt_min_ns, but has not yet, is a candidate for the preemption timer
 * when no task may be preempted now: the one whose task gets there first.
 */
static u8 wakeup_preempt_llc(struct task_struct *p, s32 prev, u64 vtime, u64 enq_flags)
{
	s32 llc = llc_of(prev), best = -1, here;
	u64 now = scx_bpf_now();
	struct too_soon soon = {}, soonest = { .ns = preempt_min_ns + 1 };
	s32 soonest_cpu = -1;
	s64 lead, best_lead = 0;
	u32 i, seen = 0;

	if (wake_local) {
		here = bpf_get_smp_processor_id();
		if (llc_of(here) == llc && bpf_cpumask_test_cpu(here, p->cpus_ptr)) {
			lead = preempt_lead(here, vtime, now, &soon);
			if (lead > 0) {
				stat_inc(STAT_PREEMPT_LOCAL);
				return wakeup_queue(p, llc_dsq(prev), here, lead, vtime, enq_flags);
			}
			if (lead == LEAD_TOO_SOON) {
				soonest = soon;
				soonest_cpu = here;
			}
		}
	}

	bpf_for(i, 0, nr_cpus) {
		s32 cpu = (prev + i) % nr_cpus;

		if (seen >= preempt_scan)
			break;
		if (llc_of(cpu) != llc || !bpf_cpumask_test_cpu(cpu, p->cpus_ptr))
			continue;
		seen++;
		lead = preempt_lead(cpu, vtime, now, &soon);
		if (lead > best_lead) {
			best_lead = lead;
			best = cpu;
		} else if (lead == LEAD_TOO_SOON && soon.ns < soonest.ns) {
			soonest = soon;
			soonest_cpu = cpu;
		}
	}
	/*
	 * Only a task is preempted: an idle CPU was claimed by
	 * kick_idle_cpu() before, and one running nothing of ours (lead 0)
	 * is left alone.  Else the CPU whose task may be preempted soonest
	 * gets its timer armed.
	 */
	if (best_lead > 0)
		return wakeup_queue(p, llc_dsq(prev), best, best_lead, vtime, enq_flags);
	scx_bpf_dsq_insert_vtime(p, llc_dsq(prev), slice_ns, vtime, enq_flags);
	if (soonest_cpu < 0)
		return WAKE_NOT_BEHIND;
	preempt_defer(soonest_cpu, &soonest);
	return WAKE_TOO_SOON;
}

/*
 * @p's own vtime: its dsq_vtime plus the RCU debt it has not paid yet (it
 * was queued first and has not run since), which this settles.
 */
static u64 task_vtime(struct task_struct *p, struct mls_task_ctx *tctx)
{
	u64 vtime = p->scx.dsq_vtime;

	if (tctx && tctx->rcu_debt) {
		vtime += tctx->rcu_debt;
		tctx->rcu_debt = 0;
	}
	return vtime;
}

/*
 * An RCU reader's key in the queues: far below every queued vtime (those
 * clamped against an older vtime_now too; the queues order by signed
 * difference, so 2^62 behind is still "before").  The vtime it skips is
 * kept in @tctx, and running charges it back exactly.
 */
#define RCU_READER_LEAD	(1ULL << 62)

static u64 rcu_reader_first(struct mls_task_ctx *tctx, u64 vtime)
{
	u64 key = vtime_now - RCU_READER_LEAD;

	if (tctx)
		tctx->rcu_debt = vtime - key;
	stat_inc(STAT_RCU_BOOST);
	return key;
}

/*
 * enqueue: pinned tasks stay on their CPU's DSQ.  For any other task the
 * gate decides (point B) whether it stays there or goes to the LLC's
 * shared DSQ, which every CPU of the LLC serves.  Its heuristic keeps
 * wakeups that are still cache-hot (they slept less than the migration
 * cost) and sends everything else to the pool, preempted tasks included:
 * a task whose slice ran out was replaced by another on its CPU, so its
 * cache there is about to go cold anyway, and any sibling that goes idle
 * first runs it.  (Hotness is judged again, at the time of the decision,
 * when a steal considers the task: see can_migrate().)  Pinned tasks do
 * not ask: every policy refuses them (the hard rules), and per-CPU
 * kthreads enqueue often.
 */
void BPF_STRUCT_OPS(mlsched_enqueue, struct task_struct *p, u64 enq_flags)
{
	s32 cpu = scx_bpf_task_cpu(p);
	struct mls_task_ctx *tctx = bpf_task_storage_get(&task_ctx_stor, p, 0, 0);
	/* With its RCU debt if it is queued again before it ran. */
	u64 vtime = vtime_clamped(task_vtime(p, tctx));
	bool wakeup = enq_flags & SCX_ENQ_WAKEUP;
	u64 now = scx_bpf_now();
	u8 outcome = WAKE_NOT_BEHIND, path = PATH_LLC_POOL;

	if (tctx) {
		tctx->enq_at = now;
		tctx->woken = wakeup;
	}
	if (!wakeup && rcu_reader(p))
		vtime = rcu_reader_first(tctx, vtime);
	if (p->nr_cpus_allowed == 1 || is_migration_disabled(p) ||
	    !verdict_allows(can_migrate(p, cpu, cpu, 0, wakeup ? POINT_ENQ_WAKEUP : POINT_ENQ_REQUEUE))) {
		path = PATH_OWN_QUEUE;
		if (wakeup) {
			outcome = wakeup_preempt(p, cpu, vtime, enq_flags);
		} else {
			scx_bpf_dsq_insert_vtime(p, cpu, slice_ns, vtime, enq_flags);
			kick_if_idle(cpu);
		}
	} else {
		/*
		 * An idle CPU is claimed first (a wakee without one may
		 * preempt instead of being queued here), and kicked once the
		 * task is queued.
		 */
		s32 idle = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);

		if (idle < 0 && wakeup) {
			outcome = wakeup_preempt_llc(p, cpu, vtime, enq_flags);
		} else {
			scx_bpf_dsq_insert_vtime(p, llc_dsq(cpu), slice_ns, vtime, enq_flags);
			if (idle >= 0) {
				kick_claimed(idle);
				outcome = WAKE_KICKED;
			}
		}
	}
	if (tctx) {
		tctx->wake_outcome = outcome;
		/* Inserted on the local DSQ of the CPU that ran the wakeup. */
		tctx->placed = outcome == WAKE_PREEMPTED_HERE ? PATH_PREEMPT_WAKEE : path;
	}
}

/*
 * Candidates one steal looks at in all, in locality order and in vtime
 * order within a queue: the kernel's balancer bounds its scan the same way
 * (sysctl_sched_nr_migrate, 32), and a queue full of pinned tasks would
 * otherwise be walked whole on every kick, under the runqueue lock.
 */
#define STEAL_BUDGET	32

/*
 * Move the first task of @dsq that can_migrate() allows onto @cpu, looking
 * at @budget candidates at most.  A global function, verified once on its
 * own (its loop inside steal()'s loop multiplied the verifier's states).
 */
__noinline int steal_from(u64 dsq, s32 cpu, s64 idle_type, u32 budget)
{
	struct bpf_iter_scx_dsq it;
	struct task_struct *p;
	int seen = 0;
	u32 j;

	budget &= SCAN_BUDGET_MASK;
	bpf_rcu_read_lock();
	if (bpf_iter_scx_dsq_new(&it, dsq, 0))
		goto out;
	/* A numeric iterator bounds the walk; a counter would defeat the verifier. */
	bpf_for(j, 0, STEAL_BUDGET) {
		s32 verdict;

		if (!budget)
			break;
		p = bpf_iter_scx_dsq_next(&it);
		if (!p)
			break;
		budget--;
		/*
		 * The verifier wants an acquired reference (as scx_tickless
		 * does).  Exiting tasks never reach our DSQs (no
		 * SCX_OPS_ENQ_EXITING), so a miss is a task that exited.
		 */
		p = bpf_task_from_pid(p->pid);
		if (!p) {
			stat_inc(STAT_STEAL_NOPID);
			continue;
		}
		verdict = can_migrate(p, scx_bpf_task_cpu(p), cpu, idle_type,
				      dsq >= LLC_DSQ_BASE ? POINT_STEAL_LLC_DSQ : POINT_STEAL_CPU_DSQ);
		if (!verdict_allows(verdict)) {
			seen |= verdict_pinned(verdict) ? SCAN_PINNED : SCAN_REFUSED;
			bpf_task_release(p);
			continue;
		}
		if (scx_bpf_dsq_move(&it, p, SCX_DSQ_LOCAL, 0)) {
			seen |= SCAN_MOVED;
			placed_by(p, PATH_STEAL);
		}
		bpf_task_release(p);
		if (seen & SCAN_MOVED)
			break;
	}
out:
	bpf_iter_scx_dsq_destroy(&it);
	bpf_rcu_read_unlock();
	return seen | budget;
}

/*
 * Distance of queue @dsq from @cpu: 0 another CPU of its LLC, 1 its node,
 * 2 another node; -1 for @cpu's own queues.
 */
static int dsq_distance(u64 dsq, s32 cpu)
{
	if (dsq >= LLC_DSQ_BASE) {
		u32 llc = dsq - LLC_DSQ_BASE;

		if (llc == llc_of(cpu))
			return -1;
		return node_of_llc(llc) == node_of(cpu) ? 1 : 2;
	}
	if (dsq == cpu)
		return -1;
	if (llc_of(dsq) == llc_of(cpu))
		return 0;
	return node_of(dsq) == node_of(cpu) ? 1 : 2;
}

/*
 * A CPU's failed balances after a steal that saw @seen (enum scan_seen),
 * counted as the kernel's load_balance() counts sd->nr_balance_failed:
 * reset by a move; raised when a task that could have moved was refused,
 * unless the CPU is newly idle (idle_type 2), whose attempts the kernel
 * does not count; reset when every task seen was pinned (LBF_ALL_PINNED:
 * no retry can help) and when there was nothing to take (out_balanced
 * falls through to out_all_pinned).  Pure, so that test_balance_failed can check it
 * against its Rust twin.
 */
static u64 balance_failed_next(u64 failed, int seen, s64 idle_type)
{
	if (seen & SCAN_MOVED)
		return 0;
	if (seen & SCAN_REFUSED)
		return idle_type == 2 ? failed : failed + 1;
	/* every task seen was pinned (LBF_ALL_PINNED), or none was queued (out_balanced) */
	return 0;
}

/*
 * Pull one task from another CPU's DSQ or another LLC's DSQ onto @cpu,
 * nearest queues first (its LLC, its node, then other nodes), STEAL_BUDGET
 * candidates at most.  Every candidate passes can_migrate().
 *
 * nr_balance_failed follows balance_failed_next(), so cache-hot
 * protection lasts cache_nice_tries failed balances of an idle CPU, not
 * two idle transitions.
 *
 * Returns STEAL_MOVED, STEAL_REFUSED (nothing moved, but a task that is
 * not pinned was refused) or 0.  A global function, verified once on its
 * own: inlined, its loops multiplied ops.dispatch's verifier states past
 * the 1M-instruction limit.
 */
enum { STEAL_MOVED = 1, STEAL_REFUSED = 2 };

__noinline int steal(s32 cpu, s64 idle_type)
{
	struct cpu_ctx *cctx = this_cpu_ctx();
	u32 n = nr_cpus + nr_llcs, budget = STEAL_BUDGET, i;
	int seen = 0;

	bpf_for(i, 0, 3 * n) {
		u32 k = i % n;
		u64 dsq = k < nr_cpus ? (cpu + k) % nr_cpus : LLC_DSQ_BASE + (k - nr_cpus);
		int r;

		if (dsq_distance(dsq, cpu) != i / n || !scx_bpf_dsq_nr_queued(dsq))
			continue;
		r = steal_from(dsq, cpu, idle_type, budget);
		seen |= r & ~SCAN_BUDGET_MASK;
		budget = r & SCAN_BUDGET_MASK;
		if ((seen & SCAN_MOVED) || !budget)
			break;
	}

	if (cctx)
		cctx->nr_balance_failed = balance_failed_next(cctx->nr_balance_failed, seen, idle_type);
	if (seen & SCAN_MOVED) {
		stat_inc(STAT_DISPATCH_STOLEN);
		return STEAL_MOVED;
	}
	if (seen & (SCAN_REFUSED | SCAN_PINNED))
		stat_inc(STAT_STEAL_FAILED);
	return seen & SCAN_REFUSED ? STEAL_REFUSED : 0;
}

static bool consume(u64 dsq, u32 stat)
{
	if (!scx_bpf_dsq_move_to_local(dsq, 0))
		return false;
	stat_inc(stat);
	return true;
}

static bool waited_too_long(struct task_struct *p, u64 now)
{
	return tctx_waited_too_long(bpf_task_storage_get(&task_ctx_stor, p, 0, 0), now);
}

/* Charge @p's run so far to its vtime, as ops.stopping would. */
static void charge_run(struct task_struct *p, struct mls_task_ctx *tctx, u64 now)
{
	scx_bpf_task_set_dsq_vtime(p, p->scx.dsq_vtime +
				   vtime_delta(p->scx.weight, current_run(tctx, now)));
	tctx->started = now;
}

/*
 * @prev goes on for another slice without leaving the CPU, so neither
 * ops.stopping nor ops.running sees it: charge its run to its vtime here,
 * and let vtime_now follow it, as if it had stopped and started again.
 * Otherwise vtime_now stands still while CPU hogs are kept, and a waker's
 * one-slice credit grows into many.  @shielded: no wakeup preempts it
 * (an RCU reader, see rcu_reader()).
 */
static void keep_prev(struct task_struct *prev, s32 cpu, u64 now, bool shielded)
{
	struct mls_task_ctx *tctx = bpf_task_storage_get(&task_ctx_stor, prev, 0, 0);
	struct cpu_run *cr = cpu_run_of(cpu);

	if (tctx)
		charge_run(prev, tctx, now);
	vtime_now_follow(prev->scx.dsq_vtime);
	if (cr) {
		cr->vtime = prev->scx.dsq_vtime;
		cr->started = now;
		cr->shielded = shielded;
	}
	scx_bpf_task_set_slice(prev, slice_ns);
	stat_inc(STAT_KEEP_PREV);
}

/*
 * @prev's vtime including the run that is still going on (ops.stopping has
 * not charged it yet), clamped like a queued task's.
 */
static u64 prev_vtime(struct task_struct *prev, u64 now)
{
	struct mls_task_ctx *tctx = bpf_task_storage_get(&task_ctx_stor, prev, 0, 0);
	u64 vtime = prev->scx.dsq_vtime;

	if (tctx)
		vtime += vtime_delta(prev->scx.weight, current_run(tctx, now));
	return vtime_clamped(vtime);
}

void BPF_STRUCT_OPS(mlsched_dispatch, s32 cpu, struct task_struct *prev)
{
	u64 shared = llc_dsq(cpu);
	struct task_struct *mine = __COMPAT_scx_bpf_dsq_peek(cpu);
	struct task_struct *ours = __COMPAT_scx_bpf_dsq_peek(shared);
	bool shared_first = ours && (!mine || time_before(ours->scx.dsq_vtime, mine->scx.dsq_vtime));
	bool prev_queued = prev && (prev->scx.flags & SCX_TASK_QUEUED);
	u64 now = scx_bpf_now();
	int stolen;

	if (mine && waited_too_long(mine, now)) {
		shared_first = false;
		stat_inc(STAT_STARVATION_GUARD);
	} else if (ours && waited_too_long(ours, now)) {
		shared_first = true;
		stat_inc(STAT_STARVATION_GUARD);
	} else if (prev_queued && rcu_reader(prev)) {
		/*
		 * Its slice ended inside an RCU read-side section (see
		 * rcu_reader()): it goes on, unless a queued task waited past
		 * the starvation bound (a task that runs reader after reader
		 * would otherwise keep the CPU for good).
		 */
		stat_inc(STAT_RCU_BOOST);
		keep_prev(prev, cpu, now, true);
		return;
	} else if (prev_queued) {
		/*
		 * prev's slice ran out, and it is not in any queue yet: it
		 * goes on while its vtime is not ahead of the head that would
		 * replace it.  Without this, two tasks sharing a CPU alternate
		 * whatever their weights.  (head is NULL with both queues
		 * empty: see below.)
		 */
		struct task_struct *head = shared_first ? ours : mine;

		if (head && !time_after(prev_vtime(prev, now), head->scx.dsq_vtime)) {
			keep_prev(prev, cpu, now, false);
			return;
		}
	}

	if (shared_first) {
		if (consume(shared, STAT_DISPATCH_LLC_DSQ) || consume(cpu, STAT_DISPATCH_CPU_DSQ))
			goto found;
	} else {
		if (consume(cpu, STAT_DISPATCH_CPU_DSQ) || consume(shared, STAT_DISPATCH_LLC_DSQ))
			goto found;
	}

	/*
	 * Own queues empty.  A CPU whose task still wants to run keeps it
	 * rather than steal (as scx_bpfland does): with N+1 CPU hogs,
	 * stealing here moved one task per slice for no balance at all.
	 */
	if (prev_queued) {
		keep_prev(prev, cpu, now, false);
		return;
	}

	/* A CPU whose task just blocked is "newly idle" (2); a kicked idle one is "idle" (1). */
	stolen = steal(cpu, prev ? 2 : 1);
	if (stolen == STEAL_MOVED)
		goto found;

	/* Going idle. */
	if (stolen == STEAL_REFUSED)
		stat_inc(STAT_IDLE_REFUSED);
	if (!prev) {
		/* Woken from idle for nothing: tick kicks back off. */
		u64 b = kick_backoff_ns;

		stat_inc(STAT_KICK_WASTED);
		b = b ? b * 2 : slice_ns;
		kick_backoff_ns = b < KICK_BACKOFF_MAX_NS ? b : KICK_BACKOFF_MAX_NS;
	}
	return;
found:
	if (!prev)
		kick_backoff_ns = 0;
}

/*
 * tick: a busy CPU with queued work that another CPU could run kicks an
 * idle CPU that the work may run on, so that it pulls it: the head of the
 * LLC's shared DSQ, else the head of this CPU's DSQ unless it is pinned.
 * Kicks back off (kick_backoff_ns) while kicked CPUs find nothing.
 */
void BPF_STRUCT_OPS(mlsched_tick, struct task_struct *p)
{
	s32 cpu = scx_bpf_task_cpu(p);
	struct task_struct *head;
	u64 now;

	if (debug_error_after_ns && bpf_ktime_get_ns() - init_time > debug_error_after_ns)
		scx_bpf_error("error exit requested by --debug-error-after-ms (%llu ms)",
			      debug_error_after_ns / 1000000);

	head = __COMPAT_scx_bpf_dsq_peek(llc_dsq(cpu));
	if (!head) {
		head = __COMPAT_scx_bpf_dsq_peek(cpu);
		if (!head || head->nr_cpus_allowed == 1 || is_migration_disabled(head))
			return;
	}
	now = scx_bpf_now();
	if (now - last_tick_kick_ns < kick_backoff_ns) {
		stat_inc(STAT_KICK_BACKOFF);
		return;
	}
	if (kick_idle_cpu(head->cpus_ptr))
		last_tick_kick_ns = now;
}

void BPF_STRUCT_OPS(mlsched_running, struct task_struct *p)
{
	struct mls_task_ctx *tctx = bpf_task_storage_get(&task_ctx_stor, p, 0, 0);
	struct cpu_run *cr = cpu_run_of(scx_bpf_task_cpu(p));
	/* An RCU reader queued first pays the vtime it skipped (rcu_reader_first()). */
	u64 now = scx_bpf_now(), vtime = task_vtime(p, tctx);

	/*
	 * A long sleeper that select_cpu() sent straight to an idle CPU never
	 * passed enqueue's clamp: clamp it here, or its old vtime would be
	 * charged on and no wakeup could ever preempt it.
	 */
	vtime = vtime_clamped(vtime);
	if (vtime != p->scx.dsq_vtime)
		scx_bpf_task_set_dsq_vtime(p, vtime);
	vtime_now_follow(vtime);
	if (cr) {
		cr->vtime = vtime;
		cr->started = now;
		cr->weight = p->scx.weight;
		/*
		 * A task that waited past the starvation bound runs its slice
		 * whole: preempted after 250 us each time, a nice-19
		 * khugepaged got a run of 250 us per 100 ms and stayed inside an
		 * RCU read-side section for 21 s (tests/vm/sustained.sh).  An
		 * RCU reader is shielded too (see rcu_reader()).
		 */
		cr->shielded = tctx_waited_too_long(tctx, now) || rcu_reader(p);
	}
	if (!tctx)
		return;
	tctx->started = now;
	hist_start(&tctx->hist, now, scx_bpf_task_cpu(p));
	outcome_running(&tctx->out, scx_bpf_task_cpu(p), now);
	/* A move, counted by the path that placed it here (enum mig_path). */
	if (tctx->last_cpu >= 0 && tctx->last_cpu != scx_bpf_task_cpu(p))
		moves_inc(MOVES_PATH + (tctx->placed < NR_MIG_PATHS ? tctx->placed : PATH_OTHER));
	tctx->last_cpu = scx_bpf_task_cpu(p);
	tctx->placed = PATH_OTHER;
	if (tctx->woken && tctx->enq_at && now > tctx->enq_at) {
		u32 out = tctx->wake_outcome < NR_WAKE_OUTCOMES ? tctx->wake_outcome : WAKE_NOT_BEHIND;

		stat_add(STAT_WAKE_OUT_NS + out, now - tctx->enq_at);
		stat_inc(STAT_WAKE_OUT_WAITS + out);
	}
	tctx->woken = false;
}

void BPF_STRUCT_OPS(mlsched_stopping, struct task_struct *p, bool runnable)
{
	struct mls_task_ctx *tctx = bpf_task_storage_get(&task_ctx_stor, p, 0, 0);
	struct cpu_run *cr = cpu_run_of(scx_bpf_task_cpu(p));
	u64 now = scx_bpf_now();

	if (cr)
		cr->started = 0;
	if (!tctx)
		return;
	charge_run(p, tctx, now);
	tctx->last_stop = now;
	/* Whether it blocks, ops.quiescent says (it runs after this). */
	hist_stop(&tctx->hist, now, false);
	outcome_stopping(&tctx->out, now);
}

/*
 * The task leaves the runqueue.  Only a sleep (SCX_DEQ_SLEEP) ends its
 * burst, as a block ends it in the collector's sched_switch: a stop with
 * runnable false also comes when a running task is dequeued to change its
 * affinity or priority, without sleeping.
 */
void BPF_STRUCT_OPS(mlsched_quiescent, struct task_struct *p, u64 deq_flags)
{
	struct mls_task_ctx *tctx;

	if (!(deq_flags & SCX_DEQ_SLEEP))
		return;
	tctx = bpf_task_storage_get(&task_ctx_stor, p, 0, 0);
	if (tctx)
		hist_block(&tctx->hist);
}

void BPF_STRUCT_OPS(mlsched_enable, struct task_struct *p)
{
	struct mls_task_ctx *tctx = bpf_task_storage_get(&task_ctx_stor, p, 0, 0);

	/*
	 * Back from another class: no RCU debt from before carries over, and
	 * where it ran there is not one of our moves.
	 */
	if (tctx) {
		tctx->rcu_debt = 0;
		tctx->ours = true;
		tctx->last_cpu = -1;
		tctx->placed = PATH_OTHER;
		outcome_episode(&tctx->out);
	}
	scx_bpf_task_set_dsq_vtime(p, vtime_now);
}

void BPF_STRUCT_OPS(mlsched_disable, struct task_struct *p)
{
	struct mls_task_ctx *tctx = bpf_task_storage_get(&task_ctx_stor, p, 0, 0);

	if (!tctx)
		return;
	tctx->ours = false;
	/* It ran since (window cut short), or it never did (censored). */
	outcome_close(&tctx->out, scx_bpf_now());
}

s32 BPF_STRUCT_OPS(mlsched_init_task, struct task_struct *p, struct scx_init_task_args *args)
{
	struct mls_task_ctx *tctx;

	tctx = bpf_task_storage_get(&task_ctx_stor, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!tctx)
		return -ENOMEM;
	tctx->last_cpu = -1;
	hist_init(&tctx->hist);
	outcome_episode(&tctx->out);
	return 0;
}

/*
 * Every migration of a task in sched_ext (set_task_cpu(), where perf's
 * cpu-migrations counts too): the total that the per-path counts of
 * ops.running add up to, with what no path accounts for as "other".
 */
SEC("tp_btf/sched_migrate_task")
int BPF_PROG(mlsched_migrate_task, struct task_struct *p, int dest_cpu)
{
	struct mls_task_ctx *tctx = bpf_task_storage_get(&task_ctx_stor, p, 0, 0);

	if (tctx && tctx->ours)
		moves_inc(MOVES_TRACEPOINT);
	return 0;
}

s32 BPF_STRUCT_OPS_SLEEPABLE(mlsched_init)
{
	u32 i;
	s32 ret;

	init_time = bpf_ktime_get_ns();
	bpf_for(i, 0, nr_cpus) {
		ret = scx_bpf_create_dsq(i, node_of(i));
		if (ret) {
			scx_bpf_error("failed to create DSQ of CPU %d: %d", i, ret);
			return ret;
		}
	}
	bpf_for(i, 0, nr_llcs) {
		ret = scx_bpf_create_dsq(LLC_DSQ_BASE + i, -1);
		if (ret) {
			scx_bpf_error("failed to create DSQ of LLC %d: %d", i, ret);
			return ret;
		}
	}
	bpf_for(i, 0, nr_cpus) {
		u32 key = i;
		struct preempt_timer *t = bpf_map_lookup_elem(&preempt_timers, &key);

		if (!t)
			continue;
		ret = bpf_timer_init(&t->timer, &preempt_timers, CLOCK_MONOTONIC);
		if (!ret)
			ret = bpf_timer_set_callback(&t->timer, preempt_timer_fn);
		if (ret) {
			scx_bpf_error("failed to set up the preemption timer of CPU %d: %d", i, ret);
			return ret;
		}
	}
	return 0;
}

void BPF_STRUCT_OPS(mlsched_exit, struct scx_exit_info *ei)
{
	UEI_RECORD(uei, ei);
}

/* Test entry: run can_migrate_decide() on a feature vector from userspace. */
SEC("syscall")
int test_can_migrate_decide(struct decide_arg *arg)
{
	struct mig_features in;

	__builtin_memcpy(&in, &arg->in, sizeof(in));
	arg->verdict = can_migrate_decide(&in, arg->point);
	return 0;
}

/* Test entry: run balance_failed_next() on one case from userspace. */
SEC("syscall")
int test_balance_failed(struct balance_arg *arg)
{
	arg->failed = balance_failed_next(arg->failed, arg->seen, arg->idle_type);
	return 0;
}

SCX_OPS_DEFINE(mlsched_ops,
	       .select_cpu		= (void *)mlsched_select_cpu,
	       .enqueue			= (void *)mlsched_enqueue,
	       .dispatch		= (void *)mlsched_dispatch,
	       .tick			= (void *)mlsched_tick,
	       .running			= (void *)mlsched_running,
	       .stopping		= (void *)mlsched_stopping,
	       .quiescent		= (void *)mlsched_quiescent,
	       .enable			= (void *)mlsched_enable,
	       .disable			= (void *)mlsched_disable,
	       .init_task		= (void *)mlsched_init_task,
	       .init			= (void *)mlsched_init,
	       .exit			= (void *)mlsched_exit,
	       .name			= "mlsched");
