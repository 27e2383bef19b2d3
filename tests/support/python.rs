//! The embedded interpreter: the selected release's site-packages and the compiled fixtures
//! on `sys.path`, Python expressions, exceptions and reference counts as the tests see them.

use std::sync::Once;

use pyo3::prelude::*;
use pyo3::types::PyList;

/// The directory holding the compiled fixture modules of the selected release.
pub fn fixtures_dir() -> String {
    std::env::var("CYVIEW_FIXTURES_DIR")
        .ok()
        .or(option_env!("CYVIEW_FIXTURES_DIR").map(String::from))
        .expect("CYVIEW_FIXTURES_DIR: build the root package with build.rs (ci/test)")
}

/// The Cython release the fixtures were built with.
pub fn cython_release() -> String {
    std::env::var("CYVIEW_CYTHON_VERSION")
        .ok()
        .or(option_env!("CYVIEW_CYTHON_VERSION").map(String::from))
        .expect("CYVIEW_CYTHON_VERSION: build the root package with build.rs (ci/test)")
}

fn site_packages() -> Option<String> {
    std::env::var("CYVIEW_SITE_PACKAGES")
        .ok()
        .or(option_env!("CYVIEW_SITE_PACKAGES").map(String::from))
}

static PATHS: Once = Once::new();

/// Runs `f` with the interpreter attached and the fixture paths set up (once).
pub fn with_python<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> R {
    Python::attach(|py| {
        PATHS.call_once(|| {
            let sys = py.import("sys").expect("sys");
            let path = sys.getattr("path").expect("sys.path");
            let path = path.cast::<PyList>().expect("sys.path is a list");
            let mut dirs = vec![
                fixtures_dir(),
                format!("{}/cython_fixtures", env!("CARGO_MANIFEST_DIR")),
            ];
            dirs.extend(site_packages());
            for d in dirs.into_iter().rev() {
                path.insert(0, d).expect("sys.path.insert");
            }
        });
        f(py)
    })
}

/// Evaluates a Python expression with `ls` (`live_support`), `live_core` and `np` in scope.
pub fn eval<'py>(py: Python<'py>, expr: &str) -> PyResult<Bound<'py, PyAny>> {
    let globals = pyo3::types::PyDict::new(py);
    globals.set_item("ls", py.import("live_support")?)?;
    globals.set_item("live_core", py.import("live_core")?)?;
    globals.set_item("np", py.import("numpy")?)?;
    let code = std::ffi::CString::new(expr)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    py.eval(&code, Some(&globals), None)
}

/// An exception's type name and message, as the tests compare them.
pub fn err_of(py: Python<'_>, e: &PyErr) -> (String, String) {
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

/// The object's reference count (compared before/after, never as an absolute).
pub fn refcount(obj: &Bound<'_, PyAny>) -> isize {
    // SAFETY: `obj` is a live object and the interpreter is attached (we hold a `Bound`).
    unsafe { pyo3::ffi::Py_REFCNT(obj.as_ptr()) }
}
