//! # cyview-py — the Python boundary of cyview
//!
//! * [`RustBuffer`]: Rust-owned or foreign memory exposed through the buffer protocol with
//!   any shape, strides, suboffsets, format and read-only flag, in a form Cython accepts;
//!   it counts live exports and refuses to free its memory while any exists.
//!
//! Acquisition exactly as Cython's `__Pyx_ValidateAndInit_memviewslice` (the format-string
//! matcher it needs is in progress in `cyview::format`) comes next.
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]
#![warn(missing_docs)]

mod export;

pub use export::{Element, RustBuffer};
