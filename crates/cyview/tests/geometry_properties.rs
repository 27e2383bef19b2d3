//! Properties of `cyview::geometry`, the one audited proof that a view's elements lie in
//! memory, against an exact big-integer model (`num_bigint::BigInt`: nothing in the model can
//! overflow) of the element address set.
//!
//! * Part 1, `check_in_memory` over one `Block`: random direct geometries with extreme values
//!   through `View::from_bytes` (real memory; accepted views are read element by element) and
//!   through the check itself (blocks anywhere in the address space, any data pointer, ndim
//!   up to 9, negative extents, small budgets). A view is accepted exactly when the model's
//!   lowest and highest element lie in the block, and every refusal carries the exact message
//!   the model predicts.
//! * Part 2, `check_in_memory` over pointer tables: [`Tables`] is a `KnownMemory` of real rows
//!   and real pointer tables (one or two levels) whose slots may be bogus pointers, which the
//!   check may compare but must never follow. A reference walk in `BigInt` predicts the verdict
//!   and message (budget included); an independent brute-force enumeration of every element
//!   decides acceptance; accepted views are read through `View::from_raw`.
//! * Part 3, `check_within`: completeness on views derived from a source by slicing and
//!   transposing, soundness on random raw slices, identity for indirect geometries.
//! * Part 4: named regressions.
//!
//! Each property runs `PROPTEST_CASES` cases (default: the `DEFAULT_*` constants, 30,000 in
//! all) and prints its counts (accepted, refused by reason) to stderr (`-- --nocapture`).
//! `geometry_million` (ignored) runs parts 1 and 3 with 1,000,000 cases in all:
//! `RUSTFLAGS="-C overflow-checks=on" cargo test --release -p cyview --test
//! geometry_properties -- --ignored geometry_million --nocapture`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Debug;
use std::mem::size_of;
use std::ptr::{null_mut, without_provenance, without_provenance_mut};
use std::sync::Mutex;

use cyview::geometry::{self, Block, KnownMemory, DEFAULT_BUDGET};
use cyview::raw::slicing;
use cyview::{Direct, ErrorKind, FromBytes, MemviewSlice, View, ViewMut, MAX_DIMS};
use cyview::{Semantics, Slice, SliceItem};
use num_bigint::BigInt;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

// ---------------------------------------------------------------------------------------
// Running, counting
// ---------------------------------------------------------------------------------------

const DEFAULT_BYTES: u32 = 8_000;
const DEFAULT_BLOCK: u32 = 6_000;
const DEFAULT_TABLES: u32 = 4_000;
const DEFAULT_DERIVED: u32 = 4_000;
const DEFAULT_RAW_WITHIN: u32 = 4_000;
const DEFAULT_INDIRECT_WITHIN: u32 = 4_000;

/// `PROPTEST_CASES` (read, never set: tests run in parallel), else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Counts per outcome of one property, printed when it ends.
#[derive(Default)]
struct Stats(Mutex<BTreeMap<&'static str, u64>>);

impl Stats {
    fn add(&self, key: &'static str) {
        *self.0.lock().unwrap().entry(key).or_insert(0) += 1;
    }

    fn get(&self, key: &str) -> u64 {
        self.0.lock().unwrap().get(key).copied().unwrap_or(0)
    }

    fn print(&self, name: &str, cases: u32) {
        let map = self.0.lock().unwrap();
        let body: Vec<String> = map.iter().map(|(k, v)| format!("  {k}: {v}")).collect();
        eprintln!("[{name}] {cases} cases\n{}", body.join("\n"));
    }
}

/// Runs `test` on `cases` values of `strategy` (shrinking a failure as `proptest!` does) and
/// prints the counts.
fn run<S>(
    name: &str,
    cases: u32,
    strategy: S,
    test: impl Fn(S::Value, &Stats) -> Result<(), TestCaseError>,
) -> Stats
where
    S: Strategy,
    S::Value: Debug,
{
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let stats = Stats::default();
    let result = runner.run(&strategy, |v| test(v, &stats));
    stats.print(name, cases);
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    stats
}

// ---------------------------------------------------------------------------------------
// The model: exact integers
// ---------------------------------------------------------------------------------------

fn big<T: Into<BigInt>>(x: T) -> BigInt {
    x.into()
}

fn to_i128(x: &BigInt) -> Option<i128> {
    i128::try_from(x).ok()
}

/// `(Σ min(0, (n-1)s), Σ max(0, (n-1)s))`: the lowest and highest element offset of a
/// non-empty direct box, from its first element.
fn span(shape: &[isize], strides: &[isize]) -> (BigInt, BigInt) {
    let zero = big(0);
    let mut lo = big(0);
    let mut hi = big(0);
    for (&n, &s) in shape.iter().zip(strides) {
        let r = (big(n) - 1) * big(s);
        if r < zero {
            lo += r;
        } else {
            hi += r;
        }
    }
    (lo, hi)
}

/// `data + Σ i_d * s_d`.
fn direct_address(data: &BigInt, idx: &[isize], strides: &[isize]) -> BigInt {
    idx.iter()
        .zip(strides)
        .fold(data.clone(), |a, (&i, &s)| a + big(i) * big(s))
}

/// Whether every element `[a, a + item)` of the box lies in `start..start + len`.
fn fits_block(
    start: &BigInt,
    len: usize,
    data: &BigInt,
    geometry: (&[isize], &[isize]),
    item: usize,
) -> bool {
    let (shape, strides) = geometry;
    if shape.contains(&0) {
        return true;
    }
    let (lo, hi) = span(shape, strides);
    *start <= data + lo && data + hi + big(item) <= start + big(len)
}

/// Number of elements (saturating).
fn count(shape: &[isize]) -> u128 {
    shape
        .iter()
        .fold(1u128, |a, &n| a.saturating_mul(n.max(0) as u128))
}

/// C-order increment; false when it wraps around.
fn advance(idx: &mut [isize], shape: &[isize]) -> bool {
    for d in (0..idx.len()).rev() {
        idx[d] += 1;
        if idx[d] < shape[d] {
            return true;
        }
        idx[d] = 0;
    }
    false
}

/// Calls `f` with every index of `shape` in C order.
fn for_each_index(
    shape: &[isize],
    mut f: impl FnMut(&[isize]) -> Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    if shape.contains(&0) {
        return Ok(());
    }
    let mut idx = vec![0isize; shape.len()];
    loop {
        f(&idx)?;
        if !advance(&mut idx, shape) {
            return Ok(());
        }
    }
}

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(151).wrapping_add(13) % 256) as u8
}

/// Element types read in the tests, decoded from the bytes the model says they occupy.
trait Elem: FromBytes + PartialEq + Debug {
    fn decode(b: &[u8]) -> Self;
}

impl Elem for u8 {
    fn decode(b: &[u8]) -> Self {
        b[0]
    }
}
impl Elem for u16 {
    fn decode(b: &[u8]) -> Self {
        u16::from_ne_bytes(b.try_into().unwrap())
    }
}
impl Elem for u64 {
    fn decode(b: &[u8]) -> Self {
        u64::from_ne_bytes(b.try_into().unwrap())
    }
}
impl Elem for u128 {
    fn decode(b: &[u8]) -> Self {
        u128::from_ne_bytes(b.try_into().unwrap())
    }
}
impl<const N: usize> Elem for [u8; N] {
    fn decode(b: &[u8]) -> Self {
        b.try_into().unwrap()
    }
}

// ---------------------------------------------------------------------------------------
// Messages: the documented refusals
// ---------------------------------------------------------------------------------------

const BEYOND: &str = "view reaches beyond any memory (offsets past 2**127 bytes)";
const NOT_WITHIN: &str = "the view addresses memory that is not an element of the buffer: refused";
const MORE_INDIRECT: &str = "the view has more indirect dimensions than the buffer: refused";
/// What the test's `ReadPointer` answers for an address that is no slot of its tables.
const NOT_A_SLOT: &str = "test memory: not a pointer slot of the tables";

fn budget_message(budget: u64) -> String {
    format!("cannot verify the view's geometry within {budget} steps: refused")
}

fn ndim_message(ndim: usize) -> String {
    format!("ndim {ndim} exceeds the maximum of 8 dimensions")
}

/// Every refusal message of `geometry.rs` and `view.rs::direct_raw` starts with one of these.
const PREFIXES: &[(&str, &str)] = &[
    ("shape has ", "refused: shape and strides lengths differ"),
    ("ndim ", "refused: ndim > 8"),
    ("offset ", "refused: offset past the end"),
    ("extent ", "refused: extent > isize::MAX"),
    ("negative extent ", "refused: negative extent"),
    ("view reaches bytes ", "refused: outside the buffer"),
    (
        "view reaches addresses ",
        "refused: outside the known memory",
    ),
    (BEYOND, "refused: offsets past 2**127"),
    (
        "cannot verify the view's geometry within ",
        "refused: out of steps",
    ),
    (
        "indirect dimension ",
        "refused: not a slot of a known table",
    ),
    (NOT_WITHIN, "refused: not an element of the source"),
    (
        MORE_INDIRECT,
        "refused: more indirect dimensions than the source",
    ),
];

fn reason(message: &str) -> &'static str {
    PREFIXES
        .iter()
        .find(|(p, _)| message.starts_with(p))
        .map_or("refused: UNDOCUMENTED", |(_, r)| r)
}

/// Whether the check's step budget may run out before its verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Steps {
    /// The verdict is reached within the budget.
    Enough,
    /// It may or may not be.
    Maybe,
    /// The budget certainly runs out first.
    Short,
}

#[derive(Debug)]
struct Prediction {
    verdict: Result<(), String>,
    steps: Steps,
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Accepted,
    Refused,
    OutOfSteps,
}

/// Compares a check's result with the model's prediction: the kind is `ValueError`, the
/// message documented, and exactly the predicted one unless the budget may run out first.
fn judge(
    got: &cyview::Result<()>,
    p: &Prediction,
    budget: u64,
    stats: &Stats,
) -> Result<Outcome, TestCaseError> {
    let out_of_steps = budget_message(budget);
    if let Err(e) = got {
        prop_assert_eq!(e.kind(), ErrorKind::ValueError, "{}", e);
        prop_assert_ne!(
            reason(e.message()),
            "refused: UNDOCUMENTED",
            "{}",
            e.message()
        );
    }
    let is_budget = matches!(got, Err(e) if e.message() == out_of_steps);
    match p.steps {
        Steps::Short => prop_assert!(
            is_budget,
            "expected the budget refusal, got {:?} (model: {:?})",
            got,
            p.verdict
        ),
        Steps::Maybe if is_budget => {}
        _ => match (got, &p.verdict) {
            (Ok(()), Ok(())) => {}
            (Err(e), Err(m)) => prop_assert_eq!(e.message(), m.as_str()),
            _ => prop_assert!(false, "check: {:?}, model: {:?}", got, p.verdict),
        },
    }
    Ok(match got {
        Ok(()) => {
            stats.add("accepted");
            Outcome::Accepted
        }
        Err(e) => {
            stats.add(reason(e.message()));
            if is_budget {
                Outcome::OutOfSteps
            } else {
                Outcome::Refused
            }
        }
    })
}

// ---------------------------------------------------------------------------------------
// Part 1: one block
// ---------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Stride {
    Lit(isize),
    /// A multiple of the item size.
    Items(i8),
}

impl Stride {
    fn resolve(self, item: usize) -> isize {
        match self {
            Stride::Lit(s) => s,
            Stride::Items(k) => (k as isize).wrapping_mul(item as isize),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Offset {
    /// `len * f / 65535`: within `0..=len`.
    Within(u16),
    /// `len + 1 + k`.
    Past(u8),
    Huge(usize),
}

impl Offset {
    fn resolve(self, len: usize) -> usize {
        match self {
            Offset::Within(f) => (len as u64 * u64::from(f) / 65535) as usize,
            Offset::Past(k) => len + 1 + usize::from(k),
            Offset::Huge(v) => v,
        }
    }
}

fn extent_small() -> BoxedStrategy<usize> {
    prop_oneof![1 => Just(0usize), 3 => Just(1usize), 3 => Just(2usize), 3 => 3usize..=6].boxed()
}

fn extent_extreme() -> BoxedStrategy<usize> {
    prop_oneof![
        4 => extent_small(),
        1 => (0usize..=3).prop_map(|k| isize::MAX as usize - k),
        1 => 0..=isize::MAX as usize,
        1 => prop_oneof![Just(usize::MAX), Just(isize::MAX as usize + 1), any::<usize>()],
    ]
    .boxed()
}

fn stride_small() -> BoxedStrategy<Stride> {
    prop_oneof![
        4 => (-3i8..=3).prop_map(Stride::Items),
        3 => (-20isize..=20).prop_map(Stride::Lit),
        1 => Just(Stride::Lit(0)),
    ]
    .boxed()
}

fn stride_extreme() -> BoxedStrategy<Stride> {
    prop_oneof![
        3 => stride_small(),
        1 => prop_oneof![
            Just(isize::MIN),
            Just(isize::MIN + 1),
            Just(isize::MAX),
            Just(isize::MAX - 7),
            Just((1isize << 62) + 16),
        ]
        .prop_map(Stride::Lit),
        1 => any::<isize>().prop_map(Stride::Lit),
        1 => (-(1isize << 40)..(1isize << 40)).prop_map(Stride::Lit),
    ]
    .boxed()
}

fn ndim_gen() -> BoxedStrategy<usize> {
    prop_oneof![1 => Just(0usize), 8 => 1usize..=4, 3 => 5usize..=8, 1 => Just(9usize)].boxed()
}

/// A `View::<T>::from_bytes` call: `T` by index (sizes 1, 2, 8, 16, 3, 5, 7, 0), a block of
/// `len` real bytes at `pad` bytes into a vector.
#[derive(Clone, Debug)]
struct BytesCase {
    ty: usize,
    len: usize,
    pad: usize,
    offset: Offset,
    shape: Vec<usize>,
    strides: Vec<Stride>,
    probe: Vec<u64>,
}

fn offset_gen() -> BoxedStrategy<Offset> {
    prop_oneof![
        8 => any::<u16>().prop_map(Offset::Within),
        1 => (0u8..=16).prop_map(Offset::Past),
        1 => any::<usize>().prop_map(Offset::Huge),
    ]
    .boxed()
}

fn bytes_case() -> impl Strategy<Value = BytesCase> {
    (0usize..8, any::<bool>(), ndim_gen(), 0u8..16)
        .prop_flat_map(|(ty, extreme, ndim, mismatch)| {
            let nstrides = match mismatch {
                0 => ndim + 1,
                1 => ndim.saturating_sub(1),
                _ => ndim,
            };
            let (e, s) = if extreme {
                (extent_extreme(), stride_extreme())
            } else {
                (extent_small(), stride_small())
            };
            (
                Just(ty),
                vec(e, ndim),
                vec(s, nstrides),
                0usize..=160,
                0usize..=3,
                offset_gen(),
                vec(any::<u64>(), 4),
            )
        })
        .prop_map(|(ty, shape, strides, len, pad, offset, probe)| BytesCase {
            ty,
            len,
            pad,
            offset,
            shape,
            strides,
            probe,
        })
}

/// `View::from_bytes`'s checks in `view.rs`'s order, then the block check's message.
fn predict_from_bytes(
    start: usize,
    len: usize,
    offset: usize,
    geometry: (&[usize], &[isize]),
    item: usize,
) -> Result<(), String> {
    let (shape, strides) = geometry;
    if shape.len() != strides.len() {
        return Err(format!(
            "shape has {} dimensions but strides has {}",
            shape.len(),
            strides.len()
        ));
    }
    if shape.len() > MAX_DIMS {
        return Err(ndim_message(shape.len()));
    }
    if offset > len {
        return Err(format!(
            "offset {offset} is past the end of the {len}-byte buffer"
        ));
    }
    if let Some(d) = shape.iter().position(|&n| n > isize::MAX as usize) {
        return Err(format!(
            "extent {} of dimension {d} exceeds isize::MAX",
            shape[d]
        ));
    }
    let shape: Vec<isize> = shape.iter().map(|&n| n as isize).collect();
    predict_block(
        &big(start),
        len,
        &(big(start) + big(offset)),
        (&shape, strides),
        item,
    )
}

/// The block check's verdict on a non-negative geometry: its message names the byte range
/// relative to the block, or says that the offsets leave `i128`.
fn predict_block(
    start: &BigInt,
    len: usize,
    data: &BigInt,
    geometry: (&[isize], &[isize]),
    item: usize,
) -> Result<(), String> {
    let (shape, strides) = geometry;
    if shape.contains(&0) {
        return Ok(());
    }
    let (lo, hi) = span(shape, strides);
    if to_i128(&lo).is_none() || to_i128(&hi).is_none() {
        return Err(BEYOND.into());
    }
    let first = data + lo;
    let end = data + hi + big(item);
    if to_i128(&first).is_none() || to_i128(&end).is_none() {
        return Err(BEYOND.into());
    }
    if *start <= first && end <= start + big(len) {
        Ok(())
    } else {
        Err(format!(
            "view reaches bytes {}..{} outside the {len}-byte buffer",
            first - start,
            end - start
        ))
    }
}

fn bytes_property(c: BytesCase, stats: &Stats) -> Result<(), TestCaseError> {
    match c.ty {
        0 => bytes_typed::<u8>(&c, stats),
        1 => bytes_typed::<u16>(&c, stats),
        2 => bytes_typed::<u64>(&c, stats),
        3 => bytes_typed::<u128>(&c, stats),
        4 => bytes_typed::<[u8; 3]>(&c, stats),
        5 => bytes_typed::<[u8; 5]>(&c, stats),
        6 => bytes_typed::<[u8; 7]>(&c, stats),
        _ => bytes_typed::<[u8; 0]>(&c, stats),
    }
}

fn bytes_typed<T: Elem>(c: &BytesCase, stats: &Stats) -> Result<(), TestCaseError> {
    let item = size_of::<T>();
    let storage: Vec<u8> = (0..c.pad + c.len + 4).map(pattern).collect();
    let buf = &storage[c.pad..c.pad + c.len];
    let start = buf.as_ptr() as usize;
    let offset = c.offset.resolve(c.len);
    let strides: Vec<isize> = c.strides.iter().map(|s| s.resolve(item)).collect();

    let got = View::<T>::from_bytes(buf, offset, &c.shape, &strides);
    // The mutable twin goes through the same check.
    let mut copy = buf.to_vec();
    let got_mut = ViewMut::<T>::from_bytes(&mut copy, offset, &c.shape, &strides);
    prop_assert_eq!(
        got.as_ref().err().map(|e| e.message().to_owned()),
        got_mut.as_ref().err().map(|e| e.message().to_owned())
    );

    let valid = c.shape.len() == strides.len()
        && c.shape.len() <= MAX_DIMS
        && offset <= c.len
        && c.shape.iter().all(|&n| n <= isize::MAX as usize);
    let shape: Vec<isize> = c.shape.iter().map(|&n| n as isize).collect();
    let fits = valid
        && fits_block(
            &big(start),
            c.len,
            &(big(start) + big(offset)),
            (&shape, &strides),
            item,
        );
    prop_assert_eq!(got.is_ok(), fits, "{:?}", got.as_ref().err());
    let prediction = Prediction {
        verdict: predict_from_bytes(start, c.len, offset, (&c.shape, &strides), item),
        steps: Steps::Enough,
    };
    let unit = got.as_ref().map(|_| ()).map_err(Clone::clone);
    judge(&unit, &prediction, DEFAULT_BUDGET, stats)?;
    if let Ok(view) = got {
        read_direct(&view, buf, offset, (&shape, &strides), &c.probe, stats)?;
    }
    Ok(())
}

/// Reads an accepted direct view: every element (at most 64, else the two extreme corners
/// and random probes) through `get`, at the model's address, inside the block, with the
/// bytes the model says; `to_vec` agrees; out-of-bounds indices give `None`.
fn read_direct<T: Elem>(
    view: &View<'_, T>,
    buf: &[u8],
    offset: usize,
    geometry: (&[isize], &[isize]),
    probe: &[u64],
    stats: &Stats,
) -> Result<(), TestCaseError> {
    let (shape, strides) = geometry;
    let item = size_of::<T>();
    let start = big(buf.as_ptr() as usize);
    let data = &start + big(offset);
    prop_assert_eq!(view.shape(), shape);
    prop_assert_eq!(view.strides(), strides);
    let read = |idx: &[isize]| -> Result<T, TestCaseError> {
        let off = direct_address(&data, idx, strides) - &start;
        prop_assert!(
            off >= big(0) && &off + big(item) <= big(buf.len()),
            "element {:?} at byte {} of a {}-byte block",
            idx,
            off,
            buf.len()
        );
        let off = usize::try_from(&off).unwrap();
        let walker = geometry::element_address(view.as_raw(), idx.len(), &Direct, |d| Ok(idx[d]))
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(walker as usize, buf.as_ptr() as usize + off);
        let expected = T::decode(&buf[off..off + item]);
        let at: Vec<usize> = idx.iter().map(|&i| i as usize).collect();
        prop_assert_eq!(view.get(&at), Some(expected));
        Ok(expected)
    };
    let n = count(shape);
    if n == 0 {
        prop_assert!(view.to_vec().unwrap().is_empty());
    } else if n <= 64 {
        let mut values = Vec::new();
        for_each_index(shape, |idx| {
            values.push(read(idx)?);
            Ok(())
        })?;
        prop_assert_eq!(view.to_vec().unwrap(), values);
        stats.add("accepted: every element read");
    } else {
        let low: Vec<isize> = shape
            .iter()
            .zip(strides)
            .map(|(&n, &s)| if s < 0 { n - 1 } else { 0 })
            .collect();
        let high: Vec<isize> = shape
            .iter()
            .zip(strides)
            .map(|(&n, &s)| if s < 0 { 0 } else { n - 1 })
            .collect();
        read(&low)?;
        read(&high)?;
        // The iterator over the first elements agrees with `get` in C order.
        let mut idx = vec![0isize; shape.len()];
        for v in view.iter().take(200) {
            prop_assert_eq!(Some(v), Some(read(&idx)?));
            advance(&mut idx, shape);
        }
        for &p in probe {
            let idx: Vec<isize> = shape
                .iter()
                .enumerate()
                .map(|(d, &n)| (u128::from(p.rotate_left(d as u32 * 7)) % n as u128) as isize)
                .collect();
            read(&idx)?;
        }
        stats.add("accepted: extreme corners and probes read");
    }
    for d in 0..shape.len() {
        let mut at = vec![0usize; shape.len()];
        at[d] = shape[d] as usize;
        prop_assert_eq!(view.get(&at), None);
    }
    Ok(())
}

/// A direct `check_in_memory` call: a real block or one anywhere in the address space.
#[derive(Clone, Copy, Debug)]
enum BlockGen {
    Real { len: usize },
    Fake { start: usize, len: usize },
}

#[derive(Clone, Copy, Debug)]
enum DataGen {
    /// `block.start + k`.
    Near(isize),
    Anywhere(usize),
}

#[derive(Clone, Debug)]
struct BlockCase {
    block: BlockGen,
    shape: Vec<isize>,
    strides: Vec<Stride>,
    item: usize,
    data: DataGen,
    budget: u64,
}

fn extent_isize() -> BoxedStrategy<isize> {
    prop_oneof![
        8 => extent_small().prop_map(|n| n as isize),
        1 => (0isize..=3).prop_map(|k| isize::MAX - k),
        1 => 0..=isize::MAX,
        1 => prop_oneof![Just(-1isize), Just(isize::MIN), isize::MIN..0],
    ]
    .boxed()
}

fn block_case() -> impl Strategy<Value = BlockCase> {
    let block = prop_oneof![
        3 => (0usize..=200).prop_map(|len| BlockGen::Real { len }),
        2 => (
            prop_oneof![
                Just(0usize),
                Just(1usize),
                0usize..4096,
                any::<usize>(),
                (usize::MAX - 4096)..=usize::MAX,
            ],
            prop_oneof![0usize..4096, any::<usize>(), Just(usize::MAX)],
        )
            .prop_map(|(start, len)| BlockGen::Fake { start, len }),
    ];
    let item = prop_oneof![
        3 => prop_oneof![
            Just(0usize),
            Just(1usize),
            Just(2usize),
            Just(3usize),
            Just(5usize),
            Just(7usize),
            Just(8usize),
            Just(16usize),
            Just(4096usize),
        ],
        1 => Just(1usize),
        1 => prop_oneof![Just(usize::MAX), any::<usize>()],
    ];
    let data = prop_oneof![
        6 => (-64isize..=224).prop_map(DataGen::Near),
        1 => any::<i32>().prop_map(|k| DataGen::Near(k as isize)),
        1 => any::<usize>().prop_map(DataGen::Anywhere),
    ];
    let budget = prop_oneof![8 => Just(DEFAULT_BUDGET), 1 => 0u64..=10];
    (ndim_gen(), any::<bool>())
        .prop_flat_map(move |(ndim, extreme)| {
            let (e, s) = if extreme {
                (extent_isize(), stride_extreme())
            } else {
                (
                    extent_small().prop_map(|n| n as isize).boxed(),
                    stride_small(),
                )
            };
            (
                block.clone(),
                vec(e, ndim),
                vec(s, ndim),
                item.clone(),
                data.clone(),
                budget.clone(),
            )
        })
        .prop_map(|(block, shape, strides, item, data, budget)| BlockCase {
            block,
            shape,
            strides,
            item,
            data,
            budget,
        })
}

fn block_property(c: BlockCase, stats: &Stats) -> Result<(), TestCaseError> {
    let storage: Vec<u8> = match c.block {
        BlockGen::Real { len } => (0..len + 4).map(pattern).collect(),
        BlockGen::Fake { .. } => Vec::new(),
    };
    let block = match c.block {
        BlockGen::Real { len } => Block::of(&storage[..len]),
        BlockGen::Fake { start, len } => Block {
            start: without_provenance(start),
            len,
        },
    };
    let start = block.start as usize;
    let (data, readable) = match (c.data, c.block) {
        (DataGen::Near(k), BlockGen::Real { .. }) => {
            (storage.as_ptr().cast_mut().wrapping_offset(k), true)
        }
        (DataGen::Near(k), BlockGen::Fake { .. }) => {
            (without_provenance_mut(start.wrapping_add_signed(k)), false)
        }
        (DataGen::Anywhere(a), _) => (without_provenance_mut(a), false),
    };
    let ndim = c.shape.len();
    let strides: Vec<isize> = c.strides.iter().map(|s| s.resolve(c.item)).collect();
    let mut raw = MemviewSlice {
        data,
        ..MemviewSlice::EMPTY
    };
    for (d, (&n, &s)) in c.shape.iter().zip(&strides).take(MAX_DIMS).enumerate() {
        raw.shape[d] = n;
        raw.strides[d] = s;
        raw.suboffsets[d] = -1;
    }

    let got = geometry::check_in_memory(&raw, ndim, c.item, &block, c.budget);

    let negative = c.shape.iter().position(|&n| n < 0);
    let data_big = big(data as usize);
    let prediction = if ndim > MAX_DIMS {
        Prediction {
            verdict: Err(ndim_message(ndim)),
            steps: Steps::Enough,
        }
    } else if let Some(d) = negative {
        Prediction {
            verdict: Err(format!("negative extent {} in dimension {d}", c.shape[d])),
            steps: Steps::Enough,
        }
    } else if c.shape.contains(&0) {
        Prediction {
            verdict: Ok(()),
            steps: Steps::Enough,
        }
    } else {
        // One segment: at least 1 step, at most ndim + 1.
        let steps = if c.budget < 1 {
            Steps::Short
        } else if c.budget > ndim as u64 {
            Steps::Enough
        } else {
            Steps::Maybe
        };
        Prediction {
            verdict: predict_block(
                &big(start),
                block.len,
                &data_big,
                (&c.shape, &strides),
                c.item,
            ),
            steps,
        }
    };
    let fits = ndim <= MAX_DIMS
        && negative.is_none()
        && fits_block(
            &big(start),
            block.len,
            &data_big,
            (&c.shape, &strides),
            c.item,
        );
    if got.is_ok() {
        prop_assert!(fits, "accepted, but the model says it does not fit");
    }
    if !fits {
        prop_assert!(got.is_err());
    }
    if fits && prediction.steps == Steps::Enough {
        prop_assert!(got.is_ok(), "{:?}", got);
    }
    let outcome = judge(&got, &prediction, c.budget, stats)?;
    if matches!(c.block, BlockGen::Fake { .. }) {
        stats.add("(blocks anywhere in the address space)");
    }
    if outcome == Outcome::Accepted && readable && count(&c.shape) <= 64 && c.item <= 16 {
        // Every element through the crate's address walker: at the model's address, inside
        // the block; for one-byte items also read through a view.
        let buf = &storage[..block.len];
        // SAFETY: `check_in_memory` accepted `raw` (direct, `ndim <= 8`, no negative extent)
        // against the block of `buf`: every in-bounds element's `c.item` (here 1) bytes lie
        // in `buf`; `raw.data` is derived from `storage`'s pointer, `storage` outlives the
        // view and is not written while it lives; there are no pointer slots.
        let view = (c.item == 1).then(|| unsafe { View::<u8>::from_raw(raw, ndim) }.unwrap());
        for_each_index(&c.shape, |idx| {
            let addr = direct_address(&data_big, idx, &strides);
            let off = &addr - big(start);
            prop_assert!(off >= big(0) && &off + big(c.item) <= big(buf.len()));
            let walker = geometry::element_address(&raw, ndim, &Direct, |d| Ok(idx[d]))
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(big(walker as usize), addr);
            if let Some(view) = &view {
                let off = usize::try_from(&off).unwrap();
                let at: Vec<usize> = idx.iter().map(|&i| i as usize).collect();
                prop_assert_eq!(view.get(&at), Some(buf[off]));
            }
            Ok(())
        })?;
        stats.add("accepted: every element address checked");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Part 2: pointer tables
// ---------------------------------------------------------------------------------------

/// Real rows (sub-ranges of one arena, separated by gaps that are no block) and real pointer
/// tables: `top`, and for two levels the tables in `mid` (separated by gap slots that are no
/// slot). Slots may hold bogus pointers; the check may only compare them.
struct Tables {
    arena: Vec<u8>,
    rows: Vec<(usize, usize)>,
    mid: Vec<*mut u8>,
    mids: Vec<(usize, usize)>,
    top: Vec<*mut u8>,
}

impl Tables {
    fn row_blocks(&self) -> impl Iterator<Item = (i128, i128)> + '_ {
        let base = self.arena.as_ptr() as usize as i128;
        self.rows
            .iter()
            .map(move |&(o, l)| (base + o as i128, base + (o + l) as i128))
    }
}

impl KnownMemory for Tables {
    fn contains(&self, first: i128, end: i128) -> bool {
        self.row_blocks()
            .any(|(s, e)| s <= first && first <= end && end <= e)
    }

    fn slot(&self, addr: i128) -> Option<*mut u8> {
        let w = size_of::<*mut u8>() as i128;
        let lookup = |table: &[*mut u8]| {
            let off = addr - table.as_ptr() as usize as i128;
            (off >= 0 && off % w == 0 && off / w < table.len() as i128)
                .then(|| table[(off / w) as usize])
        };
        lookup(&self.top).or_else(|| {
            self.mids
                .iter()
                .find_map(|&(f, n)| lookup(&self.mid[f..f + n]))
        })
    }
}

#[derive(Clone, Copy, Debug)]
enum SlotGen {
    /// Row (one level) or mid table (two levels) `which`, plus `off` bytes.
    To {
        which: usize,
        off: isize,
    },
    Bogus(usize),
}

#[derive(Clone, Copy, Debug)]
struct DimGen {
    extent: isize,
    stride: isize,
    sub: isize,
}

#[derive(Clone, Debug)]
struct TablesCase {
    /// `(len, gap before)`.
    rows: Vec<(usize, usize)>,
    /// `(slots, gap slots before)`; empty for one level.
    mids: Vec<(Vec<SlotGen>, usize)>,
    top: Vec<SlotGen>,
    dims: Vec<DimGen>,
    data_off: isize,
    item: usize,
    budget: u64,
    huge: bool,
}

fn slot_gen(offs: BoxedStrategy<isize>) -> BoxedStrategy<SlotGen> {
    prop_oneof![
        12 => (0usize..8, offs).prop_map(|(which, off)| SlotGen::To { which, off }),
        1 => prop_oneof![
            Just(0usize),
            Just(1usize),
            Just(7usize),
            Just(8usize),
            Just(usize::MAX),
            Just(usize::MAX - 7),
            any::<usize>(),
        ]
        .prop_map(SlotGen::Bogus),
    ]
    .boxed()
}

fn row_off() -> BoxedStrategy<isize> {
    prop_oneof![6 => Just(0isize), 2 => 0isize..=8, 1 => -8isize..=64].boxed()
}

fn table_off() -> BoxedStrategy<isize> {
    prop_oneof![6 => Just(0isize), 3 => (-1isize..=6).prop_map(|k| 8 * k), 1 => -9isize..=60]
        .boxed()
}

fn table_stride() -> BoxedStrategy<isize> {
    prop_oneof![
        8 => prop_oneof![Just(8isize), Just(16isize), Just(-8isize), Just(24isize)],
        2 => Just(0isize),
        2 => -20isize..=20,
        1 => prop_oneof![Just(isize::MIN), Just(isize::MAX), any::<isize>()],
    ]
    .boxed()
}

fn row_stride() -> BoxedStrategy<isize> {
    prop_oneof![
        8 => -8isize..=8,
        1 => -40isize..=40,
        1 => prop_oneof![Just(isize::MIN), Just(isize::MAX), any::<isize>()],
    ]
    .boxed()
}

fn sub_gen() -> BoxedStrategy<isize> {
    prop_oneof![
        4 => Just(0isize),
        3 => 0isize..=16,
        1 => 17isize..=80,
        1 => prop_oneof![Just(isize::MAX), Just(isize::MAX - 8), 0..=isize::MAX],
        1 => Just(-1isize),
    ]
    .boxed()
}

fn table_extent(huge: bool) -> BoxedStrategy<isize> {
    let small =
        prop_oneof![1 => Just(0isize), 12 => Just(1isize), 12 => Just(2isize), 8 => 3isize..=4];
    if huge {
        prop_oneof![
            3 => small,
            1 => prop_oneof![
                Just(1isize << 20),
                Just(1isize << 40),
                Just(isize::MAX),
                1..=isize::MAX,
            ],
        ]
        .boxed()
    } else {
        small.boxed()
    }
}

fn dims_gen(
    n: usize,
    ext: BoxedStrategy<isize>,
    stride: BoxedStrategy<isize>,
    sub: Option<BoxedStrategy<isize>>,
) -> BoxedStrategy<Vec<DimGen>> {
    let sub = sub.unwrap_or_else(|| Just(-1isize).boxed());
    vec(
        (ext, stride, sub).prop_map(|(extent, stride, sub)| DimGen {
            extent,
            stride,
            sub,
        }),
        n,
    )
    .boxed()
}

fn tables_case() -> impl Strategy<Value = TablesCase> {
    (
        any::<bool>(),
        0usize..=1,
        0usize..=1,
        0usize..=2,
        proptest::bool::weighted(0.25),
    )
        .prop_flat_map(|(two, pre, mid_pre, trail, huge)| {
            let ext = table_extent(huge);
            let rows = vec(
                (prop_oneof![1 => 0usize..=7, 4 => 8usize..=40], 0usize..=8),
                1..=5,
            );
            let top = vec(
                slot_gen(if two { table_off() } else { row_off() }),
                1usize..=8,
            );
            let mids = if two {
                vec((vec(slot_gen(row_off()), 1usize..=6), 0usize..=2), 1..=3).boxed()
            } else {
                Just(Vec::new()).boxed()
            };
            let dims = (
                dims_gen(pre, ext.clone(), table_stride(), None),
                dims_gen(1, ext.clone(), table_stride(), Some(sub_gen())),
                dims_gen(
                    if two { mid_pre } else { 0 },
                    ext.clone(),
                    table_stride(),
                    None,
                ),
                dims_gen(
                    usize::from(two),
                    ext.clone(),
                    table_stride(),
                    Some(sub_gen()),
                ),
                dims_gen(trail, ext, row_stride(), None),
            )
                .prop_map(|(a, b, c, d, e)| [a, b, c, d, e].concat());
            let data_off = prop_oneof![
                6 => Just(0isize),
                2 => (-1isize..=3).prop_map(|k| 8 * k),
                1 => -16isize..=70,
            ];
            let item = prop_oneof![Just(1usize), Just(2usize), Just(3usize), Just(8usize)];
            let budget = if huge {
                prop_oneof![0u64..=3, 4u64..=60, 61u64..=3000].boxed()
            } else {
                prop_oneof![9 => Just(DEFAULT_BUDGET), 1 => 0u64..=40].boxed()
            };
            (rows, mids, top, dims, data_off, item, budget, Just(huge))
        })
        .prop_map(
            |(rows, mids, top, dims, data_off, item, budget, huge)| TablesCase {
                rows,
                mids,
                top,
                dims,
                data_off,
                item,
                budget,
                huge,
            },
        )
}

fn build_tables(c: &TablesCase) -> Tables {
    let mut rows = Vec::new();
    let mut at = 0;
    for &(len, gap) in &c.rows {
        at += gap;
        rows.push((at, len));
        at += len;
    }
    let arena: Vec<u8> = (0..at + 8).map(pattern).collect();
    let to_row = |g: &SlotGen| match *g {
        SlotGen::To { which, off } => arena
            .as_ptr()
            .cast_mut()
            .wrapping_add(rows[which % rows.len()].0)
            .wrapping_offset(off),
        SlotGen::Bogus(v) => without_provenance_mut(v),
    };
    let mut mid: Vec<*mut u8> = Vec::new();
    let mut mids = Vec::new();
    for (slots, gap) in &c.mids {
        mid.extend(std::iter::repeat_n(null_mut(), *gap));
        mids.push((mid.len(), slots.len()));
        mid.extend(slots.iter().map(to_row));
    }
    mid.push(null_mut());
    let top: Vec<*mut u8> = c
        .top
        .iter()
        .map(|g| match (*g, mids.is_empty()) {
            (SlotGen::To { which, off }, false) => mid
                .as_ptr()
                .cast::<u8>()
                .cast_mut()
                .wrapping_add(mids[which % mids.len()].0 * size_of::<*mut u8>())
                .wrapping_offset(off),
            _ => to_row(g),
        })
        .collect();
    Tables {
        arena,
        rows,
        mid,
        mids,
        top,
    }
}

enum Stop {
    Fail(String),
    OutOfSteps,
}

/// The reference walk of `check_in_memory` in `BigInt`: each direct run's span, each pointer
/// slot the in-bounds index prefixes reach in C order, each segment after a pointer. Counts
/// the steps the check spends between a lower bound (1 per segment and per slot) and an upper
/// bound (`ndim - from + 1` per segment, 1 per slot).
struct Walk<'a> {
    raw: &'a MemviewSlice,
    ndim: usize,
    item: BigInt,
    mem: &'a Tables,
    budget: u64,
    lo: u64,
    hi: u64,
}

impl Walk<'_> {
    fn charge(&mut self, lo: u64, hi: u64) -> Result<(), Stop> {
        self.lo = self.lo.saturating_add(lo);
        self.hi = self.hi.saturating_add(hi);
        if self.lo > self.budget {
            Err(Stop::OutOfSteps)
        } else {
            Ok(())
        }
    }

    fn contained(&self, first: &BigInt, end: &BigInt) -> Result<(), Stop> {
        match (to_i128(first), to_i128(end)) {
            (Some(f), Some(e)) if self.mem.contains(f, e) => Ok(()),
            (Some(f), Some(e)) => Err(Stop::Fail(format!(
                "view reaches addresses {f:#x}..{e:#x} outside the memory it was given"
            ))),
            _ => Err(Stop::Fail(BEYOND.into())),
        }
    }

    fn segment(&mut self, from: usize, base: BigInt) -> Result<(), Stop> {
        self.charge(1, (self.ndim - from + 1) as u64)?;
        let raw = self.raw;
        let a = (from..self.ndim).find(|&d| raw.suboffsets[d] >= 0);
        let end = a.map_or(self.ndim, |a| a + 1);
        let (lo, hi) = span(&raw.shape[from..end], &raw.strides[from..end]);
        if to_i128(&lo).is_none() || to_i128(&hi).is_none() {
            return Err(Stop::Fail(BEYOND.into()));
        }
        let Some(a) = a else {
            return self.contained(&(&base + lo), &(base + hi + &self.item));
        };
        let shape = &raw.shape[from..=a];
        let mut idx = vec![0isize; shape.len()];
        loop {
            self.charge(1, 1)?;
            let at = direct_address(&base, &idx, &raw.strides[from..=a]);
            let at = to_i128(&at);
            let Some(p) = at.and_then(|at| self.mem.slot(at)) else {
                return Err(Stop::Fail(format!(
                    "indirect dimension {a} reads a pointer at {}, which is not a slot of a known pointer table",
                    at.map_or("an address beyond any memory".into(), |at| format!("{at:#x}"))
                )));
            };
            let next = big(p as usize) + big(raw.suboffsets[a]);
            if a + 1 == self.ndim {
                self.contained(&next, &(&next + &self.item))?;
            } else {
                self.segment(a + 1, next)?;
            }
            if !advance(&mut idx, shape) {
                return Ok(());
            }
        }
    }
}

fn predict_tables(
    raw: &MemviewSlice,
    ndim: usize,
    item: usize,
    mem: &Tables,
    budget: u64,
) -> Prediction {
    if raw.shape[..ndim].contains(&0) {
        return Prediction {
            verdict: Ok(()),
            steps: Steps::Enough,
        };
    }
    let mut walk = Walk {
        raw,
        ndim,
        item: big(item),
        mem,
        budget,
        lo: 0,
        hi: 0,
    };
    let verdict = match walk.segment(0, big(raw.data as usize)) {
        Ok(()) => Ok(()),
        Err(Stop::Fail(m)) => Err(m),
        Err(Stop::OutOfSteps) => {
            return Prediction {
                verdict: Ok(()),
                steps: Steps::Short,
            }
        }
    };
    let steps = if walk.hi <= budget {
        Steps::Enough
    } else {
        Steps::Maybe
    };
    Prediction { verdict, steps }
}

/// The brute-force model: every element, following the pointers of `mem` at each indirect
/// dimension. `fits`: every slot read is a slot of a known table and the elements reached
/// through each pointer (one segment) lie together in one known row; `elements` (C order,
/// address) when every slot is known; `each_known`: every element lies in some row.
struct Brute {
    fits: bool,
    each_known: bool,
    elements: Vec<(Vec<isize>, i128)>,
}

fn brute_force(raw: &MemviewSlice, ndim: usize, item: usize, mem: &Tables) -> Brute {
    let shape = &raw.shape[..ndim];
    let last = (0..ndim).rev().find(|&d| raw.suboffsets[d] >= 0);
    let key_len = last.map_or(0, |l| l + 1);
    let mut groups: HashMap<Vec<isize>, (i128, i128)> = HashMap::new();
    let mut elements = Vec::new();
    let mut slots_known = true;
    let mut each_known = true;
    let _ = for_each_index(shape, |idx| {
        let mut p = big(raw.data as usize);
        for (d, &i) in idx.iter().enumerate() {
            p += big(i) * big(raw.strides[d]);
            if raw.suboffsets[d] >= 0 {
                match to_i128(&p).and_then(|at| mem.slot(at)) {
                    Some(q) => p = big(q as usize) + big(raw.suboffsets[d]),
                    None => {
                        slots_known = false;
                        return Err(TestCaseError::reject("slot"));
                    }
                }
            }
        }
        let (Some(first), Some(end)) = (to_i128(&p), to_i128(&(&p + big(item)))) else {
            each_known = false;
            return Ok(());
        };
        each_known &= mem.contains(first, end);
        let g = groups
            .entry(idx[..key_len].to_vec())
            .or_insert((first, end));
        *g = (g.0.min(first), g.1.max(end));
        elements.push((idx.to_vec(), first));
        Ok(())
    });
    let fits = slots_known && each_known && groups.values().all(|&(f, e)| mem.contains(f, e));
    Brute {
        fits,
        each_known: slots_known && each_known,
        elements,
    }
}

fn tables_property(c: TablesCase, stats: &Stats) -> Result<(), TestCaseError> {
    let mut dims = c.dims.clone();
    if !c.huge {
        // Small shapes: at most 512 elements.
        while dims.iter().map(|g| g.extent as u128).product::<u128>() > 512 {
            let big_dim = dims.iter_mut().max_by_key(|g| g.extent).unwrap();
            big_dim.extent /= 2;
        }
    }
    let tables = build_tables(&c);
    let ndim = dims.len();
    let mut raw = MemviewSlice {
        data: tables
            .top
            .as_ptr()
            .cast::<u8>()
            .cast_mut()
            .wrapping_offset(c.data_off),
        ..MemviewSlice::EMPTY
    };
    for (d, g) in dims.iter().enumerate() {
        raw.shape[d] = g.extent;
        raw.strides[d] = g.stride;
        raw.suboffsets[d] = g.sub;
    }

    let got = geometry::check_in_memory(&raw, ndim, c.item, &tables, c.budget);

    let prediction = predict_tables(&raw, ndim, c.item, &tables, c.budget);
    let outcome = judge(&got, &prediction, c.budget, stats)?;
    match prediction.steps {
        Steps::Enough => {}
        Steps::Maybe => stats.add("(budget: model undecided between verdict and out of steps)"),
        Steps::Short => stats.add("(budget: model says out of steps)"),
    }
    if c.huge {
        stats.add("(huge extents)");
        return Ok(());
    }
    let brute = brute_force(&raw, ndim, c.item, &tables);
    if prediction.steps != Steps::Short {
        prop_assert_eq!(
            prediction.verdict.is_ok(),
            brute.fits,
            "the reference walk and the brute force disagree"
        );
    }
    match outcome {
        Outcome::Accepted => prop_assert!(brute.fits),
        Outcome::Refused => prop_assert!(!brute.fits),
        Outcome::OutOfSteps => prop_assert!(c.budget != DEFAULT_BUDGET),
    }
    if brute.each_known && !brute.fits {
        stats.add("(refused: every element known, but a segment straddles rows)");
    }
    if outcome == Outcome::Accepted && brute.elements.is_empty() {
        stats.add("accepted: empty");
    }
    if outcome == Outcome::Accepted && !brute.elements.is_empty() {
        stats.add("accepted: every element read");
        match c.item {
            1 => read_tables::<u8>(raw, ndim, &tables, &brute.elements)?,
            2 => read_tables::<u16>(raw, ndim, &tables, &brute.elements)?,
            3 => read_tables::<[u8; 3]>(raw, ndim, &tables, &brute.elements)?,
            _ => read_tables::<u64>(raw, ndim, &tables, &brute.elements)?,
        }
    }
    Ok(())
}

/// Reads an accepted indirect view through `View::from_raw`: every element equals the bytes
/// at the model's address, inside the arena; `to_vec` agrees.
fn read_tables<T: Elem>(
    raw: MemviewSlice,
    ndim: usize,
    tables: &Tables,
    elements: &[(Vec<isize>, i128)],
) -> Result<(), TestCaseError> {
    let item = size_of::<T>();
    // SAFETY: `check_in_memory` accepted `raw` against `tables`: every pointer slot an
    // in-bounds index prefix reaches is a slot of `tables.top` or of a table in `tables.mid`
    // (real, initialised pointers, derived from `tables`' own vectors), and every element's
    // `size_of::<T>()` bytes lie in a row of `tables.arena`. `raw.data` is derived from
    // `tables.top`'s pointer. `tables` outlives the view and is not written while it lives.
    let view = unsafe { View::<T>::from_raw(raw, ndim) }
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let base = tables.arena.as_ptr() as usize as i128;
    let mut values = Vec::new();
    for (idx, addr) in elements {
        let off = addr - base;
        prop_assert!(off >= 0 && off as usize + item <= tables.arena.len());
        let off = off as usize;
        let expected = T::decode(&tables.arena[off..off + item]);
        let at: Vec<usize> = idx.iter().map(|&i| i as usize).collect();
        prop_assert_eq!(view.get(&at), Some(expected));
        values.push(expected);
    }
    prop_assert_eq!(view.to_vec().unwrap(), values);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Part 3: check_within
// ---------------------------------------------------------------------------------------

/// A direct source geometry at a synthetic address (`check_within` only computes).
#[derive(Clone, Debug)]
struct Source {
    data: usize,
    shape: Vec<isize>,
    strides: Vec<isize>,
}

impl Source {
    fn raw(&self) -> MemviewSlice {
        let mut raw = MemviewSlice {
            data: without_provenance_mut(self.data),
            ..MemviewSlice::EMPTY
        };
        for d in 0..self.shape.len() {
            raw.shape[d] = self.shape[d];
            raw.strides[d] = self.strides[d];
            raw.suboffsets[d] = -1;
        }
        raw
    }
}

fn source_gen() -> impl Strategy<Value = Source> {
    (1usize..=4)
        .prop_flat_map(|n| {
            (
                vec(
                    prop_oneof![1 => Just(0isize), 8 => Just(1isize), 24 => 2isize..=5],
                    n,
                ),
                0u8..4,
                vec(
                    prop_oneof![3 => -40isize..=40, 1 => (-5isize..=5).prop_map(|k| 8 * k)],
                    n,
                ),
                vec(any::<bool>(), n),
                vec(any::<u16>(), n),
                prop_oneof![Just(1isize), Just(8isize)],
                1isize..=3,
                0usize..4096,
            )
        })
        .prop_map(|(shape, layout, random, signs, keys, item, pad, off)| {
            let n = shape.len();
            // Contiguous in a permuted order, signs flipped, maybe padded: no overlap.
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by_key(|&d| keys[d]);
            let mut acc = item;
            let mut strides = vec![0isize; n];
            for &d in &order {
                strides[d] = if signs[d] { -acc } else { acc };
                acc *= shape[d].max(1) * if layout == 1 { pad } else { 1 };
            }
            match layout {
                2 => strides = random,
                3 => strides[keys[0] as usize % n] = random[0],
                _ => {}
            }
            Source {
                data: (1usize << 40) + off,
                shape,
                strides,
            }
        })
}

/// Every element address of a direct geometry, in C order.
fn direct_addresses(raw: &MemviewSlice, ndim: usize) -> Vec<BigInt> {
    let data = big(raw.data as usize);
    let mut out = Vec::new();
    let _ = for_each_index(&raw.shape[..ndim], |idx| {
        out.push(direct_address(&data, idx, &raw.strides[..ndim]));
        Ok(())
    });
    out
}

#[derive(Clone, Debug)]
enum Op {
    Slice(Vec<SliceItem>, Semantics),
    Transpose,
}

fn bound() -> BoxedStrategy<Option<isize>> {
    prop_oneof![
        2 => Just(None),
        6 => (-7isize..=7).prop_map(Some),
        1 => prop_oneof![Just(isize::MIN), Just(isize::MAX), Just(isize::MIN + 1)].prop_map(Some),
    ]
    .boxed()
}

fn step_gen() -> BoxedStrategy<Option<isize>> {
    prop_oneof![
        3 => Just(None),
        6 => prop_oneof![-3isize..=-1, 1isize..=3].prop_map(Some),
        1 => prop_oneof![
            Just(0isize),
            Just(isize::MIN),
            Just(isize::MAX),
            Just(-isize::MAX),
        ]
        .prop_map(Some),
    ]
    .boxed()
}

fn item_gen() -> BoxedStrategy<SliceItem> {
    prop_oneof![
        3 => prop_oneof![8 => -6isize..=6, 1 => prop_oneof![Just(isize::MIN), Just(isize::MAX)]]
            .prop_map(SliceItem::Index),
        6 => (bound(), bound(), step_gen())
            .prop_map(|(a, b, c)| SliceItem::Slice(Slice::new(a, b, c))),
        2 => Just(SliceItem::NewAxis),
        1 => Just(SliceItem::Ellipsis),
    ]
    .boxed()
}

fn op_gen() -> BoxedStrategy<Op> {
    prop_oneof![
        4 => (
            vec(item_gen(), 0..=5),
            prop_oneof![3 => Just(Semantics::Python), 1 => Just(Semantics::Cython)],
        )
            .prop_map(|(items, sem)| Op::Slice(items, sem)),
        1 => Just(Op::Transpose),
    ]
    .boxed()
}

fn derived_property(c: (Source, Vec<Op>), stats: &Stats) -> Result<(), TestCaseError> {
    let (src, ops) = c;
    let source = src.raw();
    let sn = src.shape.len();
    let addrs = direct_addresses(&source, sn);
    let set: HashSet<&BigInt> = addrs.iter().collect();
    let overlapping = set.len() < addrs.len();
    let (mut raw, mut nd) = (source, sn);
    for op in &ops {
        match op {
            Op::Slice(items, sem) => {
                match slicing::slice_in_bounds(&raw, nd, items, *sem, Direct) {
                    Ok((r, n)) => (raw, nd) = (r, n),
                    Err(_) => stats.add("(derivation step refused by slicing)"),
                }
            }
            Op::Transpose => slicing::transpose_in_source(&mut raw, nd)
                .map_err(|e| TestCaseError::fail(e.to_string()))?,
        }
    }
    // The derivation itself stays in the source (what makes the witness exist).
    for a in direct_addresses(&raw, nd) {
        prop_assert!(set.contains(&a), "slicing left the source");
    }
    let got = geometry::check_within(&source, sn, &raw, nd, &Direct, DEFAULT_BUDGET);
    let empty = raw.shape[..nd].contains(&0);
    match (&got, overlapping) {
        (Ok(()), false) => stats.add(if empty {
            "accepted: empty"
        } else {
            "accepted: non-overlapping source"
        }),
        (Ok(()), true) => stats.add("accepted: overlapping source"),
        (Err(e), true) => {
            prop_assert_eq!(e.kind(), ErrorKind::ValueError);
            prop_assert_eq!(
                e.message(),
                budget_message(DEFAULT_BUDGET),
                "only giving up is allowed"
            );
            stats.add("gave up: overlapping source");
        }
        (Err(e), false) => prop_assert!(
            false,
            "derived view of a non-overlapping source refused: {} (view {:?}, ndim {})",
            e,
            raw,
            nd
        ),
    }
    Ok(())
}

#[derive(Clone, Copy, Debug)]
enum RawStride {
    /// `k` times the stride of source dimension `j % ndim`.
    Src(usize, i8),
    Lit(isize),
}

#[derive(Clone, Debug)]
struct RawCase {
    src: Source,
    dims: Vec<(isize, RawStride)>,
    coeffs: Vec<i8>,
    noise: isize,
    /// A dimension made indirect (suboffset), which a direct source must refuse.
    indirect: Option<(usize, isize)>,
    budget: u64,
    probe: Vec<u64>,
}

fn raw_case() -> impl Strategy<Value = RawCase> {
    let extent = prop_oneof![
        1 => Just(0isize),
        3 => Just(1isize),
        3 => Just(2isize),
        2 => 3isize..=4,
        1 => prop_oneof![Just(isize::MAX), 5..=isize::MAX],
    ];
    let stride = prop_oneof![
        6 => (0usize..4, -3i8..=3).prop_map(|(j, k)| RawStride::Src(j, k)),
        1 => Just(RawStride::Lit(0)),
        2 => (-50isize..=50).prop_map(RawStride::Lit),
        1 => prop_oneof![Just(isize::MIN), Just(isize::MAX), any::<isize>()].prop_map(RawStride::Lit),
    ];
    (
        source_gen(),
        vec((extent, stride), 0..=4),
        vec(-1i8..=5, 4),
        prop_oneof![
            6 => Just(0isize),
            2 => -16isize..=16,
            1 => any::<i32>().prop_map(|x| x as isize),
            1 => any::<isize>(),
        ],
        proptest::option::weighted(0.1, (0usize..4, 0isize..=16)),
        prop_oneof![9 => Just(DEFAULT_BUDGET), 1 => 0u64..=30],
        vec(any::<u64>(), 4),
    )
        .prop_map(
            |(src, dims, coeffs, noise, indirect, budget, probe)| RawCase {
                src,
                dims,
                coeffs,
                noise,
                indirect,
                budget,
                probe,
            },
        )
}

fn raw_within_property(c: RawCase, stats: &Stats) -> Result<(), TestCaseError> {
    let source = c.src.raw();
    let sn = c.src.shape.len();
    let set: HashSet<BigInt> = direct_addresses(&source, sn).into_iter().collect();
    let mut data = c.src.data as i128 + c.noise as i128;
    for k in 0..sn {
        data += i128::from(c.coeffs[k]) * c.src.strides[k] as i128;
    }
    let mut raw = MemviewSlice {
        data: without_provenance_mut(data as usize),
        ..MemviewSlice::EMPTY
    };
    let nd = c.dims.len();
    for (d, &(n, s)) in c.dims.iter().enumerate() {
        raw.shape[d] = n;
        raw.strides[d] = match s {
            RawStride::Src(j, k) => (k as isize).wrapping_mul(c.src.strides[j % sn]),
            RawStride::Lit(s) => s,
        };
        raw.suboffsets[d] = -1;
    }
    let indirect = match c.indirect {
        Some((d, sub)) if nd > 0 => {
            raw.suboffsets[d % nd] = sub;
            true
        }
        _ => false,
    };

    let got = geometry::check_within(&source, sn, &raw, nd, &Direct, c.budget);

    // What the view reaches: its first pointer slot (an indirect dimension `d`) only when
    // no dimension up to `d` is empty; its elements only when none is empty.
    let first_empty = raw.shape[..nd].iter().position(|&n| n == 0);
    let indirect_at = (0..nd).find(|&d| raw.suboffsets[d] >= 0);
    let reaches_slot = indirect_at.is_some_and(|d| first_empty.is_none_or(|j| j > d));
    if first_empty.is_some() && !reaches_slot {
        prop_assert_eq!(
            &got,
            &Ok(()),
            "an empty view reaching no pointer slot is accepted"
        );
        return Ok(());
    }
    if indirect {
        // The direct source has no pointer table for the view's slot reads.
        let e = got.as_ref().unwrap_err();
        prop_assert_eq!(e.message(), MORE_INDIRECT);
        stats.add("refused: more indirect dimensions than the source");
        return Ok(());
    }
    if c.src.shape.contains(&0) {
        let e = got.as_ref().unwrap_err();
        prop_assert_eq!(
            e.message(),
            NOT_WITHIN,
            "a view of an empty source is refused"
        );
    }

    let shape = &raw.shape[..nd];
    let strides = &raw.strides[..nd];
    let data = big(raw.data as usize);
    let n = count(shape);
    // Brute force (small) or the two extreme corners and probes (huge).
    let all_in = (n <= 4096).then(|| direct_addresses(&raw, nd).iter().all(|a| set.contains(a)));
    match &got {
        Ok(()) => {
            stats.add("accepted");
            match all_in {
                Some(all_in) => prop_assert!(all_in, "accepted an element outside the source"),
                None => {
                    let mut idxs: Vec<Vec<isize>> = vec![
                        shape
                            .iter()
                            .zip(strides)
                            .map(|(&n, &s)| if s < 0 { n - 1 } else { 0 })
                            .collect(),
                        shape
                            .iter()
                            .zip(strides)
                            .map(|(&n, &s)| if s < 0 { 0 } else { n - 1 })
                            .collect(),
                    ];
                    for &p in &c.probe {
                        idxs.push(
                            shape
                                .iter()
                                .enumerate()
                                .map(|(d, &n)| {
                                    (u128::from(p.rotate_left(d as u32 * 9)) % n as u128) as isize
                                })
                                .collect(),
                        );
                    }
                    for idx in idxs {
                        prop_assert!(set.contains(&direct_address(&data, &idx, strides)));
                    }
                    stats.add("accepted: huge, corners and probes checked");
                }
            }
        }
        Err(e) => {
            prop_assert_eq!(e.kind(), ErrorKind::ValueError);
            if e.message() == budget_message(c.budget) {
                stats.add("refused: out of steps");
            } else {
                prop_assert_eq!(e.message(), NOT_WITHIN);
                stats.add("refused: not an element of the source");
                if all_in == Some(true) {
                    stats.add("(refused although every element is a source element: no witness)");
                }
            }
        }
    }
    Ok(())
}

/// The test's tables answer the check's pointer reads: only slots of their tables, and
/// with an error naming the problem otherwise (`check_within` may read only the source's
/// slots, which are all there).
impl cyview::ReadPointer for Tables {
    fn read_pointer(&self, at: *const u8) -> cyview::Result<*mut u8> {
        self.slot(at as usize as i128)
            .ok_or_else(|| cyview::Error::new(ErrorKind::ValueError, NOT_A_SLOT))
    }
}

#[derive(Clone, Copy, Debug)]
enum Mutation {
    None,
    Data(isize),
    Shape(usize, isize),
    Stride(usize, isize),
    Sub(usize, isize),
}

/// A valid PIL-style source over real tables, by construction: `[pre,] a` over the top
/// table (indirect at `a`), for two levels `[mid_pre,] b` over mid tables (indirect at `b`),
/// then `trail` contiguous in rows (`lead` items of slack before each row's elements, the
/// suboffset). Then a derivation by slicing and transposing, and a mutation of the result.
#[derive(Clone, Debug)]
struct IndirectSourceCase {
    two: bool,
    pre: Option<isize>,
    a: isize,
    mid_pre: Option<isize>,
    b: isize,
    trail: Vec<isize>,
    item: usize,
    /// Table dimensions in Fortran order.
    table_f: bool,
    /// Row dimensions in Fortran order.
    trail_f: bool,
    lead: usize,
    lead_slots: usize,
    /// Slots share rows (and mid tables): elements of different prefixes coincide.
    share: bool,
    /// Integer indices of the leading dimensions, applied first (reads the source's
    /// pointers: the result lies behind one of them).
    leading: Vec<isize>,
    ops: Vec<Op>,
    mutation: Mutation,
}

fn indirect_source_case() -> impl Strategy<Value = IndirectSourceCase> {
    let ext = || prop_oneof![1 => Just(0isize), 8 => Just(1isize), 21 => 2isize..=3];
    let delta = || prop_oneof![-16isize..=-1, 1isize..=16];
    let mutation = prop_oneof![
        2 => Just(Mutation::None),
        2 => delta().prop_map(Mutation::Data),
        2 => (0usize..8, delta()).prop_map(|(d, x)| Mutation::Shape(d, x)),
        2 => (0usize..8, delta()).prop_map(|(d, x)| Mutation::Stride(d, x)),
        2 => (0usize..8, prop_oneof![Just(-1isize), 0isize..=40])
            .prop_map(|(d, x)| Mutation::Sub(d, x)),
    ];
    (
        (
            any::<bool>(),
            proptest::option::of(ext()),
            ext(),
            proptest::option::of(ext()),
            ext(),
            vec(ext(), 0..=2),
        ),
        (
            prop_oneof![Just(1usize), Just(8usize)],
            any::<bool>(),
            any::<bool>(),
            0usize..=2,
            0usize..=2,
            any::<bool>(),
            prop_oneof![2 => Just(Vec::new()), 1 => vec(-2isize..=2, 1..=4)],
            vec(op_gen(), 0..=3),
            mutation,
        ),
    )
        .prop_map(
            |(
                (two, pre, a, mid_pre, b, trail),
                (item, table_f, trail_f, lead, lead_slots, share, leading, ops, mutation),
            )| IndirectSourceCase {
                two,
                pre,
                a,
                mid_pre,
                b,
                trail,
                item,
                table_f,
                trail_f,
                lead,
                lead_slots,
                share,
                leading,
                ops,
                mutation,
            },
        )
}

/// Strides of a contiguous run (`unit` bytes per step), C or Fortran order.
fn run_strides(extents: &[isize], unit: isize, fortran: bool) -> Vec<isize> {
    let mut out = vec![0isize; extents.len()];
    let mut acc = unit;
    let order: Vec<usize> = if fortran {
        (0..extents.len()).collect()
    } else {
        (0..extents.len()).rev().collect()
    };
    for d in order {
        out[d] = acc;
        acc *= extents[d].max(1);
    }
    out
}

fn build_indirect_source(c: &IndirectSourceCase) -> (Tables, MemviewSlice, usize) {
    let w = size_of::<*mut u8>();
    let top_dims: Vec<isize> = c.pre.into_iter().chain([c.a]).collect();
    let mid_dims: Vec<isize> = if c.two {
        c.mid_pre.into_iter().chain([c.b]).collect()
    } else {
        Vec::new()
    };
    let slots = |dims: &[isize]| dims.iter().map(|&n| n.max(0) as usize).product::<usize>();
    let shared = |n: usize| if c.share { n.div_ceil(2) } else { n }.max(1);
    let t = slots(&top_dims);
    let n_mids = shared(t);
    let per_mid = slots(&mid_dims);
    let n_rows = shared(if c.two { n_mids * per_mid } else { t });
    let payload = slots(&c.trail) * c.item;
    let lead = c.lead * c.item;
    let mut rows = Vec::new();
    for r in 0..n_rows {
        rows.push((r * (lead + payload + 8), lead + payload));
    }
    let arena: Vec<u8> = (0..n_rows * (lead + payload + 8) + 8)
        .map(pattern)
        .collect();
    let row_ptr = |r: usize| arena.as_ptr().cast_mut().wrapping_add(rows[r % n_rows].0);
    let mut mid: Vec<*mut u8> = Vec::new();
    let mut mids = Vec::new();
    if c.two {
        let mut next_row = 0;
        for _ in 0..n_mids {
            mids.push((mid.len(), c.lead_slots + per_mid));
            mid.extend(std::iter::repeat_n(null_mut(), c.lead_slots));
            for _ in 0..per_mid {
                mid.push(row_ptr(next_row));
                next_row += 1;
            }
        }
    }
    mid.push(null_mut());
    let top: Vec<*mut u8> = (0..t)
        .map(|j| {
            if c.two {
                mid.as_ptr()
                    .cast::<u8>()
                    .cast_mut()
                    .wrapping_add(mids[j % n_mids].0 * w)
            } else {
                row_ptr(j)
            }
        })
        .collect();
    let tables = Tables {
        arena,
        rows,
        mid,
        mids,
        top,
    };
    let mut dims: Vec<(isize, isize, isize)> = Vec::new();
    let table_run = |dims: &mut Vec<(isize, isize, isize)>, ext: &[isize], sub: isize| {
        let strides = run_strides(ext, w as isize, c.table_f);
        for (k, (&n, &s)) in ext.iter().zip(&strides).enumerate() {
            dims.push((n, s, if k + 1 == ext.len() { sub } else { -1 }));
        }
    };
    if c.two {
        table_run(&mut dims, &top_dims, (c.lead_slots * w) as isize);
        table_run(&mut dims, &mid_dims, lead as isize);
    } else {
        table_run(&mut dims, &top_dims, lead as isize);
    }
    let strides = run_strides(&c.trail, c.item as isize, c.trail_f);
    for (&n, &s) in c.trail.iter().zip(&strides) {
        dims.push((n, s, -1));
    }
    let mut raw = MemviewSlice {
        data: tables.top.as_ptr().cast::<u8>().cast_mut(),
        ..MemviewSlice::EMPTY
    };
    for (d, &(n, s, sub)) in dims.iter().enumerate() {
        raw.shape[d] = n;
        raw.strides[d] = s;
        raw.suboffsets[d] = sub;
    }
    (tables, raw, dims.len())
}

/// Every element address and every pointer slot a geometry reads (in-bounds indices,
/// pointers followed through the known slots of `mem`), or `None` when it reads an address
/// that is no known slot.
fn walk_all(raw: &MemviewSlice, ndim: usize, mem: &Tables) -> Option<(Vec<i128>, Vec<i128>)> {
    let (mut elements, mut slots) = (Vec::new(), Vec::new());
    let mut known = true;
    let _ = for_each_index(&raw.shape[..ndim], |idx| {
        let mut p = big(raw.data as usize);
        for (d, &i) in idx.iter().enumerate() {
            p += big(i) * big(raw.strides[d]);
            if raw.suboffsets[d] >= 0 {
                let at = to_i128(&p);
                match at.and_then(|at| mem.slot(at)) {
                    Some(q) => {
                        slots.push(at.unwrap());
                        p = big(q as usize) + big(raw.suboffsets[d]);
                    }
                    None => {
                        known = false;
                        return Err(TestCaseError::reject("unknown slot"));
                    }
                }
            }
        }
        match to_i128(&p) {
            Some(e) => elements.push(e),
            None => known = false,
        }
        Ok(())
    });
    known.then_some((elements, slots))
}

/// Whether some segment (run of dimensions ending with an indirect one, then the last
/// direct run) of a geometry reaches one offset from two indices.
fn segments_overlap(raw: &MemviewSlice, ndim: usize) -> bool {
    let mut start = 0;
    for d in 0..=ndim {
        if d == ndim || raw.suboffsets[d] >= 0 {
            let end = (d + 1).min(ndim);
            let mut seen = HashSet::new();
            let mut dup = false;
            let _ = for_each_index(&raw.shape[start..end], |idx| {
                dup |= !seen.insert(direct_address(&big(0), idx, &raw.strides[start..end]));
                Ok(())
            });
            if dup {
                return true;
            }
            start = end;
        }
    }
    false
}

fn indirect_within_property(c: IndirectSourceCase, stats: &Stats) -> Result<(), TestCaseError> {
    let (tables, source, sn) = build_indirect_source(&c);
    // The construction is valid memory: the check over the tables agrees.
    prop_assert_eq!(
        geometry::check_in_memory(&source, sn, c.item, &tables, DEFAULT_BUDGET),
        Ok(())
    );
    let Some((elements, slots)) = walk_all(&source, sn, &tables) else {
        return Err(TestCaseError::fail("the source reads an unknown slot"));
    };
    let elements: HashSet<i128> = elements.into_iter().collect();
    let slots: HashSet<i128> = slots.into_iter().collect();
    let overlapping = segments_overlap(&source, sn);
    let within = |raw: &MemviewSlice, nd: usize| -> Result<bool, TestCaseError> {
        let Some((e, s)) = walk_all(raw, nd, &tables) else {
            return Ok(false);
        };
        Ok(e.iter().all(|a| elements.contains(a)) && s.iter().all(|a| slots.contains(a)))
    };

    // Completeness: slices and transposes of the source are accepted.
    let (mut raw, mut nd) = (source, sn);
    let leading = (!c.leading.is_empty()).then(|| {
        Op::Slice(
            c.leading.iter().map(|&i| SliceItem::Index(i)).collect(),
            Semantics::Python,
        )
    });
    for op in leading.iter().chain(&c.ops) {
        match op {
            // Both semantics, through the in-bounds variant (an empty Cython result that
            // keeps an indirect dimension is refused since
            // `empty_cython_slice_of_an_indirect_view_reads_no_slot_past_its_table`).
            Op::Slice(items, sem) => {
                match slicing::slice_in_bounds(&raw, nd, items, *sem, &tables) {
                    Ok((r, n)) => (raw, nd) = (r, n),
                    Err(e) => {
                        prop_assert_ne!(e.message(), NOT_A_SLOT, "slicing read a non-slot");
                        stats.add("(derivation step refused by slicing)");
                    }
                }
            }
            Op::Transpose => {
                if slicing::transpose_in_source(&mut raw, nd).is_err() {
                    stats.add("(derivation step refused by transpose)");
                }
            }
        }
    }
    prop_assert!(within(&raw, nd)?, "the derivation left the source");
    let got = geometry::check_within(&source, sn, &raw, nd, &tables, DEFAULT_BUDGET);
    match &got {
        Ok(()) => stats.add(if raw.shape[..nd].contains(&0) {
            "derived: accepted (empty)"
        } else if nd == sn
            && raw.data == source.data
            && raw.shape[..nd] == source.shape[..nd]
            && raw.strides[..nd] == source.strides[..nd]
            && raw.suboffsets[..nd] == source.suboffsets[..nd]
        {
            "derived: accepted (the source itself)"
        } else if raw.suboffsets[..nd].iter().any(|&s| s >= 0) {
            "derived: accepted (indirect)"
        } else {
            "derived: accepted (direct, behind the source's pointers)"
        }),
        Err(e) if overlapping && e.message() == budget_message(DEFAULT_BUDGET) => {
            stats.add("derived: gave up (overlapping source)")
        }
        Err(e) => prop_assert!(
            false,
            "derived view refused: {} (source {:?} ndim {}, view {:?} ndim {})",
            e,
            source,
            sn,
            raw,
            nd
        ),
    }

    // Soundness: whatever mutation of it is accepted reads only the source's elements and
    // slots.
    if nd > 0 {
        match c.mutation {
            Mutation::None => {}
            Mutation::Data(x) => raw.data = raw.data.wrapping_offset(x),
            Mutation::Shape(d, x) => raw.shape[d % nd] = raw.shape[d % nd].saturating_add(x).max(0),
            Mutation::Stride(d, x) => raw.strides[d % nd] = raw.strides[d % nd].wrapping_add(x),
            Mutation::Sub(d, x) => raw.suboffsets[d % nd] = x,
        }
    }
    let got = geometry::check_within(&source, sn, &raw, nd, &tables, DEFAULT_BUDGET);
    match &got {
        Ok(()) => {
            prop_assert!(
                within(&raw, nd)?,
                "accepted a view reading outside its source: {:?} ndim {}",
                raw,
                nd
            );
            stats.add(if matches!(c.mutation, Mutation::None) {
                "mutated: accepted (mutation none)"
            } else if raw.shape[..nd].contains(&0) {
                "mutated: accepted (empty)"
            } else {
                "mutated: accepted (changed, still within)"
            });
        }
        Err(e) => {
            prop_assert_eq!(e.kind(), ErrorKind::ValueError);
            prop_assert_ne!(e.message(), NOT_A_SLOT, "check_within read a non-slot");
            prop_assert!(
                [NOT_WITHIN, MORE_INDIRECT].contains(&e.message())
                    || e.message() == budget_message(DEFAULT_BUDGET),
                "{}",
                e
            );
            prop_assert!(!matches!(c.mutation, Mutation::None) || nd == 0);
            stats.add(match reason(e.message()) {
                "refused: not an element of the source" => "mutated: refused, not an element",
                "refused: more indirect dimensions than the source" => {
                    "mutated: refused, more indirect dimensions"
                }
                _ => "mutated: refused, out of steps",
            });
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The properties
// ---------------------------------------------------------------------------------------

fn part1_bytes(n: u32) -> Stats {
    run(
        "part 1: View::from_bytes over a real block",
        n,
        bytes_case(),
        bytes_property,
    )
}

fn part1_block(n: u32) -> Stats {
    run(
        "part 1: check_in_memory with one Block",
        n,
        block_case(),
        block_property,
    )
}

fn part3_derived(n: u32) -> Stats {
    run(
        "part 3a: check_within accepts slices and transposes of its source",
        n,
        (source_gen(), vec(op_gen(), 1..=4)),
        derived_property,
    )
}

fn part3_raw(n: u32) -> Stats {
    run(
        "part 3b: check_within accepts only elements of its source",
        n,
        raw_case(),
        raw_within_property,
    )
}

fn part3_indirect(n: u32) -> Stats {
    run(
        "part 3c: check_within with indirect sources over real pointer tables",
        n,
        indirect_source_case(),
        indirect_within_property,
    )
}

/// `View::from_bytes` accepts exactly the geometries whose lowest and highest element
/// (exact, in `BigInt`) lie in the byte slice; refusals carry the exact message; accepted
/// views read the model's bytes at the model's addresses.
#[test]
fn from_bytes_accepts_exactly_the_views_inside_the_slice() {
    part1_bytes(cases(DEFAULT_BYTES));
}

/// `check_in_memory` over one block anywhere in the address space (any data pointer, ndim up
/// to 9, negative extents, items up to `usize::MAX`, small budgets) agrees with the model.
#[test]
fn check_in_memory_with_one_block_agrees_with_the_model() {
    part1_block(cases(DEFAULT_BLOCK));
}

/// `check_in_memory` over real pointer tables (bogus slots, suboffsets, one or two levels,
/// huge extents against small budgets) agrees with the reference walk and, for small shapes,
/// accepts exactly what the brute-force enumeration of every element accepts.
#[test]
fn check_in_memory_with_pointer_tables_agrees_with_brute_force() {
    let stats = run(
        "part 2: check_in_memory with pointer tables",
        cases(DEFAULT_TABLES),
        tables_case(),
        tables_property,
    );
    assert!(stats.get("accepted") > 0, "no accepted indirect case");
}

/// Every slice (both semantics, in-bounds) and transpose of a direct source is accepted by
/// `check_within`; giving up is allowed only on overlapping sources.
#[test]
fn check_within_accepts_every_derived_view() {
    part3_derived(cases(DEFAULT_DERIVED));
}

/// Whatever raw slice `check_within` accepts addresses only elements of its source.
#[test]
fn check_within_accepts_only_elements_of_the_source() {
    part3_raw(cases(DEFAULT_RAW_WITHIN));
}

/// `check_within` over indirect sources in real pointer tables: the source itself and every
/// slice of it are accepted (giving up only on overlapping segments); whatever mutation of
/// a slice is accepted reads only the source's elements and pointer slots; the check reads
/// only the source's slots.
#[test]
fn check_within_with_indirect_sources_accepts_derived_views_and_nothing_else() {
    part3_indirect(cases(DEFAULT_INDIRECT_WITHIN));
}

/// Parts 1 and 3 with 1,000,000 cases in all, for the record (run in release with overflow
/// checks; see the module docs). Ignored in the default run only for its length in a debug
/// build: the same properties run there with 30,000 cases.
#[test]
#[ignore = "1,000,000 cases: run in release (see the module docs)"]
fn geometry_million() {
    type Part = fn(u32) -> Stats;
    let parts: [(Part, u32); 5] = [
        (part1_bytes, 300_000),
        (part1_block, 200_000),
        (part3_derived, 200_000),
        (part3_raw, 200_000),
        (part3_indirect, 100_000),
    ];
    let total: u32 = parts.iter().map(|p| p.1).sum();
    for (part, n) in parts {
        part(n);
    }
    eprintln!("[geometry_million] {total} cases");
}

// ---------------------------------------------------------------------------------------
// Named examples
// ---------------------------------------------------------------------------------------

/// Nine dimensions are refused with the ndim message, by the check and by `from_bytes`.
#[test]
fn nine_dimensions_are_refused_with_the_ndim_message() {
    let bytes = [0u8; 4];
    let raw = MemviewSlice {
        data: bytes.as_ptr().cast_mut(),
        shape: [1; MAX_DIMS],
        ..MemviewSlice::EMPTY
    };
    let e = geometry::check_in_memory(&raw, 9, 1, &Block::of(&bytes), DEFAULT_BUDGET).unwrap_err();
    assert_eq!(
        (e.kind(), e.message()),
        (
            ErrorKind::ValueError,
            "ndim 9 exceeds the maximum of 8 dimensions"
        )
    );
    let e = View::<u8>::from_bytes(&bytes, 0, &[1; 9], &[0; 9]).unwrap_err();
    assert_eq!(
        (e.kind(), e.message()),
        (
            ErrorKind::ValueError,
            "ndim 9 exceeds the maximum of 8 dimensions"
        )
    );
    let e = geometry::check_within(&raw, 1, &raw, 9, &Direct, DEFAULT_BUDGET).unwrap_err();
    assert_eq!(e.message(), "ndim 9 exceeds the maximum of 8 dimensions");
    let e = geometry::check_within(&raw, 9, &raw, 1, &Direct, DEFAULT_BUDGET).unwrap_err();
    assert_eq!(e.message(), "ndim 9 exceeds the maximum of 8 dimensions");
}

/// Negative extents are refused by name, by both checks.
#[test]
fn negative_extents_are_refused_by_both_checks() {
    let bytes = [0u8; 4];
    let mut raw = MemviewSlice {
        data: bytes.as_ptr().cast_mut(),
        ..MemviewSlice::EMPTY
    };
    raw.shape[..2].copy_from_slice(&[0, -3]);
    let e = geometry::check_in_memory(&raw, 2, 1, &Block::of(&bytes), DEFAULT_BUDGET).unwrap_err();
    assert_eq!(e.message(), "negative extent -3 in dimension 1");
    let mut source = raw;
    source.shape[..2].copy_from_slice(&[1, 1]);
    let e = geometry::check_within(&source, 2, &raw, 2, &Direct, DEFAULT_BUDGET).unwrap_err();
    assert_eq!(e.message(), "negative extent -3 in dimension 1 of the view");
    let e = geometry::check_within(&raw, 2, &source, 2, &Direct, DEFAULT_BUDGET).unwrap_err();
    assert_eq!(
        e.message(),
        "negative extent -3 in dimension 1 of the source"
    );
}

/// Issue 9: before `geometry.rs`, the extent of this view was computed in wrapping `isize`
/// arithmetic, wrapped to a small value, and `from_bytes` accepted a view over an 8-byte
/// buffer whose elements lie up to 2**127 bytes away. Now the exact span overflows `i128`
/// and the view is refused.
#[test]
fn issue9_direct_extent_overflow_is_refused() {
    let data = [7u64; 1];
    // SAFETY: `data` is 8 initialised bytes, alive and not written for the slice's lifetime.
    let bytes = unsafe { std::slice::from_raw_parts(data.as_ptr().cast::<u8>(), 8) };
    let m = isize::MAX as usize;
    let e = View::<u64>::from_bytes(
        bytes,
        0,
        &[m, m, m],
        &[(1 << 62) + 16, isize::MAX, isize::MAX],
    )
    .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ValueError);
    assert_eq!(
        e.message(),
        "view reaches beyond any memory (offsets past 2**127 bytes)"
    );
}

/// Issue 9: before `geometry.rs`, iterating a view with an `isize::MIN` stride multiplied
/// `isize::MIN` by the extent to rewind a row and panicked with an overflow in a debug
/// build. Now `to_vec` walks it and agrees with `get`.
#[test]
fn issue9_isize_min_stride_iterates_without_panic() {
    let v = View::<u8>::from_bytes(&[1, 2, 3, 4], 0, &[2, 1, 2], &[2, isize::MIN, 1]).unwrap();
    let mut expected = Vec::new();
    for i in 0..2 {
        for j in 0..1 {
            for k in 0..2 {
                expected.push(v.get(&[i, j, k]).unwrap());
            }
        }
    }
    assert_eq!(expected, [1, 2, 3, 4]);
    assert_eq!(v.to_vec().unwrap(), expected);
}

/// Records the addresses slicing asks to read (never dereferences them).
struct ReadLog(std::cell::RefCell<Vec<usize>>, *mut u8);

impl cyview::ReadPointer for ReadLog {
    fn read_pointer(&self, at: *const u8) -> cyview::Result<*mut u8> {
        self.0.borrow_mut().push(at as usize);
        Ok(self.1)
    }
}

/// Found by `check_within_with_indirect_sources_accepts_derived_views_and_nothing_else`
/// (million-case run): `slice_in_bounds` with Cython semantics keeps Cython's out-of-range
/// index (`1:0:2` on extent 1 selects index 1) when the result is empty (another extent is
/// 0); integer-indexing that indirect dimension next reads the pointer slot one past the
/// table. Through `View::slice_with(.., Semantics::Cython)` then `View::slice` on a view
/// made by `View::from_raw` over a valid PIL-style buffer, safe code reads out of bounds.
#[test]
fn empty_cython_slice_of_an_indirect_view_reads_no_slot_past_its_table() {
    let row = [1u8, 2, 3];
    let table: [*mut u8; 1] = [row.as_ptr().cast_mut()];
    let mut raw = MemviewSlice {
        data: table.as_ptr().cast::<u8>().cast_mut(),
        ..MemviewSlice::EMPTY
    };
    // v: shape (1, 0), dimension 0 indirect (PIL-style), dimension 1 direct.
    raw.shape[..2].copy_from_slice(&[1, 0]);
    raw.strides[..2].copy_from_slice(&[8, 1]);
    raw.suboffsets[..2].copy_from_slice(&[0, -1]);
    let log = ReadLog(Default::default(), row.as_ptr().cast_mut());
    // v[1:0:2]: Cython's length arithmetic selects index 1 of 1. The result is empty, but
    // it keeps an indirect dimension, whose slot a later `w[0]` would read (table + 8):
    // refused. (It used to be kept because empty.)
    let err = slicing::slice_in_bounds(
        &raw,
        2,
        &[SliceItem::Slice(Slice::new(Some(1), Some(0), Some(2)))],
        Semantics::Cython,
        &log,
    )
    .unwrap_err();
    assert_eq!(
        err.message(),
        "Cannot slice: Cython's slice of axis 0 (extent 1) selects 1 index(es) from 1 by 2, outside the buffer"
    );
    // The Cython-exact result, indexed, would read past the table: nothing safe builds it.
    let (w, n) = slicing::slice(
        &raw,
        2,
        &[SliceItem::Slice(Slice::new(Some(1), Some(0), Some(2)))],
        Semantics::Cython,
        &log,
    )
    .unwrap();
    assert_eq!(w.data as usize, table.as_ptr() as usize + 8);
    assert_eq!(n, 2);
    let table_end = table.as_ptr() as usize + size_of::<*mut u8>();
    assert!(
        log.0.borrow().iter().all(|&at| at < table_end),
        "read pointer slots at {:#x?}; the table ends at {table_end:#x}",
        log.0.borrow()
    );
}
