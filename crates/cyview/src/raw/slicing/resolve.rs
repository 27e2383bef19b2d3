//! Resolving one item against one dimension: an integer index with wraparound, and a slice
//! with either semantics (Cython's clamping, CPython's `PySlice_AdjustIndices`). The
//! differences between the two are tabled in the [module docs](super).

use crate::error::{Error, Result};
use crate::geometry;
use crate::items::{Semantics, Slice};

/// A slice resolved against one dimension: the selected indices are
/// `start, start + step, ..., start + (len - 1) * step`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Resolved {
    /// First selected index. For an empty result it may lie outside `0..extent`.
    pub start: isize,
    /// Number of selected indices (`>= 0`).
    pub len: isize,
    /// Distance between selected indices (never 0).
    pub step: isize,
}

/// Resolves an integer index against an extent with wraparound.
///
/// Mirrors the integer branch of `__pyx_memoryview_slice_memviewslice` and the `SliceIndex`
/// template Cython emits for `v[i, :]`; Python `range(extent)[index]`.
///
/// # Errors
///
/// `IndexError: Index out of bounds (axis {axis})` unless `-extent <= index < extent`.
#[inline]
pub fn resolve_index(index: isize, extent: isize, axis: usize) -> Result<isize> {
    let i = geometry::wrap_index(index, extent);
    if 0 <= i && i < extent {
        Ok(i)
    } else {
        Err(Error::index(format!("Index out of bounds (axis {axis})")))
    }
}

#[inline]
fn step_of(slice: Slice, axis: usize) -> Result<isize> {
    match slice.step {
        Some(0) => Err(Error::value(format!("Step may not be zero (axis {axis})"))),
        Some(step) => Ok(step),
        None => Ok(1),
    }
}

/// Resolves a slice against an extent with Cython's clamping.
///
/// Mirrors the slice branch of `__pyx_memoryview_slice_memviewslice`
/// (`MemoryView_C.c`, 3.2.5+; `MemoryView.pyx` in 0.29–3.2.4, same arithmetic): out-of-range
/// negative bounds clamp to 0 whatever the step, a start at or past the end clamps to
/// `extent - 1` for a negative step, and the length is `ceil((stop - start) / step)` in C
/// truncating arithmetic, floored at 0. Python `v[start:stop:step]` except for the cases in
/// the [module docs](super).
///
/// Arithmetic wraps on overflow where C's `Py_ssize_t` arithmetic would overflow (only
/// reachable with extents near `isize::MAX`).
///
/// # Errors
///
/// `ValueError: Step may not be zero (axis {axis})`.
#[inline]
pub fn resolve_cython(slice: Slice, extent: isize, axis: usize) -> Result<Resolved> {
    let step = step_of(slice, axis)?;
    // `negative_step` is false when the step is omitted (Cython: `have_step && step < 0`).
    let negative = step < 0;
    let start = match slice.start {
        Some(s) if s < 0 => {
            let s = s.wrapping_add(extent);
            if s < 0 {
                0
            } else {
                s
            }
        }
        Some(s) if s >= extent => {
            if negative {
                extent.wrapping_sub(1)
            } else {
                extent
            }
        }
        Some(s) => s,
        None if negative => extent.wrapping_sub(1),
        None => 0,
    };
    let stop = match slice.stop {
        Some(s) if s < 0 => {
            let s = s.wrapping_add(extent);
            if s < 0 {
                0
            } else {
                s
            }
        }
        Some(s) if s > extent => extent,
        Some(s) => s,
        None if negative => -1,
        None => extent,
    };
    // len = ceil((stop - start) / step), with C's truncating division: add one when the
    // division leaves a remainder. Where stop - start and step have opposite signs the
    // result is <= 0 either way and is floored to 0 below.
    let diff = stop.wrapping_sub(start);
    let mut len = diff.wrapping_div(step);
    if diff.wrapping_sub(step.wrapping_mul(len)) != 0 {
        len = len.wrapping_add(1);
    }
    Ok(Resolved {
        start,
        len: len.max(0),
        step,
    })
}

/// Resolves a slice against an extent with CPython's rules.
///
/// Mirrors `PySlice_Unpack` followed by `PySlice_AdjustIndices` (`Objects/sliceobject.c`);
/// Python `range(extent)[start:stop:step]`. Every selected index lies in `0..extent`.
///
/// # Errors
///
/// `ValueError: Step may not be zero (axis {axis})` — Cython's message, so that both
/// semantics report errors alike (CPython says `slice step cannot be zero`).
#[inline]
pub fn resolve_python(slice: Slice, extent: isize, axis: usize) -> Result<Resolved> {
    let mut step = step_of(slice, axis)?;
    // PySlice_Unpack: a step of PY_SSIZE_T_MIN becomes -PY_SSIZE_T_MAX so that -step fits.
    if step < -isize::MAX {
        step = -isize::MAX;
    }
    let negative = step < 0;
    let extent = extent.max(0);
    let adjust = |bound: isize| -> isize {
        if bound < 0 {
            let b = bound.wrapping_add(extent);
            if b < 0 {
                if negative {
                    -1
                } else {
                    0
                }
            } else {
                b
            }
        } else if bound >= extent {
            if negative {
                extent - 1
            } else {
                extent
            }
        } else {
            bound
        }
    };
    let start = match slice.start {
        Some(s) => adjust(s),
        None if negative => adjust(isize::MAX),
        None => 0,
    };
    let stop = match slice.stop {
        Some(s) => adjust(s),
        None if negative => adjust(isize::MIN),
        None => adjust(isize::MAX),
    };
    // start and stop now lie in -1..=extent, so these differences cannot overflow.
    let len = if negative {
        if stop < start {
            (start - stop - 1) / (-step) + 1
        } else {
            0
        }
    } else if start < stop {
        (stop - start - 1) / step + 1
    } else {
        0
    };
    Ok(Resolved { start, len, step })
}

/// Resolves a slice against an extent as Cython with this project's slice-bounds fix does.
///
/// Mirrors the slice branch of `__pyx_memoryview_slice_memviewslice` as patched by
/// `cython_patches/cython-3.3.1-slice-bounds.patch` (builds labelled `+cyview.slice1`): the
/// length is that of CPython's `PySlice_AdjustIndices` ([`resolve_python`]), so every
/// selected index lies in `0..extent`; start and step are Cython's ([`resolve_cython`]).
/// The two starts differ only where the result is empty (a start below `-extent` with a
/// negative step: Cython keeps 0, CPython takes -1), so the selection is Python's and an
/// empty result's data pointer and suboffsets stay where Cython always put them. The
/// step is kept as given (the patched C code never negates it; `PySlice_Unpack` makes
/// `isize::MIN` `-isize::MAX`). Python `v[start:stop:step]`.
///
/// # Errors
///
/// `ValueError: Step may not be zero (axis {axis})`.
#[inline]
pub fn resolve_cython_patched(slice: Slice, extent: isize, axis: usize) -> Result<Resolved> {
    let cython = resolve_cython(slice, extent, axis)?;
    let python = resolve_python(slice, extent, axis)?;
    Ok(Resolved {
        len: python.len,
        ..cython
    })
}

/// Resolves a slice with the chosen semantics.
///
/// # Errors
///
/// As [`resolve_cython`](super::resolve_cython) / [`resolve_python`] /
/// [`resolve_cython_patched`].
#[inline]
pub fn resolve(slice: Slice, extent: isize, axis: usize, semantics: Semantics) -> Result<Resolved> {
    match semantics {
        Semantics::Cython => resolve_cython(slice, extent, axis),
        Semantics::Python => resolve_python(slice, extent, axis),
        Semantics::CythonPatched => resolve_cython_patched(slice, extent, axis),
    }
}
