//! Copying: a slice into a new contiguous buffer (`v.copy()`, `v.copy_fortran()`), and
//! the contents of one slice into another with broadcasting (`dst[...] = src`).

use super::contig::{best_order, is_contig};
use crate::abi::{MemviewSlice, Order, MAX_DIMS};
use crate::contig_buffer::ContigBuffer;
use crate::error::{Error, Result};

/// Copies the first `ndim` dimensions of `src` into a new contiguous buffer.
///
/// Mirrors `__pyx_memoryview_copy_new_contig` (`v.copy()` for [`Order::C`],
/// `v.copy_fortran()` for [`Order::Fortran`]): indirect dimensions are refused first
/// (`Cannot copy memoryview slice with indirect dimensions (axis {d})`); then the new array
/// is created, so an empty source fails with `Invalid shape in axis {d}: 0.` as in Cython
/// (NumPy would return an empty copy); then the contents are copied with
/// [`copy_contents`].
///
/// # Errors
///
/// Those of [`ContigBuffer::new`] and [`copy_contents`].
///
/// # Safety
///
/// Every in-bounds element of `src` (following strides from `src.data`) must be valid for
/// reads of `itemsize` bytes for the duration of the call.
pub unsafe fn copy_new(
    src: &MemviewSlice,
    ndim: usize,
    itemsize: usize,
    order: Order,
) -> Result<ContigBuffer> {
    crate::geometry::check_ndim_limit(ndim)?;
    for i in 0..ndim {
        if src.suboffsets[i] >= 0 {
            return Err(Error::value(format!(
                "Cannot copy memoryview slice with indirect dimensions (axis {i})"
            )));
        }
    }
    let mut buffer = ContigBuffer::new(&src.shape[..ndim], itemsize, order)?;
    let dst = buffer.as_raw_mut();
    // SAFETY: the caller vouches for `src`'s elements; `dst` describes `buffer`'s own
    // storage (writable pointer), exclusively owned and not moved until the copy is done,
    // and large enough for its contiguous shape.
    unsafe { copy_contents(src, ndim, &dst, ndim, itemsize)? };
    Ok(buffer)
}

/// Prepends extent-1 dimensions so that `slice` has `ndim_other` dimensions.
/// Mirrors `broadcast_leading` (`MemoryView.pyx`), including its choice of stride for the
/// new dimensions (the old first stride; irrelevant for extent 1).
fn broadcast_leading(slice: &mut MemviewSlice, ndim: usize, ndim_other: usize) {
    let offset = ndim_other - ndim;
    for i in (0..ndim).rev() {
        slice.shape[i + offset] = slice.shape[i];
        slice.strides[i + offset] = slice.strides[i];
        slice.suboffsets[i + offset] = slice.suboffsets[i];
    }
    for i in 0..offset {
        slice.shape[i] = 1;
        slice.strides[i] = slice.strides[0];
        slice.suboffsets[i] = -1;
    }
}

/// Half-open byte range `[start, end)` covering a direct slice's elements. Mirrors
/// `__pyx_get_array_memory_extents`; an empty slice gives an empty range at `data`.
fn memory_extent(slice: &MemviewSlice, ndim: usize, itemsize: usize) -> (usize, usize) {
    let mut start = slice.data as usize;
    let mut end = start;
    for i in 0..ndim {
        let (stride, extent) = (slice.strides[i], slice.shape[i]);
        if extent == 0 {
            return (start, start);
        }
        let span = stride.wrapping_mul(extent.wrapping_sub(1));
        if stride > 0 {
            end = end.wrapping_add_signed(span);
        } else {
            start = start.wrapping_add_signed(span);
        }
    }
    (start, end.wrapping_add(itemsize))
}

/// Whether the byte ranges of two slices intersect (`__pyx_slices_overlap`).
fn slices_overlap(a: &MemviewSlice, b: &MemviewSlice, ndim: usize, itemsize: usize) -> bool {
    let (s1, e1) = memory_extent(a, ndim, itemsize);
    let (s2, e2) = memory_extent(b, ndim, itemsize);
    s1 < e2 && s2 < e1
}

/// Copies `src` into `dst` element by element with broadcasting: `dst[...] = src`.
///
/// Mirrors `memoryview_copy_contents` (`MemoryView.pyx`):
/// 1. the slice with fewer dimensions gets leading extent-1 dimensions;
/// 2. per dimension, in order: where extents differ, `src` must have extent 1 and is
///    broadcast (stride 0), else `got differing extents in dimension {i} (got {dst} and
///    {src})`; then `src` must be direct there (`Dimension {i} is not direct`);
/// 3. if the byte ranges of the two overlap, `src` is first copied to a temporary;
/// 4. elements are copied in C order, or Fortran order when both slices prefer it
///    (which decides the result when `dst` repeats an element through a zero stride).
///
/// Divergences, for safety: Cython does not check `dst` for indirect dimensions and would
/// write into its pointer table; this function refuses with `Dimension {i} is not direct`
/// for `dst` too. Cython transposes with the memoryview object's ndim (see
/// [`super::slicing::transpose`]); this function walks the slices' own dimensions.
///
/// # Errors
///
/// As above, `ValueError`; `MemoryError` when the temporary cannot be allocated.
///
/// # Safety
///
/// For the duration of the call every in-bounds element of `src` must be valid for reads of
/// `itemsize` bytes and every in-bounds element of `dst` valid for writes of `itemsize`
/// bytes, with no other thread accessing `dst`'s elements.
pub unsafe fn copy_contents(
    src: &MemviewSlice,
    src_ndim: usize,
    dst: &MemviewSlice,
    dst_ndim: usize,
    itemsize: usize,
) -> Result<()> {
    crate::geometry::check_ndim_limit(src_ndim.max(dst_ndim))?;
    let (mut src, mut dst) = (*src, *dst);
    let mut order = best_order(&src, src_ndim);
    if src_ndim < dst_ndim {
        broadcast_leading(&mut src, src_ndim, dst_ndim);
    } else if dst_ndim < src_ndim {
        broadcast_leading(&mut dst, dst_ndim, src_ndim);
    }
    let ndim = src_ndim.max(dst_ndim);
    for i in 0..ndim {
        if src.shape[i] != dst.shape[i] {
            if src.shape[i] == 1 {
                src.strides[i] = 0;
            } else {
                return Err(Error::value(format!(
                    "got differing extents in dimension {i} (got {} and {})",
                    dst.shape[i], src.shape[i]
                )));
            }
        }
        if src.suboffsets[i] >= 0 || dst.suboffsets[i] >= 0 {
            return Err(Error::value(format!("Dimension {i} is not direct")));
        }
    }
    // Nothing to copy (and the walk below would loop over the other extents, which may
    // be as large as isize::MAX, before finding the empty one).
    if dst.shape[..ndim].contains(&0) {
        return Ok(());
    }
    // (Cython then memcpy's when both slices are contiguous in the same order and nothing
    // is broadcast; the element-wise copy below gives the same bytes.)
    let itemsize_i = itemsize as isize;
    let mut temp: Option<ContigBuffer> = None;
    if slices_overlap(&src, &dst, ndim, itemsize) {
        if !is_contig(&src, ndim, itemsize_i, order) {
            order = best_order(&dst, ndim);
        }
        // copy_data_to_temp: a contiguous copy in `order`, extent-1 dims with stride 0.
        let shape: Vec<isize> = src.shape[..ndim].iter().map(|&n| n.max(1)).collect();
        let mut buffer = if ndim == 0 {
            ContigBuffer::new(&[1], itemsize, order)?
        } else {
            ContigBuffer::new(&shape, itemsize, order)?
        };
        let mut tmp = buffer.as_raw_mut();
        tmp.shape = src.shape;
        for i in 0..ndim {
            if tmp.shape[i] == 1 {
                tmp.strides[i] = 0;
            }
        }
        // SAFETY: `src` elements are readable (caller); `tmp` addresses `buffer`'s storage,
        // which holds every index of `src`'s shape and is exclusively ours.
        unsafe { copy_strided(&src, &tmp, ndim, itemsize, Order::C) };
        src = tmp;
        temp = Some(buffer);
    }
    let walk = if order == Order::Fortran && best_order(&dst, ndim) == Order::Fortran {
        Order::Fortran
    } else {
        Order::C
    };
    // SAFETY: caller's contract for `src` and `dst` elements; when they overlapped, `src`
    // now reads the temporary, which is alive until the end of this function.
    unsafe { copy_strided(&src, &dst, ndim, itemsize, walk) };
    drop(temp);
    Ok(())
}

/// Copies every element of `dst`'s shape from `src` (whose strides may be 0 where it is
/// broadcast), walking in C order or, for [`Order::Fortran`], with the dimensions reversed.
///
/// # Safety
///
/// Every in-bounds element address of `src` (for `dst`'s shape) readable and of `dst`
/// writable for `itemsize` bytes.
unsafe fn copy_strided(
    src: &MemviewSlice,
    dst: &MemviewSlice,
    ndim: usize,
    itemsize: usize,
    walk: Order,
) {
    let mut dims = [0usize; MAX_DIMS];
    for (k, d) in dims.iter_mut().enumerate().take(ndim) {
        *d = if walk == Order::Fortran {
            ndim - 1 - k
        } else {
            k
        };
    }
    if ndim == 0 {
        // SAFETY: a 0-d slice has exactly one element at `data` (caller's contract).
        unsafe { core::ptr::copy(src.data, dst.data, itemsize) };
        return;
    }
    // SAFETY: forwarded caller contract.
    unsafe { copy_dim(src.data, dst.data, src, dst, &dims[..ndim], itemsize) };
}

/// # Safety
///
/// As [`copy_strided`], for the sub-slices starting at `sp` / `dp`.
unsafe fn copy_dim(
    sp: *mut u8,
    dp: *mut u8,
    src: &MemviewSlice,
    dst: &MemviewSlice,
    dims: &[usize],
    itemsize: usize,
) {
    let d = dims[0];
    let (n, ss, ds) = (dst.shape[d], src.strides[d], dst.strides[d]);
    let (mut sp, mut dp) = (sp, dp);
    for _ in 0..n {
        if dims.len() == 1 {
            // SAFETY: `sp`/`dp` are in-bounds element addresses (caller's contract);
            // `copy` tolerates overlap.
            unsafe { core::ptr::copy(sp, dp, itemsize) };
        } else {
            // SAFETY: forwarded for the sub-slice at this index.
            unsafe { copy_dim(sp, dp, src, dst, &dims[1..], itemsize) };
        }
        sp = sp.wrapping_offset(ss);
        dp = dp.wrapping_offset(ds);
    }
}
