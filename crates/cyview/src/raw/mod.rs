//! The raw layer: Cython's own functions over a [`MemviewSlice`](crate::MemviewSlice) and its number of
//! dimensions, mirrored one by one, quirks included. Each function names the Cython function
//! (or generated code) it mirrors; the tests compare them with real compiled Cython.
//!
//! Nothing here owns or borrows memory: a [`MemviewSlice`](crate::MemviewSlice) is plain data, and the functions
//! that read through it (pointer slots of indirect dimensions, element copies) take a
//! [`ReadPointer`](crate::ReadPointer) or are `unsafe`. Cython-semantics results may lie
//! outside their source, as Cython's do. The safe layer at the crate root
//! ([`View`](crate::View), [`ViewMut`](crate::ViewMut), [`ContigBuffer`](crate::ContigBuffer))
//! uses these functions and proves every result inside its memory ([`crate::geometry`]).
//!
//! | Cython | here |
//! |---|---|
//! | `__pyx_memoryview_slice_memviewslice`, compiled `v[items]`, `v[i, j]`, `v.T`, Python-level `memoryview.__getitem__` | [`slicing`] |
//! | `__pyx_memviewslice_is_contig`, `fill_contig_strides_array`, `get_best_order` | [`contig`] |
//! | `__pyx_memoryview_copy_new_contig`, `memoryview_copy_contents` | [`copy`] |
//! | the pure checks of `__Pyx_ValidateAndInit_memviewslice`, `is_cf_contig` | [`validate`] |
//! | `get_buf_flags` and CPython's `PyBUF_*` request flags | [`pybuf`] |

pub mod contig;
pub mod copy;
pub mod pybuf;
pub mod slicing;
pub mod validate;
