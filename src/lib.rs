//! `cyview-conformance`: the suite that checks `cyview` and `cyview-py` against real compiled
//! Cython. The checks are the integration tests in `tests/` (fixtures built by `build.rs`
//! with the selected Cython release); this library only re-exports the crates under test
//! and compiles the README's examples.

pub use cyview;
pub use cyview_py;

/// The README's examples, compiled (and the pure-Rust one run) as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
