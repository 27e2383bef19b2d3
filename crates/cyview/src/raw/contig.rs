//! Contiguity: Cython's strict `is_c_contig` / `is_f_contig`, contiguous strides and the
//! "best order" heuristic its copy routines use.
//!
//! The relaxed checks applied when a buffer is *acquired* (which skip dimensions of extent
//! <= 1 and empty buffers) are in [`super::validate`].

use crate::abi::{MemviewSlice, Order, MAX_DIMS};

/// Whether the first `ndim` dimensions are contiguous in `order` for items of `itemsize`
/// bytes.
///
/// Mirrors `__pyx_memviewslice_is_contig` (`MemoryView_C.c`), i.e. `v.is_c_contig()` /
/// `v.is_f_contig()`: strict, every dimension is checked, including dimensions of extent 0
/// or 1, so `shape (1, 3), strides (999, 8)` is not C-contiguous and `shape (0,), strides
/// (16,)` is not contiguous at all; any indirect dimension makes it false. Cython takes
/// `itemsize` from the memoryview object (`memview->view.itemsize`). NumPy's
/// `flags.c_contiguous` is more relaxed (it ignores the strides of extent-1 dimensions).
/// Returns `false` if `ndim > MAX_DIMS`.
pub fn is_contig(slice: &MemviewSlice, ndim: usize, itemsize: isize, order: Order) -> bool {
    if ndim > MAX_DIMS {
        return false;
    }
    let mut expected = itemsize;
    for i in 0..ndim {
        let d = match order {
            Order::Fortran => i,
            Order::C => ndim - 1 - i,
        };
        if slice.suboffsets[d] >= 0 || slice.strides[d] != expected {
            return false;
        }
        expected = expected.wrapping_mul(slice.shape[d]);
    }
    true
}

/// Whether `shape` with byte `strides` is contiguous in `order` for items of `itemsize`
/// bytes, ignoring the strides of dimensions of extent `<= 1`: the relaxed rule shared by
/// Cython's `__pyx_verify_contig` (acquisition, see [`super::validate::check_axes`]) and
/// CPython's `PyBuffer_IsContiguous` (which also accepts any empty buffer first). NumPy's
/// `flags.c_contiguous`. Arithmetic wraps like C's; `strides` must be as long as `shape`.
pub fn is_relaxed_contig(
    shape: &[isize],
    strides: &[isize],
    itemsize: isize,
    order: Order,
) -> bool {
    let n = shape.len();
    let mut expected = itemsize;
    for k in 0..n {
        let d = match order {
            Order::Fortran => k,
            Order::C => n - 1 - k,
        };
        if shape[d] > 1 && strides[d] != expected {
            return false;
        }
        expected = expected.wrapping_mul(shape[d]);
    }
    true
}

/// Fills `strides` with the contiguous strides for `shape` in `order`, starting from
/// `stride` (the item size), and returns the total size in bytes.
///
/// Mirrors `fill_contig_strides_array` (`MemoryView.pyx`); NumPy's strides of
/// `np.empty(shape, order=...)`. Arithmetic wraps like C's on absurd shapes.
pub fn contiguous_strides(
    shape: &[isize],
    strides: &mut [isize],
    stride: isize,
    order: Order,
) -> isize {
    crate::geometry::contiguous_strides_wrapping(shape, strides, stride, order)
}

/// The memory order in which to walk a slice: C unless the innermost non-trivial stride of
/// C order is larger (in absolute value) than that of Fortran order.
///
/// Mirrors `get_best_order` (`MemoryView.pyx`): it looks at the last dimension of extent
/// `> 1` for C and the first such dimension for Fortran; ties and all-trivial shapes give C.
pub fn best_order(slice: &MemviewSlice, ndim: usize) -> Order {
    let ndim = ndim.min(MAX_DIMS);
    let c_stride = (0..ndim)
        .rev()
        .find(|&i| slice.shape[i] > 1)
        .map_or(0, |i| slice.strides[i]);
    let f_stride = (0..ndim)
        .find(|&i| slice.shape[i] > 1)
        .map_or(0, |i| slice.strides[i]);
    if c_stride.unsigned_abs() <= f_stride.unsigned_abs() {
        Order::C
    } else {
        Order::Fortran
    }
}
