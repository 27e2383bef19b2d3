//! Export: Rust-owned memory (`cyview_py::RustBuffer`) acquired by Cython's own
//! `cdef <decl> v = obj` for every declaration of the fixtures. Cython must see exactly the
//! element addresses Rust reports (contiguous, strided, negative and zero strides,
//! read-only), refuse exactly where the exporter's flags and cyview's acquisition checks
//! say, with the same messages; export counts and refcounts return to their start.

mod support;

use cyview::validate::{self, BufferInfo};
use cyview_py::RustBuffer;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use pyo3::prelude::*;
use support::{declarations, element_addresses, read_buffer, report, with_python};

#[derive(Clone, Debug)]
struct Layout {
    shape: Vec<usize>,
    strides: Vec<isize>,
    offset: usize,
    len: usize,
    readonly: bool,
}

fn layout() -> impl Strategy<Value = Layout> {
    (1usize..=3)
        .prop_flat_map(|ndim| {
            (
                proptest::collection::vec(0usize..=4, ndim),
                proptest::collection::vec(
                    prop_oneof![5 => (-3isize..=3).prop_map(|k| k * 8), 1 => Just(0isize)],
                    ndim,
                ),
                any::<bool>(),
                any::<bool>(),
            )
        })
        .prop_map(|(shape, mut strides, contiguous, readonly)| {
            if contiguous {
                let mut acc = 8isize;
                for d in (0..shape.len()).rev() {
                    strides[d] = acc;
                    acc *= shape[d].max(1) as isize;
                }
            }
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
            let offset = (-lo) as usize;
            let len = (offset as isize + hi) as usize / 8 + 1;
            Layout {
                shape,
                strides,
                offset,
                len,
                readonly,
            }
        })
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
fn cython_acquires_rust_buffers_as_rust_predicts() {
    let decls = declarations();
    let cases: u32 = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(
                "proptest-regressions/export.txt",
            ),
        )),
        ..Config::default()
    });
    let accepted = std::sync::atomic::AtomicUsize::new(0);
    let result = runner.run(&(layout(), any::<prop::sample::Index>()), |(l, pick)| {
        // Mostly declarations of the layout's ndim (the others exercise the ndim check).
        let same: Vec<_> = decls
            .iter()
            .filter(|d| d.2.len() == l.shape.len())
            .collect();
        let (name, decl_text, specs) = if pick.index(10) < 8 {
            same[pick.index(same.len())]
        } else {
            &decls[pick.index(decls.len())]
        };
        let writable = !decl_text.starts_with("const");
        let data: Vec<f64> = (0..l.len).map(|k| k as f64).collect();
        let rb = RustBuffer::from_elements(data, &l.shape, &l.strides, l.offset, l.readonly)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let base = rb.data_ptr().unwrap();
        with_python(|py| {
            let obj = Bound::new(py, rb).unwrap();
            let sys = py.import("sys").unwrap();
            let refs_before: isize = sys
                .getattr("getrefcount")
                .unwrap()
                .call1((obj.clone(),))
                .unwrap()
                .extract()
                .unwrap();
            let what = format!("cdef {decl_text} v = RustBuffer{l:?}");
            // The prediction: the exporter's answer to Cython's flags, then cyview's checks.
            let flags = validate::buffer_flags(specs, writable);
            let predicted: Result<cyview::MemviewSlice, (String, String)> = (|| {
                let ndim = l.shape.len();
                if writable && l.readonly {
                    return Err(("BufferError".into(), "Object is not writable.".into()));
                }
                let shape: Vec<isize> = l.shape.iter().map(|&n| n as isize).collect();
                let c = l.shape.contains(&0)
                    || (0..ndim)
                        .rev()
                        .try_fold(8isize, |acc, d| {
                            (shape[d] <= 1 || l.strides[d] == acc).then_some(acc * shape[d])
                        })
                        .is_some();
                let f = l.shape.contains(&0)
                    || (0..ndim)
                        .try_fold(8isize, |acc, d| {
                            (shape[d] <= 1 || l.strides[d] == acc).then_some(acc * shape[d])
                        })
                        .is_some();
                let want = |x: u32| flags & x == x;
                if want(validate::flags::C_CONTIGUOUS) && !c {
                    return Err((
                        "BufferError".into(),
                        "RustBuffer is not C-contiguous".into(),
                    ));
                }
                if want(validate::flags::F_CONTIGUOUS) && !f {
                    return Err((
                        "BufferError".into(),
                        "RustBuffer is not Fortran contiguous".into(),
                    ));
                }
                let info = BufferInfo {
                    buf: base,
                    itemsize: 8,
                    len: 8 * shape.iter().product::<isize>(),
                    shape: &shape,
                    strides: Some(&l.strides),
                    suboffsets: None,
                };
                let err = |e: cyview::Error| (e.kind().name().to_string(), e.message().to_string());
                validate::check_ndim(ndim, specs.len()).map_err(err)?;
                validate::check_axes(&info, specs, validate::contiguity(specs)).map_err(err)?;
                validate::init_slice(&info, std::ptr::null_mut()).map_err(err)
            })();
            let module = py.import("live_validate").unwrap();
            let cy = module.getattr(name.as_str()).unwrap().call1((obj.clone(),));
            match (cy, predicted) {
                (Ok(r), Ok(slice)) => {
                    let cb =
                        read_buffer(&r).map_err(|e| TestCaseError::fail(format!("{what}: {e}")))?;
                    let n = cb.ndim;
                    let c = cb.cython_slice();
                    prop_assert_eq!(c.data, slice.data, "{}", what);
                    prop_assert_eq!(&c.shape[..n], &slice.shape[..n], "{}", what);
                    prop_assert_eq!(&c.strides[..n], &slice.strides[..n], "{}", what);
                    let none = std::collections::HashMap::new();
                    prop_assert_eq!(
                        element_addresses(&c, n, &none),
                        element_addresses(&slice, n, &none),
                        "{}",
                        what
                    );
                    // While Cython holds its view, the export is counted.
                    prop_assert!(obj.get().export_count() >= 1, "{}", what);
                    accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                (Err(e), Err(p)) => prop_assert_eq!(err_of(py, &e), p, "{}", what),
                (Ok(_), Err(p)) => {
                    return Err(TestCaseError::fail(format!(
                        "{what}: Cython accepts, predicted {p:?}"
                    )))
                }
                (Err(e), Ok(_)) => {
                    return Err(TestCaseError::fail(format!(
                        "{what}: Cython {:?}, predicted acceptance",
                        err_of(py, &e)
                    )))
                }
            }
            // Cython's memoryview is gone: no export, no extra reference.
            py.import("gc")
                .unwrap()
                .getattr("collect")
                .unwrap()
                .call0()
                .unwrap();
            prop_assert_eq!(obj.get().export_count(), 0, "{}", what);
            let refs_after: isize = sys
                .getattr("getrefcount")
                .unwrap()
                .call1((obj.clone(),))
                .unwrap()
                .extract()
                .unwrap();
            prop_assert_eq!(refs_before, refs_after, "{}", what);
            Ok(())
        })
    });
    let n = cases as usize;
    report(
        "export: Cython acquires RustBuffer",
        n,
        if result.is_ok() { n } else { n - 1 },
        usize::from(result.is_err()),
    );
    println!(
        "export: {} of {n} acquisitions accepted by Cython",
        accepted.load(std::sync::atomic::Ordering::Relaxed)
    );
    if let Err(e) = result {
        panic!("export: {e}");
    }
}

#[test]
fn release_is_refused_while_exported_and_frees_after() {
    with_python(|py| {
        let rb = RustBuffer::from_elements(vec![1.0f64, 2.0, 3.0], &[3], &[8], 0, false).unwrap();
        let obj = Bound::new(py, rb).unwrap();
        let mv = py
            .import("builtins")
            .unwrap()
            .getattr("memoryview")
            .unwrap()
            .call1((obj.clone(),))
            .unwrap();
        assert_eq!(obj.get().export_count(), 1);
        let err = obj.call_method0("release").unwrap_err();
        assert_eq!(
            err_of(py, &err),
            (
                "BufferError".to_string(),
                "cannot release a RustBuffer with 1 live buffer export(s)".to_string()
            )
        );
        mv.call_method0("release").unwrap();
        assert_eq!(obj.get().export_count(), 0);
        obj.call_method0("release").unwrap();
        let err = py
            .import("builtins")
            .unwrap()
            .getattr("memoryview")
            .unwrap()
            .call1((obj.clone(),))
            .unwrap_err();
        assert_eq!(
            err_of(py, &err),
            (
                "BufferError".to_string(),
                "the RustBuffer has been released".to_string()
            )
        );
    });
}
