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
	NR_MIG_VERDICTS,
};

/* Per-CPU counters, summed by userspace (src/stats.rs). */
enum stat_idx {
	STAT_DISPATCH_LOCAL,	/* direct dispatch from select_cpu/enqueue to an idle CPU */
	STAT_DISPATCH_CPU_DSQ,	/* consumed from the CPU's own DSQ */
	STAT_DISPATCH_LLC_DSQ,	/* consumed from the LLC's shared DSQ */
	STAT_DISPATCH_STOLEN,	/* moved from another CPU's or LLC's DSQ */
	STAT_STEAL_FAILED,	/* a steal scan found nothing it may take */
	STAT_KICKS,		/* idle CPUs kicked to pull work */
	STAT_KEEP_PREV,		/* prev went on: its vtime was not ahead of the queues */
	STAT_MIG_BASE,		/* + enum mig_verdict: can_migrate() results */
	NR_MLSCHED_STATS = STAT_MIG_BASE + NR_MIG_VERDICTS,
};

/* Argument of the SEC("syscall") program that tests can_migrate_decide(). */
struct decide_arg {
	struct mig_features in;
	s32 verdict;		/* out: enum mig_verdict */
};

#endif /* __MLSCHED_INTF_H */
