//! The checks Cython applies when it acquires a buffer into a typed memoryview, and the
//! slice it then builds.
//!
//! Mirrors the pure parts of `__Pyx_ValidateAndInit_memviewslice` (`MemoryView_C.c`): the
//! number of dimensions, the item size, and — only when the buffer is not empty — the
//! per-axis stride and suboffset checks followed by the contiguity check. The format-string
//! match and the buffer request itself need Python and live in `cyview-py`.

use super::contig::is_relaxed_contig;
use crate::abi::{Access, AxisSpec, Contiguity, MemviewObject, MemviewSlice, Order, Packing};
use crate::error::{Error, Result};

/// The geometry of an exported buffer, as a `Py_buffer` describes it.
#[derive(Clone, Copy, Debug)]
pub struct BufferInfo<'a> {
    /// `buf`: the exporter's first element.
    pub buf: *mut u8,
    /// `itemsize`.
    pub itemsize: isize,
    /// `len`: the total size in bytes (`itemsize * product(shape)` for a well-formed export).
    pub len: isize,
    /// `shape[..ndim]`; its length is the buffer's ndim.
    pub shape: &'a [isize],
    /// `strides[..ndim]`, or `None` when the exporter left `strides` NULL (C-contiguous).
    pub strides: Option<&'a [isize]>,
    /// `suboffsets[..ndim]`, or `None` when NULL.
    pub suboffsets: Option<&'a [isize]>,
}

impl BufferInfo<'_> {
    /// The buffer's number of dimensions.
    pub fn ndim(&self) -> usize {
        self.shape.len()
    }

    fn stride(&self, dim: usize) -> Option<isize> {
        self.strides.and_then(|s| s.get(dim).copied())
    }

    fn suboffset(&self, dim: usize) -> Option<isize> {
        self.suboffsets.and_then(|s| s.get(dim).copied())
    }
}

/// Checks the buffer's ndim against the declared one.
///
/// # Errors
///
/// `ValueError: Buffer has wrong number of dimensions (expected {expected}, got {got})`.
pub fn check_buffer_ndim(got: usize, expected: usize) -> Result<()> {
    if got == expected {
        Ok(())
    } else {
        Err(Error::value(format!(
            "Buffer has wrong number of dimensions (expected {expected}, got {got})"
        )))
    }
}

/// Checks the buffer's item size against the declared element type's.
///
/// Mirrors the item-size check of `__Pyx_ValidateAndInit_memviewslice`; `dtype_name` is
/// Cython's `__Pyx_TypeInfo.name` (`"double"`, `"int"`, a struct's name, ...).
///
/// # Errors
///
/// `ValueError: Item size of buffer (8 bytes) does not match size of 'float' (4 bytes)`,
/// with "byte" for a size of 1 (and for 0: Cython's `> 1` test).
pub fn check_itemsize(itemsize: isize, dtype_name: &str, dtype_size: usize) -> Result<()> {
    // Cython compares `(unsigned) buf->itemsize != dtype->size`: the item size is truncated
    // to 32 bits first, so an item size of 2**32 + 8 passes as 8, as in Cython.
    if itemsize as u32 as usize == dtype_size {
        return Ok(());
    }
    let plural = |n: i128| if n > 1 { "s" } else { "" };
    Err(Error::value(format!(
        "Item size of buffer ({} byte{}) does not match size of '{}' ({} byte{})",
        itemsize as usize,
        plural(itemsize as i128),
        dtype_name,
        dtype_size,
        plural(dtype_size as i128),
    )))
}

/// Mirrors `__pyx_check_strides` for one dimension.
fn check_strides(buf: &BufferInfo<'_>, dim: usize, spec: AxisSpec) -> Result<()> {
    if buf.shape[dim] <= 1 {
        return Ok(());
    }
    let not_contig =
        || Error::value("Buffer and memoryview are not contiguous in the same dimension.");
    let indirect_access = matches!(spec.access, Access::Ptr | Access::Full);
    match buf.stride(dim) {
        Some(stride) => {
            if spec.packing == Packing::Contig {
                if indirect_access {
                    if stride != core::mem::size_of::<*mut u8>() as isize {
                        return Err(Error::value(format!(
                            "Buffer is not indirectly contiguous in dimension {dim}."
                        )));
                    }
                } else if stride != buf.itemsize {
                    return Err(not_contig());
                }
            }
            // Cython: `if (stride < 0) stride = -stride; if (stride < buf->itemsize) fail`.
            if spec.packing == Packing::Follow && stride.wrapping_abs() < buf.itemsize {
                return Err(not_contig());
            }
        }
        None => {
            if spec.packing == Packing::Contig && dim + 1 != buf.ndim() {
                return Err(Error::value(format!(
                    "C-contiguous buffer is not contiguous in dimension {dim}"
                )));
            } else if spec.access == Access::Ptr {
                return Err(Error::value(format!(
                    "C-contiguous buffer is not indirect in dimension {dim}"
                )));
            } else if buf.suboffsets.is_some() {
                return Err(Error::value("Buffer exposes suboffsets but no strides"));
            }
        }
    }
    Ok(())
}

/// Mirrors `__pyx_check_suboffsets` for one dimension.
fn check_suboffsets(buf: &BufferInfo<'_>, dim: usize, spec: AxisSpec) -> Result<()> {
    match spec.access {
        Access::Direct if buf.suboffset(dim).is_some_and(|s| s >= 0) => Err(Error::value(format!(
            "Buffer not compatible with direct access in dimension {dim}."
        ))),
        Access::Ptr if buf.suboffset(dim).is_none_or(|s| s < 0) => Err(Error::value(format!(
            "Buffer is not indirectly accessible in dimension {dim}."
        ))),
        _ => Ok(()),
    }
}

/// Mirrors `__pyx_verify_contig`: the relaxed contiguity check (dimensions of extent <= 1
/// may have any stride).
fn verify_contig(buf: &BufferInfo<'_>, strides: &[isize], contiguity: Contiguity) -> Result<()> {
    let (order, message) = match contiguity {
        Contiguity::None => return Ok(()),
        Contiguity::Fortran => (Order::Fortran, "Buffer not fortran contiguous."),
        Contiguity::C => (Order::C, "Buffer not C contiguous."),
    };
    // Cython multiplies the extents first and the item size last (`stride * itemsize`);
    // in wrapping arithmetic that is the same product as starting from the item size.
    if is_relaxed_contig(buf.shape, &strides[..buf.ndim()], buf.itemsize, order) {
        Ok(())
    } else {
        Err(Error::value(message))
    }
}

/// The per-axis and contiguity checks of `__Pyx_ValidateAndInit_memviewslice`, in Cython's
/// order: only if `buf.len > 0`, for each axis its strides then its suboffsets; then, if the
/// buffer has strides, the contiguity (`c_or_f_flag`).
///
/// `specs` has one entry per declared axis and must have the buffer's ndim (check it first
/// with [`check_buffer_ndim`]).
///
/// # Errors
///
/// `ValueError` with Cython's message: `Buffer and memoryview are not contiguous in the same
/// dimension.`, `Buffer is not indirectly contiguous in dimension {d}.`, `C-contiguous buffer
/// is not contiguous in dimension {d}`, `C-contiguous buffer is not indirect in dimension
/// {d}`, `Buffer exposes suboffsets but no strides`, `Buffer not compatible with direct
/// access in dimension {d}.`, `Buffer is not indirectly accessible in dimension {d}.`,
/// `Buffer not C contiguous.`, `Buffer not fortran contiguous.`; and
/// `Buffer has wrong number of dimensions ...` if `specs` and the buffer disagree.
pub fn check_axes(buf: &BufferInfo<'_>, specs: &[AxisSpec], contiguity: Contiguity) -> Result<()> {
    check_buffer_ndim(buf.ndim(), specs.len())?;
    if buf.strides.is_some_and(|s| s.len() < buf.ndim())
        || buf.suboffsets.is_some_and(|s| s.len() < buf.ndim())
    {
        return Err(Error::value("strides or suboffsets shorter than shape"));
    }
    if buf.len > 0 {
        for (dim, &spec) in specs.iter().enumerate() {
            check_strides(buf, dim, spec)?;
            check_suboffsets(buf, dim, spec)?;
        }
        if let Some(strides) = buf.strides {
            verify_contig(buf, strides, contiguity)?;
        }
    }
    Ok(())
}

/// Builds the slice Cython initialises from an accepted buffer.
///
/// Mirrors `__Pyx_init_memviewslice`: strides copied from the buffer, or computed
/// C-contiguous from the item size when the exporter gave none; suboffsets copied, or -1.
/// The acquisition-count bookkeeping of that function is `cyview-py`'s business; here
/// `memview` is only stored.
///
/// # Errors
///
/// `ValueError` when the buffer has more than [`crate::MAX_DIMS`] dimensions or short
/// strides/suboffsets.
pub fn init_slice(buf: &BufferInfo<'_>, memview: *mut MemviewObject) -> Result<MemviewSlice> {
    let ndim = buf.ndim();
    crate::geometry::check_ndim_limit(ndim)?;
    let mut slice = MemviewSlice {
        memview,
        data: buf.buf,
        ..MemviewSlice::EMPTY
    };
    match buf.strides {
        Some(s) if s.len() >= ndim => slice.strides[..ndim].copy_from_slice(&s[..ndim]),
        Some(_) => return Err(Error::value("strides or suboffsets shorter than shape")),
        None => {
            crate::geometry::contiguous_strides_wrapping(
                buf.shape,
                &mut slice.strides[..ndim],
                buf.itemsize,
                crate::abi::Order::C,
            );
        }
    }
    slice.shape[..ndim].copy_from_slice(buf.shape);
    match buf.suboffsets {
        Some(s) if s.len() >= ndim => slice.suboffsets[..ndim].copy_from_slice(&s[..ndim]),
        Some(_) => return Err(Error::value("strides or suboffsets shorter than shape")),
        None => slice.suboffsets[..ndim].fill(-1),
    }
    Ok(slice)
}

/// Whether a declaration is C or Fortran contiguous.
///
/// Mirrors `is_cf_contig` (`Compiler/MemoryView.py`): C for `[::1]` and for
/// `follow, ..., follow, contig` (all direct); Fortran for `contig, follow, ..., follow` with
/// at least two axes.
pub fn contiguity(specs: &[AxisSpec]) -> Contiguity {
    let contig = AxisSpec::CONTIG_DIRECT;
    let follow = AxisSpec::FOLLOW_DIRECT;
    match specs {
        [only] if *only == contig => Contiguity::C,
        [rest @ .., last] if *last == contig && rest.iter().all(|s| *s == follow) => Contiguity::C,
        [first, rest @ ..]
            if !rest.is_empty() && *first == contig && rest.iter().all(|s| *s == follow) =>
        {
            Contiguity::Fortran
        }
        _ => Contiguity::None,
    }
}
