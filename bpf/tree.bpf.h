/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The decision-tree walk, and the two-bank map it walks.
 *
 * What: tree_walk() follows a flat node array (struct model_node, written by
 * src/sched/model_map.rs) from the root with integer compares, at most
 * MODEL_MAX_DEPTH + 1 steps, and returns the leaf's verdict.
 *
 * Why a header: the scheduler (main.bpf.c) and the standalone object that
 * replays datasets and times the walk (tree.bpf.c) must run the same code,
 * so that `bench inference` measures and `selftest --replay` checks the
 * walk the scheduler uses.  tree.bpf.c loads on any kernel with BPF, which
 * is how those two run natively on hosts without sched_ext.
 */
#ifndef __MLSCHED_TREE_BPF_H
#define __MLSCHED_TREE_BPF_H

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, u32);
	__type(value, struct model_bank);
} model_banks SEC(".maps");

static __always_inline const struct model_bank *model_bank_get(u32 bank)
{
	u32 key = bank & 1;

	return bpf_map_lookup_elem(&model_banks, &key);
}

/*
 * Walk @b on @in: 1 migrate, 0 stay, -1 no verdict (a node out of range or
 * a walk past the depth bound; the model loader refuses such trees, so -1
 * means a bug or a bank being written, and callers fall back).
 *
 * A global (non-static, noinline) function: the verifier checks it once,
 * on its own, instead of at every call site.  Inlined into the scheduler's
 * steal loops, its bounded loop made the verifier give up (E2BIG).
 */
__noinline int tree_walk(const struct model_bank *b, const struct mig_features *in)
{
	u32 idx = 0;
	int i;

	if (!b || !in)
		return -1;
	/*
	 * A plain bounded loop, which the verifier walks to its bound: an
	 * open-coded iterator (bpf_for) costs a kfunc call per step (natively,
	 * shipped model: 85 ns per decision with bpf_for, 14 ns with this loop
	 * inlined, 21-36 ns as this global function).
	 */
	for (i = 0; i < MODEL_MAX_DEPTH + 1; i++) {
		const struct model_node *n;
		s32 f;

		if (idx >= MODEL_MAX_NODES)
			return -1;
		n = &b->nodes[idx];
		f = n->feature;
		if (f < 0)
			return n->verdict ? 1 : 0;
		if (f >= NR_FEATURES)
			return -1;
		idx = in->f[f] < n->threshold ? n->left : n->right;
	}
	return -1;
}

#endif /* __MLSCHED_TREE_BPF_H */
