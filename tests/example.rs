//! The mixed Rust + Cython example of `examples/mixed/`, built as a user would build it and
//! run both ways:
//!
//! * `cargo build --release` of the example's static library (Rust kernels taking
//!   `cyview::MemviewSlice` by value), then `python setup.py build_ext --inplace` of
//!   `mixed.pyx`, which declares them `cdef extern` and links the library;
//! * Cython calling Rust: `mixed.weighted_sum` and `mixed.scale` on random strided NumPy
//!   views, compared with NumPy's own results;
//! * Rust calling Cython: the `cdef api` functions `as_view` and `row_sum` through
//!   `cyview_py::CythonFunction`, with the view held as a `CythonSlice` and a `RustBuffer`
//!   passed through the module's own memoryview type.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use cyview_py::{view_decl, CythonFunction, Object, RustBuffer, SliceOf};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use pyo3::prelude::*;
use support::{cython_release, report, with_python};

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds the example once per test process: returns the folder holding `mixed.*.so`.
fn built() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let example = root.join("examples/mixed");
        let target = root.join("target/example-mixed");
        run(
            Command::new(env!("CARGO"))
                .args(["build", "--release", "--quiet", "--manifest-path"])
                .arg(example.join("Cargo.toml"))
                .arg("--target-dir")
                .arg(&target)
                .env_remove("CARGO_TARGET_DIR")
                .env_remove("RUSTFLAGS"),
            "cargo build of examples/mixed",
        );
        let lib = target.join("release/libmixed_kernel.a");
        let py = target.join(format!("py-{}", cython_release()));
        std::fs::create_dir_all(&py).unwrap();
        for f in ["mixed.pyx", "setup.py"] {
            std::fs::copy(example.join(f), py.join(f)).unwrap();
        }
        run(
            Command::new(env!("CYVIEW_PYTHON_EXE"))
                .args(["setup.py", "-q", "build_ext", "--inplace"])
                .current_dir(&py)
                .env("MIXED_KERNEL_LIB", &lib),
            "python setup.py build_ext of examples/mixed",
        );
        py
    })
}

fn import_mixed(py: Python<'_>) -> Bound<'_, PyModule> {
    let dir = built().display().to_string();
    let path = py.import("sys").unwrap().getattr("path").unwrap();
    if !path.contains(&dir).unwrap() {
        path.call_method1("insert", (0, &dir)).unwrap();
    }
    py.import("mixed").expect("import mixed")
}

/// A random 2-d float64 view with any strides over `ls.direct`'s block (element bytes at
/// offset 8k hold float64(k), so every sum is of integers and exact in any order), as a
/// Python expression.
fn strided() -> impl Strategy<Value = (String, usize)> {
    ((1usize..=5, 1usize..=5), (-3isize..=3, -3isize..=3)).prop_map(|((n, m), (a, b))| {
        let (sa, sb) = (8 * a * m as isize, 8 * b);
        let lo = (n as isize - 1) * sa.min(0) + (m as isize - 1) * sb.min(0);
        let hi = (n as isize - 1) * sa.max(0) + (m as isize - 1) * sb.max(0);
        (
            format!(
                "ls.direct({}, {}, [{n}, {m}], [{sa}, {sb}])",
                hi - lo + 8,
                -lo
            ),
            m,
        )
    })
}

fn eval<'py>(py: Python<'py>, expr: &str) -> Bound<'py, PyAny> {
    support::eval(py, expr).unwrap_or_else(|e| panic!("{expr}: {e}"))
}

#[test]
fn cython_calls_rust_kernels() {
    let cases = 500;
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let result = with_python(|py| {
        let mixed = import_mixed(py);
        runner.run(&(strided(), -3i32..=3), |((expr, m), k)| {
            let v = eval(py, &expr);
            let w = eval(py, &format!("np.arange(1.0, {}.0)", m + 1));
            let ours: f64 = mixed
                .call_method1("weighted_sum", (v.clone(), w.clone()))
                .map_err(|e| TestCaseError::fail(format!("{expr}: {e}")))?
                .extract()
                .unwrap();
            let numpy: f64 = v
                .call_method1("__mul__", (w,))
                .unwrap()
                .call_method0("sum")
                .unwrap()
                .extract()
                .unwrap();
            prop_assert_eq!(ours, numpy, "weighted_sum({})", expr);
            // scale needs double[:, ::1]: a C-contiguous copy, scaled in place by Rust.
            let c = v.call_method0("copy").unwrap();
            let expected = c.call_method1("__mul__", (f64::from(k),)).unwrap();
            mixed
                .call_method1("scale", (c.clone(), f64::from(k)))
                .map_err(|e| TestCaseError::fail(format!("{expr}: {e}")))?;
            let same: bool = c
                .call_method1("__eq__", (expected,))
                .unwrap()
                .call_method0("all")
                .unwrap()
                .extract()
                .unwrap();
            prop_assert!(same, "scale({}, {})", expr, k);
            Ok(())
        })
    });
    report(
        "example: Cython calls Rust kernels",
        cases as usize,
        cases as usize - usize::from(result.is_err()),
        usize::from(result.is_err()),
    );
    result.unwrap();
    // A shape mismatch: the kernel returns NaN and the Cython wrapper raises.
    with_python(|py| {
        let mixed = import_mixed(py);
        let err = mixed
            .call_method1(
                "weighted_sum",
                (eval(py, "np.ones((2, 3))"), eval(py, "np.ones(2)")),
            )
            .unwrap_err();
        assert_eq!(
            err.value(py).to_string(),
            "shapes (2, 3) and (2,) do not match"
        );
    });
}

view_decl!(Grid = "const double[:, :]");
/// `cdef api double row_sum(const double[:, :] v, Py_ssize_t i) except? -1`.
type RowSum = fn(SliceOf<Grid>, isize) -> f64;
/// `cdef api const double[:, :] as_view(object obj)`.
type AsView = fn(Object) -> SliceOf<Grid>;

#[test]
fn rust_calls_cython_api() {
    with_python(|py| {
        let mixed = import_mixed(py);
        // SAFETY: `Grid` is the declaration of `row_sum`'s `v` and of `as_view`'s result.
        let (row_sum, as_view) = unsafe {
            (
                CythonFunction::<RowSum>::new(&mixed, "row_sum").unwrap(),
                CythonFunction::<AsView>::new(&mixed, "as_view").unwrap(),
            )
        };
        let mut cases = 0;
        for expr in [
            "ls.direct(200, 0, [3, 4], [32, 8])",
            "ls.direct(200, 96, [3, 4], [-32, 8])",
            "ls.direct(200, 24, [4, 3], [40, -8])",
            "ls.direct(8, 0, [1, 1], [8, 8])",
        ] {
            let obj = eval(py, expr);
            let v = as_view.call(py, (&obj,)).unwrap();
            assert_eq!(v.ndim(), 2);
            let rows = v.as_raw().shape[0];
            for i in 0..rows {
                let numpy: f64 = obj
                    .get_item(i)
                    .unwrap()
                    .call_method0("sum")
                    .unwrap()
                    .extract()
                    .unwrap();
                // The view Rust holds, and the object itself (acquired by mixed's own
                // memoryview type for the call).
                assert_eq!(row_sum.call(py, (&v, i)).unwrap(), numpy, "{expr}[{i}]");
                assert_eq!(row_sum.call(py, (&obj, i)).unwrap(), numpy, "{expr}[{i}]");
                cases += 1;
            }
            // The row is out of range: Cython raises and returns -1 (`except? -1`).
            let err = row_sum.call(py, (&v, rows)).unwrap_err();
            assert!(err.is_instance_of::<pyo3::exceptions::PyIndexError>(py));
            assert_eq!(
                err.value(py).to_string(),
                format!("row {rows} out of range for {rows} rows")
            );
            assert_eq!(v.acquisition_count(), 1);
        }
        // Rust memory, through a real memoryview object of the module.
        let rb = RustBuffer::from_vec(vec![1.0f64, 2.0, 3.0, 4.0], &[2, 2], true).unwrap();
        let rb = Bound::new(py, rb).unwrap();
        assert_eq!(row_sum.call(py, (&rb, 1)).unwrap(), 7.0);
        // An object Cython refuses: the error return carries its exception.
        let err = as_view.call(py, (&eval(py, "np.ones(3)"),)).unwrap_err();
        assert_eq!(
            err.value(py).to_string(),
            "Buffer has wrong number of dimensions (expected 2, got 1)"
        );
        report("example: Rust calls Cython's cdef api", cases, cases, 0);
    });
}
