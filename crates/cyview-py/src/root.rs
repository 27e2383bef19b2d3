//! The buffer behind a Cython memoryview object.
//!
//! A Cython `_memoryviewslice` object (what Python-level slicing, `.T` and the conversion
//! of a typed memoryview to an object make) exports the geometry of a slice Cython
//! computed, and Cython's out-of-range slice arithmetic can put that slice outside the
//! buffer: `m[3:2:2]` on 3 elements describes one element one past the end (see README
//! "What the suite found in Cython"). Its buffer cannot be trusted as an exporter's is. What
//! can be trusted is the `Py_buffer` the memoryview it was sliced from acquired from its
//! exporter. [`find_root`] walks there from any object: through nested `_memoryviewslice`
//! objects (`from_slice.memview`, which may itself be a `_memoryviewslice`: `m[3:2:2].T`),
//! through plain Cython memoryviews that wrap another memoryview (`view.obj`), and through
//! Python's own `memoryview` objects (their exporter); [`root_source`] reads the root's
//! `Py_buffer` as the slice `__Pyx_init_memviewslice` makes of it, for
//! [`geometry::check_within`](cyview::geometry::check_within).
//!
//! Other re-exporters (a NumPy array made from such an object with `np.asarray`) pass the
//! geometry on as their own and cannot be told apart from an exporter: they are trusted,
//! as every exporter is.

use std::ffi::CStr;

use cyview::geometry;
use cyview::raw::validate::{self, BufferInfo};
use cyview::{MemviewSlice, TrustedMemory, MAX_DIMS};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;

use crate::memview_abi::MemviewAbi;

/// The most objects [`find_root`] walks through (each `.T` of a `_memoryviewslice` nests
/// one more): a longer chain is refused rather than walked.
const MAX_CHAIN: usize = 1 << 16;

/// Where [`find_root`] ended.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Root {
    /// The last plain Cython memoryview of the chain (with its layout): the one whose
    /// `Py_buffer` an exporter granted. `None` when the chain holds none.
    pub(crate) memview: Option<(*mut ffi::PyObject, MemviewAbi)>,
    /// Whether the chain went through a `_memoryviewslice`: the starting object's buffer is
    /// a slice Cython made, to be proven inside the root's.
    pub(crate) sliced: bool,
}

/// The type in `ty`'s base chain (itself included) that is named `<module>._memoryviewslice`
/// or `<module>.memoryview`, and whether it is the former.
///
/// # Safety
///
/// `ty` is a live type object.
unsafe fn cython_ancestor(
    mut ty: *mut ffi::PyTypeObject,
) -> Option<(*mut ffi::PyTypeObject, bool)> {
    // A type's bases end at `object` (CPython builds them acyclic).
    while !ty.is_null() {
        // SAFETY: `ty` is a live type object (the caller's, or the base of a live one);
        // its `tp_name` is a NUL-terminated string.
        let name = unsafe { CStr::from_ptr((*ty).tp_name) }.to_bytes();
        if name.ends_with(b"._memoryviewslice") {
            return Some((ty, true));
        }
        if name.ends_with(b".memoryview") {
            return Some((ty, false));
        }
        // SAFETY: as above.
        ty = unsafe { (*ty).tp_base };
    }
    None
}

/// The memoryview chain below `obj` (see the module documentation). Each Cython-named type
/// along it is identified ([`MemviewAbi::identify_type`], or its remembered answer) before
/// any byte of its objects is read. With `py` `None` (a caller that may not be attached to
/// the interpreter), the interpreter is attached only for what needs it: a type met for the
/// first time, the exporter of a Python `memoryview` (its `obj`).
///
/// # Errors
///
/// The refusals of [`MemviewAbi::identify_type`] for a `_memoryviewslice` (or for a plain
/// memoryview below one); `RuntimeError` for a `_memoryviewslice` too small for its
/// `from_slice`, one without a source memoryview, a chain that ends without a plain Cython
/// memoryview below a `_memoryviewslice`, or one longer than 65536 objects.
///
/// # Safety
///
/// `obj` is a live object, kept alive (with everything it refers to) for the call.
pub(crate) unsafe fn find_root(py: Option<Python<'_>>, obj: *mut ffi::PyObject) -> PyResult<Root> {
    fn attached<R>(py: Option<Python<'_>>, f: impl for<'p> FnOnce(Python<'p>) -> R) -> R {
        match py {
            Some(py) => f(py),
            None => Python::attach(f),
        }
    }
    let mut cur = obj;
    let mut root = Root {
        memview: None,
        sliced: false,
    };
    for _ in 0..MAX_CHAIN {
        // SAFETY: `cur` is live: `obj`, or referenced by a live object of the chain.
        if unsafe { ffi::PyMemoryView_Check(cur) } != 0 {
            // Its exporter (`None` for one made from memory): kept alive by the memoryview,
            // so its address outlives the reference `getattr` returns.
            let next = attached(py, |py| {
                // SAFETY: `cur` is a live object.
                let m = unsafe { Bound::from_borrowed_ptr(py, cur) };
                m.getattr("obj").map(|o| (!o.is_none()).then(|| o.as_ptr()))
            })?;
            let Some(next) = next else { break };
            cur = next;
            continue;
        }
        // SAFETY: `cur` is live, so its type is a live type object.
        let Some((ty, is_slice)) = (unsafe { cython_ancestor(ffi::Py_TYPE(cur)) }) else {
            break;
        };
        let identified = match MemviewAbi::identified(ty) {
            Some(abi) => Ok(abi),
            // SAFETY: `ty` is a live type object: the type of a live object, or a base of it.
            None => attached(py, |py| unsafe { MemviewAbi::identify_type(py, ty) }),
        };
        // A plain memoryview that is not Cython's (or of no known layout) is an exporter
        // like any other, unless a `_memoryviewslice` above needs its buffer.
        let needed = is_slice || (root.sliced && root.memview.is_none());
        let abi = match identified {
            Ok(abi) => abi,
            Err(_) if !needed => break,
            Err(e) => return Err(e),
        };
        if is_slice {
            // SAFETY: `cur` is live, so its type is a live type object.
            let size = unsafe { (*ffi::Py_TYPE(cur)).tp_basicsize } as usize;
            let needed = abi.object_size() + std::mem::size_of::<MemviewSlice>();
            if size < needed {
                return Err(PyRuntimeError::new_err(format!(
                    "a _memoryviewslice of {size} bytes has no room for its from_slice \
                     ({needed} bytes needed): cannot verify the view"
                )));
            }
            // SAFETY: `cur` is an instance of a `_memoryviewslice` type of layout `abi` (or
            // of a subclass, which extends it): its `__Pyx_memviewslice from_slice` follows
            // the memoryview base (`object_size` bytes, 8-aligned) and starts with the
            // memview pointer it was sliced from, which the object keeps alive.
            let next = unsafe {
                cur.cast::<u8>()
                    .add(abi.object_size())
                    .cast::<*mut ffi::PyObject>()
                    .read()
            };
            if next.is_null() {
                return Err(PyRuntimeError::new_err(
                    "a _memoryviewslice without a source memoryview: cannot verify the view",
                ));
            }
            root = Root {
                memview: None,
                sliced: true,
            };
            cur = next;
        } else {
            root.memview = Some((cur, abi));
            // SAFETY: `cur` is an instance of a memoryview type of layout `abi` (or of a
            // subclass): its `Py_buffer view` at `view_offset` (8-aligned) was filled by
            // `PyObject_GetBuffer` and is held while the object lives.
            let next = unsafe {
                (*cur
                    .cast::<u8>()
                    .add(abi.view_offset())
                    .cast::<ffi::Py_buffer>())
                .obj
            };
            if next.is_null() {
                break;
            }
            cur = next;
        }
    }
    if root.sliced && root.memview.is_none() {
        return Err(PyRuntimeError::new_err(
            "a _memoryviewslice whose chain of source memoryviews ends without the memoryview \
             of an exporter (or is longer than 65536): cannot verify the view",
        ));
    }
    Ok(root)
}

/// `Ok` when everything `raw` (of `ndim` dimensions) reaches through in-bounds index
/// prefixes (pointer slots, elements) belongs to the root memoryview's buffer
/// ([`geometry::check_within`] against [`root_source`]).
///
/// # Errors
///
/// Those of [`root_source`]; `ValueError` when the check refuses (the message says what).
///
/// # Safety
///
/// As [`root_source`]'s.
pub(crate) unsafe fn prove_within(
    memview: *mut ffi::PyObject,
    abi: MemviewAbi,
    raw: &MemviewSlice,
    ndim: usize,
) -> PyResult<()> {
    // SAFETY: the caller's contract is `root_source`'s.
    let (source, source_ndim) = unsafe { root_source(memview, abi) }?;
    // SAFETY: `source` is the exporter's own geometry of a buffer the root memoryview holds
    // (alive as long as it is): the pointer slots of its in-bounds index prefixes, the only
    // ones `check_within` reads, are readable.
    let mem = unsafe { TrustedMemory::new() };
    geometry::check_within(
        &source,
        source_ndim,
        raw,
        ndim,
        &mem,
        geometry::DEFAULT_BUDGET,
    )
    .map_err(crate::to_py)
}

/// The root memoryview's `Py_buffer` as `__Pyx_init_memviewslice` turns it into a slice,
/// with its ndim: the geometry an exporter granted.
///
/// # Errors
///
/// `ValueError` for an ndim outside `0..=8`, a buffer without a shape, or a geometry
/// `init_slice` refuses.
///
/// # Safety
///
/// `memview` is a live memoryview object of layout `abi` (the `memview` of a [`Root`] whose
/// starting object is still alive).
pub(crate) unsafe fn root_source(
    memview: *mut ffi::PyObject,
    abi: MemviewAbi,
) -> PyResult<(MemviewSlice, usize)> {
    // SAFETY: `memview` is a live object of this layout (caller); its `Py_buffer view` at
    // `view_offset` (8-aligned) was filled by `PyObject_GetBuffer` and is held until the
    // object is deallocated.
    let view = unsafe {
        &*memview
            .cast::<u8>()
            .add(abi.view_offset())
            .cast::<ffi::Py_buffer>()
    };
    let ndim = usize::try_from(view.ndim)
        .ok()
        .filter(|&n| n <= MAX_DIMS)
        .ok_or_else(|| PyValueError::new_err(format!("the buffer has ndim {}", view.ndim)))?;
    if view.shape.is_null() && ndim > 0 {
        return Err(PyValueError::new_err(
            "the buffer has no shape: cannot verify the view",
        ));
    }
    // SAFETY: a granted buffer's non-NULL `shape`, `strides` and `suboffsets` point to
    // `ndim` entries, valid while the buffer is held (as long as the object lives).
    let part =
        |p: *mut isize| (!p.is_null()).then(|| unsafe { std::slice::from_raw_parts(p, ndim) });
    let info = BufferInfo {
        buf: view.buf.cast::<u8>(),
        itemsize: view.itemsize,
        len: view.len,
        shape: part(view.shape).unwrap_or(&[]),
        strides: part(view.strides),
        suboffsets: part(view.suboffsets),
    };
    let source = validate::init_slice(&info, std::ptr::null_mut()).map_err(crate::to_py)?;
    Ok((source, ndim))
}
