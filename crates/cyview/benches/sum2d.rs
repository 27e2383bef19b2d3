//! Summing a 2-D strided f64 view of 10^7 elements: the safe `View` iterator against a
//! raw-pointer loop over the same memory, side by side in one criterion group.
//!
//! The view is `base[:, ::2]` of a C-contiguous `(2500, 8000)` f64 array: shape
//! `(2500, 4000)`, byte strides `(64000, 16)`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use cyview::{s, View};

const ROWS: usize = 2500;
const COLS: usize = 8000;

/// The baseline: what a C programmer writes, nested loops over byte offsets.
///
/// # Safety
///
/// `data` must be valid for reads of every `data + i * s0 + j * s1` (`i < rows`,
/// `j < cols`) as f64.
unsafe fn raw_sum(data: *const u8, rows: isize, cols: isize, s0: isize, s1: isize) -> f64 {
    let mut acc = 0.0;
    for i in 0..rows {
        // SAFETY: in-bounds row start by the caller's contract.
        let row = unsafe { data.offset(i * s0) };
        for j in 0..cols {
            // SAFETY: in-bounds element by the caller's contract.
            acc += unsafe { row.offset(j * s1).cast::<f64>().read_unaligned() };
        }
    }
    acc
}

fn bench(c: &mut Criterion) {
    let base: Vec<f64> = (0..ROWS * COLS).map(|k| (k % 1000) as f64 * 0.5).collect();
    let full = View::from_slice(&base, &[ROWS, COLS]).expect("valid shape");
    let view = full.slice(&s![.., ..;2]).expect("valid slice");
    let (rows, cols) = (view.shape()[0], view.shape()[1]);
    let (s0, s1) = (view.strides()[0], view.strides()[1]);
    let data = view.as_raw().data.cast_const();

    // SAFETY: `data`, the shape and strides come from a valid view of `base`.
    let expected = unsafe { raw_sum(data, rows, cols, s0, s1) };
    assert_eq!(view.iter().sum::<f64>(), expected, "both loops must agree");

    let mut group = c.benchmark_group("sum_2d_strided_f64_1e7");
    group.throughput(Throughput::Elements((rows * cols) as u64));
    group.sample_size(20);
    group.bench_function("raw_pointer_loop", |b| {
        // SAFETY: as above.
        b.iter(|| unsafe { raw_sum(black_box(data), rows, cols, s0, s1) })
    });
    group.bench_function("view_iter_sum", |b| {
        b.iter(|| black_box(&view).iter().sum::<f64>())
    });
    group.bench_function("view_iter_for_loop", |b| {
        // External iteration: drives `Iterator::next`, not the nested-loop `fold`.
        b.iter(|| {
            let mut acc = 0.0;
            for x in black_box(&view).iter() {
                acc += x;
            }
            acc
        })
    });
    group.bench_function("view_get_indexed", |b| {
        b.iter(|| {
            let v = black_box(&view);
            let mut acc = 0.0;
            for i in 0..rows as usize {
                for j in 0..cols as usize {
                    acc += v.get(&[i, j]).unwrap_or(0.0);
                }
            }
            acc
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
