//! # cyview-py — the Python boundary of cyview
//!
//! * [`MemView`] / [`MemViewMut`]: `#[pyfunction]` arguments that accept exactly what a
//!   Cython `def f(const double[:, ::1] a)` / `def f(double[:, :] a)` accepts, with
//!   Cython's exceptions; read and written by value with the GIL held, no `unsafe`.
//! * [`acquire`]: the same acquisition for a [`Declaration`] known at run time (request
//!   flags, ndim, format string, item size, per-axis checks, contiguity).
//! * [`RustBuffer`]: Rust-owned or foreign memory exposed through the buffer protocol with
//!   any shape, strides, suboffsets, format and read-only flag, in a form Cython accepts;
//!   it counts live exports and refuses to free its memory while any exists.
//! * [`CythonSlice`] and [`capi_function`]: views Cython makes, and calls into Cython.
//!
//! ```no_run
//! use cyview_py::{MemView, MemViewMut, Strided, C};
//! use pyo3::prelude::*;
//!
//! #[pyfunction] // def row_sums(const double[:, ::1] a)
//! fn row_sums(a: MemView<'_, f64, C<2>>) -> Vec<f64> {
//!     a.rows().map(|row| row.sum()).collect()
//! }
//!
//! #[pyfunction] // def scale_inplace(double[:, :] a, double k)
//! fn scale_inplace(a: MemViewMut<'_, f64, Strided<2>>, k: f64) {
//!     a.map_inplace(|x| x * k);
//! }
//! ```
//!
//! # Soundness
//!
//! A buffer is shared memory: holding the GIL does not stop a Cython `nogil` section,
//! another thread or the exporter itself from writing it. [`MemView`]'s views read and
//! write by value with the GIL held and never hand out references into the buffer (the
//! model is described at [`GilView`]); every other way of reading an
//! acquired or Cython-made buffer through a Rust view or reference is `unsafe`, with one
//! contract: nothing writes the elements while the view is read ([`BufferSlice::view`],
//! [`CythonSlice::view`], [`GilView::detached`], [`GilView::as_slice`]).
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
mod axes;
mod capi;
mod cython_slice;
mod element;
mod memview;
mod memview_abi;
mod memview_type;
#[cfg(feature = "ndarray")]
mod ndarray;
#[cfg(feature = "numpy")]
mod numpy;
mod root;
mod rust_buffer;

#[cfg(feature = "ndarray")]
#[cfg_attr(docsrs, doc(cfg(feature = "ndarray")))]
pub use self::ndarray::view_as_array;
pub use acquire::{acquire, acquire_optional, BufferSlice, Declaration};
#[doc(hidden)]
pub use axes::__axes_array;
pub use axes::{Axes, Generic, Indirect, Strided, C, F};
pub use capi::{
    capi_function, capi_pointer, Arg, Args, CFunctionPointer, CReturn, CSignature, CType,
    CallContext, CythonFunction, Object, Param, Return, Signature, SliceOf, ViewDecl,
};
pub use cython_slice::CythonSlice;
pub use element::CythonElement;
#[doc(hidden)]
pub use element::{__Field, __field_describes_padding, __padded};
pub use memview::{
    ElementsMut, GilElementMut, GilIter, GilRows, GilView, GilViewMut, MemView, MemViewMut,
};
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
