//! `ndarray` interoperation (feature `ndarray`): an acquired buffer as an
//! [`ArrayViewD`](::ndarray::ArrayViewD), and a [`RustBuffer`] that owns an
//! [`Array`](::ndarray::Array).
//!
//! An `ndarray` view holds references to aligned elements of one allocation at strides that
//! are whole numbers of elements. A typed memoryview is more general: its dimensions may be
//! indirect (suboffsets), its elements unaligned, its byte strides not multiples of the item
//! size. [`view_as_array`] converts exactly the views `ndarray` can represent (direct,
//! aligned, strides in whole elements; negative and zero strides included) and refuses the
//! others with a `ValueError` naming the dimension; [`cyview::View`] reads every layout.

use core::mem::{align_of, size_of};

use ::ndarray::{Array, ArrayViewD, Axis, Dimension, IxDyn, ShapeBuilder};
use cyview::{Error, ErrorKind, FromBytes, IntoBytes, MemviewSlice, View, MAX_DIMS};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::{BufferSlice, CythonElement, RustBuffer};

fn value_error(message: String) -> Error {
    Error::new(ErrorKind::ValueError, message)
}

/// An [`ArrayViewD`] of the same elements as `view`, with the same shape and strides (in
/// elements instead of bytes; negative and zero strides as they are).
///
/// An empty view (some extent 0) gives an empty array, whatever its strides. On a dimension
/// of extent 1 the stride is never applied, so it need not be a whole number of elements
/// (it becomes 0 when it is not), as in Cython's and NumPy's checks.
///
/// # Errors
///
/// `ValueError` when `ndarray` cannot represent the layout:
/// * `Dimension {d} is indirect (suboffset {s}): an ndarray view needs direct memory`;
/// * `Dimension {d} has a stride of {s} bytes, not a multiple of the 8-byte element size`;
/// * `The first element at {p:#x} is not aligned to 8 bytes for an ndarray view`;
/// * `The shape {shape:?} has more than isize::MAX elements`;
/// * `A zero-sized element type has no ndarray view of a buffer` (`T = [f64; 0]`).
///
/// # Safety
///
/// Every element of `view` must lie within one allocated object (as the elements of a
/// buffer an exporter grants, or of a view built from a Rust slice, do); [`View`]'s own
/// invariant gives the rest (valid, initialised, not written during `'a`).
///
/// # Examples
///
/// ```
/// use cyview::View;
///
/// let data: Vec<f64> = (0..12).map(f64::from).collect();
/// // Python: np.arange(12.0).reshape(3, 4)[::-1, ::2]
/// let v = View::strided(&data, 8, &[3, 2], &[-4, 2]).unwrap();
/// // SAFETY: the view's elements lie in one allocation, `data`.
/// let a = unsafe { cyview_py::view_as_array(&v) }.unwrap();
/// assert_eq!(a.shape(), &[3, 2]);
/// assert_eq!(a.strides(), &[-4, 2]);
/// assert_eq!(a.iter().copied().collect::<Vec<_>>(), v.to_vec().unwrap());
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "ndarray")))]
pub unsafe fn view_as_array<'a, T: FromBytes>(
    view: &View<'a, T>,
) -> cyview::Result<ArrayViewD<'a, T>> {
    let ndim = view.ndim();
    // On the stack: `IxDyn` keeps up to 4 dimensions inline, so a 1-4-d view allocates
    // nothing here.
    let mut shape = [0usize; MAX_DIMS];
    for (s, &n) in shape.iter_mut().zip(view.shape()) {
        *s = n as usize;
    }
    let shape = &shape[..ndim];
    if shape.contains(&0) {
        // No element is ever read: a view of an empty slice has the same shape.
        return ArrayViewD::from_shape(IxDyn(shape), &[])
            .map_err(|e| value_error(format!("cannot build an empty ndarray view: {e}")));
    }
    let raw: &MemviewSlice = view.as_raw();
    let item = size_of::<T>() as isize;
    if item == 0 {
        return Err(value_error(
            "A zero-sized element type has no ndarray view of a buffer".into(),
        ));
    }
    let mut low = raw.data;
    let mut strides = [0usize; MAX_DIMS];
    let mut inverted = [false; MAX_DIMS];
    for (d, &n) in shape.iter().enumerate() {
        let (stride, sub) = (raw.strides[d], raw.suboffsets[d]);
        if sub >= 0 {
            return Err(value_error(format!(
                "Dimension {d} is indirect (suboffset {sub}): an ndarray view needs direct memory"
            )));
        }
        if n <= 1 {
            // Never applied: keep it when it is a whole number of elements, for the record.
            strides[d] = if stride % item == 0 {
                (stride / item).unsigned_abs()
            } else {
                0
            };
            continue;
        }
        if stride % item != 0 {
            return Err(value_error(format!(
                "Dimension {d} has a stride of {stride} bytes, not a multiple of the {item}-byte element size"
            )));
        }
        strides[d] = (stride / item).unsigned_abs();
        if stride < 0 {
            // ndarray's constructor takes non-negative strides from the lowest address;
            // the axis is inverted again below. The element at index n - 1 is in the view.
            low = low.wrapping_offset(stride.wrapping_mul(n as isize - 1));
            inverted[d] = true;
        }
    }
    if !(raw.data as usize).is_multiple_of(align_of::<T>()) {
        return Err(value_error(format!(
            "The first element at {:#x} is not aligned to {} bytes for an ndarray view",
            raw.data as usize,
            align_of::<T>()
        )));
    }
    let count = shape
        .iter()
        .try_fold(1usize, |acc, &n| acc.checked_mul(n))
        .filter(|&c| c <= isize::MAX as usize);
    if count.is_none() {
        return Err(value_error(format!(
            "The shape {shape:?} has more than isize::MAX elements"
        )));
    }
    // SAFETY: ndarray's contract for `from_shape_ptr`, point by point:
    // * every element reached from `low` with the non-negative strides is an element of
    //   `view` (an axis with a negative stride starts at its last index and is inverted
    //   below), so by the view's invariant it is initialised, valid for `'a` and not written
    //   during `'a`;
    // * `low` is the address of an element (non-null) and aligned: `raw.data` is aligned
    //   (checked) and every applied stride is a multiple of `size_of::<T>()`, itself a
    //   multiple of `align_of::<T>()`;
    // * all those elements lie in one allocation (the caller's guarantee), so every offset
    //   along the axes stays inside it and the byte and element spans fit in `isize`;
    // * the element count fits in `isize` (checked); strides are non-negative; the view is
    //   not empty and `T` is not zero-sized (both checked).
    let mut array = unsafe {
        ArrayViewD::from_shape_ptr(
            IxDyn(shape).strides(IxDyn(&strides[..ndim])),
            low.cast::<T>(),
        )
    };
    for (d, _) in inverted.iter().enumerate().filter(|(_, &inv)| inv) {
        array.invert_axis(Axis(d));
    }
    Ok(array)
}

#[cfg_attr(docsrs, doc(cfg(feature = "ndarray")))]
impl BufferSlice {
    /// The acquired elements as an [`ArrayViewD`] of `T`, without copying: NumPy's
    /// `np.asarray(obj)` in Rust. Negative and zero strides are kept.
    ///
    /// `T` is checked against the buffer's item size only, as in [`BufferSlice::view`];
    /// the format was checked against the [`Declaration`](crate::Declaration) at acquisition.
    ///
    /// # Errors
    ///
    /// `ValueError` when `size_of::<T>()` is not the item size, and for the layouts
    /// `ndarray` cannot represent (indirect dimensions, unaligned elements, strides that are
    /// not whole elements): see [`view_as_array`]. [`BufferSlice::view`] reads those.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use cyview::{format, AxisSpec};
    /// use cyview_py::{acquire, Declaration};
    /// use pyo3::prelude::*;
    ///
    /// Python::attach(|py| -> PyResult<()> {
    ///     let np = py.import("numpy")?;
    ///     // a[::-1, :] of a (2, 3) C-contiguous array
    ///     let a = np.call_method1("arange", (6.0,))?.call_method1("reshape", (2, 3))?;
    ///     let a = a.get_item((pyo3::types::PySlice::new(py, isize::MAX, isize::MIN, -1),))?;
    ///     // const double[:, :]
    ///     let specs = [AxisSpec::STRIDED_DIRECT; 2];
    ///     let view = acquire(&a, &Declaration::new(&format::DOUBLE, &specs, false))?;
    ///     // SAFETY: nothing writes to `a` while `array` is read.
    ///     let array = unsafe { view.as_array::<f64>() }?;
    ///     assert_eq!(array.strides(), &[-3, 1]);
    ///     assert_eq!(array.iter().copied().collect::<Vec<_>>(), [3.0, 4.0, 5.0, 0.0, 1.0, 2.0]);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    ///
    /// # Safety
    ///
    /// While the returned array lives, nothing may write to the buffer's elements: not
    /// Python code (do not run any while holding it across a GIL release), not Cython
    /// `nogil` code, not other threads. A buffer is shared memory: a write concurrent with a
    /// read through the view is a data race.
    pub unsafe fn as_array<T: FromBytes>(&self) -> PyResult<ArrayViewD<'_, T>> {
        // SAFETY: the caller's contract is `view`'s.
        let view = unsafe { self.view::<T>() }?;
        // SAFETY: the view's elements are those of the buffer the exporter granted, which
        // PEP 3118 describes as one block of memory starting at `buf` (direct dimensions;
        // indirect ones are refused before any address is formed).
        Ok(unsafe { view_as_array(&view) }?)
    }
}

#[cfg_attr(docsrs, doc(cfg(feature = "ndarray")))]
impl RustBuffer {
    /// Exports an owned `ndarray` array through the buffer protocol without copying: the
    /// buffer takes the array and drops it when the buffer is dropped or released (its
    /// Python method `release()`, refused while an export is alive). Shape and strides
    /// are the array's (negative ones included, in bytes); the format is
    /// [`pep3118_format`](cyview::format::pep3118_format) of
    /// [`T::TYPE_INFO`](CythonElement::TYPE_INFO).
    ///
    /// # Errors
    ///
    /// `ValueError` for more than 8 dimensions, a stride whose byte size overflows `isize`
    /// (possible only on an axis of extent 1), or an element type no format string
    /// describes.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use ndarray::{Array2, Axis};
    /// use pyo3::prelude::*;
    ///
    /// let mut a = Array2::from_shape_fn((2, 3), |(i, j)| (10 * i + j) as i32);
    /// a.invert_axis(Axis(1));
    /// let buffer = cyview_py::RustBuffer::from_ndarray(a, true).unwrap();
    /// Python::attach(|py| -> PyResult<()> {
    ///     let obj = Bound::new(py, buffer)?;
    ///     let list = py.import("numpy")?.call_method1("asarray", (obj,))?.call_method0("tolist")?;
    ///     assert_eq!(list.extract::<Vec<Vec<i32>>>()?, [[2, 1, 0], [12, 11, 10]]);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    pub fn from_ndarray<T: CythonElement + IntoBytes + Send, D: Dimension>(
        array: Array<T, D>,
        readonly: bool,
    ) -> PyResult<Self> {
        // Dynamic dimensions: the callback below must be `'static`, which `D` need not be.
        let mut array = array.into_dyn();
        let ndim = array.ndim();
        cyview::geometry::check_ndim_limit(ndim).map_err(crate::to_py)?;
        let format = crate::rust_buffer::format_string::<T>()?;
        let mut raw = MemviewSlice {
            data: array.as_mut_ptr().cast::<u8>(),
            ..MemviewSlice::EMPTY
        };
        for d in 0..ndim {
            raw.shape[d] = array.shape()[d] as isize;
            raw.strides[d] = array.strides()[d]
                .checked_mul(size_of::<T>() as isize)
                .ok_or_else(|| {
                    PyValueError::new_err(format!("the stride of dimension {d} overflows isize"))
                })?;
            raw.suboffsets[d] = -1;
        }
        // The array moves into the callback; its elements stay where they are (on the heap).
        let release: Box<dyn FnOnce() + Send> = Box::new(move || drop(array));
        // SAFETY: `raw` describes the owned array exactly (its first element, extents,
        // strides in bytes; all dimensions direct), so every in-bounds element is an
        // initialised `T` in the array's heap allocation, which lives until `release` drops
        // the array. Nothing else refers to the array once it is moved into `release`, so
        // the elements may be read and written from any thread (`T: Send`). The format is
        // built from `T::TYPE_INFO`, whose size is `size_of::<T>()` (`CythonElement`'s contract).
        unsafe { RustBuffer::from_raw(raw, ndim, &format, size_of::<T>(), readonly, Some(release)) }
    }
}
