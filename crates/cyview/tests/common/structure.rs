//! Real memory laid out as random direct or indirect (PIL-style) strided structures, and
//! enumeration of their element addresses.

use std::collections::HashMap;

use cyview::raw::slicing::element_ptr_unchecked;
use cyview::{MemviewSlice, TrustedMemory};

/// The geometry of a random structure before it is laid out in memory.
#[derive(Clone, Debug)]
pub struct Spec {
    pub shape: Vec<isize>,
    /// Byte strides; for dimensions up to and including `indirect`, strides between pointer
    /// slots (multiples of 8, possibly 0 or negative).
    pub strides: Vec<isize>,
    /// The indirect dimension, if any.
    pub indirect: Option<usize>,
    /// Suboffset of the indirect dimension.
    pub suboffset: isize,
    pub itemsize: usize,
}

/// A structure laid out in real memory, owning it.
pub struct Structure {
    pub spec: Spec,
    pub raw: MemviewSlice,
    pub ndim: usize,
    _data: Vec<u64>,
    _table: Vec<u64>,
}

fn span(shape: &[isize], strides: &[isize]) -> (isize, isize) {
    let (mut lo, mut hi) = (0, 0);
    for (&n, &s) in shape.iter().zip(strides) {
        if n == 0 {
            return (0, 0);
        }
        let d = (n - 1) * s;
        if d < 0 {
            lo += d;
        } else {
            hi += d;
        }
    }
    (lo, hi)
}

fn c_order(shape: &[isize]) -> Vec<Vec<isize>> {
    let mut out = vec![vec![]];
    for &n in shape {
        let mut next = Vec::new();
        for prefix in &out {
            for i in 0..n {
                let mut p = prefix.clone();
                p.push(i);
                next.push(p);
            }
        }
        out = next;
    }
    out
}

impl Structure {
    pub fn build(spec: Spec) -> Structure {
        let ndim = spec.shape.len();
        let item = spec.itemsize as isize;
        let mut raw = MemviewSlice::EMPTY;
        for d in 0..ndim {
            raw.shape[d] = spec.shape[d];
            raw.strides[d] = spec.strides[d];
            raw.suboffsets[d] = -1;
        }
        match spec.indirect {
            None => {
                let (lo, hi) = span(&spec.shape, &spec.strides);
                let bytes = (hi - lo + item + 16) as usize;
                let mut data = vec![0u64; bytes.div_ceil(8) + 1];
                let base = data.as_mut_ptr().cast::<u8>();
                raw.data = base.wrapping_offset(8 - lo);
                Structure {
                    spec,
                    raw,
                    ndim,
                    _data: data,
                    _table: Vec::new(),
                }
            }
            Some(k) => {
                // Pointer table for dims 0..=k, one data block per distinct slot for dims k+1..
                let (tlo, thi) = span(&spec.shape[..=k], &spec.strides[..=k]);
                let table_bytes = (thi - tlo + 8 + 16) as usize;
                let mut table = vec![0u64; table_bytes.div_ceil(8) + 1];
                let tbase = table.as_mut_ptr().cast::<u8>();
                let table_origin = tbase.wrapping_offset(8 - tlo);
                let (dlo, dhi) = span(&spec.shape[k + 1..], &spec.strides[k + 1..]);
                let block = (dhi - dlo + item + 8) as usize;
                let prefixes = c_order(&spec.shape[..=k]);
                let mut slots: HashMap<isize, usize> = HashMap::new();
                for p in &prefixes {
                    let off: isize = p.iter().zip(&spec.strides).map(|(i, s)| i * s).sum();
                    let n = slots.len();
                    slots.entry(off).or_insert(n);
                }
                let mut data = vec![0u64; (block * slots.len().max(1)).div_ceil(8) + 2];
                let dbase = data.as_mut_ptr().cast::<u8>();
                for (&off, &n) in &slots {
                    let origin = dbase.wrapping_add(8 + n * block).wrapping_offset(-dlo);
                    let target = origin.wrapping_offset(-spec.suboffset);
                    let slot = table_origin.wrapping_offset(off);
                    // SAFETY: `slot` lies inside `table` (its offset is within the table's
                    // span, and the table has 8 bytes of margin on both sides).
                    unsafe { slot.cast::<*mut u8>().write_unaligned(target) };
                }
                raw.data = table_origin;
                raw.suboffsets[k] = spec.suboffset;
                Structure {
                    spec,
                    raw,
                    ndim,
                    _data: data,
                    _table: table,
                }
            }
        }
    }

    /// Address of the element at a full source index.
    pub fn address(&self, index: &[isize]) -> usize {
        // SAFETY: the structure's memory is alive and every in-bounds pointer slot holds a
        // pointer written by `build`.
        let mem = unsafe { TrustedMemory::new() };
        element_ptr_unchecked(&self.raw, index, mem).unwrap() as usize
    }

    /// Every element address in C order.
    pub fn addresses(&self) -> Vec<usize> {
        c_order(&self.spec.shape[..self.ndim])
            .iter()
            .map(|i| self.address(i))
            .collect()
    }
}

/// Element addresses of any slice of a structure, in C order.
///
/// `raw` must be a slice derived from a live `Structure` (all pointer slots valid).
pub fn slice_addresses(raw: &MemviewSlice, ndim: usize) -> Vec<usize> {
    // SAFETY: the caller passes slices of live structures.
    let mem = unsafe { TrustedMemory::new() };
    c_order(&raw.shape[..ndim])
        .iter()
        .map(|i| element_ptr_unchecked(raw, i, &mem).unwrap() as usize)
        .collect()
}

pub fn all_indices(shape: &[isize]) -> Vec<Vec<isize>> {
    c_order(shape)
}
