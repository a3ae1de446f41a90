//! What the BPF verifier says of each program at load: the instructions it
//! processed and the stack depth of each subprogram.  `selftest` loads the
//! scheduler with every program's log level at BPF_LOG_STATS (4), which
//! makes the kernel append those figures to the load log, and libbpf prints
//! the log of a successful load at its debug level; this module captures
//! that output and parses it.
//!
//! Why: the 512-byte BPF stack is shared along dispatch -> steal ->
//! can_migrate -> tree walk, and every feature or decision point added to
//! that path costs verifier work and stack.  These figures are the
//! budget's gauge (veristat reports the same from the object file).

use std::sync::Mutex;

use libbpf_rs::PrintLevel;

/// The kernel's verifier log level that prints only the statistics.
pub const BPF_LOG_STATS: u32 = 4;

static CAPTURED: Mutex<String> = Mutex::new(String::new());

fn capture(_level: PrintLevel, msg: String) {
    if let Ok(mut s) = CAPTURED.lock() {
        s.push_str(&msg);
    }
}

/// libbpf's output goes to a buffer (debug level included) until the guard
/// is dropped, which restores the previous printer.
pub struct Capture(Option<(PrintLevel, libbpf_rs::PrintCallback)>);

impl Capture {
    pub fn start() -> Self {
        if let Ok(mut s) = CAPTURED.lock() {
            s.clear();
        }
        Capture(libbpf_rs::set_print(Some((PrintLevel::Debug, capture))))
    }

    /// What libbpf printed so far.
    pub fn text(&self) -> String {
        CAPTURED.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        libbpf_rs::set_print(self.0.take());
    }
}

/// One program's figures from its load log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgStats {
    pub name: String,
    /// "processed N insns": what the verifier walked, over all paths.
    pub insns: u64,
    /// Stack depth of each subprogram, in bytes (the main program first).
    pub stack: Vec<u32>,
}

impl ProgStats {
    /// The deepest chain cannot exceed the sum of the subprograms' depths.
    pub fn stack_bound(&self) -> u32 {
        self.stack.iter().sum()
    }
}

/// Parse libbpf's "prog 'NAME': -- BEGIN PROG LOAD LOG --" sections.
pub fn parse(text: &str) -> Vec<ProgStats> {
    let mut out = Vec::new();
    for section in text.split("prog '").skip(1) {
        let Some((name, rest)) = section.split_once("': -- BEGIN PROG LOAD LOG --") else {
            continue;
        };
        let log = rest.split("-- END PROG LOAD LOG --").next().unwrap_or("");
        let insns = log.lines().find_map(|l| {
            l.strip_prefix("processed ")?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        });
        let stack = log.lines().find_map(|l| {
            l.strip_prefix("stack depth ")?
                .trim()
                .split('+')
                .map(|d| d.parse().ok())
                .collect::<Option<Vec<u32>>>()
        });
        if let (Some(insns), Some(stack)) = (insns, stack) {
            out.push(ProgStats {
                name: name.to_string(),
                insns,
                stack,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_logs_give_insns_and_stack_per_program() {
        let text = "libbpf: prog 'mlsched_dispatch': -- BEGIN PROG LOAD LOG --\n\
                    func#0 @0\nverification time 2113 usec\nstack depth 56+0+120\n\
                    processed 4317 insns (limit 1000000) max_states_per_insn 4 total_states 301 peak_states 196 mark_read 24\n\
                    -- END PROG LOAD LOG --\n\
                    libbpf: map 'x': created\n\
                    libbpf: prog 'mlsched_running': -- BEGIN PROG LOAD LOG --\n\
                    stack depth 16\nprocessed 212 insns (limit 1000000) max_states_per_insn 1\n\
                    -- END PROG LOAD LOG --\n\
                    libbpf: prog 'broken': -- BEGIN PROG LOAD LOG --\nno figures\n-- END PROG LOAD LOG --\n";
        let p = parse(text);
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(
            p[0],
            ProgStats {
                name: "mlsched_dispatch".into(),
                insns: 4317,
                stack: vec![56, 0, 120]
            }
        );
        assert_eq!(p[0].stack_bound(), 176);
        assert_eq!(
            (p[1].name.as_str(), p[1].insns, p[1].stack_bound()),
            ("mlsched_running", 212, 16)
        );
        assert!(parse("nothing here").is_empty());
    }
}
