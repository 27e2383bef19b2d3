//! [`check_within`]: every element of a slice is an element of a trusted source geometry,
//! shown by a verified witness per segment.

use super::{budget_error, check_ndim_limit};
use crate::abi::{MemviewSlice, MAX_DIMS};
use crate::error::{Error, Result};
use crate::memory::ReadPointer;

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
