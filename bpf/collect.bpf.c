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
 * Why: scx_mlsched's migration rule is learned by imitation (APSys 2020,
 * Chen et al.): the training data is what the kernel decided.  The entry
 * and return of one call run on the same CPU with the runqueue lock held
 * and interrupts off, so one per-CPU stash slot pairs them.
 */
#include <scx/common.bpf.h>
#include "intf.h"

char _license[] SEC("license") = "GPL";

/* Not in BTF (#defines of kernel/sched/fair.c and include/linux/sched.h). */
#define LBF_ACTIVE_LB	0x10
#ifndef PF_KTHREAD
#define PF_KTHREAD	0x00200000
#endif

/* Set by userspace (src/collect.rs). */
const volatile s64 migration_cost_ns = 500000;
const volatile s32 cpu_node[MAX_CPUS];
const volatile u32 nr_nodes = 1;

struct row {
	s64 f[NR_FEATURES];
	s64 label;
	s32 src_cpu;
	s32 dst_cpu;
};

struct stash {
	struct row row;
	u64 valid;
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

/* [0] rows dropped (ring buffer full), [1] returns without an entry */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
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

/* The NUMA_MEM faults of @p on node @nid (task_faults_idx(NUMA_MEM, nid, 0/1)). */
static s64 node_faults(struct task_struct *p, s32 nid)
{
	unsigned long *faults = BPF_CORE_READ(p, numa_faults);
	unsigned long a = 0, b = 0;

	if (!faults || nid < 0 || nid >= MAX_NODES)
		return 0;
	bpf_probe_read_kernel(&a, sizeof(a), faults + 2 * nid);
	bpf_probe_read_kernel(&b, sizeof(b), faults + 2 * nid + 1);
	return a + b;
}

static s64 idle_code(enum cpu_idle_type idle)
{
	if (idle == bpf_core_enum_value(enum cpu_idle_type, CPU_NEWLY_IDLE))
		return 2;
	if (idle == bpf_core_enum_value(enum cpu_idle_type, CPU_IDLE))
		return 1;
	return 0;
}

/* Field names of struct cfs_rq before the EEVDF sums were renamed. */
struct cfs_rq___old {
	s64 avg_vruntime;
	u64 avg_load;
	u64 min_vruntime;
} __attribute__((preserve_access_index));

/* avg_vruntime_weight() of kernel/sched/fair.c (7.3). */
static s64 eevdf_weight(u64 w, u32 shift)
{
	if (shift) {
		w >>= shift;
		if (w < 2)
			w = 2;
	}
	return w;
}

/*
 * !vruntime_eligible(cfs_rq, p->se.vruntime) of kernel/sched/fair.c (7.3):
 * lag >= 0 <=> sum_w_vruntime (+ curr) >= key * sum_weight (+ curr), with
 * weights from se->h_load.  The kernel compares in 128 bits; on a 64-bit
 * overflow the sign of key decides, as in its non-int128 variant.
 * Kernels before the rename use avg_vruntime/avg_load/min_vruntime.
 */
static bool task_ineligible(struct task_struct *p, struct cfs_rq *cfs_rq)
{
	struct cfs_rq___old *old = (void *)cfs_rq;
	struct sched_entity *curr;
	s64 avg, load, key, base, lim;
	u32 shift = 0;

	if (bpf_core_field_exists(cfs_rq->sum_w_vruntime)) {
		avg = BPF_CORE_READ(cfs_rq, sum_w_vruntime);
		load = BPF_CORE_READ(cfs_rq, sum_weight);
		base = BPF_CORE_READ(cfs_rq, zero_vruntime);
		if (bpf_core_field_exists(cfs_rq->sum_shift))
			shift = BPF_CORE_READ(cfs_rq, sum_shift) & 63;
	} else if (bpf_core_field_exists(old->avg_vruntime)) {
		avg = BPF_CORE_READ(old, avg_vruntime);
		load = BPF_CORE_READ(old, avg_load);
		base = BPF_CORE_READ(old, min_vruntime);
	} else {
		return false;
	}
	curr = BPF_CORE_READ(cfs_rq, curr);
	if (curr && BPF_CORE_READ(curr, on_rq)) {
		s64 w = eevdf_weight(bpf_core_field_exists(curr->h_load) ?
				     BPF_CORE_READ(curr, h_load.weight) :
				     BPF_CORE_READ(curr, load.weight) >> 10, shift);

		avg += (s64)(BPF_CORE_READ(curr, vruntime) - base) * w;
		load += w;
	}
	key = (s64)(BPF_CORE_READ(p, se.vruntime) - base);
	if (key == 0 || load <= 0)
		return avg < 0;
	lim = 0x7fffffffffffffffLL / load;
	if (key > lim || key < -lim)
		return key > 0;
	return avg < key * load;
}

SEC("kprobe/can_migrate_task")
int BPF_KPROBE(can_migrate_task_entry, struct task_struct *p, struct lb_env *env)
{
	u32 zero = 0;
	struct stash *st = bpf_map_lookup_elem(&stash_map, &zero);
	struct rq *src_rq, *dst_rq;
	struct sched_domain *sd;
	struct cfs_rq *cfs_rq;
	s32 src, dst, nid, sn, dn;
	s64 delta, total;
	unsigned long bits = 0;
	const struct cpumask *allowed;

	if (!st)
		return 0;
	src_rq = BPF_CORE_READ(env, src_rq);
	dst_rq = BPF_CORE_READ(env, dst_rq);
	sd = BPF_CORE_READ(env, sd);
	src = BPF_CORE_READ(env, src_cpu);
	dst = BPF_CORE_READ(env, dst_cpu);
	sn = node_of(src);
	dn = node_of(dst);
	nid = BPF_CORE_READ(p, numa_preferred_nid);
	cfs_rq = BPF_CORE_READ(p, se.cfs_rq);

	__builtin_memset(&st->row, 0, sizeof(st->row));
	st->row.src_cpu = src;
	st->row.dst_cpu = dst;
	if (bpf_core_field_exists(src_rq->nr_preferred_running))
		st->row.f[FEAT_src_non_pref_nr] = (s64)BPF_CORE_READ(src_rq, nr_running) -
						  (s64)BPF_CORE_READ(src_rq, nr_preferred_running);
	delta = (s64)(BPF_CORE_READ(src_rq, clock_task) - BPF_CORE_READ(p, se.exec_start));
	st->row.f[FEAT_delta_hot] = delta < migration_cost_ns;
	st->row.f[FEAT_idle_type] = idle_code(BPF_CORE_READ(env, idle));
	st->row.f[FEAT_same_node] = sn == dn;
	st->row.f[FEAT_prefer_src] = nid >= 0 && nid == sn;
	st->row.f[FEAT_prefer_dst] = nid >= 0 && nid == dn;
	st->row.f[FEAT_src_len] = BPF_CORE_READ(src_rq, nr_running);
	st->row.f[FEAT_src_load] = BPF_CORE_READ(src_rq, cfs.avg.load_avg);
	st->row.f[FEAT_dst_load] = BPF_CORE_READ(dst_rq, cfs.avg.load_avg);
	st->row.f[FEAT_dst_len] = BPF_CORE_READ(dst_rq, nr_running);
	total = BPF_CORE_READ(p, total_numa_faults);
	if (total > 0)
		st->row.f[FEAT_delta_faults] = 1000 * (node_faults(p, dn) - node_faults(p, sn)) / total;
	st->row.f[FEAT_extra_fails] = BPF_CORE_READ(sd, nr_balance_failed) > BPF_CORE_READ(sd, cache_nice_tries);
	st->row.f[FEAT_buddy_hot] = cfs_rq && BPF_CORE_READ(cfs_rq, next) == &p->se &&
				    BPF_CORE_READ(dst_rq, nr_running) > 0;
	st->row.f[FEAT_running] = BPF_CORE_READ(p, on_cpu);
	if (cfs_rq && bpf_core_field_exists(cfs_rq->throttle_count))
		st->row.f[FEAT_throttled] = BPF_CORE_READ(cfs_rq, throttle_count) > 0;
	allowed = BPF_CORE_READ(p, cpus_ptr);
	if (dst >= 0 && dst < MAX_CPUS)
		bpf_probe_read_kernel(&bits, sizeof(bits), &allowed->bits[dst / 64]);
	st->row.f[FEAT_dst_allowed] = (bits >> (dst % 64)) & 1;
	st->row.f[FEAT_weight] = BPF_CORE_READ(p, se.load.weight) >> 10;
	st->row.f[FEAT_migration_disabled] = BPF_CORE_READ(p, migration_disabled) != 0;
	st->row.f[FEAT_idle_policy] = BPF_CORE_READ(p, policy) == 5;
	st->row.f[FEAT_per_cpu_kthread] = (BPF_CORE_READ(p, flags) & PF_KTHREAD) &&
					  BPF_CORE_READ(p, nr_cpus_allowed) == 1;
	if (bpf_core_field_exists(p->se.sched_delayed))
		st->row.f[FEAT_sched_delayed] = BPF_CORE_READ(p, se.sched_delayed) != 0;
	st->row.f[FEAT_balance_failed_any] = BPF_CORE_READ(sd, nr_balance_failed) > 0;
	st->row.f[FEAT_ineligible] = BPF_CORE_READ(dst_rq, cfs.h_nr_queued) > 0 &&
				     task_ineligible(p, &src_rq->cfs);
	st->row.f[FEAT_active_lb] = (BPF_CORE_READ(env, flags) & LBF_ACTIVE_LB) != 0;
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
