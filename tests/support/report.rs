//! What `ci/matrix` collects from the test output (`cyview-report:` and `cyview-finding:`
//! lines), and proptest runners sized by `PROPTEST_CASES`.

use proptest::test_runner::{Config, TestRunner};

use super::python::cython_release;

/// Prints the line `ci/matrix` collects for a check.
pub fn report(check: &str, cases: usize, passed: usize, failed: usize) {
    println!(
        "cyview-report: {}",
        serde_json::json!({"check": check, "release": cython_release(), "cases": cases, "passed": passed, "failed": failed})
    );
}

/// Prints a finding line for `ci/matrix`.
pub fn finding(id: &str, kind: &str, reproducer: &str, detail: &str) {
    println!(
        "cyview-finding: {}",
        serde_json::json!({"id": id, "kind": kind, "release": cython_release(), "reproducer": reproducer, "detail": detail})
    );
}

/// `PROPTEST_CASES` when set, else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A proptest runner with `cases` cases whose failures persist in `file`.
pub fn runner(cases: u32, file: &'static str) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(file),
        )),
        ..Config::default()
    })
}
