//! # cyview-py — the Python boundary of cyview
//!
//! * [`acquire`]: a view of any object with the buffer protocol, acquired exactly as
//!   Cython's `__Pyx_ValidateAndInit_memviewslice` does for a [`Declaration`] (request
//!   flags, ndim, format string, item size, per-axis checks, contiguity), with Cython's
//!   exceptions.
//! * [`RustBuffer`]: Rust-owned or foreign memory exposed through the buffer protocol with
//!   any shape, strides, suboffsets, format and read-only flag, in a form Cython accepts;
//!   it counts live exports and refuses to free its memory while any exists.
//!
//! ```no_run
//! use cyview_py::{acquire, Declaration};
//! use pyo3::prelude::*;
//!
//! Python::attach(|py| -> PyResult<()> {
//!     let array = py.import("array")?.getattr("array")?.call1(("d", vec![1.0, 2.0, 3.0]))?;
//!     // Cython's declaration text; a text Cython rejects does not compile.
//!     const DECL: Declaration = Declaration::parse("double[::1]");
//!     let view = acquire(&array, &DECL)?;
//!     // SAFETY: nothing writes to the array while the view is read.
//!     assert_eq!(unsafe { view.view::<f64>() }?.to_vec().unwrap(), vec![1.0, 2.0, 3.0]);
//!     Ok(())
//! })
//! .unwrap();
//! ```
//!
//! # Soundness
//!
//! A buffer is shared memory: holding the GIL does not stop a Cython `nogil` section,
//! another thread or the exporter itself from writing it. Reading an acquired or
//! Cython-made buffer through a Rust view is therefore `unsafe`, with one contract: nothing
//! writes the elements while the view is read ([`BufferSlice::view`], [`CythonSlice::view`]).
//! The geometry is never the caller's burden: `BufferSlice` views the exporter's own
//! `Py_buffer`, [`CythonSlice::view`] proves every element is an element of the buffer the
//! memoryview object holds ([`cyview::geometry::check_within`]) and refuses Cython's
//! out-of-range slices, and [`RustBuffer`] proves its geometry inside the memory it owns.
//! Exports copy only initialised bytes (padding is zeroed); allocation failures are
//! `MemoryError`; acquisition counts refuse or abort before wrapping. See the README's
//! "Soundness" section for the full table.
#![deny(unsafe_op_in_unsafe_fn)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(clippy::undocumented_unsafe_blocks, clippy::missing_safety_doc)]
#![warn(missing_docs)]

mod acquire;
mod capi;
mod cython_slice;
mod element;
mod memview_abi;
mod memview_type;
#[cfg(feature = "ndarray")]
mod ndarray;
#[cfg(feature = "numpy")]
mod numpy;
mod rust_buffer;

#[cfg(feature = "ndarray")]
#[cfg_attr(docsrs, doc(cfg(feature = "ndarray")))]
pub use self::ndarray::view_as_array;
pub use acquire::{acquire, acquire_optional, BufferSlice, Declaration};
pub use capi::{
    capi_function, capi_pointer, Arg, Args, CFunctionPointer, CReturn, CSignature, CType,
    CallContext, CythonFunction, Memview, Object, Param, Return, Signature, ViewDecl,
};
pub use cython_slice::CythonSlice;
#[doc(hidden)]
pub use element::__padded;
pub use element::CythonElement;
pub use memview_abi::MemviewAbi;
pub use memview_type::MemviewType;
pub use rust_buffer::RustBuffer;

#[doc(hidden)]
pub use cyview as __cyview;

use pyo3::PyErr;

/// Converts a cyview error into the Python exception Cython raises (cyview's
/// `From<cyview::Error> for PyErr`, feature `pyo3`, which `?` uses too).
pub(crate) fn to_py(e: cyview::Error) -> PyErr {
    PyErr::from(e)
}

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
