/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The part of the scheduler's feature fill that needs no sched_ext.
 *
 * What: fill_portable() writes the features of "move p from src to dst"
 * that come from the task, the two CPUs' runqueues and maps of this
 * project's own: same_node, src_len, idle_policy, per_cpu_kthread, the
 * NUMA placement (numa.bpf.h), the task history (taskhist.bpf.h) and
 * same_llc.  The scheduler's mig_features_fill() (main.bpf.c) calls it and
 * adds the features that read sched_ext state (the task's scx fields,
 * scx_bpf_* kfuncs, its own per-CPU contexts).
 *
 * Why a header: `bench inference` times the fill natively, in
 * bpf/tree.bpf.c, which must load on kernels without sched_ext (the hosts
 * here).  Sharing this code makes most of what it times the scheduler's own
 * code; tree.bpf.c stands in for the sched_ext reads with reads of the same
 * kind (a task-storage lookup, a per-CPU map lookup, task fields).
 *
 * The includer defines node_of() and llc_of() (CPU -> node, CPU -> LLC)
 * and rq_nr_running() (the tasks on a CPU's runqueue: main.bpf.c reads the
 * kernel's `runqueues`; tree.bpf.c stands in with a per-CPU map, since a
 * kernel without CONFIG_KALLSYMS_ALL, as the hosts here, cannot resolve
 * that symbol).
 */
#ifndef __MLSCHED_FILL_BPF_H
#define __MLSCHED_FILL_BPF_H

#ifndef PF_KTHREAD
#define PF_KTHREAD		0x00200000
#endif
#define SCHED_IDLE_POLICY	5

/*
 * vtime_lead_us from a lead in ns, bounded to +-10 s: a task whose vtime
 * was never set (0) is not 2^62 ns behind in any useful sense.
 */
#define VTIME_LEAD_CAP_US	10000000LL

static __always_inline s64 vtime_lead_us(s64 lead_ns)
{
	s64 us = lead_ns / 1000;

	return us > VTIME_LEAD_CAP_US ? VTIME_LEAD_CAP_US :
	       us < -VTIME_LEAD_CAP_US ? -VTIME_LEAD_CAP_US : us;
}

static __always_inline void fill_portable(struct mig_features *in, struct task_struct *p,
					  const struct task_hist *hist, s32 src, s32 dst, u64 now)
{
	s32 src_node = node_of(src), dst_node = node_of(dst);

	in->f[FEAT_same_node] = src_node == dst_node;
	in->f[FEAT_src_len] = rq_nr_running(src);
	in->f[FEAT_idle_policy] = p->policy == SCHED_IDLE_POLICY;
	in->f[FEAT_per_cpu_kthread] = (p->flags & PF_KTHREAD) && p->nr_cpus_allowed == 1;
	numa_place_fill(&in->f[FEAT_numa_delta_pct], &in->f[FEAT_prefer_src],
			&in->f[FEAT_prefer_dst], p, src_node, dst_node);
	hist_fill(in->f, hist, now);
	in->f[FEAT_same_llc] = llc_of(src) == llc_of(dst);
}

#endif /* __MLSCHED_FILL_BPF_H */
