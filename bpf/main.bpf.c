/* SPDX-License-Identifier: GPL-2.0 */
/*
 * scx_mlsched: the sched_ext scheduler.
 *
 * What: a vtime-fair scheduler with one dispatch queue (DSQ) per CPU and one
 * shared DSQ per LLC.
 *   - select_cpu: prev_cpu if idle, else an idle CPU of prev_cpu's LLC; both
 *     only within p->cpus_ptr.  A task that finds an idle CPU is dispatched
 *     straight to it.
 *   - enqueue: pinned tasks and cache-hot tasks (ran less than the migration
 *     cost ago) go to their CPU's DSQ, to keep their cache; cold tasks go to
 *     the LLC's shared DSQ, which every CPU of the LLC serves.
 *   - dispatch: a CPU takes the lower-vtime head of its own DSQ and its LLC's
 *     DSQ; with both empty it steals from other CPUs' DSQs and other LLCs.
 *   - tick: a busy CPU with queued work kicks an idle CPU so that it tries to
 *     steal (the periodic balance of the fair class).
 * Vtime advances by runtime * 100 / weight and orders the queues.  Every
 * enqueue clamps a task's vtime to at most one slice behind vtime_now
 * (which follows the vtimes that start running, one slice per start at
 * most), so that no queue can drift far behind another and starve it.
 * Since dispatch runs before prev is re-enqueued, dispatch itself compares
 * prev's vtime (with its current run) with the queue heads and lets prev go
 * on while it is not ahead: that is what gives nice levels their weight
 * ratio on a shared CPU.
 *
 * Why: every steal passes through can_migrate(p, src, dst), the counterpart
 * of the kernel's can_migrate_task().  It computes the feature vector of
 * bpf/features.def and decides by --policy: the kernel's rules
 * (can_migrate_decide: affinity, migration disabled, running, cache-hot
 * unless balancing failed more than cache_nice_tries times; its userspace
 * twin is src/sched/heuristic.rs), or the learned tree (tree.bpf.h) behind
 * hard guards, or the heuristic with the tree walked beside it (shadow).
 * Tree decisions are sampled to userspace, where linfa checks each one.
 */
#include <scx/common.bpf.h>
#include "intf.h"
#include "tree.bpf.h"

char _license[] SEC("license") = "GPL";

#define SCHED_IDLE_POLICY	5
#ifndef PF_KTHREAD
#define PF_KTHREAD		0x00200000
#endif

/* Set by userspace before load (src/scheduler.rs). */
const volatile u64 slice_ns = 3ULL * 1000 * 1000;
const volatile u64 migration_cost_ns = 500ULL * 1000;
const volatile u64 cache_nice_tries = 1;
const volatile u32 nr_cpus = 1;
const volatile u32 nr_llcs = 1;
const volatile s32 cpu_llc[MAX_CPUS];
const volatile s32 cpu_node[MAX_CPUS];

/* Migration policy and the model's freshness (see can_migrate()). */
const volatile u32 policy = POLICY_HEURISTIC;
const volatile u64 sample_every = 64;	/* per CPU; 0: no samples */
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

struct mls_task_ctx {
	u64 enq_at;		/* when the task was last queued (ns) */
	u64 last_stop;		/* when the task last stopped running (ns) */
	u64 started;		/* when it last started running (ns) */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct mls_task_ctx);
} task_ctx_stor SEC(".maps");

struct cpu_ctx {
	u64 nr_balance_failed;	/* consecutive steal scans that were refused */
	u64 nr_tree_walks;	/* for sampling every sample_every-th walk */
};

/* Decisions the tree made, for the userspace twin (src/sched/twin.rs). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} samples SEC(".maps");

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

static void stat_inc(u32 idx)
{
	u32 zero = 0;
	struct stats_val *s = bpf_map_lookup_elem(&stats, &zero);

	if (s && idx < NR_MLSCHED_STATS)
		s->cnt[idx]++;
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

static u64 llc_dsq(s32 cpu)
{
	return LLC_DSQ_BASE + llc_of(cpu);
}

static bool is_hot(struct task_struct *p, u64 now)
{
	struct mls_task_ctx *tctx = bpf_task_storage_get(&task_ctx_stor, p, 0, 0);

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

/*
 * The decision itself, on features only: the kernel's can_migrate_task()
 * rules in the kernel's order.  Pure, so that a SEC("syscall") program can
 * test it against its userspace twin (src/heuristic.rs).
 */
static __always_inline s32 can_migrate_decide(const struct mig_features *in)
{
	s32 hard = mig_hard_rules(in);

	if (hard >= 0)
		return hard;
	if (!in->f[FEAT_delta_hot])
		return MIG_ALLOWED;
	if (in->f[FEAT_extra_fails])
		return MIG_ALLOWED_FAILS;
	return MIG_DENY_HOT;
}

/*
 * Fill the feature vector of "move @p from @src to @dst" as the scheduler
 * sees it (see the scheduler column of bpf/features.def).
 */
static void mig_features_fill(struct mig_features *in, struct task_struct *p,
			      s32 src, s32 dst, s64 idle_type)
{
	struct cpu_ctx *cctx = this_cpu_ctx();
	u64 now = scx_bpf_now();
	s64 src_len = scx_bpf_dsq_nr_queued(src) + 1;
	s64 dst_len = scx_bpf_dsq_nr_queued(dst);
	int nid = -1;

	if (bpf_core_field_exists(p->numa_preferred_nid))
		nid = BPF_CORE_READ(p, numa_preferred_nid);

	in->f[FEAT_src_non_pref_nr] = 0;
	in->f[FEAT_delta_hot] = is_hot(p, now);
	in->f[FEAT_idle_type] = idle_type;
	in->f[FEAT_same_node] = node_of(src) == node_of(dst);
	in->f[FEAT_prefer_src] = nid >= 0 && nid == node_of(src);
	in->f[FEAT_prefer_dst] = nid >= 0 && nid == node_of(dst);
	in->f[FEAT_src_len] = src_len;
	in->f[FEAT_src_load] = src_len * 1024;
	in->f[FEAT_dst_load] = dst_len * 1024;
	in->f[FEAT_dst_len] = dst_len;
	in->f[FEAT_delta_faults] = 0;
	in->f[FEAT_extra_fails] = cctx && cctx->nr_balance_failed > cache_nice_tries;
	in->f[FEAT_buddy_hot] = 0;
	in->f[FEAT_running] = scx_bpf_task_running(p);
	in->f[FEAT_throttled] = 0;
	in->f[FEAT_dst_allowed] = bpf_cpumask_test_cpu(dst, p->cpus_ptr);
	in->f[FEAT_weight] = (s64)p->scx.weight * 1024 / 100;
	in->f[FEAT_migration_disabled] = is_migration_disabled(p);
	in->f[FEAT_idle_policy] = p->policy == SCHED_IDLE_POLICY;
	in->f[FEAT_per_cpu_kthread] = (p->flags & PF_KTHREAD) && p->nr_cpus_allowed == 1;
	in->f[FEAT_sched_delayed] = 0;
	in->f[FEAT_balance_failed_any] = cctx && cctx->nr_balance_failed > 0;
	in->f[FEAT_ineligible] = dst_len > 0 && (s64)(p->scx.dsq_vtime - vtime_now) > 0;
	in->f[FEAT_active_lb] = 0;
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
	       verdict == MIG_ML_ALLOWED;
}

/*
 * The tree's verdict on @in (1 migrate, 0 stay), or -1 when the heuristic
 * must decide instead: no model, userspace's heartbeat older than
 * feed_timeout_ns (userspace hung: the features it feeds, and the twin,
 * are stale), or a walk without a verdict.  Each fallback has its stat.
 */
static int ml_verdict(const struct mig_features *in, u64 *generation)
{
	const struct model_bank *b;
	u64 now = bpf_ktime_get_ns();
	int v;

	/* Signed: userspace may write a stamp newer than @now meanwhile. */
	if (feed_timeout_ns && (s64)(now - feed_stamp_ns) > (s64)feed_timeout_ns) {
		stat_inc(STAT_ML_FALLBACK_STALE);
		return -1;
	}
	b = model_bank_get(model_active);
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

/* Send every sample_every-th tree decision of this CPU to the twin. */
static void sample_decision(const struct mig_features *in, u64 generation,
			    s32 src, s32 dst, s32 tree, s32 heuristic, s32 acted)
{
	struct cpu_ctx *cctx = this_cpu_ctx();
	struct mig_sample *s;

	if (!sample_every || !cctx || ++cctx->nr_tree_walks % sample_every)
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
	bpf_ringbuf_submit(s, 0);
	stat_inc(STAT_SAMPLES);
}

/*
 * The ml and shadow policies on a filled vector: returns the verdict to act
 * on.  Global (noinline): the verifier checks it once, on its own.
 */
__noinline int ml_gate(const struct mig_features *in, s32 heuristic, s32 src, s32 dst)
{
	u64 generation = 0;
	s32 guard;
	int tree;

	if (!in)
		return heuristic;
	guard = ml_guard(in);
	if (guard >= 0)
		return policy == POLICY_ML ? guard : heuristic;
	tree = ml_verdict(in, &generation);
	if (tree < 0)
		return heuristic;
	stat_inc(tree ? STAT_ML_MIGRATE : STAT_ML_STAY);
	if ((bool)tree == verdict_allows(heuristic))
		stat_inc(STAT_ML_AGREE);
	if (policy == POLICY_ML) {
		s32 verdict = tree ? MIG_ML_ALLOWED : MIG_ML_DENIED;

		sample_decision(in, generation, src, dst, tree, heuristic, verdict);
		return verdict;
	}
	sample_decision(in, generation, src, dst, tree, heuristic, heuristic);
	return heuristic;
}

/*
 * can_migrate - may @p move from CPU @src to CPU @dst?
 * The one gate of every migration this scheduler makes on its own.
 * A global function (verified once, on its own, with @p a trusted task
 * pointer): inlined into the steal loops, its branches made the verifier
 * give up on ops.dispatch (over a million instructions) once the tree was
 * in it.
 *   heuristic: can_migrate_decide(), the kernel's rule.
 *   ml:        ml_guard(), then the tree (the heuristic when it cannot).
 *   shadow:    acts like heuristic; the tree walks beside it, for the stats
 *              and the twin.
 */
__noinline int can_migrate(struct task_struct *p __arg_trusted, s32 src, s32 dst, s64 idle_type)
{
	struct mig_features in = {};
	s32 verdict;

	if (!p)
		return false;
	mig_features_fill(&in, p, src, dst, idle_type);
	verdict = can_migrate_decide(&in);
	if (policy != POLICY_HEURISTIC)
		verdict = ml_gate(&in, verdict, src, dst);
	stat_inc(STAT_MIG_BASE + verdict);
	return verdict_allows(verdict);
}

/* An idle CPU for @p: prev_cpu, then prev_cpu's LLC, within p->cpus_ptr. */
static s32 pick_idle_cpu(struct task_struct *p, s32 prev_cpu)
{
	s32 llc = llc_of(prev_cpu);
	u32 i;

	if (bpf_cpumask_test_cpu(prev_cpu, p->cpus_ptr) &&
	    scx_bpf_test_and_clear_cpu_idle(prev_cpu))
		return prev_cpu;

	bpf_for(i, 1, nr_cpus) {
		s32 cpu = (prev_cpu + i) % nr_cpus;

		if (llc_of(cpu) != llc || !bpf_cpumask_test_cpu(cpu, p->cpus_ptr))
			continue;
		if (scx_bpf_test_and_clear_cpu_idle(cpu))
			return cpu;
	}
	return -EBUSY;
}

s32 BPF_STRUCT_OPS(mlsched_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	s32 cpu = pick_idle_cpu(p, prev_cpu);

	if (cpu >= 0) {
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, slice_ns, 0);
		stat_inc(STAT_DISPATCH_LOCAL);
		return cpu;
	}
	return prev_cpu;
}

/*
 * A task's vtime as the queues see it: at most one slice behind vtime_now.
 * A sleeper gets that much credit and no more; a task that ran little while
 * others raced ahead (yielders, or tasks on a busy CPU while another CPU
 * ran low-weight tasks) is brought up, so that queues cannot drift apart.
 * Applied on every enqueue, not only wakeups: the drift seen without it
 * starved a pinned ksoftirqd for 38 s behind preempted CPU hogs.
 */
static u64 vtime_clamped(u64 vtime)
{
	u64 floor = vtime_now - slice_ns;

	return time_before(vtime, floor) ? floor : vtime;
}

/* Wake one idle CPU so that it runs dispatch and tries to pull work. */
static void kick_idle_cpu(void)
{
	const struct cpumask *idle = scx_bpf_get_idle_cpumask();
	u32 cpu = bpf_cpumask_any_distribute(idle);

	scx_bpf_put_idle_cpumask(idle);
	if (cpu < nr_cpus) {
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
		stat_inc(STAT_KICKS);
	}
}

void BPF_STRUCT_OPS(mlsched_enqueue, struct task_struct *p, u64 enq_flags)
{
	s32 cpu = scx_bpf_task_cpu(p);
	u64 vtime = vtime_clamped(p->scx.dsq_vtime);
	struct mls_task_ctx *tctx = bpf_task_storage_get(&task_ctx_stor, p, 0, 0);
	u64 now = scx_bpf_now();

	if (tctx)
		tctx->enq_at = now;
	if (p->nr_cpus_allowed == 1 || is_migration_disabled(p) || is_hot(p, now)) {
		scx_bpf_dsq_insert_vtime(p, cpu, slice_ns, vtime, enq_flags);
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
	} else {
		scx_bpf_dsq_insert_vtime(p, llc_dsq(cpu), slice_ns, vtime, enq_flags);
		kick_idle_cpu();
	}
}

/*
 * Candidates a steal looks at per queue, in vtime order.  The kernel's
 * balancer bounds its scan the same way (sysctl_sched_nr_migrate, 32); a
 * queue full of pinned tasks would otherwise be walked whole on every kick.
 */
#define STEAL_SCAN_MAX	16

/*
 * Move the first task of @dsq that can_migrate() allows onto @cpu, looking
 * at STEAL_SCAN_MAX candidates at most.  Sets *@refused if it saw one that
 * was refused.
 */
static bool steal_from(u64 dsq, s32 cpu, s64 idle_type, bool *refused)
{
	struct bpf_iter_scx_dsq it;
	struct task_struct *p;
	bool moved = false;
	u32 j;

	bpf_rcu_read_lock();
	if (bpf_iter_scx_dsq_new(&it, dsq, 0))
		goto out;
	/* A numeric iterator bounds the walk; a counter would defeat the verifier. */
	bpf_for(j, 0, STEAL_SCAN_MAX) {
		p = bpf_iter_scx_dsq_next(&it);
		if (!p)
			break;
		/* The verifier wants an acquired reference (as scx_tickless does). */
		p = bpf_task_from_pid(p->pid);
		if (!p)
			continue;
		if (!can_migrate(p, scx_bpf_task_cpu(p), cpu, idle_type)) {
			*refused = true;
			bpf_task_release(p);
			continue;
		}
		moved = scx_bpf_dsq_move(&it, p, SCX_DSQ_LOCAL, 0);
		bpf_task_release(p);
		if (moved)
			break;
	}
out:
	bpf_iter_scx_dsq_destroy(&it);
	bpf_rcu_read_unlock();
	return moved;
}

/*
 * Pull one task from another CPU's DSQ or another LLC's DSQ onto @cpu.
 * Every candidate passes can_migrate().  Returns true if a task was moved.
 */
static bool steal(s32 cpu, s64 idle_type)
{
	struct cpu_ctx *cctx = this_cpu_ctx();
	bool moved = false, refused = false;
	u32 i;

	bpf_for(i, 1, nr_cpus + nr_llcs) {
		u64 dsq;

		if (i < nr_cpus)
			dsq = (cpu + i) % nr_cpus;
		else if (i - nr_cpus != llc_of(cpu))
			dsq = LLC_DSQ_BASE + (i - nr_cpus);
		else
			continue;
		if (scx_bpf_dsq_nr_queued(dsq) && steal_from(dsq, cpu, idle_type, &refused)) {
			moved = true;
			break;
		}
	}

	if (moved) {
		stat_inc(STAT_DISPATCH_STOLEN);
		if (cctx)
			cctx->nr_balance_failed = 0;
	} else if (refused) {
		stat_inc(STAT_STEAL_FAILED);
		if (cctx)
			cctx->nr_balance_failed++;
	}
	return moved;
}

static bool consume(u64 dsq, u32 stat)
{
	if (!scx_bpf_dsq_move_to_local(dsq, 0))
		return false;
	stat_inc(stat);
	return true;
}

/*
 * A queued task that waited longer than this is served first, whatever the
 * vtimes say.  A safety net: the clamp in vtime_clamped() keeps the queues'
 * vtimes close, but the kernel ejects a scheduler that leaves a runnable
 * task waiting for 30 s, so no ordering mistake may last that long.
 */
#define STARVATION_NS	(100ULL * 1000 * 1000)

static bool waited_too_long(struct task_struct *p, u64 now)
{
	struct mls_task_ctx *tctx = bpf_task_storage_get(&task_ctx_stor, p, 0, 0);

	return tctx && tctx->enq_at && now - tctx->enq_at > STARVATION_NS;
}

/* Vtime advance of @used ns of run: weight 100 is nice 0; heavier tasks age slower. */
static u64 vtime_delta(struct task_struct *p, u64 used)
{
	return used * 100 / (p->scx.weight ? p->scx.weight : 1);
}

/* How long the task has been running since ops.running (0 if unknown). */
static u64 current_run(const struct mls_task_ctx *tctx, u64 now)
{
	return tctx->started && now > tctx->started ? now - tctx->started : 0;
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
		vtime += vtime_delta(prev, current_run(tctx, now));
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

	if (mine && waited_too_long(mine, now)) {
		shared_first = false;
	} else if (ours && waited_too_long(ours, now)) {
		shared_first = true;
	} else if (prev_queued && (mine || ours)) {
		/*
		 * prev's slice ran out, and it is not in any queue yet: it
		 * goes on while its vtime is not ahead of the head that would
		 * replace it.  Without this, two tasks sharing a CPU alternate
		 * whatever their weights.
		 */
		struct task_struct *head = shared_first ? ours : mine;

		if (head && !time_after(prev_vtime(prev, now), head->scx.dsq_vtime)) {
			prev->scx.slice = slice_ns;
			stat_inc(STAT_KEEP_PREV);
			return;
		}
	}

	if (shared_first) {
		if (consume(shared, STAT_DISPATCH_LLC_DSQ) || consume(cpu, STAT_DISPATCH_CPU_DSQ))
			return;
	} else {
		if (consume(cpu, STAT_DISPATCH_CPU_DSQ) || consume(shared, STAT_DISPATCH_LLC_DSQ))
			return;
	}

	/* A CPU whose task just stopped is "newly idle" (2); a kicked one is "idle" (1). */
	if (steal(cpu, prev ? 2 : 1))
		return;

	/* Nothing else to run: let prev go on if it still wants the CPU. */
	if (prev_queued)
		prev->scx.slice = slice_ns;
}

void BPF_STRUCT_OPS(mlsched_tick, struct task_struct *p)
{
	if (debug_error_after_ns && bpf_ktime_get_ns() - init_time > debug_error_after_ns)
		scx_bpf_error("error exit requested by --debug-error-after-ms (%llu ms)",
			      debug_error_after_ns / 1000000);
	if (scx_bpf_dsq_nr_queued(scx_bpf_task_cpu(p)) || scx_bpf_dsq_nr_queued(llc_dsq(scx_bpf_task_cpu(p))))
		kick_idle_cpu();
}

void BPF_STRUCT_OPS(mlsched_running, struct task_struct *p)
{
	struct mls_task_ctx *tctx = bpf_task_storage_get(&task_ctx_stor, p, 0, 0);

	/*
	 * vtime_now follows the tasks that start running, but moves at most
	 * one slice per start: a low-weight task's vtime leaps (nice 19 ages
	 * 100 times faster than nice 0), and following it in one step would
	 * drag every other task's floor up and flatten their weight ratios.
	 */
	if (time_after(p->scx.dsq_vtime, vtime_now)) {
		u64 ahead = p->scx.dsq_vtime - vtime_now;

		vtime_now += ahead < slice_ns ? ahead : slice_ns;
	}
	if (tctx)
		tctx->started = scx_bpf_now();
}

void BPF_STRUCT_OPS(mlsched_stopping, struct task_struct *p, bool runnable)
{
	struct mls_task_ctx *tctx = bpf_task_storage_get(&task_ctx_stor, p, 0, 0);
	u64 now = scx_bpf_now();

	if (!tctx)
		return;
	p->scx.dsq_vtime += vtime_delta(p, current_run(tctx, now));
	tctx->last_stop = now;
}

void BPF_STRUCT_OPS(mlsched_enable, struct task_struct *p)
{
	p->scx.dsq_vtime = vtime_now;
}

s32 BPF_STRUCT_OPS(mlsched_init_task, struct task_struct *p, struct scx_init_task_args *args)
{
	if (!bpf_task_storage_get(&task_ctx_stor, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE))
		return -ENOMEM;
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
	arg->verdict = can_migrate_decide(&in);
	return 0;
}

SCX_OPS_DEFINE(mlsched_ops,
	       .select_cpu		= (void *)mlsched_select_cpu,
	       .enqueue			= (void *)mlsched_enqueue,
	       .dispatch		= (void *)mlsched_dispatch,
	       .tick			= (void *)mlsched_tick,
	       .running			= (void *)mlsched_running,
	       .stopping		= (void *)mlsched_stopping,
	       .enable			= (void *)mlsched_enable,
	       .init_task		= (void *)mlsched_init_task,
	       .init			= (void *)mlsched_init,
	       .exit			= (void *)mlsched_exit,
	       .name			= "mlsched");
