//! The whole pipeline in memory: receive a batch of 64-byte frames, VLAN
//! classification, learning, lookup, output to memory ports.
//!
//! `cargo bench -p bench --bench pipeline`

use bench::Setup;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use pipeline::BATCH_SIZE;

fn learning_switch(c: &mut Criterion) {
    let mut g = c.benchmark_group("l2-switch");
    g.throughput(Throughput::Elements(BATCH_SIZE as u64));
    for vlan in [false, true] {
        for ports in [2usize, 8, 64] {
            for macs in [1usize, 1_000, 100_000] {
                let name = format!(
                    "{}ports-{}macs{}",
                    ports,
                    macs,
                    if vlan { "-vlan" } else { "" }
                );
                let mut s = Setup::new(ports, macs, vlan);
                g.bench_function(BenchmarkId::from_parameter(name), |b| {
                    b.iter(|| s.run_batch(0))
                });
            }
        }
    }
    g.finish();
}

criterion_group!(benches, learning_switch);
criterion_main!(benches);
