//! Test support of the `cyview` tests, one concern per module: [`structure`] (real memory
//! laid out as random direct or indirect strided structures, element addresses),
//! [`strategies`] (random specs and index items), [`dtypes`] (the structs of
//! `cython_fixtures/formats/formats.pyx`, defined once), [`rng`] (a fixed-seed generator for
//! tests that draw their own cases).
#![allow(dead_code, unused_imports)]

pub mod dtypes;
pub mod rng;
pub mod strategies;
pub mod structure;

pub use strategies::{any_spec, direct_spec, indirect_spec, item, items};
pub use structure::{all_indices, slice_addresses, Spec, Structure};
