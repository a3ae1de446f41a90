// Generated skeleton of bpf/main.bpf.c (see build.rs).
include!(concat!(env!("OUT_DIR"), "/bpf_skel.rs"));
