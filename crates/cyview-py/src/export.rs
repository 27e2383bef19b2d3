//! Export: Rust-owned (or foreign) memory as a PEP 3118 buffer that Cython accepts.

use std::ffi::{c_int, CString};
use std::sync::Mutex;

use cyview::validate::flags;
use cyview::{MemviewSlice, Pod, View, MAX_DIMS};
use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::prelude::*;

/// Element types with a PEP 3118 format code (native byte order and size).
pub trait Element: Pod {
    /// The `struct` module format code (`"d"` for `f64`).
    const FORMAT: &'static str;
}

macro_rules! element {
    ($($t:ty => $f:literal),*) => { $( impl Element for $t { const FORMAT: &'static str = $f; } )* };
}
element!(i8 => "b", u8 => "B", i16 => "h", u16 => "H", i32 => "i", u32 => "I", i64 => "q", u64 => "Q",
         isize => "n", usize => "N", f32 => "f", f64 => "d");

/// Memory behind a [`RustBuffer`].
enum Storage {
    /// An owned, 8-byte aligned allocation.
    Owned(Vec<u64>),
    /// Memory owned elsewhere, released by the callback (Cython's `callback_free_data`).
    Foreign {
        ptr: *mut u8,
        release: Option<Box<dyn FnOnce() + Send>>,
    },
    /// Released by [`RustBuffer::release`].
    Released,
}

// SAFETY: `Owned` is a Vec; for `Foreign`, `RustBuffer::from_raw`'s contract makes the
// memory usable from any thread and the callback is `Send`.
unsafe impl Send for Storage {}

impl Storage {
    fn base(&mut self) -> Option<*mut u8> {
        match self {
            Storage::Owned(v) => Some(v.as_mut_ptr().cast::<u8>()),
            Storage::Foreign { ptr, .. } => Some(*ptr),
            Storage::Released => None,
        }
    }

    fn release(&mut self) {
        if let Storage::Foreign { release, .. } = self {
            if let Some(f) = release.take() {
                f();
            }
        }
        *self = Storage::Released;
    }
}

struct State {
    storage: Storage,
    /// Byte offset of the first element from the storage's base.
    offset: isize,
    shape: Box<[isize]>,
    strides: Box<[isize]>,
    suboffsets: Option<Box<[isize]>>,
    format: CString,
    itemsize: isize,
    readonly: bool,
    /// Live buffer exports (views handed out and not yet released).
    exports: usize,
}

impl Drop for State {
    fn drop(&mut self) {
        self.storage.release();
    }
}

/// Rust memory exposed to Python (and Cython) through the buffer protocol, with any shape,
/// strides (negative, zero), suboffsets, format and read-only flag.
///
/// It counts live exports and refuses to release its memory while any exists.
#[pyclass(module = "cyview_py", name = "RustBuffer", frozen)]
pub struct RustBuffer {
    state: Mutex<State>,
}

fn relaxed_contig(shape: &[isize], strides: &[isize], itemsize: isize, fortran: bool) -> bool {
    if shape.contains(&0) {
        return true;
    }
    let mut expected = itemsize;
    let n = shape.len();
    for k in 0..n {
        let d = if fortran { k } else { n - 1 - k };
        if shape[d] > 1 && strides[d] != expected {
            return false;
        }
        expected = expected.wrapping_mul(shape[d]);
    }
    true
}

impl RustBuffer {
    /// Exposes `data` with `shape`, byte `strides` and the first element at byte `offset`.
    ///
    /// # Errors
    ///
    /// `ValueError` when an element would lie outside `data` (the checks of
    /// [`View::from_bytes`]).
    pub fn from_elements<T: Element>(
        data: Vec<T>,
        shape: &[usize],
        strides: &[isize],
        offset: usize,
        readonly: bool,
    ) -> PyResult<Self> {
        let bytes = std::mem::size_of_val(data.as_slice());
        let mut words = vec![0u64; bytes.div_ceil(8)];
        // SAFETY: `words` has at least `bytes` bytes; `T: Pod` so its bytes may be copied as
        // plain bytes; the regions do not overlap.
        unsafe {
            std::ptr::copy_nonoverlapping(
                data.as_ptr().cast::<u8>(),
                words.as_mut_ptr().cast::<u8>(),
                bytes,
            )
        };
        {
            // SAFETY: the same `bytes` initialised bytes of `words`, borrowed for the check.
            let view = unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), bytes) };
            View::<T>::from_bytes(view, offset, shape, strides)
                .map_err(|e| PyValueError::new_err(e.message().to_string()))?;
        }
        Ok(RustBuffer {
            state: Mutex::new(State {
                storage: Storage::Owned(words),
                offset: offset as isize,
                shape: shape.iter().map(|&n| n as isize).collect(),
                strides: strides.into(),
                suboffsets: None,
                // The format codes of `Element` are literals without NUL bytes.
                format: CString::new(T::FORMAT).unwrap_or_default(),
                itemsize: std::mem::size_of::<T>() as isize,
                readonly,
                exports: 0,
            }),
        })
    }

    /// Exposes foreign memory described by a raw slice, released by `release` when the
    /// buffer is dropped or released (the Rust side of Cython's `callback_free_data`).
    ///
    /// # Errors
    ///
    /// `ValueError` for more than [`MAX_DIMS`] dimensions or a format with a NUL byte.
    ///
    /// # Safety
    ///
    /// Until `release` runs, every element and pointer slot the slice reaches with in-bounds
    /// indices (following its suboffsets) must be valid for reads of `itemsize` bytes, and
    /// for writes unless `readonly`, from any thread; `format` must describe items of
    /// `itemsize` bytes.
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn from_raw(
        slice: MemviewSlice,
        ndim: usize,
        format: &str,
        itemsize: usize,
        readonly: bool,
        release: Option<Box<dyn FnOnce() + Send>>,
    ) -> PyResult<Self> {
        if ndim > MAX_DIMS {
            return Err(PyValueError::new_err("more than 8 dimensions"));
        }
        let indirect = slice.suboffsets[..ndim].iter().any(|&s| s >= 0);
        Ok(RustBuffer {
            state: Mutex::new(State {
                storage: Storage::Foreign {
                    ptr: slice.data,
                    release,
                },
                offset: 0,
                shape: slice.shape[..ndim].into(),
                strides: slice.strides[..ndim].into(),
                suboffsets: indirect.then(|| slice.suboffsets[..ndim].into()),
                format: CString::new(format).map_err(|e| PyValueError::new_err(e.to_string()))?,
                itemsize: itemsize as isize,
                readonly,
                exports: 0,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The number of live buffer exports.
    pub fn export_count(&self) -> usize {
        self.lock().exports
    }

    /// The address of the first element (`buf` of every export), or `None` once released.
    pub fn data_ptr(&self) -> Option<*mut u8> {
        let mut s = self.lock();
        let off = s.offset;
        s.storage.base().map(|b| b.wrapping_offset(off))
    }
}

#[pymethods]
impl RustBuffer {
    /// Number of live buffer exports.
    #[getter]
    fn exports(&self) -> usize {
        self.export_count()
    }

    /// Frees the memory now (the buffer becomes unusable); refused while exports are alive.
    fn release(&self) -> PyResult<()> {
        let mut s = self.lock();
        if s.exports > 0 {
            return Err(PyBufferError::new_err(format!(
                "cannot release a RustBuffer with {} live buffer export(s)",
                s.exports
            )));
        }
        s.storage.release();
        Ok(())
    }

    /// # Safety
    ///
    /// Called by CPython with a valid `view` to fill.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut pyo3::ffi::Py_buffer,
        flags: c_int,
    ) -> PyResult<()> {
        if view.is_null() {
            return Err(PyBufferError::new_err("NULL view in getbuffer"));
        }
        let flags = flags as u32;
        let this = slf.get();
        let mut s = this.lock();
        let Some(base) = s.storage.base() else {
            return Err(PyBufferError::new_err("the RustBuffer has been released"));
        };
        if flags & flags::WRITABLE != 0 && s.readonly {
            return Err(PyBufferError::new_err("Object is not writable."));
        }
        let want = |f: u32| flags & f == f;
        let c = relaxed_contig(&s.shape, &s.strides, s.itemsize, false) && s.suboffsets.is_none();
        let f = relaxed_contig(&s.shape, &s.strides, s.itemsize, true) && s.suboffsets.is_none();
        if s.suboffsets.is_some() && !want(flags::INDIRECT) {
            return Err(PyBufferError::new_err(
                "RustBuffer cannot be represented without suboffsets",
            ));
        }
        // Without strides the consumer assumes C order, so that too needs C contiguity.
        if !c && (want(flags::C_CONTIGUOUS) || !want(flags::STRIDES)) {
            return Err(PyBufferError::new_err("RustBuffer is not C-contiguous"));
        }
        if want(flags::F_CONTIGUOUS) && !f {
            return Err(PyBufferError::new_err(
                "RustBuffer is not Fortran contiguous",
            ));
        }
        if want(flags::ANY_CONTIGUOUS) && !(c || f) {
            return Err(PyBufferError::new_err("RustBuffer is not contiguous"));
        }
        let len = s.shape.iter().fold(s.itemsize, |a, &n| a.wrapping_mul(n));
        let offset = s.offset;
        // The stored shape/strides/suboffsets/format point into `State`'s boxes and CString,
        // which no method moves or replaces while `exports > 0` (release is refused).
        // SAFETY: CPython passes a valid, writable `view`; those pointers stay valid while
        // exported; `obj` gets a new strong reference that PyBuffer_Release drops.
        unsafe {
            (*view).buf = base.wrapping_offset(offset).cast();
            (*view).len = len;
            (*view).readonly = c_int::from(s.readonly);
            (*view).itemsize = s.itemsize;
            (*view).format = if want(flags::FORMAT) {
                s.format.as_ptr().cast_mut()
            } else {
                std::ptr::null_mut()
            };
            (*view).ndim = s.shape.len() as c_int;
            (*view).shape = if want(flags::ND) {
                s.shape.as_ptr().cast_mut()
            } else {
                std::ptr::null_mut()
            };
            (*view).strides = if want(flags::STRIDES) {
                s.strides.as_ptr().cast_mut()
            } else {
                std::ptr::null_mut()
            };
            (*view).suboffsets = match (&s.suboffsets, want(flags::INDIRECT)) {
                (Some(sub), true) => sub.as_ptr().cast_mut(),
                _ => std::ptr::null_mut(),
            };
            (*view).internal = std::ptr::null_mut();
            s.exports += 1;
            drop(s);
            (*view).obj = slf.into_any().into_ptr();
        }
        Ok(())
    }

    /// # Safety
    ///
    /// Called by CPython with a view this object filled.
    unsafe fn __releasebuffer__(&self, _view: *mut pyo3::ffi::Py_buffer) {
        let mut s = self.lock();
        s.exports = s.exports.saturating_sub(1);
    }
}
