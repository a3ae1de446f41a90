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
 * asked), whose cost per page allocation `bench inference` measures.
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
#include "tree.bpf.h"
#include "numa.bpf.h"

char _license[] SEC("license") = "GPL";

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
