//! Export: Rust-owned (or foreign) memory as a PEP 3118 buffer that Cython accepts.

use std::ffi::{c_int, CString};
use std::sync::Mutex;

use cyview::format;
use cyview::geometry::{self, KnownMemory};
use cyview::raw::contig::is_relaxed_contig;
use cyview::raw::pybuf::flags;
use cyview::{MemviewSlice, Order, TrustedMemory, View, MAX_DIMS};
use pyo3::exceptions::{PyBufferError, PyMemoryError, PyValueError};
use pyo3::prelude::*;

use crate::element::{export_words, CythonElement};

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
/// The PEP 3118 format string of `T` ([`format::pep3118_format`] of its `TypeInfo`).
pub(crate) fn format_string<T: CythonElement>() -> PyResult<String> {
    format::pep3118_format(T::TYPE_INFO).ok_or_else(|| {
        PyValueError::new_err(format!(
            "no buffer format string describes the element type '{}'",
            T::TYPE_INFO.name
        ))
    })
}

/// [`format_string`] as the C string `Py_buffer.format` points to.
fn element_format<T: CythonElement>() -> PyResult<CString> {
    // A PEP 3118 format string never holds a NUL byte.
    CString::new(format_string::<T>()?).map_err(|e| PyValueError::new_err(e.to_string()))
}

/// The memory of an indirect [`RustBuffer`] as its constructor knows it: one pointer table
/// and the rows its slots point to, each `row_bytes` long.
struct TableMemory<'a> {
    table: &'a [*mut u8],
    /// Row start addresses, sorted.
    rows: Vec<usize>,
    row_bytes: usize,
}

impl<'a> TableMemory<'a> {
    fn new(table: &'a [*mut u8], row_bytes: usize) -> Self {
        let mut rows: Vec<usize> = table.iter().map(|&p| p as usize).collect();
        rows.sort_unstable();
        TableMemory {
            table,
            rows,
            row_bytes,
        }
    }
}

impl KnownMemory for TableMemory<'_> {
    fn contains(&self, first: i128, end: i128) -> bool {
        // The last row starting at or before `first`.
        let k = self.rows.partition_point(|&r| r as i128 <= first);
        k > 0 && {
            let start = self.rows[k - 1] as i128;
            first <= end && end <= start + self.row_bytes as i128
        }
    }

    fn slot(&self, addr: i128) -> Option<*mut u8> {
        let start = self.table.as_ptr() as usize as i128;
        let size = std::mem::size_of::<*mut u8>() as i128;
        let off = addr - start;
        if off < 0 || off % size != 0 {
            return None;
        }
        self.table.get(usize::try_from(off / size).ok()?).copied()
    }
}

/// CPython's `PyBuffer_IsContiguous` for a geometry: any empty buffer, else the relaxed rule.
fn relaxed_contig(shape: &[isize], strides: &[isize], itemsize: isize, fortran: bool) -> bool {
    let order = if fortran { Order::Fortran } else { Order::C };
    shape.contains(&0) || is_relaxed_contig(shape, strides, itemsize, order)
}

impl RustBuffer {
    /// Exports `data` without copying, C-contiguous with `shape` (NumPy's
    /// `np.asarray(data).reshape(shape)`): the buffer takes the vector and drops it when the
    /// buffer is dropped or released. Cython accepts it as `T[:, ::1]` (or `const` when
    /// `readonly`). Element types with padding cannot go out without copying: use
    /// [`RustBuffer::from_elements`], which zeroes it.
    ///
    /// ```no_run
    /// use pyo3::prelude::*;
    ///
    /// let buffer = cyview_py::RustBuffer::from_vec(vec![1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3], false)?;
    /// Python::attach(|py| -> PyResult<()> {
    ///     let a = py.import("numpy")?.call_method1("asarray", (Bound::new(py, buffer)?,))?;
    ///     assert_eq!(a.call_method0("tolist")?.extract::<Vec<Vec<f64>>>()?, [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]);
    ///     Ok(())
    /// })?;
    /// # Ok::<(), PyErr>(())
    /// ```
    ///
    /// # Errors
    ///
    /// `ValueError` when the shape's element count is not `data.len()`, for more than
    /// [`MAX_DIMS`] dimensions, or an element type no format string describes.
    pub fn from_vec<T: CythonElement + cyview::IntoBytes + Send>(
        mut data: Vec<T>,
        shape: &[usize],
        readonly: bool,
    ) -> PyResult<Self> {
        geometry::check_ndim_limit(shape.len()).map_err(crate::to_py)?;
        let count = shape.iter().try_fold(1usize, |a, &n| a.checked_mul(n));
        if count != Some(data.len()) {
            return Err(PyValueError::new_err(format!(
                "shape {shape:?} does not match a vector of {} elements",
                data.len()
            )));
        }
        let item = std::mem::size_of::<T>();
        if item == 0 {
            return Err(PyValueError::new_err(
                "a zero-sized element type has no buffer format",
            ));
        }
        let format = format_string::<T>()?;
        // Every extent fits in isize: their product is `data.len()`, and a `Vec` of non-zero
        // sized elements holds at most isize::MAX bytes (an extent of 0 makes it empty).
        let extents: Vec<isize> = shape.iter().map(|&n| n as isize).collect();
        let mut strides = [0isize; MAX_DIMS];
        geometry::contiguous_strides(
            &extents,
            &mut strides[..shape.len()],
            item as isize,
            Order::C,
        )
        .ok_or_else(|| PyValueError::new_err("the strides overflow isize"))?;
        let raw = MemviewSlice::direct(
            data.as_mut_ptr().cast::<u8>(),
            &extents,
            &strides[..shape.len()],
        );
        // The vector moves into the callback; its elements stay where they are (on the heap).
        let release: Box<dyn FnOnce() + Send> = Box::new(move || drop(data));
        // SAFETY: `raw` describes the vector's elements exactly: C-order strides over
        // `shape`, whose element count is the vector's length, from its first element, all
        // dimensions direct; the elements live in the vector's heap allocation until
        // `release` drops it, and nothing else refers to them once the vector is moved into
        // `release`, so they may be read and written from any thread (`T: Send`). `T:
        // IntoBytes` has no padding, so every byte is initialised. The format is built from
        // `T::TYPE_INFO`, whose size is `size_of::<T>()` (`CythonElement`'s contract).
        unsafe { RustBuffer::from_raw(raw, shape.len(), &format, item, readonly, Some(release)) }
    }

    /// Exposes `data` with `shape`, byte `strides` and the first element at byte `offset`.
    ///
    /// # Errors
    ///
    /// `ValueError` when an element would lie outside `data` (the checks of
    /// [`View::from_bytes`]).
    pub fn from_elements<T: CythonElement>(
        data: Vec<T>,
        shape: &[usize],
        strides: &[isize],
        offset: usize,
        readonly: bool,
    ) -> PyResult<Self> {
        let format = element_format::<T>()?;
        let bytes = std::mem::size_of_val(data.as_slice());
        let words = export_words(&data)?;
        {
            // SAFETY: the same `bytes` initialised bytes of `words`, borrowed for the check.
            let view = unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), bytes) };
            // The one geometry check (`geometry::check_in_memory`): every element inside.
            View::<T>::from_bytes(view, offset, shape, strides).map_err(crate::to_py)?;
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
    pub fn indirect<T: CythonElement>(
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
        let mut owned: Vec<Vec<u64>> = Vec::new();
        owned
            .try_reserve_exact(rows.len())
            .map_err(|_| PyMemoryError::new_err("cannot allocate the rows"))?;
        for r in &rows {
            owned.push(export_words(r)?);
        }
        let table: Vec<*mut u8> = owned.iter_mut().map(|w| w.as_mut_ptr().cast()).collect();
        let mut shape = vec![isize::try_from(rows.len()).map_err(|_| too_large())?];
        for &n in row_shape {
            shape.push(isize::try_from(n).map_err(|_| too_large())?);
        }
        let mut strides = vec![0isize; shape.len()];
        // Each row is C-contiguous; dimension 0 steps through the table of pointers.
        geometry::contiguous_strides(&shape[1..], &mut strides[1..], item as isize, Order::C)
            .ok_or_else(too_large)?;
        strides[0] = std::mem::size_of::<*mut u8>() as isize;
        let mut suboffsets = vec![-1isize; shape.len()];
        suboffsets[0] = 0;
        // The one geometry check, on the memory this buffer knows exactly: the table's
        // slots and the rows.
        let mut raw = MemviewSlice {
            data: table.as_ptr().cast::<u8>().cast_mut(),
            ..MemviewSlice::EMPTY
        };
        raw.shape[..shape.len()].copy_from_slice(&shape);
        raw.strides[..shape.len()].copy_from_slice(&strides);
        raw.suboffsets[..shape.len()].copy_from_slice(&suboffsets);
        let rows_bytes = per_row.checked_mul(item).ok_or_else(too_large)?;
        let known = TableMemory::new(&table, rows_bytes);
        let budget = (table.len() as u64).saturating_mul(4).saturating_add(64);
        geometry::check_in_memory(&raw, shape.len(), item, &known, budget).map_err(crate::to_py)?;
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
    /// for writes unless `readonly`, from any thread; every byte of those elements must be
    /// initialised (no padding of a Rust type: Python reads every byte); `format` must
    /// describe items of `itemsize` bytes.
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
        let ndim = s.shape.len();
        if index.len() != ndim
            || index
                .iter()
                .zip(s.shape.iter())
                .any(|(&i, &n)| i >= usize::try_from(n).unwrap_or(0))
        {
            return None;
        }
        let mut raw = MemviewSlice {
            data: s.storage.base()?.wrapping_offset(s.offset),
            ..MemviewSlice::EMPTY
        };
        raw.strides[..ndim].copy_from_slice(&s.strides);
        match &s.suboffsets {
            Some(sub) => raw.suboffsets[..ndim].copy_from_slice(sub),
            None => raw.suboffsets[..ndim].fill(-1),
        }
        // SAFETY: every index is in bounds (checked above), so each pointer slot read is a
        // slot of the pointer table: inside `Storage::Indirect`'s own table (checked by
        // `indirect`'s geometry proof), or, for `Storage::Foreign`, a slot that `from_raw`'s
        // contract makes valid for reads.
        let mem = unsafe { TrustedMemory::new() };
        geometry::element_address(&raw, ndim, &mem, |d| Ok(index[d] as isize)).ok()
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
