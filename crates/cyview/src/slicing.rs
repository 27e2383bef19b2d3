//! Indexing and slicing a [`MemviewSlice`]: the item vocabulary, the per-dimension
//! arithmetic of both semantics, Cython's index expansion, element addressing and transpose.
//!
//! # The two semantics
//!
//! * [`Semantics::Cython`] is bit-identical to Cython's `__pyx_memoryview_slice_memviewslice`
//!   (`MemoryView_C.c` since 3.2.5, `MemoryView.pyx` before; the arithmetic is the same in
//!   every release from 0.29 to 3.3) and to the code Cython's compiler emits for
//!   `v[...]` on a typed memoryview.
//! * [`Semantics::Python`] is CPython's `PySlice_Unpack` + `PySlice_AdjustIndices`, the rules
//!   of `list`, NumPy and `memoryview`. A Python-semantics slice only ever selects indices in
//!   `0..extent`.
//!
//! Integer indices, new axes, Ellipsis and the indirect-dimension bookkeeping are the same in
//! both; they differ in how a slice's start, stop and length are computed (extent `n`):
//!
//! | case | Cython | Python |
//! |---|---|---|
//! | start `< -n`, step `< 0`: `v[-100::-1]` | start clamps to 0: element 0 | nothing |
//! | stop `< -n`, step `< 0`: `v[2:-100:-1]` | stop clamps to 0: `[2, 1]` | `[2, 1, 0]` |
//! | `stop - start` and step of opposite signs, `0 < |stop - start| < |step|`: `v[1:0:2]`, `v[3:2:2]` with `n = 3`, `v[:0:-2]` with `n = 0` | one element, at `start` | nothing |
//!
//! The last row is Cython's length formula: `len = (stop - start) / step` in C's truncating
//! division, plus one whenever the division leaves a remainder, which is `ceil` only when the
//! quotient is positive. Where `start` was clamped to `n` (positive step) or is `-1` / `0` on
//! an empty axis (negative step), that one element lies **outside the source**: `v[3:2:2]`
//! on 3 elements reads index 3. On the golden vectors' exhaustive 1-d grid of direct
//! sources (extents 0-5, 4,226 slices compiled with Cython 3.3.1 and 0.29.37, same results)
//! 768 slices select differently from Python (645 more elements, 123 fewer) and 234 select
//! an element outside the source.
//!
//! A second way out of the source is the indirect bookkeeping: offsets of dimensions sliced
//! after a kept indirect dimension are added to that dimension's suboffset, which can turn
//! negative and so make the dimension direct (see [`slice()`]).
//!
//! [`slice()`] with [`Semantics::Cython`] reproduces both, bit for bit; [`slice_in_bounds`]
//! (used by the safe [`crate::View`]) refuses them; [`Semantics::Python`] never selects
//! outside `0..n` and refuses the negative suboffset.

use crate::abi::{MemviewSlice, MAX_DIMS};
use crate::error::{Error, ErrorKind, Result};
use crate::geometry::{self, check_ndim};
use crate::memory::ReadPointer;

/// A slice `start:stop:step` with each part optional, as Python's `slice` object.
///
/// Python equivalent: `slice(start, stop, step)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Slice {
    /// First index (`None`: from the start in the direction of `step`).
    pub start: Option<isize>,
    /// End index, exclusive (`None`: to the end in the direction of `step`).
    pub stop: Option<isize>,
    /// Step (`None`: 1). Zero is an error.
    pub step: Option<isize>,
}

impl Slice {
    /// The bare `:`.
    pub const FULL: Slice = Slice {
        start: None,
        stop: None,
        step: None,
    };

    /// `start:stop:step`.
    pub const fn new(start: Option<isize>, stop: Option<isize>, step: Option<isize>) -> Self {
        Slice { start, stop, step }
    }

    /// Whether this is the bare `:` (Cython's compiler emits a plain copy of the extent,
    /// stride and suboffset for it, with the same result as the general path).
    pub const fn is_full(&self) -> bool {
        self.start.is_none() && self.stop.is_none() && self.step.is_none()
    }

    /// The same slice with `step`.
    pub const fn step_by(self, step: isize) -> Self {
        Slice {
            step: Some(step),
            ..self
        }
    }
}

/// One item of an index expression `v[a, b:c, None, ...]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SliceItem {
    /// An integer index; removes the dimension. Negative counts from the end.
    Index(isize),
    /// A slice; keeps the dimension.
    Slice(Slice),
    /// `None` / `np.newaxis`: inserts a dimension of extent 1 and stride 0.
    NewAxis,
    /// `...`: the first expands to as many `:` as needed; later ones act as a single `:`.
    Ellipsis,
}

impl From<isize> for SliceItem {
    fn from(i: isize) -> Self {
        SliceItem::Index(i)
    }
}

impl From<Slice> for SliceItem {
    fn from(s: Slice) -> Self {
        SliceItem::Slice(s)
    }
}

impl From<core::ops::Range<isize>> for SliceItem {
    fn from(r: core::ops::Range<isize>) -> Self {
        SliceItem::Slice(Slice::new(Some(r.start), Some(r.end), None))
    }
}

impl From<core::ops::RangeFrom<isize>> for SliceItem {
    fn from(r: core::ops::RangeFrom<isize>) -> Self {
        SliceItem::Slice(Slice::new(Some(r.start), None, None))
    }
}

impl From<core::ops::RangeTo<isize>> for SliceItem {
    fn from(r: core::ops::RangeTo<isize>) -> Self {
        SliceItem::Slice(Slice::new(None, Some(r.end), None))
    }
}

impl From<core::ops::RangeFull> for SliceItem {
    fn from(_: core::ops::RangeFull) -> Self {
        SliceItem::Slice(Slice::FULL)
    }
}

/// Builds a `[SliceItem; N]` with Python-like syntax.
///
/// Each item is an integer expression, a range (`a..b`, `a..`, `..b`, `..`) optionally
/// followed by `;step`, `NewAxis` or `Ellipsis`. Ranges are half-open like Python slices;
/// their bounds may be negative.
///
/// ```
/// use cyview::{s, SliceItem, Slice};
/// // Python: v[1, 2:5, ::-1, None, ...]
/// let items = s![1, 2..5, ..;-1, NewAxis, Ellipsis];
/// assert_eq!(items[2], SliceItem::Slice(Slice::new(None, None, Some(-1))));
/// assert_eq!(items[3], SliceItem::NewAxis);
/// ```
#[macro_export]
macro_rules! s {
    (@acc [$($done:expr,)*]) => { [$($done,)*] };
    (@acc [$($done:expr,)*] NewAxis $(, $($rest:tt)*)?) => {
        $crate::s!(@acc [$($done,)* $crate::SliceItem::NewAxis,] $($($rest)*)?)
    };
    (@acc [$($done:expr,)*] Ellipsis $(, $($rest:tt)*)?) => {
        $crate::s!(@acc [$($done,)* $crate::SliceItem::Ellipsis,] $($($rest)*)?)
    };
    (@acc [$($done:expr,)*] .. ; $step:expr $(, $($rest:tt)*)?) => {
        $crate::s!(@acc [$($done,)* $crate::SliceItem::Slice($crate::Slice::new(None, None, Some($step))),] $($($rest)*)?)
    };
    (@acc [$($done:expr,)*] .. $(, $($rest:tt)*)?) => {
        $crate::s!(@acc [$($done,)* $crate::SliceItem::Slice($crate::Slice::FULL),] $($($rest)*)?)
    };
    // Python bounds such as `8..-100;-3` are "reversed" Rust ranges on purpose.
    (@acc [$($done:expr,)*] $r:expr ; $step:expr $(, $($rest:tt)*)?) => {
        $crate::s!(@acc [$($done,)* {
            #[allow(clippy::reversed_empty_ranges)]
            let item = $crate::slicing::SliceItem::from($r);
            item.with_step($step)
        },] $($($rest)*)?)
    };
    (@acc [$($done:expr,)*] $r:expr $(, $($rest:tt)*)?) => {
        $crate::s!(@acc [$($done,)* {
            #[allow(clippy::reversed_empty_ranges)]
            let item = $crate::slicing::SliceItem::from($r);
            item
        },] $($($rest)*)?)
    };
    ($($t:tt)*) => { $crate::s!(@acc [] $($t)*) };
}

impl SliceItem {
    /// The item with its step replaced if it is a slice (used by [`s!`] for `a..b;step`);
    /// other items are returned unchanged.
    pub const fn with_step(self, step: isize) -> Self {
        match self {
            SliceItem::Slice(s) => SliceItem::Slice(s.step_by(step)),
            other => other,
        }
    }
}

/// Which slice arithmetic to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Semantics {
    /// Cython's own clamping, quirks included (see the [module docs](self)).
    Cython,
    /// CPython's `PySlice_AdjustIndices`.
    Python,
}

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
pub fn resolve_index(index: isize, extent: isize, axis: usize) -> Result<isize> {
    let i = geometry::wrap_index(index, extent);
    if 0 <= i && i < extent {
        Ok(i)
    } else {
        Err(Error::index(format!("Index out of bounds (axis {axis})")))
    }
}

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
/// the [module docs](self).
///
/// Arithmetic wraps on overflow where C's `Py_ssize_t` arithmetic would overflow (only
/// reachable with extents near `isize::MAX`).
///
/// # Errors
///
/// `ValueError: Step may not be zero (axis {axis})`.
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

/// Resolves a slice with the chosen semantics.
///
/// # Errors
///
/// As [`resolve_cython`] / [`resolve_python`].
pub fn resolve(slice: Slice, extent: isize, axis: usize, semantics: Semantics) -> Result<Resolved> {
    match semantics {
        Semantics::Cython => resolve_cython(slice, extent, axis),
        Semantics::Python => resolve_python(slice, extent, axis),
    }
}

/// An index item after Ellipsis expansion: what Cython's code generator sees per dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Expanded {
    /// Integer index of the next source dimension.
    Index(isize),
    /// Slice of the next source dimension (`:` from an Ellipsis or a missing trailing index
    /// is `Slice(Slice::FULL)`).
    Slice(Slice),
    /// New axis; consumes no source dimension.
    NewAxis,
}

/// Fixed-capacity list of expanded items (at most `MAX_DIMS` source dimensions plus
/// `MAX_DIMS` new axes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpandedItems {
    items: [Expanded; 2 * MAX_DIMS],
    len: usize,
}

impl ExpandedItems {
    fn new() -> Self {
        ExpandedItems {
            items: [Expanded::NewAxis; 2 * MAX_DIMS],
            len: 0,
        }
    }

    fn push(&mut self, item: Expanded) -> Result<()> {
        if self.len == self.items.len() {
            return Err(too_many_dims());
        }
        self.items[self.len] = item;
        self.len += 1;
        Ok(())
    }

    /// The items.
    pub fn as_slice(&self) -> &[Expanded] {
        &self.items[..self.len]
    }
}

fn too_many_dims() -> Error {
    Error::new(
        ErrorKind::CompileError,
        "More dimensions than the maximum number of buffer dimensions were used.",
    )
}

/// Expands Ellipses and fills missing trailing dimensions with `:`.
///
/// Mirrors `unellipsify` in Cython's `Compiler/MemoryView.py` plus the checks of
/// `MemoryViewIndexNode.analyse_types`: the first Ellipsis becomes
/// `ndim - n_indices + 1` full slices, where `n_indices` counts every item but new axes
/// (later Ellipses included); each later Ellipsis becomes one full slice; missing trailing
/// dimensions become full slices. Python/NumPy: `v[..., 0]`. The count of source
/// dimensions is checked *after* expansion, as Cython does: `v[..., a:b]` on a 1-d view
/// expands the Ellipsis to nothing and is accepted.
///
/// # Errors
///
/// [`ErrorKind::CompileError`] when more items than `ndim` address source dimensions, or
/// when the result would have [`MAX_DIMS`] (8) dimensions or more (Cython: `More dimensions
/// than the maximum number of buffer dimensions were used.`); `ValueError` when `ndim`
/// exceeds [`MAX_DIMS`].
pub fn expand(items: &[SliceItem], ndim: usize) -> Result<ExpandedItems> {
    check_ndim(ndim)?;
    let n_newaxes = items
        .iter()
        .filter(|i| matches!(i, SliceItem::NewAxis))
        .count();
    let n_indices = items.len() - n_newaxes;
    let mut out = ExpandedItems::new();
    let mut seen_ellipsis = false;
    let mut source_dims = 0usize;
    let too_many = |n: usize| {
        Error::new(
            ErrorKind::CompileError,
            format!("Too many indices specified: the memoryview has {ndim} dimensions, {n} indices given"),
        )
    };
    for item in items {
        if source_dims > MAX_DIMS {
            return Err(too_many(n_indices));
        }
        match *item {
            SliceItem::Ellipsis if !seen_ellipsis => {
                seen_ellipsis = true;
                // `[full_slice] * nslices` with nslices = ndim - n_indices + 1, which Python
                // turns into nothing when it is negative.
                for _ in 0..(ndim + 1).saturating_sub(n_indices) {
                    out.push(Expanded::Slice(Slice::FULL))?;
                    source_dims += 1;
                }
            }
            SliceItem::Ellipsis => {
                out.push(Expanded::Slice(Slice::FULL))?;
                source_dims += 1;
            }
            SliceItem::Index(i) => {
                out.push(Expanded::Index(i))
                    .map_err(|_| too_many(n_indices))?;
                source_dims += 1;
            }
            SliceItem::Slice(s) => {
                out.push(Expanded::Slice(s))
                    .map_err(|_| too_many(n_indices))?;
                source_dims += 1;
            }
            SliceItem::NewAxis => out.push(Expanded::NewAxis)?,
        }
    }
    // MemoryViewIndexNode.analyse_types checks the expanded list.
    if source_dims > ndim {
        return Err(too_many(source_dims));
    }
    while source_dims < ndim {
        out.push(Expanded::Slice(Slice::FULL))?;
        source_dims += 1;
    }
    let result_ndim = out
        .as_slice()
        .iter()
        .filter(|e| !matches!(e, Expanded::Index(_)))
        .count();
    // MemoryView.validate_axes: `len(axes) >= Options.buffer_max_dims` is an error, so a
    // result may have at most 7 dimensions.
    if result_ndim >= MAX_DIMS {
        return Err(too_many_dims());
    }
    Ok(out)
}

/// Slices `src` (which has `ndim` dimensions) with `items`, returning the new slice and its
/// number of dimensions.
///
/// Mirrors the code Cython generates for `v[items]` on a typed memoryview
/// (`generate_buffer_slice_code` with the `SimpleSlice`/`ToughSlice`/`SliceIndex` templates,
/// which call `__pyx_memoryview_slice_memviewslice`) with [`Semantics::Cython`]; NumPy
/// `a[items]` with [`Semantics::Python`]. Both semantics keep Cython's bookkeeping for
/// indirect dimensions: once a dimension with a suboffset has been sliced, later offsets go
/// into that dimension's suboffset instead of the data pointer, and indexing an indirect
/// dimension follows its pointer only if no dimension was kept before it.
///
/// The result shares `src.memview` (no acquisition is taken). Entries beyond the result's
/// ndim are zero, as in Cython's zero-initialised destination slice. When every source
/// dimension is indexed and no new axis is given, Cython compiles an element access
/// instead: this function then returns a 0-d slice at the element, with the errors of
/// [`element_ptr`].
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
///   negative ({s})`, with [`Semantics::Python`] only. Offsets of dimensions sliced after a
///   kept indirect dimension go into that dimension's suboffset (the data pointer addresses
///   the pointer table, so there is nowhere else to put them); a negative sum turns the
///   dimension into a direct one by PEP 3118's convention, and the pointer table would be
///   read as elements. Cython does exactly that, for example for `v[:, 1:]` on a PIL-style
///   buffer whose indirect dimension 0 has suboffset 0 and whose dimension 1 has a negative
///   stride; [`Semantics::Cython`] reproduces it, Python semantics refuse.
/// * The errors of [`expand`], and those of `mem` when it refuses to read a pointer.
pub fn slice<R: ReadPointer>(
    src: &MemviewSlice,
    ndim: usize,
    items: &[SliceItem],
    semantics: Semantics,
    mem: R,
) -> Result<(MemviewSlice, usize)> {
    slice_impl(src, ndim, items, semantics, mem, true)
}

/// As [`slice()`], but refuses, in both semantics, a result that would address memory outside
/// the source. This is what the safe [`crate::View`] uses. Two Cython behaviours do that:
/// a slice whose C-truncating length arithmetic selects an index outside the extent (see
/// [`resolve_cython`]), and a kept indirect dimension whose suboffset becomes negative (see
/// [`slice()`]'s errors).
///
/// # Errors
///
/// As [`slice()`], plus `ValueError: Cannot slice: ...` for those two cases with
/// [`Semantics::Cython`].
pub fn slice_in_bounds<R: ReadPointer>(
    src: &MemviewSlice,
    ndim: usize,
    items: &[SliceItem],
    semantics: Semantics,
    mem: R,
) -> Result<(MemviewSlice, usize)> {
    slice_impl(src, ndim, items, semantics, mem, false)
}

fn slice_impl<R: ReadPointer>(
    src: &MemviewSlice,
    ndim: usize,
    items: &[SliceItem],
    semantics: Semantics,
    mem: R,
    exact: bool,
) -> Result<(MemviewSlice, usize)> {
    let expanded = expand(items, ndim)?;
    let all_indexed = expanded
        .as_slice()
        .iter()
        .all(|e| matches!(e, Expanded::Index(_)));
    let mut dst = MemviewSlice {
        memview: src.memview,
        data: src.data,
        ..MemviewSlice::EMPTY
    };
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
    let (new_ndim, indirect_kept, outside) =
        slice_expanded(src, &mut dst, expanded.as_slice(), semantics, &mem)?;
    if exact && semantics == Semantics::Cython {
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
fn slice_expanded<R: ReadPointer>(
    src: &MemviewSlice,
    dst: &mut MemviewSlice,
    items: &[Expanded],
    semantics: Semantics,
    mem: &R,
) -> Result<(usize, u32, Option<Error>)> {
    let mut outside = None;
    // suboffset_dim: the last kept dimension that is indirect, where later offsets must go.
    let mut suboffset_dim: Option<usize> = None;
    // Bit d set: result dimension d is a kept indirect dimension.
    let mut indirect_kept = 0u32;
    let mut new_ndim = 0usize;
    let mut dim = 0usize;
    for item in items {
        let (start, stride, suboffset) = match *item {
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
                if outside.is_none() {
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
///   see [`slice()`]).
/// * Errors of `mem` when it refuses to read a pointer.
pub fn element_ptr<R: ReadPointer>(
    src: &MemviewSlice,
    ndim: usize,
    index: &[isize],
    mem: R,
) -> Result<*mut u8> {
    check_ndim(ndim)?;
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
        return Err(Error::index(format!(
            "Out of bounds on buffer access (axis {dim})"
        )));
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
    check_ndim(ndim)?;
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
    check_ndim(ndim)?;
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

/// Which Cython release's Python-level indexing rules to follow in [`getitem_object`]; the
/// compiled rules ([`slice()`]) are the same in every release.
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
/// [`Semantics::Cython`]), or `get_item_pointer` / `pybuffer_index` when no slice is
/// involved. It differs from the compiled path ([`slice()`]) in that:
/// * a new axis is `TypeError: Cannot index with type '<class 'NoneType'>'`;
/// * a tuple of integers only checks dimensions one by one and reports the *first* out of
///   range as `IndexError: Out of bounds on buffer access (axis {d})`;
/// * Ellipsis expansion and too many items follow the `release`'s `_unellipsify`.
///
/// `bare` says that the single item was passed alone, not in a tuple (`m[...]` returns the
/// object itself, `m[i]` on a 1-d view goes straight to `pybuffer_index`).
///
/// # Errors
///
/// As described, plus those of `__pyx_memoryview_slice_memviewslice` (see [`slice()`]).
/// When the release's expansion leaves more items than `ndim`, Cython reads and writes past
/// the slice's dimensions (its results there depend on uninitialised or out-of-bounds
/// memory, and can crash); this function refuses with `IndexError: too many indices for
/// a {ndim}-dimensional memoryview (Cython reads past the slice's dimensions here)`.
pub fn getitem_object<R: ReadPointer>(
    src: &MemviewSlice,
    ndim: usize,
    items: &[SliceItem],
    bare: bool,
    release: Release,
    mem: R,
) -> Result<ObjectItem> {
    check_ndim(ndim)?;
    let too_many = || {
        Error::index(format!(
            "too many indices for a {ndim}-dimensional memoryview (Cython reads past the slice's dimensions here)"
        ))
    };
    let none_type = || {
        Error::new(
            ErrorKind::TypeError,
            "Cannot index with type '<class 'NoneType'>'",
        )
    };
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
                            return Err(Error::index("list assignment index out of range"));
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
                        return Err(Error::index("list assignment index out of range"));
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
    if result.len() > ndim {
        return Err(too_many());
    }
    if !have_slices {
        let idx: Vec<isize> = result
            .iter()
            .map(|i| match i {
                SliceItem::Index(i) => *i,
                _ => 0,
            })
            .collect();
        return pybuffer_index_all(src, &idx, &mem).map(ObjectItem::Element);
    }
    if ndim == 0 {
        return Err(too_many());
    }
    let mut expanded = ExpandedItems::new();
    for item in &result {
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
    let (new_ndim, _, _) =
        slice_expanded(src, &mut dst, expanded.as_slice(), Semantics::Cython, &mem)?;
    Ok(ObjectItem::View(dst, new_ndim))
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
            return Err(Error::index(format!(
                "Out of bounds on buffer access (axis {dim})"
            )));
        }
        Ok(i)
    })
}
