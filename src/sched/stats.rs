//! Scheduler statistics: per-CPU counters from the BPF `stats` map, summed
//! here, served over scx_stats so that `--stats` (in process) and
//! `--monitor` (another process) print the same lines, scx style.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use libbpf_rs::{MapCore, MapFlags};
use scx_stats::prelude::*;
use scx_stats_derive::{stat_doc, Stats};
use serde::{Deserialize, Serialize};

use crate::sched::bpf_intf as c;

#[stat_doc]
#[derive(Clone, Debug, Default, Serialize, Deserialize, Stats)]
#[stat(top)]
pub struct Metrics {
    #[stat(desc = "Tasks dispatched straight to an idle CPU")]
    pub dispatch_local: u64,
    #[stat(desc = "Tasks taken from the CPU's own DSQ")]
    pub dispatch_cpu_dsq: u64,
    #[stat(desc = "Tasks taken from the LLC's shared DSQ")]
    pub dispatch_llc_dsq: u64,
    #[stat(desc = "Tasks stolen from another CPU or LLC")]
    pub dispatch_stolen: u64,
    #[stat(desc = "Steal scans that found only tasks they may not take")]
    pub steal_failed: u64,
    #[stat(desc = "Idle CPUs kicked to pull work")]
    pub kicks: u64,
    #[stat(desc = "Slices renewed for prev: its vtime was not ahead of the queue heads")]
    pub keep_prev: u64,
    #[stat(desc = "can_migrate: allowed, task cold")]
    pub mig_allowed: u64,
    #[stat(desc = "can_migrate: allowed although hot, balancing failed too often")]
    pub mig_allowed_fails: u64,
    #[stat(desc = "can_migrate: refused, destination not in the task's affinity")]
    pub mig_deny_affinity: u64,
    #[stat(desc = "can_migrate: refused, task running")]
    pub mig_deny_running: u64,
    #[stat(desc = "can_migrate: refused, migration disabled")]
    pub mig_deny_pinned: u64,
    #[stat(desc = "can_migrate: refused, task cache-hot")]
    pub mig_deny_hot: u64,
}

impl Metrics {
    /// Build from the summed counters, indexed by enum stat_idx.
    pub fn from_counters(cnt: &[u64]) -> Self {
        let at = |i: u32| cnt.get(i as usize).copied().unwrap_or(0);
        let mig = |v: u32| at(c::stat_idx_STAT_MIG_BASE + v);
        Self {
            dispatch_local: at(c::stat_idx_STAT_DISPATCH_LOCAL),
            dispatch_cpu_dsq: at(c::stat_idx_STAT_DISPATCH_CPU_DSQ),
            dispatch_llc_dsq: at(c::stat_idx_STAT_DISPATCH_LLC_DSQ),
            dispatch_stolen: at(c::stat_idx_STAT_DISPATCH_STOLEN),
            steal_failed: at(c::stat_idx_STAT_STEAL_FAILED),
            kicks: at(c::stat_idx_STAT_KICKS),
            keep_prev: at(c::stat_idx_STAT_KEEP_PREV),
            mig_allowed: mig(c::mig_verdict_MIG_ALLOWED),
            mig_allowed_fails: mig(c::mig_verdict_MIG_ALLOWED_FAILS),
            mig_deny_affinity: mig(c::mig_verdict_MIG_DENY_AFFINITY),
            mig_deny_running: mig(c::mig_verdict_MIG_DENY_RUNNING),
            mig_deny_pinned: mig(c::mig_verdict_MIG_DENY_PINNED),
            mig_deny_hot: mig(c::mig_verdict_MIG_DENY_HOT),
        }
    }

    pub fn delta(&self, rhs: &Self) -> Self {
        let d = |a: u64, b: u64| a.saturating_sub(b);
        Self {
            dispatch_local: d(self.dispatch_local, rhs.dispatch_local),
            dispatch_cpu_dsq: d(self.dispatch_cpu_dsq, rhs.dispatch_cpu_dsq),
            dispatch_llc_dsq: d(self.dispatch_llc_dsq, rhs.dispatch_llc_dsq),
            dispatch_stolen: d(self.dispatch_stolen, rhs.dispatch_stolen),
            steal_failed: d(self.steal_failed, rhs.steal_failed),
            kicks: d(self.kicks, rhs.kicks),
            keep_prev: d(self.keep_prev, rhs.keep_prev),
            mig_allowed: d(self.mig_allowed, rhs.mig_allowed),
            mig_allowed_fails: d(self.mig_allowed_fails, rhs.mig_allowed_fails),
            mig_deny_affinity: d(self.mig_deny_affinity, rhs.mig_deny_affinity),
            mig_deny_running: d(self.mig_deny_running, rhs.mig_deny_running),
            mig_deny_pinned: d(self.mig_deny_pinned, rhs.mig_deny_pinned),
            mig_deny_hot: d(self.mig_deny_hot, rhs.mig_deny_hot),
        }
    }

    pub fn format<W: Write>(&self, w: &mut W) -> Result<()> {
        writeln!(
            w,
            "[scx_mlsched] dispatch -> local: {} cpu: {} llc: {} stolen: {} keep_prev: {} | steal_failed: {} kicks: {} | \
             can_migrate -> allow: {} allow_fails: {} hot: {} affinity: {} running: {} pinned: {}",
            self.dispatch_local,
            self.dispatch_cpu_dsq,
            self.dispatch_llc_dsq,
            self.dispatch_stolen,
            self.keep_prev,
            self.steal_failed,
            self.kicks,
            self.mig_allowed,
            self.mig_allowed_fails,
            self.mig_deny_hot,
            self.mig_deny_affinity,
            self.mig_deny_running,
            self.mig_deny_pinned,
        )?;
        Ok(())
    }
}

/// Sum the per-CPU `struct stats_val` of a PERCPU_ARRAY with one entry.
pub fn read_counters(map: &impl MapCore) -> Result<Vec<u64>> {
    let key = 0u32.to_ne_bytes();
    let per_cpu = map
        .lookup_percpu(&key, MapFlags::ANY)
        .context("reading the stats map")?
        .context("the stats map has no entry 0")?;
    Ok(sum_per_cpu(&per_cpu, c::stat_idx_NR_MLSCHED_STATS as usize))
}

/// Sum `n` native-endian u64 counters over the per-CPU value blobs.
pub fn sum_per_cpu(per_cpu: &[Vec<u8>], n: usize) -> Vec<u64> {
    let mut sum = vec![0u64; n];
    for blob in per_cpu {
        for (i, chunk) in blob.chunks_exact(8).take(n).enumerate() {
            sum[i] = sum[i].wrapping_add(u64::from_ne_bytes(chunk.try_into().unwrap()));
        }
    }
    sum
}

pub fn server_data() -> StatsServerData<(), Metrics> {
    let open: Box<dyn StatsOpener<(), Metrics>> = Box::new(move |(req_ch, res_ch)| {
        req_ch.send(())?;
        let mut prev = res_ch.recv()?;
        let read: Box<dyn StatsReader<(), Metrics>> = Box::new(move |_args, (req_ch, res_ch)| {
            req_ch.send(())?;
            let cur = res_ch.recv()?;
            let delta = cur.delta(&prev);
            prev = cur;
            delta.to_json()
        });
        Ok(read)
    });
    StatsServerData::new()
        .add_meta(Metrics::meta())
        .add_ops("top", StatsOps { open, close: None })
}

/// Print the stats of a running instance every `intv` until `shutdown`.
pub fn monitor(intv: Duration, shutdown: Arc<AtomicBool>) -> Result<()> {
    scx_utils::monitor_stats::<Metrics>(
        &[],
        intv,
        || shutdown.load(Ordering::Relaxed),
        |m| m.format(&mut std::io::stdout()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_cpu_blobs_are_summed_per_counter() {
        let cpu = |vals: &[u64]| {
            vals.iter()
                .flat_map(|v| v.to_ne_bytes())
                .collect::<Vec<u8>>()
        };
        let sum = sum_per_cpu(&[cpu(&[1, 2, 3]), cpu(&[10, 0, 30])], 3);
        assert_eq!(sum, vec![11, 2, 33]);
    }

    #[test]
    fn counters_land_in_their_fields_and_delta_subtracts() {
        let mut cnt = vec![0u64; c::stat_idx_NR_MLSCHED_STATS as usize];
        cnt[c::stat_idx_STAT_DISPATCH_STOLEN as usize] = 7;
        cnt[(c::stat_idx_STAT_MIG_BASE + c::mig_verdict_MIG_DENY_HOT) as usize] = 5;
        let m = Metrics::from_counters(&cnt);
        assert_eq!(
            (m.dispatch_stolen, m.mig_deny_hot, m.mig_allowed),
            (7, 5, 0)
        );
        let d = m.delta(&Metrics {
            dispatch_stolen: 2,
            ..Default::default()
        });
        assert_eq!(d.dispatch_stolen, 5);
        let mut out = Vec::new();
        d.format(&mut out).unwrap();
        assert!(String::from_utf8(out).unwrap().contains("stolen: 5"));
    }
}
