//! Ellipsis expansion of a compiled index expression: Cython's `unellipsify`
//! (`Compiler/MemoryView.py`) and the dimension checks of `MemoryViewIndexNode.analyse_types`.

use crate::abi::MAX_DIMS;
use crate::error::{Error, ErrorKind, Result};
use crate::geometry;
use crate::items::{Slice, SliceItem};

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
    pub(super) fn new() -> Self {
        ExpandedItems {
            items: [Expanded::NewAxis; 2 * MAX_DIMS],
            len: 0,
        }
    }

    pub(super) fn push(&mut self, item: Expanded) -> Result<()> {
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
    geometry::check_ndim_limit(ndim)?;
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
