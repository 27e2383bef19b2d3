//! What the soundness checks of issue 9 cost, next to the unchecked path they replaced:
//!
//! * `cyslice_view`: `CythonSlice::view` of a slice Cython made (`exch_slice`: `v[1:, ::2]` of a
//!   C-contiguous 100x100 NumPy array, and of a PIL-style 100x100 `_testbuffer` array),
//!   which proves every element is one of the memoryview's buffer
//!   (`geometry::check_within`), vs `View::from_raw` of the same raw slice (baseline: what
//!   `view` did before, trusting the slice);
//! * `from_bytes`: `View::from_bytes` of a 3-d strided view of 1 MiB (the exact `i128`
//!   span check) vs `View::from_raw` of the same geometry (baseline: no check);
//! * `borrow`: `CythonSlice::from_borrowed` + drop (`MemviewAbi::identify`, cached per type,
//!   then the count's increment and decrement), vs `clone` + drop of an existing
//!   `CythonSlice` (baseline: the count alone).
//!
//! Run with `cargo bench --bench soundness` (see BENCHMARKS.md).

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use cyview::{MemviewSlice, View};
use cyview_py::{capi_function, CythonSlice};
use pyo3::prelude::*;

type FromObject = unsafe extern "C" fn(*mut pyo3::ffi::PyObject) -> MemviewSlice;
type SliceFn =
    unsafe extern "C" fn(MemviewSlice, isize, isize, isize, isize, isize, isize) -> MemviewSlice;

fn benches(c: &mut Criterion) {
    Python::attach(|py| {
        common::python_paths(py, true);
        let ex = py.import("exchange").expect("import exchange");
        // The signatures are derived from the types and checked against the capsules'.
        let from_object: FromObject = capi_function(&ex, "exch_from_object").unwrap();
        let slice: SliceFn = capi_function(&ex, "exch_slice").unwrap();
        let arrays = [
            (
                "direct",
                "__import__('numpy').arange(10000.0).reshape(100, 100)",
            ),
            (
                "pil",
                "__import__('_testbuffer').ndarray([float(x) for x in range(10000)], \
                 shape=[100, 100], format='d', flags=__import__('_testbuffer').ND_PIL \
                 | __import__('_testbuffer').ND_WRITABLE)",
            ),
        ];
        let mut g = c.benchmark_group("cyslice_view");
        for (name, expr) in arrays {
            let code = std::ffi::CString::new(expr).unwrap();
            let a = py.eval(&code, None, None).unwrap();
            // SAFETY: exch_from_object returns an owned 2-d slice; exch_slice borrows it and
            // returns an owned one.
            let sliced = unsafe {
                let v = CythonSlice::from_returned(py, from_object(a.as_ptr()), 2).unwrap();
                CythonSlice::from_returned(
                    py,
                    slice(*v.as_raw(), 1, isize::MAX, 1, 0, isize::MAX, 2),
                    2,
                )
                .unwrap()
            };
            let sum = |v: View<'_, f64>| v.iter().sum::<f64>();
            // SAFETY: nothing writes the array while the views are read.
            let (checked, raw) = unsafe {
                (
                    sum(sliced.view::<f64>().unwrap()),
                    sum(View::<f64>::from_raw(*sliced.as_raw(), 2).unwrap()),
                )
            };
            assert_eq!(checked, raw);
            g.bench_function(format!("{name}/view_checked"), |b| {
                // SAFETY: as above.
                b.iter(|| unsafe { black_box(&sliced).view::<f64>() }.unwrap().ndim())
            });
            g.bench_function(format!("{name}/from_raw_unchecked"), |b| {
                b.iter(|| {
                    // SAFETY: the slice is Cython's in-bounds `v[1:, ::2]` of a live array.
                    unsafe { View::<f64>::from_raw(*black_box(&sliced).as_raw(), 2) }
                        .unwrap()
                        .ndim()
                })
            });
        }
        g.finish();

        let mut g = c.benchmark_group("from_bytes");
        let bytes = vec![0u8; 1 << 20];
        let (shape, strides) = ([16usize, 64, 64], [65536isize, -1024, 16]);
        let offset = 63 * 1024;
        let mut raw = MemviewSlice {
            data: bytes.as_ptr().wrapping_add(offset).cast_mut(),
            ..MemviewSlice::EMPTY
        };
        for d in 0..3 {
            raw.shape[d] = shape[d] as isize;
            raw.strides[d] = strides[d];
            raw.suboffsets[d] = -1;
        }
        g.bench_function("checked", |b| {
            b.iter(|| {
                View::<f64>::from_bytes(black_box(&bytes), offset, black_box(&shape), &strides)
                    .unwrap()
                    .ndim()
            })
        });
        g.bench_function("from_raw_unchecked", |b| {
            b.iter(|| {
                // SAFETY: the geometry lies in `bytes` (`checked` proves it on the same input).
                unsafe { View::<f64>::from_raw(black_box(raw), 3) }
                    .unwrap()
                    .ndim()
            })
        });
        g.finish();

        let mut g = c.benchmark_group("borrow");
        let a = py
            .eval(c"__import__('numpy').zeros((4, 4))", None, None)
            .unwrap();
        // SAFETY: exch_from_object returns an owned 2-d slice.
        let v = unsafe { CythonSlice::from_returned(py, from_object(a.as_ptr()), 2) }.unwrap();
        g.bench_function("from_borrowed_and_drop", |b| {
            b.iter(|| {
                // SAFETY: `v` keeps the memoryview object alive.
                drop(unsafe { CythonSlice::from_borrowed(py, black_box(v.as_raw()), 2) }.unwrap())
            })
        });
        g.bench_function("clone_and_drop", |b| b.iter(|| drop(black_box(&v).clone())));
        g.finish();
    });
}

criterion_group!(soundness_benches, benches);
criterion_main!(soundness_benches);
