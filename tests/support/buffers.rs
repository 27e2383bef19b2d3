//! Reading an exporter's `Py_buffer` (`PyObject_GetBuffer(PyBUF_FULL_RO)`) as a cyview
//! slice, with the pointer slots of its indirect dimensions recorded by address, so that a
//! geometry can be followed without touching memory that is not a recorded slot.

use std::collections::HashMap;

use cyview::{Error, MemviewSlice, ReadPointer, MAX_DIMS};
use pyo3::prelude::*;

/// A buffer as `PyObject_GetBuffer(PyBUF_FULL_RO)` exports it, as a cyview slice, with the
/// exporter's pointer slots (for indirect buffers) recorded by address.
pub struct Buffer {
    pub raw: MemviewSlice,
    pub ndim: usize,
    pub itemsize: isize,
    /// For a Cython `_memoryviewslice`: the raw `__Pyx_memviewslice.suboffsets`, which the
    /// Py_buffer hides (NULL) when none is `>= 0`.
    pub raw_suboffsets: Option<[isize; MAX_DIMS]>,
    /// Pointer slots reachable with in-bounds index prefixes: slot address -> pointer.
    pub slots: HashMap<usize, usize>,
}

impl Buffer {
    /// The slice as Cython stores it (raw suboffsets when known).
    pub fn cython_slice(&self) -> MemviewSlice {
        let mut s = self.raw;
        if let Some(sub) = self.raw_suboffsets {
            s.suboffsets[..self.ndim].copy_from_slice(&sub[..self.ndim]);
        }
        s
    }
}

/// Reads pointers only from slots recorded from a real export; anything else is refused, so
/// a wrong geometry can be followed without touching memory.
pub struct Slots<'a>(pub &'a HashMap<usize, usize>);

impl ReadPointer for Slots<'_> {
    fn read_pointer(&self, at: *const u8) -> Result<*mut u8, Error> {
        self.0
            .get(&(at as usize))
            .map(|&p| std::ptr::without_provenance_mut(p))
            .ok_or_else(|| Error::new(cyview::ErrorKind::ValueError, "not a pointer slot"))
    }
}

/// Reads `obj`'s buffer (FULL_RO) and releases it at once.
pub fn read_buffer(obj: &Bound<'_, PyAny>) -> PyResult<Buffer> {
    // SAFETY: a zeroed Py_buffer is the documented initial state for PyObject_GetBuffer.
    let mut view: pyo3::ffi::Py_buffer = unsafe { std::mem::zeroed() };
    // SAFETY: `obj` is a live object (we hold a reference and the interpreter is attached);
    // `view` is a valid out-parameter.
    let rc =
        unsafe { pyo3::ffi::PyObject_GetBuffer(obj.as_ptr(), &mut view, pyo3::ffi::PyBUF_FULL_RO) };
    if rc != 0 {
        return Err(PyErr::fetch(obj.py()));
    }
    let ndim = view.ndim as usize;
    let result = (|| {
        if ndim > MAX_DIMS {
            return Err(pyo3::exceptions::PyValueError::new_err("ndim > 8"));
        }
        let mut raw = MemviewSlice {
            data: view.buf.cast::<u8>(),
            ..MemviewSlice::EMPTY
        };
        // SAFETY: PyObject_GetBuffer succeeded with PyBUF_FULL_RO: `shape` and `strides`
        // point to `ndim` Py_ssize_t each, `suboffsets` to `ndim` or is NULL.
        unsafe {
            for d in 0..ndim {
                raw.shape[d] = *view.shape.add(d);
                raw.strides[d] = *view.strides.add(d);
                raw.suboffsets[d] = if view.suboffsets.is_null() {
                    -1
                } else {
                    *view.suboffsets.add(d)
                };
            }
        }
        // A Cython _memoryviewslice exports pointers into its `from_slice`, whose
        // `strides` follow `shape` by 8 entries and `suboffsets` by 16 (checked by type
        // name and by the strides pointer, so other exporters are never read this way).
        let is_cython_slice = obj.get_type().name().is_ok_and(|n| n == "_memoryviewslice");
        let raw_suboffsets =
            if is_cython_slice && ndim > 0 && view.strides == view.shape.wrapping_add(MAX_DIMS) {
                let mut s = [0isize; MAX_DIMS];
                // SAFETY: `shape` points at `__Pyx_memviewslice.shape`, so `shape + 16` is its
                // `suboffsets` array of 8 entries, inside the same live struct.
                unsafe {
                    for (d, slot) in s.iter_mut().enumerate().take(ndim) {
                        *slot = *view.shape.add(2 * MAX_DIMS + d);
                    }
                }
                Some(s)
            } else {
                None
            };
        let mut slots = HashMap::new();
        record_slots(&raw, ndim, 0, raw.data, &mut slots);
        Ok(Buffer {
            raw,
            ndim,
            itemsize: view.itemsize,
            raw_suboffsets,
            slots,
        })
    })();
    // SAFETY: `view` was filled by a successful PyObject_GetBuffer and is released once.
    unsafe { pyo3::ffi::PyBuffer_Release(&mut view) };
    result
}

/// Walks every in-bounds index prefix of a valid export and records its pointer slots.
/// Slots are walked even when a later dimension is empty: Cython follows them for an
/// in-bounds index, and the exporters used here (`_testbuffer`) keep them valid.
fn record_slots(
    raw: &MemviewSlice,
    ndim: usize,
    dim: usize,
    p: *mut u8,
    slots: &mut HashMap<usize, usize>,
) {
    if dim == ndim {
        return;
    }
    for i in 0..raw.shape[dim] {
        let mut q = p.wrapping_offset(i * raw.strides[dim]);
        if raw.suboffsets[dim] >= 0 {
            // SAFETY: the exporter's buffer is valid (PEP 3118): for an in-bounds prefix
            // the slot of an indirect dimension holds a readable pointer.
            let target = unsafe { q.cast::<*mut u8>().read_unaligned() };
            slots.insert(q as usize, target as usize);
            q = target.wrapping_offset(raw.suboffsets[dim]);
        }
        record_slots(raw, ndim, dim + 1, q, slots);
    }
}
