//! Geometry: where the elements of a slice lie, proven with overflow-free arithmetic.
//!
//! This is the one audited place of the crate's soundness argument. Every safe way to read
//! or write elements rests on one of two proofs made here:
//!
//! * [`check_in_memory`]: every element a slice addresses lies inside memory the caller
//!   knows ([`KnownMemory`]: byte blocks, and pointer tables whose every slot is known).
//!   Direct dimensions are checked by their byte span (exact: the lowest and highest
//!   element start, computed in `i128` with checked arithmetic), indirect ones by reading
//!   each pointer slot through the known table. [`crate::View`] / [`crate::ViewMut`] over
//!   Rust slices and `cyview-py`'s `RustBuffer` use it.
//! * [`check_within`]: every element of a slice is an element of a *source* geometry that is
//!   trusted to describe valid memory (a buffer exporter's `Py_buffer`). The proof is a
//!   witness: an index of the source for each element, found by search and verified
//!   exactly. `cyview-py`'s `CythonSlice::view` uses it for slices Cython made.
//!
//! Views derived from a checked view by [`crate::raw::slicing::slice_in_bounds`] (both
//! semantics), by integer indexing and by [`crate::View::t`] need no new proof: those
//! operations select only in-bounds indices of their source and keep its address
//! computation (each is documented with the argument where it is implemented).
//!
//! The other primitives every address computation of the crate shares live here too:
//! [`wrap_index`] (negative indices), [`element_address`] (the one address walker) and
//! [`contiguous_strides`] (the one contiguous-stride loop).
//!
//! Both checks count their work in steps and refuse, with a message saying so, beyond a
//! budget: the cost is bounded by the caller's budget, never by the values of the input.

use crate::abi::{MemviewSlice, Order, MAX_DIMS};
use crate::error::{Error, Result};
use crate::memory::ReadPointer;

/// The error for a number of dimensions beyond [`MAX_DIMS`].
pub fn ndim_error(ndim: usize) -> Error {
    Error::value(format!(
        "ndim {ndim} exceeds the maximum of {MAX_DIMS} dimensions"
    ))
}

/// `Ok` when `ndim <= MAX_DIMS`, else [`ndim_error`].
///
/// # Errors
///
/// `ValueError: ndim {ndim} exceeds the maximum of 8 dimensions`.
pub fn check_ndim_limit(ndim: usize) -> Result<()> {
    if ndim > MAX_DIMS {
        Err(ndim_error(ndim))
    } else {
        Ok(())
    }
}

/// Cython's wraparound: a negative index counts from the end (`i + extent`). Wrapping
/// arithmetic, so `isize::MIN` stays negative (out of bounds) instead of overflowing.
#[inline]
pub fn wrap_index(index: isize, extent: isize) -> isize {
    if index < 0 {
        index.wrapping_add(extent)
    } else {
        index
    }
}

/// The address of one element: from `raw.data`, add `index(d) * strides[d]` on each
/// dimension `d < ndim` and, on a dimension with `suboffsets[d] >= 0`, read the pointer
/// stored there (through `mem`) and add the suboffset. `index` is asked for each dimension
/// in order, after the previous dimension's pointer was read (Cython's `get_item_pointer`
/// checks bounds in that order).
///
/// Arithmetic wraps (it never panics); whether the result may be dereferenced is the
/// business of the caller's proof ([`check_in_memory`], [`check_within`]).
///
/// Mirrors `__pyx_memviewslice_index_full` / `__Pyx_BufPtrFull` applied on each axis.
///
/// # Errors
///
/// Those of `index` and of `mem`.
#[inline]
pub fn element_address<R: ReadPointer + ?Sized>(
    raw: &MemviewSlice,
    ndim: usize,
    mem: &R,
    mut index: impl FnMut(usize) -> Result<isize>,
) -> Result<*mut u8> {
    let mut p = raw.data;
    for d in 0..ndim.min(MAX_DIMS) {
        let i = index(d)?;
        p = p.wrapping_offset(i.wrapping_mul(raw.strides[d]));
        let sub = raw.suboffsets[d];
        if sub >= 0 {
            p = mem.read_pointer(p)?.wrapping_offset(sub);
        }
    }
    Ok(p)
}

/// Fills `strides` with the contiguous strides of `shape` in `order` for items of `item`
/// bytes and returns the total size in bytes, or `None` when a stride or the size overflows
/// `isize`.
///
/// Mirrors `fill_contig_strides_array` (`MemoryView.pyx`); NumPy's strides of
/// `np.empty(shape, order=...)`.
pub fn contiguous_strides(
    shape: &[isize],
    strides: &mut [isize],
    item: isize,
    order: Order,
) -> Option<isize> {
    let n = shape.len().min(strides.len());
    let mut acc = item;
    let mut step = |i: usize, acc: &mut isize| -> Option<()> {
        strides[i] = *acc;
        *acc = acc.checked_mul(shape[i])?;
        Some(())
    };
    match order {
        Order::C => (0..n).rev().try_for_each(|i| step(i, &mut acc))?,
        Order::Fortran => (0..n).try_for_each(|i| step(i, &mut acc))?,
    }
    Some(acc)
}

/// [`contiguous_strides`] with C's wrapping arithmetic, for code that must reproduce
/// Cython's own result on absurd shapes (the strides of a buffer that cannot exist).
pub fn contiguous_strides_wrapping(
    shape: &[isize],
    strides: &mut [isize],
    item: isize,
    order: Order,
) -> isize {
    let n = shape.len().min(strides.len());
    let mut acc = item;
    let mut step = |i: usize| {
        strides[i] = acc;
        acc = acc.wrapping_mul(shape[i]);
    };
    match order {
        Order::C => (0..n).rev().for_each(&mut step),
        Order::Fortran => (0..n).for_each(&mut step),
    }
    acc
}

/// The lowest and highest start offset, in bytes from the first element, of the elements
/// a direct geometry addresses. Exact (`i128`, checked); `Ok(None)` when some extent is 0.
///
/// # Errors
///
/// `ValueError` for a negative extent, or when an offset does not fit in `i128` (then it
/// is at least 2**127 bytes away: no memory holds it).
pub fn direct_span(shape: &[isize], strides: &[isize]) -> Result<Option<(i128, i128)>> {
    if let Some(d) = shape.iter().position(|&n| n < 0) {
        return Err(Error::value(format!(
            "negative extent {} in dimension {d}",
            shape[d]
        )));
    }
    if shape.contains(&0) {
        return Ok(None);
    }
    let overflow = beyond;
    let (mut lo, mut hi) = (0i128, 0i128);
    for (&n, &s) in shape.iter().zip(strides) {
        // n >= 1: (n - 1) * s fits in i128 (|.| < 2**126); sums are checked.
        let span = (n as i128 - 1) * s as i128;
        if span < 0 {
            lo = lo.checked_add(span).ok_or_else(overflow)?;
        } else {
            hi = hi.checked_add(span).ok_or_else(overflow)?;
        }
    }
    Ok(Some((lo, hi)))
}

/// The default step budget of the checks: generous for any real buffer (a step is one
/// pointer slot, one dimension, or one candidate tried).
pub const DEFAULT_BUDGET: u64 = 1 << 22;

fn budget_error(budget: u64) -> Error {
    Error::value(format!(
        "cannot verify the view's geometry within {budget} steps: refused"
    ))
}

pub(crate) fn beyond() -> Error {
    Error::value("view reaches beyond any memory (offsets past 2**127 bytes)")
}

mod in_memory;
mod within;

pub use in_memory::{check_in_memory, Block, KnownMemory};
pub use within::check_within;
