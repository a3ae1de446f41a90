/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Exploration and outcomes: what `run --explore EPS --record FILE` needs
 * to learn from what followed a decision instead of imitating a rule
 * (issue #25; docs/learning.md, "Learning from outcomes").
 *
 * Exploration.  explore() flips a coin after the policy (heuristic or
 * model) has answered: with probability EPS the action is a fair coin, so
 * the policy's own action was taken with propensity 1 - EPS/2 and the other
 * with EPS/2.  Decisions that a guard or a safety rule makes are never
 * explored (explore_block(): the hard guards, a preempted RCU reader, a
 * steal of a task past the starvation bound); their propensity is 1.  An
 * explored refusal takes the same branch as a model's refusal at every
 * point: at A it kicks the idle CPU that the search claimed, which
 * releases it.
 *
 * Outcomes.  A task has at most one recorded decision pending at a time
 * (struct task_outcome in its context).  An "episode" runs from the task
 * leaving a CPU (ops.stopping; or its creation, or its return to sched_ext)
 * to its next ops.running; its decisions come in a fixed order: A (select
 * cpu), B (enqueue), C (inside B's wakeup), then any number of steals.
 * At each episode start the task draws one stage from {A, B, C, steal}
 * uniformly, and only the first decision at that stage may be recorded
 * (if --record-every picks it).  So whether a decision is recorded depends
 * only on what came before it, never on its own action: neither "the last
 * wins" (a refused steal is followed by more decisions, an allowed one is
 * not) nor "the first wins" (B always precedes C) would keep that.  Other
 * decisions made while one is pending count as superseded.
 *
 * The pending decision's outcome: the wait until the task next ran, where
 * it ran and whether that moved it, the length of that run, and whether
 * within OUTCOME_WINDOW_US of its start it ran on yet another CPU, or back
 * on the decision's source.  The row closes at the end of the window (seen
 * lazily, at the task's next running, stopping or decision), or when the
 * task leaves sched_ext (ops.disable, which also runs for every task when
 * the scheduler unloads); a task that leaves before it ran is censored.
 * Not at the task's next decision: every enqueue is one (B), so the next
 * run would almost never be seen, and a move "again" never.  Decisions
 * that would have been recorded (the first at the episode's stage) while
 * the last one's window is open are counted as superseded instead.  Decisions and outcomes share the `records` ring buffer, which
 * delivers in reservation order: a decision always comes before its
 * outcome, and src/sched/record.rs joins them by id.
 *
 * Included by main.bpf.c after ml_guard(), rcu_reader() and the
 * starvation bound, which it uses.
 */
#ifndef __MLSCHED_OUTCOME_BPF_H
#define __MLSCHED_OUTCOME_BPF_H

#define OUTCOME_WINDOW_NS	((u64)OUTCOME_WINDOW_US * NSEC_PER_USEC)

/* Stages of an episode, in the order its decisions come. */
enum { STAGE_A, STAGE_B, STAGE_C, STAGE_STEAL };

/* Ids of recorded decisions; 0 is "none pending". */
static u64 rec_seq;

/* A decision as can_migrate() made it: what record_decision() writes. */
struct mig_decision {
	s32 src;
	s32 dst;
	s32 verdict;		/* acted on */
	s32 policy_verdict;	/* the policy's, before the coin */
	u32 point;
	u32 block;		/* enum explore_block */
	u32 explored;
	u32 prop_ppm;
};

static u32 stage_of(u32 point)
{
	switch (point) {
	case POINT_WAKE_IDLE:
		return STAGE_A;
	case POINT_ENQ_WAKEUP:
	case POINT_ENQ_REQUEUE:
		return STAGE_B;
	case POINT_PREEMPT_WAKEE:
		return STAGE_C;
	default:
		return STAGE_STEAL;
	}
}

/* Why @p's decision at @point may not be explored (enum explore_block). */
static u32 explore_block(struct task_struct *p, const struct mig_features *in, u32 point)
{
	if (!explore_thresh)
		return EXPLORE_OFF;
	if (ml_guard(in) >= 0)
		return EXPLORE_GUARD;
	if (rcu_reader(p))
		return EXPLORE_RCU;
	/* Only at steals: at A enq_at is stale, and B and C set it to now. */
	if (point_is_steal(point) &&
	    tctx_waited_too_long(bpf_task_storage_get(&task_ctx_stor, p, 0, 0), scx_bpf_now()))
		return EXPLORE_STARVED;
	return EXPLORE_OK;
}

/*
 * The verdict to act on, given the policy's in @d->policy_verdict; fills
 * @d's block, explored and propensity.
 */
static s32 explore(struct task_struct *p, const struct mig_features *in, struct mig_decision *d)
{
	bool allows = verdict_allows(d->policy_verdict);
	s32 verdict = d->policy_verdict;

	d->block = explore_block(p, in, d->point);
	d->explored = 0;
	d->prop_ppm = PROP_ONE;
	if (d->block != EXPLORE_OK)
		return verdict;
	if (bpf_get_prandom_u32() < explore_thresh) {
		bool migrate = bpf_get_prandom_u32() & 1;

		d->explored = 1;
		stat_inc(STAT_EXPLORED);
		if (migrate != allows) {
			verdict = migrate ? MIG_EXPLORE_ALLOWED : MIG_EXPLORE_DENIED;
			stat_inc(STAT_EXPLORE_FLIPPED);
		}
	}
	d->prop_ppm = verdict_allows(verdict) == allows ? PROP_ONE - explore_ppm / 2 : explore_ppm / 2;
	return verdict;
}

/* A new episode: draw the stage whose first decision may be recorded. */
static void outcome_episode(struct task_outcome *o)
{
	if (!record_every)
		return;
	o->stage = bpf_get_prandom_u32() & 3;
	o->stage_done = 0;
}

/*
 * Emit @o's pending decision's outcome (or censoring) and clear it: its
 * window ended, or (ops.disable) the task leaves.
 */
static void outcome_close(struct task_outcome *o, u64 now)
{
	struct mig_outcome *r;

	if (!o->id)
		return;
	r = bpf_ringbuf_reserve(&records, sizeof(*r), 0);
	if (!r) {
		stat_inc(STAT_OUT_DROPPED);
		o->id = 0;
		return;
	}
	__builtin_memset(r, 0, sizeof(*r));
	r->id = o->id;
	if (o->run_at) {
		r->kind = REC_OUTCOME;
		r->closed_by = now - o->run_at >= OUTCOME_WINDOW_NS ? CLOSED_WINDOW : CLOSED_EXIT;
		r->wait_ns = o->run_at > o->decided_at ? o->run_at - o->decided_at : 0;
		r->run_ns = o->run_ns;
		r->window_ns = now > o->run_at ? now - o->run_at : 0;
		if (r->window_ns > OUTCOME_WINDOW_NS)
			r->window_ns = OUTCOME_WINDOW_NS;
		r->run_cpu = o->run_cpu;
		r->moved = o->moved;
		r->moved_again = o->moved_again;
		r->moved_back = o->moved_back;
	} else {
		r->kind = REC_CENSORED;
		r->closed_by = CLOSED_EXIT;
		r->run_cpu = -1;
		stat_inc(STAT_OUT_CENSORED);
	}
	bpf_ringbuf_submit(r, 0);
	o->id = 0;
}

/*
 * Record @d if it is its episode's decision to record: the first at the
 * drawn stage, picked by --record-every (per CPU and point), when the
 * task's last recorded decision is closed.  Closes that one first if its
 * window has ended.
 */
static void record_decision(struct task_struct *p, const struct mig_features *in,
			    const struct mig_decision *d)
{
	struct cpu_ctx *cctx = this_cpu_ctx();
	const struct model_bank *b;
	struct mls_task_ctx *tctx;
	struct task_outcome *o;
	struct mig_record *r;
	u64 now, *n;

	if (!record_every || !cctx)
		return;
	tctx = bpf_task_storage_get(&task_ctx_stor, p, 0, 0);
	if (!tctx)
		return;
	o = &tctx->out;
	now = scx_bpf_now();
	if (o->id && o->run_at && now - o->run_at >= OUTCOME_WINDOW_NS)
		outcome_close(o, now);
	if (o->stage_done || o->stage != stage_of(d->point))
		return;
	o->stage_done = 1;
	if (o->id) {
		stat_inc(STAT_OUT_SUPERSEDED);
		return;
	}
	n = MEMBER_VPTR(*cctx, .nr_decisions[d->point]);
	if (!n || ++*n % record_every)
		return;
	r = bpf_ringbuf_reserve(&records, sizeof(*r), 0);
	if (!r) {
		stat_inc(STAT_RECORDS_DROPPED);
		return;
	}
	r->kind = REC_DECISION;
	r->point = d->point;
	r->id = __sync_fetch_and_add(&rec_seq, 1) + 1;
	/* The model's generation where it decided (ml, at its points). */
	b = policy == POLICY_ML ? model_bank_get(model_active) : NULL;
	r->generation = b && model_decides_at(b, d->point) ? b->generation : 0;
	__builtin_memcpy(&r->in, in, sizeof(*in));
	r->src = d->src;
	r->dst = d->dst;
	r->verdict = d->verdict;
	r->policy_verdict = d->policy_verdict;
	r->prop_ppm = d->prop_ppm;
	r->explored = d->explored;
	r->explore_block = d->block;
	r->pad = 0;
	o->id = r->id;
	o->decided_at = now;
	o->src = d->src;
	o->run_at = 0;
	o->run_ns = 0;
	o->ran = 0;
	o->moved = 0;
	o->moved_again = 0;
	o->moved_back = 0;
	bpf_ringbuf_submit(r, 0);
	stat_inc(STAT_RECORDS);
}

/* ops.running: @o's task starts a run on @cpu at @now. */
static void outcome_running(struct task_outcome *o, s32 cpu, u64 now)
{
	if (!o->id)
		return;
	if (!o->run_at) {
		o->run_at = now;
		o->run_cpu = cpu;
		o->moved = cpu != o->src;
		return;
	}
	if (now - o->run_at >= OUTCOME_WINDOW_NS) {
		outcome_close(o, now);
		return;
	}
	if (cpu != o->run_cpu) {
		o->moved_again = 1;
		if (o->moved && cpu == o->src)
			o->moved_back = 1;
	}
}

/* ops.stopping: the first stop after the run started gives its length. */
static void outcome_stopping(struct task_outcome *o, u64 now)
{
	if (o->id && o->run_at) {
		if (!o->ran) {
			o->run_ns = now - o->run_at;
			o->ran = 1;
		}
		if (now - o->run_at >= OUTCOME_WINDOW_NS)
			outcome_close(o, now);
	}
	outcome_episode(o);
}

#endif /* __MLSCHED_OUTCOME_BPF_H */
