//! NumPy interoperation (feature `numpy`, on rust-numpy): a NumPy array copy of an acquired
//! view, whatever its layout.
//!
//! The other directions need nothing new: [`acquire`](crate::acquire) takes a NumPy array
//! (or rust-numpy's `PyArray`) like any buffer exporter, `np.asarray(rust_buffer)` views a
//! [`RustBuffer`](crate::RustBuffer) without copying, and
//! [`RustBuffer::from_ndarray`](crate::RustBuffer::from_ndarray) exports an owned array.

use ::ndarray::{Array, IxDyn};
use ::numpy::npyffi::{PyArrayObject, PY_ARRAY_API};
use ::numpy::{BorrowError, PyArray, PyArrayDyn, PyArrayMethods, PyUntypedArray};
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
    ///     let decl = Declaration::new(&format::INT, &[AxisSpec::CONTIG_DIRECT], false);
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

/// rust-numpy's shared borrow-checking API, version 1: the capsule
/// `_RUST_NUMPY_BORROW_CHECKING_API` that every extension built with rust-numpy publishes
/// in NumPy's `multiarray` module (or finds there) and uses to register borrows of arrays.
/// Its layout is a stable C ABI across rust-numpy versions (new versions only append).
#[repr(C)]
struct SharedApi {
    version: u64,
    flags: *mut std::ffi::c_void,
    acquire: unsafe extern "C" fn(*mut std::ffi::c_void, *mut PyArrayObject) -> std::ffi::c_int,
    acquire_mut: unsafe extern "C" fn(*mut std::ffi::c_void, *mut PyArrayObject) -> std::ffi::c_int,
    release: unsafe extern "C" fn(*mut std::ffi::c_void, *mut PyArrayObject),
    release_mut: unsafe extern "C" fn(*mut std::ffi::c_void, *mut PyArrayObject),
}

const CAPSULE: &std::ffi::CStr = c"_RUST_NUMPY_BORROW_CHECKING_API";

/// The API's address (as `usize` to be `Send`), found once per interpreter.
static API: pyo3::sync::PyOnceLock<usize> = pyo3::sync::PyOnceLock::new();

fn shared_api(py: Python<'_>) -> PyResult<&'static SharedApi> {
    let address = API.get_or_try_init(py, || -> PyResult<usize> {
        // Let rust-numpy publish its API if no extension did yet: any borrow does.
        drop(PyArray::<u8, _>::zeros(py, [0usize], false).readonly());
        let capsule = ::numpy::get_array_module(py)?.getattr("_RUST_NUMPY_BORROW_CHECKING_API")?;
        let capsule = capsule.cast_into::<pyo3::types::PyCapsule>()?;
        let pointer = capsule.pointer_checked(Some(CAPSULE))?;
        // SAFETY: every version of the API starts with its `u64` version number.
        let version = unsafe { pointer.cast::<u64>().read() };
        if version < 1 {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
                "rust-numpy's borrow-checking API has version {version}; cyview needs 1 or newer"
            )));
        }
        // The capsule lives in NumPy's module for the life of the interpreter; keep a
        // reference anyway, as rust-numpy does, so the address stays valid.
        std::mem::forget(capsule);
        Ok(pointer.as_ptr() as usize)
    })?;
    // SAFETY: the address is the capsule's `SharedApi` (version >= 1 has this layout as a
    // prefix), which lives for the rest of the process (the capsule is never freed: a
    // reference to it was leaked above).
    Ok(unsafe { &*(*address as *const SharedApi) })
}

/// A borrow of a NumPy array registered in rust-numpy's capsule, released on drop: what
/// makes a [`MemViewMut`](crate::MemViewMut) conflict with a `PyReadonlyArray` (and a
/// [`MemView`](crate::MemView) with a `PyReadwriteArray`) of the same memory.
///
/// The borrow is registered on a private view of the array (same memory, shape and
/// strides, base class `ndarray`), not on the argument itself: rust-numpy finds the borrow
/// again at release from the array's *current* geometry, and Python code may change an
/// argument's strides while it is borrowed (`x.strides = ..`, allowed with a deprecation
/// warning by NumPy 2), which would make rust-numpy's release miss its entry and abort the
/// process. No Python code can reach the private view.
pub(crate) struct NumpyBorrow {
    array: Py<PyAny>,
    exclusive: bool,
}

impl NumpyBorrow {
    /// Registers a shared (or exclusive) borrow of `obj` when it is a NumPy array; other
    /// exporters have no registry (`None`).
    pub(crate) fn acquire(obj: &Bound<'_, PyAny>, exclusive: bool) -> PyResult<Option<Self>> {
        if !obj.is_instance_of::<PyUntypedArray>() {
            return Ok(None);
        }
        let py = obj.py();
        let api = shared_api(py)?;
        // SAFETY: `obj` is a live ndarray (checked above) and the interpreter is attached;
        // a null descriptor keeps the dtype, and `PyArray_Type` makes a base-class view, so
        // no subclass hook (Python code) runs. The result is a new reference or NULL with
        // an exception set.
        let private = unsafe {
            let ndarray = ndarray_type(py);
            let view = PY_ARRAY_API.PyArray_View(
                py,
                obj.as_ptr().cast::<PyArrayObject>(),
                std::ptr::null_mut(),
                ndarray,
            );
            Bound::from_owned_ptr_or_err(py, view)?
        };
        let f = if exclusive {
            api.acquire_mut
        } else {
            api.acquire
        };
        // SAFETY: the API's contract: called attached, with its own `flags` and a live
        // array (the private view).
        let rc = unsafe { f(api.flags, private.as_ptr().cast::<PyArrayObject>()) };
        match rc {
            0 => Ok(Some(NumpyBorrow {
                array: private.unbind(),
                exclusive,
            })),
            -1 => Err(BorrowError::AlreadyBorrowed.into()),
            -2 => Err(BorrowError::NotWriteable.into()),
            rc => Err(pyo3::exceptions::PyRuntimeError::new_err(format!(
                "rust-numpy's borrow-checking API returned {rc}"
            ))),
        }
    }
}

/// NumPy's `ndarray` type object.
///
/// # Safety
///
/// The interpreter is attached (`py`).
unsafe fn ndarray_type(py: Python<'_>) -> *mut pyo3::ffi::PyTypeObject {
    // SAFETY: the caller's contract; NumPy's C API is imported by rust-numpy on first use.
    unsafe { ::numpy::npyffi::get_type_object(py, ::numpy::npyffi::NpyTypes::PyArray_Type) }
}

impl Drop for NumpyBorrow {
    fn drop(&mut self) {
        Python::attach(|py| {
            // Registered through the API, so it was found.
            if let Ok(api) = shared_api(py) {
                let f = if self.exclusive {
                    api.release_mut
                } else {
                    api.release
                };
                // SAFETY: releases the borrow `acquire` registered for this live array,
                // attached, once.
                unsafe { f(api.flags, self.array.as_ptr().cast::<PyArrayObject>()) };
            }
        });
    }
}
