//! End-to-end benchmark: vswitchd against the Linux bridge on veths between
//! two network namespaces (issue #4, part 2). See `bench/src/e2e/mod.rs`
//! and BENCHMARKS.md.
//!
//! `cargo build --release -p vswitch -p cli -p bench && sudo target/release/e2e [--quick]`

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(bench::e2e::main(&args));
}
