//! Export: Rust-owned (or foreign) memory as a PEP 3118 buffer that Cython accepts.

use std::ffi::{c_int, CString};
use std::sync::Mutex;

use cyview::format::{self, TypeInfo};
use cyview::validate::flags;
use cyview::{MemviewSlice, Pod, View, MAX_DIMS};
use pyo3::exceptions::{PyBufferError, PyValueError};
use pyo3::prelude::*;

/// Element types of Rust memory that Cython can view: a [`Pod`] type with the
/// [`TypeInfo`] of the Cython dtype it is. The buffer's format string is
/// [`pep3118_format`](cyview::format::pep3118_format) of it.
///
/// Implemented for `i8`-`i64`, `u8`-`u64`, `isize`, `usize`, `f32`, `f64` and (feature
/// `num-complex`, on by default) `num_complex::Complex<f32>` / `Complex<f64>`; for a
/// `#[repr(C)]` struct use [`element_struct!`](crate::element_struct). `bool` is not an
/// element: a view may read any byte, and only 0 and 1 are `bool`s.
///
/// # Safety
///
/// `TYPE_INFO` must describe `Self`: its size is `size_of::<Self>()`, and for a struct its
/// fields are `Self`'s fields at their offsets with their types.
pub unsafe trait Element: Pod {
    /// The Cython dtype (`format::F64` for `f64`).
    const TYPE_INFO: &'static TypeInfo;
}

macro_rules! element {
    ($($t:ty => $info:expr),* $(,)?) => { $(
        // SAFETY: the TypeInfo of the C type with the same size and kind as the Rust
        // primitive (`format`'s constants are sized from `core::ffi`).
        unsafe impl Element for $t { const TYPE_INFO: &'static TypeInfo = &$info; }
    )* };
}
element!(i8 => format::I8, u8 => format::U8, i16 => format::I16, u16 => format::U16,
         i32 => format::I32, u32 => format::U32, i64 => format::I64, u64 => format::U64,
         isize => format::ISIZE, usize => format::USIZE, f32 => format::F32, f64 => format::F64);
#[cfg(feature = "num-complex")]
element!(num_complex::Complex<f32> => format::C32, num_complex::Complex<f64> => format::C64);

/// Implements [`Element`] for a `#[repr(C)]` (or `#[repr(C, packed)]`) struct that is
/// already [`Pod`], from its fields' `TypeInfo`s, as
/// [`struct_type_info!`](cyview::struct_type_info) takes them (sizes and offsets are checked
/// against the Rust type at compile time).
///
/// ```
/// use cyview::format::{pep3118_format, DOUBLE, INT};
/// use cyview_py::{element_struct, Element};
///
/// // cdef struct Pair: int x; double y
/// #[derive(Clone, Copy)]
/// #[repr(C)]
/// struct Pair { x: i32, y: f64 }
/// // SAFETY: two numbers; any bit pattern of the fields (and of the padding) is valid.
/// unsafe impl cyview::Pod for Pair {}
/// element_struct!(Pair as "Pair" { x: &INT, y: &DOUBLE });
///
/// assert_eq!(pep3118_format(Pair::TYPE_INFO).unwrap(), "^T{i:x:4xd:y:}");
/// ```
#[macro_export]
macro_rules! element_struct {
    (packed $ty:ty as $name:literal { $($field:ident : $info:expr),+ $(,)? }) => {
        // SAFETY: `struct_type_info!` takes size, offsets and field sizes from `$ty` itself.
        unsafe impl $crate::Element for $ty {
            const TYPE_INFO: &'static $crate::__cyview::format::TypeInfo =
                $crate::__cyview::struct_type_info!(packed $ty as $name { $($field: $info),+ });
        }
    };
    ($ty:ty as $name:literal { $($field:ident : $info:expr),+ $(,)? }) => {
        // SAFETY: `struct_type_info!` takes size, offsets and field sizes from `$ty` itself.
        unsafe impl $crate::Element for $ty {
            const TYPE_INFO: &'static $crate::__cyview::format::TypeInfo =
                $crate::__cyview::struct_type_info!($ty as $name { $($field: $info),+ });
        }
    };
}

/// Memory behind a [`RustBuffer`].
enum Storage {
    /// An owned, 8-byte aligned allocation.
    Owned(Vec<u64>),
    /// A PIL-style indirect array: a table of pointers to separately allocated rows.
    Indirect {
        /// Each row's 8-byte aligned allocation (never resized while the table points in).
        _rows: Vec<Vec<u64>>,
        /// `rows[k]`'s address for k = 0, 1, ... (the buffer's first dimension).
        table: Vec<*mut u8>,
    },
    /// Memory owned elsewhere, released by the callback (Cython's `callback_free_data`).
    Foreign {
        ptr: *mut u8,
        release: Option<Box<dyn FnOnce() + Send>>,
    },
    /// Released by [`RustBuffer::release`].
    Released,
}

// SAFETY: `Owned` and `Indirect` own their memory (the table's pointers point into the
// owned rows); for `Foreign`, `RustBuffer::from_raw`'s contract makes the
// memory usable from any thread and the callback is `Send`.
unsafe impl Send for Storage {}

impl Storage {
    fn base(&mut self) -> Option<*mut u8> {
        match self {
            Storage::Owned(v) => Some(v.as_mut_ptr().cast::<u8>()),
            Storage::Indirect { table, .. } => Some(table.as_mut_ptr().cast::<u8>()),
            Storage::Foreign { ptr, .. } => Some(*ptr),
            Storage::Released => None,
        }
    }

    /// Marks the storage released and returns what frees it (a foreign release callback),
    /// for the caller to run once no lock is held: a callback that panics or calls back
    /// into the buffer then finds it already released.
    fn take(&mut self) -> Option<Box<dyn FnOnce() + Send>> {
        match std::mem::replace(self, Storage::Released) {
            Storage::Foreign { release, .. } => release,
            _ => None,
        }
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
        if let Some(f) = self.storage.take() {
            f();
        }
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

/// The format string of `T` as a C string.
fn element_format<T: Element>() -> PyResult<CString> {
    format::pep3118_format(T::TYPE_INFO)
        .and_then(|f| CString::new(f).ok())
        .ok_or_else(|| {
            PyValueError::new_err(format!(
                "no buffer format string describes the element type '{}'",
                T::TYPE_INFO.name
            ))
        })
}

/// The bytes of `data` in an 8-byte aligned allocation (zero-padded to whole words).
fn pod_words<T: Pod>(data: &[T]) -> Vec<u64> {
    let bytes = std::mem::size_of_val(data);
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
    words
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
        let format = element_format::<T>()?;
        let bytes = std::mem::size_of_val(data.as_slice());
        let words = pod_words(&data);
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
                format,
                itemsize: std::mem::size_of::<T>() as isize,
                readonly,
                exports: 0,
            }),
        })
    }

    /// A PIL-style indirect buffer (`suboffsets[0] == 0`): dimension 0 is a table of
    /// pointers, one per row, each row a C-contiguous array of `row_shape` stored in its own
    /// allocation; element `[i, j, ..]` is `rows[i][j, ..]`. Cython accepts it for
    /// declarations whose first axis is indirect or generic (`double[::view.indirect, ::1]`).
    ///
    /// # Errors
    ///
    /// `ValueError` when a row does not hold exactly the product of `row_shape` elements,
    /// for more than [`MAX_DIMS`] dimensions, or for an element type without a format string.
    pub fn indirect<T: Element>(
        rows: Vec<Vec<T>>,
        row_shape: &[usize],
        readonly: bool,
    ) -> PyResult<Self> {
        let format = element_format::<T>()?;
        if row_shape.len() + 1 > MAX_DIMS {
            return Err(PyValueError::new_err("more than 8 dimensions"));
        }
        let too_large = || PyValueError::new_err("the buffer's size overflows isize");
        let per_row = row_shape
            .iter()
            .try_fold(1usize, |a, &n| a.checked_mul(n))
            .ok_or_else(too_large)?;
        if let Some(r) = rows.iter().find(|r| r.len() != per_row) {
            return Err(PyValueError::new_err(format!(
                "a row of {} elements, {per_row} expected by the row shape {row_shape:?}",
                r.len()
            )));
        }
        let item = std::mem::size_of::<T>();
        let mut owned: Vec<Vec<u64>> = rows.iter().map(|r| pod_words(r)).collect();
        let table: Vec<*mut u8> = owned.iter_mut().map(|w| w.as_mut_ptr().cast()).collect();
        let mut shape = vec![isize::try_from(rows.len()).map_err(|_| too_large())?];
        for &n in row_shape {
            shape.push(isize::try_from(n).map_err(|_| too_large())?);
        }
        let mut strides = vec![0isize; shape.len()];
        strides[0] = std::mem::size_of::<*mut u8>() as isize;
        let mut step = item as isize;
        for d in (1..shape.len()).rev() {
            strides[d] = step;
            step = step.checked_mul(shape[d]).ok_or_else(too_large)?;
        }
        let mut suboffsets = vec![-1isize; shape.len()];
        suboffsets[0] = 0;
        Ok(RustBuffer {
            state: Mutex::new(State {
                storage: Storage::Indirect {
                    _rows: owned,
                    table,
                },
                offset: 0,
                shape: shape.into(),
                strides: strides.into(),
                suboffsets: Some(suboffsets.into()),
                format,
                itemsize: item as isize,
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

    /// The address of the element at `index` as this buffer describes it to every consumer
    /// (following the pointer table of an indirect dimension), or `None` for an index out of
    /// bounds or a released buffer.
    pub fn element_ptr(&self, index: &[usize]) -> Option<*mut u8> {
        let mut s = self.lock();
        let off = s.offset;
        let mut p = s.storage.base()?.wrapping_offset(off);
        if index.len() != s.shape.len() {
            return None;
        }
        for (d, &i) in index.iter().enumerate() {
            if i >= usize::try_from(s.shape[d]).unwrap_or(0) {
                return None;
            }
            p = p.wrapping_offset((i as isize).wrapping_mul(s.strides[d]));
            if let Some(sub) = s.suboffsets.as_ref().map(|v| v[d]).filter(|&v| v >= 0) {
                // SAFETY: `i` is in bounds, so `p` is a slot of the pointer table: inside
                // `Storage::Indirect`'s own table, or, for `Storage::Foreign`, a slot that
                // `from_raw`'s contract makes valid for reads. Slots may be unaligned in
                // foreign memory, hence `read_unaligned`.
                let target = unsafe { p.cast::<*mut u8>().read_unaligned() };
                p = target.wrapping_offset(sub);
            }
        }
        Some(p)
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
        let free = s.storage.take();
        drop(s);
        if let Some(f) = free {
            f();
        }
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
