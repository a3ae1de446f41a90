//! The benchmark's output folder: the environment block, every run's record
//! as JSON (fio's and cyclictest's own JSON inside), a CSV with one row per
//! run, the summary as JSON and as a markdown table, and the chart
//! (chart.rs).  The markdown says where the numbers were measured and how
//! to read the ratios, so that it can be pasted into the README as is.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::record::{headline, Better, OpCost, RunRecord, METRICS};
use super::summary::{ArmSummary, Cell, MIN_ROUNDS, TOO_FEW};
use super::workload::Shape;

/// Where and how the numbers were measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Environment {
    pub date: String,
    pub machine: String,
    pub kernel: String,
    pub cpus: usize,
    pub cpu_model: String,
    pub memory_gib: f64,
    /// "native" or the VM test bed and its emulation.
    pub place: String,
    pub emulated: bool,
    pub git_revision: String,
    pub scope: String,
    /// The make shape's targets.
    pub make_targets: Vec<String>,
    /// The compile shapes this benchmark ran, in order (empty in
    /// benchmarks made before there were shapes: make only).
    #[serde(default)]
    pub shapes: Vec<Shape>,
    /// The units shape's targets, all compiled at once.
    #[serde(default)]
    pub unit_targets: Vec<String>,
    pub rounds: u32,
    pub seed: u64,
    /// (arm, version) for every arm, available or not.
    pub schedulers: Vec<(String, String)>,
}

impl Environment {
    /// The shapes ran, make for benchmarks older than shapes.
    pub fn shapes(&self) -> Vec<Shape> {
        if self.shapes.is_empty() {
            vec![Shape::Make]
        } else {
            self.shapes.clone()
        }
    }

    /// What one run of `shape` ran, for the report's workload line.
    fn workload(&self, shape: Shape) -> String {
        match shape {
            Shape::Make => format!("`make -j{} {}`", self.cpus + 2, self.make_targets.join(" ")),
            Shape::Units => format!(
                "`make -j{n} {}`: {n} large translation units (CPUs + 1) compiled at once",
                self.unit_targets.join(" "),
                n = self.unit_targets.len()
            ),
        }
    }

    /// What this machine says about itself; the caller fills the rest.
    pub fn probe() -> Environment {
        let read = |p: &str| fs::read_to_string(p).unwrap_or_default();
        let cpuinfo = read("/proc/cpuinfo");
        let meminfo = read("/proc/meminfo");
        Environment {
            date: chrono::Local::now().format("%Y-%m-%d %H:%M %Z").to_string(),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_string(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu_model: cpuinfo
                .lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
                .unwrap_or_default(),
            memory_gib: meminfo
                .lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok())
                .map_or(0.0, |kib| (kib / 1048576.0 * 10.0).round() / 10.0),
            ..Default::default()
        }
    }
}

/// One CSV row per run (the figures of RunRecord, flat).
#[derive(Serialize)]
struct CsvRow<'a> {
    arm: &'a str,
    shape: &'a str,
    round: u32,
    warmup: bool,
    position: u32,
    ok: bool,
    error: &'a str,
    compile_wall_s: f64,
    compile_cpu_s: f64,
    efficiency: f64,
    cpu_busy: f64,
    fio_iops: f64,
    fio_clat_mean_us: f64,
    fio_clat_p99_us: f64,
    wakeup_avg_us: f64,
    wakeup_p99_us: f64,
    wakeup_max_us: f64,
    ctx_switches: u64,
    migrations: u64,
    migrations_per_60s: f64,
    dispatch_ns: Option<f64>,
    dispatch_calls: u64,
    select_cpu_ns: Option<f64>,
    enqueue_ns: Option<f64>,
    fio_wait_us: Option<f64>,
    run_wait_us: Option<f64>,
    ipis_per_60s: Option<f64>,
    irq_res: Option<u64>,
    irq_cal: Option<u64>,
    irq_tlb: Option<u64>,
    irq_iwi: Option<u64>,
    irq_loc: Option<u64>,
    moved_all: Option<u64>,
    moved_wake_idle: Option<u64>,
    moved_llc_pool: Option<u64>,
    moved_preempt_wakee: Option<u64>,
    moved_steal: Option<u64>,
    moved_own_queue: Option<u64>,
    moved_other: Option<u64>,
    gate_wake_idle: Option<u64>,
    gate_enq_wakeup: Option<u64>,
    gate_enq_requeue: Option<u64>,
    gate_preempt_wakee: Option<u64>,
    gate_steal: Option<u64>,
    compile_involuntary: Option<u64>,
    compile_by_fio: Option<u64>,
    compile_mean_run_us: Option<f64>,
    compile_migrations: Option<u64>,
    compile_wait_us: Option<f64>,
    sched_exit: Option<i32>,
}

pub fn write_run(dir: &Path, rec: &RunRecord) -> Result<()> {
    let p = dir.join(format!("{}.json", rec.stem()));
    fs::write(&p, serde_json::to_string_pretty(rec)?)
        .with_context(|| format!("writing {}", p.display()))
}

pub fn write_csv(path: &Path, runs: &[RunRecord]) -> Result<()> {
    let mut w =
        csv::Writer::from_path(path).with_context(|| format!("writing {}", path.display()))?;
    for r in runs {
        w.serialize(CsvRow {
            arm: &r.arm,
            shape: r.shape.name(),
            round: r.round,
            warmup: r.round == 0,
            position: r.position,
            ok: r.ok,
            error: r.error.as_deref().unwrap_or(""),
            compile_wall_s: r.compile_wall_s,
            compile_cpu_s: r.compile_cpu_s,
            efficiency: r.efficiency,
            cpu_busy: r.cpu_busy,
            fio_iops: r.fio.iops,
            fio_clat_mean_us: r.fio.clat_mean_us,
            fio_clat_p99_us: r.fio.clat_p99_us,
            wakeup_avg_us: r.latency.avg_us,
            wakeup_p99_us: r.latency.p99_us,
            wakeup_max_us: r.latency.max_us,
            ctx_switches: r.ctx_switches,
            migrations: r.migrations,
            migrations_per_60s: r.migrations_per_60s,
            dispatch_ns: r.dispatch_ns,
            dispatch_calls: r.dispatch_calls,
            select_cpu_ns: r.select_cpu_cost.map(|c| c.ns_per_call),
            enqueue_ns: r.enqueue_cost.map(|c| c.ns_per_call),
            fio_wait_us: r.fio_wait_us,
            run_wait_us: r.run_wait_us,
            ipis_per_60s: r.ipis_per_60s,
            irq_res: r.irqs.get("RES").copied(),
            irq_cal: r.irqs.get("CAL").copied(),
            irq_tlb: r.irqs.get("TLB").copied(),
            irq_iwi: r.irqs.get("IWI").copied(),
            irq_loc: r.irqs.get("LOC").copied(),
            moved_all: r.moved.map(|m| m.all),
            moved_wake_idle: r.moved.map(|m| m.wake_idle),
            moved_llc_pool: r.moved.map(|m| m.llc_pool),
            moved_preempt_wakee: r.moved.map(|m| m.preempt_wakee),
            moved_steal: r.moved.map(|m| m.steal),
            moved_own_queue: r.moved.map(|m| m.own_queue),
            moved_other: r.moved.map(|m| m.other()),
            gate_wake_idle: r.gate.map(|g| g.wake_idle.decided),
            gate_enq_wakeup: r.gate.map(|g| g.enq_wakeup.decided),
            gate_enq_requeue: r.gate.map(|g| g.enq_requeue.decided),
            gate_preempt_wakee: r.gate.map(|g| g.preempt_wakee.decided),
            gate_steal: r.gate.map(|g| g.steal.decided),
            compile_involuntary: r.workloads.as_ref().map(|w| w.compile.involuntary),
            compile_by_fio: r.workloads.as_ref().map(|w| w.compile.by_fio),
            compile_mean_run_us: r.workloads.as_ref().and_then(|w| w.compile.mean_run_us()),
            compile_migrations: r.workloads.as_ref().map(|w| w.compile.migrations),
            compile_wait_us: r.workloads.as_ref().and_then(|w| w.compile.mean_wait_us()),
            sched_exit: r.sched_exit,
        })?;
    }
    w.flush()?;
    Ok(())
}

/// A figure with as many digits as it deserves.
fn num(x: f64) -> String {
    match x.abs() {
        a if a >= 1000.0 => format!("{x:.0}"),
        a if a >= 10.0 => format!("{x:.1}"),
        _ => format!("{x:.2}"),
    }
}

/// "0.92 [0.85–0.97] better"; below MIN_ROUNDS only the ratio, with no
/// interval and no verdict: "0.92 (too few rounds to judge)".
fn ratio_text(c: &Cell, better: Better) -> String {
    match c.ratio {
        Some(r) => match r.ci {
            Some(ci) => format!(
                "{:.2} [{:.2}–{:.2}] {}",
                r.point,
                ci.lo,
                ci.hi,
                r.verdict(better)
            ),
            None => format!("{:.2} ({TOO_FEW})", r.point),
        },
        None => "–".into(),
    }
}

fn spread_text(c: &Cell) -> String {
    match c.spread {
        Some(s) => format!("{} ({}–{})", num(s.median), num(s.min), num(s.max)),
        None => "–".into(),
    }
}

/// The header of a table of ratios: `first` then one column per headline metric.
fn ratio_table_head(m: &mut String, first: &str) {
    let heads = headline();
    let labels: Vec<&str> = heads.iter().map(|h| h.label).collect();
    let _ = writeln!(m, "| {first} | {} |", labels.join(" | "));
    let _ = writeln!(m, "|---{}|", "|---".repeat(heads.len()));
}

/// The rounds the summary pairs: the most paired rounds of any ratio (a
/// failed run leaves its round unpaired).
fn paired_rounds(arms: &[ArmSummary]) -> usize {
    arms.iter()
        .flat_map(|a| &a.cells)
        .filter_map(|c| c.ratio.map(|r| r.n))
        .max()
        .unwrap_or(0)
}

/// The report of one compile shape: `arms` summarise `runs`, which are
/// that shape's runs only.
pub fn markdown(
    env: &Environment,
    shape: Shape,
    arms: &[ArmSummary],
    runs: &[RunRecord],
) -> String {
    let mut m = String::new();
    // Rounds that ran (a boot stopped early has fewer than were planned).
    let ran = runs
        .iter()
        .filter(|r| r.round > 0)
        .map(|r| r.round)
        .collect::<std::collections::BTreeSet<_>>()
        .len() as u32;
    let measured_rounds = if ran < env.rounds {
        format!(
            "{ran} of the {} planned measured rounds (the others have no run)",
            env.rounds
        )
    } else {
        format!("{} measured rounds", env.rounds)
    };
    if env.scope == "quick" {
        // The first line, so that nobody reads the quick mode as a result.
        let _ = writeln!(
            m,
            "# Quick mode: this checks the benchmark's pipeline, not the schedulers \
             (scx_mlsched benchmark, {}, {}, compile shape `{}`)\n",
            env.date,
            env.machine,
            shape.name()
        );
    } else {
        let _ = writeln!(
            m,
            "# scx_mlsched benchmark: {}, {}, compile shape `{}`\n",
            env.date,
            env.machine,
            shape.name()
        );
    }
    let _ = writeln!(
        m,
        "Measured **{}**: kernel {}, {} CPUs ({}), {} GiB, git {}.\n",
        env.place, env.kernel, env.cpus, env.cpu_model, env.memory_gib, env.git_revision
    );
    let _ = writeln!(
        m,
        "Workload (scope `{}`, shape `{}`): {} on Debian's linux-source (defconfig, \
         prepared beforehand), beside fio (4 KiB randrw 70/30, O_DIRECT, 2 psync jobs) \
         and cyclictest (one SCHED_OTHER thread, 1 ms period), both for the whole \
         compile. {} after one discarded warm-up round; each round \
         runs every scheduler once{}, in a shuffled order (seed {}).\n",
        env.scope,
        shape.name(),
        env.workload(shape),
        measured_rounds,
        if env.shapes().len() > 1 {
            format!(
                " per shape ({}, interleaved in the same boot)",
                env.shapes()
                    .iter()
                    .map(|s| s.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        } else {
            String::new()
        },
        env.seed
    );
    let _ = writeln!(
        m,
        "Ratios are the scheduler's figure over the default scheduler's in the same \
         round (geometric mean over rounds), with a 95% Student t confidence interval \
         on the per-round log-ratios. Where the interval contains 1 the difference is \
         **within noise**. Below {MIN_ROUNDS} paired rounds no interval and no verdict \
         are given: the ratio is printed with \"{TOO_FEW}\". Below 1 is better for \
         times and latencies, above 1 for IOPS.\n"
    );
    let paired = paired_rounds(arms);
    if paired < MIN_ROUNDS {
        let _ = writeln!(
            m,
            "**With {paired} paired rounds this report judges nothing**: a verdict \
             needs at least {MIN_ROUNDS} (`--rounds`).\n"
        );
    }
    let _ = writeln!(m, "## Against the default scheduler\n");
    let heads = headline();
    ratio_table_head(&mut m, "scheduler");
    for a in arms.iter().filter(|a| a.arm != super::plan::BASELINE) {
        let cells = match &a.unavailable {
            Some(why) => vec![format!("not available: {why}"); 1]
                .into_iter()
                .chain(std::iter::repeat_n(String::new(), heads.len() - 1))
                .collect::<Vec<_>>(),
            None => heads
                .iter()
                .zip(&a.cells)
                .map(|(h, c)| ratio_text(c, h.better))
                .collect(),
        };
        let _ = writeln!(m, "| {} | {} |", a.arm, cells.join(" | "));
    }
    let avail: Vec<&ArmSummary> = arms.iter().filter(|a| a.unavailable.is_none()).collect();
    peers_section(&mut m, &avail, runs);
    let _ = writeln!(
        m,
        "\n## Figures per scheduler: median (min–max) over the measured rounds\n"
    );
    let _ = writeln!(
        m,
        "| metric | {} |",
        avail
            .iter()
            .map(|a| a.arm.as_str())
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(m, "|---{}|", "|---".repeat(avail.len()));
    for (i, metric) in METRICS.iter().enumerate() {
        let _ = writeln!(
            m,
            "| {} | {} |",
            metric.label,
            avail
                .iter()
                .map(|a| spread_text(&a.cells[i]))
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
    costs_section(&mut m, &avail, runs);
    let _ = writeln!(
        m,
        "\n## Schedulers\n\n| scheduler | version | runs ok | runs failed |\n|---|---|---|---|"
    );
    for a in arms {
        let ver = env
            .schedulers
            .iter()
            .find(|(n, _)| n == &a.arm)
            .map_or("", |(_, v)| v.as_str());
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} |",
            a.arm, ver, a.ok_runs, a.failed_runs
        );
    }
    let failed: Vec<&RunRecord> = runs.iter().filter(|r| !r.ok).collect();
    if !failed.is_empty() {
        let _ = writeln!(m, "\n## Failed runs\n");
        for r in failed {
            let _ = writeln!(
                m,
                "- round {}{}, {}: {}",
                r.round,
                if r.round == 0 { " (warm-up)" } else { "" },
                r.arm,
                r.error.as_deref().unwrap_or("?")
            );
        }
    }
    m
}

/// scx_mlsched's arms against each peer scheduler that ran (bpfland,
/// rusty, ...), its variants (mlsched-*) against `mlsched`, and each arm
/// of this build against `mlsched-prev`: the same paired ratio with the
/// other arm in the default's place.
fn peers_section(m: &mut String, avail: &[&ArmSummary], runs: &[RunRecord]) {
    let is_ours = |a: &str| a.starts_with("mlsched");
    let names: Vec<&str> = avail.iter().map(|a| a.arm.as_str()).collect();
    let ours: Vec<&str> = names.iter().copied().filter(|a| is_ours(a)).collect();
    let peers: Vec<&str> = names
        .iter()
        .copied()
        .filter(|a| !is_ours(a) && *a != super::plan::BASELINE)
        .collect();
    let vs_peers: Vec<(&str, &str)> = ours
        .iter()
        .flat_map(|o| peers.iter().map(move |p| (*o, *p)))
        .collect();
    pairs_table(
        m,
        "scx_mlsched against its peers",
        "The same paired ratio, with the peer in the default scheduler's place: \
         scx_mlsched's figure over the peer's in the same round.",
        &vs_peers,
        runs,
    );
    // Each variant against mlsched (the previous build is no variant of
    // it), and every arm of this build against the previous one.
    let against = |r: &'static str, skip: &'static str| -> Vec<(&str, &str)> {
        if !ours.contains(&r) {
            return Vec::new();
        }
        ours.iter()
            .filter(|o| **o != r && **o != skip)
            .map(|o| (*o, r))
            .collect()
    };
    let variants: Vec<(&str, &str)> = against("mlsched", super::plan::PREV)
        .into_iter()
        .chain(against(super::plan::PREV, ""))
        .collect();
    pairs_table(
        m,
        "scx_mlsched's variants against mlsched, and against the build before",
        "The same paired ratio, with `mlsched` (the scheduler's defaults) or `mlsched-prev` \
         (the build before) in the default scheduler's place: what the variant's option, or \
         the change since that build, does, in the same rounds.",
        &variants,
        runs,
    );
}

/// A section with one row of headline ratios per (arm, other) pair.
fn pairs_table(
    m: &mut String,
    title: &str,
    intro: &str,
    pairs: &[(&str, &str)],
    runs: &[RunRecord],
) {
    if pairs.is_empty() {
        return;
    }
    let _ = writeln!(m, "\n## {title}\n\n{intro}\n");
    ratio_table_head(m, "ratio");
    let heads = headline();
    for (arm, other) in pairs {
        let cells = super::summary::versus(runs, arm, other);
        let text: Vec<String> = heads
            .iter()
            .zip(&cells)
            .map(|(h, c)| ratio_text(c, h.better))
            .collect();
        let _ = writeln!(m, "| {arm} / {other} | {} |", text.join(" | "));
    }
}

/// `bench report DIR`: read a benchmark folder's env.json and runs/*.json
/// again and rewrite its summary, CSV, markdown and chart (after a change
/// to the report, or for a benchmark that was interrupted).  Arms of
/// env.json with no recorded run are reported as unavailable.
pub fn rewrite(dir: &Path) -> Result<String> {
    let read = |p: &Path| fs::read_to_string(p).with_context(|| format!("reading {}", p.display()));
    let env: Environment = serde_json::from_str(&read(&dir.join("env.json"))?)
        .with_context(|| format!("{}: not a benchmark's env.json", dir.display()))?;
    let mut runs: Vec<RunRecord> = Vec::new();
    let runs_dir = dir.join("runs");
    for e in fs::read_dir(&runs_dir).with_context(|| format!("reading {}", runs_dir.display()))? {
        let p = e?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        // r<round>-<arm>.json, not fio's or cyclictest's r<round>-<arm>.<tool>.json
        // (an arm's name may hold a dot: mlsched-explore0.2)
        let tool = [".fio.json", ".cyclictest.json"]
            .iter()
            .any(|t| name.ends_with(t));
        match name.strip_suffix(".json") {
            Some(stem) if stem.starts_with('r') && !tool => runs.push(
                serde_json::from_str(&read(&p)?).with_context(|| format!("{}", p.display()))?,
            ),
            _ => {}
        }
    }
    if runs.is_empty() {
        bail!("{}: no run records", runs_dir.display());
    }
    runs.sort_by_key(|r| (r.round, r.shape, r.position));
    let names: Vec<String> = env.schedulers.iter().map(|(n, _)| n.clone()).collect();
    // The reason env.json gives ("not available: ..."), else this one.
    let unavailable: Vec<(String, String)> = env
        .schedulers
        .iter()
        .filter(|(n, _)| !runs.iter().any(|r| &r.arm == n))
        .map(|(n, v)| {
            let why = v
                .strip_prefix("not available: ")
                .unwrap_or("no run recorded");
            (n.clone(), why.to_string())
        })
        .collect();
    write_all(dir, &env, &runs, &names, &unavailable)
}

/// The cost of each BPF scheduler's select_cpu, enqueue and dispatch, from
/// BPF program statistics: median (min–max) over the measured runs of
/// (run time / calls), and the mean calls per run.
fn costs_section(m: &mut String, avail: &[&ArmSummary], runs: &[RunRecord]) {
    let cell = |arm: &str, op: usize| -> Option<String> {
        let per_run: Vec<OpCost> = runs
            .iter()
            .filter(|r| r.ok && r.round > 0 && r.arm == arm)
            .filter_map(|r| r.op_costs()[op].1)
            .collect();
        let mut ns: Vec<f64> = per_run.iter().map(|c| c.ns_per_call).collect();
        ns.sort_by(f64::total_cmp);
        let calls = per_run.iter().map(|c| c.calls).sum::<u64>() / per_run.len().max(1) as u64;
        Some(format!(
            "{:.0} ({:.0}–{:.0}), {calls} calls",
            ns.get(ns.len() / 2)?,
            ns.first()?,
            ns.last()?
        ))
    };
    let rows: Vec<(String, Vec<String>)> = avail
        .iter()
        .filter_map(|a| {
            let cells: Vec<Option<String>> = (0..3).map(|op| cell(&a.arm, op)).collect();
            cells.iter().any(Option::is_some).then(|| {
                let text = cells.into_iter().map(|c| c.unwrap_or("–".into()));
                (a.arm.clone(), text.collect())
            })
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(
        m,
        "\n## Cost of ops.select_cpu, ops.enqueue and ops.dispatch (BPF program statistics, \
         kernel.bpf_stats_enabled)\n\n\
         Mean ns per call of each scheduler's programs during the compile, median \
         (min–max) over the measured rounds, and the mean calls per run. The steal path, \
         where the migration gate and the tree run, is part of dispatch. Under emulation \
         every BPF instruction costs far more than natively.\n\n\
         | scheduler | ns per select_cpu call | ns per enqueue call | ns per dispatch call |\n\
         |---|---|---|---|"
    );
    for (arm, cells) in rows {
        let _ = writeln!(m, "| {arm} | {} |", cells.join(" | "));
    }
}

/// The files of one shape: `summary.json` and `ratios.png` for the make
/// shape (as before there were shapes), `summary-<shape>.json` and
/// `ratios-<shape>.png` for the others.
fn shape_file(shape: Shape, stem: &str, ext: &str) -> String {
    match shape {
        Shape::Make => format!("{stem}.{ext}"),
        s => format!("{stem}-{}.{ext}", s.name()),
    }
}

/// Write the whole folder but the per-run files (written as runs end):
/// env.json, runs.csv (every run, a shape column), a summary and a chart
/// per shape, and summary.md with every shape's report one after the
/// other.  Returns that markdown.  `names` are the arms in the plan's
/// order, `unavailable` those that could not run, with why.
pub fn write_all(
    dir: &Path,
    env: &Environment,
    runs: &[RunRecord],
    names: &[String],
    unavailable: &[(String, String)],
) -> Result<String> {
    fs::write(dir.join("env.json"), serde_json::to_string_pretty(env)?)?;
    write_csv(&dir.join("runs.csv"), runs)?;
    let mut md = Vec::new();
    for shape in env.shapes() {
        let of_shape: Vec<RunRecord> = runs.iter().filter(|r| r.shape == shape).cloned().collect();
        let arms = super::summary::summarize(&of_shape, names, super::plan::BASELINE, unavailable);
        fs::write(
            dir.join(shape_file(shape, "summary", "json")),
            serde_json::to_string_pretty(&arms)?,
        )?;
        // The numbers matter more than the picture: a chart that cannot be
        // drawn (no font) does not stop the benchmark.
        if let Err(e) = super::chart::draw(
            &dir.join(shape_file(shape, "ratios", "png")),
            env,
            shape,
            &arms,
        ) {
            log::warn!("no chart: {e:#}");
        }
        md.push(markdown(env, shape, &arms, &of_shape));
    }
    let md = md.join("\n");
    fs::write(dir.join("summary.md"), &md)?;
    Ok(md)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::summary::summarize;
    use crate::sched::stats::MovedBy;

    fn runs() -> Vec<RunRecord> {
        let mut v = Vec::new();
        for round in 0..6 {
            for (arm, wall, iops) in [("default", 100.0, 1000.0), ("fast", 60.0, 990.0)] {
                let mut r = RunRecord {
                    arm: arm.into(),
                    round,
                    ok: true,
                    compile_wall_s: wall + round as f64,
                    ..Default::default()
                };
                r.fio.iops = iops + round as f64 * 5.0;
                r.fio.clat_p99_us = 100.0;
                r.latency.p99_us = 50.0;
                if arm == "fast" {
                    r.select_cpu_cost = Some(OpCost {
                        ns_per_call: 100.0 + round as f64,
                        calls: 10,
                    });
                    (r.dispatch_ns, r.dispatch_calls) = (Some(200.0), 20);
                }
                v.push(r);
            }
        }
        v.push(RunRecord {
            arm: "fast".into(),
            round: 6,
            error: Some("ejected".into()),
            ..Default::default()
        });
        v
    }

    /// A benchmark folder as the benchmark writes it: env.json and runs/.
    fn folder(env: &Environment, runs: &[RunRecord]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("runs")).unwrap();
        fs::write(
            dir.path().join("env.json"),
            serde_json::to_string(env).unwrap(),
        )
        .unwrap();
        for r in runs {
            write_run(&dir.path().join("runs"), r).unwrap();
        }
        dir
    }

    #[test]
    fn markdown_states_ratios_noise_and_failures() {
        let runs = runs();
        let arms: Vec<String> = ["default", "fast", "ml"].map(String::from).to_vec();
        let s = summarize(&runs, &arms, "default", &[("ml".into(), "no model".into())]);
        let env = Environment {
            place: "VM test bed (TCG)".into(),
            rounds: 5,
            ..Default::default()
        };
        let md = markdown(&env, Shape::Make, &s, &runs);
        assert!(md.contains("Measured **VM test bed (TCG)**"), "{md}");
        let fast = md.lines().find(|l| l.starts_with("| fast |")).unwrap();
        assert!(fast.contains("better"), "{fast}");
        // Same p99 in every round: ratio 1 exactly, within noise.
        assert!(fast.contains("1.00 [1.00–1.00] within noise"), "{fast}");
        assert!(md.contains("| ml | not available: no model |"), "{md}");
        assert!(md.contains("- round 6, fast: ejected"), "{md}");
        // Warm-up (round 0) excluded: default's compile median is 103.
        assert!(
            md.contains("| compile time (s) | 103.0 (101.0–105.0) |"),
            "{md}"
        );
        assert!(!md.contains("judges nothing"), "{md}");
        // Costs per call: select_cpu and dispatch measured, enqueue not.
        assert!(
            md.contains("| fast | 103 (101–105), 10 calls | – | 200 (200–200), 20 calls |"),
            "{md}"
        );
        assert!(!md.contains("| default | –"), "{md}");
        assert!(!fast.contains(TOO_FEW), "{fast}");
    }

    #[test]
    fn peers_are_compared_with_scx_mlsched_and_a_folder_is_reread() {
        // "mlsched" takes 0.8x the time of the peer "bpfland" in every round.
        let mut runs = Vec::new();
        for round in 0..6 {
            for (arm, wall) in [
                ("default", 100.0),
                ("mlsched", 80.0),
                ("bpfland", 100.0),
                ("mlsched-x0.5", 88.0),
                ("mlsched-prev", 100.0),
            ] {
                let mut r = RunRecord {
                    arm: arm.into(),
                    round,
                    ok: true,
                    compile_wall_s: wall + round as f64 * 0.1,
                    ..Default::default()
                };
                r.fio.iops = 1000.0;
                runs.push(r);
            }
        }
        let names: Vec<String> = [
            "default",
            "mlsched",
            "bpfland",
            "mlsched-x0.5",
            "mlsched-prev",
            "rusty",
        ]
        .map(String::from)
        .to_vec();
        let env = Environment {
            rounds: 5,
            seed: 1,
            schedulers: names
                .iter()
                .map(|n| match n.as_str() {
                    "rusty" => (n.clone(), "not available: not built".into()),
                    _ => (n.clone(), "v".into()),
                })
                .collect(),
            ..Default::default()
        };
        let s = summarize(&runs, &names[..5], "default", &[]);
        let md = markdown(&env, Shape::Make, &s, &runs);
        assert!(md.contains(" 5 measured rounds after"), "{md}");
        // A boot stopped after 3 measured rounds says so.
        let early: Vec<RunRecord> = runs.iter().filter(|r| r.round <= 3).cloned().collect();
        let md3 = markdown(
            &env,
            Shape::Make,
            &summarize(&early, &names[..5], "default", &[]),
            &early,
        );
        assert!(
            md3.contains(" 3 of the 5 planned measured rounds (the others have no run) after"),
            "{md3}"
        );
        let row = md
            .lines()
            .find(|l| l.starts_with("| mlsched / bpfland |"))
            .unwrap_or_else(|| panic!("{md}"));
        assert!(row.contains("0.80 [0.80–0.80] better"), "{row}");
        assert!(!md.contains("| bpfland / "), "{md}");
        // A variant against mlsched: 88 / 80 in every round.
        let var = md
            .lines()
            .find(|l| l.starts_with("| mlsched-x0.5 / mlsched |"))
            .unwrap_or_else(|| panic!("{md}"));
        assert!(var.contains("1.10 [1.10–1.10] worse"), "{var}");
        assert!(!md.contains("| mlsched / mlsched |"), "{md}");
        // Every arm of this build against the build before; that build is
        // no variant of mlsched.
        for (pair, ratio) in [
            ("mlsched", "0.80 [0.80–0.80] better"),
            ("mlsched-x0.5", "0.88 [0.88–0.88] better"),
        ] {
            let row = md
                .lines()
                .find(|l| l.starts_with(&format!("| {pair} / mlsched-prev |")))
                .unwrap_or_else(|| panic!("{md}"));
            assert!(row.contains(ratio), "{row}");
        }
        assert!(!md.contains("| mlsched-prev / mlsched |"), "{md}");

        // Written as the benchmark writes it, read back: the same report,
        // and rusty (in env.json, never run) unavailable, with its reason.
        let dir = folder(&env, &runs);
        fs::write(dir.path().join("runs/r1-default.fio.json"), "{}").unwrap();
        fs::write(
            dir.path().join("runs/r1-mlsched-x0.5.cyclictest.json"),
            "{}",
        )
        .unwrap();
        let again = rewrite(dir.path()).unwrap();
        assert!(again.contains(row), "{again}");
        assert!(
            again.contains(var),
            "a dotted arm's runs are read back: {again}"
        );
        assert!(
            again.contains("| rusty | not available: not built |"),
            "{again}"
        );
        assert!(dir.path().join("summary.md").is_file());
        assert!(rewrite(&dir.path().join("runs")).is_err());
    }

    #[test]
    fn each_shape_is_paired_and_reported_on_its_own() {
        // mlsched is 0.8x the default on the make shape and 1.2x on units,
        // in the same rounds: each shape's report shows its own ratio.
        let mut runs = Vec::new();
        for round in 0..6 {
            for (shape, m) in [(Shape::Make, 0.8), (Shape::Units, 1.2)] {
                for (arm, wall) in [("default", 100.0), ("mlsched", 100.0 * m)] {
                    let mut r = RunRecord {
                        arm: arm.into(),
                        shape,
                        round,
                        ok: true,
                        compile_wall_s: wall + round as f64 * 0.1,
                        ..Default::default()
                    };
                    r.fio.iops = 1000.0;
                    runs.push(r);
                }
            }
        }
        let env = Environment {
            rounds: 5,
            cpus: 2,
            make_targets: vec!["kernel/irq/".into()],
            shapes: vec![Shape::Make, Shape::Units],
            unit_targets: vec!["a.o".into(), "b.o".into(), "c.o".into()],
            schedulers: vec![
                ("default".into(), "k".into()),
                ("mlsched".into(), "v".into()),
            ],
            ..Default::default()
        };
        let dir = folder(&env, &runs);
        // Every run has its own file: the shapes' stems differ.
        assert_eq!(
            fs::read_dir(dir.path().join("runs")).unwrap().count(),
            runs.len()
        );
        let md = rewrite(dir.path()).unwrap();
        let (make, units) = md.split_at(md.find("compile shape `units`").unwrap());
        assert!(make.contains("compile shape `make`"), "{md}");
        assert!(make.contains("`make -j4 kernel/irq/`"), "{make}");
        assert!(
            units.contains("`make -j3 a.o b.o c.o`: 3 large translation units"),
            "{units}"
        );
        let row = |part: &str| {
            part.lines()
                .find(|l| l.starts_with("| mlsched |"))
                .map(String::from)
                .unwrap_or_else(|| panic!("{part}"))
        };
        assert!(row(make).contains("0.80 [0.80–0.80] better"), "{make}");
        assert!(row(units).contains("1.20 [1.20–1.20] worse"), "{units}");
        assert!(dir.path().join("summary.json").is_file());
        assert!(dir.path().join("summary-units.json").is_file());
        // A record from before shapes reads as the make shape.
        let old: RunRecord =
            serde_json::from_str(r#"{"arm":"x","round":1,"position":0,"ok":true,"error":null,"ops":"","compile_wall_s":1,"compile_cpu_s":1,"efficiency":1,"cpu_busy":1,"fio":{"iops":1,"clat_mean_us":1,"clat_p99_us":1},"latency":{"avg_us":1,"p99_us":1,"max_us":1,"cycles":1},"ctx_switches":1,"migrations":1,"migrations_per_60s":1,"sched_exit":null,"fio_json":null,"cyclictest_json":null}"#)
                .unwrap();
        assert_eq!(old.shape, Shape::Make);
        assert_eq!(old.stem(), "r1-x");
    }

    #[test]
    fn csv_has_a_row_per_run_and_marks_warmup() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("runs.csv");
        let mut runs = runs();
        runs[3].moved = Some(MovedBy {
            all: 100,
            wake_idle: 50,
            llc_pool: 30,
            steal: 5,
            ..Default::default()
        });
        let mut gate = crate::sched::stats::GateByPoint::default();
        gate.enq_wakeup.decided = 70;
        gate.steal.decided = 3;
        runs[3].gate = Some(gate);
        write_csv(&p, &runs).unwrap();
        let mut rd = csv::Reader::from_path(&p).unwrap();
        let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), runs.len());
        let h = rd.headers().unwrap().clone();
        let col = |name: &str| h.iter().position(|c| c == name).unwrap();
        assert_eq!(&rows[0][col("warmup")], "true");
        assert_eq!(&rows[2][col("warmup")], "false");
        assert_eq!(&rows[12][col("error")], "ejected");
        // Migrations by path: "other" is what the paths leave of the total.
        assert_eq!(&rows[3][col("moved_all")], "100");
        assert_eq!(&rows[3][col("moved_other")], "15");
        assert_eq!(&rows[2][col("moved_other")], "");
        // The gate's decisions per point.
        assert_eq!(&rows[3][col("gate_enq_wakeup")], "70");
        assert_eq!(&rows[3][col("gate_steal")], "3");
        assert_eq!(&rows[2][col("gate_steal")], "");
    }

    #[test]
    fn quick_mode_and_too_few_rounds_judge_nothing() {
        // 2 measured rounds of a clear difference, as `bench --quick` runs.
        let runs: Vec<RunRecord> = runs().into_iter().filter(|r| r.round <= 2).collect();
        let arms: Vec<String> = ["default", "fast", "bpfland"].map(String::from).to_vec();
        let mut with_peer = runs.clone();
        for r in runs.iter().filter(|r| r.arm == "default") {
            with_peer.push(RunRecord {
                arm: "bpfland".into(),
                ..r.clone()
            });
        }
        let s = summarize(&with_peer, &arms, "default", &[]);
        let env = Environment {
            scope: "quick".into(),
            rounds: 2,
            ..Default::default()
        };
        let md = markdown(&env, Shape::Make, &s, &with_peer);
        let first = md.lines().next().unwrap();
        assert!(
            first.contains("checks the benchmark's pipeline, not the schedulers"),
            "{first}"
        );
        assert!(
            md.contains("With 2 paired rounds this report judges nothing"),
            "{md}"
        );
        let fast = md.lines().find(|l| l.starts_with("| fast |")).unwrap();
        assert!(
            fast.starts_with("| fast | 0.6") && fast.contains("(too few rounds to judge)"),
            "{fast}"
        );
        // No verdict and no interval in any table row.
        for l in md.lines().filter(|l| l.starts_with('|')) {
            for word in ["better", "worse", "within noise", " ["] {
                assert!(!l.contains(word), "{word:?} in {l}");
            }
        }
        assert!(
            md.contains("| bpfland | 1.00 (too few rounds to judge)"),
            "{md}"
        );
    }
}
