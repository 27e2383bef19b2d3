//! [`ViewMut`](crate::ViewMut): the mutable typed view, with [`View`]'s reads (`read_methods!`) and the
//! writes (`set`, `fill`, `copy_from`), over memory it borrows exclusively.

use core::marker::PhantomData;
use core::mem::size_of;

use crate::abi::{MemviewSlice, Order};
use crate::bytes::{FromBytes, IntoBytes};
use crate::contig_buffer::ContigBuffer;
use crate::error::{Error, Result};
use crate::items::{Semantics, SliceItem};
use crate::iter::{address, element_count, for_each_address, Iter};
use crate::memory::TrustedMemory;
use crate::raw::{contig, copy, slicing};
use crate::view::{
    check_raw, contiguous_raw, direct_raw, in_bounds, read_methods, strided_raw, View,
};

/// A mutable typed view of `T` elements borrowed for `'a`.
///
/// Invariant: as [`View`]'s, with "valid for unaligned reads and writes", and no other
/// access to the elements during `'a`. Elements may alias each other (zero or overlapping
/// strides): writes go through raw pointers, never `&mut T`.
pub struct ViewMut<'a, T> {
    raw: MemviewSlice,
    ndim: usize,
    _marker: PhantomData<&'a mut [T]>,
}

// SAFETY: a `ViewMut` is an exclusive borrow like `&mut [T]`: it may move to another
// thread when `T: Send`.
unsafe impl<T: Send> Send for ViewMut<'_, T> {}
// SAFETY: through `&ViewMut` only reads are possible, as with `&&mut [T]`.
unsafe impl<T: Sync> Sync for ViewMut<'_, T> {}

impl<T> core::fmt::Debug for ViewMut<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ViewMut")
            .field("ndim", &self.ndim)
            .field("shape", &&self.raw.shape[..self.ndim])
            .field("strides", &&self.raw.strides[..self.ndim])
            .field("suboffsets", &&self.raw.suboffsets[..self.ndim])
            .finish()
    }
}

impl<'a, T: FromBytes> ViewMut<'a, T> {
    /// Wraps a raw slice that satisfies the invariant of [`ViewMut`](crate::ViewMut) for `ndim` (every
    /// constructor and derivation proves it before calling this).
    fn new(raw: MemviewSlice, ndim: usize) -> Self {
        ViewMut {
            raw,
            ndim,
            _marker: PhantomData,
        }
    }

    /// A C-contiguous mutable view of `data` with `shape`.
    ///
    /// # Errors
    ///
    /// As [`View::from_slice`].
    pub fn from_slice(data: &'a mut [T], shape: &[usize]) -> Result<Self> {
        let raw = contiguous_raw::<T>(data.as_mut_ptr().cast::<u8>(), data.len(), shape)?;
        Ok(Self::new(raw, shape.len()))
    }

    /// A strided mutable view of `data` (strides in elements), see [`View::strided`].
    ///
    /// # Errors
    ///
    /// As [`View::strided`].
    pub fn strided(
        data: &'a mut [T],
        offset: usize,
        shape: &[usize],
        strides: &[isize],
    ) -> Result<Self> {
        let ptr = data.as_mut_ptr().cast::<u8>();
        let raw = strided_raw::<T>(ptr, data.len(), offset, shape, strides)?;
        Ok(Self::new(raw, shape.len()))
    }

    /// A strided mutable view of raw bytes, see [`View::from_bytes`].
    ///
    /// # Errors
    ///
    /// As [`View::from_bytes`].
    pub fn from_bytes(
        bytes: &'a mut [u8],
        offset: usize,
        shape: &[usize],
        strides: &[isize],
    ) -> Result<Self> {
        let ptr = bytes.as_mut_ptr();
        let raw = direct_raw(ptr, bytes.len(), offset, shape, strides, size_of::<T>())?;
        Ok(Self::new(raw, shape.len()))
    }

    /// A mutable view of the memory a raw slice describes.
    ///
    /// # Errors
    ///
    /// As [`View::from_raw`].
    ///
    /// # Safety
    ///
    /// As [`View::from_raw`], with every element also valid for unaligned writes of
    /// `size_of::<T>()` bytes, and no other reads or writes of the elements or pointer
    /// slots during `'a` except through this view.
    pub unsafe fn from_raw(raw: MemviewSlice, ndim: usize) -> Result<Self> {
        check_raw(&raw, ndim)?;
        Ok(Self::new(raw, ndim))
    }

    read_methods!();

    /// A read-only view of the same elements for the duration of the borrow.
    pub fn as_view(&self) -> View<'_, T> {
        // The elements are readable for the borrow of `self` (this view's invariant), and
        // nothing writes them while the returned view borrows `self`.
        View::new(self.raw, self.ndim)
    }

    /// Writes `value` at `index`; returns `false` (and writes nothing) when out of bounds.
    pub fn set(&mut self, index: &[usize], value: T) -> bool
    where
        T: IntoBytes,
    {
        if !in_bounds(&self.raw, self.ndim, index) {
            return false;
        }
        // SAFETY: `index` is in bounds, so by the invariant the address is valid for an
        // unaligned write of `T`, and `&mut self` excludes other access.
        unsafe { address(&self.raw, index).cast::<T>().write_unaligned(value) };
        true
    }

    /// Writes `value` to every element. Cython `v[...] = value`.
    pub fn fill(&mut self, value: T)
    where
        T: IntoBytes,
    {
        let raw = self.raw;
        for_each_address(&raw, self.ndim, |p| {
            // SAFETY: `for_each_address` yields addresses of in-bounds elements, valid for
            // unaligned writes of `T` by the invariant; `&mut self` excludes other access.
            unsafe { p.cast::<T>().write_unaligned(value) }
        });
    }

    /// The elements in C order as by-value proxies:
    /// `for x in v.iter_mut() { x.set(x.get() + 1.0) }`. An element seen at several indices
    /// (zero strides) is yielded once per index.
    pub fn iter_mut(&mut self) -> crate::iter::IterMut<'_, T> {
        crate::iter::IterMut::new(self.raw, self.ndim)
    }

    /// [`ViewMut::iter_mut`] for the whole lifetime of the view.
    pub fn into_iter_mut(self) -> crate::iter::IterMut<'a, T> {
        crate::iter::IterMut::new(self.raw, self.ndim)
    }

    /// Replaces every element `x` by `f(x)`, in C order: NumPy's `a[...] = f(a)` in place
    /// (`v.map_inplace(|x| x * k)` scales a view). An element seen at several indices (zero
    /// strides) is updated once per index, in C order, as a Cython loop over the indices
    /// would.
    pub fn map_inplace(&mut self, mut f: impl FnMut(T) -> T)
    where
        T: IntoBytes,
    {
        let raw = self.raw;
        for_each_address(&raw, self.ndim, |p| {
            // SAFETY: `for_each_address` yields addresses of in-bounds elements, valid for
            // unaligned reads and writes of an initialised `T` by the invariant; `&mut self`
            // excludes other access, and each read completes before its write.
            unsafe {
                let x = p.cast::<T>().read_unaligned();
                p.cast::<T>().write_unaligned(f(x));
            }
        });
    }

    /// Slices with Python semantics, reborrowing mutably.
    ///
    /// # Errors
    ///
    /// As [`crate::raw::slicing::slice`].
    pub fn slice_mut(&mut self, items: &[SliceItem]) -> Result<ViewMut<'_, T>> {
        self.slice_mut_with(items, Semantics::Python)
    }

    /// Slices with the chosen semantics, reborrowing mutably.
    ///
    /// # Errors
    ///
    /// As [`crate::raw::slicing::slice`].
    pub fn slice_mut_with(
        &mut self,
        items: &[SliceItem],
        semantics: Semantics,
    ) -> Result<ViewMut<'_, T>> {
        let view = self.as_view().slice_with(items, semantics)?;
        Ok(ViewMut::new(view.raw, view.ndim))
    }

    /// Copies `src` into this view with Cython's broadcasting rules: `dst[...] = src`.
    ///
    /// Mirrors `memoryview_copy_contents` (see [`crate::raw::copy::copy_contents`]).
    ///
    /// # Errors
    ///
    /// `ValueError: got differing extents in dimension {d} (got {dst} and {src})`,
    /// `ValueError: Dimension {d} is not direct`.
    pub fn copy_from(&mut self, src: &View<'_, T>) -> Result<()>
    where
        T: IntoBytes,
    {
        // SAFETY: `src`'s invariant makes its elements readable, `self`'s makes them writable
        // with exclusive access; both hold `size_of::<T>()`-byte elements. Overlap between
        // the two is handled by `copy_contents` through a temporary.
        unsafe { copy::copy_contents(&src.raw, src.ndim, &self.raw, self.ndim, size_of::<T>()) }
    }
}

impl ContigBuffer {
    /// A typed mutable view of the buffer.
    ///
    /// # Errors
    ///
    /// `ValueError` when `size_of::<T>()` is not the buffer's item size.
    pub fn view_mut<T: FromBytes>(&mut self) -> Result<ViewMut<'_, T>> {
        self.check_item::<T>()?;
        let strides = self.strides().to_vec();
        let shape: Vec<usize> = self.shape().iter().map(|&n| n as usize).collect();
        ViewMut::from_bytes(self.as_bytes_mut(), 0, &shape, &strides)
    }
}
