//! Holding views that Cython made: the acquisition-count protocol of Cython's memoryview
//! objects, per release.
//!
//! A `__Pyx_memviewslice` keeps its memoryview object alive through the object's
//! *acquisition count*: every slice that points at the object counts once, and the object
//! holds one Python reference for all of them, taken when the count goes from 0 to 1 and
//! dropped when it returns to 0 (`__Pyx_INC_MEMVIEW` / `__Pyx_XCLEAR_MEMVIEW` in
//! `MemoryView_C.c`). A slice returned by a `cdef` function is owned by the caller (it
//! carries one count); a memoryview argument is borrowed. [`CythonSlice`] owns one count and
//! follows the protocol of the release that built the object ([`MemviewAbi`]).

use std::sync::atomic::{AtomicI32, Ordering};

use cyview::raw::slicing;
use cyview::Semantics;
use cyview::{FromBytes, MemviewSlice, ReadPointer, SliceItem, TrustedMemory, View, MAX_DIMS};
use pyo3::exceptions::{PyRuntimeError, PySystemError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;

use crate::memview_abi::MemviewAbi;
use crate::root;
use crate::to_py;

/// A slice made by Cython that owns one acquisition of its memoryview object: clone and
/// drop follow the acquisition-count protocol of the release that built the object, so the
/// view may outlive the call that produced it, be shared across threads, and be cloned and
/// dropped without the GIL (only the last drop attaches, to release the object).
///
/// Pass it to Cython with [`CythonSlice::as_raw`] (Cython borrows memoryview arguments) or give
/// its count away with [`CythonSlice::into_raw`] (to return it from a callback).
pub struct CythonSlice {
    /// Counted: owns one acquisition of `raw.memview`.
    raw: MemviewSlice,
    ndim: usize,
    abi: MemviewAbi,
}

// SAFETY: the count is changed with atomic operations (the protocol Cython's own threads
// use); the object is only released with the interpreter attached; the slice itself is
// plain data.
unsafe impl Send for CythonSlice {}
// SAFETY: shared access only reads the slice and the count.
unsafe impl Sync for CythonSlice {}

impl CythonSlice {
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
        let s = CythonSlice { raw, ndim, abi };
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
    /// [`MemviewAbi::identify`]; `OverflowError` when the acquisition count is at cyview's
    /// limit (as for [`CythonSlice::try_clone`]; the count is left as it was).
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
        let s = CythonSlice {
            raw: *raw,
            ndim,
            abi,
        };
        // `__Pyx_INC_MEMVIEW`: the first acquisition takes the object's reference (the
        // count may have dropped to 0 since `identify` looked, if the lender's last other
        // slice went away meanwhile).
        let old = match s.increment() {
            Ok(old) => old,
            Err(old) => {
                // Undone: `s` owns no count.
                std::mem::forget(s);
                return Err(overflow_error(old));
            }
        };
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

    /// One more acquisition unless the count is at [`ACQUISITION_LIMIT`]: `Ok` with the
    /// count before it, or `Err` with that count after undoing the increment (the count is
    /// then as it was; concurrent acquirers may briefly see it up to one higher each, far
    /// below `i32::MAX` since the limit is half of it). Where `self` already holds one, the
    /// count was positive and no reference is taken, as in `__Pyx_INC_MEMVIEW`.
    fn increment(&self) -> Result<i32, i32> {
        let order = match self.abi {
            MemviewAbi::Cython0_29 => Ordering::SeqCst,
            MemviewAbi::Cython3 => Ordering::Relaxed,
        };
        let old = self.counter().fetch_add(1, order);
        if old >= ACQUISITION_LIMIT {
            // Nothing was published by the increment: the undo needs no stronger order.
            self.counter().fetch_sub(1, order);
            return Err(old);
        }
        Ok(old)
    }

    /// One more acquisition for a value that already holds one, or an `OverflowError`
    /// (count unchanged) at [`ACQUISITION_LIMIT`].
    fn try_acquire(&self) -> PyResult<()> {
        self.increment().map(drop).map_err(overflow_error)
    }

    /// One more acquisition for a value that already holds one.
    ///
    /// # Aborts
    ///
    /// The process, after undoing the increment, when the count is at
    /// [`ACQUISITION_LIMIT`] (as `Arc::clone` does): only a leak of about a billion
    /// handles gets there, and the alternative is a count that wraps and frees the object
    /// under live handles.
    fn acquire(&self) -> i32 {
        match self.increment() {
            Ok(old) => old,
            Err(old) => {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "cyview-py: {}; aborting",
                    overflow_message(old)
                );
                std::process::abort()
            }
        }
    }

    /// Another owner of the same slice: takes one acquisition, as `Clone::clone` does, but
    /// refuses instead of aborting when the count is at its limit.
    ///
    /// # Errors
    ///
    /// `OverflowError` when the memoryview object's acquisition count is already
    /// `i32::MAX / 2` (1073741823), cyview's limit for it, so the 32-bit count can never
    /// wrap: `memoryview acquisition count is 1073741823; cyview's limit is 1073741823
    /// (i32::MAX / 2): refusing another acquisition before the 32-bit count can wrap`
    /// (with the count it found). The count is left as it was.
    pub fn try_clone(&self) -> PyResult<CythonSlice> {
        self.try_acquire()?;
        Ok(CythonSlice {
            raw: self.raw,
            ndim: self.ndim,
            abi: self.abi,
        })
    }

    /// The raw slice, to pass to a Cython function (which borrows it). Valid while `self`
    /// lives.
    pub fn as_raw(&self) -> &MemviewSlice {
        &self.raw
    }

    /// Gives up ownership: the returned slice carries this value's count (return it from
    /// a callback, or rebuild with [`CythonSlice::from_returned`]).
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

    /// The memoryview object's `Py_buffer view` member (for a `_memoryviewslice`, the copy of
    /// its source's that Cython keeps: item size, format and read-only flag are the buffer's).
    fn object_view(&self) -> &ffi::Py_buffer {
        // SAFETY: the object is alive while `self` holds its count (and so for the borrow of
        // `self`); its `view` member is a `Py_buffer` at `view_offset`, 8-aligned (checked
        // against the release's layout when the ABI was identified), written before the
        // object was handed out and not written by Cython afterwards.
        unsafe {
            &*self
                .raw
                .memview
                .cast::<u8>()
                .add(self.abi.view_offset())
                .cast::<ffi::Py_buffer>()
        }
    }

    /// The item size of the object's buffer (`view.itemsize`).
    pub fn itemsize(&self) -> isize {
        self.object_view().itemsize
    }

    /// Whether the object's buffer is read-only (`view.readonly`: the exporter granted it
    /// read-only).
    pub fn readonly(&self) -> bool {
        self.object_view().readonly != 0
    }

    /// The PEP 3118 format string of the object's buffer (`view.format`; `B` when the
    /// exporter gave none).
    pub fn format(&self) -> &std::ffi::CStr {
        let f = self.object_view().format;
        if f.is_null() {
            c"B"
        } else {
            // SAFETY: a non-NULL `format` of a buffer the object holds (while `self` holds
            // its count) is a NUL-terminated string that lives as long as the buffer.
            unsafe { std::ffi::CStr::from_ptr(f) }
        }
    }

    /// Takes over a memoryview object just made by calling a Cython module's `memoryview`
    /// type, with the slice `raw` built from its `view` (as `__Pyx_init_memviewslice` does
    /// with a new reference): the object's reference becomes the one its slices hold, and
    /// its acquisition count goes from 0 to 1.
    ///
    /// # Errors
    ///
    /// `RuntimeError` when the count was not 0 (the object is then released normally).
    ///
    /// # Safety
    ///
    /// `obj` is an object of a Cython memoryview type of layout `abi` that passed
    /// [`MemviewAbi::check_object`]; `raw` is a slice of `ndim` (at most `MAX_DIMS`)
    /// dimensions over the buffer the object holds, with `raw.memview` the object.
    pub(crate) unsafe fn adopt_new(
        obj: Bound<'_, PyAny>,
        raw: MemviewSlice,
        ndim: usize,
        abi: MemviewAbi,
    ) -> PyResult<Self> {
        let s = CythonSlice { raw, ndim, abi };
        let old = s.counter().fetch_add(1, Ordering::SeqCst);
        if old != 0 {
            s.counter().fetch_sub(1, Ordering::SeqCst);
            std::mem::forget(s);
            return Err(PyRuntimeError::new_err(format!(
                "a new memoryview object has acquisition count {old}, not 0"
            )));
        }
        // The object's one reference for its slices: ours, given to `s`.
        let _ = obj.into_ptr();
        Ok(s)
    }

    /// A sub-slice with Python semantics (NumPy's `a[items]`), as [`View::slice`]: it selects
    /// only elements of this slice. It shares and counts the same memoryview object.
    ///
    /// # Errors
    ///
    /// As [`CythonSlice::slice_with`].
    pub fn slice(&self, items: &[SliceItem]) -> PyResult<CythonSlice> {
        self.slice_with(items, Semantics::Python)
    }

    /// A sub-slice with the chosen semantics, sharing and counting the same memoryview
    /// object. With [`Semantics::Cython`] it is bit for bit what Cython's own slicing of this
    /// view gives: pass it back to Cython and it addresses exactly the elements Cython's
    /// slicing would.
    ///
    /// A Cython-semantics result may leave the buffer where Cython's arithmetic does (see
    /// [`slicing::resolve_cython`]): it is then what Cython would compute, to hand back to
    /// Cython or compare, and [`CythonSlice::view`] refuses to read it. The one place where
    /// slicing itself reads memory, an integer index on an indirect dimension (its pointer
    /// slot), is refused on such a slice, where Cython would read outside the buffer.
    ///
    /// # Errors
    ///
    /// Cython's exceptions for the items ([`slicing::slice`]); `OverflowError` (count
    /// unchanged) when the memoryview's acquisition count is at cyview's limit;
    /// `ValueError: Cannot read a pointer through a slice outside its buffer: ...` (see
    /// above).
    pub fn slice_with(&self, items: &[SliceItem], semantics: Semantics) -> PyResult<CythonSlice> {
        // Integer indices on indirect dimensions read pointer slots: only through a slice
        // proven to lie in the buffer (an earlier Cython-semantics slice may not).
        let mem = ProvenSlots {
            slice: self,
            proven: std::cell::Cell::new(None),
        };
        let (raw, ndim) = slicing::slice(&self.raw, self.ndim, items, semantics, &mem)?;
        let s = CythonSlice {
            raw: MemviewSlice {
                memview: self.raw.memview,
                ..raw
            },
            ndim,
            abi: self.abi,
        };
        if let Err(old) = s.increment() {
            // Not counted: `s` must not give back a count it does not hold.
            std::mem::forget(s);
            return Err(to_py(cyview::Error::new(
                cyview::ErrorKind::OverflowError,
                overflow_message(old),
            )));
        }
        Ok(s)
    }

    /// `Ok` when everything this slice reaches through in-bounds index prefixes (pointer
    /// slots, elements) is the buffer's: the `Py_buffer` the root memoryview object
    /// acquired from its exporter (its `view` member). For a `_memoryviewslice` object
    /// (whose own `view` describes a slice Cython made, which may leave the buffer), the
    /// root is found by walking `from_slice.memview` (nested slices included) down to a
    /// plain memoryview, and through plain memoryviews that wrap another memoryview
    /// ([`root::find_root`], [`root::prove_within`]).
    pub(crate) fn prove_within(&self) -> PyResult<()> {
        let obj = self.raw.memview.cast::<ffi::PyObject>();
        // Not necessarily attached here: types met before are known without the
        // interpreter (a type of another module met for the first time attaches it).
        // SAFETY: the object is alive (our count), and with it everything it refers to.
        let found = unsafe { root::find_root(None, obj) }?;
        let (memview, abi) = found.memview.unwrap_or((obj, self.abi));
        // SAFETY: `memview` is a live memoryview object of layout `abi`: found by the walk
        // (kept alive by the chain from our object), or our object itself.
        unsafe { root::prove_within(memview, abi, &self.raw, self.ndim) }
    }

    /// A typed view of the elements, refused unless every element is an element of the
    /// buffer the memoryview object holds.
    ///
    /// What is checked ([`geometry::check_within`](cyview::geometry::check_within)): the source is the `Py_buffer` the root
    /// memoryview object acquired from its exporter (for a `_memoryviewslice`, the
    /// memoryview it was sliced from); an empty view is accepted; otherwise every element
    /// of the view, and every pointer slot it reads, must be an element or slot of the
    /// source, shown by a witness per run of dimensions between pointer reads (start indices
    /// and steps per source dimension). Slices that Cython's out-of-range arithmetic puts
    /// outside the buffer (`CythonSlice::slice(&s![3..2;2])` on 3 elements) are refused, and so
    /// are indirect dimensions moved out of order.
    ///
    /// # Errors
    ///
    /// `ValueError` when `size_of::<T>()` is not the buffer's item size, or the geometry
    /// check refuses (the message says what).
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
        self.prove_within()?;
        // SAFETY: every element of the slice is an element of the exporter's buffer
        // (`check_within`), which the memoryview object holds while our count keeps it
        // alive; the element size is the buffer's item size; the borrow of `self` bounds the
        // view; nothing writes the elements meanwhile (the caller's contract).
        unsafe { View::from_raw(self.raw, self.ndim) }.map_err(crate::to_py)
    }
}

/// The highest acquisition count cyview takes an acquisition *from*: `i32::MAX / 2`
/// (1073741823). Refusing there (after an increment that is undone) keeps the 32-bit count
/// from wrapping even with as many threads racing past the check as there are counts left.
const ACQUISITION_LIMIT: i32 = i32::MAX / 2;

fn overflow_message(count: i32) -> String {
    format!(
        "memoryview acquisition count is {count}; cyview's limit is {ACQUISITION_LIMIT} \
         (i32::MAX / 2): refusing another acquisition before the 32-bit count can wrap"
    )
}

fn overflow_error(count: i32) -> PyErr {
    pyo3::exceptions::PyOverflowError::new_err(overflow_message(count))
}

/// Reads the pointer slots [`CythonSlice::slice`] asks for, once the slice being indexed is
/// proven to address only the buffer's elements and slots ([`geometry::check_within`](cyview::geometry::check_within)
/// against the root memoryview's `Py_buffer`, run at the first read). A slice Cython's
/// arithmetic put outside the buffer (Cython would read whatever lies there) is refused:
/// `ValueError: Cannot read a pointer through a slice outside its buffer: ...`.
struct ProvenSlots<'a> {
    slice: &'a CythonSlice,
    /// `None` until the first read; then the proof's outcome.
    proven: std::cell::Cell<Option<bool>>,
}

impl ReadPointer for ProvenSlots<'_> {
    fn read_pointer(&self, at: *const u8) -> Result<*mut u8, cyview::Error> {
        let proven = match self.proven.get() {
            Some(p) => p,
            None => {
                let p = self.slice.prove_within().is_ok();
                self.proven.set(Some(p));
                p
            }
        };
        if !proven {
            return Err(cyview::Error::new(
                cyview::ErrorKind::ValueError,
                "Cannot read a pointer through a slice outside its buffer: Cython's slicing \
                 put an index of this view outside the memoryview's buffer",
            ));
        }
        // SAFETY: the slice is proven to reach only the buffer's pointer slots through
        // in-bounds index prefixes, and slicing reads only at in-bounds integer indices; the
        // buffer is held by the memoryview object, alive while the slice's count is.
        unsafe { TrustedMemory::new() }.read_pointer(at)
    }
}

impl std::fmt::Debug for CythonSlice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.ndim;
        f.debug_struct("CythonSlice")
            .field("memview", &self.raw.memview)
            .field("data", &self.raw.data)
            .field("shape", &&self.raw.shape[..n])
            .field("strides", &&self.raw.strides[..n])
            .field("suboffsets", &&self.raw.suboffsets[..n])
            .field("abi", &self.abi)
            .finish()
    }
}

impl Clone for CythonSlice {
    /// Another owner of the same slice: one more acquisition (`__Pyx_INC_MEMVIEW`).
    ///
    /// # Aborts
    ///
    /// The process, after undoing the increment, when the memoryview object's
    /// acquisition count is already at cyview's limit, `i32::MAX / 2` (as `Arc::clone`
    /// aborts before its count overflows). [`CythonSlice::try_clone`] returns an error instead.
    fn clone(&self) -> Self {
        self.acquire();
        CythonSlice {
            raw: self.raw,
            ndim: self.ndim,
            abi: self.abi,
        }
    }
}

impl Drop for CythonSlice {
    /// `__Pyx_XCLEAR_MEMVIEW`: one acquisition less; the last one releases the object's
    /// reference, with the interpreter attached.
    fn drop(&mut self) {
        let order = match self.abi {
            MemviewAbi::Cython0_29 => Ordering::SeqCst,
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
            eprintln!("cyview-py: acquisition count was {old} when a CythonSlice dropped");
        }
    }
}
