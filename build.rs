// Build script: compiles the BPF programs in bpf/ with clang (through the scx
// project's BpfBuilder, which bundles vmlinux.h and the scx headers) and
// generates the Rust skeletons plus bindings for the shared interface header.
//
//   bpf/main.bpf.c    -> bpf_skel.rs      (the sched_ext scheduler)
//   bpf/intf.h        -> bpf_intf.rs      (types and constants shared with BPF)
//   bpf/collect.bpf.c -> collect_skel.rs  (kprobes on can_migrate_task)

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
    println!("cargo:rerun-if-changed=bpf");
}
