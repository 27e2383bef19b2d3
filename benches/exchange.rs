//! The cost of a typed memoryview at a C call, both directions, next to the same call with a
//! plain pointer (`cython_fixtures/callbench.pyx`):
//!
//! * Rust -> Cython: `cdef api double cb_first_view(double[:, ::1] v)` (the 208-byte
//!   `__Pyx_memviewslice` passed by value; `v[0, 0]` with Cython's default initialisation
//!   and bounds checks), the same with the checks off (`cb_first_view_unchecked`), and
//!   `cb_first_ptr(double *p)`, each returning the first element, called through the
//!   `__pyx_capi__` function pointers;
//! * Rust -> Cython with work: `cb_sum_view(double[:, ::1] v)` vs `cb_sum_ptr(double *p,
//!   Py_ssize_t n, Py_ssize_t m)`, the sum of the 4x4 elements (checks off in both), so that
//!   both calls carry the same information;
//! * Cython -> Rust: `cb_call_view(f, v, n)` / `cb_call_ptr(f, p, n)` call a Rust `extern
//!   "C"` function `n` times through a pointer, with the view by value or with the pointer;
//!   time per call = time / n;
//! * the same Rust -> Cython calls (`cb_first_view`, `cb_first_view_unchecked`) made by
//!   Cython code through the same capsule pointer (group `capi_call_view`):
//!   `bench_anchors.bench_call_capsule(capsule, v, n)` (`cython_fixtures/bench/anchors.pyx`,
//!   `-O2`) fetches the pointer from the `__pyx_capi__` capsule and calls it `n` times, the
//!   view copied by value each time, as from Rust.
//!
//! The view is a `CythonSlice` Cython made of a C-contiguous 4x4 NumPy array. Run with `cargo
//! bench --bench exchange` (see BENCHMARKS.md).

mod common;

use std::ffi::c_void;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use cyview::MemviewSlice;
use cyview_py::{capi_function, CythonSlice};
use pyo3::prelude::*;

type FirstView = unsafe extern "C" fn(MemviewSlice) -> f64;
type FirstPtr = unsafe extern "C" fn(*mut f64) -> f64;
type SumView = unsafe extern "C" fn(MemviewSlice) -> f64;
type SumPtr = unsafe extern "C" fn(*mut f64, isize, isize) -> f64;
type CallView = unsafe extern "C" fn(*mut c_void, MemviewSlice, isize) -> f64;
type CallPtr = unsafe extern "C" fn(*mut c_void, *mut f64, isize) -> f64;
type AsView = unsafe extern "C" fn(*mut pyo3::ffi::PyObject) -> MemviewSlice;

/// What Cython calls with the view: reads the first element.
extern "C" fn rust_first_view(v: MemviewSlice) -> f64 {
    // SAFETY: Cython passes a live `double[:, ::1]` slice of a non-empty array.
    unsafe { v.data.cast::<f64>().read() }
}

/// What Cython calls with the pointer: reads the first element.
extern "C" fn rust_first_ptr(p: *const f64) -> f64 {
    // SAFETY: Cython passes the address of the first element of a non-empty array.
    unsafe { p.read() }
}

const CALLS: isize = 1000;

fn benches(c: &mut Criterion) {
    Python::attach(|py| {
        common::python_paths(py, true);
        let cb = py.import("callbench").expect("import callbench");
        let ex = py.import("exchange").expect("import exchange");
        // Each signature is derived from its type and checked against the capsule's.
        let first_view: FirstView = capi_function(&cb, "cb_first_view").unwrap();
        let first_view_unchecked: FirstView =
            capi_function(&cb, "cb_first_view_unchecked").unwrap();
        let first_ptr: FirstPtr = capi_function(&cb, "cb_first_ptr").unwrap();
        let call_view: CallView = capi_function(&cb, "cb_call_view").unwrap();
        let call_ptr: CallPtr = capi_function(&cb, "cb_call_ptr").unwrap();
        let as_view: AsView = capi_function(&ex, "exch_from_object").unwrap();
        let sum_view: SumView = capi_function(&cb, "cb_sum_view").unwrap();
        let sum_ptr: SumPtr = capi_function(&cb, "cb_sum_ptr").unwrap();
        let array = py
            .import("numpy")
            .unwrap()
            .call_method1("arange", (16.0,))
            .unwrap()
            .call_method1("reshape", (4, 4))
            .unwrap();
        // SAFETY: `exch_from_object` returns an owned 2-d double slice (or an error slice).
        let v = unsafe { CythonSlice::from_returned(py, as_view(array.as_ptr()), 2) }.unwrap();
        let raw = *v.as_raw();
        let p = raw.data.cast::<f64>();

        let mut g = c.benchmark_group("rust_to_cython");
        g.bench_function("view", |b| {
            // SAFETY: a live C-contiguous 2-d double slice, borrowed by the call.
            b.iter(|| unsafe { first_view(*black_box(&raw)) })
        });
        g.bench_function("view_unchecked", |b| {
            // SAFETY: as above.
            b.iter(|| unsafe { first_view_unchecked(*black_box(&raw)) })
        });
        g.bench_function("pointer", |b| {
            // SAFETY: the first element of the same live array.
            b.iter(|| unsafe { first_ptr(*black_box(&p)) })
        });
        g.finish();

        let mut g = c.benchmark_group("rust_to_cython_sum4x4");
        g.bench_function("view", |b| {
            // SAFETY: a live C-contiguous 2-d double slice, borrowed by the call.
            b.iter(|| unsafe { sum_view(*black_box(&raw)) })
        });
        g.bench_function("pointer_and_shape", |b| {
            // SAFETY: the first element of the same live 4x4 C-contiguous array.
            b.iter(|| unsafe { sum_ptr(*black_box(&p), black_box(4), black_box(4)) })
        });
        g.finish();

        let anchors = common::anchors(py);
        let call_capsule = anchors
            .getattr("bench_call_capsule")
            .expect("bench_call_capsule");
        let capi = cb.getattr("__pyx_capi__").expect("__pyx_capi__");
        let mut g = c.benchmark_group("capi_call_view");
        for (name, f) in [
            ("cb_first_view", first_view),
            ("cb_first_view_unchecked", first_view_unchecked),
        ] {
            let capsule = capi.get_item(name).expect("the capsule");
            let total: f64 = call_capsule
                .call1((&capsule, &array, 3))
                .and_then(|t| t.extract())
                .expect("bench_call_capsule");
            // SAFETY: as in `rust_to_cython`.
            assert_eq!(total, 3.0 * unsafe { f(raw) });
            g.bench_function(format!("rust/{name}"), |b| {
                // SAFETY: a live C-contiguous 2-d double slice, borrowed by the call.
                b.iter(|| unsafe { f(*black_box(&raw)) })
            });
            g.bench_function(format!("cython/{name}"), |b| {
                b.iter_custom(|n| {
                    common::time_repetitions(n, |n| call_capsule.call1((&capsule, &array, n)))
                })
            });
        }
        g.finish();

        let mut g = c.benchmark_group("cython_to_rust");
        g.throughput(Throughput::Elements(CALLS as u64));
        let fv = rust_first_view as extern "C" fn(MemviewSlice) -> f64;
        let fp = rust_first_ptr as extern "C" fn(*const f64) -> f64;
        g.bench_function("view", |b| {
            // SAFETY: `fv` has the C type `view_fn`; the slice is live and C-contiguous.
            b.iter(|| unsafe { call_view(fv as *mut c_void, black_box(raw), CALLS) })
        });
        g.bench_function("pointer", |b| {
            // SAFETY: `fp` has the C type `ptr_fn`; `p` is the first element.
            b.iter(|| unsafe { call_ptr(fp as *mut c_void, black_box(p), CALLS) })
        });
        g.finish();
        drop(v);
    });
}

criterion_group!(exchange_benches, benches);
criterion_main!(exchange_benches);
