//! `cyview-conformance`: the suite that checks `cyview` against real compiled Cython.
//!
//! The per-release harness (fixtures built with each pinned Cython, bindgen layouts,
//! property tests against compiled modules) lands with the harness issue; until then this
//! package only re-exports the core crate so the workspace root builds.

pub use cyview;
