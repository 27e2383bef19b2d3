//! Holding views that Cython made: the acquisition-count protocol of Cython's memoryview
//! objects, per release.
//!
//! A `__Pyx_memviewslice` keeps its memoryview object alive through the object's
//! *acquisition count*: every slice that points at the object counts once, and the object
//! holds one Python reference for all of them, taken when the count goes from 0 to 1 and
//! dropped when it returns to 0 (`__Pyx_INC_MEMVIEW` / `__Pyx_XCLEAR_MEMVIEW` in
//! `MemoryView_C.c`). A slice returned by a `cdef` function is owned by the caller (it
//! carries one count); a memoryview argument is borrowed. [`CySlice`] owns one count and
//! follows the protocol of the release that built the object ([`MemviewAbi`]).

use std::sync::atomic::{AtomicI32, Ordering};

use cyview::slicing::{self, Semantics};
use cyview::{FromBytes, MemviewSlice, SliceItem, TrustedMemory, View, MAX_DIMS};
use pyo3::exceptions::{PyRuntimeError, PySystemError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;

/// The layout of Cython's `struct __pyx_memoryview_obj` as far as the acquisition protocol
/// needs it. The offsets are those clang gives the struct in the C each release generates
/// (the conformance suite's `tests/exchange.rs` compares them with the bindgen extraction
/// of every pinned release).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MemviewAbi {
    /// Cython 0.29: `__pyx_atomic_int acquisition_count[2]` at 56 and
    /// `__pyx_atomic_int *acquisition_count_aligned_p` at 64, through which every access
    /// goes (`__sync_fetch_and_add` / `__sync_fetch_and_sub`, sequentially consistent);
    /// `sizeof` 168.
    Cython029,
    /// Cython 3.0 to 3.3: one `__pyx_atomic_int_type acquisition_count` at 56 (increments
    /// relaxed, decrements acquire-release); `sizeof` 160. (3.2 renamed `_array_interface`
    /// to `_unused` at the same offset.)
    Cython3,
}

impl MemviewAbi {
    /// Offset of `PyThread_type_lock lock` (both layouts): NULL when the module was built
    /// with atomics (`CYTHON_ATOMICS`, the default), a lock otherwise.
    pub const LOCK_OFFSET: usize = 48;

    /// `sizeof(struct __pyx_memoryview_obj)`, the memoryview type's `tp_basicsize`.
    pub const fn object_size(self) -> usize {
        match self {
            MemviewAbi::Cython029 => 168,
            MemviewAbi::Cython3 => 160,
        }
    }

    /// Offset of `acquisition_count` (0.29: of the two-element array).
    pub const fn count_offset(self) -> usize {
        56
    }

    /// Offset of `acquisition_count_aligned_p` (0.29 only).
    pub const fn aligned_pointer_offset(self) -> Option<usize> {
        match self {
            MemviewAbi::Cython029 => Some(64),
            MemviewAbi::Cython3 => None,
        }
    }

    /// Offset of the `Py_buffer view` member.
    pub const fn view_offset(self) -> usize {
        match self {
            MemviewAbi::Cython029 => 72,
            MemviewAbi::Cython3 => 64,
        }
    }

    /// Which layout the memoryview object `memview` has, refusing whenever that cannot be
    /// established before touching the count: a free-threaded Python, an object that is
    /// not a Cython memoryview, an object size of no known release, a module built without
    /// atomics (it serialises the count with a lock instead), a 0.29 object whose count
    /// pointer does not point into it, a count that is not positive.
    ///
    /// # Errors
    ///
    /// `TypeError` for an object that is not a Cython memoryview, `RuntimeError` for the
    /// other refusals; each message says which.
    ///
    /// # Safety
    ///
    /// `memview` is a live object for the duration of the call.
    pub unsafe fn identify(py: Python<'_>, memview: *mut ffi::PyObject) -> PyResult<Self> {
        if let Ok(f) = py.import("sys")?.getattr("_is_gil_enabled") {
            if !f.call0()?.is_truthy()? {
                return Err(PyRuntimeError::new_err(
                    "free-threaded Python: Cython's acquisition count protocol is not \
                     supported without the GIL",
                ));
            }
        }
        // SAFETY: `memview` is live (caller), so its type is a live type object.
        let ty = unsafe { ffi::Py_TYPE(memview) };
        // SAFETY: `ty` is a live type object; `tp_name` is a NUL-terminated string.
        let name = unsafe { std::ffi::CStr::from_ptr((*ty).tp_name) }
            .to_string_lossy()
            .into_owned();
        let (module, short) = name.rsplit_once('.').unwrap_or(("", name.as_str()));
        let base = match short {
            "memoryview" if !module.is_empty() && module != "builtins" => ty,
            // SAFETY: `ty` is a live type object; its base is live or NULL.
            "_memoryviewslice" => unsafe { (*ty).tp_base },
            _ => std::ptr::null_mut(),
        };
        if base.is_null() {
            return Err(PyTypeError::new_err(format!(
                "'{name}' is not a Cython memoryview object"
            )));
        }
        // SAFETY: `base` is a live type object (the type itself or its base).
        let size = unsafe { (*base).tp_basicsize } as usize;
        let abi = if size == MemviewAbi::Cython029.object_size() {
            MemviewAbi::Cython029
        } else if size == MemviewAbi::Cython3.object_size() {
            MemviewAbi::Cython3
        } else {
            return Err(PyRuntimeError::new_err(format!(
                "'{name}' objects have {size} bytes, which no known Cython release gives its \
                 memoryview (168: 0.29; 160: 3.0-3.3): unknown release, not touching it"
            )));
        };
        let at = memview.cast::<u8>();
        // SAFETY: the object has `size` bytes (its type's basicsize), more than the lock's
        // offset + 8; the field is a pointer written at construction.
        let lock = unsafe { at.add(Self::LOCK_OFFSET).cast::<*mut u8>().read() };
        if !lock.is_null() {
            return Err(PyRuntimeError::new_err(format!(
                "'{name}' comes from a module built without atomics (CYTHON_ATOMICS=0; its \
                 memoryviews serialise the acquisition count with a lock): not supported"
            )));
        }
        // SAFETY: `memview` is live (caller) and has this layout's size.
        let count = unsafe { abi.count_ptr(memview) };
        if let Some(off) = abi.aligned_pointer_offset() {
            let array = at.wrapping_add(abi.count_offset()) as usize;
            let p = count as usize;
            if p != array && p != array + 4 {
                return Err(PyRuntimeError::new_err(format!(
                    "'{name}': acquisition_count_aligned_p (at {off}) does not point into the \
                     object: not the 0.29 layout"
                )));
            }
        }
        // SAFETY: `count` points at the live object's count (checked above for 0.29), an
        // aligned `int` that Cython modules with atomics only access atomically.
        let n = unsafe { AtomicI32::from_ptr(count) }.load(Ordering::Acquire);
        if n <= 0 {
            return Err(PyRuntimeError::new_err(format!(
                "'{name}': acquisition count is {n} while a slice points at it"
            )));
        }
        Ok(abi)
    }

    /// The address of the count of `memview`.
    ///
    /// # Safety
    ///
    /// `memview` is a live Cython memoryview object of this layout.
    unsafe fn count_ptr(self, memview: *mut ffi::PyObject) -> *mut i32 {
        let at = memview.cast::<u8>();
        match self.aligned_pointer_offset() {
            // SAFETY: a live 0.29 memoryview object (caller) has the pointer field at `off`,
            // set at construction.
            Some(off) => unsafe { at.add(off).cast::<*mut i32>().read() },
            None => at.wrapping_add(self.count_offset()).cast(),
        }
    }
}

/// A slice made by Cython that owns one acquisition of its memoryview object: clone and
/// drop follow the acquisition-count protocol of the release that built the object, so the
/// view may outlive the call that produced it, be shared across threads, and be cloned and
/// dropped without the GIL (only the last drop attaches, to release the object).
///
/// Pass it to Cython with [`CySlice::as_raw`] (Cython borrows memoryview arguments) or give
/// its count away with [`CySlice::into_raw`] (to return it from a callback).
pub struct CySlice {
    /// Counted: owns one acquisition of `raw.memview`.
    raw: MemviewSlice,
    ndim: usize,
    abi: MemviewAbi,
}

// SAFETY: the count is changed with atomic operations (the protocol Cython's own threads
// use); the object is only released with the interpreter attached; the slice itself is
// plain data.
unsafe impl Send for CySlice {}
// SAFETY: shared access only reads the slice and the count.
unsafe impl Sync for CySlice {}

impl CySlice {
    /// Takes over a slice returned by a Cython function (the caller owns its count). A
    /// NULL `memview` is Cython's error return: the Python exception it set is returned.
    ///
    /// # Errors
    ///
    /// The exception Cython set; `TypeError` for a `None` memoryview (it owns nothing);
    /// the refusals of [`MemviewAbi::identify`] (the count is then left alone: the slice
    /// leaks rather than being released by a guess).
    ///
    /// # Safety
    ///
    /// `raw` was just returned by a Cython function whose return type is a memoryview of
    /// `ndim` dimensions, and nothing else owns its count.
    pub unsafe fn from_returned(py: Python<'_>, raw: MemviewSlice, ndim: usize) -> PyResult<Self> {
        if raw.memview.is_null() {
            return Err(PyErr::take(py).unwrap_or_else(|| {
                PySystemError::new_err("Cython returned an error slice without an exception")
            }));
        }
        let memview = raw.memview.cast::<ffi::PyObject>();
        if memview == py.None().as_ptr() {
            return Err(PyTypeError::new_err("Cython returned a None memoryview"));
        }
        // SAFETY: the returned slice holds a count, so its object is alive.
        let abi = unsafe { MemviewAbi::identify(py, memview) }?;
        let s = CySlice { raw, ndim, abi };
        if ndim > MAX_DIMS {
            // Dropping `s` gives the count back.
            return Err(PyValueError::new_err("more than 8 dimensions"));
        }
        Ok(s)
    }

    /// A new owner of a slice Cython lends (a memoryview argument of a callback): takes one
    /// acquisition, as `__Pyx_INC_MEMVIEW` does.
    ///
    /// # Errors
    ///
    /// `TypeError` for a NULL or `None` memoryview; the refusals of
    /// [`MemviewAbi::identify`].
    ///
    /// # Safety
    ///
    /// `raw` is a live slice of `ndim` dimensions made by Cython (its memoryview object is
    /// alive for the duration of the call).
    pub unsafe fn from_borrowed(py: Python<'_>, raw: &MemviewSlice, ndim: usize) -> PyResult<Self> {
        let memview = raw.memview.cast::<ffi::PyObject>();
        if memview.is_null() || memview == py.None().as_ptr() {
            return Err(PyTypeError::new_err("an unbound or None memoryview"));
        }
        if ndim > MAX_DIMS {
            return Err(PyValueError::new_err("more than 8 dimensions"));
        }
        // SAFETY: the object is alive (caller).
        let abi = unsafe { MemviewAbi::identify(py, memview) }?;
        let s = CySlice {
            raw: *raw,
            ndim,
            abi,
        };
        // `__Pyx_INC_MEMVIEW`: the first acquisition takes the object's reference (the
        // count may have dropped to 0 since `identify` looked, if the lender's last other
        // slice went away meanwhile).
        let old = s.acquire();
        if old == 0 {
            // SAFETY: the object is alive (caller) and the interpreter is attached.
            unsafe { ffi::Py_INCREF(memview) };
        } else if old < 0 {
            s.counter().fetch_sub(1, Ordering::AcqRel);
            std::mem::forget(s);
            return Err(PyRuntimeError::new_err(format!(
                "acquisition count was {old}: the memoryview's protocol is broken"
            )));
        }
        Ok(s)
    }

    fn counter(&self) -> &AtomicI32 {
        // SAFETY: `raw.memview` is kept alive by the count this value owns; its count
        // field (found by `identify`) is an aligned `int` that Cython only accesses
        // atomically (modules with a lock instead were refused).
        unsafe { AtomicI32::from_ptr(self.abi.count_ptr(self.raw.memview.cast())) }
    }

    /// One more acquisition; returns the count before it. (Where `self` already holds
    /// one, the count was positive and no reference is taken, as in `__Pyx_INC_MEMVIEW`.)
    fn acquire(&self) -> i32 {
        let order = match self.abi {
            MemviewAbi::Cython029 => Ordering::SeqCst,
            MemviewAbi::Cython3 => Ordering::Relaxed,
        };
        self.counter().fetch_add(1, order)
    }

    /// The raw slice, to pass to a Cython function (which borrows it). Valid while `self`
    /// lives.
    pub fn as_raw(&self) -> &MemviewSlice {
        &self.raw
    }

    /// Gives up ownership: the returned slice carries this value's count (return it from
    /// a callback, or rebuild with [`CySlice::from_returned`]).
    pub fn into_raw(self) -> MemviewSlice {
        let raw = self.raw;
        std::mem::forget(self);
        raw
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.ndim
    }

    /// The memoryview layout (release family) of the object.
    pub fn abi(&self) -> MemviewAbi {
        self.abi
    }

    /// The memoryview object's current acquisition count.
    pub fn acquisition_count(&self) -> i32 {
        self.counter().load(Ordering::Acquire)
    }

    /// The item size of the object's buffer (`view.itemsize`).
    pub fn itemsize(&self) -> isize {
        // SAFETY: the object is alive (our count); `view` is a `Py_buffer` at
        // `view_offset`, whose `itemsize` is at byte 24 (after `buf`, `obj`, `len`).
        unsafe {
            self.raw
                .memview
                .cast::<u8>()
                .add(self.abi.view_offset() + 24)
                .cast::<isize>()
                .read()
        }
    }

    /// A sub-slice with Cython's semantics (bit for bit what Cython's own slicing of this
    /// view gives), sharing and counting the same memoryview object: pass it back to Cython
    /// and it addresses exactly the elements Cython's slicing would.
    ///
    /// # Errors
    ///
    /// Cython's exceptions for the items ([`slicing::slice`]).
    pub fn slice(&self, items: &[SliceItem]) -> Result<CySlice, cyview::Error> {
        // SAFETY: the slice describes the buffer of a live memoryview object (our count);
        // its pointer slots, for indirect dimensions, are readable while the buffer is held.
        let mem = unsafe { TrustedMemory::new() };
        let (raw, ndim) = slicing::slice(&self.raw, self.ndim, items, Semantics::Cython, mem)?;
        let s = CySlice {
            raw: MemviewSlice {
                memview: self.raw.memview,
                ..raw
            },
            ndim,
            abi: self.abi,
        };
        s.acquire();
        Ok(s)
    }

    /// A typed view of the elements (safe semantics: a result that leaves the buffer is
    /// refused).
    ///
    /// # Errors
    ///
    /// `ValueError` when `size_of::<T>()` is not the buffer's item size, or the view's
    /// geometry is refused by [`View::from_raw`].
    ///
    /// # Safety
    ///
    /// While the returned view lives, nothing may write to the buffer's elements: not
    /// Python code (do not run any while holding it across a GIL release), not Cython
    /// `nogil` code, not other threads. A buffer is shared memory: a write concurrent with a
    /// read through the view is a data race.
    pub unsafe fn view<T: FromBytes>(&self) -> PyResult<View<'_, T>> {
        if std::mem::size_of::<T>() as isize != self.itemsize() {
            return Err(PyValueError::new_err(format!(
                "element type has {} bytes, the buffer's items have {}",
                std::mem::size_of::<T>(),
                self.itemsize()
            )));
        }
        // SAFETY: the slice addresses the buffer the memoryview object holds, alive while
        // our count is; the borrow of `self` bounds the view; nothing writes the elements
        // meanwhile (the caller's contract).
        unsafe { View::from_raw(self.raw, self.ndim) }
            .map_err(|e| PyValueError::new_err(e.message().to_string()))
    }
}

impl Clone for CySlice {
    fn clone(&self) -> Self {
        self.acquire();
        CySlice {
            raw: self.raw,
            ndim: self.ndim,
            abi: self.abi,
        }
    }
}

impl Drop for CySlice {
    /// `__Pyx_XCLEAR_MEMVIEW`: one acquisition less; the last one releases the object's
    /// reference, with the interpreter attached.
    fn drop(&mut self) {
        let order = match self.abi {
            MemviewAbi::Cython029 => Ordering::SeqCst,
            MemviewAbi::Cython3 => Ordering::AcqRel,
        };
        let old = self.counter().fetch_sub(1, order);
        if old == 1 {
            let memview = self.raw.memview.cast::<ffi::PyObject>();
            // If the interpreter is finalizing or gone, the reference is leaked: there is
            // nothing left to release it to.
            let _ = Python::try_attach(|_| {
                // SAFETY: the count reached 0: the object's one reference for its slices
                // is ours to drop, with the interpreter attached.
                unsafe { ffi::Py_DECREF(memview) }
            });
        } else if old < 1 {
            // Cython calls Py_FatalError here. Someone else broke the protocol: undo our
            // decrement and leave the object alone rather than free it twice.
            self.counter().fetch_add(1, order);
            eprintln!("cyview-py: acquisition count was {old} when a CySlice dropped");
        }
    }
}
