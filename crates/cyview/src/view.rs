//! Safe typed views over strided (and indirect) memory: [`View`] and [`ViewMut`](crate::ViewMut).
//!
//! A view is a [`MemviewSlice`] plus its ndim and a lifetime tying it to the memory it
//! reads. Elements are read and written with unaligned accesses, never through references,
//! so views are sound over unaligned data, byte strides that are not multiples of the item
//! size, overlapping elements, zero strides (one element seen at many indices) and negative
//! strides.

use core::marker::PhantomData;
use core::mem::size_of;

use crate::abi::{MemviewSlice, Order, MAX_DIMS};
use crate::bytes::FromBytes;
use crate::contig_buffer::ContigBuffer;
use crate::error::{Error, Result};
use crate::geometry::{self, Block};
use crate::items::{Semantics, SliceItem};
use crate::iter::{address, element_count, Iter};
use crate::memory::TrustedMemory;
use crate::raw::{contig, copy, slicing};

fn shape_error(msg: String) -> Error {
    Error::value(msg)
}

/// Checks a direct geometry against a byte range of `len` bytes at `ptr` and builds its
/// raw slice: the proof of [`geometry::check_in_memory`] for one block.
pub(crate) fn direct_raw(
    ptr: *mut u8,
    len: usize,
    offset: usize,
    shape: &[usize],
    strides: &[isize],
    item: usize,
) -> Result<MemviewSlice> {
    if shape.len() != strides.len() {
        return Err(shape_error(format!(
            "shape has {} dimensions but strides has {}",
            shape.len(),
            strides.len()
        )));
    }
    geometry::check_ndim_limit(shape.len())?;
    if offset > len {
        return Err(shape_error(format!(
            "offset {offset} is past the end of the {len}-byte buffer"
        )));
    }
    if let Some(d) = shape.iter().position(|&n| n > isize::MAX as usize) {
        return Err(shape_error(format!(
            "extent {} of dimension {d} exceeds isize::MAX",
            shape[d]
        )));
    }
    let raw = direct_slice(ptr, offset, shape, strides);
    let block = Block { start: ptr, len };
    geometry::check_in_memory(&raw, shape.len(), item, &block, geometry::DEFAULT_BUDGET)?;
    Ok(raw)
}

fn direct_slice(data: *mut u8, offset: usize, shape: &[usize], strides: &[isize]) -> MemviewSlice {
    let mut raw = MemviewSlice {
        data: data.wrapping_add(offset),
        ..MemviewSlice::EMPTY
    };
    for (d, (&n, &s)) in shape.iter().zip(strides).enumerate() {
        raw.shape[d] = n as isize;
        raw.strides[d] = s;
        raw.suboffsets[d] = -1;
    }
    raw
}

fn c_strides(shape: &[usize], item: usize) -> Result<[isize; MAX_DIMS]> {
    geometry::check_ndim_limit(shape.len())?;
    let mut extents = [0isize; MAX_DIMS];
    for (e, &n) in extents.iter_mut().zip(shape) {
        *e = isize::try_from(n).map_err(|_| shape_error("shape overflows isize".into()))?;
    }
    let mut strides = [0isize; MAX_DIMS];
    geometry::contiguous_strides(
        &extents[..shape.len()],
        &mut strides[..shape.len()],
        item as isize,
        Order::C,
    )
    .ok_or_else(|| shape_error("shape overflows isize".into()))?;
    Ok(strides)
}

pub(crate) fn check_raw(raw: &MemviewSlice, ndim: usize) -> Result<()> {
    geometry::check_ndim_limit(ndim)?;
    if raw.shape[..ndim].iter().any(|&n| n < 0) {
        return Err(shape_error(format!(
            "negative extent in shape {:?}",
            &raw.shape[..ndim]
        )));
    }
    Ok(())
}

pub(crate) fn in_bounds(raw: &MemviewSlice, ndim: usize, index: &[usize]) -> bool {
    index.len() == ndim
        && index
            .iter()
            .zip(&raw.shape[..ndim])
            .all(|(&i, &n)| (i as isize) < n && i <= isize::MAX as usize)
}

/// Shared implementation of the read-only operations of [`View`] and [`ViewMut`](crate::ViewMut).
macro_rules! read_methods {
    () => {
        /// Number of dimensions.
        pub fn ndim(&self) -> usize {
            self.ndim
        }

        /// Extents (Cython's `shape[:ndim]`).
        pub fn shape(&self) -> &[isize] {
            &self.raw.shape[..self.ndim]
        }

        /// Byte strides.
        pub fn strides(&self) -> &[isize] {
            &self.raw.strides[..self.ndim]
        }

        /// Suboffsets (negative for direct dimensions).
        pub fn suboffsets(&self) -> &[isize] {
            &self.raw.suboffsets[..self.ndim]
        }

        /// The raw slice (its `memview` is whatever the view was built from; null for views
        /// over Rust memory).
        pub fn as_raw(&self) -> &MemviewSlice {
            &self.raw
        }

        /// Number of elements.
        pub fn len(&self) -> usize {
            element_count(&self.raw, self.ndim)
        }

        /// Whether some extent is zero.
        pub fn is_empty(&self) -> bool {
            self.len() == 0
        }

        /// The element at `index` (one entry per dimension), or `None` when out of bounds.
        pub fn get(&self, index: &[usize]) -> Option<T> {
            if !in_bounds(&self.raw, self.ndim, index) {
                return None;
            }
            // SAFETY: `index` is in bounds, so by the view invariant the address is valid
            // for an unaligned read of `T` during the view's lifetime.
            Some(unsafe { address(&self.raw, index).cast::<T>().read_unaligned() })
        }

        /// The element at `index` without bounds checks.
        ///
        /// # Safety
        ///
        /// `index` must have one entry per dimension, each less than that dimension's
        /// extent.
        pub unsafe fn get_unchecked(&self, index: &[usize]) -> T {
            // SAFETY: the caller guarantees `index` is in bounds; the view invariant makes
            // the address valid for an unaligned read of `T`.
            unsafe { address(&self.raw, index).cast::<T>().read_unaligned() }
        }

        /// The element at `index` with Cython's indexing: negative indices count from the
        /// end; an out-of-range index is `IndexError: Out of bounds on buffer access (axis
        /// {d})` naming the last such axis. Cython / NumPy `v[i, j]`.
        ///
        /// # Errors
        ///
        /// As [`crate::raw::slicing::element_ptr`].
        pub fn at(&self, index: &[isize]) -> Result<T> {
            // SAFETY: pointer slots reached by in-bounds prefixes are readable (view
            // invariant); `element_ptr` only follows in-bounds indices.
            let mem = unsafe { TrustedMemory::new() };
            let p = slicing::element_ptr(&self.raw, self.ndim, index, mem)?;
            // SAFETY: `element_ptr` succeeded, so `p` is the address of an in-bounds element.
            Ok(unsafe { p.cast::<T>().read_unaligned() })
        }

        /// Whether the view is C-contiguous in Cython's strict sense
        /// ([`crate::raw::contig::is_contig`]).
        pub fn is_c_contig(&self) -> bool {
            contig::is_contig(&self.raw, self.ndim, size_of::<T>() as isize, Order::C)
        }

        /// Whether the view is Fortran-contiguous in Cython's strict sense.
        pub fn is_f_contig(&self) -> bool {
            contig::is_contig(
                &self.raw,
                self.ndim,
                size_of::<T>() as isize,
                Order::Fortran,
            )
        }

        /// Iterates the elements in C order (last index fastest).
        pub fn iter(&self) -> Iter<'_, T> {
            Iter::new(self.raw, self.ndim)
        }

        /// The sum of the elements (zero for an empty view): NumPy's `a.sum()`, as fast as
        /// ndarray's `sum`. Consecutive elements (a contiguous view, or the rows of one
        /// whose last stride is the item size) are added in 8 interleaved lanes, combined
        /// as ndarray combines them, so a floating-point result may differ in the last
        /// bits from a sequential `iter().sum()`, as NumPy's and ndarray's do.
        pub fn sum(&self) -> T
        where
            T: core::ops::Add<Output = T> + Default,
        {
            crate::iter::sum(&self.raw, self.ndim)
        }

        /// The sub-views `v[0], v[1], ..` along the first dimension (the rows of a 2-d
        /// view; nothing for a 0-d view): NumPy's `for row in a`.
        pub fn rows(&self) -> crate::iter::Rows<'_, T> {
            crate::iter::Rows::new(self.raw, self.ndim)
        }

        /// The elements in C order.
        ///
        /// # Errors
        ///
        /// `MemoryError` when the elements do not fit in memory (a view with zero strides
        /// may have far more elements than bytes).
        pub fn to_vec(&self) -> Result<Vec<T>> {
            let n = self.len();
            let mut out = Vec::new();
            out.try_reserve_exact(n).map_err(|_| {
                Error::no_memory(format!(
                    "cannot allocate {n} elements of {} bytes",
                    size_of::<T>()
                ))
            })?;
            out.extend(self.iter());
            Ok(out)
        }

        /// Copies the elements into a new contiguous buffer in `order`.
        ///
        /// Mirrors `v.copy()` / `v.copy_fortran()` (`__pyx_memoryview_copy_new_contig`).
        ///
        /// # Errors
        ///
        /// `ValueError: Dimension {d} is not direct` for an indirect view, as Cython.
        pub fn copy(&self, order: Order) -> Result<ContigBuffer> {
            // SAFETY: the view invariant: every in-bounds element is readable for
            // `size_of::<T>()` bytes for the view's lifetime, which covers this call.
            unsafe { copy::copy_new(&self.raw, self.ndim, size_of::<T>(), order) }
        }
    };
}
pub(crate) use read_methods;

/// A read-only typed view of `T` elements borrowed for `'a`.
///
/// Invariant: for every in-bounds index, following strides and suboffsets from `data`
/// reads only readable pointer slots and reaches an address valid for an unaligned read of
/// `size_of::<T>()` bytes, for all of `'a`, and nothing writes that memory during `'a`.
pub struct View<'a, T> {
    pub(crate) raw: MemviewSlice,
    pub(crate) ndim: usize,
    _marker: PhantomData<&'a [T]>,
}

// SAFETY: a `View` only reads `T`s, as `&[T]` does; sending or sharing it is sound when
// `&T` may be shared across threads.
unsafe impl<T: Sync> Send for View<'_, T> {}
// SAFETY: as above, shared access only reads.
unsafe impl<T: Sync> Sync for View<'_, T> {}

impl<T> Clone for View<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for View<'_, T> {}

impl<T> core::fmt::Debug for View<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("View")
            .field("ndim", &self.ndim)
            .field("shape", &&self.raw.shape[..self.ndim])
            .field("strides", &&self.raw.strides[..self.ndim])
            .field("suboffsets", &&self.raw.suboffsets[..self.ndim])
            .finish()
    }
}

/// Byte strides and byte offset from element strides and offset.
pub(crate) fn element_to_bytes(
    offset: usize,
    strides: &[isize],
    item: usize,
) -> Result<(usize, [isize; MAX_DIMS])> {
    geometry::check_ndim_limit(strides.len())?;
    let mut out = [0isize; MAX_DIMS];
    for (b, &s) in out.iter_mut().zip(strides) {
        *b = s
            .checked_mul(item as isize)
            .ok_or_else(|| shape_error("strides overflow".into()))?;
    }
    let offset = offset
        .checked_mul(item)
        .ok_or_else(|| shape_error("offset overflows".into()))?;
    Ok((offset, out))
}

/// The checked raw slice of `from_slice`: `shape` in C order over the `len` elements of
/// type `T` at `ptr`.
pub(crate) fn contiguous_raw<T>(ptr: *mut u8, len: usize, shape: &[usize]) -> Result<MemviewSlice> {
    let count = shape.iter().try_fold(1usize, |a, &n| a.checked_mul(n));
    if count != Some(len) {
        return Err(shape_error(format!(
            "shape {shape:?} does not match a slice of {len} elements"
        )));
    }
    let strides = c_strides(shape, size_of::<T>())?;
    let n = shape.len().min(MAX_DIMS);
    let bytes = len * size_of::<T>();
    direct_raw(ptr, bytes, 0, shape, &strides[..n], size_of::<T>())
}

/// The checked raw slice of `strided`: offset and strides counted in elements, over the
/// `len` elements of type `T` at `ptr`.
pub(crate) fn strided_raw<T>(
    ptr: *mut u8,
    len: usize,
    offset: usize,
    shape: &[usize],
    strides: &[isize],
) -> Result<MemviewSlice> {
    let (offset, bstrides) = element_to_bytes(offset, strides, size_of::<T>())?;
    let bytes = len * size_of::<T>();
    let n = strides.len();
    direct_raw(ptr, bytes, offset, shape, &bstrides[..n], size_of::<T>())
}

impl<'a, T: FromBytes> View<'a, T> {
    /// Wraps a raw slice that satisfies the invariant of [`View`] for `ndim` (every
    /// constructor and derivation proves it before calling this; `ViewMut::as_view` hands
    /// over its own, which implies it).
    pub(crate) fn new(raw: MemviewSlice, ndim: usize) -> Self {
        View {
            raw,
            ndim,
            _marker: PhantomData,
        }
    }

    /// A C-contiguous view of `data` with `shape`. Python:
    /// `np.asarray(data).reshape(shape)`.
    ///
    /// # Errors
    ///
    /// `ValueError` when the shape's element count differs from `data.len()` or it has more
    /// than [`MAX_DIMS`] dimensions.
    pub fn from_slice(data: &'a [T], shape: &[usize]) -> Result<Self> {
        let raw = contiguous_raw::<T>(data.as_ptr().cast::<u8>().cast_mut(), data.len(), shape)?;
        Ok(Self::new(raw, shape.len()))
    }

    /// A strided view of `data` starting at element `offset`, with strides counted in
    /// elements (NumPy's `as_strided` with strides divided by the item size).
    ///
    /// # Errors
    ///
    /// `ValueError` when an element would lie outside `data`.
    pub fn strided(
        data: &'a [T],
        offset: usize,
        shape: &[usize],
        strides: &[isize],
    ) -> Result<Self> {
        let ptr = data.as_ptr().cast::<u8>().cast_mut();
        let raw = strided_raw::<T>(ptr, data.len(), offset, shape, strides)?;
        Ok(Self::new(raw, shape.len()))
    }

    /// A strided view of raw bytes: element `(i, j, ...)` starts at byte
    /// `offset + i * strides[0] + j * strides[1] + ...`. Strides may be negative, zero, or
    /// not multiples of the item size; elements need not be aligned.
    ///
    /// # Errors
    ///
    /// `ValueError` when an element would reach outside `bytes`, when `shape` and `strides`
    /// differ in length, or when there are more than [`MAX_DIMS`] dimensions.
    pub fn from_bytes(
        bytes: &'a [u8],
        offset: usize,
        shape: &[usize],
        strides: &[isize],
    ) -> Result<Self> {
        let ptr = bytes.as_ptr().cast_mut();
        let raw = direct_raw(ptr, bytes.len(), offset, shape, strides, size_of::<T>())?;
        Ok(Self::new(raw, shape.len()))
    }

    /// A view of the memory a raw slice describes: the Rust side of Cython's
    /// `<double[:n]> ptr` cast, and the way to view indirect (suboffset) memory.
    ///
    /// # Errors
    ///
    /// `ValueError` when `ndim > MAX_DIMS` or an extent is negative.
    ///
    /// # Safety
    ///
    /// For all of `'a`:
    /// * for every index with `0 <= index[d] < raw.shape[d]`, the address reached from
    ///   `raw.data` by adding `index[d] * raw.strides[d]` and, on each dimension with
    ///   `raw.suboffsets[d] >= 0`, reading the pointer stored there (unaligned) and adding
    ///   the suboffset, is valid for an unaligned read of `size_of::<T>()` bytes holding an
    ///   initialised `T`;
    /// * every pointer slot read on the way (for every in-bounds index prefix) is readable;
    /// * none of that memory is written except through this view's own [`ViewMut`](crate::ViewMut)
    ///   counterpart, which cannot coexist with it.
    pub unsafe fn from_raw(raw: MemviewSlice, ndim: usize) -> Result<Self> {
        check_raw(&raw, ndim)?;
        Ok(Self::new(raw, ndim))
    }

    read_methods!();

    /// Slices with Python semantics (NumPy's `a[items]`): the result only reaches elements
    /// of this view. Integer indices, new axes and Ellipsis follow Cython's rules and
    /// errors ([`crate::raw::slicing::slice`]).
    ///
    /// # Errors
    ///
    /// As [`crate::raw::slicing::slice`].
    pub fn slice(&self, items: &[SliceItem]) -> Result<View<'a, T>> {
        self.slice_with(items, Semantics::Python)
    }

    /// Slices with the chosen semantics. Both select only elements of this view (see
    /// [`crate::raw::slicing`]), so the result is a valid view; [`Semantics::Cython`] predicts what a
    /// Cython function would see.
    ///
    /// # Errors
    ///
    /// As [`crate::raw::slicing::slice`].
    pub fn slice_with(&self, items: &[SliceItem], semantics: Semantics) -> Result<View<'a, T>> {
        // SAFETY: the view invariant makes every pointer slot reached with in-bounds index
        // prefixes readable; slicing only follows pointers at in-bounds integer indices.
        let mem = unsafe { TrustedMemory::new() };
        let (raw, ndim) = slicing::slice_in_bounds(&self.raw, self.ndim, items, semantics, mem)?;
        // `slice_in_bounds` keeps a result only when every index it selects, on every
        // dimension, is in 0..extent of this view (Python semantics always; Cython's
        // out-of-range quirk is refused) and no kept indirect dimension's suboffset turned
        // negative; its address computation is this view's at those indices (the proof in
        // `slicing`), so the result's elements are elements of this view and the invariant
        // carries over. An empty result addresses nothing.
        Ok(View::new(raw, ndim))
    }

    /// The transpose (dimensions reversed). Cython / NumPy `v.T`.
    ///
    /// # Errors
    ///
    /// `ValueError: Cannot transpose memoryview with indirect dimensions`, also when only
    /// the middle dimension of an odd ndim is indirect, which Cython does not check
    /// ([`crate::raw::slicing::transpose_in_source`]).
    pub fn t(&self) -> Result<View<'a, T>> {
        let mut raw = self.raw;
        // With every dimension direct (or one dimension), reversing the dimensions keeps
        // the element set: element (i0, .., in) of the result is element (in, .., i0) here.
        slicing::transpose_in_source(&mut raw, self.ndim)?;
        Ok(View::new(raw, self.ndim))
    }
}

impl ContigBuffer {
    /// A typed view of the buffer.
    ///
    /// # Errors
    ///
    /// `ValueError` when `size_of::<T>()` is not the buffer's item size.
    pub fn view<T: FromBytes>(&self) -> Result<View<'_, T>> {
        self.check_item::<T>()?;
        let shape: Vec<usize> = self.shape().iter().map(|&n| n as usize).collect();
        View::from_bytes(self.as_bytes(), 0, &shape, self.strides())
    }
}

impl<'v, 'a, T: FromBytes> IntoIterator for &'v View<'a, T> {
    type Item = T;
    type IntoIter = Iter<'v, T>;

    fn into_iter(self) -> Iter<'v, T> {
        self.iter()
    }
}
