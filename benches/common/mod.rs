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

/// Imports `bench_anchors` (`cython_fixtures/bench/anchors.pyx`, compiled with `-O2`):
/// Cython's own costs, timed next to cyview's. Call after [`python_paths`].
#[allow(dead_code)] // Not every bench binary that shares this module times an anchor.
pub fn anchors(py: Python<'_>) -> Bound<'_, PyModule> {
    let sys = py.import("sys").expect("sys");
    let path = sys.getattr("path").expect("sys.path");
    let path = path.cast::<PyList>().expect("sys.path is a list");
    path.insert(0, env!("CYVIEW_ANCHORS_FIXTURES_DIR"))
        .expect("sys.path.insert");
    py.import("bench_anchors").expect("import bench_anchors")
}

/// Times one call `call(n)` of an anchor function that repeats an operation `n` times in a
/// compiled loop. For `b.iter_custom(|n| time_repetitions(n, ..))`: `n` is criterion's
/// iteration count, so criterion reports the time per repetition (the one Python call's
/// overhead is spread over `n`, and criterion's linear regression drops it).
#[allow(dead_code)]
pub fn time_repetitions<'py>(
    n: u64,
    call: impl FnOnce(u64) -> PyResult<Bound<'py, PyAny>>,
) -> std::time::Duration {
    let start = std::time::Instant::now();
    let r = call(n).expect("anchor call");
    let elapsed = start.elapsed();
    std::hint::black_box(r);
    elapsed
}
