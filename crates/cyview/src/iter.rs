//! Walking a view's elements in C order: [`Iter`] (by value) and the address walk that
//! `fill`, `to_vec` and the copies use. Direct views walk rows with a pointer; indirect
//! views compute each address through their pointer tables.

use core::marker::PhantomData;

use crate::abi::{MemviewSlice, MAX_DIMS};
use crate::bytes::FromBytes;
use crate::geometry;
use crate::memory::TrustedMemory;

/// Calls `f` with the address of every element in C order. `raw` must satisfy a view
/// invariant for `ndim`.
pub(crate) fn for_each_address(raw: &MemviewSlice, ndim: usize, mut f: impl FnMut(*mut u8)) {
    if element_count(raw, ndim) == 0 {
        return;
    }
    if ndim == 0 {
        f(raw.data);
        return;
    }
    if is_direct(raw, ndim) {
        walk_direct(raw, 0, ndim, raw.data, &mut f);
    } else {
        let mut index = [0usize; MAX_DIMS];
        loop {
            f(address(raw, &index[..ndim]));
            if !advance(&mut index, &raw.shape[..ndim]) {
                break;
            }
        }
    }
}

fn walk_direct(
    raw: &MemviewSlice,
    dim: usize,
    ndim: usize,
    p: *mut u8,
    f: &mut impl FnMut(*mut u8),
) {
    let (n, s) = (raw.shape[dim], raw.strides[dim]);
    let mut p = p;
    if dim + 1 == ndim {
        for _ in 0..n {
            f(p);
            p = p.wrapping_offset(s);
        }
    } else {
        for _ in 0..n {
            walk_direct(raw, dim + 1, ndim, p, f);
            p = p.wrapping_offset(s);
        }
    }
}

/// Odometer increment in C order; false when it wraps around.
fn advance(index: &mut [usize; MAX_DIMS], shape: &[isize]) -> bool {
    for d in (0..shape.len()).rev() {
        index[d] += 1;
        if (index[d] as isize) < shape[d] {
            return true;
        }
        index[d] = 0;
    }
    false
}

/// Iterator over a view's elements in C order, by value.
///
/// Direct views walk each innermost row with a pointer (the common path of `next` is one
/// read and one pointer step); [`Iterator::fold`] (and so `sum`, `for_each`, ...) runs nested
/// loops. Indirect views compute each address through the pointer tables.
pub struct Iter<'v, T> {
    raw: MemviewSlice,
    ndim: usize,
    /// Direct views: index of the current row (last entry unused). Indirect views: index of
    /// the next element.
    index: [usize; MAX_DIMS],
    /// Direct views: start of the current row.
    row: *mut u8,
    /// Direct views: the next element of the current row.
    ptr: *mut u8,
    /// Direct views: elements left in the current row.
    inner_left: usize,
    inner_stride: isize,
    inner_len: usize,
    direct: bool,
    remaining: usize,
    _marker: PhantomData<&'v T>,
}

impl<T> Iter<'_, T> {
    pub(crate) fn new(raw: MemviewSlice, ndim: usize) -> Self {
        let remaining = element_count(&raw, ndim);
        let (inner_len, inner_stride) = if ndim == 0 {
            (1, 0)
        } else {
            (raw.shape[ndim - 1] as usize, raw.strides[ndim - 1])
        };
        let direct = is_direct(&raw, ndim);
        Iter {
            raw,
            ndim,
            index: [0; MAX_DIMS],
            row: raw.data,
            ptr: raw.data,
            inner_left: if direct && remaining > 0 {
                inner_len
            } else {
                0
            },
            inner_stride,
            inner_len,
            direct,
            remaining,
            _marker: PhantomData,
        }
    }

    /// Direct views: moves to the next row (the caller knows one exists).
    #[cold]
    fn next_row(&mut self) {
        let mut d = self.ndim.saturating_sub(1);
        while d > 0 {
            d -= 1;
            self.index[d] += 1;
            self.row = self.row.wrapping_offset(self.raw.strides[d]);
            if (self.index[d] as isize) < self.raw.shape[d] {
                break;
            }
            self.row = self.row.wrapping_offset(
                self.raw.shape[d]
                    .wrapping_mul(self.raw.strides[d])
                    .wrapping_neg(),
            );
            self.index[d] = 0;
        }
        self.ptr = self.row;
        self.inner_left = self.inner_len;
    }
}

impl<T: FromBytes> Iterator for Iter<'_, T> {
    type Item = T;

    #[inline]
    fn next(&mut self) -> Option<T> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let p = if self.direct {
            if self.inner_left == 0 {
                self.next_row();
            }
            self.inner_left -= 1;
            let p = self.ptr;
            self.ptr = p.wrapping_offset(self.inner_stride);
            p
        } else {
            let p = address(&self.raw, &self.index[..self.ndim]);
            advance(&mut self.index, &self.raw.shape[..self.ndim]);
            p
        };
        // SAFETY: `p` is the address of the in-bounds element the odometer / row pointer
        // designates (remaining was > 0), of a view whose invariant makes in-bounds elements
        // readable as unaligned `T`.
        Some(unsafe { p.cast::<T>().read_unaligned() })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }

    fn fold<B, F: FnMut(B, T) -> B>(self, init: B, mut f: F) -> B {
        if self.remaining == 0 {
            return init;
        }
        let fresh = self.remaining == element_count(&self.raw, self.ndim);
        if !(self.direct && fresh && self.ndim > 0) {
            // Partly consumed or indirect: the general path.
            let mut acc = init;
            // `for` drives `next`, not `fold`, so this does not recurse.
            for x in self {
                acc = f(acc, x);
            }
            return acc;
        }
        fold_direct(&self.raw, 0, self.ndim, self.raw.data, init, &mut f)
    }
}

/// C-order fold over a direct view, one loop per dimension. `raw` must satisfy a view
/// invariant for `ndim` with no indirect dimension, and `dim < ndim`.
fn fold_direct<B, T: FromBytes, F: FnMut(B, T) -> B>(
    raw: &MemviewSlice,
    dim: usize,
    ndim: usize,
    p: *mut u8,
    init: B,
    f: &mut F,
) -> B {
    let (n, s) = (raw.shape[dim], raw.strides[dim]);
    let mut acc = init;
    let mut p = p;
    if dim + 1 == ndim {
        for _ in 0..n {
            // SAFETY: `p` is the address of an in-bounds element of a direct view whose
            // invariant makes it readable as an unaligned `T`.
            acc = f(acc, unsafe { p.cast::<T>().read_unaligned() });
            p = p.wrapping_offset(s);
        }
    } else {
        for _ in 0..n {
            acc = fold_direct(raw, dim + 1, ndim, p, acc, f);
            p = p.wrapping_offset(s);
        }
    }
    acc
}

impl<T: FromBytes> ExactSizeIterator for Iter<'_, T> {}

pub(crate) fn element_count(raw: &MemviewSlice, ndim: usize) -> usize {
    raw.shape[..ndim]
        .iter()
        .fold(1usize, |acc, &n| acc.saturating_mul(n as usize))
}

pub(crate) fn is_direct(raw: &MemviewSlice, ndim: usize) -> bool {
    raw.suboffsets[..ndim].iter().all(|&s| s < 0)
}

/// Address of an in-bounds element. `index` must be in bounds for `raw` and `raw` must
/// satisfy a view's invariant (see [`View::from_raw`]).
#[inline]
pub(crate) fn address(raw: &MemviewSlice, index: &[usize]) -> *mut u8 {
    // SAFETY: the view invariant: pointer slots reached with in-bounds index prefixes are
    // readable; `index` is in bounds, and `element_address` reads only those slots.
    let mem = unsafe { TrustedMemory::new() };
    match geometry::element_address(raw, index.len(), &mem, |d| Ok(index[d] as isize)) {
        Ok(p) => p,
        // `TrustedMemory` never fails and the index closure never fails.
        Err(_) => raw.data,
    }
}
