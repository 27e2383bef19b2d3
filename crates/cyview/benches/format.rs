//! `check_format` on pathological format strings, recorded rather than asserted (the tests
//! bound the work in steps, `tests/format_properties.rs`): nests of repeated sub-structs on
//! which Cython itself loops for ages, or which it re-reads at every depth.
//!
//! * `repeat/<depth>`: `"2147483647T{" * depth + "x" + "}" * depth + "d"` (at depth 25,600 the
//!   333 KB string of the issue, which took 21 s per check before the work was bounded);
//! * `reread/<depth>`: `"T{x}2T{" * depth + "0" + "}^" * depth`, where each level's second
//!   pass ends inside the next level's `T{x}` and the level above reads the rest again.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use cyview::format::{check_format_outcome, DOUBLE};

fn repeat(depth: usize) -> Vec<u8> {
    let mut s = "2147483647T{".repeat(depth);
    s.push('x');
    s.push_str(&"}".repeat(depth));
    s.push('d');
    s.into_bytes()
}

fn reread(depth: usize) -> Vec<u8> {
    let mut s = "T{x}2T{".repeat(depth);
    s.push('0');
    s.push_str(&"}^".repeat(depth));
    s.into_bytes()
}

/// A family of format strings by depth.
type Family = fn(usize) -> Vec<u8>;

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("format_pathological");
    group.sample_size(10);
    for (name, family) in [("repeat", repeat as Family), ("reread", reread as Family)] {
        for depth in [1_000, 10_000, 25_600] {
            let fmt = family(depth);
            group.throughput(Throughput::Bytes(fmt.len() as u64));
            group.bench_with_input(BenchmarkId::new(name, depth), &fmt, |b, fmt| {
                b.iter(|| check_format_outcome(black_box(fmt), &DOUBLE))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
