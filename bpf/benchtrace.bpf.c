/* SPDX-License-Identifier: GPL-2.0 */
/*
 * scx_mlsched bench trace: where the compile's time goes, per workload.
 *
 * What: `scx_mlsched bench` runs the compile and fio each in a cgroup of its
 * own and sets their ids here (rodata).  From the scheduler-independent
 * tracepoints it counts, per workload (enum bench_workload; intf.h):
 *   - sched_switch: its tasks' switches off a CPU; the involuntary ones
 *     (the task still runnable: preempted, or its slice ended), by the
 *     workload of the task that ran next; the length of each run
 *     (switch-in to switch-out), summed and in log2 buckets;
 *   - sched_wakeup, sched_wakeup_new: wakeups, and the start of a
 *     runqueue wait, which an involuntary switch-out starts too; the
 *     switch-in ends it;
 *   - sched_migrate_task: migrations (real moves only, as perf counts).
 * Only the compile's and fio's tasks keep stamps (task storage); others
 * are only counted.  The counters live in one per-CPU array entry (enum wl_counter per
 * workload), summed in userspace before and after each run.
 *
 * Why: the issue "CPU-bound throughput" asks what costs the compile its
 * time before the heuristic changes, measured the same way under the
 * default scheduler as under sched_ext ones.  These tracepoints fire under
 * every scheduling class; nothing here depends on sched_ext.
 */
#include <scx/common.bpf.h>
#include "intf.h"

char _license[] SEC("license") = "GPL";

/* Set by userspace (src/bench/trace.rs): cgroup v2 ids (kernfs node ids). */
const volatile u64 cg_compile;
const volatile u64 cg_fio;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64[NR_WORKLOADS * NR_WL_COUNTERS]);
} bench_wl SEC(".maps");

struct stamps {
	u64 ran_at;	/* when it last started running (0: not running) */
	u64 queued_at;	/* when it last became runnable (0: not waiting) */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct stamps);
} bench_stamps SEC(".maps");

static u32 wl_of(struct task_struct *p)
{
	u64 id = BPF_CORE_READ(p, cgroups, dfl_cgrp, kn, id);

	if (id && id == cg_compile)
		return WL_COMPILE;
	if (id && id == cg_fio)
		return WL_FIO;
	return WL_OTHER;
}

/* Workload @wl's block of this CPU's counters (NULL: none). */
static u64 *counters(u32 wl)
{
	u32 zero = 0;
	u64 *c = bpf_map_lookup_elem(&bench_wl, &zero);

	if (!c || wl >= NR_WORKLOADS)
		return NULL;
	return c + wl * NR_WL_COUNTERS;
}

/* Bump counter @i of a block from counters(). */
static void bump(u64 *c, u32 i, u64 by)
{
	if (c && i < NR_WL_COUNTERS)
		c[i] += by;
}

/* The log2 bucket of @ns in µs, the last one open. */
static u32 run_bucket(u64 ns)
{
	u64 us = ns / 1000;
	u32 b = 0;

	if (us >= 1 << 16) { us >>= 16; b += 16; }
	if (us >= 1 << 8) { us >>= 8; b += 8; }
	if (us >= 1 << 4) { us >>= 4; b += 4; }
	if (us >= 1 << 2) { us >>= 2; b += 2; }
	if (us >= 1 << 1) { b += 1; }
	/* us was 0: bucket 0; 1: bucket 1; [2,4): 2; ... */
	if (ns >= 1000)
		b += 1;
	return b < NR_RUN_BUCKETS ? b : NR_RUN_BUCKETS - 1;
}

/*
 * The stamps of a task of ours (the compile's or fio's), created on first
 * use; other tasks keep none (nothing of theirs is timed), so the tracer
 * costs them a cgroup read per event.
 */
static struct stamps *stamps_of(struct task_struct *p, u32 wl)
{
	if (wl == WL_OTHER)
		return NULL;
	return bpf_task_storage_get(&bench_stamps, p, NULL, BPF_LOCAL_STORAGE_GET_F_CREATE);
}

SEC("tp_btf/sched_switch")
int BPF_PROG(bench_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	u64 now = bpf_ktime_get_ns();
	u32 wp = prev->pid ? wl_of(prev) : WL_OTHER, wn = next->pid ? wl_of(next) : WL_OTHER;
	struct stamps *s;
	u64 *c;

	if (prev->pid) {
		c = counters(wp);
		bump(c, WLC_SWITCHES, 1);
		s = stamps_of(prev, wp);
		if (s && s->ran_at && now > s->ran_at) {
			bump(c, WLC_RUN_NS, now - s->ran_at);
			bump(c, WLC_RUNS, 1);
			bump(c, WLC_RUN_HIST + run_bucket(now - s->ran_at), 1);
		}
		if (s)
			s->ran_at = 0;
		/*
		 * Still runnable: preempted (also between setting a sleeping
		 * state and calling schedule()), or its slice ended.  It waits
		 * from now; a task going to sleep waits for nothing until woken.
		 */
		if (preempt || prev_state == 0 /* TASK_RUNNING */) {
			bump(c, WLC_INVOLUNTARY, 1);
			bump(c, WLC_BY_WL + wn, 1);
			if (s)
				s->queued_at = now;
		} else if (s) {
			s->queued_at = 0;
		}
	}
	if (next->pid) {
		s = stamps_of(next, wn);
		if (s) {
			if (s->queued_at && now > s->queued_at) {
				c = counters(wn);
				bump(c, WLC_WAIT_NS, now - s->queued_at);
				bump(c, WLC_WAITS, 1);
			}
			s->queued_at = 0;
			s->ran_at = now;
		}
	}
	return 0;
}

/* A wakeup starts a wait, unless the task is still queued from a preemption. */
static void woken(struct task_struct *p)
{
	u32 wl = wl_of(p);
	struct stamps *s = stamps_of(p, wl);

	bump(counters(wl), WLC_WAKEUPS, 1);
	if (s && !s->queued_at)
		s->queued_at = bpf_ktime_get_ns();
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(bench_wakeup, struct task_struct *p)
{
	woken(p);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(bench_wakeup_new, struct task_struct *p)
{
	woken(p);
	return 0;
}

/*
 * set_task_cpu() fires the tracepoint before it checks that the CPU
 * changes; perf's cpu-migrations counts only real moves, and so does this.
 */
SEC("tp_btf/sched_migrate_task")
int BPF_PROG(bench_migrate, struct task_struct *p, int dest_cpu)
{
	if (dest_cpu == (int)BPF_CORE_READ(p, thread_info.cpu))
		return 0;
	bump(counters(wl_of(p)), WLC_MIGRATIONS, 1);
	return 0;
}
