//! Compiled slicing `v[items]` of a typed memoryview: the code Cython generates
//! (`generate_buffer_slice_code`), which calls `__pyx_memoryview_slice_memviewslice` per
//! dimension, with its indirect-dimension bookkeeping.

use super::element::element_ptr;
use super::expand::{expand, Expanded};
use super::resolve::{resolve, resolve_index, Resolved};
use crate::abi::{MemviewSlice, MAX_DIMS};
use crate::error::{Error, Result};
use crate::items::{Semantics, SliceItem};
use crate::memory::ReadPointer;

/// Slices `src` (which has `ndim` dimensions) with `items`, returning the new slice and its
/// number of dimensions.
///
/// Mirrors the code Cython generates for `v[items]` on a typed memoryview
/// (`generate_buffer_slice_code` with the `SimpleSlice`/`ToughSlice`/`SliceIndex` templates,
/// which call `__pyx_memoryview_slice_memviewslice`) with [`Semantics::Cython`](crate::Semantics::Cython)
/// ([`Semantics::CythonPatched`](crate::Semantics::CythonPatched) for a Cython build with the slice-bounds fix); NumPy
/// `a[items]` with [`Semantics::Python`](crate::Semantics::Python). Both semantics keep Cython's bookkeeping for
/// indirect dimensions: once a dimension with a suboffset has been sliced, later offsets go
/// into that dimension's suboffset instead of the data pointer, and indexing an indirect
/// dimension follows its pointer only if no dimension was kept before it.
///
/// The result shares `src.memview` (no acquisition is taken). Entries beyond the result's
/// ndim are zero, as in Cython's zero-initialised destination slice. When every source
/// dimension is indexed and no new axis is given, Cython compiles an element access
/// instead: this function then returns a 0-d slice at the element, with the errors of
/// [`element_ptr`](super::element_ptr).
///
/// Pointers of indirect dimensions are read through `mem`; pass [`crate::Direct`] for
/// buffers without suboffsets.
///
/// # Errors
///
/// * `IndexError: Index out of bounds (axis {d})` for an integer index outside the extent.
/// * `ValueError: Step may not be zero (axis {d})`.
/// * `IndexError: All dimensions preceding dimension {d} must be indexed and not sliced` when
///   indexing an indirect dimension after a kept one (Cython's compiler rejects this at
///   compile time when the axis is declared indirect or generic; the message is the runtime
///   one of the Python-level memoryview).
/// * `ValueError: Cannot slice: the suboffset of indirect dimension {d} would become
///   negative ({s})`, with [`Semantics::Python`](crate::Semantics::Python) only. Offsets of dimensions sliced after a
///   kept indirect dimension go into that dimension's suboffset (the data pointer addresses
///   the pointer table, so there is nowhere else to put them); a negative sum turns the
///   dimension into a direct one by PEP 3118's convention, and the pointer table would be
///   read as elements. Cython does exactly that, for example for `v[:, 1:]` on a PIL-style
///   buffer whose indirect dimension 0 has suboffset 0 and whose dimension 1 has a negative
///   stride; [`Semantics::Cython`](crate::Semantics::Cython) (and `CythonPatched`, which leaves the bookkeeping as it is)
///   reproduces it, Python semantics refuse.
/// * The errors of [`expand`](super::expand), and those of `mem` when it refuses to read a pointer.
pub fn slice<R: ReadPointer>(
    src: &MemviewSlice,
    ndim: usize,
    items: &[SliceItem],
    semantics: Semantics,
    mem: R,
) -> Result<(MemviewSlice, usize)> {
    slice_impl(src, ndim, items, semantics, mem, true)
}

/// As [`slice()`](super::slice()), but refuses, in both semantics, a result that would address memory outside
/// the source. This is what the safe [`crate::View`] uses. Two Cython behaviours do that:
/// a slice whose C-truncating length arithmetic selects an index outside the extent (see
/// [`resolve_cython`](super::resolve_cython)), and a kept indirect dimension whose suboffset becomes negative (see
/// [`slice()`](super::slice())'s errors).
///
/// # Errors
///
/// As [`slice()`](super::slice()), plus `ValueError: Cannot slice: ...` for those two cases with
/// [`Semantics::Cython`](crate::Semantics::Cython) (only the second with `CythonPatched`).
pub fn slice_in_bounds<R: ReadPointer>(
    src: &MemviewSlice,
    ndim: usize,
    items: &[SliceItem],
    semantics: Semantics,
    mem: R,
) -> Result<(MemviewSlice, usize)> {
    slice_impl(src, ndim, items, semantics, mem, false)
}

#[inline]
fn slice_impl<R: ReadPointer>(
    src: &MemviewSlice,
    ndim: usize,
    items: &[SliceItem],
    semantics: Semantics,
    mem: R,
    exact: bool,
) -> Result<(MemviewSlice, usize)> {
    let mut dst = MemviewSlice {
        memview: src.memview,
        data: src.data,
        ..MemviewSlice::EMPTY
    };
    // Whether the refusal of a selection outside the source is needed below.
    let track_outside = !(exact && semantics != Semantics::Python);
    let n_indices = items
        .iter()
        .filter(|i| matches!(i, SliceItem::Index(_)))
        .count();
    let plain = items
        .iter()
        .all(|i| matches!(i, SliceItem::Index(_) | SliceItem::Slice(_)));
    let (new_ndim, indirect_kept, outside) = if plain
        && ndim <= MAX_DIMS
        && items.len() <= ndim
        && n_indices < ndim
        && ndim - n_indices < MAX_DIMS
    {
        // The common case, without the expansion's list: no `...` or new axis, at most
        // one item per dimension and not all of them indices. `expand` would return the
        // items themselves followed by `:` for the missing trailing dimensions (no error:
        // `ndim` and the result's ndim are within the limits checked above), so this is
        // the same walk over the same items.
        let expanded = items
            .iter()
            .map(|item| match *item {
                SliceItem::Index(i) => Expanded::Index(i),
                SliceItem::Slice(s) => Expanded::Slice(s),
                // Excluded by `plain`.
                _ => Expanded::Slice(crate::items::Slice::FULL),
            })
            .chain(core::iter::repeat_n(
                Expanded::Slice(crate::items::Slice::FULL),
                ndim - items.len(),
            ));
        slice_expanded(src, &mut dst, expanded, semantics, &mem, track_outside)?
    } else {
        let expanded = expand(items, ndim)?;
        let all_indexed = expanded
            .as_slice()
            .iter()
            .all(|e| matches!(e, Expanded::Index(_)));
        if all_indexed && ndim > 0 {
            let mut idx = [0isize; MAX_DIMS];
            for (slot, e) in idx.iter_mut().zip(expanded.as_slice()) {
                if let Expanded::Index(i) = e {
                    *slot = *i;
                }
            }
            dst.data = element_ptr(src, ndim, &idx[..ndim], mem)?;
            return Ok((dst, 0));
        }
        let items = expanded.as_slice().iter().copied();
        slice_expanded(src, &mut dst, items, semantics, &mem, track_outside)?
    };
    if exact && semantics != Semantics::Python {
        return Ok((dst, new_ndim));
    }
    // An empty result without indirect dimensions addresses nothing, now or after any
    // further slicing or indexing (indexing a direct dimension reads no pointer): it is
    // never refused for its geometry. With an indirect dimension it is checked as any
    // other: indexing that dimension later reads a pointer slot even while another
    // dimension is empty.
    if indirect_kept == 0 && dst.shape[..new_ndim].contains(&0) {
        return Ok((dst, new_ndim));
    }
    if !exact {
        if let Some(e) = outside {
            return Err(e);
        }
    }
    for d in 0..new_ndim {
        if indirect_kept & (1 << d) != 0 && dst.suboffsets[d] < 0 {
            return Err(Error::value(format!(
                "Cannot slice: the suboffset of indirect dimension {d} would become negative ({})",
                dst.suboffsets[d]
            )));
        }
    }
    Ok((dst, new_ndim))
}

/// The per-dimension loop of `memview_slice` / the compiled slicing code, on expanded items.
/// `dst` must start as a copy of `src`'s memview and data pointer. Returns the new ndim, the
/// kept indirect dimensions (bit d: result dimension d), and the refusal of the first slice
/// that selects an index outside `0..extent` (Cython's quirk), if any.
///
/// Why the result's address computation is the source's (the proof `slice_in_bounds`
/// rests on): an integer index `i` or a slice start `a` on source dimension `k` adds
/// `i * strides[k]` to the address where the source adds it: to the data pointer while no
/// kept indirect dimension precedes, else to the suboffset of the last kept indirect
/// dimension, which the source adds right after reading that dimension's pointer (so later
/// offsets commute into it). An indexed indirect dimension reads its pointer now, and is
/// only allowed before any kept dimension. A kept dimension's stride is `step * strides[k]`.
/// So result element `(j..)` is source element `(a_k + j_d * step_d ..)`, in bounds when
/// every selection is, and as long as no kept indirect suboffset turned negative (which
/// would make it direct).
///
/// With `track_outside` false the third result is always `None` (the check is skipped).
#[inline]
pub(super) fn slice_expanded<R: ReadPointer>(
    src: &MemviewSlice,
    dst: &mut MemviewSlice,
    items: impl IntoIterator<Item = Expanded>,
    semantics: Semantics,
    mem: &R,
    track_outside: bool,
) -> Result<(usize, u32, Option<Error>)> {
    let mut outside = None;
    // suboffset_dim: the last kept dimension that is indirect, where later offsets must go.
    let mut suboffset_dim: Option<usize> = None;
    // Bit d set: result dimension d is a kept indirect dimension.
    let mut indirect_kept = 0u32;
    let mut new_ndim = 0usize;
    let mut dim = 0usize;
    for item in items {
        let (start, stride, suboffset) = match item {
            Expanded::NewAxis => {
                dst.shape[new_ndim] = 1;
                dst.strides[new_ndim] = 0;
                dst.suboffsets[new_ndim] = -1;
                new_ndim += 1;
                continue;
            }
            Expanded::Index(i) => {
                let start = resolve_index(i, src.shape[dim], dim)?;
                (start, src.strides[dim], src.suboffsets[dim])
            }
            Expanded::Slice(s) => {
                let r = resolve(s, src.shape[dim], dim, semantics)?;
                if track_outside && outside.is_none() {
                    outside = check_selection(r, src.shape[dim], dim).err();
                }
                let (stride, suboffset) = (src.strides[dim], src.suboffsets[dim]);
                dst.strides[new_ndim] = stride.wrapping_mul(r.step);
                dst.shape[new_ndim] = r.len;
                dst.suboffsets[new_ndim] = suboffset;
                (r.start, stride, suboffset)
            }
        };
        // Add the offset to the data pointer, or to the suboffset of the last kept indirect
        // dimension (the data pointer then addresses that dimension's pointer table).
        let offset = start.wrapping_mul(stride);
        match suboffset_dim {
            None => dst.data = dst.data.wrapping_offset(offset),
            Some(d) => dst.suboffsets[d] = dst.suboffsets[d].wrapping_add(offset),
        }
        if suboffset >= 0 {
            if let Expanded::Index(_) = item {
                if new_ndim != 0 {
                    return Err(Error::index(format!(
                        "All dimensions preceding dimension {dim} must be indexed and not sliced"
                    )));
                }
                dst.data = mem.read_pointer(dst.data)?.wrapping_offset(suboffset);
            } else {
                suboffset_dim = Some(new_ndim);
                indirect_kept |= 1 << new_ndim;
            }
        }
        if !matches!(item, Expanded::Index(_)) {
            new_ndim += 1;
        }
        dim += 1;
    }
    Ok((new_ndim, indirect_kept, outside))
}

/// Refuses a resolved slice that selects an index outside `0..extent`.
fn check_selection(r: Resolved, extent: isize, axis: usize) -> Result<()> {
    if r.len == 0 {
        return Ok(());
    }
    let last = r.start as i128 + (r.len as i128 - 1) * r.step as i128;
    let inside = |i: i128| 0 <= i && i < extent as i128;
    if inside(r.start as i128) && inside(last) {
        Ok(())
    } else {
        Err(Error::value(format!(
            "Cannot slice: Cython's slice of axis {axis} (extent {extent}) selects {} index(es) from {} by {}, outside the buffer",
            r.len, r.start, r.step
        )))
    }
}
