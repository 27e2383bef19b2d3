//! Acquiring a 2-D f64 buffer from a NumPy array in Rust, three ways, side by side:
//!
//! * `cyview_py::acquire` as `double[:, ::1]` (Cython's request flags, format and
//!   per-axis checks), then the typed view `view::<f64>()`;
//! * rust-numpy: `extract::<PyReadonlyArray2<f64>>()` (type check and shared borrow) then
//!   `as_array()`;
//! * PyO3's `PyBuffer::<f64>::get` (the baseline: `PyBUF_FULL_RO` and its own checks);
//! * `extract::<MemView<f64, C<2>>>()`, cyview-py's extractor: `acquire` as
//!   `const double[:, ::1]` and, with the `numpy` feature (on here), a shared borrow
//!   registered in rust-numpy's capsule (`cyview_acquire_const`: the acquisition alone);
//! * Cython's own `cdef double[:, ::1] v = obj` (the anchor): `bench_anchors.bench_assign`
//!   (`cython_fixtures/bench/anchors.pyx`, `-O2`) assigns the array to a typed view in a
//!   compiled loop, `n` times per call.
//!
//! Group `acquire`: acquisition alone (and release). Group `acquire_sum`: acquisition and
//! the sum of all elements. Sizes: a C-contiguous 1000x1000 array and a 4x4 one. The
//! interpreter is attached once, outside the timing loops.
//!
//! Run with `cargo bench --bench acquire` (see BENCHMARKS.md).

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use cyview::{format, AxisSpec};
use cyview_py::{acquire, Declaration, MemView, C};
use numpy::PyReadonlyArray2;
use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;

/// `double[:, ::1]`: Cython's axis specs (follow, contig), not `const`.
const SPECS: [AxisSpec; 2] = [AxisSpec::FOLLOW_DIRECT, AxisSpec::CONTIG_DIRECT];

fn decl() -> Declaration<'static> {
    Declaration::new(&format::DOUBLE, &SPECS, true)
}

/// Puts the selected venv's site-packages (NumPy) on `sys.path` and warns when the embedded
/// interpreter is not the one `build.rs` selected (its rpath for benches points at that
/// Python's libpython; an older build or a moved venv may still load another).
fn setup(py: Python<'_>) {
    common::python_paths(py, false);
    let version: String = py
        .import("platform")
        .and_then(|p| p.call_method0("python_version"))
        .and_then(|v| v.extract())
        .expect("platform.python_version()");
    let expected = option_env!("CYVIEW_PYTHON_VERSION").unwrap_or("?");
    if version != expected {
        eprintln!(
            "acquire bench: note: embedded Python {version}, build.rs selected {expected} \
             (rebuild, or set LD_LIBRARY_PATH to that Python's LIBDIR)"
        );
    }
}

fn array<'py>(py: Python<'py>, n: usize) -> Bound<'py, PyAny> {
    let np = py.import("numpy").expect("numpy on sys.path");
    np.call_method1("arange", ((n * n) as f64,))
        .and_then(|a| a.call_method1("reshape", (n, n)))
        .expect("np.arange(n * n).reshape(n, n)")
}

fn sum_cyview(a: &Bound<'_, PyAny>, decl: &Declaration<'_>) -> f64 {
    let v = acquire(a, decl).expect("acquire");
    // SAFETY: nothing writes the array during the benchmark.
    let view = unsafe { v.view::<f64>() }.expect("f64 view");
    view.iter().sum()
}

fn sum_cyview_ndarray(a: &Bound<'_, PyAny>, decl: &Declaration<'_>) -> f64 {
    let v = acquire(a, decl).expect("acquire");
    // SAFETY: nothing writes the array during the benchmark.
    let array = unsafe { v.as_array::<f64>() }.expect("ndarray view");
    array.sum()
}

fn sum_numpy(a: &Bound<'_, PyAny>) -> f64 {
    let r = a.extract::<PyReadonlyArray2<'_, f64>>().expect("extract");
    r.as_array().sum()
}

/// PyO3 0.30's way to read a contiguous buffer (`as_slice` is deprecated as unsound).
fn sum_pybuffer(a: &Bound<'_, PyAny>) -> f64 {
    let b = PyBuffer::<f64>::get(a).expect("PyBuffer::get");
    let ptr = b.as_slice_ptr().expect("C-contiguous");
    // SAFETY: `PyBuffer::get` checked the format, item size and alignment for `f64`; the
    // buffer is held (so the memory is alive) for the slice's use, and no Python code runs
    // while it is read, so nothing writes the array meanwhile.
    let elements: &[f64] = unsafe { ptr.as_ref() };
    elements.iter().sum()
}

fn benches(c: &mut Criterion) {
    Python::attach(|py| {
        setup(py);
        let decl = decl();
        // `const double[:, ::1]`: what the extractor acquires, without its view and borrow.
        let const_decl = MemView::<f64, C<2>>::declaration();
        let sizes = [1000usize, 4];
        let arrays: Vec<(usize, Bound<'_, PyAny>)> =
            sizes.iter().map(|&n| (n, array(py, n))).collect();

        // Every variant reads the same elements: the sums agree exactly (integers < 2^53).
        let anchors = common::anchors(py);
        let assign = anchors.getattr("bench_assign").expect("bench_assign");
        for (n, a) in &arrays {
            let expected = (n * n) as f64 * ((n * n) as f64 - 1.0) / 2.0;
            let m = a
                .extract::<MemView<'_, f64, C<2>>>()
                .expect("extract MemView");
            assert_eq!(m.sum(), expected);
            assert_eq!(m.shape(), [*n, *n]);
            drop(m);
            let rows: usize = assign.call1((a, 3)).and_then(|r| r.extract()).unwrap();
            assert_eq!(rows, *n);
            assert_eq!(sum_cyview(a, &decl), expected);
            assert_eq!(sum_cyview_ndarray(a, &decl), expected);
            assert_eq!(sum_numpy(a), expected);
            assert_eq!(sum_pybuffer(a), expected);
        }

        let mut g = c.benchmark_group("acquire");
        for (n, a) in &arrays {
            let size = format!("{n}x{n}");
            g.bench_with_input(BenchmarkId::new("pyo3_pybuffer", &size), a, |b, a| {
                b.iter(|| {
                    let buf = PyBuffer::<f64>::get(black_box(a)).expect("PyBuffer::get");
                    black_box(buf.buf_ptr());
                })
            });
            g.bench_with_input(BenchmarkId::new("cyview_acquire", &size), a, |b, a| {
                b.iter(|| {
                    let v = acquire(black_box(a), &decl).expect("acquire");
                    // SAFETY: nothing writes the array during the benchmark.
                    black_box(unsafe { v.view::<f64>() }.expect("f64 view"));
                })
            });
            g.bench_with_input(BenchmarkId::new("numpy_readonly", &size), a, |b, a| {
                b.iter(|| {
                    let r = black_box(a)
                        .extract::<PyReadonlyArray2<'_, f64>>()
                        .expect("extract");
                    black_box(r.as_array());
                })
            });
            g.bench_with_input(
                BenchmarkId::new("cyview_acquire_const", &size),
                a,
                |b, a| {
                    b.iter(|| {
                        let v = acquire(black_box(a), &const_decl).expect("acquire");
                        black_box(v.as_raw().data);
                    })
                },
            );
            g.bench_with_input(BenchmarkId::new("memview_extract", &size), a, |b, a| {
                b.iter(|| {
                    let m = black_box(a)
                        .extract::<MemView<'_, f64, C<2>>>()
                        .expect("extract");
                    black_box(m.as_raw().data);
                })
            });
            g.bench_with_input(BenchmarkId::new("cython_assign", &size), a, |b, a| {
                b.iter_custom(|n| common::time_repetitions(n, |n| assign.call1((a, n))))
            });
        }
        g.finish();

        // A Cython `_memoryviewslice` object (what a `def` function returning a view gives
        // Python): `acquire` proves its buffer against the one it was sliced from.
        let view_of = anchors.getattr("bench_view").expect("bench_view");
        let mut g = c.benchmark_group("acquire_memoryviewslice");
        for (n, a) in &arrays {
            let size = format!("{n}x{n}");
            let mv = view_of.call1((a,)).expect("bench_view");
            let sliced = mv
                .get_item(pyo3::types::PySlice::new(py, 1, *n as isize, 1))
                .expect("mv[1:]");
            for (name, obj) in [("whole", &mv), ("rows_1_to_end", &sliced)] {
                let v = acquire(obj, &const_decl).expect("acquire");
                assert_eq!(v.as_raw().shape[1], *n as isize);
                g.bench_with_input(BenchmarkId::new(name, &size), obj, |b, obj| {
                    b.iter(|| {
                        let v = acquire(black_box(obj), &const_decl).expect("acquire");
                        black_box(v.as_raw().data);
                    })
                });
            }
        }
        g.finish();

        let mut g = c.benchmark_group("acquire_sum");
        for (n, a) in &arrays {
            let size = format!("{n}x{n}");
            g.bench_with_input(BenchmarkId::new("pyo3_pybuffer", &size), a, |b, a| {
                b.iter(|| black_box(sum_pybuffer(black_box(a))))
            });
            g.bench_with_input(BenchmarkId::new("cyview_acquire", &size), a, |b, a| {
                b.iter(|| black_box(sum_cyview(black_box(a), &decl)))
            });
            g.bench_with_input(BenchmarkId::new("numpy_readonly", &size), a, |b, a| {
                b.iter(|| black_box(sum_numpy(black_box(a))))
            });
            g.bench_with_input(
                BenchmarkId::new("cyview_acquire_as_array", &size),
                a,
                |b, a| b.iter(|| black_box(sum_cyview_ndarray(black_box(a), &decl))),
            );
        }
        g.finish();
    });
}

criterion_group!(acquire_benches, benches);
criterion_main!(acquire_benches);
