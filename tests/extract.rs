//! The extractor types (`MemView`, `MemViewMut`) as a `#[pyfunction]` user meets them:
//! their axes are Cython's texts, `Option` takes `None` as Cython does, reads and writes
//! agree with NumPy, refusals are Cython's, and NumPy borrows conflict as rust-numpy's do.
//! (Every declaration of `live_acquire.pyx` through its extractor type, against Cython and
//! random exporters: `tests/acquire.rs`.)

mod support;

use cyview::AxisSpec;
use cyview_py::{Axes, Declaration, Generic, Indirect, MemView, MemViewMut, Strided, C, F};
use numpy::{PyReadonlyArray2, PyReadwriteArray1, PyReadwriteArray2};
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

#[pyfunction]
fn scale_rows(a: MemViewMut<'_, f64, Strided<2>>) {
    for (i, row) in a.rows_mut().enumerate() {
        for x in row.iter_mut() {
            x.update(|v| v * (i as f64 + 1.0));
        }
    }
}

#[pyfunction]
fn add_one_through_ndarray(a: MemViewMut<'_, f64, Strided<2>>) -> PyResult<()> {
    // SAFETY: no other access to the array while the ndarray view lives, and NumPy views
    // of the tests have no zero strides.
    unsafe { a.as_array_mut() }?.mapv_inplace(|x| x + 1.0);
    Ok(())
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

        // Row sub-views and element proxies, and the unsafe ndarray opt-in, on negative
        // and non-unit strides.
        let f = wrap_pyfunction!(scale_rows, &m).unwrap();
        let g = wrap_pyfunction!(add_one_through_ndarray, &m).unwrap();
        globals.set_item("f", f).unwrap();
        globals.set_item("g", g).unwrap();
        let code = c"(lambda a, b: (f(a[::-1, ::2]), g(a[1:, ::-3]), b[::-1, ::2].__imul__((np.arange(4.0) + 1)[:, None]), b[1:, ::-3].__iadd__(1.0), np.array_equal(a, b))[4])(np.arange(24.0).reshape(4, 6), np.arange(24.0).reshape(4, 6))";
        let same = py.eval(code, Some(&globals), None).unwrap();
        assert!(same.is_truthy().unwrap());
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
            ("scale_inplace", "double[:, :]", "[[1.0, 2.0]]"),
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
                    // PyO3 0.30 passes an argument's exception through with its message
                    // (it only adds a note naming the argument).
                    let (ck, cm) = err_of(py, &c);
                    let (rk, rm) = err_of(py, &r);
                    assert_eq!(ck, rk, "{expr}");
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

// --- The README's comparison: one `row_sums` three ways, over the same inputs. ---

/// cyview: `def row_sums(const double[:, :] a)`.
#[pyfunction]
fn row_sums_cyview(a: MemView<'_, f64, Strided<2>>) -> Vec<f64> {
    a.rows().map(|row| row.sum()).collect()
}

/// rust-numpy.
#[pyfunction]
fn row_sums_numpy(a: numpy::PyReadonlyArray2<'_, f64>) -> Vec<f64> {
    a.as_array().sum_axis(numpy::ndarray::Axis(1)).to_vec()
}

/// PyO3's `PyBuffer` (its safe path: a copy in C order).
#[pyfunction]
fn row_sums_pybuffer(a: pyo3::buffer::PyBuffer<f64>) -> PyResult<Vec<f64>> {
    let [_, m] = a.shape() else {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "expected 2 dimensions",
        ));
    };
    let v = Python::attach(|py| a.to_vec(py))?;
    Ok(v.chunks(*m).map(|r| r.iter().sum()).collect())
}

/// The inputs of the comparison, as Python expressions.
const INPUTS: [(&str, &str); 10] = [
    ("NumPy C-contiguous", "np.arange(12.0).reshape(3, 4)"),
    (
        "NumPy Fortran",
        "np.asfortranarray(np.arange(12.0).reshape(3, 4))",
    ),
    ("NumPy strided", "np.arange(24.0).reshape(3, 8)[:, ::2]"),
    (
        "NumPy negative strides",
        "np.arange(12.0).reshape(3, 4)[::-1, ::-1]",
    ),
    (
        "NumPy unaligned",
        "np.frombuffer(bytearray(97), offset=1).reshape(3, 4)",
    ),
    (
        "NumPy read-only",
        "(lambda a: (a.setflags(write=False), a)[1])(np.ones((3, 4)))",
    ),
    ("NumPy int64", "np.zeros((3, 4), dtype=np.int64)"),
    (
        "array.array('d')",
        "__import__('array').array('d', range(12))",
    ),
    ("memoryview", "memoryview(np.arange(12.0).reshape(3, 4))"),
    (
        "Cython memoryview",
        "live_core.as_mv_2d(np.arange(12.0).reshape(3, 4))",
    ),
];

/// The comparison table of the README, from a run: each function's result on each input
/// (`ok` when it equals NumPy's `a.sum(axis=1)`, else the exception).
fn comparison_table(py: Python<'_>) -> String {
    let m = PyModule::new(py, "cmp").unwrap();
    for f in [
        wrap_pyfunction!(row_sums_cyview, &m).unwrap(),
        wrap_pyfunction!(row_sums_numpy, &m).unwrap(),
        wrap_pyfunction!(row_sums_pybuffer, &m).unwrap(),
    ] {
        m.add_function(f).unwrap();
    }
    let np = py.import("numpy").unwrap();
    let mut out = String::from(
        "| input | cyview `MemView<f64, Strided<2>>` | rust-numpy `PyReadonlyArray2<f64>` | PyO3 `PyBuffer<f64>` |\n|---|---|---|---|\n",
    );
    for (label, expr) in INPUTS {
        let mut row = format!("| {label} |");
        for f in ["row_sums_cyview", "row_sums_numpy", "row_sums_pybuffer"] {
            let obj = eval(py, expr).unwrap();
            let f = m.getattr(f).unwrap();
            // A panic inside a #[pyfunction] becomes PanicException, which PyO3 resumes
            // as a panic when it reaches Rust again.
            let called =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f.call1((obj.clone(),))));
            let cell = match called {
                Err(p) => {
                    let msg = p
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| p.downcast_ref::<String>().cloned())
                        .unwrap_or_default();
                    format!("panics (debug build): {msg}")
                }
                Ok(Ok(r)) => {
                    let want = np
                        .call_method1("asarray", (obj,))
                        .and_then(|a| a.call_method1("sum", (1,)));
                    let same = want
                        .and_then(|w| np.call_method1("array_equal", (r, w)))
                        .and_then(|b| b.is_truthy())
                        .unwrap_or(false);
                    if same {
                        "ok".to_string()
                    } else {
                        "wrong result".to_string()
                    }
                }
                Ok(Err(e)) => {
                    let (k, msg) = err_of(py, &e);
                    format!("{k}: {}", msg.replace('|', "\\|").replace('\n', " "))
                }
            };
            row.push_str(&format!(" {cell} |"));
        }
        out.push_str(&row);
        out.push('\n');
    }
    out
}

#[test]
fn readme_comparison_table_is_this_run() {
    let table = with_python(comparison_table);
    let readme = include_str!("../README.md");
    if std::env::var_os("CYVIEW_PRINT_TABLE").is_some() {
        println!("{table}");
    }
    // 3.x and 0.29 word some messages differently: the README shows the newest release's.
    // The table is a debug build's: in a release build rust-numpy's unaligned case skips
    // ndarray's alignment assertion (and reads through a misaligned reference).
    if env!("CYVIEW_CYTHON_VERSION").starts_with("3.3") && cfg!(debug_assertions) {
        assert!(
            readme.contains(&table),
            "README's row_sums comparison differs from this run (CYVIEW_PRINT_TABLE=1 prints it):\n{table}"
        );
    }
}

#[test]
fn python_changing_a_borrowed_arrays_strides_leaves_the_registry_whole() {
    // rust-numpy finds a borrow again from the array's current geometry at release; NumPy 2
    // lets Python change an exported array's strides (with a deprecation warning). The
    // borrow is registered on a private view, so this neither aborts nor leaves the array
    // borrowed.
    with_python(|py| {
        let x = eval(py, "np.arange(8.0)[:4]").unwrap();
        let globals = pyo3::types::PyDict::new(py);
        globals.set_item("x", &x).unwrap();
        {
            let v = MemView::<f64, Strided<1>>::new(&x).unwrap();
            let mut w = Some(MemViewMut::<f64, Strided<1>>::new(&x));
            assert!(
                w.take().unwrap().is_err(),
                "a writer conflicts with the reader"
            );
            py.run(
                c"import warnings\nwith warnings.catch_warnings():\n    warnings.simplefilter('ignore')\n    x.strides = (16,)",
                Some(&globals),
                None,
            )
            .unwrap();
            let strides: (isize,) = x.getattr("strides").unwrap().extract().unwrap();
            assert_eq!(strides, (16,), "NumPy let Python change the strides");
            // The view keeps the geometry it acquired.
            assert_eq!(v.to_vec().unwrap(), vec![0.0, 1.0, 2.0, 3.0]);
        }
        // Released: rust-numpy may borrow the array mutably again.
        let mut rw = x.extract::<PyReadwriteArray1<f64>>().unwrap();
        rw.as_array_mut()[0] = 9.0;
    });
}
