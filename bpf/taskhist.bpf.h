/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A task's recent history, kept the same way by the collector
 * (collect.bpf.c) and the scheduler (main.bpf.c), so that the history
 * features of bpf/features.def mean the same on both sides (issue #23,
 * item 3): run_avg_us, burst_avg_us, since_mig_us and mig_rate.
 *
 * What: hist_start() when the task starts running on a CPU, hist_stop()
 * when it stops, hist_block() when it goes to sleep, hist_fill() at a
 * decision.  The scheduler calls them from ops.running, ops.stopping and
 * ops.quiescent (SCX_DEQ_SLEEP), on the task's storage; the collector from
 * tp_btf/sched_switch, on a pid-keyed hash (its kprobe holds an untrusted
 * task pointer, which task storage refuses; see numa.bpf.h), where a
 * switch out of a task that was not preempted and is not TASK_RUNNING any
 * more is a sleep.
 *
 * Why these: the kernel rule reads only "did it run in the last 500 us".
 * A deadline scheduler keeps per task how long it runs before it blocks
 * (its runtime expectation), and scx_lavd keeps run-time averages and
 * limits migrations per task: what a task usually does, and how often it
 * moved lately, say more about the cost of moving it than one timestamp.
 *
 * Averages: exponentially weighted, a quarter to the newest sample
 * (scx_lavd's calc_avg()); the first sample is taken whole.
 * Migration rate: a count of starts on another CPU than the one before
 * (the move the scheduler's moves counters count), in 1/16ths, halved every
 * 2^HIST_MIG_HALF_LIFE_SHIFT ns (67 ms) of age, in whole half-lives: the
 * clock of the halvings advances only by whole half-lives, so that a task
 * moving every 60 ms is not reset to "never halved" by each move.
 */
#ifndef __MLSCHED_TASKHIST_BPF_H
#define __MLSCHED_TASKHIST_BPF_H

#define HIST_MIG_HALF_LIFE_SHIFT	26		/* 2^26 ns = 67 ms */
#define HIST_MIG_ONE			16		/* one migration, in mig_rate's unit */
#define HIST_SINCE_MIG_CAP_NS		1000000000ULL	/* since_mig_us of a task that never moved: 1 s */

struct task_hist {
	u64 started;		/* when it started its current run (ns); 0 when not running */
	u64 burst;		/* ns run since it last woke (summed over its runs) */
	u64 run_avg;		/* ns per run, averaged */
	u64 burst_avg;		/* ns run from waking to blocking, averaged */
	u64 last_mig;		/* when it last started on another CPU (ns); 0 never */
	u64 mig_stamp;		/* the clock of mig_count's halvings */
	u32 mig_count;		/* migrations, in 1/16ths, halved every half-life */
	s32 last_cpu;		/* the CPU it last ran on; -1 none yet */
};

static __always_inline u64 hist_avg(u64 old, u64 sample)
{
	return old ? old - (old >> 2) + (sample >> 2) : sample;
}

/* mig_count decayed to @now, without changing @h. */
static __always_inline u32 hist_mig_decayed(const struct task_hist *h, u64 now)
{
	u64 halvings = now > h->mig_stamp ? (now - h->mig_stamp) >> HIST_MIG_HALF_LIFE_SHIFT : 0;

	return halvings >= 32 ? 0 : h->mig_count >> halvings;
}

static __always_inline void hist_init(struct task_hist *h)
{
	__builtin_memset(h, 0, sizeof(*h));
	h->last_cpu = -1;
}

/* @h's task starts running on @cpu at @now. */
static __always_inline void hist_start(struct task_hist *h, u64 now, s32 cpu)
{
	if (h->last_cpu >= 0 && h->last_cpu != cpu) {
		u32 decayed = hist_mig_decayed(h, now);

		/* Advance the clock by whole half-lives only. */
		if (now > h->mig_stamp)
			h->mig_stamp = now - ((now - h->mig_stamp) &
					      ((1ULL << HIST_MIG_HALF_LIFE_SHIFT) - 1));
		h->mig_count = decayed + HIST_MIG_ONE;
		h->last_mig = now;
	}
	h->last_cpu = cpu;
	h->started = now;
}

/* @h's task blocks (goes to sleep): its burst ends. */
static __always_inline void hist_block(struct task_hist *h)
{
	h->burst_avg = hist_avg(h->burst_avg, h->burst);
	h->burst = 0;
}

/*
 * @h's task stops running at @now; @blocking: it goes to sleep (the
 * scheduler, which learns that after the stop, calls hist_block() then).
 */
static __always_inline void hist_stop(struct task_hist *h, u64 now, bool blocking)
{
	u64 run;

	if (!h->started)
		return;
	run = now > h->started ? now - h->started : 0;
	h->started = 0;
	h->run_avg = hist_avg(h->run_avg, run);
	h->burst += run;
	if (blocking)
		hist_block(h);
}

/*
 * The history features into the vector @f (enum mlsched_feature order), at
 * @now; @h NULL (no history kept): all 0, since_mig_us at its cap.
 */
static __always_inline void hist_fill(s64 *f, const struct task_hist *h, u64 now)
{
	u64 since = HIST_SINCE_MIG_CAP_NS;

	if (h && h->last_mig && now > h->last_mig && now - h->last_mig < since)
		since = now - h->last_mig;
	else if (h && h->last_mig && now <= h->last_mig)
		since = 0;
	f[FEAT_run_avg_us] = h ? h->run_avg / 1000 : 0;
	f[FEAT_burst_avg_us] = h ? h->burst_avg / 1000 : 0;
	f[FEAT_since_mig_us] = since / 1000;
	f[FEAT_mig_rate] = h ? hist_mig_decayed(h, now) : 0;
}

#endif /* __MLSCHED_TASKHIST_BPF_H */
