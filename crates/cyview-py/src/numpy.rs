//! NumPy interoperation (feature `numpy`, on rust-numpy): a NumPy array copy of an acquired
//! view, whatever its layout.
//!
//! The other directions need nothing new: [`acquire`](crate::acquire) takes a NumPy array
//! (or rust-numpy's `PyArray`) like any buffer exporter, `np.asarray(rust_buffer)` views a
//! [`RustBuffer`](crate::RustBuffer) without copying, and
//! [`RustBuffer::from_ndarray`](crate::RustBuffer::from_ndarray) exports an owned array.

use ::ndarray::{Array, IxDyn};
use ::numpy::{PyArray, PyArrayDyn};
use cyview::FromBytes;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use crate::BufferSlice;

#[cfg_attr(docsrs, doc(cfg(feature = "numpy")))]
impl BufferSlice {
    /// A new C-contiguous NumPy array holding a copy of the elements: NumPy's
    /// `np.array(obj, copy=True)` of the acquired view. Unlike
    /// [`as_array`](BufferSlice::as_array) it takes every layout Cython accepts: indirect
    /// dimensions, unaligned elements, strides that are not whole elements.
    ///
    /// `T` is checked against the buffer's item size only, as in [`BufferSlice::view`];
    /// its NumPy dtype is `T`'s.
    ///
    /// # Errors
    ///
    /// `ValueError` when `size_of::<T>()` is not the buffer's item size.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// use cyview::{format, AxisSpec};
    /// use cyview_py::{acquire, Declaration};
    /// use numpy::PyArrayMethods;
    /// use pyo3::prelude::*;
    ///
    /// Python::attach(|py| -> PyResult<()> {
    ///     let array = py.import("array")?.getattr("array")?.call1(("i", vec![1, 2, 3, 4]))?;
    ///     // const int[::1]
    ///     let decl = Declaration::new(&format::I32, &[AxisSpec::CONTIG_DIRECT], false);
    ///     let copy = acquire(&array, &decl)?.to_pyarray::<i32>(py)?;
    ///     assert_eq!(copy.to_vec()?, [1, 2, 3, 4]);
    ///     Ok(())
    /// })
    /// .unwrap();
    /// ```
    // Note: a native thread that writes the buffer without the GIL while this copies races
    // with the copy, as it would with NumPy's.
    pub fn to_pyarray<'py, T: FromBytes + ::numpy::Element>(
        &self,
        py: Python<'py>,
    ) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
        // SAFETY: the copy is made with the GIL held and without running Python code, so no
        // Python code writes meanwhile; a native thread writing the buffer without the GIL
        // during the copy would race with NumPy's own copies of it as well (the documented
        // limit of `to_pyarray`).
        let view = unsafe { self.view::<T>() }?;
        let shape: Vec<usize> = view.shape().iter().map(|&n| n as usize).collect();
        let array = Array::from_shape_vec(IxDyn(&shape), view.to_vec().map_err(crate::to_py)?)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        // The vector moves into NumPy's array (no second copy).
        Ok(PyArray::from_owned_array(py, array))
    }
}
