//! Element access `v[i, j]` as Cython compiles it (bounds checked, wraparound), and the
//! unchecked `__pyx_memviewslice_index_full` walk.

use crate::abi::{MemviewSlice, MAX_DIMS};
use crate::error::{Error, ErrorKind, Result};
use crate::geometry;
use crate::memory::ReadPointer;

/// Address of element `index` of `src`, with wraparound and bounds checks.
///
/// Mirrors the element access Cython compiles for `v[i, j]` with `boundscheck` and
/// `wraparound` on (`put_buffer_lookup_code` + `__Pyx_BufPtrFull`-style lookup): a negative
/// index counts from the end; every axis is checked and the error names the *last* axis
/// out of range; then `p += i * stride`, and `p = *(char **) p + suboffset` on each indirect
/// axis. NumPy `a[i, j]`.
///
/// # Errors
///
/// * `IndexError: Out of bounds on buffer access (axis {d})`.
/// * [`ErrorKind::CompileError`] when `index.len() != ndim` (Cython compiles that as a slice,
///   see [`slice()`](super::slice())).
/// * Errors of `mem` when it refuses to read a pointer.
pub fn element_ptr<R: ReadPointer>(
    src: &MemviewSlice,
    ndim: usize,
    index: &[isize],
    mem: R,
) -> Result<*mut u8> {
    geometry::check_ndim_limit(ndim)?;
    if index.len() != ndim {
        return Err(Error::new(
            ErrorKind::CompileError,
            format!(
                "element access needs exactly {ndim} indices, {} given",
                index.len()
            ),
        ));
    }
    let mut resolved = [0isize; MAX_DIMS];
    let mut failed = None;
    for (dim, (&i, slot)) in index.iter().zip(resolved.iter_mut()).enumerate() {
        let extent = src.shape[dim];
        let i = geometry::wrap_index(i, extent);
        if i < 0 || i >= extent {
            failed = Some(dim);
        }
        *slot = i;
    }
    if let Some(dim) = failed {
        return Err(Error::buffer_access_out_of_bounds(dim));
    }
    follow(src, &resolved[..ndim], mem)
}

/// Address of element `index` (already in bounds) without checks: Cython's
/// `__pyx_memviewslice_index_full` applied on each axis.
///
/// # Errors
///
/// Only those of `mem` when it refuses to read a pointer.
pub fn element_ptr_unchecked<R: ReadPointer>(
    src: &MemviewSlice,
    index: &[isize],
    mem: R,
) -> Result<*mut u8> {
    follow(src, &index[..index.len().min(MAX_DIMS)], mem)
}

fn follow<R: ReadPointer>(src: &MemviewSlice, index: &[isize], mem: R) -> Result<*mut u8> {
    geometry::element_address(src, index.len(), &mem, |d| Ok(index[d]))
}
