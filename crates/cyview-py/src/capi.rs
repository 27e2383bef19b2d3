//! Calling Cython: `cdef api` functions taken from a module's `__pyx_capi__`.
//!
//! Cython exports every `cdef api` function of a module in the module's `__pyx_capi__` dict
//! as a `PyCapsule` whose *name* is the function's C signature, for example
//! `"double (__Pyx_memviewslice)"` for `cdef api double f(double[:, :] v)`. The signature
//! names neither the dtype nor the number of dimensions of a memoryview argument, so the
//! Rust side states them (and the C types) in the function pointer type it asks for.

use std::ffi::{c_void, CString};
use std::ptr::NonNull;

use pyo3::exceptions::{PyAttributeError, PyKeyError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict};

/// The function pointer of `module.__pyx_capi__[name]`, after checking that its capsule
/// names the C signature `signature` (as Cython writes it: `"double (__Pyx_memviewslice)"`,
/// `"__Pyx_memviewslice (char const *)"`).
///
/// # Errors
///
/// * `AttributeError`: the module has no `__pyx_capi__` (not a Cython module, or one
///   without `cdef api` functions);
/// * `KeyError`: no `cdef api` function of that name (the message lists those there are);
/// * `TypeError`: the capsule's signature is not `signature` (both are named).
pub fn capi_pointer(
    module: &Bound<'_, PyModule>,
    name: &str,
    signature: &str,
) -> PyResult<NonNull<c_void>> {
    let module_name = module.name()?.to_string();
    let capi = module.getattr("__pyx_capi__").map_err(|_| {
        PyAttributeError::new_err(format!(
            "module '{module_name}' has no __pyx_capi__: it is not a Cython module with cdef \
             api functions"
        ))
    })?;
    let capi = capi
        .cast::<PyDict>()
        .map_err(|_| PyTypeError::new_err(format!("{module_name}.__pyx_capi__ is not a dict")))?;
    let Some(item) = capi.get_item(name)? else {
        let mut names: Vec<String> = capi.keys().iter().map(|k| k.to_string()).collect();
        names.sort();
        return Err(PyKeyError::new_err(format!(
            "module '{module_name}' has no cdef api function '{name}' (it has: {})",
            names.join(", ")
        )));
    };
    let capsule = item.cast::<PyCapsule>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{module_name}.__pyx_capi__['{name}'] is not a capsule"
        ))
    })?;
    let actual = capsule
        .name()?
        .map(|n| {
            // SAFETY: the name of a live capsule is a NUL-terminated string that lives as
            // long as the capsule, which `capsule` keeps alive for this call.
            unsafe { n.as_cstr() }.to_string_lossy().into_owned()
        })
        .unwrap_or_default();
    if actual != signature {
        return Err(PyTypeError::new_err(format!(
            "cdef api function '{module_name}.{name}' has the C signature '{actual}', not \
             '{signature}'"
        )));
    }
    let wanted = CString::new(signature).map_err(|e| PyTypeError::new_err(e.to_string()))?;
    capsule.pointer_checked(Some(&wanted))
}

/// [`capi_pointer`] as a typed function pointer `F`.
///
/// ```no_run
/// use cyview::MemviewSlice;
/// use cyview_py::capi_function;
/// use pyo3::prelude::*;
///
/// // cdef api double total(double[:, :] v) except? -1
/// type Total = unsafe extern "C" fn(MemviewSlice) -> f64;
/// Python::attach(|py| -> PyResult<()> {
///     let module = py.import("mymodule")?;
///     // SAFETY: `Total` is the C type of that signature, with `v` a 2-d double view.
///     let total: Total = unsafe { capi_function(&module, "total", "double (__Pyx_memviewslice)") }?;
///     Ok(())
/// })
/// .unwrap();
/// ```
///
/// # Errors
///
/// As [`capi_pointer`].
///
/// # Safety
///
/// `F` must be an `unsafe extern "C" fn` pointer type whose parameters and return type are
/// the C types of `signature` (`MemviewSlice` for `__Pyx_memviewslice`), and every
/// memoryview argument later passed must have the dtype and dimensions the Cython
/// declaration names: none of that is in the capsule. Calls must also respect what the
/// Cython function needs: the GIL unless it is declared `nogil`, and a real memoryview
/// object behind every slice argument if the function may turn it into a Python object
/// (`return v` to Python, `np.asarray(v)`): a slice with a NULL `memview`, such as
/// [`BufferSlice::as_raw`](crate::BufferSlice::as_raw)'s, is only for functions that
/// read elements.
pub unsafe fn capi_function<F: Copy>(
    module: &Bound<'_, PyModule>,
    name: &str,
    signature: &str,
) -> PyResult<F> {
    const {
        assert!(std::mem::size_of::<F>() == std::mem::size_of::<*const c_void>());
    }
    let p = capi_pointer(module, name, signature)?;
    // SAFETY: `F` is a function pointer type (the caller's contract) of pointer size
    // (asserted above); the capsule holds the address of that function.
    Ok(unsafe { std::mem::transmute_copy::<*mut c_void, F>(&p.as_ptr()) })
}
