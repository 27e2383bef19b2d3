//! Stateful fuzzing of the safe view API (`View`, `ViewMut`, `ContigBuffer`): random sequences
//! of 1 to 12 safe operations over random sources, with every element address a view can
//! reach checked against the allocation it must lie in, computed without the library.
//!
//! Sources:
//! * direct: one `Vec<u64>`-backed byte allocation with guard zones on both sides, viewed with
//!   a random strided geometry (1-4 dimensions, sometimes 0 or 9; zero and negative strides;
//!   unaligned offsets; extreme extents, strides and offsets) through `View::from_bytes`,
//!   `ViewMut::from_bytes`, `View::strided`, `ViewMut::strided` or `View::from_slice`. Whether
//!   the constructor must accept is predicted from the geometry (exact `i128` span) and
//!   compared both ways; a refused geometry is recorded and another one drawn.
//! * indirect (PIL-style): a table of row pointers, sometimes a second level of tables, every
//!   table and row its own guarded allocation, 2-4 dimensions, random suboffsets, viewed with
//!   `unsafe View::from_raw` once the oracle below has proven the contract for every index.
//!
//! The oracle ([`locate`]) computes an element's address from `as_raw()` (data pointer,
//! shape, strides, suboffsets) with `i128` arithmetic, reads each pointer slot from its own
//! snapshot of the source's tables (the slot must lie inside a table allocation) and finds the
//! data or row allocation holding the element's bytes; values are decoded from the snapshot at
//! that offset. Writes (`set`, `fill`, `copy_from`) are checked once the mutable borrow has
//! ended: guard bytes untouched, only bytes of the written elements changed, and the exact
//! bytes wherever the result is determined.
//!
//! Environment (read only): `CYVIEW_FUZZ_SEQUENCES` (default 20,000), `CYVIEW_FUZZ_SEED`
//! (decimal or `0x` hex, or `random`; default a fixed seed, so that CI runs the same
//! sequences every time; printed), `CYVIEW_FUZZ_ONLY` (run only that
//! sequence index of the seed, to replay a failure), `CYVIEW_FUZZ_VERBOSE` (print each
//! operation as it runs, to replay a hang).

use std::collections::{BTreeMap, HashSet};
use std::mem::{align_of, size_of};
use std::panic::{catch_unwind, AssertUnwindSafe};

use cyview::{
    ContigBuffer, Error, ErrorKind, FromBytes, IntoBytes, MemviewSlice, Order, Semantics, Slice,
    SliceItem, View, ViewMut, MAX_DIMS,
};

/// Views with more elements than this are checked at their corners and at samples instead of
/// element by element.
const CAP: u128 = 4096;
/// Guard bytes on each side of every allocation.
const GUARD: usize = 64;
const PTR: usize = size_of::<*mut u8>();
const DEFAULT_SEQUENCES: u64 = 20_000;

const EXTREME: [isize; 14] = [
    isize::MIN,
    isize::MIN + 1,
    isize::MIN / 2,
    -(1 << 40),
    i32::MIN as isize,
    -1,
    0,
    1,
    i32::MAX as isize,
    1 << 40,
    isize::MAX / 2,
    isize::MAX / 2 + 1,
    isize::MAX - 1,
    isize::MAX,
];
const HUGE: [usize; 6] = [
    1 << 20,
    1 << 40,
    isize::MAX as usize / 2,
    isize::MAX as usize,
    isize::MAX as usize + 1,
    usize::MAX,
];

// ---------------------------------------------------------------------------------------------
// Randomness

/// SplitMix64: small, fast, and the same on every platform.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n == 0`).
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }

    /// Uniform in `0..n` (0 when `n == 0`).
    fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// Uniform in `0..=n`.
    fn upto(&mut self, n: usize) -> usize {
        self.below(n as u64 + 1) as usize
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo) as u64 + 1) as i64
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }

    fn pick<X: Copy>(&mut self, xs: &[X]) -> X {
        xs[self.index(xs.len())]
    }

    /// Uniform in `lo..=hi`, negated with probability `negative_percent`.
    fn signed(&mut self, lo: i64, hi: i64, negative_percent: u64) -> isize {
        let x = self.between(lo, hi) as isize;
        self.sign(x, negative_percent)
    }

    fn sign(&mut self, x: isize, negative_percent: u64) -> isize {
        if self.percent(negative_percent) {
            -x
        } else {
            x
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Element types

/// The element types the sequences run with: sizes 1, 2, 8 and an odd 3.
trait Elem: FromBytes + IntoBytes + PartialEq + core::fmt::Debug {
    const NAME: &'static str;
    fn decode(bytes: &[u8]) -> Self;
    fn encode(self, out: &mut [u8]);
    fn random(rng: &mut Rng) -> Self;
    fn weight(self) -> u128;
}

macro_rules! elem_int {
    ($($t:ty),*) => { $(
        impl Elem for $t {
            const NAME: &'static str = stringify!($t);
            fn decode(bytes: &[u8]) -> Self {
                <$t>::from_ne_bytes(bytes.try_into().unwrap())
            }
            fn encode(self, out: &mut [u8]) {
                out.copy_from_slice(&self.to_ne_bytes());
            }
            fn random(rng: &mut Rng) -> Self {
                rng.next() as $t
            }
            fn weight(self) -> u128 {
                self as u128
            }
        }
    )* };
}
elem_int!(u8, u16, u64);

impl Elem for [u8; 3] {
    const NAME: &'static str = "[u8; 3]";
    fn decode(bytes: &[u8]) -> Self {
        bytes.try_into().unwrap()
    }
    fn encode(self, out: &mut [u8]) {
        out.copy_from_slice(&self);
    }
    fn random(rng: &mut Rng) -> Self {
        let x = rng.next().to_ne_bytes();
        [x[0], x[1], x[2]]
    }
    fn weight(self) -> u128 {
        u128::from(self[0]) | u128::from(self[1]) << 8 | u128::from(self[2]) << 16
    }
}

// ---------------------------------------------------------------------------------------------
// Allocations with guard zones, and the oracle's snapshot of them

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// The byte range of a direct source.
    Data,
    /// A pointer table of an indirect source.
    Table,
    /// A row of an indirect source.
    Row,
}

fn guard_byte(k: usize) -> u8 {
    (k as u8).wrapping_mul(31) ^ 0xA5
}

/// `len` bytes at byte `start` of a `Vec<u64>` (so 8-aligned when `start` is), with
/// [`GUARD`] pattern bytes before and after.
struct Alloc {
    words: Vec<u64>,
    start: usize,
    len: usize,
    kind: Kind,
}

impl Alloc {
    fn new(kind: Kind, contents: &[u8], misalign: usize) -> Self {
        let total = GUARD + misalign + contents.len() + GUARD;
        let mut a = Alloc {
            words: vec![0; total.div_ceil(8)],
            start: GUARD + misalign,
            len: contents.len(),
            kind,
        };
        let (start, len) = (a.start, a.len);
        let all = a.all_mut();
        for (k, b) in all.iter_mut().enumerate() {
            *b = guard_byte(k);
        }
        all[start..start + len].copy_from_slice(contents);
        a
    }

    /// Every byte of the allocation, guards included.
    fn all(&self) -> &[u8] {
        // SAFETY: `words` owns `words.len() * 8` initialised bytes (u64s have no padding);
        // `u8` needs no alignment; the slice borrows `self`, so the Vec is neither freed,
        // reallocated nor written while it lives.
        unsafe {
            std::slice::from_raw_parts(self.words.as_ptr().cast::<u8>(), self.words.len() * 8)
        }
    }

    fn all_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `all`, borrowed exclusively through `&mut self`.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.words.as_mut_ptr().cast::<u8>(),
                self.words.len() * 8,
            )
        }
    }

    fn region(&self) -> &[u8] {
        &self.all()[self.start..self.start + self.len]
    }

    fn region_mut(&mut self) -> &mut [u8] {
        let (start, len) = (self.start, self.len);
        &mut self.all_mut()[start..start + len]
    }

    fn addr(&self) -> i128 {
        self.region().as_ptr() as usize as i128
    }

    /// The region as `T`s (it must be aligned for `T`).
    fn typed<T: Elem>(&self) -> &[T] {
        let region = self.region();
        assert_eq!(region.as_ptr() as usize % align_of::<T>(), 0);
        // SAFETY: the pointer is aligned for `T` (asserted) and the `len / size` elements lie
        // inside the region, whose bytes are initialised; `T: FromBytes` accepts every
        // initialised bit pattern; the slice borrows `self`.
        unsafe {
            std::slice::from_raw_parts(region.as_ptr().cast::<T>(), region.len() / size_of::<T>())
        }
    }

    fn typed_mut<T: Elem>(&mut self) -> &mut [T] {
        let region = self.region_mut();
        assert_eq!(region.as_ptr() as usize % align_of::<T>(), 0);
        let n = region.len() / size_of::<T>();
        // SAFETY: as in `typed`, borrowed exclusively; `T: IntoBytes` so writes of `T` leave
        // only initialised bytes behind.
        unsafe { std::slice::from_raw_parts_mut(region.as_mut_ptr().cast::<T>(), n) }
    }

    /// The first guard byte that no longer holds its pattern.
    fn broken_guard(&self) -> Option<usize> {
        let (start, end) = (self.start, self.start + self.len);
        self.all()
            .iter()
            .enumerate()
            .find(|&(k, &b)| (k < start || k >= end) && b != guard_byte(k))
            .map(|(k, _)| k)
    }
}

/// The oracle's copy of a source's allocations: address, kind and bytes of each region.
struct Block {
    addr: i128,
    kind: Kind,
    bytes: Vec<u8>,
    /// Index of the allocation in its arena.
    alloc: usize,
}

/// Where an element (or pointer slot) lies: block and byte offset in its region.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Loc {
    block: usize,
    off: usize,
}

struct Model {
    /// Sorted by address.
    blocks: Vec<Block>,
}

impl Model {
    fn of(allocs: &[Alloc]) -> Model {
        let mut blocks: Vec<Block> = allocs
            .iter()
            .enumerate()
            .map(|(alloc, a)| Block {
                addr: a.addr(),
                kind: a.kind,
                bytes: a.region().to_vec(),
                alloc,
            })
            .collect();
        blocks.sort_by_key(|b| b.addr);
        Model { blocks }
    }

    fn of_bytes(bytes: &[u8]) -> Model {
        Model {
            blocks: vec![Block {
                addr: bytes.as_ptr() as usize as i128,
                kind: Kind::Data,
                bytes: bytes.to_vec(),
                alloc: 0,
            }],
        }
    }

    /// The block holding all of `first..end`: a table when `table`, else data or a row.
    fn find(&self, first: i128, end: i128, table: bool) -> Option<Loc> {
        let k = self.blocks.partition_point(|b| b.addr <= first);
        let b = self.blocks.get(k.checked_sub(1)?)?;
        let kind_ok = (b.kind == Kind::Table) == table;
        (kind_ok && end <= b.addr + b.bytes.len() as i128).then(|| Loc {
            block: k - 1,
            off: (first - b.addr) as usize,
        })
    }

    fn value<T: Elem>(&self, loc: Loc) -> T {
        T::decode(&self.blocks[loc.block].bytes[loc.off..loc.off + size_of::<T>()])
    }
}

// ---------------------------------------------------------------------------------------------
// The oracle: addresses computed from the raw geometry, independently of the library

/// The location of element `index` of the geometry `raw` (first `ndim` dimensions), following
/// pointer slots through the model's tables. `Err` says how it leaves the source.
fn locate(
    m: &Model,
    raw: &MemviewSlice,
    ndim: usize,
    index: &[i128],
    item: usize,
) -> Result<Loc, String> {
    assert_eq!(index.len(), ndim, "oracle called with a wrong index length");
    let mut p = raw.data as usize as i128;
    for (d, &i) in index.iter().enumerate() {
        p = i
            .checked_mul(raw.strides[d] as i128)
            .and_then(|o| p.checked_add(o))
            .ok_or_else(|| format!("dimension {d}: the address overflows i128"))?;
        let sub = raw.suboffsets[d];
        if sub >= 0 {
            let slot = m
                .find(p, p.saturating_add(PTR as i128), true)
                .ok_or_else(|| {
                    format!("dimension {d}: pointer slot at {p:#x} is not inside a pointer table")
                })?;
            let bytes = &m.blocks[slot.block].bytes[slot.off..slot.off + PTR];
            p = usize::from_ne_bytes(bytes.try_into().unwrap()) as i128 + sub as i128;
        }
    }
    m.find(p, p.saturating_add(item as i128), false)
        .ok_or_else(|| {
            format!("element at {p:#x} ({item} bytes) lies outside every allocation of the source")
        })
}

fn count(shape: &[isize]) -> u128 {
    shape
        .iter()
        .fold(1u128, |a, &n| a.saturating_mul(n.max(0) as u128))
}

/// Index number `k` in C order.
fn unravel(mut k: u128, shape: &[isize]) -> Vec<i128> {
    let mut out = vec![0i128; shape.len()];
    for (o, &n) in out.iter_mut().zip(shape).rev() {
        let n = n as u128;
        *o = (k % n) as i128;
        k /= n;
    }
    out
}

/// Every index of `shape` in C order.
fn all_indices(shape: &[isize]) -> Vec<Vec<i128>> {
    (0..count(shape)).map(|k| unravel(k, shape)).collect()
}

/// Locations of every element in C order, or `None` when there are more than `cap`.
fn enumerate(
    m: &Model,
    raw: &MemviewSlice,
    ndim: usize,
    item: usize,
    cap: u128,
) -> Result<Option<Vec<Loc>>, String> {
    let shape = &raw.shape[..ndim];
    if count(shape) > cap {
        return Ok(None);
    }
    all_indices(shape)
        .iter()
        .map(|idx| locate(m, raw, ndim, idx, item).map_err(|e| format!("index {idx:?}: {e}")))
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// As [`enumerate`], and for larger views checks the corners (a direct view's address is
/// affine in the index, so its corners bound every element) or, with indirect dimensions,
/// random indices.
fn reach(
    m: &Model,
    raw: &MemviewSlice,
    ndim: usize,
    item: usize,
    rng: &mut Rng,
) -> Result<Option<Vec<Loc>>, String> {
    if let Some(locs) = enumerate(m, raw, ndim, item, CAP)? {
        return Ok(Some(locs));
    }
    let shape = &raw.shape[..ndim];
    let direct = raw.suboffsets[..ndim].iter().all(|&s| s < 0);
    let samples: Vec<Vec<i128>> = if direct {
        (0..1u32 << ndim)
            .map(|mask| {
                (0..ndim)
                    .map(|d| {
                        if mask >> d & 1 == 1 {
                            shape[d] as i128 - 1
                        } else {
                            0
                        }
                    })
                    .collect()
            })
            .collect()
    } else {
        (0..64).map(|_| random_index(rng, shape)).collect()
    };
    for idx in samples {
        locate(m, raw, ndim, &idx, item).map_err(|e| format!("index {idx:?}: {e}"))?;
    }
    Ok(None)
}

fn random_index(rng: &mut Rng, shape: &[isize]) -> Vec<i128> {
    shape.iter().map(|&n| rng.below(n as u64) as i128).collect()
}

/// Indices to compare on: all of them for small views, else random ones.
fn test_indices(rng: &mut Rng, shape: &[isize]) -> Vec<Vec<i128>> {
    if count(shape) <= CAP {
        all_indices(shape)
    } else {
        (0..64).map(|_| random_index(rng, shape)).collect()
    }
}

fn same_geometry(a: &MemviewSlice, b: &MemviewSlice, ndim: usize) -> bool {
    a.data == b.data
        && a.shape[..ndim] == b.shape[..ndim]
        && a.strides[..ndim] == b.strides[..ndim]
        && a.suboffsets[..ndim] == b.suboffsets[..ndim]
}

// ---------------------------------------------------------------------------------------------
// Independent models of the expected results

/// Whether a direct constructor must accept: `offset` and `strides` in bytes (`None` when
/// converting element counts to bytes overflows `isize`).
fn direct_accepts(
    len: usize,
    offset: Option<usize>,
    shape: &[usize],
    strides: Option<&[isize]>,
    item: usize,
) -> bool {
    let (Some(offset), Some(strides)) = (offset, strides) else {
        return false;
    };
    if shape.len() != strides.len() || shape.len() > MAX_DIMS || offset > len {
        return false;
    }
    if shape.iter().any(|&n| n > isize::MAX as usize) {
        return false;
    }
    if shape.contains(&0) {
        return true;
    }
    let (mut lo, mut hi) = (0i128, 0i128);
    for (&n, &s) in shape.iter().zip(strides) {
        let span = (n as i128 - 1) * s as i128;
        let sum = if span < 0 {
            lo.checked_add(span).map(|x| lo = x)
        } else {
            hi.checked_add(span).map(|x| hi = x)
        };
        if sum.is_none() {
            return false;
        }
    }
    let first = offset as i128 + lo;
    let end = hi.checked_add(offset as i128 + item as i128);
    first >= 0 && end.is_some_and(|end| end <= len as i128)
}

/// `View::from_slice`: the shape's product must be the slice length and its C strides fit.
fn from_slice_accepts(count: usize, shape: &[usize], item: usize) -> bool {
    if shape.len() > MAX_DIMS || shape.iter().any(|&n| n > isize::MAX as usize) {
        return false;
    }
    let product = shape.iter().try_fold(1usize, |a, &n| a.checked_mul(n));
    let strides_fit = shape
        .iter()
        .rev()
        .try_fold(item as isize, |a, &n| a.checked_mul(n as isize))
        .is_some();
    product == Some(count) && strides_fit
}

/// One dimension of a Python-semantics slice result.
#[derive(Debug)]
enum PyDim {
    New,
    Sliced {
        dim: usize,
        start: i128,
        step: i128,
        len: i128,
    },
}

/// A Python-semantics selection: the result's dimensions and the source index of each
/// integer-indexed source dimension.
#[derive(Debug)]
struct PySel {
    dims: Vec<PyDim>,
    fixed: Vec<i128>,
}

impl PySel {
    fn shape(&self) -> Vec<isize> {
        self.dims
            .iter()
            .map(|d| match d {
                PyDim::New => 1,
                PyDim::Sliced { len, .. } => *len as isize,
            })
            .collect()
    }

    fn source_index(&self, j: &[i128]) -> Vec<i128> {
        let mut idx = self.fixed.clone();
        for (r, d) in self.dims.iter().enumerate() {
            if let PyDim::Sliced {
                dim, start, step, ..
            } = *d
            {
                idx[dim] = start + j[r] * step;
            }
        }
        idx
    }
}

/// CPython's `slice.indices(n)` in `i128`: start, step, length.
fn py_indices(s: Slice, n: i128) -> (i128, i128, i128) {
    let step = s.step.unwrap_or(1) as i128;
    let (lower, upper) = if step < 0 { (-1, n - 1) } else { (0, n) };
    let clamp = |x: Option<isize>, default: i128| match x {
        None => default,
        Some(x) if x < 0 => (x as i128 + n).max(lower),
        Some(x) => (x as i128).min(upper),
    };
    let start = clamp(s.start, if step < 0 { upper } else { lower });
    let stop = clamp(s.stop, if step < 0 { lower } else { upper });
    let len = if step < 0 {
        if stop < start {
            (start - stop - 1) / -step + 1
        } else {
            0
        }
    } else if start < stop {
        (stop - start - 1) / step + 1
    } else {
        0
    };
    (start, step, len)
}

type Expected<X> = Result<X, (ErrorKind, Option<String>)>;

/// What `slice_with(items, Semantics::Python)` selects, or the error it gives: Cython's index
/// expansion (the first Ellipsis stands for `ndim - n_indices + 1` full slices, later ones
/// for one), Cython's errors, CPython's slice arithmetic. The error for a kept indirect
/// dimension whose suboffset would turn negative is not modelled (the caller allows it).
fn model_slice(shape: &[isize], subs: &[isize], items: &[SliceItem]) -> Expected<PySel> {
    enum E {
        I(isize),
        S(Slice),
        N,
    }
    let ndim = shape.len();
    let compile = (ErrorKind::CompileError, None);
    let n_new = items.iter().filter(|i| **i == SliceItem::NewAxis).count();
    let n_idx = items.len() - n_new;
    let mut exp = Vec::new();
    let mut seen = false;
    for item in items {
        match *item {
            SliceItem::Ellipsis if !seen => {
                seen = true;
                for _ in 0..(ndim + 1).saturating_sub(n_idx) {
                    exp.push(E::S(Slice::FULL));
                }
            }
            SliceItem::Ellipsis => exp.push(E::S(Slice::FULL)),
            SliceItem::Index(i) => exp.push(E::I(i)),
            SliceItem::Slice(s) => exp.push(E::S(s)),
            SliceItem::NewAxis => exp.push(E::N),
        }
    }
    let source_dims = exp.iter().filter(|e| !matches!(e, E::N)).count();
    if source_dims > ndim {
        return Err(compile);
    }
    exp.extend((source_dims..ndim).map(|_| E::S(Slice::FULL)));
    let result_ndim = exp.iter().filter(|e| !matches!(e, E::I(_))).count();
    if exp.len() > 2 * MAX_DIMS || result_ndim >= MAX_DIMS {
        return Err(compile);
    }
    let wrap = |i: isize, n: isize| {
        let i = i as i128;
        let j = if i < 0 { i + n as i128 } else { i };
        (0 <= j && j < n as i128).then_some(j)
    };
    let mut fixed = vec![0i128; ndim];
    if ndim > 0 && exp.iter().all(|e| matches!(e, E::I(_))) {
        // An element access: every axis is checked, the last one out of range is named.
        let mut bad = None;
        for (d, e) in exp.iter().enumerate() {
            if let E::I(i) = *e {
                match wrap(i, shape[d]) {
                    Some(j) => fixed[d] = j,
                    None => bad = Some(d),
                }
            }
        }
        return match bad {
            Some(d) => Err((
                ErrorKind::IndexError,
                Some(format!("Out of bounds on buffer access (axis {d})")),
            )),
            None => Ok(PySel {
                dims: Vec::new(),
                fixed,
            }),
        };
    }
    let mut dims = Vec::new();
    let mut dim = 0;
    for e in &exp {
        match *e {
            E::N => dims.push(PyDim::New),
            E::I(i) => {
                let Some(j) = wrap(i, shape[dim]) else {
                    return Err((
                        ErrorKind::IndexError,
                        Some(format!("Index out of bounds (axis {dim})")),
                    ));
                };
                if subs[dim] >= 0 && !dims.is_empty() {
                    return Err((
                        ErrorKind::IndexError,
                        Some(format!(
                            "All dimensions preceding dimension {dim} must be indexed and not sliced"
                        )),
                    ));
                }
                fixed[dim] = j;
                dim += 1;
            }
            E::S(s) => {
                if s.step == Some(0) {
                    return Err((
                        ErrorKind::ValueError,
                        Some(format!("Step may not be zero (axis {dim})")),
                    ));
                }
                let (start, step, len) = py_indices(s, shape[dim] as i128);
                dims.push(PyDim::Sliced {
                    dim,
                    start,
                    step,
                    len,
                });
                dim += 1;
            }
        }
    }
    Ok(PySel { dims, fixed })
}

/// Cython's strict `is_c_contig` / `is_f_contig` (C's wrapping products).
fn model_contig(raw: &MemviewSlice, ndim: usize, item: usize, order: Order) -> bool {
    let mut expected = item as isize;
    for k in 0..ndim {
        let d = if order == Order::C { ndim - 1 - k } else { k };
        if raw.suboffsets[d] >= 0 || raw.strides[d] != expected {
            return false;
        }
        expected = expected.wrapping_mul(raw.shape[d]);
    }
    true
}

/// The error of `v.copy(order)`, `Ok(())` when it must succeed.
fn model_copy(shape: &[isize], subs: &[isize], item: usize) -> Expected<()> {
    if let Some(d) = subs.iter().position(|&s| s >= 0) {
        return Err((
            ErrorKind::ValueError,
            Some(format!(
                "Cannot copy memoryview slice with indirect dimensions (axis {d})"
            )),
        ));
    }
    if shape.is_empty() {
        return Err((
            ErrorKind::ValueError,
            Some("Empty shape tuple for cython.array".into()),
        ));
    }
    if let Some(d) = shape.iter().position(|&n| n <= 0) {
        return Err((
            ErrorKind::ValueError,
            Some(format!("Invalid shape in axis {d}: {}.", shape[d])),
        ));
    }
    if count(shape).saturating_mul(item as u128) > isize::MAX as u128 {
        return Err((ErrorKind::MemoryError, None));
    }
    Ok(())
}

/// The error of `dst.copy_from(src)` (Cython's broadcasting rules), `None` when it must
/// succeed.
fn model_copy_from(
    dshape: &[isize],
    dsubs: &[isize],
    sshape: &[isize],
    ssubs: &[isize],
) -> Option<String> {
    let nd = dshape.len().max(sshape.len());
    let pad = |shape: &[isize], subs: &[isize]| -> (Vec<isize>, Vec<isize>) {
        let lead = nd - shape.len();
        let mut s = vec![1; lead];
        s.extend_from_slice(shape);
        let mut o = vec![-1; lead];
        o.extend_from_slice(subs);
        (s, o)
    };
    let (d, dsub) = pad(dshape, dsubs);
    let (s, ssub) = pad(sshape, ssubs);
    for i in 0..nd {
        if s[i] != d[i] && s[i] != 1 {
            return Some(format!(
                "got differing extents in dimension {i} (got {} and {})",
                d[i], s[i]
            ));
        }
        if ssub[i] >= 0 || dsub[i] >= 0 {
            return Some(format!("Dimension {i} is not direct"));
        }
    }
    None
}

/// The source index `dst[j]` reads when `src` (of `sshape`) is broadcast to `dst`.
fn broadcast_index(j: &[i128], sshape: &[isize]) -> Vec<i128> {
    let (nd, ns) = (j.len(), sshape.len());
    (0..ns)
        .map(|d| {
            if sshape[d] == 1 || d + nd < ns {
                0
            } else {
                j[d + nd - ns]
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Statistics

#[derive(Default, PartialEq, Eq, Debug)]
struct Stats {
    sequences: u64,
    ops: u64,
    /// `"op: outcome"` → count.
    outcomes: BTreeMap<String, u64>,
    /// `"constructor: outcome"` → count.
    constructors: BTreeMap<String, u64>,
}

/// Digits and hex addresses replaced by `#`, so messages group by kind.
fn normalize(msg: &str) -> String {
    let mut out = String::new();
    let mut chars = msg.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '0' && chars.peek() == Some(&'x') {
            chars.next();
            while chars.peek().is_some_and(|c| c.is_ascii_hexdigit()) {
                chars.next();
            }
            out.push('#');
        } else if c.is_ascii_digit() || (c == '-' && chars.peek().is_some_and(char::is_ascii_digit))
        {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
            out.push('#');
        } else {
            out.push(c);
        }
    }
    out
}

fn outcome_key<X>(op: &str, res: &Result<X, Error>) -> String {
    match res {
        Ok(_) => format!("{op}: ok"),
        Err(e) => format!("{op}: {:?}: {}", e.kind(), normalize(e.message())),
    }
}

impl Stats {
    fn outcome<X>(&mut self, op: &str, res: &Result<X, Error>) {
        *self.outcomes.entry(outcome_key(op, res)).or_default() += 1;
    }

    fn note(&mut self, key: String) {
        *self.outcomes.entry(key).or_default() += 1;
    }

    fn constructor<X>(&mut self, op: &str, res: &Result<X, Error>) {
        *self.constructors.entry(outcome_key(op, res)).or_default() += 1;
    }

    fn print(&self) {
        println!("  constructors (direct sources):");
        for (k, n) in &self.constructors {
            println!("    {n:>9}  {k}");
        }
        let mut per_op: BTreeMap<&str, u64> = BTreeMap::new();
        for (k, n) in &self.outcomes {
            *per_op.entry(k.split(": ").next().unwrap_or(k)).or_default() += n;
        }
        println!("  operations:");
        for (k, n) in &per_op {
            println!("    {n:>9}  {k}");
        }
        println!("  outcomes:");
        for (k, n) in &self.outcomes {
            println!("    {n:>9}  {k}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Sources

/// How the root view of a source is built.
#[derive(Clone, Debug)]
enum Root {
    /// `View::from_bytes` / `ViewMut::from_bytes` over the region.
    Bytes {
        offset: usize,
        shape: Vec<usize>,
        strides: Vec<isize>,
    },
    /// `View::strided` / `ViewMut::strided` over the region as `T`s (strides in elements).
    Strided {
        offset: usize,
        shape: Vec<usize>,
        strides: Vec<isize>,
    },
    /// `View::from_slice` / `ViewMut::from_slice` over the first `count` `T`s of the region.
    Slice { count: usize, shape: Vec<usize> },
    /// `unsafe View::from_raw` over an indirect structure of the arena.
    Raw { raw: MemviewSlice, ndim: usize },
}

/// A source: its allocations, the root view's recipe, and the oracle's snapshot.
struct Source {
    arena: Vec<Alloc>,
    root: Root,
    model: Model,
    /// Whether the sequence may borrow it mutably (`ViewMut` roots).
    mutable: bool,
    desc: String,
}

fn root_view<'m, T: Elem>(arena: &'m [Alloc], root: &Root) -> cyview::Result<View<'m, T>> {
    match root {
        Root::Bytes {
            offset,
            shape,
            strides,
        } => View::from_bytes(arena[0].region(), *offset, shape, strides),
        Root::Strided {
            offset,
            shape,
            strides,
        } => View::strided(arena[0].typed::<T>(), *offset, shape, strides),
        Root::Slice { count, shape } => View::from_slice(&arena[0].typed::<T>()[..*count], shape),
        Root::Raw { raw, ndim } => {
            // SAFETY: `raw` was built by `indirect_source` over the allocations of `arena`
            // for this `T`, and `indirect_source` checked with the oracle, for every
            // in-bounds index, that each pointer slot the index reaches lies inside a table
            // allocation of `arena` (PTR readable, initialised bytes, holding a pointer
            // derived from an allocation of `arena`) and that the element lies inside a row
            // allocation (`size_of::<T>()` initialised bytes; `T: FromBytes` accepts any).
            // `arena` is borrowed shared for `'m`, the allocations' heap buffers never move
            // or get freed while borrowed, and indirect sources are never written, so
            // nothing writes that memory during `'m`.
            unsafe { View::from_raw(*raw, *ndim) }
        }
    }
}

fn root_view_mut<'m, T: Elem>(alloc: &'m mut Alloc, root: &Root) -> cyview::Result<ViewMut<'m, T>> {
    match root {
        Root::Bytes {
            offset,
            shape,
            strides,
        } => ViewMut::from_bytes(alloc.region_mut(), *offset, shape, strides),
        Root::Strided {
            offset,
            shape,
            strides,
        } => ViewMut::strided(alloc.typed_mut::<T>(), *offset, shape, strides),
        Root::Slice { count, shape } => {
            ViewMut::from_slice(&mut alloc.typed_mut::<T>()[..*count], shape)
        }
        Root::Raw { .. } => unreachable!("indirect sources are never borrowed mutably"),
    }
}

impl Source {
    fn view<T: Elem>(&self) -> View<'_, T> {
        root_view(&self.arena, &self.root)
            .unwrap_or_else(|e| panic!("the root view no longer builds: {e}"))
    }
}

fn gen_shape(rng: &mut Rng, nd: usize) -> Vec<usize> {
    (0..nd)
        .map(|_| match rng.below(100) {
            0..=7 => 0,
            8..=82 => 1 + rng.index(5),
            83..=94 => 6 + rng.index(3),
            _ => rng.pick(&HUGE),
        })
        .collect()
}

/// Strides in bytes, or in elements when `elements`.
fn gen_strides(rng: &mut Rng, shape: &[usize], item: usize, elements: bool) -> Vec<isize> {
    let unit = if elements { 1 } else { item as i64 };
    let nd = shape.len();
    let mut out = vec![0isize; nd];
    match rng.below(100) {
        0..=29 => {
            // Contiguous in C or Fortran order, maybe padded, with random signs.
            let pad = if elements || rng.percent(60) {
                0
            } else {
                rng.upto(3) as i128
            };
            let mut acc = unit as i128 + pad;
            let c = rng.percent(50);
            for k in 0..nd {
                let d = if c { nd - 1 - k } else { k };
                out[d] = rng.sign(isize::try_from(acc).unwrap_or(isize::MAX), 25);
                acc = acc.saturating_mul(shape[d].max(1) as i128);
            }
        }
        30..=84 => {
            for o in out.iter_mut() {
                *o = if rng.percent(15) {
                    0
                } else {
                    rng.signed(1, 3 * unit, 40)
                };
            }
        }
        _ => {
            for o in out.iter_mut() {
                *o = if rng.percent(50) {
                    rng.pick(&EXTREME)
                } else {
                    rng.signed(1, 3 * unit, 40)
                };
            }
        }
    }
    // A huge extent with a non-zero stride never fits: keep most of them broadcast.
    for (o, &n) in out.iter_mut().zip(shape) {
        if n > 64 && rng.percent(75) {
            *o = 0;
        }
    }
    out
}

/// `(lowest, highest)` start offset of the elements relative to the first, in `i128`, or
/// `None` when the sums overflow.
fn span(shape: &[usize], byte_strides: &[i128]) -> Option<(i128, i128)> {
    let (mut lo, mut hi) = (0i128, 0i128);
    if shape.contains(&0) {
        return Some((0, 0));
    }
    for (&n, &s) in shape.iter().zip(byte_strides) {
        let d = (n as i128 - 1).checked_mul(s)?;
        if d < 0 {
            lo = lo.checked_add(d)?;
        } else {
            hi = hi.checked_add(d)?;
        }
    }
    Some((lo, hi))
}

/// An offset (in bytes, or elements when `elements`): usually one that fits the geometry
/// into `len` bytes when one exists, else anything.
fn gen_offset(
    rng: &mut Rng,
    shape: &[usize],
    strides: &[isize],
    len: usize,
    item: usize,
    elements: bool,
) -> usize {
    let scale = if elements { item as i128 } else { 1 };
    let bstrides: Vec<i128> = strides.iter().map(|&s| s as i128 * scale).collect();
    if rng.percent(75) && shape.iter().all(|&n| n <= isize::MAX as usize) {
        if let Some((lo, hi)) = span(shape, &bstrides) {
            let needed = hi.checked_sub(lo).and_then(|d| d.checked_add(item as i128));
            if let Some(needed) = needed.filter(|&n| n <= len as i128) {
                let room = (len as i128 - needed) / scale;
                return ((-lo + scale - 1) / scale + rng.below(room as u64 + 1) as i128) as usize;
            }
        }
    }
    match rng.below(100) {
        0..=59 => rng.upto(len / scale as usize + 8),
        60..=79 => len / scale as usize,
        _ => rng.pick(&HUGE),
    }
}

fn gen_root(rng: &mut Rng, ctor: &str, len: usize, item: usize) -> Root {
    if ctor == "from_slice" {
        let count = len / item;
        let shape = match rng.below(10) {
            0..=3 => vec![count],
            4..=6 if count > 0 => {
                let divisors: Vec<usize> =
                    (1..=count).filter(|a| count.is_multiple_of(*a)).collect();
                let a = rng.pick(&divisors);
                vec![a, count / a]
            }
            7 => vec![1, count, 1],
            8 => vec![count + 1],
            _ => {
                let nd = 1 + rng.index(3);
                gen_shape(rng, nd)
            }
        };
        return Root::Slice { count, shape };
    }
    let elements = ctor == "strided";
    let nd = match rng.below(100) {
        0..=2 => 0,
        3..=4 => MAX_DIMS + 1,
        _ => 1 + rng.index(4),
    };
    let shape = gen_shape(rng, nd);
    let mut strides = gen_strides(rng, &shape, item, elements);
    if rng.percent(2) {
        strides.push(item as isize);
    }
    let offset = gen_offset(rng, &shape, &strides, len, item, elements);
    if elements {
        Root::Strided {
            offset,
            shape,
            strides,
        }
    } else {
        Root::Bytes {
            offset,
            shape,
            strides,
        }
    }
}

/// Whether the constructors must accept `root` over `len` bytes.
fn root_accepts(root: &Root, len: usize, item: usize) -> bool {
    match root {
        Root::Bytes {
            offset,
            shape,
            strides,
        } => direct_accepts(len, Some(*offset), shape, Some(strides), item),
        Root::Strided {
            offset,
            shape,
            strides,
        } => {
            let bytes: Option<Vec<isize>> = strides
                .iter()
                .map(|&s| s.checked_mul(item as isize))
                .collect();
            let offset = offset.checked_mul(item);
            let len = len / item * item;
            strides.len() <= MAX_DIMS && direct_accepts(len, offset, shape, bytes.as_deref(), item)
        }
        Root::Slice { count, shape } => from_slice_accepts(*count, shape, item),
        Root::Raw { .. } => true,
    }
}

/// Builds `root` with the safe constructors (shared, and mutable when `mutable`), compares
/// acceptance with the model, and checks an accepted root's reach.
fn try_root<T: Elem>(run: &mut Run<'_>, alloc: &mut Alloc, root: &Root, mutable: bool) -> bool {
    let item = size_of::<T>();
    let expected = root_accepts(root, alloc.len, item);
    let name = match root {
        Root::Bytes { .. } => "from_bytes",
        Root::Strided { .. } => "strided",
        Root::Slice { .. } => "from_slice",
        Root::Raw { .. } => unreachable!(),
    };
    if mutable {
        let res = root_view_mut::<T>(alloc, root).map(|v| (*v.as_raw(), v.ndim()));
        run.stats.constructor(&format!("ViewMut::{name}"), &res);
        assert_eq!(
            res.is_ok(),
            expected,
            "ViewMut::{name} of {root:?} over {} bytes: {res:?}, expected accepted = {expected}",
            alloc.len
        );
    }
    let arena = std::slice::from_ref(&*alloc);
    let res = root_view::<T>(arena, root);
    run.stats.constructor(&format!("View::{name}"), &res);
    assert_eq!(
        res.is_ok(),
        expected,
        "View::{name} of {root:?} over {} bytes: {:?}, expected accepted = {expected}",
        alloc.len,
        res.as_ref().err()
    );
    if let Ok(v) = res {
        let model = Model::of(arena);
        if let Err(e) = reach(&model, v.as_raw(), v.ndim(), item, &mut run.rng) {
            panic!(
                "View::{name} accepted {root:?} over {} bytes, but it reaches outside: {e}",
                alloc.len
            );
        }
        return true;
    }
    false
}

fn direct_source<T: Elem>(run: &mut Run<'_>) -> Source {
    let item = size_of::<T>();
    let (ctor, mutable) = match run.rng.below(100) {
        0..=39 => ("from_bytes", false),
        40..=64 => ("from_bytes", true),
        65..=79 => ("strided", false),
        80..=89 => ("strided", true),
        _ => ("from_slice", run.rng.percent(50)),
    };
    let mut len = if run.rng.percent(10) {
        run.rng.upto(2 * item)
    } else {
        run.rng.upto(160)
    };
    let misalign = if ctor == "from_bytes" {
        run.rng.index(8)
    } else {
        len -= len % item;
        0
    };
    let contents: Vec<u8> = (0..len).map(|_| run.rng.next() as u8).collect();
    let mut alloc = Alloc::new(Kind::Data, &contents, misalign);
    let mut root = None;
    for _ in 0..16 {
        let candidate = gen_root(&mut run.rng, ctor, len, item);
        if try_root::<T>(run, &mut alloc, &candidate, mutable) {
            root = Some(candidate);
            break;
        }
    }
    let root = root.unwrap_or_else(|| {
        let n = len / item;
        let fallback = match ctor {
            "from_bytes" => Root::Bytes {
                offset: 0,
                shape: vec![n],
                strides: vec![item as isize],
            },
            "strided" => Root::Strided {
                offset: 0,
                shape: vec![n],
                strides: vec![1],
            },
            _ => Root::Slice {
                count: n,
                shape: vec![n],
            },
        };
        assert!(try_root::<T>(run, &mut alloc, &fallback, mutable));
        fallback
    });
    let desc = format!(
        "direct {}{ctor} over {len} bytes (misaligned by {misalign}): {root:?}",
        if mutable { "mutable " } else { "" }
    );
    let arena = vec![alloc];
    Source {
        model: Model::of(&arena),
        arena,
        root,
        mutable,
        desc,
    }
}

/// A direct source of `shape` whose geometry fits by construction (for `copy_from`).
fn fitting_direct<T: Elem>(rng: &mut Rng, shape: &[usize]) -> Source {
    let item = size_of::<T>();
    let strides: Vec<isize> = shape
        .iter()
        .map(|&n| {
            if n > 64 || rng.percent(15) {
                0
            } else {
                rng.signed(1, 2 * item as i64, 30)
            }
        })
        .collect();
    let bstrides: Vec<i128> = strides.iter().map(|&s| s as i128).collect();
    let (lo, hi) = span(shape, &bstrides).expect("small strides");
    let offset = (-lo) as usize + rng.upto(4);
    let len = offset + hi as usize + item + rng.upto(8);
    let contents: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
    let arena = vec![Alloc::new(Kind::Data, &contents, rng.index(8))];
    let root = Root::Bytes {
        offset,
        shape: shape.to_vec(),
        strides,
    };
    let desc = format!("direct from_bytes over {len} bytes: {root:?}");
    Source {
        model: Model::of(&arena),
        arena,
        root,
        mutable: false,
        desc,
    }
}

/// An indirect (PIL-style) structure: dimensions `0..=a` address a pointer table, dimension
/// `a` is indirect; optionally a later dimension `b` is indirect too (its tables are rows of
/// the first table's targets); the remaining dimensions are direct within each row. Every
/// table and row is its own guarded allocation; pointers stored in the tables keep their
/// provenance (written as pointers, not integers).
struct Indirect {
    shape: Vec<usize>,
    strides: Vec<isize>,
    suboffsets: Vec<isize>,
    /// Half-open dimension ranges; all but the last end with an indirect dimension.
    segments: Vec<(usize, usize)>,
    item: usize,
}

/// Offsets from the segment's first element of every index of `shape` with `strides`.
fn offsets(shape: &[usize], strides: &[isize]) -> Vec<i128> {
    let shape: Vec<isize> = shape.iter().map(|&n| n as isize).collect();
    all_indices(&shape)
        .iter()
        .map(|idx| idx.iter().zip(strides).map(|(&i, &s)| i * s as i128).sum())
        .collect()
}

fn build_segment(
    rng: &mut Rng,
    s: &Indirect,
    k: usize,
    incoming: isize,
    arena: &mut Vec<Alloc>,
) -> *mut u8 {
    let (from, to) = s.segments[k];
    let table = k + 1 < s.segments.len();
    let end_size = if table { PTR } else { s.item };
    let offs = offsets(&s.shape[from..to], &s.strides[from..to]);
    let (min, max) = (
        offs.iter().copied().min().unwrap_or(0),
        offs.iter().copied().max().unwrap_or(0),
    );
    let pad_front = rng.upto(8);
    let len = pad_front + (max - min) as usize + end_size + rng.upto(8);
    let contents: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
    let mut alloc = Alloc::new(
        if table { Kind::Table } else { Kind::Row },
        &contents,
        rng.index(8),
    );
    let base_off = pad_front + (-min) as usize;
    if table {
        let sub = s.suboffsets[to - 1];
        let mut children: Vec<*mut u8> = Vec::new();
        let mut written = HashSet::new();
        for &o in &offs {
            if !written.insert(o) {
                continue;
            }
            let child = if !children.is_empty() && rng.percent(15) {
                rng.pick(&children)
            } else {
                build_segment(rng, s, k + 1, sub, arena)
            };
            children.push(child);
            let at = alloc.start + (base_off as i128 + o) as usize;
            let slot = &mut alloc.all_mut()[at..at + PTR];
            // SAFETY: `slot` is PTR writable bytes of this allocation; the write is
            // unaligned-tolerant; the pointer keeps the provenance of the child allocation.
            unsafe { slot.as_mut_ptr().cast::<*mut u8>().write_unaligned(child) };
        }
    }
    let base = alloc
        .words
        .as_ptr()
        .cast::<u8>()
        .cast_mut()
        .wrapping_add(alloc.start + base_off);
    arena.push(alloc);
    base.wrapping_offset(-incoming)
}

/// Strides of the dimensions of one pointer table: a C or Fortran layout of slots of 8 bytes
/// or more (unaligned when padded), random signs, sometimes a shared slot (stride 0).
fn slot_strides(rng: &mut Rng, shape: &[usize]) -> Vec<isize> {
    let nd = shape.len();
    let mut out = vec![0isize; nd];
    let mut acc = (PTR + if rng.percent(30) { rng.upto(4) } else { 0 }) as isize;
    let c = rng.percent(60);
    for k in 0..nd {
        let d = if c { nd - 1 - k } else { k };
        out[d] = rng.sign(acc, 30);
        acc *= shape[d].max(1) as isize;
    }
    if rng.percent(10) {
        let d = rng.index(nd);
        out[d] = 0;
    }
    out
}

fn indirect_source<T: Elem>(rng: &mut Rng, shape: Option<&[usize]>) -> Source {
    let item = size_of::<T>();
    let shape: Vec<usize> = match shape {
        Some(s) => s.to_vec(),
        None => {
            let n = 2 + rng.upto(2);
            (0..n)
                .map(|_| if rng.percent(4) { 0 } else { 1 + rng.upto(3) })
                .collect()
        }
    };
    let n = shape.len();
    let a = rng.index(n);
    let mut indirect = vec![a];
    if a + 1 < n && rng.percent(30) {
        indirect.push(a + 1 + rng.index(n - a - 1));
    }
    let mut suboffsets = vec![-1isize; n];
    for &d in &indirect {
        suboffsets[d] = match rng.below(10) {
            0 => 0,
            1..=7 => rng.upto(24) as isize,
            _ => 64 + rng.upto(512) as isize,
        };
    }
    let mut segments = Vec::new();
    let mut from = 0;
    for &d in &indirect {
        segments.push((from, d + 1));
        from = d + 1;
    }
    segments.push((from, n));
    let mut strides = vec![0isize; n];
    for (k, &(lo, hi)) in segments.iter().enumerate() {
        let dims = &shape[lo..hi];
        let s = if k + 1 < segments.len() {
            slot_strides(rng, dims)
        } else if rng.percent(50) {
            // Rows: contiguous, maybe padded, random signs.
            let mut acc = (item + rng.upto(2)) as isize;
            let mut s = vec![0; dims.len()];
            for d in (0..dims.len()).rev() {
                s[d] = rng.sign(acc, 30);
                acc *= dims[d].max(1) as isize;
            }
            s
        } else {
            // Rows: anything, overlapping elements included (read only).
            dims.iter()
                .map(|_| rng.between(-2 * item as i64, 2 * item as i64) as isize)
                .collect()
        };
        strides[lo..hi].copy_from_slice(&s);
    }
    let spec = Indirect {
        shape,
        strides,
        suboffsets,
        segments,
        item,
    };
    let mut arena = Vec::new();
    let data = build_segment(rng, &spec, 0, 0, &mut arena);
    let mut raw = MemviewSlice {
        data,
        ..MemviewSlice::EMPTY
    };
    for d in 0..n {
        raw.shape[d] = spec.shape[d] as isize;
        raw.strides[d] = spec.strides[d];
        raw.suboffsets[d] = spec.suboffsets[d];
    }
    let model = Model::of(&arena);
    // The contract of `View::from_raw`, proven for every index before the view exists.
    if let Err(e) = enumerate(&model, &raw, n, item, u128::MAX) {
        panic!("test bug: the indirect structure breaks from_raw's contract: {e}");
    }
    let desc = format!(
        "indirect from_raw, {} allocations: shape {:?}, strides {:?}, suboffsets {:?}",
        arena.len(),
        spec.shape,
        spec.strides,
        spec.suboffsets
    );
    Source {
        arena,
        root: Root::Raw { raw, ndim: n },
        model,
        mutable: false,
        desc,
    }
}

// ---------------------------------------------------------------------------------------------
// Random operands

fn gen_bound(rng: &mut Rng, n: isize) -> isize {
    let n = n.min(1 << 40) as i64;
    match rng.below(100) {
        0..=59 => rng.between(-(n + 2), n + 2) as isize,
        60..=79 => rng.pick(&EXTREME),
        80..=89 => rng.next() as i32 as isize,
        _ => rng.next() as isize,
    }
}

fn gen_step(rng: &mut Rng) -> Option<isize> {
    match rng.below(100) {
        0..=34 => None,
        35..=69 => Some(rng.signed(1, 3, 50)),
        70..=74 => Some(0),
        75..=89 => Some(rng.pick(&EXTREME)),
        _ => Some(rng.signed(4, 12, 50)),
    }
}

fn gen_items(rng: &mut Rng, shape: &[isize]) -> Vec<SliceItem> {
    let nd = shape.len();
    let n_items = match rng.below(100) {
        0..=74 => rng.upto(nd),
        75..=84 => nd + 1,
        _ => nd + 2 + rng.upto(6),
    };
    (0..n_items)
        .map(|k| {
            let n = shape.get(k).copied().unwrap_or(1);
            let bound = |rng: &mut Rng| (!rng.percent(35)).then(|| gen_bound(rng, n));
            match rng.below(100) {
                0..=29 => SliceItem::Index(gen_bound(rng, n)),
                30..=79 => {
                    let (start, stop) = (bound(rng), bound(rng));
                    SliceItem::Slice(Slice::new(start, stop, gen_step(rng)))
                }
                80..=89 => SliceItem::NewAxis,
                _ => SliceItem::Ellipsis,
            }
        })
        .collect()
}

fn index_len(rng: &mut Rng, nd: usize) -> usize {
    match rng.below(20) {
        0 => nd + 1,
        1 if nd > 0 => nd - 1,
        _ => nd,
    }
}

fn gen_usize_index(rng: &mut Rng, shape: &[isize]) -> Vec<usize> {
    let len = index_len(rng, shape.len());
    (0..len)
        .map(|d| {
            let n = shape.get(d).map_or(1, |&n| n as u64);
            match rng.below(100) {
                0..=69 if n > 0 => rng.below(n) as usize,
                0..=74 => n as usize,
                75..=84 => usize::MAX,
                85..=89 => isize::MAX as usize,
                90..=94 => isize::MAX as usize + 1,
                _ => rng.next() as usize,
            }
        })
        .collect()
}

fn gen_isize_index(rng: &mut Rng, shape: &[isize]) -> Vec<isize> {
    let len = index_len(rng, shape.len());
    (0..len)
        .map(|d| {
            let n = shape.get(d).copied().unwrap_or(1);
            match rng.below(100) {
                0..=49 if n > 0 => rng.below(n as u64) as isize,
                0..=69 if n > 0 => -1 - rng.below(n as u64) as isize,
                0..=74 => n,
                75..=79 => -n - 1,
                80..=89 => rng.pick(&EXTREME),
                _ => rng.next() as isize,
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Operations

/// One step from a stack entry's view to the next.
#[derive(Clone, Debug)]
enum Step {
    Slice(Vec<SliceItem>, Semantics),
    T,
}

/// Replays a recipe (each step succeeded once, so it must again).
fn derive<'a, T: Elem>(root: View<'a, T>, recipe: &[Step]) -> View<'a, T> {
    let mut v = root;
    for (k, step) in recipe.iter().enumerate() {
        v = match step {
            Step::Slice(items, sem) => v.slice_with(items, *sem),
            Step::T => v.t(),
        }
        .unwrap_or_else(|e| panic!("recipe step {k} ({step:?}) no longer applies: {e}"));
    }
    v
}

/// Replays a recipe of slices with `slice_mut_with`, then calls `f` on the result.
fn with_derived_mut<T: Elem, R>(
    v: &mut ViewMut<'_, T>,
    steps: &[Step],
    f: &mut dyn FnMut(&mut ViewMut<'_, T>) -> R,
) -> R {
    match steps.split_first() {
        None => f(v),
        Some((Step::Slice(items, sem), rest)) => {
            let mut child = v
                .slice_mut_with(items, *sem)
                .unwrap_or_else(|e| panic!("slice_mut_with({items:?}, {sem:?}) failed: {e}"));
            with_derived_mut(&mut child, rest, f)
        }
        Some((Step::T, _)) => unreachable!("ViewMut has no transpose"),
    }
}

struct Run<'s> {
    rng: Rng,
    stats: &'s mut Stats,
    trace: &'s mut Vec<String>,
    /// Print each trace line as it happens (`CYVIEW_FUZZ_VERBOSE`), to replay a hang.
    verbose: bool,
}

impl Run<'_> {
    fn log(&mut self, line: String) {
        if self.verbose {
            eprintln!("{line}");
        }
        self.trace.push(line);
    }
}

const STACK: usize = 8;

fn push(rng: &mut Rng, stack: &mut Vec<Vec<Step>>, recipe: Vec<Step>) {
    if stack.len() < STACK {
        stack.push(recipe);
    } else {
        let k = 1 + rng.index(STACK - 1);
        stack[k] = recipe;
    }
}

/// Picks a stack entry and builds its view.
fn pick<'s, T: Elem>(
    run: &mut Run<'_>,
    src: &'s Source,
    stack: &[Vec<Step>],
) -> (usize, View<'s, T>) {
    let k = run.rng.index(stack.len());
    (k, derive(src.view::<T>(), &stack[k]))
}

fn values<T: Elem>(m: &Model, locs: &[Loc]) -> Vec<T> {
    locs.iter().map(|&l| m.value::<T>(l)).collect()
}

fn check_accessors<T: Elem>(v: &View<'_, T>) {
    let raw = v.as_raw();
    let nd = v.ndim();
    assert!(nd <= MAX_DIMS);
    assert_eq!(v.shape(), &raw.shape[..nd]);
    assert_eq!(v.strides(), &raw.strides[..nd]);
    assert_eq!(v.suboffsets(), &raw.suboffsets[..nd]);
    let n = count(v.shape());
    assert_eq!(v.len() as u128, n.min(usize::MAX as u128), "len of {v:?}");
    assert_eq!(v.is_empty(), n == 0);
}

fn op_slice<T: Elem>(run: &mut Run<'_>, src: &Source, stack: &mut Vec<Vec<Step>>) {
    let item = size_of::<T>();
    let (k, v) = pick::<T>(run, src, stack);
    let items = gen_items(&mut run.rng, v.shape());
    let sem = if run.rng.percent(50) {
        Semantics::Python
    } else {
        Semantics::Cython
    };
    run.log(format!("entry {k} {v:?}: slice_with({items:?}, {sem:?})"));
    let res = v.slice_with(&items, sem);
    run.stats.outcome(&format!("slice_with {sem:?}"), &res);
    let v_locs = reach(&src.model, v.as_raw(), v.ndim(), item, &mut run.rng)
        .unwrap_or_else(|e| panic!("the sliced view reaches outside its source: {e}"));
    let model = (sem == Semantics::Python).then(|| model_slice(v.shape(), v.suboffsets(), &items));
    let indirect = v.suboffsets().iter().any(|&s| s >= 0);
    match res {
        Ok(w) => {
            check_accessors(&w);
            let w_locs = reach(&src.model, w.as_raw(), w.ndim(), item, &mut run.rng)
                .unwrap_or_else(|e| panic!("slice result {w:?} reaches outside the source: {e}"));
            match model {
                Some(Ok(sel)) => {
                    assert_eq!(w.shape(), &sel.shape()[..], "shape of the Python slice");
                    for j in test_indices(&mut run.rng, w.shape()) {
                        let got = locate(&src.model, w.as_raw(), w.ndim(), &j, item);
                        let i = sel.source_index(&j);
                        let want = locate(&src.model, v.as_raw(), v.ndim(), &i, item);
                        assert_eq!(
                            got, want,
                            "result element {j:?} is not source element {i:?}"
                        );
                    }
                }
                Some(Err(e)) => {
                    panic!("the slice was accepted ({w:?}) but the model expects {e:?}")
                }
                None => {
                    if let (Some(vl), Some(wl)) = (&v_locs, &w_locs) {
                        let set: HashSet<Loc> = vl.iter().copied().collect();
                        for (j, l) in wl.iter().enumerate() {
                            assert!(
                                set.contains(l),
                                "Cython-semantics result element #{j} ({l:?}) is not an element of the source view"
                            );
                        }
                    }
                }
            }
            let mut recipe = stack[k].clone();
            recipe.push(Step::Slice(items, sem));
            push(&mut run.rng, stack, recipe);
        }
        Err(e) => match model {
            Some(Ok(sel)) => assert!(
                indirect
                    && e.kind() == ErrorKind::ValueError
                    && e.message()
                        .starts_with("Cannot slice: the suboffset of indirect dimension"),
                "the slice was refused ({:?}: {}) but the model selects {sel:?}",
                e.kind(),
                e.message()
            ),
            Some(Err((kind, msg))) => {
                assert_eq!(e.kind(), kind, "error kind ({})", e.message());
                if let Some(msg) = msg {
                    assert_eq!(e.message(), msg);
                }
            }
            None => {}
        },
    }
}

fn op_t<T: Elem>(run: &mut Run<'_>, src: &Source, stack: &mut Vec<Vec<Step>>) {
    let item = size_of::<T>();
    let (k, v) = pick::<T>(run, src, stack);
    run.log(format!("entry {k} {v:?}: t()"));
    let res = v.t();
    run.stats.outcome("t", &res);
    let expected_ok = v.ndim() <= 1 || v.suboffsets().iter().all(|&s| s < 0);
    match res {
        Ok(w) => {
            assert!(expected_ok, "transposed an indirect view: {w:?}");
            check_accessors(&w);
            let rev = |x: &[isize]| x.iter().rev().copied().collect::<Vec<_>>();
            assert_eq!(w.shape(), &rev(v.shape())[..]);
            assert_eq!(w.strides(), &rev(v.strides())[..]);
            reach(&src.model, w.as_raw(), w.ndim(), item, &mut run.rng)
                .unwrap_or_else(|e| panic!("transpose {w:?} reaches outside the source: {e}"));
            for j in test_indices(&mut run.rng, w.shape()) {
                let i: Vec<i128> = j.iter().rev().copied().collect();
                assert_eq!(
                    locate(&src.model, w.as_raw(), w.ndim(), &j, item),
                    locate(&src.model, v.as_raw(), v.ndim(), &i, item)
                );
            }
            let mut recipe = stack[k].clone();
            recipe.push(Step::T);
            push(&mut run.rng, stack, recipe);
        }
        Err(e) => {
            assert!(!expected_ok, "t() of {v:?} refused: {e}");
            assert_eq!(e.kind(), ErrorKind::ValueError);
            assert!(e
                .message()
                .starts_with("Cannot transpose memoryview with indirect dimensions"));
        }
    }
}

fn op_get<T: Elem>(run: &mut Run<'_>, src: &Source, stack: &[Vec<Step>]) {
    let item = size_of::<T>();
    let (k, v) = pick::<T>(run, src, stack);
    let idx = gen_usize_index(&mut run.rng, v.shape());
    run.log(format!("entry {k} {v:?}: get({idx:?})"));
    let got = v.get(&idx);
    run.stats.note(format!(
        "get: {}",
        if got.is_some() { "some" } else { "none" }
    ));
    let inside = idx.len() == v.ndim()
        && idx
            .iter()
            .zip(v.shape())
            .all(|(&i, &n)| (i as u128) < n as u128);
    assert_eq!(got.is_some(), inside, "get({idx:?}) on {v:?}");
    if let Some(x) = got {
        let i: Vec<i128> = idx.iter().map(|&i| i as i128).collect();
        let loc = locate(&src.model, v.as_raw(), v.ndim(), &i, item)
            .unwrap_or_else(|e| panic!("get({idx:?}) read outside the source: {e}"));
        assert_eq!(x, src.model.value::<T>(loc), "get({idx:?})");
        // SAFETY: `idx` has one entry per dimension, each below its extent (`inside`).
        let y = unsafe { v.get_unchecked(&idx) };
        assert_eq!(x, y);
    }
}

fn op_at<T: Elem>(run: &mut Run<'_>, src: &Source, stack: &[Vec<Step>]) {
    let item = size_of::<T>();
    let (k, v) = pick::<T>(run, src, stack);
    let idx = gen_isize_index(&mut run.rng, v.shape());
    run.log(format!("entry {k} {v:?}: at({idx:?})"));
    let res = v.at(&idx);
    run.stats.outcome("at", &res);
    if idx.len() != v.ndim() {
        let e = res.expect_err("at with a wrong number of indices");
        assert_eq!(e.kind(), ErrorKind::CompileError);
        return;
    }
    let wrapped: Vec<i128> = idx
        .iter()
        .zip(v.shape())
        .map(|(&i, &n)| {
            if i < 0 {
                i as i128 + n as i128
            } else {
                i as i128
            }
        })
        .collect();
    let bad = wrapped
        .iter()
        .zip(v.shape())
        .rposition(|(&i, &n)| i < 0 || i >= n as i128);
    match (res, bad) {
        (Ok(x), None) => {
            let loc = locate(&src.model, v.as_raw(), v.ndim(), &wrapped, item)
                .unwrap_or_else(|e| panic!("at({idx:?}) read outside the source: {e}"));
            assert_eq!(x, src.model.value::<T>(loc), "at({idx:?})");
        }
        (Err(e), Some(d)) => {
            assert_eq!(e.kind(), ErrorKind::IndexError);
            assert_eq!(
                e.message(),
                format!("Out of bounds on buffer access (axis {d})")
            );
        }
        (res, bad) => panic!("at({idx:?}) on {v:?}: {res:?}, last bad axis {bad:?}"),
    }
}

fn op_iter<T: Elem>(run: &mut Run<'_>, src: &Source, stack: &[Vec<Step>]) {
    let item = size_of::<T>();
    let (k, v) = pick::<T>(run, src, stack);
    let n = count(v.shape());
    let mode = run.rng.below(5);
    run.log(format!("entry {k} {v:?}: iter mode {mode}"));
    let it = v.iter();
    assert_eq!(it.size_hint().0 as u128, n.min(usize::MAX as u128));
    if n > CAP {
        // Only a prefix of a huge view.
        let take = run.rng.upto(40);
        let got: Vec<T> = v.iter().take(take).collect();
        for (i, x) in got.into_iter().enumerate() {
            let loc = locate(
                &src.model,
                v.as_raw(),
                v.ndim(),
                &unravel(i as u128, v.shape()),
                item,
            )
            .unwrap_or_else(|e| panic!("iter element {i} outside the source: {e}"));
            assert_eq!(x, src.model.value::<T>(loc));
        }
        run.stats.note("iter: prefix of a huge view".into());
        return;
    }
    let locs = enumerate(&src.model, v.as_raw(), v.ndim(), item, CAP)
        .unwrap_or_else(|e| panic!("view {v:?} reaches outside the source: {e}"))
        .unwrap();
    let expected: Vec<T> = values(&src.model, &locs);
    let label = match mode {
        0 => {
            let got: Vec<T> = v.iter().collect();
            assert_eq!(got, expected, "iter().collect()");
            "iter: collect"
        }
        1 => {
            let split = run.rng.upto(expected.len());
            let mut it = v.iter();
            let mut got: Vec<T> = (0..split).map(|_| it.next().unwrap()).collect();
            assert_eq!(it.len(), expected.len() - split);
            let got = it.fold(
                {
                    got.reserve(expected.len());
                    got
                },
                |mut acc, x| {
                    acc.push(x);
                    acc
                },
            );
            assert_eq!(got, expected, "{split} next() then fold");
            "iter: partial then fold"
        }
        2 => {
            let sum: u128 = v.iter().map(Elem::weight).sum();
            assert_eq!(sum, expected.iter().map(|&x| x.weight()).sum::<u128>());
            "iter: sum"
        }
        3 => {
            let got = (&v).into_iter().fold(Vec::new(), |mut acc, x| {
                acc.push(x);
                acc
            });
            assert_eq!(got, expected, "fold");
            "iter: fold"
        }
        _ => {
            assert_eq!(v.iter().count(), expected.len());
            let mut it = v.iter();
            let mut seen = 0;
            while it.next().is_some() {
                seen += 1;
                assert_eq!(it.len(), expected.len() - seen);
            }
            assert!(it.next().is_none());
            "iter: count and len"
        }
    };
    run.stats.note(label.into());
}

fn op_to_vec<T: Elem>(run: &mut Run<'_>, src: &Source, stack: &[Vec<Step>]) {
    let item = size_of::<T>();
    let (k, v) = pick::<T>(run, src, stack);
    run.log(format!("entry {k} {v:?}: to_vec()"));
    let n = count(v.shape());
    if n > CAP {
        if n.saturating_mul(item as u128) > isize::MAX as u128 {
            let res = v.to_vec();
            run.stats.outcome("to_vec", &res);
            assert_eq!(
                res.expect_err("to_vec of a view too big for memory").kind(),
                ErrorKind::MemoryError
            );
        } else {
            run.stats.note("to_vec: skipped (large view)".into());
        }
        return;
    }
    let res = v.to_vec();
    run.stats.outcome("to_vec", &res);
    let locs = enumerate(&src.model, v.as_raw(), v.ndim(), item, CAP)
        .unwrap_or_else(|e| panic!("view {v:?} reaches outside the source: {e}"))
        .unwrap();
    assert_eq!(res.expect("to_vec"), values::<T>(&src.model, &locs));
}

fn op_copy<T: Elem>(
    run: &mut Run<'_>,
    src: &Source,
    stack: &[Vec<Step>],
    saved: &mut Option<ContigBuffer>,
) {
    let item = size_of::<T>();
    let (k, v) = pick::<T>(run, src, stack);
    let order = if run.rng.percent(50) {
        Order::C
    } else {
        Order::Fortran
    };
    run.log(format!("entry {k} {v:?}: copy({order:?})"));
    let expected = model_copy(v.shape(), v.suboffsets(), item);
    if expected.is_ok() && count(v.shape()) > CAP {
        run.stats.note("copy: skipped (large view)".into());
        return;
    }
    let res = v.copy(order);
    run.stats.outcome(&format!("copy {order:?}"), &res);
    match (res, expected) {
        (Ok(buf), Ok(())) => {
            assert_eq!(buf.shape(), v.shape());
            assert_eq!(buf.itemsize(), item);
            assert_eq!(buf.order(), order);
            let bv = buf
                .view::<T>()
                .expect("ContigBuffer::view with the right item size");
            assert!(same_geometry(bv.as_raw(), &buf.as_raw(), bv.ndim()));
            assert_eq!(bv.ndim(), v.ndim());
            assert!(
                model_contig(bv.as_raw(), bv.ndim(), item, order),
                "copy({order:?}) is not {order:?}-contiguous: {bv:?}"
            );
            assert_eq!(
                bv.is_c_contig(),
                model_contig(bv.as_raw(), bv.ndim(), item, Order::C)
            );
            assert_eq!(
                bv.is_f_contig(),
                model_contig(bv.as_raw(), bv.ndim(), item, Order::Fortran)
            );
            let bm = Model::of_bytes(buf.as_bytes());
            let got_locs = enumerate(&bm, bv.as_raw(), bv.ndim(), item, CAP)
                .unwrap_or_else(|e| {
                    panic!("the copy's view {bv:?} reaches outside the buffer: {e}")
                })
                .unwrap();
            let src_locs = enumerate(&src.model, v.as_raw(), v.ndim(), item, CAP)
                .unwrap_or_else(|e| panic!("view {v:?} reaches outside the source: {e}"))
                .unwrap();
            assert_eq!(
                values::<T>(&bm, &got_locs),
                values::<T>(&src.model, &src_locs)
            );
            assert_eq!(bv.to_vec().unwrap(), values::<T>(&src.model, &src_locs));
            let wrong = buf
                .view::<u32>()
                .expect_err("a 4-byte view of a buffer of other items");
            assert_eq!(
                wrong.message(),
                format!("element type has 4 bytes, the buffer's items have {item}")
            );
            *saved = Some(buf);
        }
        (Err(e), Err((kind, msg))) => {
            assert_eq!(e.kind(), kind, "copy error {}", e.message());
            if let Some(msg) = msg {
                assert_eq!(e.message(), msg);
            }
        }
        (res, expected) => panic!("copy({order:?}) of {v:?}: {res:?}, expected {expected:?}"),
    }
}

fn op_contig<T: Elem>(run: &mut Run<'_>, src: &Source, stack: &[Vec<Step>]) {
    let item = size_of::<T>();
    let (k, v) = pick::<T>(run, src, stack);
    run.log(format!("entry {k} {v:?}: is_c_contig / is_f_contig"));
    check_accessors(&v);
    let c = v.is_c_contig();
    assert_eq!(c, model_contig(v.as_raw(), v.ndim(), item, Order::C));
    assert_eq!(
        v.is_f_contig(),
        model_contig(v.as_raw(), v.ndim(), item, Order::Fortran)
    );
    run.stats.note(format!("is_c_contig: {c}"));
}

/// What a mutation did, for the checks after the borrow.
enum Mutation<T> {
    Set(Vec<usize>, T, bool),
    Fill(T),
    CopyFrom(cyview::Result<()>),
}

/// A mutable episode: a `ViewMut` over the source (its safe constructor), the recipe of a
/// stack entry plus random slices replayed with `slice_mut_with`, reads through it, then one
/// of `set` / `fill` / `copy_from`; checked byte by byte once the borrow has ended.
fn op_mutate<T: Elem>(
    run: &mut Run<'_>,
    src: &mut Source,
    stack: &[Vec<Step>],
    saved: &Option<ContigBuffer>,
) {
    let item = size_of::<T>();
    let candidates: Vec<usize> = (0..stack.len())
        .filter(|&k| !stack[k].iter().any(|s| matches!(s, Step::T)))
        .collect();
    let k = candidates[run.rng.index(candidates.len())];
    let mut recipe = stack[k].clone();
    let (graw, gnd) = {
        let mut v = derive(src.view::<T>(), &recipe);
        for _ in 0..run.rng.upto(2) {
            let items = gen_items(&mut run.rng, v.shape());
            let sem = if run.rng.percent(50) {
                Semantics::Python
            } else {
                Semantics::Cython
            };
            let res = v.slice_with(&items, sem);
            run.stats.outcome(&format!("slice_mut_with {sem:?}"), &res);
            if let Ok(w) = res {
                recipe.push(Step::Slice(items, sem));
                v = w;
            }
        }
        (*v.as_raw(), v.ndim())
    };
    let dshape = graw.shape[..gnd].to_vec();
    let dst_locs = enumerate(&src.model, &graw, gnd, item, CAP)
        .unwrap_or_else(|e| panic!("mutable view reaches outside the source: {e}"));
    let mut what = run.rng.below(10);
    // `copy_from` walks every element: bound that walk (an empty destination returns at
    // once, see `copy_from_into_an_empty_view_with_a_huge_extent_returns_promptly`).
    let walk = dshape
        .iter()
        .fold(1u128, |a, &n| a.saturating_mul(n as u128));
    if dst_locs.is_none() || (what >= 6 && walk > CAP) {
        what = 0;
    }
    // The source of `copy_from`: another direct allocation, an indirect one, or an earlier copy.
    let holder: Option<Source> = (what >= 6).then(|| {
        let mut sshape: Vec<usize> = match run.rng.below(10) {
            0 => {
                let mut s = vec![if run.rng.percent(80) { 1 } else { 2 }];
                s.extend(dshape.iter().map(|&n| n as usize));
                s
            }
            1..=2 if gnd > 0 => dshape[1 + run.rng.index(gnd)..]
                .iter()
                .map(|&n| n as usize)
                .collect(),
            _ => dshape.iter().map(|&n| n as usize).collect(),
        };
        for e in sshape.iter_mut() {
            match run.rng.below(10) {
                0..=1 => *e = 1,
                2 if *e < 64 => *e += 1,
                _ => {}
            }
        }
        if (2..=4).contains(&sshape.len()) && sshape.iter().all(|&n| n <= 8) && run.rng.percent(20)
        {
            indirect_source::<T>(&mut run.rng, Some(&sshape))
        } else {
            fitting_direct::<T>(&mut run.rng, &sshape)
        }
    });
    let use_saved = what >= 6 && saved.is_some() && run.rng.percent(25);
    let saved_model = saved.as_ref().map(|b| Model::of_bytes(b.as_bytes()));
    let (src_view, src_model): (Option<View<'_, T>>, Option<&Model>) = if what < 6 {
        (None, None)
    } else if use_saved {
        let b = saved.as_ref().unwrap();
        (
            Some(b.view::<T>().expect("view of an earlier copy")),
            saved_model.as_ref(),
        )
    } else {
        let h = holder.as_ref().unwrap();
        (Some(h.view::<T>()), Some(&h.model))
    };
    let value = T::random(&mut run.rng);
    let set_index = gen_usize_index(&mut run.rng, &dshape);
    let probe = dst_locs
        .as_ref()
        .filter(|l| !l.is_empty())
        .map(|l| run.rng.index(l.len()));
    run.log(format!(
        "entry {k} + {} slices, mutable {:?} (shape {dshape:?}, strides {:?}): {}",
        recipe.len() - stack[k].len(),
        recipe,
        &graw.strides[..gnd],
        match (what, &src_view) {
            (0..=3, _) => format!("set({set_index:?}, {value:?})"),
            (4..=5, _) => format!("fill({value:?})"),
            (_, Some(s)) => format!(
                "copy_from({s:?}) from {}",
                if use_saved {
                    "an earlier copy".into()
                } else {
                    holder.as_ref().unwrap().desc.clone()
                }
            ),
            _ => unreachable!(),
        }
    ));
    let model = &src.model;
    let rng = &mut run.rng;
    // The mutable borrow of the allocation lives only inside this call.
    let mutation = with_derived_mut(
        &mut root_view_mut::<T>(&mut src.arena[0], &src.root).expect("the mutable root builds"),
        &recipe,
        &mut |v: &mut ViewMut<'_, T>| {
            assert!(
                same_geometry(v.as_raw(), &graw, gnd) && v.ndim() == gnd,
                "slice_mut_with gave {v:?}, slice_with gave shape {:?} strides {:?}",
                &graw.shape[..gnd],
                &graw.strides[..gnd]
            );
            if let (Some(j), Some(locs)) = (probe, &dst_locs) {
                let idx = unravel(j as u128, &dshape);
                let uidx: Vec<usize> = idx.iter().map(|&i| i as usize).collect();
                let expected = model.value::<T>(locs[j]);
                assert_eq!(v.get(&uidx), Some(expected), "ViewMut::get({uidx:?})");
                // Negative (counted from the end) or plain indices.
                let iidx: Vec<isize> = idx
                    .iter()
                    .zip(&dshape)
                    .map(|(&i, &n)| {
                        if rng.percent(50) {
                            i as isize - n
                        } else {
                            i as isize
                        }
                    })
                    .collect();
                assert_eq!(v.at(&iidx).ok(), Some(expected), "ViewMut::at({iidx:?})");
                assert_eq!(v.iter().nth(j), Some(expected), "ViewMut::iter().nth({j})");
            }
            match what {
                0..=3 => Mutation::Set(set_index.clone(), value, v.set(&set_index, value)),
                4..=5 => {
                    v.fill(value);
                    Mutation::Fill(value)
                }
                _ => Mutation::CopyFrom(v.copy_from(src_view.as_ref().unwrap())),
            }
        },
    );

    // Checks after the borrow: guards, then which bytes changed and to what.
    let alloc = &src.arena[0];
    if let Some(g) = alloc.broken_guard() {
        panic!(
            "guard byte {g} of the allocation changed (region is {}..{})",
            alloc.start,
            alloc.start + alloc.len
        );
    }
    let before = &src.model.blocks[0].bytes;
    let after = alloc.region().to_vec();
    let mut allowed = vec![false; after.len()];
    let mut expected = before.clone();
    let mut exact = true;
    let mark = |loc: Loc, allowed: &mut Vec<bool>| {
        for a in &mut allowed[loc.off..loc.off + item] {
            *a = true;
        }
    };
    let dst_all = dst_locs.unwrap_or_default();
    let partial = {
        let mut offs: Vec<usize> = dst_all.iter().map(|l| l.off).collect();
        offs.sort_unstable();
        offs.dedup();
        offs.windows(2).any(|w| w[1] - w[0] < item)
    };
    let duplicates = {
        let set: HashSet<usize> = dst_all.iter().map(|l| l.off).collect();
        set.len() < dst_all.len()
    };
    let mut candidates: Vec<(Loc, Vec<T>)> = Vec::new();
    let key = match mutation {
        Mutation::Set(idx, value, written) => {
            let inside = idx.len() == gnd
                && idx
                    .iter()
                    .zip(&dshape)
                    .all(|(&i, &n)| (i as u128) < n as u128);
            assert_eq!(written, inside, "set({idx:?}) on shape {dshape:?}");
            if written {
                let i: Vec<i128> = idx.iter().map(|&i| i as i128).collect();
                let loc = locate(&src.model, &graw, gnd, &i, item)
                    .unwrap_or_else(|e| panic!("set({idx:?}) wrote outside the source: {e}"));
                mark(loc, &mut allowed);
                value.encode(&mut expected[loc.off..loc.off + item]);
            }
            format!("set: {}", if written { "written" } else { "out of bounds" })
        }
        Mutation::Fill(value) => {
            for &loc in &dst_all {
                mark(loc, &mut allowed);
                value.encode(&mut expected[loc.off..loc.off + item]);
            }
            exact = !partial;
            format!(
                "fill: {}",
                if partial {
                    "overlapping elements"
                } else {
                    "ok"
                }
            )
        }
        Mutation::CopyFrom(res) => {
            let s = src_view.as_ref().unwrap();
            let want = model_copy_from(&dshape, &graw.suboffsets[..gnd], s.shape(), s.suboffsets());
            let key = outcome_key("copy_from", &res);
            match (&res, want) {
                (Ok(()), None) => {
                    let sm = src_model.unwrap();
                    for (j, &loc) in all_indices(&dshape).iter().zip(&dst_all) {
                        let si = broadcast_index(j, s.shape());
                        let sloc =
                            locate(sm, s.as_raw(), s.ndim(), &si, item).unwrap_or_else(|e| {
                                panic!(
                                    "copy_from source element {si:?} outside its allocation: {e}"
                                )
                            });
                        let x: T = sm.value(sloc);
                        mark(loc, &mut allowed);
                        x.encode(&mut expected[loc.off..loc.off + item]);
                        if duplicates {
                            match candidates.iter_mut().find(|(l, _)| *l == loc) {
                                Some((_, xs)) => xs.push(x),
                                None => candidates.push((loc, vec![x])),
                            }
                        }
                    }
                    exact = !partial && !duplicates;
                }
                (Err(e), Some(msg)) => {
                    assert_eq!(e.kind(), ErrorKind::ValueError);
                    assert_eq!(e.message(), msg);
                }
                (res, want) => panic!("copy_from: {res:?}, expected error {want:?}"),
            }
            key
        }
    };
    run.stats.note(key);
    for (i, (&b, &a)) in before.iter().zip(&after).enumerate() {
        assert!(
            b == a || allowed[i],
            "byte {i} of the region changed ({b:#04x} -> {a:#04x}) but belongs to no written element"
        );
    }
    if exact {
        assert_eq!(after, expected, "bytes after the mutation");
    } else if !partial {
        for (loc, xs) in &candidates {
            let got = T::decode(&after[loc.off..loc.off + item]);
            assert!(
                xs.contains(&got),
                "element at {} holds {got:?}, none of {xs:?}",
                loc.off
            );
        }
    }
    src.model = Model::of(&src.arena);
}

// ---------------------------------------------------------------------------------------------
// Sequences

fn run_typed<T: Elem>(run: &mut Run<'_>) {
    let n_ops = 1 + run.rng.index(12);
    run.log(format!("T = {}, {n_ops} operations", T::NAME));
    let mut src = if run.rng.percent(60) {
        direct_source::<T>(run)
    } else {
        indirect_source::<T>(&mut run.rng, None)
    };
    run.log(format!("source: {}", src.desc));
    let mut stack: Vec<Vec<Step>> = vec![Vec::new()];
    let mut saved: Option<ContigBuffer> = None;
    for _ in 0..n_ops {
        run.stats.ops += 1;
        match run.rng.below(100) {
            0..=29 => op_slice::<T>(run, &src, &mut stack),
            30..=36 => op_t::<T>(run, &src, &mut stack),
            37..=46 => op_get::<T>(run, &src, &stack),
            47..=55 => op_at::<T>(run, &src, &stack),
            56..=64 => op_iter::<T>(run, &src, &stack),
            65..=69 => op_to_vec::<T>(run, &src, &stack),
            70..=76 => op_copy::<T>(run, &src, &stack, &mut saved),
            77..=79 => op_contig::<T>(run, &src, &stack),
            _ if src.mutable => op_mutate::<T>(run, &mut src, &stack, &saved),
            _ => op_slice::<T>(run, &src, &mut stack),
        }
    }
    // Nothing but the mutations wrote anything, and no guard byte changed.
    for (k, a) in src.arena.iter().enumerate() {
        assert_eq!(a.broken_guard(), None, "guard of allocation {k}");
        let block = src.model.blocks.iter().find(|b| b.alloc == k).unwrap();
        assert!(
            a.region() == &block.bytes[..],
            "allocation {k} changed outside the mutations"
        );
    }
}

fn run_sequence(seed: u64, stats: &mut Stats, trace: &mut Vec<String>) {
    let mut run = Run {
        rng: Rng::new(seed),
        stats,
        trace,
        verbose: std::env::var_os("CYVIEW_FUZZ_VERBOSE").is_some(),
    };
    match run.rng.below(4) {
        0 => run_typed::<u8>(&mut run),
        1 => run_typed::<u16>(&mut run),
        2 => run_typed::<u64>(&mut run),
        _ => run_typed::<[u8; 3]>(&mut run),
    }
    run.stats.sequences += 1;
}

fn sequence_seed(seed: u64, i: u64) -> u64 {
    Rng::new(seed ^ i.wrapping_mul(0xD1B5_4A32_D192_ED03)).next()
}

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|e| panic!("{name}={v:?}: {e}")))
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(now);
    h.finish()
}

/// Runs sequences `range` of `seed`; returns the failures (sequence index, message, trace).
fn run_sequences(
    seed: u64,
    range: std::ops::Range<u64>,
    stats: &mut Stats,
) -> Vec<(u64, String, Vec<String>)> {
    let mut failures = Vec::new();
    for i in range {
        let mut trace = Vec::new();
        let result = catch_unwind(AssertUnwindSafe(|| {
            run_sequence(sequence_seed(seed, i), stats, &mut trace)
        }));
        if let Err(panic) = result {
            let msg = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "non-string panic".into());
            failures.push((i, msg, trace));
            if failures.len() >= 3 {
                break;
            }
        }
    }
    failures
}

#[test]
fn random_sequences_of_safe_view_operations_stay_inside_their_allocations() {
    let sequences = env_u64("CYVIEW_FUZZ_SEQUENCES").unwrap_or(DEFAULT_SEQUENCES);
    let seed = match std::env::var("CYVIEW_FUZZ_SEED").as_deref() {
        Ok("random") => random_seed(),
        _ => env_u64("CYVIEW_FUZZ_SEED").unwrap_or(0x9e37_79b9_7f4a_7c15),
    };
    let range = match env_u64("CYVIEW_FUZZ_ONLY") {
        Some(i) => i..i + 1,
        None => 0..sequences,
    };
    let cases = range.end - range.start;
    println!("fuzz_views: seed {seed:#x}, sequences {range:?}");
    let mut stats = Stats::default();
    let failures = run_sequences(seed, range, &mut stats);
    // Counts only: how long it took is the test runner's (or a benchmark's) business.
    println!(
        "fuzz_views: seed {seed:#x}, {} sequences, {} operations, {} failed",
        stats.sequences,
        stats.ops,
        failures.len(),
    );
    stats.print();
    let mut report = String::new();
    for (i, msg, trace) in &failures {
        report.push_str(&format!(
            "\nsequence {i} failed: {msg}\nreplay: CYVIEW_FUZZ_SEED={seed:#x} CYVIEW_FUZZ_ONLY={i}\n"
        ));
        for line in trace {
            report.push_str(&format!("  {line}\n"));
        }
    }
    let failed = failures.len() as u64;
    let run = if failed > 0 {
        stats.sequences + failed
    } else {
        cases
    };
    println!(
        "cyview-report: {}",
        serde_json::json!({
            "check": "fuzz: safe view operations",
            "release": "any",
            "cases": run,
            "passed": run - failed,
            "failed": failed,
        })
    );
    assert!(failures.is_empty(), "{report}");
}

#[test]
fn the_same_seed_replays_the_same_sequences() {
    let (mut a, mut b) = (Stats::default(), Stats::default());
    assert!(run_sequences(7, 0..60, &mut a).is_empty());
    assert!(run_sequences(7, 0..60, &mut b).is_empty());
    assert_eq!(a, b);
    assert_eq!(a.sequences, 60);
}

/// The checker itself must fail on a deliberately wrong geometry: an element one byte past
/// the region, a pointer slot outside every table, a written guard byte.
#[test]
fn the_oracle_rejects_addresses_outside_the_allocations() {
    let row = Alloc::new(Kind::Row, &[1, 2, 3, 4, 5, 6, 7, 8], 0);
    let row_ptr = row.region().as_ptr().cast_mut();
    let mut table = Alloc::new(Kind::Table, &[0; 8], 3);
    table
        .region_mut()
        .copy_from_slice(&(row_ptr as usize).to_ne_bytes());
    let table_ptr = table.region().as_ptr().cast_mut();
    let arena = vec![row, table];
    let model = Model::of(&arena);

    // Direct: the last u16 of an 8-byte row fits, one byte further does not.
    let mut raw = MemviewSlice {
        data: row_ptr,
        ..MemviewSlice::EMPTY
    };
    raw.shape[0] = 4;
    raw.strides[0] = 2;
    raw.suboffsets[0] = -1;
    let locs = enumerate(&model, &raw, 1, 2, CAP).unwrap().unwrap();
    assert_eq!(locs.iter().map(|l| l.off).collect::<Vec<_>>(), [0, 2, 4, 6]);
    assert_eq!(model.value::<u16>(locs[3]), u16::from_ne_bytes([7, 8]));
    raw.data = row_ptr.wrapping_add(1);
    let err = enumerate(&model, &raw, 1, 2, CAP).unwrap_err();
    assert!(err.starts_with("index [3]: element at"), "{err}");
    assert!(
        err.ends_with("lies outside every allocation of the source"),
        "{err}"
    );

    // Indirect: the slot is read from the table; a second slot would lie past its end.
    raw.data = table_ptr;
    raw.shape[0] = 1;
    raw.strides[0] = 8;
    raw.suboffsets[0] = 6;
    let loc = locate(&model, &raw, 1, &[0], 2).unwrap();
    assert_eq!(model.value::<u16>(loc), u16::from_ne_bytes([7, 8]));
    raw.shape[0] = 2;
    let err = enumerate(&model, &raw, 1, 2, CAP).unwrap_err();
    assert!(err.contains("is not inside a pointer table"), "{err}");
    // A data block is not a pointer table.
    raw.data = row_ptr;
    raw.shape[0] = 1;
    assert!(locate(&model, &raw, 1, &[0], 2).is_err());

    // A write into a guard zone is seen.
    let mut row = Alloc::new(Kind::Data, &[0; 4], 1);
    assert_eq!(row.broken_guard(), None);
    let at = row.start + row.len;
    row.all_mut()[at] ^= 1;
    assert_eq!(row.broken_guard(), Some(at));
}

/// Found by this fuzzer (liveness, not memory safety): `ViewMut::copy_from` into an *empty*
/// view used to walk every index of the dimensions before its zero extent (`copy_dim`
/// loops over each extent, as Cython's `_copy_strided_to_strided` does), so a view of shape
/// `[isize::MAX, 0]` (stride 0: accepted by `from_bytes`, it addresses nothing) made it loop
/// about 2**63 times (seed 5134663338539972386, sequence 3347: shape `[4, 3, 2**62 - 1,
/// 0]`). `copy_contents` now returns once the checks pass when the destination is empty.
#[test]
fn copy_from_into_an_empty_view_with_a_huge_extent_returns_promptly() {
    let mut dst_bytes = [0u8; 2];
    let src_bytes = [7u8; 2];
    let mut dst =
        ViewMut::<u16>::from_bytes(&mut dst_bytes, 0, &[isize::MAX as usize, 0], &[0, 2]).unwrap();
    assert!(dst.is_empty());
    let src = View::<u16>::from_bytes(&src_bytes, 0, &[1], &[2]).unwrap();
    assert_eq!(dst.copy_from(&src), Ok(()));
    assert_eq!(dst_bytes, [0, 0]);
    // The extent checks still come first, as in Cython.
    let mut dst =
        ViewMut::<u16>::from_bytes(&mut dst_bytes, 0, &[isize::MAX as usize, 0], &[0, 2]).unwrap();
    let src = View::<u16>::from_bytes(&src_bytes, 0, &[2, 1], &[0, 2]).unwrap();
    assert_eq!(
        dst.copy_from(&src).unwrap_err().message(),
        format!(
            "got differing extents in dimension 0 (got {} and 2)",
            isize::MAX
        )
    );
}
