//! Shared support for the conformance tests, one concern per module:
//!
//! | module | concern |
//! |---|---|
//! | [`python`] | the embedded interpreter with the selected release's site-packages and the compiled fixtures on `sys.path`; evaluating expressions, exceptions, reference counts |
//! | [`buffers`] | reading an exporter's `Py_buffer` as a cyview slice, with its pointer slots |
//! | [`geometry`] | element addresses and index orders of a geometry |
//! | [`fixtures`] | what the fixtures of `cython_fixtures/` declare: the compiled slicing functions (`live_spec.json`) and the declarations of `live_acquire.pyx` |
//! | [`dtypes`] | the Rust twins of the Cython structs of the fixtures, each defined once |
//! | [`sources`] | the random buffer exporters, index values and index keys of the slicing checks, and the comparison of a result view |
//! | [`report`] | the `cyview-report:` / `cyview-finding:` lines `ci/matrix` collects, and proptest runners |
//! | [`snapshots`] | which committed insta snapshot a build is compared with (its own, or that of the pinned release it follows) |
//! | [`behaviour`] | data-driven checks whose cases are grouped by the Cython behaviour they exercise, so that a failing test names the behaviour |
#![allow(dead_code, unused_imports, unused_macros)]

pub mod behaviour;
pub mod buffers;
pub mod dtypes;
pub mod fixtures;
pub mod geometry;
pub mod python;
pub mod report;
pub mod snapshots;
pub mod sources;

pub use buffers::{read_buffer, Buffer, Slots};
pub use dtypes::{PPair, Pair};
pub use fixtures::{
    acquire_declarations, cython_semantics, dtype_of, pattern_items, release_rules, spec, Decl,
    Func, UNDEFINED,
};
pub use geometry::{c_order, element_addresses};
pub use python::{cython_release, err_of, eval, fixtures_dir, refcount, with_python};
pub use report::{cases, finding, report, runner};
pub use snapshots::snapshot_release;
