//! Typed memoryview arguments: [`MemView`] and [`MemViewMut`], extracted from any buffer
//! exporter exactly as Cython acquires `const T[...]` and `T[...]`, and the GIL-bound views
//! they read and write through ([`GilView`], [`GilViewMut`]).

use core::marker::PhantomData;
use core::mem::{align_of, size_of};
use core::ops::{Add, Deref};

use cyview::{
    ElementMut, FromBytes, IntoBytes, Iter, IterMut, MemviewSlice, Rows, Semantics, SliceItem,
    View, ViewMut,
};

use pyo3::prelude::*;

use crate::axes::Axes;
use crate::{acquire, to_py, BufferSlice, CythonElement, Declaration};

/// Not `Send`, not `Sync`, and not `Ungil` under PyO3's `nightly` feature either (which
/// excludes `Python` itself): what ties a view to the thread that holds the GIL.
type GilBound = PhantomData<(*const (), Python<'static>)>;

/// A read-only view of a buffer's elements, usable while the GIL is held: elements are
/// read by value. Reached through [`MemView`] and [`MemViewMut`] (by `Deref`), or as a
/// sub-view ([`GilView::rows`], [`GilView::slice`]).
///
/// # The read/write model
///
/// A buffer is memory that Python code, Cython `nogil` code and other threads may write at
/// any time. The views here never hand out a Rust reference (`&T`, `&mut T`, `&[T]`) into
/// it: every element is read or written by value, with an unaligned access through a raw
/// pointer, at an address proven to be an element of the buffer. Like PyO3's
/// `ReadOnlyCell`, this is sound against anything that runs while the GIL is held: such
/// code cannot run *during* a read, and a write it made is simply seen by the next read.
///
/// The views are bound to the GIL: they are neither `Send` nor `Sync` and borrow the
/// extracted argument, so they cannot enter `Python::detach` or another thread. Access
/// without the GIL, and Rust references into the buffer (`&[T]`, ndarray views), are the
/// explicit `unsafe` opt-ins [`GilView::detached`], [`GilView::as_slice`] and
/// [`GilView::as_array`], whose contract is that nothing writes the elements meanwhile.
///
/// With the `numpy` feature, extracting a NumPy array also registers the borrow in
/// rust-numpy's borrow-checking capsule (shared for [`MemView`], exclusive for
/// [`MemViewMut`]), so a `MemViewMut` of an array conflicts with a `PyReadonlyArray` or
/// `PyReadwriteArray` of it in any extension built with rust-numpy, and the other way
/// round, with rust-numpy's `BorrowError`.
pub struct GilView<'a, T> {
    view: View<'a, T>,
    _gil: GilBound,
}

impl<T: FromBytes> core::fmt::Debug for GilView<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("GilView")
            .field("shape", &self.shape())
            .field("strides", &self.view.strides())
            .finish()
    }
}

impl<'a, T: FromBytes> GilView<'a, T> {
    fn new(view: View<'a, T>) -> Self {
        GilView {
            view,
            _gil: PhantomData,
        }
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.view.ndim()
    }

    /// The extent of each dimension (NumPy's `a.shape`).
    pub fn shape(&self) -> &[usize] {
        let shape = self.view.shape();
        // SAFETY: `isize` and `usize` have the same size and alignment, and a view's
        // extents are never negative (its invariant): each reads as the same number.
        unsafe { core::slice::from_raw_parts(shape.as_ptr().cast::<usize>(), shape.len()) }
    }

    /// The byte stride of each dimension (`a.strides`).
    pub fn strides(&self) -> &[isize] {
        self.view.strides()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.view.len()
    }

    /// Whether there is no element.
    pub fn is_empty(&self) -> bool {
        self.view.is_empty()
    }

    /// The element at `index` (one entry per dimension), or `None` out of bounds.
    #[inline]
    pub fn get(&self, index: &[usize]) -> Option<T> {
        self.view.get(index)
    }

    /// The element at `index` with Cython's indexing: negative indices count from the end;
    /// out of bounds is Cython's `IndexError: Out of bounds on buffer access (axis d)`.
    ///
    /// # Errors
    ///
    /// That `IndexError`, or a `ValueError` for a wrong number of indices.
    pub fn at(&self, index: &[isize]) -> PyResult<T> {
        self.view.at(index).map_err(to_py)
    }

    /// The elements in C order, by value.
    pub fn iter(&self) -> GilIter<'_, T> {
        GilIter {
            inner: self.view.iter(),
            _gil: PhantomData,
        }
    }

    /// The sub-views `v[0], v[1], ..` along the first dimension: the rows of a 2-d view.
    /// `v.rows().map(|r| r.sum())` is the fast way to sum rows.
    pub fn rows(&self) -> GilRows<'_, T> {
        GilRows {
            inner: self.view.rows(),
            _gil: PhantomData,
        }
    }

    /// The sum of the elements, as fast as ndarray's `sum` ([`View::sum`]: contiguous runs
    /// are added in 8 interleaved lanes, so a float sum may differ in its last bits from a
    /// sequential one, as NumPy's does).
    pub fn sum(&self) -> T
    where
        T: Add<Output = T> + Default,
    {
        self.view.sum()
    }

    /// The elements in C order.
    ///
    /// # Errors
    ///
    /// `MemoryError` when they do not fit in memory.
    pub fn to_vec(&self) -> PyResult<Vec<T>> {
        self.view.to_vec().map_err(to_py)
    }

    /// Slices with Python semantics (`v[items]`, see [`cyview::s!`]).
    ///
    /// # Errors
    ///
    /// Cython's exceptions for bad items (`IndexError`, `ValueError`).
    pub fn slice(&self, items: &[SliceItem]) -> PyResult<GilView<'_, T>> {
        self.slice_with(items, Semantics::Python)
    }

    /// Slices with the chosen semantics ([`Semantics::Cython`] refuses selections
    /// outside this view).
    ///
    /// # Errors
    ///
    /// As [`GilView::slice`].
    pub fn slice_with(
        &self,
        items: &[SliceItem],
        semantics: Semantics,
    ) -> PyResult<GilView<'_, T>> {
        self.view
            .slice_with(items, semantics)
            .map(GilView::new)
            .map_err(to_py)
    }

    /// The transpose (`v.T`).
    ///
    /// # Errors
    ///
    /// Cython's `ValueError` for a view with indirect dimensions.
    pub fn t(&self) -> PyResult<GilView<'_, T>> {
        self.view.t().map(GilView::new).map_err(to_py)
    }

    /// Whether the view is C-contiguous (Cython's strict test).
    pub fn is_c_contig(&self) -> bool {
        self.view.is_c_contig()
    }

    /// Whether the view is Fortran-contiguous (Cython's strict test).
    pub fn is_f_contig(&self) -> bool {
        self.view.is_f_contig()
    }

    /// The raw slice (for calls into Cython).
    pub fn as_raw(&self) -> &MemviewSlice {
        self.view.as_raw()
    }

    /// A copy as an owned ndarray, in C order (`np.array(a)`).
    ///
    /// # Errors
    ///
    /// `MemoryError` when it does not fit in memory.
    #[cfg(feature = "ndarray")]
    #[cfg_attr(docsrs, doc(cfg(feature = "ndarray")))]
    pub fn to_array(&self) -> PyResult<::ndarray::ArrayD<T>> {
        let v = self.to_vec()?;
        ::ndarray::ArrayD::from_shape_vec(::ndarray::IxDyn(self.shape()), v)
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))
    }

    /// The view as a plain [`View`] that may leave the GIL (`Send`, `Sync`): for work in
    /// `Python::detach` or on other threads.
    ///
    /// # Safety
    ///
    /// While the returned view or anything derived from it is used, nothing writes the
    /// elements: no Python code (other threads run once the GIL is released), no Cython
    /// `nogil` code, no other thread, no write through this view's own [`GilViewMut`].
    pub unsafe fn detached(&self) -> View<'_, T> {
        self.view
    }

    /// The elements as a Rust slice, when the view is C-contiguous and aligned for `T`.
    ///
    /// # Safety
    ///
    /// While the slice lives, nothing writes the elements (as [`GilView::detached`]);
    /// calling Python code that may write the buffer counts.
    pub unsafe fn as_slice(&self) -> Option<&[T]> {
        let raw = self.view.as_raw();
        if !self.is_c_contig() || !(raw.data as usize).is_multiple_of(align_of::<T>()) {
            return None;
        }
        if self.is_empty() {
            return Some(&[]);
        }
        // SAFETY: a C-contiguous direct view's `len` elements are consecutive from `data`
        // (checked above), initialised and inside the buffer by the view invariant, which
        // keeps them alive for the borrow of `self`; `data` is aligned (checked) and
        // non-null (it addresses an element); `len * size_of::<T>()` bytes are inside the
        // buffer, so fit in `isize`. Nothing writes them meanwhile (the caller's contract).
        Some(unsafe { std::slice::from_raw_parts(raw.data.cast::<T>(), self.len()) })
    }

    /// The elements as an ndarray view without copying (negative and zero strides kept).
    ///
    /// # Errors
    ///
    /// `ValueError` for indirect dimensions, strides that are not whole elements, or an
    /// unaligned first element ([`crate::view_as_array`]).
    ///
    /// # Safety
    ///
    /// As [`GilView::as_slice`].
    #[cfg(feature = "ndarray")]
    #[cfg_attr(docsrs, doc(cfg(feature = "ndarray")))]
    pub unsafe fn as_array(&self) -> PyResult<::ndarray::ArrayViewD<'_, T>> {
        // SAFETY: the view's elements lie in the one buffer the exporter granted (one
        // allocation), and nothing writes them while the array lives (the caller's
        // contract).
        unsafe { crate::view_as_array(&self.view) }.map_err(to_py)
    }
}

/// The elements of a [`GilView`] in C order, by value.
pub struct GilIter<'v, T> {
    inner: Iter<'v, T>,
    _gil: GilBound,
}

impl<T: FromBytes> Iterator for GilIter<'_, T> {
    type Item = T;

    #[inline]
    fn next(&mut self) -> Option<T> {
        self.inner.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }

    fn fold<B, F: FnMut(B, T) -> B>(self, init: B, f: F) -> B {
        self.inner.fold(init, f)
    }
}

impl<T: FromBytes> ExactSizeIterator for GilIter<'_, T> {}

/// The rows of a [`GilView`] ([`GilView::rows`]).
pub struct GilRows<'v, T> {
    inner: Rows<'v, T>,
    _gil: GilBound,
}

impl<'v, T: FromBytes> Iterator for GilRows<'v, T> {
    type Item = GilView<'v, T>;

    fn next(&mut self) -> Option<GilView<'v, T>> {
        self.inner.next().map(GilView::new)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<T: FromBytes> DoubleEndedIterator for GilRows<'_, T> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.inner.next_back().map(GilView::new)
    }
}

impl<T: FromBytes> ExactSizeIterator for GilRows<'_, T> {}

/// The elements of a [`GilViewMut`] in C order, as by-value proxies
/// ([`GilViewMut::iter_mut`]).
pub struct ElementsMut<'v, T> {
    inner: IterMut<'v, T>,
    _gil: GilBound,
}

impl<'v, T: FromBytes> Iterator for ElementsMut<'v, T> {
    type Item = GilElementMut<'v, T>;

    #[inline]
    fn next(&mut self) -> Option<GilElementMut<'v, T>> {
        self.inner.next().map(|e| GilElementMut {
            inner: e,
            _gil: PhantomData,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<T: FromBytes> ExactSizeIterator for ElementsMut<'_, T> {}

/// One element of a [`GilViewMut`], read and written by value (`cyview::ElementMut`, bound
/// to the GIL).
pub struct GilElementMut<'v, T> {
    inner: ElementMut<'v, T>,
    _gil: GilBound,
}

impl<T: FromBytes + IntoBytes> GilElementMut<'_, T> {
    /// The element's value.
    #[inline]
    pub fn get(&self) -> T {
        self.inner.get()
    }

    /// Writes `value` to the element.
    #[inline]
    pub fn set(&self, value: T) {
        self.inner.set(value)
    }

    /// Replaces the element's value `x` by `f(x)`.
    #[inline]
    pub fn update(&self, f: impl FnOnce(T) -> T) {
        self.inner.update(f)
    }
}

/// A writable view of a buffer's elements, usable while the GIL is held: reads (through
/// `Deref` to [`GilView`]) and writes are by value ([the model](GilView#the-readwrite-model)), so
/// writes take `&self`, as with `Cell`.
pub struct GilViewMut<'a, T> {
    read: GilView<'a, T>,
}

impl<T: FromBytes> core::fmt::Debug for GilViewMut<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("GilViewMut").field(&self.read).finish()
    }
}

impl<'a, T: FromBytes> Deref for GilViewMut<'a, T> {
    type Target = GilView<'a, T>;

    fn deref(&self) -> &GilView<'a, T> {
        &self.read
    }
}

impl<T: FromBytes + IntoBytes> GilViewMut<'_, T> {
    /// The core view that writes: built on demand from the read view's slice.
    fn writer(&self) -> ViewMut<'_, T> {
        // SAFETY: `read` was built from memory the exporter granted writable (extraction
        // requested PyBUF_WRITABLE, or the view derives from one that did), whose elements
        // satisfy the view invariant for the borrow of `self`. Every other access to them
        // through these types is by value through raw pointers on this thread (the views
        // are neither Send nor Sync): no Rust reference to the elements exists while the
        // writer lives, except through the `unsafe` opt-ins, whose contracts exclude it.
        match unsafe { ViewMut::from_raw(*self.read.view.as_raw(), self.read.ndim()) } {
            Ok(w) => w,
            // `from_raw` only checks what the read view's invariant already guarantees.
            Err(_) => unreachable!("a view's slice is a valid view"),
        }
    }

    /// Writes `value` at `index`; `false` (and nothing written) when out of bounds.
    #[inline]
    pub fn set(&self, index: &[usize], value: T) -> bool {
        self.writer().set(index, value)
    }

    /// Writes `value` to every element (`a[...] = value`).
    pub fn fill(&self, value: T) {
        self.writer().fill(value)
    }

    /// Replaces every element `x` by `f(x)`, in C order (`a[...] = f(a)`).
    pub fn map_inplace(&self, f: impl FnMut(T) -> T) {
        self.writer().map_inplace(f)
    }

    /// The elements in C order as by-value proxies (`get`, `set`, `update`):
    /// `for x in a.iter_mut() { x.update(|v| v.abs()) }`. [`GilViewMut::map_inplace`] is
    /// the faster way to do the same to every element.
    pub fn iter_mut(&self) -> ElementsMut<'_, T> {
        ElementsMut {
            inner: self.writer().into_iter_mut(),
            _gil: PhantomData,
        }
    }

    /// Copies `src` (same shape, or broadcast as NumPy does) into this view, as if through
    /// a temporary when they overlap.
    ///
    /// # Errors
    ///
    /// Cython's `ValueError` when the shapes do not match.
    pub fn copy_from(&self, src: &GilView<'_, T>) -> PyResult<()> {
        self.writer().copy_from(&src.view).map_err(to_py)
    }

    /// The writable sub-views `v[0], v[1], ..` along the first dimension.
    pub fn rows_mut(&self) -> impl ExactSizeIterator<Item = GilViewMut<'_, T>> + '_ {
        self.read.rows().map(|read| GilViewMut { read })
    }

    /// Slices with Python semantics, keeping write access.
    ///
    /// # Errors
    ///
    /// As [`GilView::slice`].
    pub fn slice_mut(&self, items: &[SliceItem]) -> PyResult<GilViewMut<'_, T>> {
        self.read.slice(items).map(|read| GilViewMut { read })
    }

    /// The elements as a mutable ndarray view without copying.
    ///
    /// # Errors
    ///
    /// As [`GilView::as_array`].
    ///
    /// # Safety
    ///
    /// As [`GilViewMut::as_mut_slice`]; also, no two indices of the view may address the
    /// same element (no zero stride on a dimension of extent > 1), as a `&mut` must be
    /// unique.
    #[cfg(feature = "ndarray")]
    #[cfg_attr(docsrs, doc(cfg(feature = "ndarray")))]
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn as_array_mut(&self) -> PyResult<::ndarray::ArrayViewMutD<'_, T>> {
        // SAFETY: the caller's contract is stronger than `as_array`'s.
        let mut a = unsafe { self.read.as_array() }?;
        // ndarray builds from the lowest address with non-negative strides: undo the
        // inversions `as_array` made, and make them again on the mutable view.
        let inverted: Vec<usize> = (0..a.ndim()).filter(|&d| a.strides()[d] < 0).collect();
        for &d in &inverted {
            a.invert_axis(::ndarray::Axis(d));
        }
        let strides: Vec<usize> = a.strides().iter().map(|&s| s.unsigned_abs()).collect();
        let (shape, ptr) = (a.raw_dim(), a.as_ptr().cast_mut());
        // SAFETY: the same elements as `a` (its lowest element, shape and non-negative
        // element strides), which were granted writable; no other access exists while the
        // view lives and no two indices alias (the caller's contract), so the unique borrow
        // is unique.
        let mut m = unsafe {
            ::ndarray::ArrayViewMutD::from_shape_ptr(
                ::ndarray::ShapeBuilder::strides(shape, ::ndarray::IxDyn(&strides)),
                ptr,
            )
        };
        for &d in &inverted {
            m.invert_axis(::ndarray::Axis(d));
        }
        Ok(m)
    }

    /// The elements as a mutable Rust slice, when the view is C-contiguous and aligned.
    ///
    /// # Safety
    ///
    /// While the slice lives, nothing else reads or writes the elements: no Python code,
    /// no Cython `nogil` code, no other thread, no other view of this buffer.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn as_mut_slice(&self) -> Option<&mut [T]> {
        if !(self.read.view.as_raw().data as usize).is_multiple_of(align_of::<T>()) {
            return None;
        }
        // SAFETY: the caller's contract is stronger than `as_slice`'s.
        let s = unsafe { self.read.as_slice() }?;
        // SAFETY: the elements were granted writable; no other access exists while the
        // slice lives (the caller's contract), so the unique borrow is unique.
        Some(unsafe { std::slice::from_raw_parts_mut(s.as_ptr().cast_mut(), s.len()) })
    }
}

fn declaration<T: CythonElement, D: Axes>(writable: bool) -> Declaration<'static> {
    // A user's `Axes` with more specs than a memoryview has dimensions is refused when
    // `MemView<T, D>` is compiled, not by a panic at run time (see `Axes`).
    const {
        assert!(
            D::SPECS.len() <= cyview::MAX_DIMS,
            "Axes::SPECS: a memoryview has at most 8 dimensions"
        )
    };
    Declaration::new(T::TYPE_INFO, D::SPECS, writable)
}

/// The view of an acquired buffer, for the lifetime of the extracted value, or
/// `ValueError` for a geometry `View` refuses (a negative extent an exporter granted).
fn gil_view<T: CythonElement>(buf: &BufferSlice) -> PyResult<GilView<'static, T>> {
    debug_assert_eq!(T::TYPE_INFO.size, size_of::<T>());
    // SAFETY: the slice was built from the buffer the exporter granted and validated as
    // Cython does (item size = `T::TYPE_INFO.size = size_of::<T>()` by `CythonElement`'s
    // contract), so every in-bounds element is inside it and initialised. `'static` is
    // never observable: the view is stored next to the `BufferSlice` that keeps the buffer
    // alive, reached only through `&self` of its owner, and every method hands out only
    // values or views bound to that borrow. Writes by others are the model's business
    // (module docs), not `View`'s: `GilView` reads by value and is GIL-bound.
    let view = unsafe { View::from_raw(*buf.as_raw(), buf.ndim()) };
    // An exporter may grant a negative extent, which Cython accepts: `View` refuses it.
    view.map(GilView::new).map_err(to_py)
}

/// A typed memoryview argument, acquired as Cython acquires `const T[D]`: a
/// `#[pyfunction]` argument `a: MemView<'py, f64, C<2>>` accepts exactly what
/// `def f(const double[:, ::1] a)` accepts, with Cython's exceptions, and `Option<MemView>`
/// also `None` (as Cython does without `not None`). Reads go through [`GilView`] (`Deref`).
///
/// ```no_run
/// use cyview_py::{MemView, C};
/// use pyo3::prelude::*;
///
/// #[pyfunction]
/// fn row_sums(a: MemView<'_, f64, C<2>>) -> Vec<f64> {
///     a.rows().map(|row| row.sum()).collect()
/// }
/// ```
pub struct MemView<'py, T: 'static, D> {
    held: Held<T>,
    _marker: PhantomData<(Python<'py>, fn() -> D)>,
}

/// What both extractors hold: the acquired buffer, the view of it (written through only
/// by [`MemViewMut`]) and, with the `numpy` feature, the registered borrow.
struct Held<T: 'static> {
    view: GilViewMut<'static, T>,
    buf: BufferSlice,
    #[cfg(feature = "numpy")]
    _borrow: Option<crate::numpy::NumpyBorrow>,
}

impl<T: CythonElement> Held<T> {
    /// `acquire` with `T[D]` (`const` unless `writable`), then the borrow registration.
    fn acquire<D: Axes>(obj: &Bound<'_, PyAny>, writable: bool) -> PyResult<Self> {
        let buf = acquire(obj, &declaration::<T, D>(writable))?;
        #[cfg(feature = "numpy")]
        let _borrow = crate::numpy::NumpyBorrow::acquire(obj, writable)?;
        Ok(Held {
            view: GilViewMut {
                read: gil_view::<T>(&buf)?,
            },
            buf,
            #[cfg(feature = "numpy")]
            _borrow,
        })
    }
}

impl<'py, T: CythonElement, D: Axes> MemView<'py, T, D> {
    /// The declaration this extractor acquires with: `const T[D]`.
    pub fn declaration() -> Declaration<'static> {
        declaration::<T, D>(false)
    }

    /// Acquires `obj` (what extraction does).
    ///
    /// # Errors
    ///
    /// The exporter's exception or Cython's for a failed check ([`acquire`]); with the
    /// `numpy` feature, rust-numpy's `BorrowError` when the array is mutably borrowed.
    pub fn new(obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        Ok(MemView {
            held: Held::acquire::<D>(obj, false)?,
            _marker: PhantomData,
        })
    }

    /// Whether the exporter granted a read-only buffer.
    pub fn readonly(&self) -> bool {
        self.held.buf.readonly()
    }

    /// The acquired buffer (its raw slice is what a Cython `cdef` function taking
    /// `const T[D]` would receive).
    pub fn buffer(&self) -> &BufferSlice {
        &self.held.buf
    }
}

impl<T: FromBytes, D> Deref for MemView<'_, T, D> {
    type Target = GilView<'static, T>;

    fn deref(&self) -> &Self::Target {
        &self.held.view.read
    }
}

impl<T: FromBytes, D> core::fmt::Debug for MemView<'_, T, D> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("MemView")
            .field(&self.held.view.read)
            .finish()
    }
}

impl<'a, 'py, T: CythonElement, D: Axes> FromPyObject<'a, 'py> for MemView<'py, T, D> {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        MemView::new(&obj)
    }
}

/// A writable typed memoryview argument, acquired as Cython acquires `T[D]` (read-only
/// buffers are refused with Cython's `ValueError: buffer source array is read-only`).
/// Reads and writes go through [`GilViewMut`] (`Deref`); writes need `T: IntoBytes` (no
/// padding).
///
/// ```no_run
/// use cyview_py::{MemViewMut, Strided};
/// use pyo3::prelude::*;
///
/// #[pyfunction]
/// fn scale_inplace(a: MemViewMut<'_, f64, Strided<2>>, k: f64) {
///     a.map_inplace(|x| x * k);
/// }
/// ```
pub struct MemViewMut<'py, T: 'static, D> {
    held: Held<T>,
    _marker: PhantomData<(Python<'py>, fn() -> D)>,
}

impl<'py, T: CythonElement, D: Axes> MemViewMut<'py, T, D> {
    /// The declaration this extractor acquires with: `T[D]`.
    pub fn declaration() -> Declaration<'static> {
        declaration::<T, D>(true)
    }

    /// Acquires `obj` writable (what extraction does).
    ///
    /// # Errors
    ///
    /// As [`MemView::new`]; with the `numpy` feature, rust-numpy's `BorrowError` when the
    /// array is borrowed at all.
    pub fn new(obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        Ok(MemViewMut {
            held: Held::acquire::<D>(obj, true)?,
            _marker: PhantomData,
        })
    }

    /// The acquired buffer (its raw slice is what a Cython `cdef` function taking `T[D]`
    /// would receive).
    pub fn buffer(&self) -> &BufferSlice {
        &self.held.buf
    }
}

impl<T: FromBytes, D> Deref for MemViewMut<'_, T, D> {
    type Target = GilViewMut<'static, T>;

    fn deref(&self) -> &Self::Target {
        &self.held.view
    }
}

impl<T: FromBytes, D> core::fmt::Debug for MemViewMut<'_, T, D> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("MemViewMut").field(&self.held.view).finish()
    }
}

impl<'a, 'py, T: CythonElement, D: Axes> FromPyObject<'a, 'py> for MemViewMut<'py, T, D> {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<Self> {
        MemViewMut::new(&obj)
    }
}
