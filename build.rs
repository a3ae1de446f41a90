// Build script: compiles the BPF programs in bpf/ with clang (through the scx
// project's BpfBuilder, which bundles vmlinux.h and the scx headers) and
// generates the Rust skeletons plus bindings for the shared interface header.
//
//   bpf/main.bpf.c    -> bpf_skel.rs      (the sched_ext scheduler)
//   bpf/intf.h        -> bpf_intf.rs      (types and constants shared with BPF)
//   bpf/collect.bpf.c -> collect_skel.rs  (kprobes on can_migrate_task)
//   bpf/tree.bpf.c    -> tree_skel.rs     (the tree walk alone: replay, timing)
//   bpf/benchtrace.bpf.c -> benchtrace_skel.rs (the benchmark's per-workload counts)
//
// It also records the git revision (MLSCHED_GIT_REV, "g<sha>[-dirty]") for
// `--version`, as the scx schedulers' full version carries theirs.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    scx_cargo::BpfBuilder::new()
        .unwrap()
        .enable_intf("bpf/intf.h", "bpf_intf.rs")
        .enable_skel("bpf/main.bpf.c", "bpf")
        .build()
        .unwrap();
    if std::path::Path::new("bpf/collect.bpf.c").exists() {
        scx_cargo::BpfBuilder::new()
            .unwrap()
            .enable_skel("bpf/collect.bpf.c", "collect")
            .build()
            .unwrap();
    }
    scx_cargo::BpfBuilder::new()
        .unwrap()
        .enable_skel("bpf/tree.bpf.c", "tree")
        .build()
        .unwrap();
    scx_cargo::BpfBuilder::new()
        .unwrap()
        .enable_skel("bpf/benchtrace.bpf.c", "benchtrace")
        .build()
        .unwrap();
    println!("cargo:rerun-if-changed=bpf");

    if let Some(sha) = git(&["rev-parse", "--short=12", "HEAD"]) {
        let dirty =
            git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
        println!(
            "cargo:rustc-env=MLSCHED_GIT_REV=g{sha}{}",
            if dirty { "-dirty" } else { "" }
        );
        // A new commit or a changed index changes the revision.
        println!("cargo:rerun-if-changed=src");
        for f in [".git/HEAD", ".git/index", ".git/refs", ".git/packed-refs"] {
            if std::path::Path::new(f).exists() {
                println!("cargo:rerun-if-changed={f}");
            }
        }
    }
}
