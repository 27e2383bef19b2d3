//! Calling Cython: `cdef api` functions taken from a module's `__pyx_capi__`.
//!
//! Cython exports every `cdef api` function of a module in the module's `__pyx_capi__` dict
//! as a `PyCapsule` whose *name* is the function's C signature, for example
//! `"double (__Pyx_memviewslice, Py_ssize_t)"` for `cdef api double f(double[:, :] v,
//! Py_ssize_t i)`. Three levels of lookup:
//!
//! * [`CythonFunction`]: typed and safe to call. The signature is a Rust function type,
//!   `fn(SliceOf<Grid>, isize) -> f64`, from which the C signature is derived and checked;
//!   arguments are converted (a buffer exporter becomes a real memoryview object of the
//!   callee's module), errors become `PyErr`, returned views become [`CythonSlice`]s.
//! * [`capi_function`]: the raw `unsafe extern "C" fn` pointer, its C signature derived
//!   from the pointer type and checked.
//! * [`capi_pointer`]: the bare pointer, checked against a C signature string.
//!
//! The signature names neither the dtype nor the number of dimensions of a memoryview, nor
//! the function's exception clause: the Rust side states the first two, and a typed call
//! checks for an exception after every call.
//!
//! [`CythonSlice`]: crate::CythonSlice

mod ctype;
mod typed;

use std::ffi::{c_void, CString};
use std::ptr::NonNull;

use pyo3::exceptions::{PyAttributeError, PyKeyError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict};

pub use ctype::{CFunctionPointer, CReturn, CSignature, CType};
pub use typed::{
    Arg, Args, CallContext, CythonFunction, Object, Param, Return, Signature, SliceOf, ViewDecl,
};

/// A capsule of `module.__pyx_capi__`, with its name (the C signature) and the qualified
/// function name for messages.
struct Capsule<'py> {
    capsule: Bound<'py, PyCapsule>,
    signature: String,
    qualified: String,
}

/// `module.__pyx_capi__[name]`.
fn capsule<'py>(module: &Bound<'py, PyModule>, name: &str) -> PyResult<Capsule<'py>> {
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
    let capsule = item.cast_into::<PyCapsule>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{module_name}.__pyx_capi__['{name}'] is not a capsule"
        ))
    })?;
    let signature = capsule
        .name()?
        .map(|n| {
            // SAFETY: the name of a live capsule is a NUL-terminated string that lives as
            // long as the capsule, which `capsule` keeps alive for this call.
            unsafe { n.as_cstr() }.to_string_lossy().into_owned()
        })
        .unwrap_or_default();
    Ok(Capsule {
        capsule,
        signature,
        qualified: format!("{module_name}.{name}"),
    })
}

impl Capsule<'_> {
    /// The function pointer (the capsule checks its own name).
    fn pointer(&self) -> PyResult<NonNull<c_void>> {
        let name = CString::new(self.signature.as_str())
            .map_err(|e| PyTypeError::new_err(e.to_string()))?;
        self.capsule.pointer_checked(Some(&name))
    }

    /// The pointer after checking that the signature is one `expected` accepts; `rust` names
    /// the Rust type in the message.
    fn pointer_for(&self, expected: &CSignature, rust: &str) -> PyResult<NonNull<c_void>> {
        if !expected.matches(&self.signature) {
            let mut also = expected.alternatives().join("; ");
            if !also.is_empty() {
                also = format!(" ({also})");
            }
            return Err(PyTypeError::new_err(format!(
                "cdef api function '{}' has the C signature '{}', but the Rust type {rust} \
                 stands for '{expected}'{also}",
                self.qualified, self.signature
            )));
        }
        self.pointer()
    }
}

/// The function pointer of `module.__pyx_capi__[name]`, after checking that its capsule
/// names the C signature `signature` exactly (as Cython writes it: `"double
/// (__Pyx_memviewslice)"`, `"__Pyx_memviewslice (char const *)"`). [`capi_function`]
/// derives the signature from a function pointer type instead.
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
    let c = capsule(module, name)?;
    if c.signature != signature {
        return Err(PyTypeError::new_err(format!(
            "cdef api function '{}' has the C signature '{}', not '{signature}'",
            c.qualified, c.signature
        )));
    }
    c.pointer()
}

/// `module.__pyx_capi__[name]` as the function pointer type `F`, after checking that the
/// capsule's C signature is one `F` stands for ([`CSignature::of::<F>()`](CSignature::of):
/// `unsafe extern "C" fn(MemviewSlice, isize) -> f64` is `"double (__Pyx_memviewslice,
/// Py_ssize_t)"`, see [`CType`] for the spellings).
///
/// Calling the pointer is `unsafe`: the memoryview arguments must have the dtype, the
/// dimensions and the axes of the Cython declaration (none of which is in the capsule), a
/// slice with a NULL `memview` (such as [`BufferSlice::as_raw`](crate::BufferSlice::as_raw)'s)
/// is only for functions that read elements, the GIL must be held unless the function is
/// `nogil`, and errors are the caller's to detect. [`CythonFunction`] does all of that.
///
/// ```no_run
/// use cyview::MemviewSlice;
/// use cyview_py::capi_function;
/// use pyo3::prelude::*;
///
/// // cdef api double total(double[:, :] v) noexcept nogil
/// type Total = unsafe extern "C" fn(MemviewSlice) -> f64;
/// Python::attach(|py| -> PyResult<()> {
///     let total: Total = capi_function(&py.import("mymodule")?, "total")?;
///     Ok(())
/// })
/// .unwrap();
/// ```
///
/// # Errors
///
/// As [`capi_pointer`]; the `TypeError` for another signature names the Rust type and the
/// spellings it accepts.
pub fn capi_function<F: CFunctionPointer>(module: &Bound<'_, PyModule>, name: &str) -> PyResult<F> {
    const {
        assert!(std::mem::size_of::<F>() == std::mem::size_of::<*const c_void>());
    }
    let p = capsule(module, name)?.pointer_for(&F::c_signature(), std::any::type_name::<F>())?;
    // SAFETY: `F` is an `unsafe extern "C" fn` pointer type (`CFunctionPointer` is sealed
    // and implemented for those only) of pointer size (asserted above); the capsule holds
    // the address of a function of a C type with F's ABI (the signature matched, see
    // `CType`'s contract).
    Ok(unsafe { std::mem::transmute_copy::<*mut c_void, F>(&p.as_ptr()) })
}
