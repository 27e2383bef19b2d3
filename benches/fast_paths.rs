//! Issue 11's fast paths next to what they are measured against, side by side:
//!
//! * group `row_sums`: the row sums of a C-contiguous 2000x2000 f64 NumPy array through the
//!   documented path `a.rows().map(|r| r.sum()).collect::<Vec<f64>>()` on a
//!   `MemView<f64, C<2>>`, against rust-numpy's `a.as_array().sum_axis(Axis(1))` on a
//!   `PyReadonlyArray2<f64>`: with the extraction in every iteration (`*_extract`), and on
//!   an argument extracted once (`*_compute`);
//! * group `sum`: the sum of a C-contiguous array's elements: `GilView::sum` (through the
//!   extracted `MemView`), `View::sum` (the core crate's, of the same elements),
//!   `GilView::iter().sum::<f64>()` (sequential order) and ndarray's `sum()` of
//!   rust-numpy's `as_array()` (the baseline);
//! * group `slice_cython`: `v[a:b:c, ::-1]` with Cython's semantics on a `double[:, :]`
//!   view of a 100x100 array, the start alternating between `a` and `a + 1`: Cython's
//!   compiled slicing in a compiled loop that consumes each result (`bench_anchors`, `-O2`:
//!   `bench_slice` takes no acquisition, as Cython 3.3 skips the count when the target
//!   keeps its memoryview object; `bench_slice_counted` takes and releases one per
//!   result; `bench_slice_invariant`, with fixed bounds, shows what gcc makes of a loop
//!   whose slice it can hoist), `cyview::raw::slicing::slice` (no acquisition),
//!   `CythonSlice::slice_with` (takes and releases an acquisition) and the safe
//!   `View::slice_with` (no acquisition; refuses results outside the view).
//!
//! Every variant's result is first checked against the others (and the slicing against
//! Cython's own result). Run with `cargo bench --bench fast_paths` (see BENCHMARKS.md).

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use cyview::raw::slicing;
use cyview::{Direct, MemviewSlice, Semantics, Slice, SliceItem};
use cyview_py::{capi_function, CythonSlice, MemView, C};
use ndarray::Axis;
use numpy::PyReadonlyArray2;
use pyo3::prelude::*;

type AsView = unsafe extern "C" fn(*mut pyo3::ffi::PyObject) -> MemviewSlice;

/// `np.arange(n * m, dtype=float).reshape(n, m)`.
fn array<'py>(py: Python<'py>, n: usize, m: usize) -> Bound<'py, PyAny> {
    py.import("numpy")
        .and_then(|np| np.call_method1("arange", ((n * m) as f64,)))
        .and_then(|a| a.call_method1("reshape", (n, m)))
        .expect("np.arange(n * m).reshape(n, m)")
}

fn row_sums_memview(a: &Bound<'_, PyAny>) -> Vec<f64> {
    let a = a.extract::<MemView<'_, f64, C<2>>>().expect("extract");
    a.rows().map(|r| r.sum()).collect::<Vec<f64>>()
}

fn row_sums_numpy(a: &Bound<'_, PyAny>) -> ndarray::Array1<f64> {
    let a = a.extract::<PyReadonlyArray2<'_, f64>>().expect("extract");
    a.as_array().sum_axis(Axis(1))
}

fn row_sums(c: &mut Criterion, py: Python<'_>) {
    let n = 2000usize;
    let a = array(py, n, n);
    // Row i holds i*n .. i*n + n - 1: integer sums below 2^53, exact in any order.
    let expected: Vec<f64> = (0..n)
        .map(|i| (i * n * n + n * (n - 1) / 2) as f64)
        .collect();
    assert_eq!(row_sums_memview(&a), expected);
    assert_eq!(row_sums_numpy(&a).to_vec(), expected);

    let mut g = c.benchmark_group("row_sums");
    // 32 MB per pass, milliseconds per iteration: fewer samples keep the run short.
    g.sample_size(20);
    g.bench_function("numpy_sum_axis_extract", |b| {
        b.iter(|| black_box(row_sums_numpy(black_box(&a))))
    });
    g.bench_function("memview_rows_extract", |b| {
        b.iter(|| black_box(row_sums_memview(black_box(&a))))
    });
    let r = a.extract::<PyReadonlyArray2<'_, f64>>().expect("extract");
    let m = a.extract::<MemView<'_, f64, C<2>>>().expect("extract");
    g.bench_function("numpy_sum_axis_compute", |b| {
        b.iter(|| black_box(black_box(&r).as_array().sum_axis(Axis(1))))
    });
    g.bench_function("memview_rows_compute", |b| {
        b.iter(|| {
            let m = black_box(&m);
            black_box(m.rows().map(|r| r.sum()).collect::<Vec<f64>>())
        })
    });
    g.finish();
}

fn sum(c: &mut Criterion, py: Python<'_>) {
    let mut g = c.benchmark_group("sum");
    for n in [1000usize, 100] {
        let a = array(py, n, n);
        let r = a.extract::<PyReadonlyArray2<'_, f64>>().expect("extract");
        let m = a.extract::<MemView<'_, f64, C<2>>>().expect("extract");
        let nd = r.as_array();
        // SAFETY: nothing writes the array during the benchmark.
        let view = unsafe { m.detached() };
        let expected = (n * n) as f64 * ((n * n) as f64 - 1.0) / 2.0;
        assert_eq!(nd.sum(), expected);
        assert_eq!(m.sum(), expected);
        assert_eq!(view.sum(), expected);
        assert_eq!(m.iter().sum::<f64>(), expected);

        let size = format!("{n}x{n}");
        g.bench_with_input(BenchmarkId::new("ndarray_sum", &size), &nd, |b, nd| {
            b.iter(|| black_box(nd).sum())
        });
        g.bench_with_input(BenchmarkId::new("gil_view_sum", &size), &m, |b, m| {
            b.iter(|| black_box(m).sum())
        });
        g.bench_with_input(BenchmarkId::new("view_sum", &size), &view, |b, v| {
            b.iter(|| black_box(v).sum())
        });
        g.bench_with_input(BenchmarkId::new("gil_view_iter_sum", &size), &m, |b, m| {
            b.iter(|| black_box(m).iter().sum::<f64>())
        });
    }
    g.finish();
}

/// `[a:b:c, ::-1]`.
fn items(a: isize, b: isize, c: isize) -> [SliceItem; 2] {
    [
        SliceItem::Slice(Slice::new(Some(a), Some(b), Some(c))),
        SliceItem::Slice(Slice::new(None, None, Some(-1))),
    ]
}

fn slice_cython(c: &mut Criterion, py: Python<'_>) {
    let anchors = common::anchors(py);
    let array = array(py, 100, 100);
    // It returns an owned 2-d double slice (or an error slice, which `from_returned` turns
    // into the error); the signature is derived from `AsView` and checked.
    let from_object: AsView =
        capi_function(&anchors, "anchors_from_object").expect("anchors_from_object");
    // SAFETY: as above: an owned 2-d slice Cython made.
    let src = unsafe { CythonSlice::from_returned(py, from_object(array.as_ptr()), 2) }
        .expect("a Cython slice");
    // SAFETY: nothing writes the array during the benchmark.
    let view = unsafe { src.view::<f64>() }.expect("view");
    let (a, b, step) = (3isize, 90isize, 4isize);

    // Cython's own result: shape, strides and offset of its `v[a:b:c, ::-1]`.
    type Geometry = ((isize, isize), (isize, isize), isize);
    let cython: Geometry = anchors
        .call_method1("slice_geometry", (&array, a, b, step))
        .and_then(|g| g.extract())
        .expect("slice_geometry");
    let geometry = |s: &MemviewSlice| -> Geometry {
        (
            (s.shape[0], s.shape[1]),
            (s.strides[0], s.strides[1]),
            s.data as isize - src.as_raw().data as isize,
        )
    };
    let (raw, ndim) = slicing::slice(
        src.as_raw(),
        2,
        &items(a, b, step),
        Semantics::Cython,
        Direct,
    )
    .expect("slice");
    assert_eq!(ndim, 2);
    assert_eq!(geometry(&raw), cython);
    let counted = src
        .slice_with(&items(a, b, step), Semantics::Cython)
        .expect("slice_with");
    assert_eq!(geometry(counted.as_raw()), cython);
    drop(counted);
    let safe = view
        .slice_with(&items(a, b, step), Semantics::Cython)
        .expect("View::slice_with");
    assert_eq!(geometry(safe.as_raw()), cython);
    // The anchors alternate the start between `a` and `a + 1` (so that gcc cannot hoist
    // the slicing out of their loop); so do the Rust variants.
    let a1: Geometry = anchors
        .call_method1("slice_geometry", (&array, a + 1, b, step))
        .and_then(|g| g.extract())
        .expect("slice_geometry");
    for f in ["bench_slice", "bench_slice_counted"] {
        let acc: isize = anchors
            .call_method1(f, (&array, 10, a, b, step))
            .and_then(|r| r.extract())
            .expect(f);
        assert_eq!(acc, 5 * cython.0 .0 + 5 * a1.0 .0, "{f}");
    }
    let invariant: isize = anchors
        .call_method1("bench_slice_invariant", (&array, 10, a, b, step))
        .and_then(|r| r.extract())
        .expect("bench_slice_invariant");
    assert_eq!(invariant, 10 * cython.0 .0);

    let mut g = c.benchmark_group("slice_cython");
    for (name, f) in [
        ("cython_compiled", "bench_slice"),
        ("cython_compiled_counted", "bench_slice_counted"),
        ("cython_compiled_invariant", "bench_slice_invariant"),
    ] {
        let f = anchors.getattr(f).expect("anchor");
        g.bench_function(name, |bch| {
            bch.iter_custom(|n| common::time_repetitions(n, |n| f.call1((&array, n, a, b, step))))
        });
    }
    g.bench_function("raw_slice", |bch| {
        let mut i = 0isize;
        bch.iter(|| {
            i += 1;
            let items = items(black_box(a) + (i & 1), black_box(b), black_box(step));
            let (s, _) =
                slicing::slice(src.as_raw(), 2, &items, Semantics::Cython, Direct).expect("slice");
            black_box(s.shape[0])
        })
    });
    g.bench_function("cython_slice_with", |bch| {
        let mut i = 0isize;
        bch.iter(|| {
            i += 1;
            let items = items(black_box(a) + (i & 1), black_box(b), black_box(step));
            let s = src
                .slice_with(&items, Semantics::Cython)
                .expect("slice_with");
            black_box(s.as_raw().shape[0])
        })
    });
    g.bench_function("view_slice_with", |bch| {
        let mut i = 0isize;
        bch.iter(|| {
            i += 1;
            let items = items(black_box(a) + (i & 1), black_box(b), black_box(step));
            let s = view
                .slice_with(&items, Semantics::Cython)
                .expect("slice_with");
            black_box(s.shape()[0])
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    Python::attach(|py| {
        common::python_paths(py, false);
        row_sums(c, py);
        sum(c, py);
        slice_cython(c, py);
    });
}

criterion_group!(fast_paths_benches, benches);
criterion_main!(fast_paths_benches);
