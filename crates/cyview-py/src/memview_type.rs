//! A Cython module's own `memoryview` type, and acquiring a buffer through it: the
//! memoryview object Cython itself makes for `cdef double[:, ::1] v = obj`.

use std::ffi::c_int;
use std::path::PathBuf;

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyType;

use crate::acquire::validate_buffer;
use crate::memview_abi::type_compiled_in;
use crate::{CythonSlice, Declaration, MemviewAbi};

/// The `memoryview` type a compiled Cython module defines (the class behind its typed
/// memoryviews, `cython.view.memoryview`), found in the module's own shared object.
///
/// Cython modules do not export it by name. It is found among the subclasses of `object`
/// (every type Cython readies registers there, in 0.29 as in 3.x), as the type named
/// `<module>.memoryview` whose code (`tp_dealloc`) is in the file the module was loaded
/// from, and then identified as [`MemviewAbi::identify`] identifies a memoryview's type.
/// A module built with a shared Cython utility module (Cython 3.1+'s
/// `--shared`) keeps its memoryview type there and is refused.
///
/// [`MemviewType::acquire`] makes views through it exactly as the module's compiled code
/// does for an object that is not already one of its memoryviews (`memoryview(obj, flags,
/// False)`, then `__Pyx_ValidateAndInit_memviewslice`'s checks): a real memoryview object
/// stands behind every slice, so the module's functions may turn it into a Python object
/// (`np.asarray(v)`, `return v`), keep it, or count it, with their own release's layout.
#[derive(Clone, Debug)]
pub struct MemviewType {
    /// Shared, so that clones need not attach to the interpreter.
    ty: std::sync::Arc<Py<PyType>>,
    abi: MemviewAbi,
}

impl MemviewType {
    /// The memoryview type of `module`, a compiled Cython module.
    ///
    /// # Errors
    ///
    /// `TypeError` when the module has no `__file__` or defines no memoryview type (it
    /// declares no typed memoryview, or takes it from a shared utility module); the refusals
    /// of [`MemviewAbi::identify`] for its type.
    pub fn of_module(module: &Bound<'_, PyModule>) -> PyResult<Self> {
        let py = module.py();
        let name = module.name()?.to_string();
        let file: PathBuf = module
            .getattr("__file__")
            .and_then(|f| f.extract())
            .map_err(|_| {
                PyTypeError::new_err(format!(
                    "module '{name}' has no __file__: it is not a compiled Cython module"
                ))
            })?;
        let short = name.rsplit('.').next().unwrap_or(&name);
        let subclasses = py
            .get_type::<pyo3::types::PyAny>()
            .call_method0("__subclasses__")?;
        for t in subclasses.try_iter()? {
            let t = t?;
            let Ok(t) = t.cast_into::<PyType>() else {
                continue;
            };
            let ty = t.as_type_ptr();
            // SAFETY: `t` is a live type object; `tp_name` is a NUL-terminated string.
            let tp_name = unsafe { std::ffi::CStr::from_ptr((*ty).tp_name) };
            let Some((module_part, "memoryview")) =
                tp_name.to_str().ok().and_then(|n| n.rsplit_once('.'))
            else {
                continue;
            };
            // `pkg.mod.memoryview`, or `mod.memoryview` for a module compiled without its
            // package's name.
            if module_part != name && module_part != short {
                continue;
            }
            // SAFETY: `t` is a live type object.
            if !unsafe { type_compiled_in(ty, &file) } {
                continue;
            }
            // SAFETY: as above.
            let abi = unsafe { MemviewAbi::identify_type(py, ty) }?;
            return Ok(MemviewType {
                ty: std::sync::Arc::new(t.unbind()),
                abi,
            });
        }
        Err(PyTypeError::new_err(format!(
            "module '{name}' defines no Cython memoryview type (in {}): it declares no typed \
             memoryview, or was built with a shared Cython utility module",
            file.display()
        )))
    }

    /// The layout of the type's objects.
    pub fn abi(&self) -> MemviewAbi {
        self.abi
    }

    /// The type object.
    pub fn type_object<'py>(&self, py: Python<'py>) -> &Bound<'py, PyType> {
        self.ty.bind(py)
    }

    /// `cdef <decl> v = obj` in the module: a memoryview object of this type over `obj`'s
    /// buffer (`memoryview(obj, flags, False)` with the declaration's request flags), checked
    /// as `__Pyx_ValidateAndInit_memviewslice` checks a new memoryview (ndim, format string,
    /// item size, per-axis strides and suboffsets, contiguity), and the slice
    /// `__Pyx_init_memviewslice` makes of it, owning the object's one acquisition.
    ///
    /// (When `obj` is already a memoryview of the module with the same dtype, Cython reuses
    /// it; here it is wrapped once more, which reaches the same elements.)
    ///
    /// # Errors
    ///
    /// The exporter's exception, and Cython's for a failed check (same type and message);
    /// `RuntimeError` for a module built without atomics (see [`MemviewAbi::identify`]).
    pub fn acquire(&self, obj: &Bound<'_, PyAny>, decl: &Declaration<'_>) -> PyResult<CythonSlice> {
        let py = obj.py();
        let ty = self.ty.bind(py);
        let mv = ty.call1((obj, decl.flags() as c_int, false))?;
        if !mv.get_type().is(ty) {
            return Err(PyRuntimeError::new_err(format!(
                "calling {} gave an object of another type",
                ty.name()?
            )));
        }
        let p = mv.as_ptr();
        // SAFETY: `mv` is a live object of the type `identify_type` accepted with layout
        // `self.abi`.
        unsafe { self.abi.check_object(p) }?;
        // SAFETY: the object is alive (`mv`) and of this layout: its `Py_buffer view` at
        // `view_offset` (8-aligned) was filled by `PyObject_GetBuffer` in `__cinit__` and is
        // held until the object is deallocated.
        let view = unsafe {
            &*p.cast::<u8>()
                .add(self.abi.view_offset())
                .cast::<ffi::Py_buffer>()
        };
        // SAFETY: `view` is the buffer the object acquired and holds while `mv` lives.
        let (raw, ndim) = unsafe { validate_buffer(view, decl, p.cast()) }?;
        // SAFETY: a new object of this layout that passed `check_object`; `raw` was built
        // from the buffer it holds, with at most `MAX_DIMS` dimensions (`validate_buffer`),
        // and points at it.
        unsafe { CythonSlice::adopt_new(mv, raw, ndim, self.abi) }
    }
}
