//! # cyview — Cython's typed memoryview ABI in Rust
//!
//! Cython passes typed memoryviews (`double[:, ::1]`, ...) between C functions as a struct,
//! `__Pyx_memviewslice`: a memoryview object pointer, a data pointer, and `shape`,
//! `strides`, `suboffsets` arrays of 8 entries. This crate is that struct
//! ([`MemviewSlice`]) and the rules Cython applies to it, written in Rust and checked
//! against real compiled Cython:
//!
//! * the safe layer, at the crate root: typed views [`View`] and [`ViewMut`] over Rust or
//!   foreign memory, indexed and sliced with [`s!`] items ([`SliceItem`]) in either
//!   [`Semantics`] ([`Semantics::Python`], CPython's, the default; [`Semantics::Cython`],
//!   bit-identical to Cython including its clamping quirks), and [`ContigBuffer`], an owned
//!   contiguous copy;
//! * [`raw`]: Cython's functions over a bare [`MemviewSlice`], one by one
//!   ([`raw::slicing`], [`raw::contig`], [`raw::copy`], [`raw::validate`]);
//! * [`format`](mod@format): Cython's buffer format-string check and the PEP 3118 formats of its dtypes;
//! * [`geometry`]: the one audited module every safe element access rests on.
//!
//! `ARCHITECTURE.md` at the repository root maps every Cython concept to its file.
//!
//! # Soundness
//!
//! No safe function reads or writes outside the memory a view was built over, whatever it
//! is passed; every `unsafe fn` states in `# Safety` what its caller must guarantee. All
//! element access rests on one audited module, [`geometry`]: [`View`] and [`ViewMut`] over
//! Rust memory are proven inside it by [`geometry::check_in_memory`] (exact `i128`
//! arithmetic), and everything derived from them (Python-semantics or in-bounds Cython
//! slicing, indexing, new axes, [`View::t`]) selects only elements of the source.
//! Cython-semantics results of [`raw::slicing::slice`] may leave their source, as Cython's do:
//! they are data, never read through. Reading a type needs [`FromBytes`], writing it
//! [`IntoBytes`] (no padding). Allocation failures are [`ErrorKind::MemoryError`].
//!
//! Every error carries Cython's exception kind and exact message ([`Error`]). Nothing in this
//! crate knows Python exists; `cyview-py` adds the Python boundary.
//!
//! ```
//! use cyview::{s, Semantics, View};
//!
//! let data: Vec<f64> = (0..12).map(f64::from).collect();
//! let v = View::from_slice(&data, &[3, 4]).unwrap();
//!
//! // Python: v[1:, ::-2]
//! let w = v.slice(&s![1.., ..;-2]).unwrap();
//! assert_eq!(w.shape(), &[2, 2]);
//! assert_eq!(w.to_vec().unwrap(), vec![7.0, 5.0, 11.0, 9.0]);
//!
//! // Where Cython and Python disagree: a negative step with a stop far below the start.
//! let row = v.slice(&s![0]).unwrap();
//! let py = row.slice_with(&s![2..-100;-1], Semantics::Python).unwrap();
//! let cy = row.slice_with(&s![2..-100;-1], Semantics::Cython).unwrap();
//! assert_eq!(py.to_vec().unwrap(), vec![2.0, 1.0, 0.0]);
//! assert_eq!(cy.to_vec().unwrap(), vec![2.0, 1.0]); // Cython clamps the stop to 0
//!
//! // Errors carry Cython's exact message.
//! let err = v.slice(&s![5, ..]).unwrap_err();
//! assert_eq!(err.to_string(), "Index out of bounds (axis 0)");
//! ```
#![deny(unsafe_op_in_unsafe_fn)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]
#![warn(missing_docs)]

pub mod abi;
pub mod bytes;
mod contig_buffer;
pub mod decl;
pub mod error;
pub mod format;
pub mod geometry;
mod items;
mod iter;
pub mod memory;
pub mod raw;
mod view;
mod view_mut;

pub use abi::{
    Access, AxisSpec, Contiguity, MemviewObject, MemviewObjectLayout, MemviewSlice, Order, Packing,
    MAX_DIMS,
};
pub use bytes::{FromBytes, IntoBytes};
pub use contig_buffer::ContigBuffer;
pub use error::{Error, ErrorKind, Result};
pub use items::{Semantics, Slice, SliceItem};
pub use iter::{ElementMut, Iter, IterMut, Rows};
pub use memory::{Direct, ReadPointer, TrustedMemory};
/// Python-level indexing (`mv[x]` / `mv[(x,)]` on a Cython memoryview object, per release).
pub use raw::slicing::{getitem_object, getitem_object_with, ObjectItem, Release, Subscript};
pub use view::View;
pub use view_mut::ViewMut;

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
