/* SPDX-License-Identifier: GPL-2.0 */
/*
 * scx_mlsched collect: record the fair-class balancer's own decisions.
 *
 * What: a kprobe on can_migrate_task(p, env) computes the feature vector of
 * bpf/features.def (collector column) with CO-RE reads of task_struct,
 * lb_env and the two runqueues, and stashes it per CPU; the kretprobe adds
 * the return value as the label and sends the row through a ring buffer.
 * Rows that do not fit in the ring buffer are counted in `dropped`, never
 * lost silently.
 *
 * The NUMA placement features come from the page allocator tracepoint of
 * numa.bpf.h, loaded with these probes: the scheduler counts the same way.
 * The task history features (run lengths, migrations) come from
 * taskhist.bpf.h, kept here from tp_btf/sched_switch in a pid-keyed hash:
 * the scheduler keeps the same history from ops.running, ops.stopping and
 * ops.quiescent.  The serving-only features (vtime_lead_us,
 * decision_point) stay 0.
 *
 * Why: scx_mlsched's migration rule is learned by imitation (APSys 2020,
 * Chen et al.): the training data is what the kernel decided.  The entry
 * and return of one call run on the same CPU with the runqueue lock held
 * and interrupts off, so one per-CPU stash slot pairs them.
 */
#include <scx/common.bpf.h>
#include "intf.h"
#include "numa.bpf.h"
#include "taskhist.bpf.h"

char _license[] SEC("license") = "GPL";

/* Not in BTF (a #define of kernel/sched/fair.c; PF_KTHREAD is in numa.bpf.h). */
#define LBF_ACTIVE_LB	0x10

/* Set by userspace (src/collect.rs). */
const volatile s64 migration_cost_ns = 500000;
const volatile s32 cpu_node[MAX_CPUS];
const volatile s32 cpu_llc[MAX_CPUS];	/* the LLC id of each CPU (any numbering) */
const volatile u32 nr_nodes = 1;

struct row {
	s64 f[NR_FEATURES];
	s64 label;
	s32 src_cpu;
	s32 dst_cpu;
	s32 point;	/* enum mig_point: KERNEL_BALANCE, _BUSY_DST or _ACTIVE */
	s32 pad;
};

struct stash {
	struct row row;
	u64 valid;	/* 0 nothing stashed, 1 a row, 2 a call left out */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct stash);
} stash_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} rows SEC(".maps");

/*
 * [0] rows dropped (ring buffer full), [1] returns without an entry,
 * [2] calls about a delayed-dequeue task, left out (see the entry probe)
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 3);
	__type(key, u32);
	__type(value, u64);
} counters SEC(".maps");

static void count(u32 idx)
{
	u64 *c = bpf_map_lookup_elem(&counters, &idx);

	if (c)
		(*c)++;
}

static s32 node_of(s32 cpu)
{
	const volatile s32 *v = MEMBER_VPTR(cpu_node, [(u32)cpu]);

	return v ? *v : 0;
}

static s32 llc_of(s32 cpu)
{
	const volatile s32 *v = MEMBER_VPTR(cpu_llc, [(u32)cpu]);

	return v ? *v : 0;
}

/*
 * Task history by pid (the kprobe's task pointer is untrusted: no task
 * storage).  An entry remembers its task's start time, so that a reused
 * pid starts afresh, as numa.bpf.h does.
 */
struct hist_entry {
	u64 start_time;
	struct task_hist h;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, NUMA_TRACKED_TASKS);
	__type(key, u32);
	__type(value, struct hist_entry);
} hist_map SEC(".maps");

static struct task_hist *hist_of(u32 pid, u64 start_time, bool create)
{
	struct hist_entry *e = bpf_map_lookup_elem(&hist_map, &pid);

	if (e && e->start_time == start_time)
		return &e->h;	/* e is not NULL here: no offset on a maybe-NULL pointer */
	if (!create)
		return NULL;
	{
		struct hist_entry fresh = { .start_time = start_time };

		hist_init(&fresh.h);
		if (bpf_map_update_elem(&hist_map, &pid, &fresh, BPF_ANY))
			return NULL;
	}
	e = bpf_map_lookup_elem(&hist_map, &pid);
	if (!e)
		return NULL;
	return &e->h;
}

/*
 * Every context switch: prev stops (going to sleep when it was not
 * preempted and is no longer TASK_RUNNING: the scheduler's ops.quiescent
 * with SCX_DEQ_SLEEP), next starts on this CPU.  The idle tasks (pid 0) are
 * left out.
 */
SEC("tp_btf/sched_switch")
int BPF_PROG(mls_hist_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	u64 now = bpf_ktime_get_ns();
	struct task_hist *h;

	if (prev->pid) {
		h = hist_of(prev->pid, prev->start_time, false);
		if (h)
			hist_stop(h, now, !preempt && prev_state != 0 /* TASK_RUNNING */);
	}
	if (next->pid) {
		h = hist_of(next->pid, next->start_time, true);
		if (h)
			hist_start(h, now, bpf_get_smp_processor_id());
	}
	return 0;
}

static s64 idle_code(enum cpu_idle_type idle)
{
	if (idle == bpf_core_enum_value(enum cpu_idle_type, CPU_NEWLY_IDLE))
		return 2;
	if (idle == bpf_core_enum_value(enum cpu_idle_type, CPU_IDLE))
		return 1;
	return 0;
}

SEC("kprobe/can_migrate_task")
int BPF_KPROBE(can_migrate_task_entry, struct task_struct *p, struct lb_env *env)
{
	u32 zero = 0;
	struct stash *st = bpf_map_lookup_elem(&stash_map, &zero);
	struct rq *src_rq;
	struct sched_domain *sd;
	s32 src, dst;
	s64 delta;
	unsigned long bits = 0;
	const struct cpumask *allowed;

	if (!st)
		return 0;
	/*
	 * A delayed-dequeue task (EEVDF) is asleep, kept on the rq only to
	 * burn its lag; the kernel refuses to move it (unless the balance
	 * migrates load, where it may).  Under sched_ext a
	 * sleeping task is in no queue, so the scheduler never meets this
	 * decision: training on it would teach refusals of cold tasks for a
	 * reason the scheduler cannot see (parity, issue #10).
	 */
	if (bpf_core_field_exists(p->se.sched_delayed) && BPF_CORE_READ(p, se.sched_delayed)) {
		count(2);
		st->valid = 2;
		return 0;
	}
	src_rq = BPF_CORE_READ(env, src_rq);
	sd = BPF_CORE_READ(env, sd);
	src = BPF_CORE_READ(env, src_cpu);
	dst = BPF_CORE_READ(env, dst_cpu);

	__builtin_memset(&st->row, 0, sizeof(st->row));
	st->row.src_cpu = src;
	st->row.dst_cpu = dst;
	/*
	 * The scheduler decides only for a CPU with nothing to run (it steals
	 * when going idle), where the kernel's soft rule against ineligible
	 * tasks (it needs tasks queued on dst) never applies: a balance to a
	 * CPU that has tasks is a point of its own, which training can leave
	 * out (train --scheduler-points).
	 */
	if (BPF_CORE_READ(env, flags) & LBF_ACTIVE_LB)
		st->row.point = POINT_KERNEL_ACTIVE;
	else if (BPF_CORE_READ(env, dst_rq, nr_running) > 0)
		st->row.point = POINT_KERNEL_BUSY_DST;
	else
		st->row.point = POINT_KERNEL_BALANCE;
	delta = (s64)(BPF_CORE_READ(src_rq, clock_task) - BPF_CORE_READ(p, se.exec_start));
	st->row.f[FEAT_delta_hot] = delta < migration_cost_ns;
	st->row.f[FEAT_idle_type] = idle_code(BPF_CORE_READ(env, idle));
	st->row.f[FEAT_same_node] = node_of(src) == node_of(dst);
	st->row.f[FEAT_src_len] = BPF_CORE_READ(src_rq, nr_running);
	st->row.f[FEAT_extra_fails] = BPF_CORE_READ(sd, nr_balance_failed) > BPF_CORE_READ(sd, cache_nice_tries);
	st->row.f[FEAT_running] = BPF_CORE_READ(p, on_cpu);
	allowed = BPF_CORE_READ(p, cpus_ptr);
	if (dst >= 0 && dst < MAX_CPUS)
		bpf_probe_read_kernel(&bits, sizeof(bits), &allowed->bits[dst / 64]);
	st->row.f[FEAT_dst_allowed] = (bits >> (dst % 64)) & 1;
	st->row.f[FEAT_weight] = BPF_CORE_READ(p, se.load.weight) >> 10;
	st->row.f[FEAT_migration_disabled] = BPF_CORE_READ(p, migration_disabled) != 0;
	st->row.f[FEAT_idle_policy] = BPF_CORE_READ(p, policy) == 5;
	st->row.f[FEAT_per_cpu_kthread] = (BPF_CORE_READ(p, flags) & PF_KTHREAD) &&
					  BPF_CORE_READ(p, nr_cpus_allowed) == 1;
	st->row.f[FEAT_balance_failed_any] = BPF_CORE_READ(sd, nr_balance_failed) > 0;
	numa_place_fill(&st->row.f[FEAT_numa_delta_pct], &st->row.f[FEAT_prefer_src],
			&st->row.f[FEAT_prefer_dst], p, node_of(src), node_of(dst));
	hist_fill(st->row.f, hist_of(BPF_CORE_READ(p, pid), BPF_CORE_READ(p, start_time), false),
		  bpf_ktime_get_ns());
	st->row.f[FEAT_dst_len] = BPF_CORE_READ(env, dst_rq, nr_running);
	st->row.f[FEAT_same_llc] = llc_of(src) == llc_of(dst);
	st->valid = 1;
	return 0;
}

SEC("kretprobe/can_migrate_task")
int BPF_KRETPROBE(can_migrate_task_exit, long ret)
{
	u32 zero = 0;
	struct stash *st = bpf_map_lookup_elem(&stash_map, &zero);
	struct row *r;

	if (!st || !st->valid) {
		count(1);
		return 0;
	}
	if (st->valid == 2) {
		st->valid = 0;
		return 0;
	}
	st->valid = 0;
	r = bpf_ringbuf_reserve(&rows, sizeof(*r), 0);
	if (!r) {
		count(0);
		return 0;
	}
	__builtin_memcpy(r, &st->row, sizeof(*r));
	r->label = (int)ret != 0;
	bpf_ringbuf_submit(r, 0);
	return 0;
}
