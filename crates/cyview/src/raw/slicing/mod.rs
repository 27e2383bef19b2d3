//! Indexing and slicing a [`MemviewSlice`](crate::MemviewSlice) as Cython does: the per-dimension
//! arithmetic of both semantics, Cython's index expansion, element addressing and transpose.
//!
//! # The two semantics
//!
//! * [`Semantics::Cython`](crate::Semantics::Cython) is bit-identical to Cython's `__pyx_memoryview_slice_memviewslice`
//!   (`MemoryView_C.c` since 3.2.5, `MemoryView.pyx` before; the arithmetic is the same in
//!   every release from 0.29 to 3.3) and to the code Cython's compiler emits for
//!   `v[...]` on a typed memoryview.
//! * [`Semantics::Python`](crate::Semantics::Python) is CPython's `PySlice_Unpack` + `PySlice_AdjustIndices`, the rules
//!   of `list`, NumPy and `memoryview`. A Python-semantics slice only ever selects indices in
//!   `0..extent`.
//! * [`Semantics::CythonPatched`](crate::Semantics::CythonPatched) is Cython built with this
//!   project's fix of that function (`cython_patches/`, `Cython.__version__` labelled
//!   `+cyview.slice1`): Python's length, so Python's selection ([`resolve_cython_patched`]);
//!   Cython's start (it differs from Python's only for empty results), indirect
//!   bookkeeping and errors. The rows of the table below become Python's; the indirect
//!   bookkeeping stays.
//!
//! Integer indices, new axes, Ellipsis and the indirect-dimension bookkeeping are the same in
//! both; they differ in how a slice's start, stop and length are computed (extent `n`):
//!
//! | case | Cython | Python |
//! |---|---|---|
//! | start `< -n`, step `< 0`: `v[-100::-1]` | start clamps to 0: element 0 | nothing |
//! | stop `< -n`, step `< 0`: `v[2:-100:-1]` | stop clamps to 0: `[2, 1]` | `[2, 1, 0]` |
//! | `stop - start` and step of opposite signs, `0 < |stop - start| < |step|`: `v[1:0:2]`, `v[3:2:2]` with `n = 3`, `v[:0:-2]` with `n = 0` | one element, at `start` | nothing |
//!
//! The last row is Cython's length formula: `len = (stop - start) / step` in C's truncating
//! division, plus one whenever the division leaves a remainder, which is `ceil` only when the
//! quotient is positive. Where `start` was clamped to `n` (positive step) or is `-1` / `0` on
//! an empty axis (negative step), that one element lies **outside the source**: `v[3:2:2]`
//! on 3 elements reads index 3. On the golden vectors' exhaustive 1-d grid of direct
//! sources (extents 0-5, 4,226 slices compiled with Cython 3.3.1 and 0.29.37, same results)
//! 768 slices select differently from Python (645 more elements, 123 fewer) and 234 select
//! an element outside the source.
//!
//! A second way out of the source is the indirect bookkeeping: offsets of dimensions sliced
//! after a kept indirect dimension are added to that dimension's suboffset, which can turn
//! negative and so make the dimension direct (see [`slice()`]).
//!
//! [`slice()`] with [`Semantics::Cython`](crate::Semantics::Cython) reproduces both, bit for bit; [`slice_in_bounds`]
//! (used by the safe [`crate::View`]) refuses them; [`Semantics::Python`](crate::Semantics::Python) never selects
//! outside `0..n` and refuses the negative suboffset.
//!
//! # Files
//!
//! | Cython | here |
//! |---|---|
//! | per-dimension index and slice arithmetic of `__pyx_memoryview_slice_memviewslice` | [`resolve`](resolve_cython) (`resolve.rs`) |
//! | `unellipsify` (`Compiler/MemoryView.py`) | [`expand`] (`expand.rs`) |
//! | compiled `v[items]`: `generate_buffer_slice_code` + `slice_memviewslice` | [`slice()`] (`compiled.rs`) |
//! | compiled `v[i, j]` and `__pyx_memviewslice_index_full` | [`element_ptr`] (`element.rs`) |
//! | `__pyx_memslice_transpose` (`v.T`) | [`transpose`] (`transpose.rs`) |
//! | Python-level `memoryview.__getitem__` + `_unellipsify`, per release | [`getitem_object`] (`object.rs`) |

mod compiled;
mod element;
mod expand;
mod object;
mod resolve;
mod transpose;

pub use compiled::{slice, slice_in_bounds};
pub use element::{element_ptr, element_ptr_unchecked};
pub use expand::{expand, Expanded, ExpandedItems};
pub use object::{getitem_object, getitem_object_with, ObjectItem, Release, Subscript};
pub use resolve::{
    resolve, resolve_cython, resolve_cython_patched, resolve_index, resolve_python, Resolved,
};
pub use transpose::{transpose, transpose_in_source};
