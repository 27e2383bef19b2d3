//! `v.T`: Cython's `__pyx_memslice_transpose`, and the variant that keeps a view inside its
//! source.

use crate::abi::MemviewSlice;
use crate::error::{Error, Result};
use crate::geometry;

/// Reverses the order of the first `ndim` dimensions in place.
///
/// Mirrors `__pyx_memslice_transpose` (`MemoryView.pyx`), Python `v.T`. Cython passes the
/// *memoryview object's* `view.ndim` here, not the slice's: for a compiled `v[0].T` on a 3-d
/// `v` it swaps dimensions 0 and 2 of the 2-d slice, reaching into the unused third entry.
/// Pass the same `ndim` to reproduce that; pass the slice's own ndim for the correct
/// transpose. As in Cython, the middle dimension of an odd `ndim` is not checked for a
/// suboffset.
///
/// # Errors
///
/// `ValueError: Cannot transpose memoryview with indirect dimensions` when a swapped
/// dimension has a suboffset; the slice is then unchanged (Cython leaves it partly swapped,
/// but discards it).
pub fn transpose(slice: &mut MemviewSlice, ndim: usize) -> Result<()> {
    geometry::check_ndim_limit(ndim)?;
    for i in 0..ndim / 2 {
        let j = ndim - 1 - i;
        if slice.suboffsets[i] >= 0 || slice.suboffsets[j] >= 0 {
            return Err(Error::value(
                "Cannot transpose memoryview with indirect dimensions",
            ));
        }
    }
    slice.shape[..ndim].reverse();
    slice.strides[..ndim].reverse();
    Ok(())
}

/// [`transpose`] for views that must stay inside their source: also refuses an indirect
/// middle dimension of an odd `ndim > 1`, which Cython does not check. Reversing the
/// dimensions around it would move direct dimensions across its pointer table, so the
/// address computation would no longer be the source's (Cython then reads pointer slots
/// outside the table; see the finding `transpose/indirect-middle-dimension`).
///
/// # Errors
///
/// As [`transpose`], and `ValueError: Cannot transpose memoryview with indirect dimensions
/// (dimension {m}, the middle one, is indirect: Cython does not check it and would move
/// direct dimensions across its pointer table)`.
pub fn transpose_in_source(slice: &mut MemviewSlice, ndim: usize) -> Result<()> {
    geometry::check_ndim_limit(ndim)?;
    let m = ndim / 2;
    if ndim > 1 && ndim % 2 == 1 && slice.suboffsets[m] >= 0 {
        return Err(Error::value(format!(
            "Cannot transpose memoryview with indirect dimensions (dimension {m}, the middle \
             one, is indirect: Cython does not check it and would move direct dimensions \
             across its pointer table)"
        )));
    }
    transpose(slice, ndim)
}
