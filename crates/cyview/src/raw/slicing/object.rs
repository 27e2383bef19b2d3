//! Python-level indexing of a Cython memoryview object, `m[items]` from Python: the
//! `memoryview.__getitem__` of `MemoryView.pyx` with each release's `_unellipsify`, which
//! differs from the compiled path ([`super::slice`]) and between releases.

use super::compiled::slice_expanded;
use super::expand::{Expanded, ExpandedItems};
use crate::abi::MemviewSlice;
use crate::error::{Error, ErrorKind, Result};
use crate::geometry;
use crate::items::{Semantics, Slice, SliceItem};
use crate::memory::ReadPointer;

/// Which Cython release's Python-level indexing rules to follow in [`getitem_object`]; the
/// compiled rules ([`slice()`](super::slice())) are the same in every release.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Release {
    /// Cython 0.29.x: `_unellipsify` builds a list; an Ellipsis among too many items expands
    /// to nothing.
    Cython0_29,
    /// Cython 3.0 to 3.2: `_unellipsify` writes each item into a list of `ndim` full slices
    /// at a running position (the first Ellipsis skips `ndim - len(items)` positions), with
    /// Python's negative list indices and `IndexError: list assignment index out of range`;
    /// bad item types are found in the same pass.
    Cython3_0,
    /// Cython 3.3: `_unellipsify_index_tuple` checks the item types first, then writes into a
    /// list of `ndim` full slices around the first Ellipsis; without an Ellipsis, surplus
    /// items are kept (and read past the slice's dimensions).
    Cython3_3,
}

impl Release {
    /// The rules of a Cython version string (`"0.29.37"`, `"3.1.8"`, ...); `None` for a
    /// release this crate does not know.
    pub fn from_version(version: &str) -> Option<Release> {
        let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
        match (parts.next()??, parts.next()??) {
            (0, 29) => Some(Release::Cython0_29),
            (3, 0..=2) => Some(Release::Cython3_0),
            (3, 3) => Some(Release::Cython3_3),
            _ => None,
        }
    }
}

/// How Python code wrote the index of `m[...]`, which Cython's `__getitem__` tells apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Subscript {
    /// One item, not in a tuple: `m[i]`, `m[1:3]`, `m[...]` (then `items` has one entry).
    Single,
    /// A tuple of items, of any length: `m[i, j]`, `m[(i,)]`, `m[()]`.
    Tuple,
}

/// What Python-level indexing of a Cython memoryview object returns.
// The slice is returned by value, as Cython passes it; boxing it would allocate per index.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug)]
pub enum ObjectItem {
    /// A new memoryview slice of this many dimensions (`_memoryviewslice`).
    View(MemviewSlice, usize),
    /// The address of one element (Python gets the item's value).
    Element(*mut u8),
}

/// Python-level indexing of a Cython memoryview object: `m[items]` in Python, where `m` is
/// a Cython `memoryview` / `_memoryviewslice` whose slice is `src` with `ndim` dimensions.
///
/// Mirrors `memoryview.__getitem__` (`MemoryView.pyx`) with `_unellipsify` and
/// `memview_slice` (which calls `__pyx_memoryview_slice_memviewslice` for every item, with
/// [`Semantics::Cython`](crate::Semantics::Cython)), or `get_item_pointer` / `pybuffer_index` when no slice is
/// involved. It differs from the compiled path ([`slice()`](super::slice())) in that:
/// * a new axis is `TypeError: Cannot index with type '<class 'NoneType'>'`;
/// * a tuple of integers only checks dimensions one by one and reports the *first* out of
///   range as `IndexError: Out of bounds on buffer access (axis {d})`;
/// * Ellipsis expansion and too many items follow the `release`'s `_unellipsify`.
///
/// `subscript` says how Python code wrote the items: [`Subscript::Single`] for one item not
/// in a tuple (`m[...]` returns the
/// object itself, `m[i]` on a 1-d view goes straight to `pybuffer_index`).
///
/// # Errors
///
/// As described, plus those of `__pyx_memoryview_slice_memviewslice` (see [`slice()`](super::slice())).
///
/// # More items than dimensions
///
/// When the release's expansion leaves more items than `ndim` (0.29: surplus items or
/// Ellipses; 3.3: surplus items without an Ellipsis; never in 3.0-3.2, whose list of `ndim`
/// entries raises `list assignment index out of range` instead), Cython walks the items in
/// order and, at the first item past the last dimension, reads `shape`, `strides` and
/// `suboffsets` entries past the slice's dimensions: `get_item_pointer` reads
/// `view.shape[dim]` (the exporter's arrays for a `memoryview`, `from_slice` for a
/// `_memoryviewslice`) and `memview_slice` passes `p_src.shape[dim]` (for a `memoryview`
/// a stack `__Pyx_memviewslice` whose entries past `ndim` `slice_copy` never wrote; for a
/// `_memoryviewslice` its `from_slice`, which this function cannot tell from the other).
/// The result then depends on memory the inputs do not determine (results of more than 8
/// dimensions are written past the struct's arrays; some cases crash). So this function
/// walks the items below `ndim` exactly as Cython does, returns Cython's error when one of
/// them raises it (`Out of bounds on buffer access (axis d)` on the element path,
/// `Index out of bounds (axis d)`, `Step may not be zero (axis d)` or `All dimensions
/// preceding dimension d must be indexed and not sliced` on the slice path), and refuses
/// the rest with [`ErrorKind::Undefined`](crate::ErrorKind::Undefined). With `ndim == 0`:
/// the slice path is Undefined (`memview_slice` starts with `assert memview.view.ndim > 0`:
/// an `AssertionError`, or under `python -O` a read of dimension 0); the element path
/// follows `pybuffer_index`'s 0-d branch (extent `view.len // itemsize`, which is 1):
/// indices 0 keep the element, positive ones raise `Out of bounds on buffer access
/// (axis d)`, a negative one reads `view.shape[d]` and is Undefined.
pub fn getitem_object<R: ReadPointer>(
    src: &MemviewSlice,
    ndim: usize,
    items: &[SliceItem],
    subscript: Subscript,
    release: Release,
    mem: R,
) -> Result<ObjectItem> {
    getitem_object_with(src, ndim, items, subscript, release, Semantics::Cython, mem)
}

/// [`getitem_object`] with the slice arithmetic of `__pyx_memoryview_slice_memviewslice`
/// chosen: [`Semantics::Cython`](crate::Semantics::Cython) for every published release
/// (what [`getitem_object`] uses), [`Semantics::CythonPatched`](crate::Semantics::CythonPatched)
/// for a build with the slice-bounds fix (`Semantics::of_cython_version` picks it from
/// `Cython.__version__`). [`Semantics::Python`](crate::Semantics::Python) gives CPython's
/// bounds with Cython's other rules (and, like the patched semantics, no refusal of a
/// negative suboffset: this is always the exact Cython walk).
///
/// # Errors
///
/// As [`getitem_object`].
pub fn getitem_object_with<R: ReadPointer>(
    src: &MemviewSlice,
    ndim: usize,
    items: &[SliceItem],
    subscript: Subscript,
    release: Release,
    semantics: Semantics,
    mem: R,
) -> Result<ObjectItem> {
    geometry::check_ndim_limit(ndim)?;
    let none_type = || {
        Error::new(
            ErrorKind::TypeError,
            "Cannot index with type '<class 'NoneType'>'",
        )
    };
    let bare = subscript == Subscript::Single;
    if bare && items.len() == 1 {
        match items[0] {
            SliceItem::Ellipsis => return Ok(ObjectItem::View(*src, ndim)),
            SliceItem::Index(i) if ndim == 1 && release == Release::Cython3_3 => {
                return pybuffer_index_all(src, &[i], &mem).map(ObjectItem::Element)
            }
            _ => {}
        }
    }
    // 0.29 and 3.3 check every item's type before they build anything.
    if release != Release::Cython3_0 && items.iter().any(|i| matches!(i, SliceItem::NewAxis)) {
        return Err(none_type());
    }
    let mut have_slices = items
        .iter()
        .any(|i| matches!(i, SliceItem::Slice(_) | SliceItem::Ellipsis));
    let mut result: Vec<SliceItem> = Vec::with_capacity(ndim.max(items.len()));
    match release {
        Release::Cython3_0 => {
            result.resize(ndim, SliceItem::Slice(Slice::FULL));
            let n = ndim as isize;
            let mut idx: isize = 0;
            let mut seen = false;
            for item in items {
                match item {
                    SliceItem::Ellipsis => {
                        if !seen {
                            idx += n - items.len() as isize;
                            seen = true;
                        }
                    }
                    SliceItem::NewAxis => return Err(none_type()),
                    _ => {
                        // `result[idx] = item`: Python list assignment.
                        let j = if idx < 0 { idx + n } else { idx };
                        if j < 0 || j >= n {
                            return Err(Error::list_assignment_out_of_range());
                        }
                        result[j as usize] = *item;
                    }
                }
                idx += 1;
            }
            // `have_slices or nslices`, with nslices = ndim - idx (truthy when negative).
            if idx != n {
                have_slices = true;
            }
        }
        Release::Cython3_3 => {
            if let Some(first) = items.iter().position(|i| *i == SliceItem::Ellipsis) {
                result.resize(ndim, SliceItem::Slice(Slice::FULL));
                // Python list assignment: negative indices count from the end.
                let assign = |result: &mut Vec<SliceItem>, k: isize, item| -> Result<()> {
                    let n = ndim as isize;
                    let j = if k < 0 { k + n } else { k };
                    if j < 0 || j >= n {
                        return Err(Error::list_assignment_out_of_range());
                    }
                    result[j as usize] = item;
                    Ok(())
                };
                for (k, item) in items[..first].iter().enumerate() {
                    assign(&mut result, k as isize, *item)?;
                }
                let from_ellipsis = (items.len() - first) as isize;
                let ellipsis_end = ndim as isize - from_ellipsis;
                for k in 1..from_ellipsis {
                    let item = items[first + k as usize];
                    if item != SliceItem::Ellipsis {
                        assign(&mut result, ellipsis_end + k, item)?;
                    }
                }
            } else {
                result.extend_from_slice(items);
                if ndim > items.len() || (bare && ndim > 1) {
                    have_slices = true;
                    result.resize(ndim.max(items.len()), SliceItem::Slice(Slice::FULL));
                }
            }
        }
        Release::Cython0_29 => {
            let mut seen = false;
            for item in items {
                if *item == SliceItem::Ellipsis {
                    if !seen {
                        let n = ndim as isize - items.len() as isize + 1;
                        for _ in 0..n.max(0) {
                            result.push(SliceItem::Slice(Slice::FULL));
                        }
                        seen = true;
                    } else {
                        result.push(SliceItem::Slice(Slice::FULL));
                    }
                } else {
                    result.push(*item);
                }
            }
            if result.len() != ndim {
                // `nslices = ndim - len(result)` is truthy even when negative.
                have_slices = true;
                while result.len() < ndim {
                    result.push(SliceItem::Slice(Slice::FULL));
                }
            }
        }
    }
    // More items than dimensions: Cython walks the items in order and reads entry `ndim` of
    // the shape, strides and suboffsets at the first item past the dimensions (see the
    // function's docs). The walks below stop there.
    let surplus = result.len() > ndim;
    if !have_slices {
        // `get_item_pointer`: `pybuffer_index` per item, dimension 0 first.
        let idx: Vec<isize> = result
            .iter()
            .map(|i| match i {
                SliceItem::Index(i) => *i,
                _ => 0,
            })
            .collect();
        if ndim == 0 && !idx.is_empty() {
            return pybuffer_index_0d(src, &idx).map(ObjectItem::Element);
        }
        if surplus {
            pybuffer_index_all(src, &idx[..ndim], &mem)?;
            return Err(Error::undefined(format_args!(
                "indexing a {ndim}-dimensional memoryview with {} indices reads the shape, \
                 strides and suboffsets of dimension {ndim}, past the view's dimensions \
                 (uninitialised or out-of-bounds memory)",
                idx.len()
            )));
        }
        return pybuffer_index_all(src, &idx, &mem).map(ObjectItem::Element);
    }
    if ndim == 0 {
        // `memview_slice` starts with `assert memview.view.ndim > 0`.
        return Err(Error::undefined(
            "slicing a 0-dimensional memoryview fails Cython's `assert memview.view.ndim > 0` \
             (an AssertionError), or, with assertions disabled, reads the shape of dimension 0, \
             which the view does not have",
        ));
    }
    let mut expanded = ExpandedItems::new();
    // `memview_slice` processes the items in order; those past the dimensions are reached
    // only if all below succeed.
    for item in &result[..result.len().min(ndim)] {
        expanded.push(match *item {
            SliceItem::Index(i) => Expanded::Index(i),
            SliceItem::Slice(s) => Expanded::Slice(s),
            SliceItem::NewAxis | SliceItem::Ellipsis => Expanded::Slice(Slice::FULL),
        })?;
    }
    let mut dst = MemviewSlice {
        memview: src.memview,
        data: src.data,
        ..MemviewSlice::EMPTY
    };
    let (new_ndim, _, _) = slice_expanded(
        src,
        &mut dst,
        expanded.as_slice().iter().copied(),
        semantics,
        &mem,
        false,
    )?;
    if surplus {
        return Err(Error::undefined(format_args!(
            "slicing a {ndim}-dimensional memoryview with {} items reads the shape, strides \
             and suboffsets of dimension {ndim}, past the view's dimensions (uninitialised or \
             out-of-bounds memory)",
            result.len()
        )));
    }
    Ok(ObjectItem::View(dst, new_ndim))
}

/// `pybuffer_index` on a 0-dimensional view, per item: the extent is `view.len // itemsize`
/// (1: one element), the stride the item size (added only for index 0: nothing moves); a
/// negative index adds `view.shape[dim]`, which a 0-d view does not have.
fn pybuffer_index_0d(src: &MemviewSlice, index: &[isize]) -> Result<*mut u8> {
    for (dim, &i) in index.iter().enumerate() {
        if i < 0 {
            return Err(Error::undefined(format_args!(
                "a negative index on a 0-dimensional memoryview reads the shape of dimension \
                 {dim}, which the view does not have"
            )));
        }
        if i >= 1 {
            return Err(Error::buffer_access_out_of_bounds(dim));
        }
    }
    Ok(src.data)
}

/// `get_item_pointer`: `pybuffer_index` on each dimension in turn (bounds checked per
/// dimension, after the previous dimension's pointer was read).
fn pybuffer_index_all<R: ReadPointer>(
    src: &MemviewSlice,
    index: &[isize],
    mem: &R,
) -> Result<*mut u8> {
    geometry::element_address(src, index.len(), mem, |dim| {
        let extent = src.shape[dim];
        let i = geometry::wrap_index(index[dim], extent);
        if i < 0 || i >= extent {
            return Err(Error::buffer_access_out_of_bounds(dim));
        }
        Ok(i)
    })
}
