//! [`ContigBuffer`]: an owned, contiguous, aligned buffer with a shape, what Cython's
//! `__pyx_memoryview_copy_new_contig` allocates (a `cython.view.array`). Typed views of it
//! ([`ContigBuffer::view`], [`ContigBuffer::view_mut`]) are defined with the views, in
//! `view.rs`; the copy that fills it is [`crate::raw::copy::copy_new`].

use crate::abi::{MemviewSlice, Order, MAX_DIMS};
use crate::error::{Error, Result};
use crate::raw::contig::contiguous_strides;

/// 16-byte aligned storage unit, so that a [`ContigBuffer`] is aligned for every primitive
/// element type.
#[derive(Clone, Copy)]
#[repr(C, align(16))]
struct Chunk([u8; 16]);

/// An owned, contiguous, 16-byte aligned buffer with a shape: what Cython's
/// `__pyx_memoryview_copy_new_contig` allocates (as a `cython.view.array`).
#[derive(Clone)]
pub struct ContigBuffer {
    storage: Vec<Chunk>,
    nbytes: usize,
    ndim: usize,
    itemsize: usize,
    order: Order,
    shape: [isize; MAX_DIMS],
    strides: [isize; MAX_DIMS],
}

impl core::fmt::Debug for ContigBuffer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ContigBuffer")
            .field("order", &self.order)
            .field("itemsize", &self.itemsize)
            .field("shape", &self.shape())
            .field("strides", &self.strides())
            .finish()
    }
}

impl ContigBuffer {
    /// A zero-filled buffer of `shape` in `order` for items of `itemsize` bytes.
    ///
    /// Mirrors the checks of `cython.view.array.__cinit__`.
    ///
    /// # Errors
    ///
    /// `ValueError: Empty shape tuple for cython.array`, `ValueError: itemsize <= 0 for
    /// cython.array`, `ValueError: Invalid shape in axis {d}: {n}.` (any extent `<= 0`),
    /// `ValueError` beyond [`MAX_DIMS`] dimensions, `MemoryError` when the size overflows.
    pub fn new(shape: &[isize], itemsize: usize, order: Order) -> Result<Self> {
        if shape.is_empty() {
            return Err(Error::value("Empty shape tuple for cython.array"));
        }
        if itemsize == 0 || itemsize > isize::MAX as usize {
            return Err(Error::value("itemsize <= 0 for cython.array"));
        }
        crate::geometry::check_ndim_limit(shape.len())?;
        for (d, &n) in shape.iter().enumerate() {
            if n <= 0 {
                return Err(Error::value(format!("Invalid shape in axis {d}: {n}.")));
            }
        }
        let nbytes = shape
            .iter()
            .try_fold(itemsize, |acc, &n| acc.checked_mul(n as usize))
            .filter(|&n| n <= isize::MAX as usize)
            .ok_or_else(|| Error::no_memory(""))?;
        let mut s = [0isize; MAX_DIMS];
        let mut st = [0isize; MAX_DIMS];
        s[..shape.len()].copy_from_slice(shape);
        contiguous_strides(shape, &mut st[..shape.len()], itemsize as isize, order);
        let mut storage = Vec::new();
        storage
            .try_reserve_exact(nbytes.div_ceil(16))
            .map_err(|_| Error::no_memory(""))?;
        storage.resize(nbytes.div_ceil(16), Chunk([0; 16]));
        Ok(ContigBuffer {
            storage,
            nbytes,
            ndim: shape.len(),
            itemsize,
            order,
            shape: s,
            strides: st,
        })
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.ndim
    }

    /// Extents.
    pub fn shape(&self) -> &[isize] {
        &self.shape[..self.ndim]
    }

    /// Byte strides (contiguous in [`ContigBuffer::order`]).
    pub fn strides(&self) -> &[isize] {
        &self.strides[..self.ndim]
    }

    /// Item size in bytes.
    pub fn itemsize(&self) -> usize {
        self.itemsize
    }

    /// Memory order.
    pub fn order(&self) -> Order {
        self.order
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: `storage` holds at least `nbytes` initialised bytes (`Chunk` is plain
        // bytes, zero-initialised by `resize`), borrowed for `&self`.
        unsafe { core::slice::from_raw_parts(self.storage.as_ptr().cast::<u8>(), self.nbytes) }
    }

    /// The bytes, mutably.
    pub fn as_bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_bytes`, borrowed exclusively for `&mut self`.
        unsafe {
            core::slice::from_raw_parts_mut(self.storage.as_mut_ptr().cast::<u8>(), self.nbytes)
        }
    }

    /// A raw slice over the buffer (null `memview`) for reading, valid while `self` lives
    /// and is not moved or mutated. Do not write through it; use
    /// [`ContigBuffer::as_raw_mut`] for that.
    pub fn as_raw(&self) -> MemviewSlice {
        self.raw_with(self.storage.as_ptr().cast::<u8>().cast_mut())
    }

    /// A raw slice over the buffer (null `memview`) that may be written through while
    /// `self` lives and is not otherwise accessed or moved.
    pub fn as_raw_mut(&mut self) -> MemviewSlice {
        let data = self.storage.as_mut_ptr().cast::<u8>();
        self.raw_with(data)
    }

    fn raw_with(&self, data: *mut u8) -> MemviewSlice {
        let mut raw = MemviewSlice {
            data,
            shape: self.shape,
            strides: self.strides,
            ..MemviewSlice::EMPTY
        };
        raw.suboffsets[..self.ndim].fill(-1);
        raw
    }

    pub(crate) fn check_item<T>(&self) -> Result<()> {
        if core::mem::size_of::<T>() == self.itemsize {
            Ok(())
        } else {
            Err(Error::value(format!(
                "element type has {} bytes, the buffer's items have {}",
                core::mem::size_of::<T>(),
                self.itemsize
            )))
        }
    }
}
