//! The extractor types (`MemView`, `MemViewMut`) as a `#[pyfunction]` user meets them:
//! their axes are Cython's texts, `Option` takes `None` as Cython does, reads and writes
//! agree with NumPy, refusals are Cython's, and NumPy borrows conflict as rust-numpy's do.
//! (Every declaration of `live_acquire.pyx` through its extractor type, against Cython and
//! random exporters: `tests/acquire.rs`.)

mod support;

use cyview::AxisSpec;
use cyview_py::{Axes, Declaration, Generic, Indirect, MemView, MemViewMut, Strided, C, F};
use numpy::{PyReadonlyArray2, PyReadwriteArray2};
use pyo3::prelude::*;
use support::{err_of, eval, with_python};

/// The `live_acquire.pyx` function whose body is `cdef <decl> v = obj; return v`.
fn cython_acquire<'py>(py: Python<'py>, decl: &str) -> Bound<'py, PyAny> {
    let pyx = include_str!("../cython_fixtures/live_acquire.pyx");
    let line = format!("    cdef {decl} v = obj");
    let mut name = "";
    for l in pyx.lines() {
        if let Some(rest) = l.strip_prefix("def ") {
            name = rest.split('(').next().unwrap();
        } else if l == line {
            return py.import("live_acquire").unwrap().getattr(name).unwrap();
        }
    }
    panic!("live_acquire.pyx has no `{decl}`")
}

fn texts(n: usize, first: &str, rest: &str, last: &str) -> String {
    let mut axes = vec![rest; n];
    axes[0] = first;
    axes[n - 1] = last;
    if n == 1 && first == "::1" {
        axes[0] = first;
    }
    format!("double[{}]", axes.join(", "))
}

fn specs_of(text: &str) -> Vec<AxisSpec> {
    Declaration::try_parse(text).unwrap().specs().to_vec()
}

macro_rules! check_axes {
    ($($n:literal),*) => {$(
        assert_eq!(C::<$n>::SPECS, specs_of(&texts($n, ":", ":", "::1")), "C<{}>", $n);
        assert_eq!(F::<$n>::SPECS, specs_of(&texts($n, "::1", ":", ":")), "F<{}>", $n);
        assert_eq!(Strided::<$n>::SPECS, specs_of(&texts($n, ":", ":", ":")), "Strided<{}>", $n);
        let ind = texts($n, "::view.indirect", "::view.indirect", "::view.indirect");
        assert_eq!(Indirect::<$n>::SPECS, specs_of(&ind), "Indirect<{}>", $n);
        let gen = texts($n, "::view.generic", "::view.generic", "::view.generic");
        assert_eq!(Generic::<$n>::SPECS, specs_of(&gen), "Generic<{}>", $n);
    )*};
}

#[test]
fn builtin_axes_are_the_specs_cython_derives_from_their_text() {
    // The parser's specs are checked against Cython's generated C in tests/acquire.rs.
    check_axes!(1, 2, 3, 4, 5, 6, 7);
    cyview_py::axes!(RowPointers = "[::view.indirect, ::1]");
    assert_eq!(RowPointers::SPECS, specs_of("double[::view.indirect, ::1]"));
}

#[pyfunction]
fn row_sums(a: MemView<'_, f64, C<2>>) -> Vec<f64> {
    a.rows().map(|row| row.sum()).collect()
}

#[pyfunction]
fn total(a: Option<MemView<'_, f64, Strided<1>>>) -> Option<f64> {
    a.map(|a| a.sum())
}

#[pyfunction]
fn scale_inplace(a: MemViewMut<'_, f64, Strided<2>>, k: f64) {
    a.map_inplace(|x| x * k);
}

fn call<'py>(py: Python<'py>, f: &Bound<'py, PyAny>, args: &str) -> PyResult<Bound<'py, PyAny>> {
    let globals = pyo3::types::PyDict::new(py);
    globals.set_item("f", f)?;
    globals.set_item("np", py.import("numpy")?)?;
    let code = std::ffi::CString::new(format!("f({args})")).unwrap();
    py.eval(&code, Some(&globals), None)
}

#[test]
fn pyfunctions_with_extractors_agree_with_numpy() {
    with_python(|py| {
        let m = PyModule::new(py, "ext").unwrap();
        m.add_function(wrap_pyfunction!(row_sums, &m).unwrap())
            .unwrap();
        m.add_function(wrap_pyfunction!(total, &m).unwrap())
            .unwrap();
        m.add_function(wrap_pyfunction!(scale_inplace, &m).unwrap())
            .unwrap();
        let np = py.import("numpy").unwrap();
        let a = eval(py, "np.arange(35.0).reshape(5, 7) ** 1.5").unwrap();
        let ours = call(
            py,
            &m.getattr("row_sums").unwrap(),
            "np.arange(35.0).reshape(5, 7) ** 1.5",
        )
        .unwrap();
        let theirs = a.call_method1("sum", (1,)).unwrap();
        let close = np.call_method1("allclose", (ours, theirs)).unwrap();
        assert!(close.is_truthy().unwrap());

        // Strided, negative steps, and None (Cython accepts None without `not None`).
        let t = m.getattr("total").unwrap();
        let ours: f64 = call(py, &t, "np.arange(20.0)[::-3]")
            .unwrap()
            .extract()
            .unwrap();
        let numpy: f64 = eval(py, "np.arange(20.0)[::-3].sum()")
            .unwrap()
            .extract()
            .unwrap();
        assert_eq!(ours, numpy);
        assert!(call(py, &t, "None").unwrap().is_none());
        assert!(cython_acquire(py, "double[:]")
            .call1((py.None(),))
            .unwrap()
            .is_none());

        // Writes through a non-contiguous view land where NumPy's do.
        let globals = pyo3::types::PyDict::new(py);
        globals.set_item("np", &np).unwrap();
        globals
            .set_item("f", m.getattr("scale_inplace").unwrap())
            .unwrap();
        let code = c"(lambda a, b: (f(a[::2, ::-1], 3.0), b.__setitem__((slice(None, None, 2), slice(None, None, -1)), b[::2, ::-1] * 3.0), np.array_equal(a, b))[2])(np.arange(12.0).reshape(4, 3), np.arange(12.0).reshape(4, 3))";
        assert!(py
            .eval(code, Some(&globals), None)
            .unwrap()
            .is_truthy()
            .unwrap());
    });
}

#[test]
fn extractor_refusals_are_cythons_exceptions() {
    with_python(|py| {
        let m = PyModule::new(py, "ext").unwrap();
        m.add_function(wrap_pyfunction!(row_sums, &m).unwrap())
            .unwrap();
        m.add_function(wrap_pyfunction!(scale_inplace, &m).unwrap())
            .unwrap();
        let cases = [
            (
                "row_sums",
                "const double[:, ::1]",
                "np.zeros((3, 4))[:, ::2]",
            ),
            (
                "row_sums",
                "const double[:, ::1]",
                "np.zeros((3, 4), dtype=np.int64)",
            ),
            ("row_sums", "const double[:, ::1]", "np.zeros(3)"),
            ("scale_inplace", "double[:, :]", "np.zeros((3, 4))"),
            (
                "scale_inplace",
                "double[:, :]",
                "np.asarray(memoryview(bytes(96)).cast('d', (3, 4)))",
            ),
            (
                "scale_inplace",
                "double[:, :]",
                "memoryview(bytes(96)).cast('d', (3, 4))",
            ),
        ];
        let mut refused = 0;
        for (f, decl, expr) in cases {
            let obj = eval(py, expr).unwrap();
            let cy = cython_acquire(py, decl).call1((obj.clone(),));
            let ours = if f == "row_sums" {
                m.getattr(f).unwrap().call1((obj,))
            } else {
                m.getattr(f).unwrap().call1((obj, 2.0))
            };
            match (cy, ours) {
                (Ok(_), Ok(_)) => {}
                (Err(c), Err(r)) => {
                    // PyO3 prefixes a TypeError of an argument with the argument's name;
                    // other exceptions pass through unchanged.
                    let (ck, cm) = err_of(py, &c);
                    let (rk, rm) = err_of(py, &r);
                    assert_eq!(ck, rk, "{expr}");
                    let cm = if ck == "TypeError" {
                        format!("argument 'a': {cm}")
                    } else {
                        cm
                    };
                    assert_eq!(cm, rm, "{expr}");
                    refused += 1;
                }
                (c, r) => panic!("{expr}: Cython {c:?}, Rust {r:?}"),
            }
        }
        // Not vacuous: the strided, int64, 1-d and read-only inputs were refused.
        assert!(refused >= 4, "{refused} refusals");
    });
}

#[test]
fn numpy_borrows_conflict_with_rust_numpys() {
    with_python(|py| {
        let a = eval(py, "np.zeros((2, 3))").unwrap();
        {
            let w = MemViewMut::<f64, C<2>>::new(&a).unwrap();
            let e = a.extract::<PyReadonlyArray2<f64>>().unwrap_err();
            assert!(e.to_string().contains("already borrowed"), "{e}");
            // A second writer of the same array, as rust-numpy refuses it.
            assert!(MemViewMut::<f64, C<2>>::new(&a).is_err());
            assert!(MemView::<f64, C<2>>::new(&a).is_err());
            w.fill(1.0);
        }
        {
            let r1 = MemView::<f64, C<2>>::new(&a).unwrap();
            let r2 = a.extract::<PyReadonlyArray2<f64>>().unwrap();
            assert!(a.extract::<PyReadwriteArray2<f64>>().is_err());
            assert!(MemViewMut::<f64, Strided<2>>::new(&a).is_err());
            assert_eq!(r1.sum(), 6.0);
            assert_eq!(r2.as_array().sum(), 6.0);
        }
        // Everything released: rust-numpy may write again.
        let mut rw = a.extract::<PyReadwriteArray2<f64>>().unwrap();
        rw.as_array_mut()[[0, 0]] = 5.0;
        drop(rw);
        assert_eq!(
            MemView::<f64, C<2>>::new(&a).unwrap().get(&[0, 0]),
            Some(5.0)
        );
    });
}
