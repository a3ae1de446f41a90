/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The decision-tree walk alone, for replay and timing (no scheduler).
 *
 * What: two SEC("syscall") programs over the walk of tree.bpf.h.
 *   tree_replay: walks every vector of the `vectors` map once and stores
 *                each verdict in `verdicts` (`selftest --replay` compares
 *                them with linfa's predictions).
 *   tree_bench:  walks the vectors `loops` times and times the whole loop
 *                with bpf_ktime_get_ns (`bench inference`); with `empty`
 *                set it runs the same loop without the walk, so that the
 *                loop's own cost can be subtracted.
 *
 * It also carries the NUMA page tracker of numa.bpf.h (not loaded unless
 * asked), whose cost per page allocation `bench inference` measures, and
 *   fill_bench:  fills the feature vector of a move of the calling task
 *                `loops` times, timed the same way: fill_portable() of
 *                fill.bpf.h, the scheduler's own code, plus stand-ins of
 *                the same kind for the reads of sched_ext state the
 *                scheduler adds (a task-storage lookup, a per-CPU map
 *                lookup of another CPU, task fields; bpf_ktime_get_ns for
 *                scx_bpf_now).
 *
 * Why in-program timing: BPF_PROG_RUN refuses `repeat` and `duration` for
 * syscall programs (EINVAL, kernel's bpf_prog_test_run_syscall), and one
 * syscall per decision would measure the syscall, not the walk.
 * Why a separate object: it needs no sched_ext, so it loads on the hosts
 * here, whose kernels have BPF but no sched_ext, and gives native figures.
 */
/* Not scx/common.bpf.h: it brings an fentry probe on sched_ext's
 * bpf_scx_reg, which cannot load on a kernel without sched_ext. */
#include <vmlinux.h>
#include <bpf/bpf_helpers.h>
#include "intf.h"
#include <bpf/bpf_core_read.h>
#include "tree.bpf.h"
#include "numa.bpf.h"
#include "taskhist.bpf.h"

char _license[] SEC("license") = "GPL";

/* CPU -> node and LLC for fill_bench (set by userspace, as the scheduler's). */
const volatile s32 cpu_node[MAX_CPUS];
const volatile s32 cpu_llc[MAX_CPUS];

static s32 node_of(s32 cpu)
{
	return cpu_node[(u32)cpu & (MAX_CPUS - 1)];
}

static s32 llc_of(s32 cpu)
{
	return cpu_llc[(u32)cpu & (MAX_CPUS - 1)];
}

/*
 * Stand-in for the runqueue reads of the scheduler (bpf_per_cpu_ptr() on
 * the kernel's `runqueues`, which a kernel without CONFIG_KALLSYMS_ALL
 * cannot resolve): a per-CPU map looked up for another CPU.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} fill_rq SEC(".maps");

static __always_inline s64 rq_nr_running(s32 cpu)
{
	u32 zero = 0;
	u64 *nr = bpf_map_lookup_percpu_elem(&fill_rq, &zero, cpu);

	return nr ? *nr : 0;
}

#include "fill.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TREE_MAX_VECTORS);
	__type(key, u32);
	__type(value, struct mig_features);
} vectors SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TREE_MAX_VECTORS);
	__type(key, u32);
	__type(value, s32);
} verdicts SEC(".maps");

SEC("syscall")
int tree_replay(struct tree_run_arg *arg)
{
	const struct model_bank *b = model_bank_get(arg->bank);
	u32 i, nr = arg->nr;
	u64 migrate = 0, bad = 0;

	if (!b)
		return -1;
	/* Counts in locals: the verifier refuses a ctx pointer kept across the loop. */
	bpf_for(i, 0, nr) {
		const struct mig_features *in = bpf_map_lookup_elem(&vectors, &i);
		s32 *out = bpf_map_lookup_elem(&verdicts, &i);
		int v;

		if (!in || !out)
			return -2;
		v = tree_walk(b, in);
		*out = v;
		if (v < 0)
			bad++;
		else
			migrate += v;
	}
	arg->decisions = nr;
	arg->migrate = migrate;
	arg->bad = bad;
	return 0;
}

SEC("syscall")
int tree_bench(struct tree_run_arg *arg)
{
	const struct model_bank *b = model_bank_get(arg->bank);
	u32 i, j, nr = arg->nr, loops = arg->loops;
	bool empty = arg->empty;
	u64 migrate = 0, bad = 0, start;

	if (!b)
		return -1;
	start = bpf_ktime_get_ns();
	bpf_for(j, 0, loops) {
		bpf_for(i, 0, nr) {
			const struct mig_features *in = bpf_map_lookup_elem(&vectors, &i);
			int v;

			if (!in)
				return -2;
			/* the empty loop still reads the vector, as the walk's first step does */
			v = empty ? (int)(in->f[0] & 1) : tree_walk(b, in);
			if (v < 0)
				bad++;
			else
				migrate += v;
		}
	}
	arg->elapsed_ns = bpf_ktime_get_ns() - start;
	arg->decisions = (u64)nr * loops;
	arg->migrate = migrate;
	arg->bad = bad;
	return 0;
}

/* Stand-ins of the scheduler's task context and per-CPU context for fill_bench. */
struct fill_task_ctx {
	u64 last_stop;
	struct task_hist hist;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct fill_task_ctx);
} fill_task_stor SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} fill_cpu_ctx SEC(".maps");

/*
 * One fill of "move @p from @src to @dst": what mig_features_fill() does
 * in the scheduler, with stand-ins for its sched_ext reads.  Global, as
 * the scheduler's can_migrate() is (the verifier checks it once, apart:
 * inlined into the timing loop, its branches made the loop's states
 * explode).
 */
__noinline int fill_one(struct task_struct *task __arg_trusted, struct mig_features *in, s32 src,
			s32 dst, u32 point)
{
	u32 zero = 0;
	struct fill_task_ctx *tc;
	const struct task_hist *hist = NULL;
	const struct cpumask *mask;
	unsigned long bits = 0;
	u64 *cc, now;

	if (!task || !in)
		return -1;
	tc = bpf_task_storage_get(&fill_task_stor, task, 0, 0);
	cc = bpf_map_lookup_percpu_elem(&fill_cpu_ctx, &zero, dst);
	now = bpf_ktime_get_ns();		/* scx_bpf_now() */
	if (tc)
		hist = &tc->hist;
	fill_portable(in, task, hist, src, dst, now);
	in->f[FEAT_delta_hot] = tc && tc->last_stop && now - tc->last_stop < 500000;
	in->f[FEAT_idle_type] = 1;
	in->f[FEAT_extra_fails] = cc && *cc > 1;
	in->f[FEAT_balance_failed_any] = cc && *cc > 0;
	/*
	 * scx_bpf_task_running(task): a direct load whose size CO-RE relocates
	 * (on_cpu is u8 in 7.x, int before).
	 */
	in->f[FEAT_running] = BPF_CORE_READ_BITFIELD(task, on_cpu) & 1;
	/* bpf_cpumask_test_cpu(): a load of the mask's first word (dst < 64 here) */
	mask = task->cpus_ptr;
	bits = mask ? mask->bits[0] : 0;
	in->f[FEAT_dst_allowed] = (bits >> (dst & 63)) & 1;
	in->f[FEAT_weight] = (s64)task->se.load.weight * 1024 / 100;	/* p->scx.weight */
	in->f[FEAT_migration_disabled] = BPF_CORE_READ_BITFIELD(task, migration_disabled) != 0;
	in->f[FEAT_dst_len] = rq_nr_running(dst);
	in->f[FEAT_vtime_lead_us] = vtime_lead_us((s64)(task->se.vruntime - now));	/* p->scx.dsq_vtime */
	in->f[FEAT_decision_point] = point;
	return 0;
}

SEC("syscall")
int fill_bench(struct fill_run_arg *arg)
{
	struct task_struct *p = bpf_get_current_task_btf();
	struct mig_features in = {};
	struct fill_task_ctx *t;
	u32 j, k, loops = arg->loops;
	s32 src = arg->src, dst = arg->dst;
	bool empty = arg->empty;
	u64 start, now;
	s64 check = 0;
	int bad = 0;

	/* A task with a history and a placement, as a scheduled task has. */
	t = bpf_task_storage_get(&fill_task_stor, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!t)
		return -1;
	now = bpf_ktime_get_ns();
	hist_init(&t->hist);
	hist_start(&t->hist, now, src);
	hist_stop(&t->hist, now + 1500000, false);
	hist_start(&t->hist, now + 1600000, dst);
	hist_stop(&t->hist, now + 2000000, true);
	t->last_stop = now;
	start = bpf_ktime_get_ns();
	bpf_for(j, 0, loops) {
		if (empty) {
			in.f[FEAT_decision_point] = j;
			asm volatile("" : : "r"(&in) : "memory");
			continue;
		}
		bad |= fill_one(p, &in, src, dst, POINT_STEAL_CPU_DSQ);
	}
	arg->elapsed_ns = bpf_ktime_get_ns() - start;
	bpf_for(k, 0, NR_FEATURES)
		check += in.f[k];
	arg->check = check;
	return bad;
}
