//! [`check_in_memory`]: every element a slice addresses lies inside memory the caller knows
//! ([`KnownMemory`]: byte blocks and pointer tables).

use super::{beyond, budget_error, check_ndim_limit, direct_span};
use crate::abi::{MemviewSlice, MAX_DIMS};
use crate::error::{Error, Result};

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
