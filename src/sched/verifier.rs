//! What the BPF verifier says about each program of the scheduler, as
//! `selftest --verifier-stats` prints it: the instructions it processed
//! (the program's complexity, against the verifier's limit of 1,000,000)
//! and the stack depth of each function, the program first, then its
//! subprograms (can_migrate(), ml_gate(), ...).  One call chain shares 512
//! bytes of stack: dispatch -> steal -> can_migrate() -> the tree walk is
//! the longest here, and the feature vector lives in can_migrate()'s frame.
//!
//! How: the programs load with the log level BPF_LOG_STATS, whose log holds
//! only those statistics.  After a successful load libbpf hands that log to
//! its print callback at debug level; this module captures it for the
//! length of the load, and passes everything else on to `log` as
//! scx_utils' own libbpf logger does.

use std::sync::Mutex;

use anyhow::Result;
use libbpf_rs::PrintLevel;

/// The kernel's BPF_LOG_STATS (include/linux/bpf_verifier.h).
pub const BPF_LOG_STATS: u32 = 4;

const BEGIN: &str = "': -- BEGIN PROG LOAD LOG --";
const END: &str = "-- END PROG LOAD LOG --";

/// The stack one call chain may use (MAX_BPF_STACK).
pub const MAX_STACK: u32 = 512;

/// One program's statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgStats {
    pub name: String,
    /// Instructions the verifier processed.
    pub insns: u64,
    /// Stack depth (bytes) of the program, then of each subprogram, with
    /// their names where the kernel gives them.
    pub stack: Vec<(Option<String>, u32)>,
    /// The deepest call chain's stack, where the kernel says it ("stack
    /// depth max N", kernels from 2026 on; before, only the list).
    pub stack_max: Option<u32>,
}

impl ProgStats {
    pub fn line(&self) -> String {
        let each: Vec<String> = self
            .stack
            .iter()
            .map(|(n, d)| match n {
                Some(n) => format!("{n} {d}"),
                None => d.to_string(),
            })
            .collect();
        match self.stack_max {
            Some(max) => format!(
                "verifier: {}: {} instructions processed, stack {max} of {MAX_STACK} bytes on its deepest call chain ({})",
                self.name,
                self.insns,
                each.join(", ")
            ),
            None => format!(
                "verifier: {}: {} instructions processed, stack {} bytes (program+subprograms; at most {} in all)",
                self.name,
                self.insns,
                each.join("+"),
                self.stack.iter().map(|(_, d)| d).sum::<u32>()
            ),
        }
    }
}

static CAPTURED: Mutex<String> = Mutex::new(String::new());

fn capture(level: PrintLevel, msg: String) {
    // A failed load prints its log as a warning: that one goes on to `log`.
    if level == PrintLevel::Debug && msg.contains(BEGIN) {
        CAPTURED.lock().unwrap().push_str(&msg);
        return;
    }
    match level {
        PrintLevel::Debug => log::debug!("{}", msg.trim_end()),
        PrintLevel::Info => log::info!("{}", msg.trim_end()),
        PrintLevel::Warn => log::warn!("{}", msg.trim_end()),
    }
}

/// Run `load` (which must load programs with log level BPF_LOG_STATS)
/// with libbpf's output captured, and return its result with the
/// statistics of every program it loaded.
pub fn capture_load<T>(load: impl FnOnce() -> Result<T>) -> Result<(T, Vec<ProgStats>)> {
    CAPTURED.lock().unwrap().clear();
    let prev = libbpf_rs::set_print(Some((PrintLevel::Debug, capture)));
    let out = load();
    libbpf_rs::set_print(prev);
    let text = std::mem::take(&mut *CAPTURED.lock().unwrap());
    log::debug!("verifier logs:\n{text}");
    Ok((out?, parse(&text)))
}

/// The statistics in libbpf's load logs ("prog 'NAME': -- BEGIN PROG LOAD
/// LOG --" ... "-- END PROG LOAD LOG --"), in order.  A log without the
/// verifier's "processed N insns" line is left out.
pub fn parse(text: &str) -> Vec<ProgStats> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(BEGIN) {
        let name = rest[..at]
            .rsplit("prog '")
            .next()
            .unwrap_or_default()
            .to_string();
        let body_start = at + BEGIN.len();
        let body_end = rest[body_start..]
            .find(END)
            .map_or(rest.len(), |e| body_start + e);
        let body = &rest[body_start..body_end];
        let insns = body
            .lines()
            .find_map(|l| l.trim().strip_prefix("processed "))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok());
        let depth = body
            .lines()
            .find_map(|l| l.trim().strip_prefix("stack depth "));
        let stack_max = depth
            .and_then(|d| d.strip_prefix("max "))
            .and_then(|d| d.trim().parse().ok());
        let stack = if stack_max.is_some() {
            // "subprog 1 (can_migrate) global insns_self 2216 insns_total 2216 stack 312"
            body.lines()
                .filter_map(|l| l.trim().strip_prefix("subprog "))
                .filter_map(|l| {
                    let name = l.split_once('(')?.1.split_once(')')?.0.to_string();
                    let depth = l.rsplit_once(" stack ")?.1.trim().parse().ok()?;
                    Some((Some(name), depth))
                })
                .collect()
        } else {
            depth
                .map(|d| {
                    d.split('+')
                        .filter_map(|x| x.trim().parse().ok())
                        .map(|x| (None, x))
                        .collect()
                })
                .unwrap_or_default()
        };
        if let Some(insns) = insns {
            out.push(ProgStats {
                name,
                insns,
                stack,
                stack_max,
            });
        }
        rest = &rest[body_end..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Logs as libbpf prints them after a load at BPF_LOG_STATS (the
    /// verifier's print_verification_stats()), in the older format: one
    /// "stack depth a+b+c" line.
    #[test]
    fn parses_libbpf_load_logs() {
        let text = "libbpf: prog 'mlsched_enqueue': -- BEGIN PROG LOAD LOG --\n\
                    verification time 5312 usec\n\
                    stack depth 48+184+0+16\n\
                    processed 4123 insns (limit 1000000) max_states_per_insn 4 total_states 301 peak_states 280 mark_read 41\n\
                    -- END PROG LOAD LOG --\n\
                    libbpf: prog 'mlsched_tick': -- BEGIN PROG LOAD LOG --\n\
                    stack depth 0\n\
                    processed 27 insns (limit 1000000) max_states_per_insn 0 total_states 2 peak_states 2 mark_read 1\n\
                    -- END PROG LOAD LOG --\n\
                    libbpf: prog 'broken': -- BEGIN PROG LOAD LOG --\n\
                    nothing here\n\
                    -- END PROG LOAD LOG --\n";
        let stats = parse(text);
        assert_eq!(
            stats,
            vec![
                ProgStats {
                    name: "mlsched_enqueue".into(),
                    insns: 4123,
                    stack: vec![(None, 48), (None, 184), (None, 0), (None, 16)],
                    stack_max: None,
                },
                ProgStats {
                    name: "mlsched_tick".into(),
                    insns: 27,
                    stack: vec![(None, 0)],
                    stack_max: None,
                },
            ]
        );
        assert!(stats[0].line().contains("48+184+0+16 bytes"));
        assert!(stats[0].line().contains("at most 248 in all"));
        assert!(parse("no log at all").is_empty());
    }

    /// The format of the test bed's kernel (7.3): the deepest chain's stack,
    /// then a line per subprogram.
    #[test]
    fn parses_the_per_subprogram_format() {
        let text = "libbpf: prog 'mlsched_enqueue': -- BEGIN PROG LOAD LOG --\n\
                    verification time 130323 usec\n\
                    stack depth max 464\n\
                    subprog 0 (mlsched_enqueue) main insns_self 3533 insns_total 3533 stack 144\n\
                    subprog 1 (can_migrate) global insns_self 2216 insns_total 2216 stack 312\n\
                    processed 5749 insns (limit 1000000) max_states_per_insn 7 total_states 525 peak_states 428 mark_read 0\n\
                    -- END PROG LOAD LOG --\n";
        let stats = parse(text);
        assert_eq!(stats.len(), 1);
        assert_eq!(stats[0].insns, 5749);
        assert_eq!(stats[0].stack_max, Some(464));
        assert_eq!(
            stats[0].stack,
            vec![
                (Some("mlsched_enqueue".to_string()), 144),
                (Some("can_migrate".to_string()), 312)
            ]
        );
        assert!(
            stats[0].line().ends_with(
                "stack 464 of 512 bytes on its deepest call chain (mlsched_enqueue 144, can_migrate 312)"
            ),
            "{}",
            stats[0].line()
        );
    }
}
