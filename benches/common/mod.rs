//! What the root package's benches share: the embedded interpreter's `sys.path`.

use pyo3::prelude::*;
use pyo3::types::PyList;

/// Puts the selected release's site-packages and, with `fixtures`, the compiled fixture
/// modules (`build.rs`'s output) first on `sys.path`.
pub fn python_paths(py: Python<'_>, fixtures: bool) {
    let sys = py.import("sys").expect("sys");
    let path = sys.getattr("path").expect("sys.path");
    let path = path.cast::<PyList>().expect("sys.path is a list");
    if fixtures {
        path.insert(0, env!("CYVIEW_FIXTURES_DIR"))
            .expect("sys.path.insert");
    }
    if let Some(site) = option_env!("CYVIEW_SITE_PACKAGES") {
        path.insert(0, site).expect("sys.path.insert");
    }
}
