//! Recognising a Cython memoryview object and the layout its release gave it: which
//! `struct __pyx_memoryview_obj` (and so which acquisition-count protocol) a pointer
//! handed over by Cython has, and the provenance checks that make sure it is one.

use std::sync::atomic::{AtomicI32, Ordering};

use cyview::MemviewObjectLayout;
use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::ffi;
use pyo3::prelude::*;

/// The layout of Cython's `struct __pyx_memoryview_obj` as far as the acquisition protocol
/// needs it. The offsets are `cyview`'s [`MemviewObjectLayout`] of the variant, those clang
/// gives the struct in the C each release generates (the conformance suite's
/// `tests/exchange.rs` compares them with the bindgen extraction of every pinned release;
/// `cyview_build::check_abi` with the installed Cython's, at build time).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MemviewAbi {
    /// Cython 0.29 ([`MemviewObjectLayout::CYTHON0_29`]): `__pyx_atomic_int
    /// acquisition_count[2]` at 56 and `__pyx_atomic_int *acquisition_count_aligned_p` at
    /// 64, through which every access goes (`__sync_fetch_and_add` / `__sync_fetch_and_sub`,
    /// sequentially consistent); `sizeof` 168.
    Cython0_29,
    /// Cython 3.0 to 3.3 ([`MemviewObjectLayout::CYTHON3`]): one `__pyx_atomic_int_type
    /// acquisition_count` at 56 (increments relaxed, decrements acquire-release); `sizeof`
    /// 160. (3.2 renamed `_array_interface` to `_unused` at the same offset.)
    Cython3,
}

// `LOCK_OFFSET` is one number for both layouts.
const _: () = assert!(MemviewObjectLayout::CYTHON0_29.lock == MemviewObjectLayout::CYTHON3.lock);

impl MemviewAbi {
    /// Offset of `PyThread_type_lock lock` (both layouts): NULL when the module was built
    /// with atomics (`CYTHON_ATOMICS`, the default), a lock otherwise.
    pub const LOCK_OFFSET: usize = MemviewObjectLayout::CYTHON3.lock;

    /// The offsets and sizes of this layout.
    pub const fn layout(self) -> MemviewObjectLayout {
        match self {
            MemviewAbi::Cython0_29 => MemviewObjectLayout::CYTHON0_29,
            MemviewAbi::Cython3 => MemviewObjectLayout::CYTHON3,
        }
    }

    /// `sizeof(struct __pyx_memoryview_obj)`, the memoryview type's `tp_basicsize`.
    pub const fn object_size(self) -> usize {
        self.layout().size
    }

    /// Offset of `acquisition_count` (0.29: of the two-element array).
    pub const fn count_offset(self) -> usize {
        self.layout().acquisition_count
    }

    /// Offset of `acquisition_count_aligned_p` (0.29 only).
    pub const fn aligned_pointer_offset(self) -> Option<usize> {
        self.layout().acquisition_count_aligned_p
    }

    /// Offset of the `Py_buffer view` member.
    pub const fn view_offset(self) -> usize {
        self.layout().view
    }

    /// Which layout the memoryview object `memview` has, refusing whenever that cannot be
    /// established before touching the count: a free-threaded Python, an object that is
    /// not a Cython memoryview, an object size of no known release, a module built without
    /// atomics (it serialises the count with a lock instead), a 0.29 object whose count
    /// pointer does not point into it, a count that is not positive.
    ///
    /// "A Cython memoryview" is established from the type alone, before any byte of the
    /// object is read, in this order:
    /// 1. the type is named `<module>.memoryview`, or `<module>._memoryviewslice` whose
    ///    `tp_base` is named `<module>.memoryview` (the same `<module>`, not empty, not
    ///    `builtins`);
    /// 2. for that type (and, for `_memoryviewslice`, its base too): `tp_dealloc` is
    ///    non-NULL and `dladdr` finds the shared object holding it;
    /// 3. that object is not the one holding CPython itself (the one `dladdr` gives for
    ///    `PyType_Type.tp_dealloc`): a class defined in Python (a heap type whose
    ///    `tp_dealloc` is CPython's `subtype_dealloc`) is refused here, whatever its size;
    /// 4. that object's file is the `__file__` of `sys.modules[<module>]` (or, when no
    ///    such key exists, of the one module named `<something>.<module>`: a module
    ///    compiled without its package's name), compared as given and else after resolving
    ///    both with `realpath`. Cython 3.1+'s shared utility module is a module of its own
    ///    and passes the same way;
    /// 5. the memoryview type's `tp_basicsize` is that of a known release's layout
    ///    (`RuntimeError` otherwise);
    /// 6. both types have a non-NULL `tp_as_buffer->bf_getbuffer`, in the same shared
    ///    object as the `tp_dealloc` of step 2.
    ///
    /// A Cython module linked statically into the executable together with CPython is
    /// refused (step 3); so is every type on a platform without `dladdr` (non-unix). Steps 2
    /// to 6 run once per type: a type that passed them is remembered (a reference to it
    /// and its base is kept for the life of the process).
    ///
    /// # Errors
    ///
    /// `TypeError` for an object that is not a Cython memoryview: `'<name>' is not a Cython
    /// memoryview object` when the name does not fit, `'<name>' is not a Cython memoryview
    /// object (<reason>)` when the type's code does not live in its module; `RuntimeError`
    /// for the other refusals; each message says which.
    ///
    /// # Safety
    ///
    /// `memview` is a live object for the duration of the call.
    pub unsafe fn identify(py: Python<'_>, memview: *mut ffi::PyObject) -> PyResult<Self> {
        // SAFETY: `memview` is live (caller), so its type is a live type object.
        let ty = unsafe { ffi::Py_TYPE(memview) };
        // SAFETY: `ty` is a live type object.
        let abi = unsafe { Self::identify_type(py, ty) }?;
        // SAFETY: `memview` is live (caller) and an instance of `ty`, whose layout is `abi`.
        let count = unsafe { abi.check_object(memview) }?;
        // SAFETY: `count` points at the live object's count (checked by `check_object`), an
        // aligned `int` that Cython modules with atomics only access atomically.
        let n = unsafe { AtomicI32::from_ptr(count) }.load(Ordering::Acquire);
        if n <= 0 {
            return Err(PyRuntimeError::new_err(format!(
                "'{}': acquisition count is {n} while a slice points at it",
                // SAFETY: as above, a live type object with a NUL-terminated name.
                unsafe { type_name(ty) }
            )));
        }
        Ok(abi)
    }

    /// The type-level part of [`MemviewAbi::identify`] (steps 1 to 6, for the type `ty`
    /// of a memoryview or `_memoryviewslice` object): the layout its instances have.
    ///
    /// # Errors
    ///
    /// As [`MemviewAbi::identify`], for the refusals that depend on the type alone.
    ///
    /// # Safety
    ///
    /// `ty` is a live type object.
    pub(crate) unsafe fn identify_type(
        py: Python<'_>,
        ty: *mut ffi::PyTypeObject,
    ) -> PyResult<Self> {
        // Once the GIL is known to be enabled it stays so (a free-threaded CPython may turn
        // it on at run time, never off again), so only that answer is remembered.
        static GIL_ENABLED: std::sync::atomic::AtomicBool =
            std::sync::atomic::AtomicBool::new(false);
        if !GIL_ENABLED.load(Ordering::Relaxed) {
            if let Ok(f) = py.import("sys")?.getattr("_is_gil_enabled") {
                if !f.call0()?.is_truthy()? {
                    return Err(PyRuntimeError::new_err(
                        "free-threaded Python: Cython's acquisition count protocol is not \
                         supported without the GIL",
                    ));
                }
            }
            GIL_ENABLED.store(true, Ordering::Relaxed);
        }
        // SAFETY: `ty` is a live type object (caller).
        let (name, base) = unsafe { named_memoryview_type(ty) }?;
        let module = name.rsplit_once('.').map_or("", |(module, _)| module);
        let not_cython = |reason: String| {
            PyTypeError::new_err(format!(
                "'{name}' is not a Cython memoryview object ({reason})"
            ))
        };
        if let Some(abi) = identified_type(ty, base) {
            return Ok(abi);
        }
        // SAFETY: `ty` and `base` are live type objects (see above).
        let abi = unsafe { Self::check_types(py, ty, base, module) }.map_err(|e| match e {
            TypeRefusal::NotCython(reason) => not_cython(reason),
            TypeRefusal::Size(size) => PyRuntimeError::new_err(format!(
                "'{name}' objects have {size} bytes, which no known Cython release \
                 gives its memoryview (168: 0.29; 160: 3.0-3.3): unknown release, not \
                 touching it"
            )),
        })?;
        // SAFETY: as above; they passed every check of the types.
        unsafe { remember_type(py, ty, base, abi) };
        if base != ty {
            // The checks of the pair include every check of `base` alone (its code, its
            // module, its size, its buffer slot): the memoryview type is known too, so
            // that `identified` finds it (the root of a `_memoryviewslice`).
            // SAFETY: `base` is a live type object that passed them.
            unsafe { remember_type(py, base, base, abi) };
        }
        Ok(abi)
    }

    /// The layout [`MemviewAbi::identify_type`] gave `ty` if it already accepted it (no
    /// interpreter, no allocation: a lookup by the type's address among the remembered
    /// types, which hold a reference to each so that no other type can take the address).
    /// `None` when it has not (yet). What the checks established cannot change while the
    /// type lives (the remembered facts), and a Cython memoryview type's name and base are
    /// fixed (not assignable on an immutable or static type).
    pub(crate) fn identified(ty: *mut ffi::PyTypeObject) -> Option<Self> {
        let types = IDENTIFIED_TYPES
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        types
            .iter()
            .find(|t| t.ty.as_ptr() == ty.cast())
            .map(|t| t.abi)
    }

    /// The object-level part of [`MemviewAbi::identify`]: refuses a module built without
    /// atomics (a lock in the object) and a 0.29 count pointer that does not point into the
    /// object; returns the address of the count.
    ///
    /// # Errors
    ///
    /// `RuntimeError`, saying which.
    ///
    /// # Safety
    ///
    /// `memview` is a live object whose type passed [`MemviewAbi::identify_type`] with the
    /// result `self`.
    pub(crate) unsafe fn check_object(self, memview: *mut ffi::PyObject) -> PyResult<*mut i32> {
        let at = memview.cast::<u8>();
        // SAFETY: the object has `self.object_size()` bytes (its memoryview type's
        // basicsize, checked for this type), more than the lock's offset + 8; the field is
        // a pointer written at construction.
        let lock = unsafe { at.add(Self::LOCK_OFFSET).cast::<*mut u8>().read() };
        // SAFETY: `memview` is live (caller), so its type is a live type object.
        let name = || unsafe { type_name(ffi::Py_TYPE(memview)) };
        if !lock.is_null() {
            return Err(PyRuntimeError::new_err(format!(
                "'{}' comes from a module built without atomics (CYTHON_ATOMICS=0; its \
                 memoryviews serialise the acquisition count with a lock): not supported",
                name()
            )));
        }
        // SAFETY: `memview` is live (caller) and has this layout's size.
        let count = unsafe { self.count_ptr(memview) };
        if let Some(off) = self.aligned_pointer_offset() {
            let array = at.wrapping_add(self.count_offset()) as usize;
            let p = count as usize;
            if p != array && p != array + 4 {
                return Err(PyRuntimeError::new_err(format!(
                    "'{}': acquisition_count_aligned_p (at {off}) does not point into the \
                     object: not the 0.29 layout",
                    name()
                )));
            }
        }
        Ok(count)
    }

    /// Steps 2 to 6 of [`MemviewAbi::identify`] (the checks of the types, after their names):
    /// the layout, or why not.
    ///
    /// # Safety
    ///
    /// `ty` and `base` are live type objects.
    unsafe fn check_types(
        py: Python<'_>,
        ty: *mut ffi::PyTypeObject,
        base: *mut ffi::PyTypeObject,
        module: &str,
    ) -> Result<Self, TypeRefusal> {
        // SAFETY: `ty` is a live type object (caller).
        let object =
            unsafe { compiled_in_module(py, ty, module) }.map_err(TypeRefusal::NotCython)?;
        if base != ty {
            // SAFETY: `base` is a live type object (caller).
            unsafe { compiled_in_module(py, base, module) }.map_err(TypeRefusal::NotCython)?;
        }
        // SAFETY: `base` is a live type object (caller).
        let size = unsafe { (*base).tp_basicsize } as usize;
        let abi = if size == MemviewAbi::Cython0_29.object_size() {
            MemviewAbi::Cython0_29
        } else if size == MemviewAbi::Cython3.object_size() {
            MemviewAbi::Cython3
        } else {
            return Err(TypeRefusal::Size(size));
        };
        for t in [ty, base] {
            // SAFETY: `ty` and `base` are live type objects (caller).
            unsafe { buffer_in_object(t, object) }.map_err(TypeRefusal::NotCython)?;
        }
        Ok(abi)
    }

    /// The address of the count of `memview`.
    ///
    /// # Safety
    ///
    /// `memview` is a live Cython memoryview object of this layout.
    pub(crate) unsafe fn count_ptr(self, memview: *mut ffi::PyObject) -> *mut i32 {
        let at = memview.cast::<u8>();
        match self.aligned_pointer_offset() {
            // SAFETY: a live 0.29 memoryview object (caller) has the pointer field at `off`,
            // set at construction.
            Some(off) => unsafe { at.add(off).cast::<*mut i32>().read() },
            None => at.wrapping_add(self.count_offset()).cast(),
        }
    }
}

/// Why [`MemviewAbi::check_types`] refused a type.
enum TypeRefusal {
    /// Its code is not where a Cython memoryview type's is (the reason).
    NotCython(String),
    /// Its `tp_basicsize`, which no known release gives its memoryview.
    Size(usize),
}

/// A `(type, base)` pair that passed [`MemviewAbi::check_types`], with its layout.
struct IdentifiedType {
    /// Owned reference: keeps the type alive, so no other type takes its address while
    /// it is listed.
    ty: Py<PyAny>,
    /// Owned reference (as `ty`): the memoryview type whose layout `abi` is.
    base: Py<PyAny>,
    abi: MemviewAbi,
}

/// The types [`MemviewAbi::identify`] accepted, so that their checks (`dladdr`,
/// `sys.modules`, paths: several microseconds) run once per type. What they establish
/// cannot change while the type lives: where its `tp_dealloc` and `bf_getbuffer` are (not
/// assignable from Python), its `tp_basicsize`; the names are checked on every call.
/// Bounded by the Cython modules loaded (at most two types each); never emptied (extension
/// modules are never unloaded either).
static IDENTIFIED_TYPES: std::sync::Mutex<Vec<IdentifiedType>> = std::sync::Mutex::new(Vec::new());

/// The layout recorded for `(ty, base)` by [`remember_type`], if any.
fn identified_type(ty: *mut ffi::PyTypeObject, base: *mut ffi::PyTypeObject) -> Option<MemviewAbi> {
    let types = IDENTIFIED_TYPES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    types
        .iter()
        .find(|t| t.ty.as_ptr() == ty.cast() && t.base.as_ptr() == base.cast())
        .map(|t| t.abi)
}

/// Step 1 of [`MemviewAbi::identify`] (the names): the type's name (`<module>.<name>`) and
/// the memoryview type whose layout its instances have (`ty` itself, or the base of a
/// `_memoryviewslice`).
///
/// # Errors
///
/// `TypeError`, as [`MemviewAbi::identify`] documents.
///
/// # Safety
///
/// `ty` is a live type object.
unsafe fn named_memoryview_type(
    ty: *mut ffi::PyTypeObject,
) -> PyResult<(String, *mut ffi::PyTypeObject)> {
    // SAFETY: `ty` is a live type object (caller).
    let name = unsafe { type_name(ty) };
    let (module, short) = name.rsplit_once('.').unwrap_or(("", name.as_str()));
    let base = match short {
        _ if module.is_empty() || module == "builtins" => std::ptr::null_mut(),
        "memoryview" => ty,
        // SAFETY: `ty` is a live type object; its base is live or NULL.
        "_memoryviewslice" => unsafe { (*ty).tp_base },
        _ => std::ptr::null_mut(),
    };
    if base.is_null() {
        return Err(PyTypeError::new_err(format!(
            "'{name}' is not a Cython memoryview object"
        )));
    }
    let not_cython = |reason: String| {
        PyTypeError::new_err(format!(
            "'{name}' is not a Cython memoryview object ({reason})"
        ))
    };
    if base != ty {
        // SAFETY: `base` is a live type object.
        let base_name = unsafe { type_name(base) };
        let expected = format!("{module}.memoryview");
        if base_name != expected {
            return Err(not_cython(format!(
                "its base type is '{base_name}', not '{expected}'"
            )));
        }
    }
    Ok((name, base))
}

/// Records that `(ty, base)` passed [`MemviewAbi::check_types`] with layout `abi`, taking a
/// reference to each.
///
/// # Safety
///
/// `ty` and `base` are live type objects that passed [`MemviewAbi::check_types`] with the
/// result `abi`.
unsafe fn remember_type(
    py: Python<'_>,
    ty: *mut ffi::PyTypeObject,
    base: *mut ffi::PyTypeObject,
    abi: MemviewAbi,
) {
    // SAFETY: both are live objects (caller) and the interpreter is attached (`py`): new
    // owned references to them.
    let (ty, base) = unsafe {
        (
            Bound::from_borrowed_ptr(py, ty.cast()).unbind(),
            Bound::from_borrowed_ptr(py, base.cast()).unbind(),
        )
    };
    let mut types = IDENTIFIED_TYPES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // Another thread may have recorded them since the lookup (the GIL can be released in
    // between): once is enough.
    if !types
        .iter()
        .any(|t| t.ty.as_ptr() == ty.as_ptr() && t.base.as_ptr() == base.as_ptr())
    {
        types.push(IdentifiedType { ty, base, abi });
    }
}

/// Checks that the `tp_dealloc` of type `ty` lives in a shared object that is not CPython's
/// and is the compiled file of module `module` (the provenance part of
/// [`MemviewAbi::identify`], which documents the checks). Returns that object's load
/// address, or the reason for a refusal.
///
/// # Safety
///
/// `ty` is a live type object.
unsafe fn compiled_in_module(
    py: Python<'_>,
    ty: *mut ffi::PyTypeObject,
    module: &str,
) -> Result<usize, String> {
    // SAFETY: `ty` is a live type object (caller): its slots are readable.
    let dealloc = unsafe { (*ty).tp_dealloc };
    let Some(dealloc) = dealloc else {
        return Err("its type has no tp_dealloc".to_string());
    };
    let Some((base, file)) = shared_object_of(dealloc as *const std::ffi::c_void) else {
        return Err("its tp_dealloc is in no loaded shared object".to_string());
    };
    // SAFETY: `PyType_Type` is CPython's static type object, initialised before any Python
    // object exists; its `tp_dealloc` is never written afterwards.
    let cpython_dealloc = unsafe { (*std::ptr::addr_of!(ffi::PyType_Type)).tp_dealloc };
    let cpython = cpython_dealloc.and_then(|f| shared_object_of(f as *const std::ffi::c_void));
    match cpython {
        Some((cpython_base, _)) if cpython_base != base => {}
        Some(_) => {
            return Err(
                "its tp_dealloc is in CPython itself, as for a class defined in Python".to_string(),
            )
        }
        None => return Err("CPython's own shared object cannot be found".to_string()),
    }
    let module_file = module_file(py, module)?;
    if module_file == file {
        return Ok(base);
    }
    let resolve = |p: &std::path::Path| {
        std::fs::canonicalize(p).map_err(|e| format!("cannot resolve {}: {e}", p.display()))
    };
    if resolve(&module_file)? == resolve(&file)? {
        Ok(base)
    } else {
        Err(format!(
            "its code is in {}, not in {}, the file of module '{module}'",
            file.display(),
            module_file.display()
        ))
    }
}

/// Checks that type `ty` exports buffers with a `bf_getbuffer` in the shared object loaded
/// at `object` (where [`compiled_in_module`] found its `tp_dealloc`); the reason for a
/// refusal otherwise.
///
/// # Safety
///
/// `ty` is a live type object.
unsafe fn buffer_in_object(ty: *mut ffi::PyTypeObject, object: usize) -> Result<(), String> {
    // SAFETY: `ty` is a live type object (caller): its slots are readable.
    let procs = unsafe { (*ty).tp_as_buffer };
    let getbuffer = if procs.is_null() {
        None
    } else {
        // SAFETY: a non-NULL `tp_as_buffer` of a live type points at its buffer procs.
        unsafe { (*procs).bf_getbuffer }
    };
    let Some(getbuffer) = getbuffer else {
        return Err("its type has no bf_getbuffer".to_string());
    };
    match shared_object_of(getbuffer as *const std::ffi::c_void) {
        Some((b, _)) if b == object => Ok(()),
        Some((_, file)) => Err(format!(
            "its bf_getbuffer is in {}, not where its tp_dealloc is",
            file.display()
        )),
        None => Err("its bf_getbuffer is in no loaded shared object".to_string()),
    }
}

/// The `__file__` of the module named `module`: `sys.modules[module]`, else the one module
/// whose key ends with `.<module>` (a module compiled without its package's name).
fn module_file(py: Python<'_>, module: &str) -> Result<std::path::PathBuf, String> {
    let err = |e: PyErr| format!("sys.modules: {e}");
    let modules = py
        .import("sys")
        .and_then(|s| s.getattr("modules"))
        .map_err(err)?;
    let found = match modules.get_item(module) {
        Ok(m) => Some(m),
        Err(_) => {
            let suffix = format!(".{module}");
            let mut hits = Vec::new();
            for item in modules.try_iter().map_err(err)? {
                let key = item.map_err(err)?;
                if let Ok(k) = key.extract::<String>() {
                    if k.ends_with(&suffix) {
                        hits.push(modules.get_item(&key).map_err(err)?);
                    }
                }
            }
            if hits.len() == 1 {
                hits.pop()
            } else {
                None
            }
        }
    };
    let Some(m) = found else {
        return Err(format!("no module '{module}' in sys.modules"));
    };
    m.getattr("__file__")
        .and_then(|f| f.extract::<std::path::PathBuf>())
        .map_err(|_| format!("module '{module}' has no __file__"))
}

/// The loaded shared object holding address `addr`, as `dladdr` reports it: its load
/// address and its file name as the loader opened it.
#[cfg(unix)]
fn shared_object_of(addr: *const std::ffi::c_void) -> Option<(usize, std::path::PathBuf)> {
    use std::os::unix::ffi::OsStrExt;
    let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
    // SAFETY: `dladdr` only looks `addr` up in the loader's tables (any value is allowed)
    // and writes `info`, a valid out-parameter.
    if unsafe { libc::dladdr(addr, info.as_mut_ptr()) } == 0 {
        return None;
    }
    // SAFETY: `dladdr` succeeded and filled `info` (zeroed before: every field is valid).
    let info = unsafe { info.assume_init() };
    if info.dli_fname.is_null() || info.dli_fbase.is_null() {
        return None;
    }
    // SAFETY: a successful `dladdr` sets `dli_fname` to the NUL-terminated name of a
    // loaded object, valid while the object stays loaded (extension modules and CPython
    // are never unloaded); it is copied at once.
    let name = unsafe { std::ffi::CStr::from_ptr(info.dli_fname) };
    // (Empty for the main executable with some loaders: the load address still tells it
    // apart, and an empty name matches no module's file.)
    let name = std::ffi::OsStr::from_bytes(name.to_bytes());
    Some((info.dli_fbase as usize, std::path::PathBuf::from(name)))
}

/// No `dladdr`: where code lives cannot be established, so nothing passes.
#[cfg(not(unix))]
fn shared_object_of(_addr: *const std::ffi::c_void) -> Option<(usize, std::path::PathBuf)> {
    None
}

/// The `tp_name` of a type.
///
/// # Safety
///
/// `ty` is a live type object.
unsafe fn type_name(ty: *mut ffi::PyTypeObject) -> String {
    // SAFETY: `ty` is a live type object (caller); `tp_name` is a NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr((*ty).tp_name) }
        .to_string_lossy()
        .into_owned()
}

/// Whether the `tp_dealloc` of type `ty` lives in the shared object loaded from `file`
/// (compared as given, else after resolving both with `realpath`).
///
/// # Safety
///
/// `ty` is a live type object.
pub(crate) unsafe fn type_compiled_in(ty: *mut ffi::PyTypeObject, file: &std::path::Path) -> bool {
    // SAFETY: `ty` is a live type object (caller): its slots are readable.
    let Some(dealloc) = (unsafe { (*ty).tp_dealloc }) else {
        return false;
    };
    let Some((_, object)) = shared_object_of(dealloc as *const std::ffi::c_void) else {
        return false;
    };
    object == file
        || matches!(
            (std::fs::canonicalize(&object), std::fs::canonicalize(file)),
            (Ok(a), Ok(b)) if a == b
        )
}
