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
//!   exactly. `cyview-py`'s `CySlice::view` uses it for slices Cython made.
//!
//! Views derived from a checked view by [`crate::slicing::slice_in_bounds`] (both
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

/// Memory a caller knows: byte blocks elements may lie in, and pointer tables whose slots
/// hold known pointers.
pub trait KnownMemory {
    /// Whether the bytes at addresses `first..end` lie inside one known block.
    fn contains(&self, first: i128, end: i128) -> bool;

    /// The pointer stored in the pointer-table slot at address `addr`, or `None` when
    /// `addr` is not a slot of a known table.
    fn slot(&self, addr: i128) -> Option<*mut u8>;

    /// The refusal message for elements at addresses `first..end` outside this memory.
    fn outside(&self, first: i128, end: i128) -> String {
        format!("view reaches addresses {first:#x}..{end:#x} outside the memory it was given")
    }
}

/// One block of plain memory (no pointer tables): `len` bytes at `start`.
#[derive(Clone, Copy, Debug)]
pub struct Block {
    /// Address of the first byte.
    pub start: *const u8,
    /// Length in bytes.
    pub len: usize,
}

impl Block {
    /// The block of a byte slice.
    pub fn of(bytes: &[u8]) -> Self {
        Block {
            start: bytes.as_ptr(),
            len: bytes.len(),
        }
    }
}

impl KnownMemory for Block {
    fn contains(&self, first: i128, end: i128) -> bool {
        let start = self.start as usize as i128;
        start <= first && first <= end && end <= start + self.len as i128
    }

    fn slot(&self, _addr: i128) -> Option<*mut u8> {
        None
    }

    fn outside(&self, first: i128, end: i128) -> String {
        let start = self.start as usize as i128;
        format!(
            "view reaches bytes {}..{} outside the {}-byte buffer",
            first - start,
            end - start,
            self.len
        )
    }
}

/// The default step budget of the checks: generous for any real buffer (a step is one
/// pointer slot, one dimension, or one candidate tried).
pub const DEFAULT_BUDGET: u64 = 1 << 22;

fn budget_error(budget: u64) -> Error {
    Error::value(format!(
        "cannot verify the view's geometry within {budget} steps: refused"
    ))
}

/// Proves that every element of the first `ndim` dimensions of `raw` (items of `item`
/// bytes) lies inside `mem`: for a direct run of dimensions, the bytes from the lowest to
/// the highest element lie in one known block; at an indirect dimension, every pointer
/// slot the in-bounds indices reach is a slot of a known table, and the rest of the
/// geometry is proven from each pointer read (plus the suboffset) in turn.
///
/// An empty slice (some extent 0) addresses nothing and is accepted whatever its pointers.
///
/// # Errors
///
/// `ValueError` saying what was refused: more than [`MAX_DIMS`] dimensions, a negative
/// extent, elements outside the known memory (with their byte range), a pointer slot
/// outside a known table, or more than `budget` steps (each pointer slot visited counts
/// one; each run of dimensions checked counts one plus the dimensions left from its start).
pub fn check_in_memory<M: KnownMemory + ?Sized>(
    raw: &MemviewSlice,
    ndim: usize,
    item: usize,
    mem: &M,
    budget: u64,
) -> Result<()> {
    check_ndim_limit(ndim)?;
    if let Some(d) = raw.shape[..ndim].iter().position(|&n| n < 0) {
        return Err(Error::value(format!(
            "negative extent {} in dimension {d}",
            raw.shape[d]
        )));
    }
    if raw.shape[..ndim].contains(&0) {
        return Ok(());
    }
    let mut steps = budget;
    check_segment(
        raw,
        ndim,
        0,
        raw.data as usize as i128,
        item,
        mem,
        &mut steps,
    )
    .map_err(|e| e.unwrap_or_else(|| budget_error(budget)))
}

/// Checks dimensions `from..ndim` of a non-empty slice whose first element of that run
/// starts at `base`. `Err(None)` means the budget ran out.
fn check_segment<M: KnownMemory + ?Sized>(
    raw: &MemviewSlice,
    ndim: usize,
    from: usize,
    base: i128,
    item: usize,
    mem: &M,
    steps: &mut u64,
) -> core::result::Result<(), Option<Error>> {
    let take = |steps: &mut u64, n: u64| -> core::result::Result<(), Option<Error>> {
        *steps = steps.checked_sub(n).ok_or(None)?;
        Ok(())
    };
    take(steps, (ndim - from) as u64 + 1)?;
    let indirect = (from..ndim).find(|&d| raw.suboffsets[d] >= 0);
    let end = indirect.map_or(ndim, |a| a + 1);
    let (lo, hi) = direct_span(&raw.shape[from..end], &raw.strides[from..end])
        .map_err(Some)?
        .unwrap_or((0, 0));
    let Some(a) = indirect else {
        let first = base.checked_add(lo);
        let end = base
            .checked_add(hi)
            .and_then(|h| h.checked_add(item as i128));
        return match (first, end) {
            (Some(first), Some(end)) if mem.contains(first, end) => Ok(()),
            (Some(first), Some(end)) => Err(Some(Error::value(mem.outside(first, end)))),
            _ => Err(Some(beyond())),
        };
    };
    // Dimensions from..=a lead to pointer slots: visit each slot, in C order.
    let mut index = [0isize; MAX_DIMS];
    loop {
        take(steps, 1)?;
        // |index * stride| < 2**126 per dimension; the sum is checked.
        let at = (from..=a).try_fold(base, |at, d| {
            at.checked_add(index[d] as i128 * raw.strides[d] as i128)
        });
        let Some(p) = at.and_then(|at| mem.slot(at)) else {
            return Err(Some(Error::value(format!(
                "indirect dimension {a} reads a pointer at {}, which is not a slot of a known pointer table",
                at.map_or("an address beyond any memory".into(), |at| format!("{at:#x}"))
            ))));
        };
        let next = p as usize as i128 + raw.suboffsets[a] as i128;
        if a + 1 == ndim {
            let end = next + item as i128;
            if !mem.contains(next, end) {
                return Err(Some(Error::value(mem.outside(next, end))));
            }
        } else {
            check_segment(raw, ndim, a + 1, next, item, mem, steps)?;
        }
        // Odometer over from..=a.
        let mut d = a + 1;
        loop {
            if d == from {
                return Ok(());
            }
            d -= 1;
            index[d] += 1;
            if index[d] < raw.shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
}

fn beyond() -> Error {
    Error::value("view reaches beyond any memory (offsets past 2**127 bytes)")
}

/// Proves that every element of `raw` (first `ndim` dimensions) is an element of `source`
/// (first `source_ndim` dimensions), a geometry trusted to describe valid memory: the
/// `Py_buffer` a buffer exporter granted.
///
/// What is checked, exactly:
/// * only what `raw` can reach is checked: through an in-bounds index prefix, the pointer
///   slots that end a run of dimensions with no empty dimension up to them, and, when no
///   dimension is empty, the elements. An empty direct `raw` reaches nothing and is
///   accepted; an empty `raw` with indirect dimensions still reads the pointer slots before
///   its first empty dimension, which must be the source's;
/// * both geometries are cut into *segments*: runs of dimensions ending with an indirect
///   one (whose pointer is read), then a last direct run. `raw` may have fewer segments
///   than `source` (leading indirect dimensions indexed away: its data pointer then lies
///   behind one of the source's pointers), never more;
/// * per segment, a witness: for each dimension `d` of `raw`'s segment with extent `> 1`
///   and stride `≠ 0`, a dimension `k` of the source's matching segment and an integer `q`
///   with `raw.strides[d] == q * source.strides[k]`, and start indices `c[k]` with
///   `offset == Σ c[k] * source.strides[k]`, such that `c[k] + Σ q[d] * i[d]` (over the `d`
///   mapped to `k`) stays in `0..source.shape[k]` for every index. The offset of the first
///   segment is `raw.data` minus the segment's base in the source (the source's data
///   pointer, or, when `raw` skipped segments, each pointer the source's skipped segments
///   hold plus the suboffset, tried in turn); the offset of a later segment is the
///   difference of the suboffsets that end the previous segments. Such witnesses map
///   every element of `raw`, and every pointer slot it reads, to an in-bounds element or
///   slot of `source` at the same address. Every slice, integer index, new axis and
///   transpose of `source` that keeps the dereferences in order has one (its starts,
///   steps and axis order); the search finds it for every source whose strides do not
///   overlap, and tries a bounded number of candidates otherwise.
///
/// `mem` reads the source's pointer slots (only those of in-bounds index prefixes of the
/// skipped segments).
///
/// # Errors
///
/// `ValueError` saying what was refused: a negative extent, more than [`MAX_DIMS`]
/// dimensions, more indirect levels than the source, an element that is not an element
/// of the source, or a search beyond `budget` steps; the errors of `mem`.
pub fn check_within<R: ReadPointer + ?Sized>(
    source: &MemviewSlice,
    source_ndim: usize,
    raw: &MemviewSlice,
    ndim: usize,
    mem: &R,
    budget: u64,
) -> Result<()> {
    check_ndim_limit(ndim)?;
    check_ndim_limit(source_ndim)?;
    for (which, s, n) in [("view", raw, ndim), ("source", source, source_ndim)] {
        if let Some(d) = s.shape[..n].iter().position(|&e| e < 0) {
            return Err(Error::value(format!(
                "negative extent {} in dimension {d} of the {which}",
                s.shape[d]
            )));
        }
    }
    let src = segments(source, source_ndim);
    let view = segments(raw, ndim);
    // What can be reached through in-bounds index prefixes: a segment's pointer slots (and,
    // for the last segment, its elements) only when no dimension up to its end is empty.
    let reachable = |s: &MemviewSlice, n: usize| {
        let first_empty = s.shape[..n].iter().position(|&e| e == 0);
        move |seg: &core::ops::Range<usize>| first_empty.is_none_or(|j| seg.end <= j)
    };
    let (view_reaches, src_reaches) = (reachable(raw, ndim), reachable(source, source_ndim));
    if !view_reaches(&view[0]) {
        // Nothing of the view is ever read: not even its first pointer slot.
        return Ok(());
    }
    let Some(skip) = src.len().checked_sub(view.len()) else {
        return Err(Error::value(
            "the view has more indirect dimensions than the buffer: refused",
        ));
    };
    let mut steps = budget;
    let out_of_steps = || budget_error(budget);
    // Later segments: offsets are suboffset differences, the same behind every pointer.
    for j in 1..view.len() {
        if !view_reaches(&view[j]) {
            break;
        }
        if !src_reaches(&src[skip + j]) {
            return Err(not_within());
        }
        let offset = raw.suboffsets[view[j - 1].end - 1] as i128
            - source.suboffsets[src[skip + j - 1].end - 1] as i128;
        match witness(source, &src[skip + j], raw, &view[j], offset, &mut steps) {
            Some(true) => {}
            Some(false) => return Err(not_within()),
            None => return Err(out_of_steps()),
        }
    }
    // The first segment: behind the source's data pointer, or behind each pointer the
    // skipped segments lead to (read only through the source's in-bounds prefixes).
    if !src_reaches(&src[skip]) {
        return Err(not_within());
    }
    // No skipped segment (the common case): the one base is the source's data pointer,
    // without an allocation.
    let one;
    let mut all = Vec::new();
    let bases: &[*mut u8] = if skip == 0 {
        one = [source.data];
        &one
    } else {
        skipped_bases(
            source,
            &src[..skip],
            0,
            source.data,
            mem,
            &mut all,
            &mut steps,
        )?
        .ok_or_else(out_of_steps)?;
        &all
    };
    for &base in bases {
        let offset = raw.data as usize as i128 - base as usize as i128;
        match witness(source, &src[skip], raw, &view[0], offset, &mut steps) {
            Some(true) => return Ok(()),
            Some(false) => {}
            None => return Err(out_of_steps()),
        }
    }
    Err(not_within())
}

/// The dimension ranges of a geometry's segments: each ends with an indirect dimension,
/// except the last, which is direct (possibly empty).
fn segments(s: &MemviewSlice, ndim: usize) -> Segments {
    let mut out = Segments {
        ranges: core::array::from_fn(|_| 0..0),
        len: 0,
    };
    let mut start = 0;
    for d in 0..ndim.min(MAX_DIMS) {
        if s.suboffsets[d] >= 0 {
            out.ranges[out.len] = start..d + 1;
            out.len += 1;
            start = d + 1;
        }
    }
    out.ranges[out.len] = start..ndim;
    out.len += 1;
    out
}

/// At most [`MAX_DIMS`] + 1 segments, on the stack.
struct Segments {
    ranges: [core::ops::Range<usize>; MAX_DIMS + 1],
    len: usize,
}

impl core::ops::Deref for Segments {
    type Target = [core::ops::Range<usize>];

    fn deref(&self) -> &Self::Target {
        &self.ranges[..self.len]
    }
}

/// The bases of the first segment after `segs` (the pointers read at their ends, plus the
/// suboffsets), walking every in-bounds index of the source's skipped segments from `p`.
/// `Ok(None)` when out of steps.
fn skipped_bases<R: ReadPointer + ?Sized>(
    source: &MemviewSlice,
    segs: &[core::ops::Range<usize>],
    level: usize,
    p: *mut u8,
    mem: &R,
    out: &mut Vec<*mut u8>,
    steps: &mut u64,
) -> Result<Option<()>> {
    let Some(seg) = segs.get(level) else {
        out.push(p);
        return Ok(Some(()));
    };
    if seg.clone().any(|d| source.shape[d] == 0) {
        // No in-bounds prefix reaches this segment's slots.
        return Ok(Some(()));
    }
    let mut index = [0isize; MAX_DIMS];
    loop {
        let Some(left) = steps.checked_sub(1) else {
            return Ok(None);
        };
        *steps = left;
        let mut q = p;
        for d in seg.clone() {
            q = q.wrapping_offset(index[d].wrapping_mul(source.strides[d]));
        }
        let last = seg.end - 1;
        let next = mem
            .read_pointer(q)?
            .wrapping_offset(source.suboffsets[last]);
        if skipped_bases(source, segs, level + 1, next, mem, out, steps)?.is_none() {
            return Ok(None);
        }
        let mut d = seg.end;
        loop {
            if d == seg.start {
                return Ok(Some(()));
            }
            d -= 1;
            index[d] += 1;
            if index[d] < source.shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
}

/// The witness of one segment: `raw`'s dimensions `view` against the source's `src`, whose
/// first element (or slot) is `offset` bytes before `raw`'s. `None` when out of steps.
fn witness(
    source: &MemviewSlice,
    src: &core::ops::Range<usize>,
    raw: &MemviewSlice,
    view: &core::ops::Range<usize>,
    offset: i128,
    steps: &mut u64,
) -> Option<bool> {
    // The dimensions that move (extent > 1, stride != 0), on the stack.
    let moving = |s: &MemviewSlice, r: &core::ops::Range<usize>| {
        let mut out = [(0i128, 0i128); MAX_DIMS];
        let mut n = 0;
        for k in r.clone().filter(|&k| s.shape[k] > 1 && s.strides[k] != 0) {
            out[n] = (s.shape[k] as i128, s.strides[k] as i128);
            n += 1;
        }
        (out, n)
    };
    let ((src_axes, m), (axes, n)) = (moving(source, src), moving(raw, view));
    let (src_axes, axes) = (&src_axes[..m], &axes[..n]);
    let mut search = Witness {
        src: src_axes,
        axes,
        assign: [(0, 0); MAX_DIMS],
        steps: *steps,
    };
    let found = search.assign_from(0, offset);
    *steps = search.steps;
    found
}

fn not_within() -> Error {
    Error::value("the view addresses memory that is not an element of the buffer: refused")
}

/// The witness search of [`check_within`]: `assign[d] = (k, q)`.
struct Witness<'a> {
    /// `(extent, stride)` of the source dimensions that move (extent > 1, stride ≠ 0).
    src: &'a [(i128, i128)],
    /// `(extent, stride)` of the view dimensions that move.
    axes: &'a [(i128, i128)],
    assign: [(usize, i128); MAX_DIMS],
    steps: u64,
}

impl Witness<'_> {
    fn step(&mut self) -> Option<()> {
        self.steps = self.steps.checked_sub(1)?;
        Some(())
    }

    /// Assigns view dimensions `d..` to source dimensions; `None` when out of steps.
    fn assign_from(&mut self, d: usize, offset: i128) -> Option<bool> {
        if d == self.axes.len() {
            return self.solve_offset(offset);
        }
        let s = self.axes[d].1;
        for k in 0..self.src.len() {
            self.step()?;
            let t = self.src[k].1;
            if let Some(q) = exact_quotient(s, t) {
                self.assign[d] = (k, q);
                if self.assign_from(d + 1, offset)? {
                    return Some(true);
                }
            }
        }
        Some(false)
    }

    /// With the view's dimensions assigned: finds start indices `c[k]` with
    /// `Σ c[k] * t[k] == offset`, each within the range the assigned dimensions leave.
    fn solve_offset(&mut self, offset: i128) -> Option<bool> {
        let m = self.src.len();
        // Allowed start range per source dimension.
        let mut range = [(0i128, 0i128); MAX_DIMS];
        for (k, r) in range.iter_mut().enumerate().take(m) {
            let (mut below, mut above) = (0i128, 0i128);
            for (d, &(len, _)) in self.axes.iter().enumerate() {
                let (kk, q) = self.assign[d];
                if kk == k {
                    // |q| < 2**63, len - 1 < 2**63: the product fits; sums are checked.
                    let reach = q * (len - 1);
                    if reach < 0 {
                        below = below.checked_sub(reach)?;
                    } else {
                        above = above.checked_add(reach)?;
                    }
                }
            }
            let hi = self.src[k].0 - 1 - above;
            if below > hi {
                return Some(false);
            }
            *r = (below, hi);
        }
        // Larger strides first; the rest's reachable offsets bound each choice.
        let mut order = [0usize; MAX_DIMS];
        for (i, o) in order.iter_mut().enumerate().take(m) {
            *o = i;
        }
        order[..m].sort_by_key(|&k| core::cmp::Reverse(self.src[k].1.unsigned_abs()));
        // rest[j] = (min, max) of Σ c[k] t[k] over order[j..].
        let mut rest = [(0i128, 0i128); MAX_DIMS + 1];
        for j in (0..m).rev() {
            let k = order[j];
            let (a, b) = (range[k].0 * self.src[k].1, range[k].1 * self.src[k].1);
            rest[j] = (
                rest[j + 1].0.checked_add(a.min(b))?,
                rest[j + 1].1.checked_add(a.max(b))?,
            );
        }
        self.solve_from(&order[..m], &range, &rest, 0, offset)
    }

    fn solve_from(
        &mut self,
        order: &[usize],
        range: &[(i128, i128); MAX_DIMS],
        rest: &[(i128, i128); MAX_DIMS + 1],
        j: usize,
        remaining: i128,
    ) -> Option<bool> {
        self.step()?;
        if j == order.len() {
            return Some(remaining == 0);
        }
        let k = order[j];
        let t = self.src[k].1;
        let (rmin, rmax) = rest[j + 1];
        // remaining - c * t must lie in [rmin, rmax].
        let (lo_v, hi_v) = (remaining.checked_sub(rmax)?, remaining.checked_sub(rmin)?);
        let (mut lo, mut hi) = if t > 0 {
            (div_ceil(lo_v, t), div_floor(hi_v, t))
        } else {
            (div_ceil(hi_v, t), div_floor(lo_v, t))
        };
        lo = lo.max(range[k].0);
        hi = hi.min(range[k].1);
        let mut c = lo;
        while c <= hi {
            // |c| < 2**63 and |t| < 2**63: the product fits; the difference is checked.
            if self.solve_from(order, range, rest, j + 1, remaining.checked_sub(c * t)?)? {
                return Some(true);
            }
            c += 1;
        }
        Some(false)
    }
}

/// `a / b` when `b` divides `a` (`b != 0`). Strides are `isize` values: the division is
/// done in `i64` when both fit (the common case, 128-bit division is a library call).
fn exact_quotient(a: i128, b: i128) -> Option<i128> {
    match (i64::try_from(a), i64::try_from(b)) {
        (Ok(a), Ok(b)) => match (a.checked_rem(b), a.checked_div(b)) {
            (Some(0), Some(q)) => Some(i128::from(q)),
            // i64::MIN / -1: the quotient 2**63 still divides exactly.
            (None, _) | (_, None) if b == -1 => Some(-i128::from(a)),
            _ => None,
        },
        _ => (a % b == 0).then(|| a / b),
    }
}

fn div_floor(a: i128, b: i128) -> i128 {
    let q = a / b;
    if (a % b != 0) && ((a < 0) != (b < 0)) {
        q - 1
    } else {
        q
    }
}

fn div_ceil(a: i128, b: i128) -> i128 {
    let q = a / b;
    if (a % b != 0) && ((a < 0) == (b < 0)) {
        q + 1
    } else {
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_quotient_matches_i128_division() {
        let values = [
            i64::MIN as i128,
            i64::MIN as i128 + 1,
            -24,
            -8,
            -1,
            1,
            3,
            8,
            24,
            i64::MAX as i128,
        ];
        for &a in &values {
            for &b in &values {
                let want = (a % b == 0).then(|| a / b);
                assert_eq!(exact_quotient(a, b), want, "{a} / {b}");
            }
        }
    }

    #[test]
    fn floor_and_ceil_division_match_exact_rationals() {
        for a in -20i128..=20 {
            for b in [-7i128, -3, -1, 1, 2, 5] {
                let f = (a as f64 / b as f64).floor() as i128;
                let c = (a as f64 / b as f64).ceil() as i128;
                assert_eq!((div_floor(a, b), div_ceil(a, b)), (f, c), "{a} / {b}");
            }
        }
    }
}
