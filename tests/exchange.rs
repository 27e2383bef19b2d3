//! Exchange: typed memoryviews passed by value between Rust and Cython through the `cdef
//! api` functions of `cython_fixtures/exchange.pyx`, held by Rust as `cyview_py::CythonSlice`
//! (the acquisition-count protocol of the release that built the module).
//!
//! * `memview_abi_matches_the_extracted_layout`: the offsets `MemviewAbi` uses are the ones
//!   libclang gives this release's `struct __pyx_memoryview_obj`.
//! * `views_cython_makes_reach_the_same_elements_in_rust`: views Cython makes of random
//!   exporters (NumPy views with any strides, PIL-style `_testbuffer` arrays, `RustBuffer`s
//!   direct and indirect) reach the same element addresses in Rust as in Cython.
//! * `views_rust_reslices_address_what_cythons_own_slicing_addresses`: views Rust re-slices
//!   with Cython semantics, passed back to Cython, address exactly what Cython's own slicing
//!   of the same view addresses.
//! * `acquisition_counts_after_random_operations`: 100,000 random clones, drops, re-slices,
//!   calls and Cython-side keeps; the count is exact after every step and the exporters'
//!   refcounts are back at the end.
//! * `four_threads_clone_and_drop_without_the_gil`.
//! * capsule import errors and Cython's error return.

mod support;

use std::collections::HashMap;

use cyview::{s, MemviewSlice, Slice, SliceItem};
use cyview_py::{capi_function, capi_pointer, CythonSlice, MemviewAbi, RustBuffer};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use pyo3::prelude::*;
use support::{cases, cython_release, err_of, refcount, report, runner, with_python};

type FromObject = unsafe extern "C" fn(*mut pyo3::ffi::PyObject) -> MemviewSlice;
type Addresses = unsafe extern "C" fn(MemviewSlice, *mut isize) -> isize;
type Sum = unsafe extern "C" fn(MemviewSlice) -> f64;
type SliceFn =
    unsafe extern "C" fn(MemviewSlice, isize, isize, isize, isize, isize, isize) -> MemviewSlice;
type Keep = unsafe extern "C" fn(MemviewSlice) -> i32;
type Forget = unsafe extern "C" fn() -> i32;

/// The fixture's functions, checked by signature.
#[derive(Clone, Copy)]
struct Api {
    from_object: FromObject,
    addresses: Addresses,
    sum: Sum,
    slice: SliceFn,
    keep: Keep,
    forget: Forget,
}

fn api(py: Python<'_>) -> Api {
    api_of(py, "exchange")
}

fn api_of(py: Python<'_>, module: &str) -> Api {
    let m = py
        .import(module)
        .unwrap_or_else(|e| panic!("import {module}: {e}"));
    // Each C signature is derived from the field's type and checked against the capsule's.
    Api {
        from_object: capi_function(&m, "exch_from_object").unwrap(),
        addresses: capi_function(&m, "exch_addresses").unwrap(),
        sum: capi_function(&m, "exch_sum").unwrap(),
        slice: capi_function(&m, "exch_slice").unwrap(),
        keep: capi_function(&m, "exch_keep").unwrap(),
        forget: capi_function(&m, "exch_forget").unwrap(),
    }
}

impl Api {
    /// Cython's `cdef double[::view.generic, ::view.generic] v = obj`, owned by Rust.
    fn view_of(&self, obj: &Bound<'_, PyAny>) -> PyResult<CythonSlice> {
        // SAFETY: the function takes a borrowed object and returns an owned 2-d slice or an
        // error slice with the exception set.
        unsafe { CythonSlice::from_returned(obj.py(), (self.from_object)(obj.as_ptr()), 2) }
    }

    /// Cython's own element addresses of `v`, in C order.
    fn cython_addresses(&self, v: &MemviewSlice) -> Vec<usize> {
        let n = (v.shape[0].max(0) * v.shape[1].max(0)) as usize;
        let mut out = vec![0isize; n];
        // SAFETY: `v` is a live 2-d double slice; `out` has room for every element.
        let k = unsafe { (self.addresses)(*v, out.as_mut_ptr()) };
        assert_eq!(k as usize, n);
        out.into_iter().map(|a| a as usize).collect()
    }
}

/// Rust's element addresses of a 2-d slice in C order (following pointers as Cython would).
fn rust_addresses(v: &CythonSlice) -> Vec<usize> {
    let raw = v.as_raw();
    let mut out = Vec::new();
    for i in 0..raw.shape[0].max(0) {
        for j in 0..raw.shape[1].max(0) {
            // SAFETY: the slice holds its memoryview object and so the buffer; indices are in
            // bounds, so the pointer slots read are the exporter's.
            let mem = unsafe { cyview::TrustedMemory::new() };
            let p = cyview::raw::slicing::element_ptr(raw, 2, &[i, j], mem).unwrap();
            out.push(p as usize);
        }
    }
    out
}

/// A Python expression for a random 2-d double exporter over `live_support` (`ls`).
fn exporter() -> impl Strategy<Value = String> {
    let np = (
        (0usize..=4, 0usize..=4),
        (-3isize..=3, -3isize..=3),
        any::<bool>(),
    )
        .prop_map(|((n, m), (a, b), contiguous)| {
            let (sa, sb) = if contiguous {
                (8 * m.max(1) as isize, 8)
            } else {
                (8 * a, 8 * b)
            };
            let lo = (n as isize - 1).max(0) * sa.min(0) + (m as isize - 1).max(0) * sb.min(0);
            let hi = (n as isize - 1).max(0) * sa.max(0) + (m as isize - 1).max(0) * sb.max(0);
            format!(
                "ls.np_view('<f8', {}, {}, [{n}, {m}], [{sa}, {sb}], False)",
                hi - lo + 16,
                -lo
            )
        });
    let pil = (1usize..=4, 1usize..=4, any::<bool>()).prop_map(|(n, m, rev)| {
        let keys = if rev {
            "[[None, None, -1], [None, None, None]]"
        } else {
            "None"
        };
        format!("ls.pil([{n}, {m}], {keys})")
    });
    let rust = (0usize..=4, 0usize..=4, any::<bool>()).prop_map(|(n, m, indirect)| {
        format!(
            "rust_buffer({n}, {m}, {})",
            if indirect { "True" } else { "False" }
        )
    });
    prop_oneof![3 => np, 2 => pil, 2 => rust]
}

/// Evaluates an exporter expression; `rust_buffer(n, m, indirect)` is a `RustBuffer`.
fn eval<'py>(py: Python<'py>, expr: &str) -> PyResult<Bound<'py, PyAny>> {
    if let Some(args) = expr.strip_prefix("rust_buffer(") {
        let parts: Vec<&str> = args.trim_end_matches(')').split(", ").collect();
        let (n, m): (usize, usize) = (parts[0].parse().unwrap(), parts[1].parse().unwrap());
        let rb = if parts[2] == "True" {
            let rows = (0..n)
                .map(|i| (0..m).map(|j| (i * m + j) as f64).collect())
                .collect();
            RustBuffer::indirect(rows, &[m], false)?
        } else {
            let data = (0..n * m).map(|k| k as f64).collect();
            RustBuffer::from_elements(data, &[n, m], &[8 * m as isize, 8], 0, false)?
        };
        return Ok(Bound::new(py, rb)?.into_any());
    }
    support::eval(py, expr)
}

#[test]
fn memview_abi_matches_the_extracted_layout() {
    let json = include_str!(concat!(env!("OUT_DIR"), "/cython_layouts.json"));
    let layouts = cyview_build::layouts::Layouts::from_json(json).unwrap();
    let obj = layouts
        .get("__pyx_memoryview_obj")
        .expect("the layout of __pyx_memoryview_obj");
    let release = cython_release();
    let abi = abi_of(&release);
    let off = |f: &str| obj.field(f).map(|f| f.offset);
    assert_eq!(obj.size, abi.object_size(), "{release}: sizeof");
    assert_eq!(
        off("lock"),
        Some(MemviewAbi::LOCK_OFFSET),
        "{release}: lock"
    );
    assert_eq!(
        off("acquisition_count"),
        Some(abi.count_offset()),
        "{release}: acquisition_count"
    );
    assert_eq!(
        off("acquisition_count_aligned_p"),
        abi.aligned_pointer_offset(),
        "{release}: acquisition_count_aligned_p"
    );
    assert_eq!(off("view"), Some(abi.view_offset()), "{release}: view");
    // And the object Cython makes is identified as that layout.
    with_python(|py| {
        let a = api(py);
        let v = a
            .view_of(&eval(py, "ls.np_view('<f8', 64, 0, [2, 3], [24, 8], False)").unwrap())
            .unwrap();
        assert_eq!(v.abi(), abi);
        assert_eq!(v.acquisition_count(), 1);
        assert_eq!(v.itemsize(), 8);
    });
    report("exchange: memoryview ABI offsets", 5, 5, 0);
}

#[test]
fn views_cython_makes_reach_the_same_elements_in_rust() {
    let n = cases(2000);
    let mut runner = runner(n, "proptest-regressions/exchange-cython-to-rust.txt");
    let result = with_python(|py| {
        let a = api(py);
        runner.run(&exporter(), |expr| {
            let obj = eval(py, &expr).map_err(|e| TestCaseError::fail(format!("{expr}: {e}")))?;
            let v = a
                .view_of(&obj)
                .map_err(|e| TestCaseError::fail(format!("{expr}: {e}")))?;
            prop_assert_eq!(
                rust_addresses(&v),
                a.cython_addresses(v.as_raw()),
                "{}",
                expr
            );
            // SAFETY: `v` is a live 2-d double slice, borrowed for the call.
            let total = unsafe { (a.sum)(*v.as_raw()) };
            // SAFETY: nothing writes the exporter's memory during the test.
            let ours: f64 = unsafe { v.view::<f64>() }.unwrap().iter().sum();
            prop_assert_eq!(total, ours, "{}", expr);
            Ok(())
        })
    });
    report(
        "exchange: Cython to Rust",
        n as usize,
        n as usize - usize::from(result.is_err()),
        usize::from(result.is_err()),
    );
    result.unwrap();
}

/// Random items for a 2-d re-slice: two slices with bounds anywhere around the extents.
fn slice_items() -> impl Strategy<Value = [(isize, isize, isize); 2]> {
    let part = (
        -6isize..=6,
        -6isize..=6,
        prop_oneof![-3isize..=-1, 1isize..=3],
    );
    [part.clone(), part]
}

#[test]
fn views_rust_reslices_address_what_cythons_own_slicing_addresses() {
    let n = cases(2000);
    let mut runner = runner(n, "proptest-regressions/exchange-rust-to-cython.txt");
    let walked = std::sync::atomic::AtomicUsize::new(0);
    let result = with_python(|py| {
        let a = api(py);
        runner.run(&(exporter(), slice_items()), |(expr, items)| {
            let obj = eval(py, &expr).map_err(|e| TestCaseError::fail(format!("{expr}: {e}")))?;
            let v = a.view_of(&obj).unwrap();
            let [(a0, b0, c0), (a1, b1, c1)] = items;
            let what = format!("{expr}[{a0}:{b0}:{c0}, {a1}:{b1}:{c1}]");
            let ours = v.slice_with(
                &[
                    SliceItem::Slice(Slice::new(Some(a0), Some(b0), Some(c0))),
                    SliceItem::Slice(Slice::new(Some(a1), Some(b1), Some(c1))),
                ],
                // The arithmetic of the Cython under test (patched or not).
                support::cython_semantics(),
            );
            // SAFETY: `v` is a live 2-d double slice, borrowed for the call; the result is an
            // owned 2-d slice or an error return.
            let theirs = unsafe {
                CythonSlice::from_returned(py, (a.slice)(*v.as_raw(), a0, b0, c0, a1, b1, c1), 2)
            };
            match (ours, theirs) {
                (Ok(r), Ok(c)) => {
                    let (r_raw, c_raw) = (r.as_raw(), c.as_raw());
                    prop_assert_eq!(r_raw.data, c_raw.data, "{}", what);
                    prop_assert_eq!(&r_raw.shape[..2], &c_raw.shape[..2], "{}", what);
                    prop_assert_eq!(&r_raw.strides[..2], &c_raw.strides[..2], "{}", what);
                    prop_assert_eq!(&r_raw.suboffsets[..2], &c_raw.suboffsets[..2], "{}", what);
                    // Rust's slice, passed to Cython, addresses what Cython's own does. Only
                    // selections inside the source are walked: Cython's length arithmetic
                    // can select outside the buffer (a finding of the slicing tests), and
                    // walking that would read outside it.
                    let inside = cyview::raw::slicing::slice_in_bounds(
                        v.as_raw(),
                        2,
                        &s![a0..b0;c0, a1..b1;c1],
                        support::cython_semantics(),
                        // SAFETY: the slice holds its buffer; in-bounds pointer slots only.
                        unsafe { cyview::TrustedMemory::new() },
                    )
                    .is_ok();
                    if inside {
                        prop_assert_eq!(
                            a.cython_addresses(r_raw),
                            a.cython_addresses(c_raw),
                            "{}",
                            what
                        );
                        walked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    prop_assert_eq!(r.acquisition_count(), v.acquisition_count(), "{}", what);
                    prop_assert_eq!(v.acquisition_count(), 3, "{}", what);
                }
                (Err(r), Err(c)) => {
                    prop_assert_eq!(err_of(py, &r), err_of(py, &c), "{}", what);
                }
                (r, c) => {
                    return Err(TestCaseError::fail(format!(
                        "{what}: Rust {:?}, Cython {:?}",
                        r.map(|_| ()).map_err(|e| e.to_string()),
                        c.map(|_| ()).map_err(|e| e.to_string())
                    )))
                }
            }
            prop_assert_eq!(v.acquisition_count(), 1, "{}", what);
            Ok(())
        })
    });
    println!(
        "exchange: Rust to Cython: {n} cases, {} walked element by element",
        walked.load(std::sync::atomic::Ordering::Relaxed)
    );
    report(
        "exchange: Rust to Cython",
        n as usize,
        n as usize - usize::from(result.is_err()),
        usize::from(result.is_err()),
    );
    result.unwrap();
}

#[test]
fn acquisition_counts_after_random_operations() {
    let ops: usize = std::env::var("CYVIEW_EXCHANGE_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    with_python(|py| {
        let a = api(py);
        let exporters: Vec<Bound<'_, PyAny>> = [
            "ls.np_view('<f8', 200, 0, [3, 4], [32, 8], False)",
            "ls.pil([3, 2], None)",
            "rust_buffer(2, 3, True)",
            "rust_buffer(3, 3, False)",
        ]
        .iter()
        .map(|e| eval(py, e).unwrap())
        .collect();
        let start: Vec<isize> = exporters.iter().map(refcount).collect();
        // Slices Rust holds, per exporter; which exporter Cython keeps (if any).
        let mut held: Vec<(usize, CythonSlice)> = Vec::new();
        // The memoryview object (address) of the slice Cython keeps, if any.
        let mut kept: Option<usize> = None;
        let mut rng = proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        );
        use proptest::prelude::RngExt;
        for step in 0..ops {
            let mut op = rng.random_range(0..7u8);
            // At most 32 slices at a time: beyond that, drop one instead.
            if held.len() >= 32 && matches!(op, 0 | 1 | 3) {
                op = 2;
            }
            match op {
                0 => {
                    let k = rng.random_range(0..exporters.len());
                    held.push((k, a.view_of(&exporters[k]).unwrap()));
                }
                1 if !held.is_empty() => {
                    let i = rng.random_range(0..held.len());
                    let c = held[i].1.clone();
                    held.push((held[i].0, c));
                }
                2 if !held.is_empty() => {
                    let i = rng.random_range(0..held.len());
                    held.swap_remove(i);
                }
                3 if !held.is_empty() => {
                    let i = rng.random_range(0..held.len());
                    if let Ok(s) = held[i]
                        .1
                        .slice_with(&s![1..;2, ..;-1], cyview::Semantics::Cython)
                    {
                        held.push((held[i].0, s));
                    }
                }
                4 if !held.is_empty() => {
                    let i = rng.random_range(0..held.len());
                    // SAFETY: a live 2-d double slice, borrowed by the call.
                    let _ = unsafe { (a.sum)(*held[i].1.as_raw()) };
                }
                5 if !held.is_empty() => {
                    let i = rng.random_range(0..held.len());
                    // SAFETY: a live 2-d double slice; Cython takes its own acquisition.
                    assert_eq!(unsafe { (a.keep)(*held[i].1.as_raw()) }, 0);
                    kept = Some(held[i].1.as_raw().memview as usize);
                }
                6 => {
                    // SAFETY: no arguments.
                    assert_eq!(unsafe { (a.forget)() }, 0);
                    kept = None;
                }
                _ => {}
            }
            // Every slice of one memoryview object sees the same count: the slices Rust
            // holds of it plus Cython's global. (Slices of different `view_of` calls have
            // different memoryview objects.)
            let mut per_object: HashMap<usize, (usize, i32)> = HashMap::new();
            for (_, s) in &held {
                let e = per_object
                    .entry(s.as_raw().memview as usize)
                    .or_insert((0, s.acquisition_count()));
                e.0 += 1;
            }
            for (obj, (n, count)) in per_object {
                let kept_here = usize::from(kept == Some(obj));
                assert_eq!(count as usize, n + kept_here, "step {step}, op {op}");
            }
        }
        drop(held);
        // SAFETY: no arguments.
        assert_eq!(unsafe { (a.forget)() }, 0);
        py.import("gc").unwrap().call_method0("collect").unwrap();
        let end: Vec<isize> = exporters.iter().map(refcount).collect();
        assert_eq!(start, end, "exporter refcounts");
        for e in &exporters {
            if let Ok(rb) = e.cast::<RustBuffer>() {
                assert_eq!(rb.get().export_count(), 0);
            }
        }
        report(
            "exchange: acquisition counts, random operations",
            ops,
            ops,
            0,
        );
    });
}

#[test]
fn four_threads_clone_and_drop_without_the_gil() {
    let (v, obj) = with_python(|py| {
        let obj = eval(py, "rust_buffer(3, 4, True)").unwrap();
        (api(py).view_of(&obj).unwrap(), obj.unbind())
    });
    let before = with_python(|py| refcount(obj.bind(py)));
    with_python(|py| {
        py.detach(|| {
            std::thread::scope(|scope| {
                for _ in 0..4 {
                    scope.spawn(|| {
                        let mut mine = Vec::new();
                        for k in 0..100_000 {
                            mine.push(v.clone());
                            if k % 3 == 0 {
                                mine.clear();
                            }
                        }
                    });
                }
            })
        })
    });
    assert_eq!(v.acquisition_count(), 1);
    drop(v);
    with_python(|py| {
        py.import("gc").unwrap().call_method0("collect").unwrap();
        let rb = obj.bind(py).cast::<RustBuffer>().unwrap();
        assert_eq!(rb.get().export_count(), 0);
        assert!(
            refcount(obj.bind(py)) < before,
            "the memoryview object released its exporter"
        );
    });
    report(
        "exchange: 4 threads clone/drop without the GIL",
        400_000,
        400_000,
        0,
    );
}

#[test]
fn capsule_import_errors() {
    with_python(|py| {
        let m = py.import("exchange").unwrap();
        let err = capi_pointer(&m, "exch_nothing", "int (void)").unwrap_err();
        assert_eq!(
            err.value(py).to_string(),
            "\"module 'exchange' has no cdef api function 'exch_nothing' (it has: \
             exch_addresses, exch_forget, exch_from_object, exch_keep, exch_slice, exch_sum)\""
        );
        let err = capi_pointer(&m, "exch_sum", "double (double)").unwrap_err();
        assert_eq!(
            err.value(py).to_string(),
            "cdef api function 'exchange.exch_sum' has the C signature 'double \
             (__Pyx_memviewslice)', not 'double (double)'"
        );
        let sys = py.import("sys").unwrap();
        let err = capi_pointer(&sys, "f", "int (void)").unwrap_err();
        assert_eq!(
            err.value(py).to_string(),
            "module 'sys' has no __pyx_capi__: it is not a Cython module with cdef api functions"
        );
        // Cython's error return (memview NULL) carries the exception it raised.
        let a = api(py);
        let err = a
            .view_of(&py.eval(c"'text'", None, None).unwrap())
            .err()
            .unwrap();
        assert_eq!(
            err.value(py).to_string(),
            "a bytes-like object is required, not 'str'"
        );
        let err = a
            .view_of(&eval(py, "ls.np_view('<f4', 64, 0, [2, 2], [8, 4], False)").unwrap())
            .err()
            .unwrap();
        assert_eq!(
            err.value(py).to_string(),
            "Buffer dtype mismatch, expected 'double' but got 'float'"
        );
    });
}

/// The partner release's `exchange_other` module (built by build.rs with
/// `CYVIEW_OTHER_PYTHON`), imported next to this release's `exchange`.
fn partner(py: Python<'_>) -> (Api, String) {
    let dir = env!("CYVIEW_OTHER_FIXTURES_DIR");
    let release = env!("CYVIEW_OTHER_CYTHON_VERSION");
    assert!(
        !dir.is_empty(),
        "no partner release: build with CYVIEW_OTHER_PYTHON set to another Cython's venv \
         (ci/test does)"
    );
    let path = py.import("sys").unwrap().getattr("path").unwrap();
    if !path.contains(dir).unwrap() {
        path.call_method1("insert", (0, dir)).unwrap();
    }
    (api_of(py, "exchange_other"), release.to_string())
}

fn abi_of(release: &str) -> MemviewAbi {
    if release.starts_with("0.29") {
        MemviewAbi::Cython0_29
    } else {
        MemviewAbi::Cython3
    }
}

/// Modules of two releases in one process: Rust handles the views of each by its own
/// protocol; and a view passed from one module's Cython to the other's behaves as the two
/// layouts predict (recorded as a finding).
#[test]
fn mixed_releases_in_one_process() {
    with_python(|py| {
        let (other, other_release) = partner(py);
        let this_release = cython_release();
        let mods = [
            (api(py), this_release.clone()),
            (other, other_release.clone()),
        ];
        assert_ne!(
            abi_of(&this_release),
            abi_of(&other_release),
            "a 0.29 and a 3.x release"
        );
        for (a, release) in &mods {
            let obj = eval(py, "ls.np_view('<f8', 200, 8, [3, 4], [-32, 8], False)").unwrap();
            let v = a.view_of(&obj).unwrap();
            assert_eq!(v.abi(), abi_of(release), "{release}");
            assert_eq!(
                rust_addresses(&v),
                a.cython_addresses(v.as_raw()),
                "{release}"
            );
            let w = v
                .slice_with(&s![..;-1, 1..], cyview::Semantics::Cython)
                .unwrap();
            assert_eq!(v.acquisition_count(), 2, "{release}");
            // SAFETY: a live 2-d double slice; the module keeps its own acquisition.
            assert_eq!(unsafe { (a.keep)(*w.as_raw()) }, 0);
            assert_eq!(v.acquisition_count(), 3, "{release}");
            drop(w);
            // SAFETY: no arguments.
            assert_eq!(unsafe { (a.forget)() }, 0);
            assert_eq!(v.acquisition_count(), 1, "{release}");
        }
        // Cython to Cython across releases: a view made by module A kept by module B.
        for (from, to) in [(0usize, 1usize), (1, 0)] {
            let (a, a_rel) = &mods[from];
            let (b, b_rel) = &mods[to];
            // float64(k) at element k: the first element's low 4 bytes are 0.
            let obj = eval(py, "ls.direct(64, 0, [2, 4], [32, 8])").unwrap();
            let v = a.view_of(&obj).unwrap();
            // SAFETY: element [0, 0] of a live view of 64 writable bytes.
            let first = || unsafe { v.as_raw().data.cast::<u32>().read_unaligned() };
            let (count0, word0) = (v.acquisition_count(), first());
            // SAFETY: a live 2-d double slice of module A given to module B's function with
            // the same declaration; the protocol mismatch is the subject of the test (the
            // data is writable and starts with a zero word, so B's increment lands there
            // without harm when B is 0.29).
            assert_eq!(unsafe { (b.keep)(*v.as_raw()) }, 0);
            let (count1, word1) = (v.acquisition_count(), first());
            // SAFETY: no arguments.
            assert_eq!(unsafe { (b.forget)() }, 0);
            let (count2, word2) = (v.acquisition_count(), first());
            let what = format!("a view made by Cython {a_rel} kept by a module of Cython {b_rel}");
            match (abi_of(a_rel), abi_of(b_rel)) {
                (MemviewAbi::Cython3, MemviewAbi::Cython0_29) => {
                    // 0.29 follows `acquisition_count_aligned_p` at 64, which in a 3.x
                    // object is `view.buf`: it counts in the first element's bytes.
                    assert_eq!((count1, word1), (count0, word0 + 1), "{what}");
                    assert_eq!((count2, word2), (count0, word0), "{what}");
                    support::finding(
                        "cross-release/3x-view-counted-in-its-data-by-0.29",
                        "memory-corruption",
                        "cdef api int keep(double[:, :] v) in a Cython 0.29.37 module, called with a view made by a Cython 3.x module (global kept = v)",
                        "the 0.29 module reads acquisition_count_aligned_p at offset 64, which in a 3.x memoryview object is view.buf: it increments and decrements the first 4 bytes of the buffer's data instead of the acquisition count (and takes a reference when they read 0)",
                    );
                }
                (MemviewAbi::Cython0_29, MemviewAbi::Cython3) => {
                    // 3.x counts at offset 56, which in a 0.29 object is
                    // `acquisition_count[0]`, where 0.29's aligned pointer points: the
                    // protocol holds by coincidence of the layouts.
                    assert_eq!((count1, word1), (count0 + 1, word0), "{what}");
                    assert_eq!((count2, word2), (count0, word0), "{what}");
                    support::finding(
                        "cross-release/029-view-counted-by-3x-by-coincidence",
                        "layout-coincidence",
                        "cdef api int keep(double[:, :] v) in a Cython 3.x module, called with a view made by a Cython 0.29.37 module (global kept = v)",
                        "the 3.x module counts at offset 56, which in a 0.29 object is acquisition_count[0], where 0.29's acquisition_count_aligned_p points (the object is 8-aligned): the count stays right by coincidence; the view member (72 in 0.29, 64 in 3.x) does not line up",
                    );
                }
                _ => unreachable!(),
            }
        }
        report("exchange: mixed releases in one process", 4, 4, 0);
    });
}

/// `CythonSlice` refuses, before touching any count, the objects whose protocol it cannot be
/// sure of: a module built without atomics (its memoryviews carry a lock), an object of a
/// size no known release gives its memoryview, an object that is not a Cython memoryview.
#[test]
fn unsure_objects_are_refused_before_touching_them() {
    with_python(|py| {
        let path = py.import("sys").unwrap().getattr("path").unwrap();
        let dir = env!("CYVIEW_NOATOMICS_FIXTURES_DIR");
        if !path.contains(dir).unwrap() {
            path.call_method1("insert", (0, dir)).unwrap();
        }
        let no_atomics = api_of(py, "exchange_noatomics");
        let obj = eval(py, "ls.np_view('<f8', 64, 0, [2, 2], [16, 8], False)").unwrap();
        // SAFETY: an owned 2-d slice from the module's own function.
        let raw = unsafe { (no_atomics.from_object)(obj.as_ptr()) };
        let count_at = |raw: &MemviewSlice| {
            // SAFETY: a live 3.x or 0.29 memoryview object (the slice holds it); offset 56
            // is its acquisition count in both layouts (0.29: the first of the pair).
            unsafe { raw.memview.cast::<u8>().add(56).cast::<i32>().read() }
        };
        let before = count_at(&raw);
        // SAFETY: as above; refused, the slice stays ours.
        let err = unsafe { CythonSlice::from_returned(py, raw, 2) }
            .err()
            .unwrap();
        // `cdef <view> v = obj` makes a `memoryview` object (slicing makes `_memoryviewslice`s).
        let name = "exchange_noatomics.memoryview";
        assert_eq!(
            err.value(py).to_string(),
            format!(
                "'{name}' comes from a module built without atomics (CYTHON_ATOMICS=0; its \
                 memoryviews serialise the acquisition count with a lock): not supported"
            )
        );
        assert_eq!(count_at(&raw), before);

        let fake = py
            .import("fakemv")
            .unwrap()
            .getattr("memoryview")
            .unwrap()
            .call0()
            .unwrap();
        let mut slice = MemviewSlice::EMPTY;
        slice.memview = fake.as_ptr().cast();
        // SAFETY: the object is alive for the call; it is refused before being read.
        let err = unsafe { CythonSlice::from_borrowed(py, &slice, 1) }
            .err()
            .unwrap();
        let size: usize = py
            .eval(c"__import__('fakemv').memoryview.__basicsize__", None, None)
            .unwrap()
            .extract()
            .unwrap();
        assert_eq!(
            err.value(py).to_string(),
            format!(
                "'fakemv.memoryview' objects have {size} bytes, which no known Cython release \
                 gives its memoryview (168: 0.29; 160: 3.0-3.3): unknown release, not touching it"
            )
        );
        let builtin = py.eval(c"memoryview(b'ab')", None, None).unwrap();
        slice.memview = builtin.as_ptr().cast();
        // SAFETY: as above.
        let err = unsafe { CythonSlice::from_borrowed(py, &slice, 1) }
            .err()
            .unwrap();
        assert_eq!(
            err.value(py).to_string(),
            "'memoryview' is not a Cython memoryview object"
        );
        report("exchange: unsure objects refused", 3, 3, 0);
    });
}
