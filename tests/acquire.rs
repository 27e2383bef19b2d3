//! Acquisition: `cyview_py::acquire` against Cython's own `cdef <decl> v = obj` for random
//! exporters (NumPy views of several dtypes and byte orders, strided, read-only, structured;
//! `array.array`; bytes, bytearray, memoryview; Cython memoryviews of another module;
//! `_testbuffer.ndarray` with Fortran, PIL, read-only and failing getbuffer) × every declared
//! spec of the fixtures (`live_validate.pyx`, 47 declarations up to 3-d, const and not).
//! Rust must succeed exactly when Cython does, with the same data pointer, shape, strides and
//! suboffsets, or fail with the same exception kind and message.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};

use cyview::format;
use cyview_py::{acquire, Declaration};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use pyo3::prelude::*;
use support::{declarations, read_buffer, report, with_python};

/// A buffer exporter, as a Python expression over `live_support` (`ls`) and `live_core`.
fn exporter() -> impl Strategy<Value = String> {
    let shape = proptest::collection::vec(0usize..=4, 1..=3);
    let np = (
        prop_oneof![
            Just("<f8"),
            Just(">f8"),
            Just("<f4"),
            Just("<i8"),
            Just("<i4"),
            Just("<u1")
        ],
        shape.clone(),
        proptest::collection::vec(prop_oneof![4 => -3isize..=3, 1 => -20isize..=20], 3),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(dtype, shape, mult, readonly, bytewise)| {
            let item: isize = dtype[2..].parse().unwrap();
            let strides: Vec<isize> = shape
                .iter()
                .zip(&mult)
                .map(|(_, &m)| if bytewise { m } else { m * item })
                .collect();
            let (mut lo, mut hi) = (0isize, 0isize);
            if !shape.contains(&0) {
                for (&n, &s) in shape.iter().zip(&strides) {
                    let d = (n as isize - 1) * s;
                    if d < 0 {
                        lo += d
                    } else {
                        hi += d
                    }
                }
            }
            let offset = -lo;
            let nbytes = offset + hi + item + 8;
            let py_ro = if readonly { "True" } else { "False" };
            format!("ls.np_view('{dtype}', {nbytes}, {offset}, {shape:?}, {strides:?}, {py_ro})")
        });
    let tb = (
        shape.clone(),
        prop_oneof![Just("d"), Just("f"), Just("q")],
        proptest::sample::subsequence(
            vec!["ND_FORTRAN", "ND_PIL", "ND_WRITABLE", "ND_GETBUF_FAIL"],
            0..=3,
        ),
    )
        .prop_map(|(shape, fmt, flags)| {
            let shape: Vec<usize> = shape.iter().map(|&n| n.max(1)).collect();
            format!("ls.testbuffer({shape:?}, '{fmt}', {flags:?})")
        });
    prop_oneof![
        6 => np,
        3 => tb,
        1 => (0usize..=6, any::<bool>()).prop_map(|(n, a)| format!("ls.structured({n}, {})", if a { "True" } else { "False" })),
        1 => (prop_oneof![Just("d"), Just("f"), Just("i"), Just("q")], 0usize..=5).prop_map(|(t, n)| format!("ls.array_array('{t}', {n})")),
        1 => (prop_oneof![Just("bytes"), Just("bytearray"), Just("memoryview")], 0usize..=16).prop_map(|(k, n)| format!("ls.raw_bytes('{k}', {n})")),
        1 => (1usize..=3, 1usize..=4).prop_map(|(nd, n)| format!("live_core.as_mv_{nd}d(ls.np_view('<f8', {b}, 0, {shape:?}, {strides:?}, False))", b = 8 * n.pow(nd as u32) + 8, shape = vec![n; nd], strides = (0..nd).rev().map(|k| 8 * n.pow(k as u32) as isize).collect::<Vec<_>>())),
    ]
}

fn eval<'py>(py: Python<'py>, expr: &str) -> PyResult<Bound<'py, PyAny>> {
    let globals = pyo3::types::PyDict::new(py);
    globals.set_item("ls", py.import("live_support")?)?;
    globals.set_item("live_core", py.import("live_core")?)?;
    py.eval(&std::ffi::CString::new(expr).unwrap(), Some(&globals), None)
}

fn err_of(py: Python<'_>, e: &PyErr) -> (String, String) {
    let kind = e
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    (
        kind,
        e.value(py).str().map(|s| s.to_string()).unwrap_or_default(),
    )
}

#[test]
fn acquisition_matches_cython() {
    let decls = declarations();
    assert!(decls.len() >= 40);
    let cases: u32 = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let run = AtomicUsize::new(0);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(
                "proptest-regressions/acquire.txt",
            ),
        )),
        ..Config::default()
    });
    let result = runner.run(
        &(exporter(), any::<prop::sample::Index>()),
        |(expr, pick)| {
            let (name, decl_text, specs) = &decls[pick.index(decls.len())];
            // Cython names a const element type `const double` in its messages.
            static CONST_F64: format::TypeInfo = format::TypeInfo {
                name: "const double",
                ..format::F64
            };
            let is_const = decl_text.starts_with("const");
            let dtype = if is_const { &CONST_F64 } else { &format::F64 };
            let decl = Declaration::new(dtype, specs, !is_const);
            with_python(|py| {
                let obj =
                    eval(py, &expr).map_err(|e| TestCaseError::fail(format!("{expr}: {e}")))?;
                let module = py.import("live_validate").unwrap();
                let cy = module.getattr(name.as_str()).unwrap().call1((obj.clone(),));
                let rust = acquire(&obj, &decl);
                let what = format!("cdef {decl_text} v = {expr}");
                match (cy, rust) {
                    (Ok(r), Ok(v)) => {
                        let cb = read_buffer(&r)
                            .map_err(|e| TestCaseError::fail(format!("{what}: {e}")))?;
                        let c = cb.cython_slice();
                        let s = v.slice();
                        let n = v.ndim();
                        prop_assert_eq!(cb.ndim, n, "{}", what);
                        prop_assert_eq!(c.data, s.data, "{}", what);
                        prop_assert_eq!(&c.shape[..n], &s.shape[..n], "{}", what);
                        prop_assert_eq!(&c.strides[..n], &s.strides[..n], "{}", what);
                        prop_assert_eq!(&c.suboffsets[..n], &s.suboffsets[..n], "{}", what);
                    }
                    (Err(e), Err(r)) => {
                        prop_assert_eq!(err_of(py, &e), err_of(py, &r), "{}", what);
                    }
                    (Ok(_), Err(r)) => {
                        return Err(TestCaseError::fail(format!(
                            "{what}: Cython accepts, Rust {:?}",
                            err_of(py, &r)
                        )))
                    }
                    (Err(e), Ok(_)) => {
                        return Err(TestCaseError::fail(format!(
                            "{what}: Cython {:?}, Rust accepts",
                            err_of(py, &e)
                        )))
                    }
                }
                run.fetch_add(1, Ordering::Relaxed);
                Ok(())
            })
        },
    );
    let n = run.load(Ordering::Relaxed);
    report(
        "acquisition",
        n,
        n - usize::from(result.is_err()).min(n),
        usize::from(result.is_err()),
    );
    if let Err(e) = result {
        panic!("acquisition: {e}");
    }
    assert!(n as u32 >= cases);
}
