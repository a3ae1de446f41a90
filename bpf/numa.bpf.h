/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Per-task NUMA memory placement, gathered for real (issue #10, item 3),
 * included by both the collector (collect.bpf.c) and the scheduler
 * (main.bpf.c) so that the NUMA features mean the same on both sides, and
 * by tree.bpf.c, where `bench inference` measures its cost natively.
 *
 * What: a tracepoint program on kmem:mm_page_alloc counts, for every user
 * task, the pages it allocated on each NUMA node (movable allocations made
 * in its own context: its anonymous memory and page cache it faults in).
 * The node of a page comes from its pfn, looked up in the node pfn ranges
 * that userspace reads from /proc/zoneinfo (src/sched/numa.rs).  When a
 * task's total passes NUMA_PAGES_CAP, every count is halved, so the counts
 * are a recency-weighted share of where the task put its memory.
 * numa_place_fill() turns them into the three features of
 * bpf/features.def: numa_delta_pct, prefer_src and prefer_dst.
 *
 * Why not the kernel's own NUMA faults: NUMA balancing scans from the fair
 * class's tick (task_tick_numa()), which never runs for a sched_ext task,
 * so under the scheduler no hinting fault is taken, task_numa_fault()
 * never fires and p->numa_faults / numa_preferred_nid stay empty.  The
 * page allocator runs under any scheduling class, so this source is the
 * same in training (collect, fair class) and in service.
 *
 * Why a pid-keyed LRU hash, not task storage: the collector's kprobe holds
 * an untrusted task pointer, which bpf_task_storage_get() refuses.  An
 * entry remembers its task's start time, so a reused pid starts from zero.
 * Pages allocated before the programs were loaded are not seen.
 */
#ifndef __MLSCHED_NUMA_BPF_H
#define __MLSCHED_NUMA_BPF_H

/* Plain libbpf only (no scx headers): tree.bpf.c includes it too, for `bench inference`. */
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>

#ifndef PF_KTHREAD
#define PF_KTHREAD	0x00200000
#endif
/* Bit 3 of gfp_t (include/linux/gfp_types.h), the same in every kernel with sched_ext. */
#define NUMA_GFP_MOVABLE	0x08

/* Node pfn ranges, set by userspace before load (src/sched/numa.rs). */
const volatile u64 numa_pfn_lo[NUMA_PFN_RANGES];
const volatile u64 numa_pfn_hi[NUMA_PFN_RANGES];	/* exclusive */
const volatile s32 numa_pfn_nid[NUMA_PFN_RANGES];
const volatile u32 nr_numa_pfn_ranges;

struct numa_pages {
	u64 start_time;			/* task->start_time of the owner */
	u32 total;			/* sum of pages[] */
	u32 pages[NUMA_TRACK_NODES];	/* pages allocated on each node, halved at the cap */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, NUMA_TRACKED_TASKS);
	__type(key, u32);		/* task pid (a thread id) */
	__type(value, struct numa_pages);
} numa_pages_map SEC(".maps");

/* The node of page frame @pfn, or -1 when no range has it. */
static __always_inline s32 numa_pfn_node(u64 pfn)
{
	u32 i;

	for (i = 0; i < NUMA_PFN_RANGES; i++) {
		if (i >= nr_numa_pfn_ranges)
			break;
		if (pfn >= numa_pfn_lo[i] && pfn < numa_pfn_hi[i])
			return numa_pfn_nid[i];
	}
	return -1;
}

SEC("tp/kmem/mm_page_alloc")
int mls_numa_page_alloc(struct trace_event_raw_mm_page_alloc *ctx)
{
	/* Direct loads through a BTF pointer: no probe-read helper calls. */
	struct task_struct *cur = bpf_get_current_task_btf();
	struct numa_pages *np, fresh = {};
	u64 start;
	u32 pid, order, add, total, i;
	s32 nid;

	if (!(ctx->gfp_flags & NUMA_GFP_MOVABLE) || (cur->flags & PF_KTHREAD))
		return 0;
	nid = numa_pfn_node(ctx->pfn);
	if (nid < 0 || nid >= NUMA_TRACK_NODES)
		return 0;
	order = ctx->order;
	add = order < 16 ? 1U << order : 1U << 16;
	pid = (u32)bpf_get_current_pid_tgid();
	start = cur->start_time;
	np = bpf_map_lookup_elem(&numa_pages_map, &pid);
	if (!np || np->start_time != start) {
		/* A new task, or a reused pid: start from zero. */
		fresh.start_time = start;
		if (bpf_map_update_elem(&numa_pages_map, &pid, &fresh, BPF_ANY))
			return 0;
		np = bpf_map_lookup_elem(&numa_pages_map, &pid);
		if (!np)
			return 0;
	}
	/*
	 * Only the task itself writes its entry (allocations in its context);
	 * readers on other CPUs may see a halving half done, which
	 * numa_place_fill() bounds.  The new total is stored once.
	 */
	np->pages[nid & (NUMA_TRACK_NODES - 1)] += add;
	total = np->total + add;
	if (total > NUMA_PAGES_CAP) {
		total = 0;
		for (i = 0; i < NUMA_TRACK_NODES; i++) {
			np->pages[i] /= 2;
			total += np->pages[i];
		}
	}
	np->total = total;
	return 0;
}

/*
 * The NUMA features of "move @p from node @src_node to node @dst_node"
 * (bpf/features.def), the same code on both sides.  A task with fewer than
 * NUMA_MIN_PAGES counted has no placement: all three are 0.  The preferred
 * node is the one holding more than half of the task's counted pages.
 */
static __always_inline void numa_place_fill(s64 *f_delta, s64 *f_prefer_src,
					    s64 *f_prefer_dst, struct task_struct *p,
					    s32 src_node, s32 dst_node)
{
	struct numa_pages *np;
	u32 pid = BPF_CORE_READ(p, pid);
	u64 src_pages = 0, dst_pages = 0, total;

	*f_delta = *f_prefer_src = *f_prefer_dst = 0;
	/* Without ranges the tracker is not loaded: no lookup in the fast path. */
	if (src_node == dst_node || !nr_numa_pfn_ranges)
		return;
	np = bpf_map_lookup_elem(&numa_pages_map, &pid);
	if (!np || np->start_time != BPF_CORE_READ(p, start_time))
		return;
	total = np->total;
	if (total < NUMA_MIN_PAGES)
		return;
	if (src_node >= 0 && src_node < NUMA_TRACK_NODES)
		src_pages = np->pages[src_node & (NUMA_TRACK_NODES - 1)];
	if (dst_node >= 0 && dst_node < NUMA_TRACK_NODES)
		dst_pages = np->pages[dst_node & (NUMA_TRACK_NODES - 1)];
	/* Bounded: a halving seen half done can leave counts above total. */
	if (src_pages > total)
		src_pages = total;
	if (dst_pages > total)
		dst_pages = total;
	*f_delta = ((s64)dst_pages - (s64)src_pages) * 100 / (s64)total;
	*f_prefer_src = src_pages * 2 > total;
	*f_prefer_dst = !*f_prefer_src && dst_pages * 2 > total;
}

#endif /* __MLSCHED_NUMA_BPF_H */
