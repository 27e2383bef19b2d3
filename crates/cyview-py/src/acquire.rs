//! Acquisition: `cdef double[:, ::1] v = obj` in Rust.

use std::ffi::CStr;

use cyview::format::{self, TypeInfo};
use cyview::raw::validate::{self, BufferInfo};
use cyview::{AxisSpec, FromBytes, MemviewSlice, View, MAX_DIMS};
use pyo3::exceptions::{PyBufferError, PyValueError};

use crate::root;
use crate::to_py;
use crate::CythonElement;
use pyo3::prelude::*;

/// A declared typed memoryview: element type, one axis spec per dimension, and whether it
/// is writable (not `const`). Written as Cython text with [`Declaration::parse`]:
///
/// ```
/// use cyview::AxisSpec;
/// use cyview_py::Declaration;
///
/// const D: Declaration = Declaration::parse("const double[:, ::1]");
/// assert_eq!(D.specs(), &[AxisSpec::FOLLOW_DIRECT, AxisSpec::CONTIG_DIRECT]);
/// assert!(!D.writable());
/// assert_eq!(D.dtype().name, "double");
/// assert_eq!(D.element_type().name, "const double"); // as Cython's messages name it
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Declaration<'a> {
    dtype: &'a TypeInfo,
    specs: [AxisSpec; MAX_DIMS],
    ndim: usize,
    writable: bool,
}

impl<'a> Declaration<'a> {
    /// A declaration from its parts (`specs`: one per dimension, as Cython's generated C
    /// lists them; `writable`: `false` for `const`).
    ///
    /// # Panics
    ///
    /// When `specs` has more than [`MAX_DIMS`] entries (no Cython declaration has: at most
    /// 7 dimensions).
    pub const fn new(dtype: &'a TypeInfo, specs: &[AxisSpec], writable: bool) -> Self {
        assert!(
            specs.len() <= MAX_DIMS,
            "a memoryview has at most 8 dimensions"
        );
        let mut own = [AxisSpec::STRIDED_DIRECT; MAX_DIMS];
        let mut k = 0;
        while k < specs.len() {
            own[k] = specs[k];
            k += 1;
        }
        Declaration {
            dtype,
            specs: own,
            ndim: specs.len(),
            writable,
        }
    }

    /// The element type.
    pub const fn dtype(&self) -> &'a TypeInfo {
        self.dtype
    }

    /// One spec per dimension (`double[:, ::1]` -> direct-follow, direct-contiguous).
    pub const fn specs(&self) -> &[AxisSpec] {
        self.specs.split_at(self.ndim).0
    }

    /// `false` for a `const` declaration.
    pub const fn writable(&self) -> bool {
        self.writable
    }

    /// The element type as Cython's messages name it: the dtype, named `const <name>` for a
    /// `const` declaration (`Buffer dtype mismatch, expected 'const double' but got
    /// 'float'`), as Cython's `__Pyx_TypeInfo` for a const dtype is named.
    pub fn element_type(&self) -> TypeInfo {
        if self.writable {
            *self.dtype
        } else {
            self.dtype.named(const_name(self.dtype.name))
        }
    }

    /// The buffer request flags Cython passes for it.
    pub fn flags(&self) -> u32 {
        cyview::raw::pybuf::buffer_flags(self.specs(), self.writable)
    }
}

impl Declaration<'static> {
    /// The declaration Cython source text gives, `[const] dtype[axes]` with a C scalar
    /// dtype (`double`, `unsigned char`, `float complex`, ...), with the axis specs
    /// Cython's compiler derives ([`cyview::decl::MemviewDecl::parse`]). In a `const` item a text Cython rejects is a compile error with Cython's message; for
    /// a struct dtype use [`Declaration::parse_for`].
    ///
    /// # Panics
    ///
    /// When Cython would reject the text, or the dtype is not a C scalar type.
    pub const fn parse(text: &str) -> Self {
        let d = cyview::decl::MemviewDecl::parse_or_panic(text);
        match d.builtin_dtype() {
            Some(dtype) => Declaration::new(dtype, d.specs(), !d.is_const()),
            None => panic!("not a C scalar dtype: use Declaration::parse_for::<T>() for a struct"),
        }
    }

    /// [`Declaration::parse`] whose dtype is `T`'s: the text must name `T`'s Cython type
    /// (its `TypeInfo` name, e.g. a struct's name).
    ///
    /// # Panics
    ///
    /// When Cython would reject the text, or its dtype is not `T`'s name.
    pub const fn parse_for<T: CythonElement>(text: &str) -> Self {
        let d = cyview::decl::MemviewDecl::parse_or_panic(text);
        if !d.dtype_is(T::TYPE_INFO.name) {
            panic!("the declaration's dtype is not the element type's Cython name");
        }
        Declaration::new(T::TYPE_INFO, d.specs(), !d.is_const())
    }

    /// [`Declaration::parse`] at run time, for text not known at compile time.
    ///
    /// # Errors
    ///
    /// Cython's compile error for the axes (`cyview::ErrorKind::CompileError`), or an
    /// unknown dtype.
    pub fn try_parse(text: &str) -> Result<Self, cyview::Error> {
        let d = cyview::decl::MemviewDecl::parse(text)?;
        let dtype = d.builtin_dtype().ok_or_else(|| {
            cyview::Error::new(
                cyview::ErrorKind::CompileError,
                format!(
                    "'{}' is not a C scalar type (use Declaration::parse_for for a struct)",
                    d.dtype_name()
                ),
            )
        })?;
        Ok(Declaration::new(dtype, d.specs(), !d.is_const()))
    }
}

/// A buffer acquired and validated as Cython would, with the slice Cython would build.
///
/// Owns the exporter's buffer (and so a reference to the exporter): it is released exactly
/// once, when this value is dropped, with the interpreter attached. Once acquired, the slice
/// can be read without the GIL; as with any buffer, Python code may still write to the
/// memory while it is held.
pub struct BufferSlice {
    /// Boxed: the buffer's address (which `shape`/`strides` of some exporters point into)
    /// never moves, and moving a `BufferSlice` (or a `MemView` holding one) copies one
    /// pointer, not the 300 bytes of buffer and slice.
    inner: Box<Acquired>,
}

/// What a [`BufferSlice`] owns.
struct Acquired {
    /// Owned: filled by a successful `PyObject_GetBuffer`, released in `Drop`.
    buffer: pyo3::ffi::Py_buffer,
    slice: MemviewSlice,
    ndim: usize,
}

// SAFETY: the buffer is only released in `Drop`, which attaches to the interpreter first;
// the slice is plain data. PyO3's own `PyBuffer` is Send + Sync for the same reasons.
unsafe impl Send for BufferSlice {}
// SAFETY: shared access only reads the slice.
unsafe impl Sync for BufferSlice {}

impl Drop for BufferSlice {
    /// Releases the buffer with the interpreter attached; if the interpreter is finalizing
    /// or gone, the buffer is leaked instead (there is nothing left to release it to).
    fn drop(&mut self) {
        let _ = Python::try_attach(|_| {
            // SAFETY: `buffer` was filled by a successful PyObject_GetBuffer and is released
            // exactly once, here, with the interpreter attached.
            unsafe { pyo3::ffi::PyBuffer_Release(&mut self.inner.buffer) }
        });
    }
}

impl BufferSlice {
    /// The slice Cython's `__Pyx_init_memviewslice` builds (its `memview` is null: no
    /// Cython memoryview object is involved).
    pub fn as_raw(&self) -> &MemviewSlice {
        &self.inner.slice
    }

    /// Number of dimensions.
    pub fn ndim(&self) -> usize {
        self.inner.ndim
    }

    /// Whether the exporter granted a read-only buffer.
    pub fn readonly(&self) -> bool {
        self.inner.buffer.readonly != 0
    }

    /// A typed view of the elements.
    ///
    /// # Errors
    ///
    /// `ValueError` when `size_of::<T>()` is not the buffer's item size.
    ///
    /// # Safety
    ///
    /// While the returned view lives, nothing may write to the buffer's elements: not
    /// Python code (do not run any while holding it across a GIL release), not Cython
    /// `nogil` code, not other threads. A buffer is shared memory: a write concurrent with a
    /// read through the view is a data race.
    pub unsafe fn view<T: FromBytes>(&self) -> PyResult<View<'_, T>> {
        if std::mem::size_of::<T>() as isize != self.inner.buffer.itemsize {
            return Err(PyValueError::new_err(format!(
                "element type has {} bytes, the buffer's items have {}",
                std::mem::size_of::<T>(),
                self.inner.buffer.itemsize
            )));
        }
        // SAFETY: the slice was built from a buffer the exporter granted and validated
        // (strides, suboffsets), which stays valid until `self` drops; the borrow of `self`
        // bounds the view's lifetime. The item size matches `T`. Nothing writes the
        // elements meanwhile (the caller's contract).
        unsafe { View::from_raw(self.inner.slice, self.inner.ndim) }.map_err(to_py)
    }
}

/// `"const " + name`, made once per distinct name (element type names are `'static`, so
/// the table stays as small as the program's set of element types).
fn const_name(name: &'static str) -> &'static str {
    use std::collections::HashMap;
    use std::sync::{Mutex, PoisonError};
    static NAMES: Mutex<Option<HashMap<&'static str, &'static str>>> = Mutex::new(None);
    let mut names = NAMES.lock().unwrap_or_else(PoisonError::into_inner);
    names
        .get_or_insert_with(HashMap::new)
        .entry(name)
        .or_insert_with(|| Box::leak(format!("const {name}").into_boxed_str()))
}

/// [`acquire`], except that `None` gives `Ok(None)`: Cython accepts `None` for any typed
/// memoryview (`cdef double[:] v = None` makes a "None" slice that raises on use), which
/// [`acquire`] refuses with the `TypeError` of `PyObject_GetBuffer`.
///
/// # Errors
///
/// As [`acquire`] for any other object.
pub fn acquire_optional(
    obj: &Bound<'_, PyAny>,
    decl: &Declaration<'_>,
) -> PyResult<Option<BufferSlice>> {
    if obj.is_none() {
        return Ok(None);
    }
    acquire(obj, decl).map(Some)
}

/// Acquires `obj` as the declared memoryview, exactly as Cython's
/// `__Pyx_ValidateAndInit_memviewslice` does when `obj` is not one of the module's own
/// memoryview objects: `PyObject_GetBuffer` with the declaration's flags (the exporter's
/// error propagates), then the number of dimensions, the format string, the item size, the
/// per-axis strides and suboffsets and the contiguity (the last two only for a non-empty
/// buffer).
///
/// # Errors
///
/// The exporter's exception, or Cython's `ValueError` for a failed check.
pub fn acquire(obj: &Bound<'_, PyAny>, decl: &Declaration<'_>) -> PyResult<BufferSlice> {
    let mut inner = Box::new(Acquired {
        // SAFETY: a zeroed Py_buffer is the documented initial state for PyObject_GetBuffer.
        buffer: unsafe { std::mem::zeroed() },
        slice: MemviewSlice::EMPTY,
        ndim: 0,
    });
    // SAFETY: `obj` is alive and the interpreter is attached (we hold a `Bound`); the
    // buffer is a valid out-parameter.
    let rc = unsafe {
        pyo3::ffi::PyObject_GetBuffer(obj.as_ptr(), &mut inner.buffer, decl.flags() as i32)
    };
    if rc != 0 {
        return Err(PyErr::fetch(obj.py()));
    }
    // From here on `view` owns the buffer: every early return releases it through Drop.
    let mut view = BufferSlice { inner };
    // SAFETY: `view.inner.buffer` was just granted and is held until `view` drops.
    let (slice, ndim) = unsafe { validate_buffer(&view.inner.buffer, decl, std::ptr::null_mut()) }?;
    view.inner.slice = slice;
    view.inner.ndim = ndim;
    prove_cython_slice(obj, &slice, ndim)?;
    Ok(view)
}

/// When `obj` is a Cython `_memoryviewslice` (or a memoryview over one, see
/// [`root::find_root`]), whose buffer is a slice Cython made and may lie outside the buffer
/// it was sliced from (`m[3:2:2]` on 3 elements): `Ok` only when every element and pointer
/// slot `slice` reaches is the root buffer's ([`root::prove_within`]). Any other
/// exporter is trusted, as Cython trusts it.
fn prove_cython_slice(obj: &Bound<'_, PyAny>, slice: &MemviewSlice, ndim: usize) -> PyResult<()> {
    // SAFETY: `obj` is alive (we hold a `Bound`), and with it everything it refers to.
    let found = unsafe { root::find_root(Some(obj.py()), obj.as_ptr()) }?;
    let Some((memview, abi)) = found.memview.filter(|_| found.sliced) else {
        return Ok(());
    };
    // SAFETY: `memview` is a live memoryview object of layout `abi`, kept alive by `obj`.
    unsafe { root::prove_within(memview, abi, slice, ndim) }
}

/// The checks of `__Pyx_ValidateAndInit_memviewslice` on a granted buffer, in Cython's
/// order (ndim, format string, item size, per-axis strides and suboffsets and contiguity for
/// a non-empty buffer), then the slice `__Pyx_init_memviewslice` builds, with `memview`
/// stored in it, and its ndim.
///
/// # Safety
///
/// `b` was filled by a successful `PyObject_GetBuffer` and is still held.
pub(crate) unsafe fn validate_buffer(
    b: &pyo3::ffi::Py_buffer,
    decl: &Declaration<'_>,
    memview: *mut cyview::MemviewObject,
) -> PyResult<(MemviewSlice, usize)> {
    let ndim = usize::try_from(b.ndim).unwrap_or(usize::MAX);
    validate::check_buffer_ndim(ndim, decl.specs().len()).map_err(to_py)?;
    if ndim > MAX_DIMS {
        return Err(PyValueError::new_err("buffer has more than 8 dimensions"));
    }
    let fmt: &[u8] = if b.format.is_null() {
        b"B"
    } else {
        // SAFETY: a non-null `format` of a granted buffer (the caller's contract) is a
        // NUL-terminated string that lives as long as the buffer.
        unsafe { CStr::from_ptr(b.format) }.to_bytes()
    };
    let check = |dtype: &TypeInfo| {
        format::check_format(fmt, dtype)?;
        validate::check_itemsize(b.itemsize, dtype.name, dtype.size)
    };
    if let Err(e) = check(decl.dtype) {
        if decl.writable {
            return Err(to_py(e));
        }
        // Cython names the element type of a `const` declaration `const <name>` in its
        // messages ([`Declaration::element_type`]). The name is in the messages only, never
        // in the decision (the root's name is compared with nothing): name it for the
        // message, off the path of a buffer that passes.
        let e = check(&decl.element_type()).err().unwrap_or(e);
        return Err(to_py(e));
    }
    // SAFETY: the exporter granted the buffer with `ndim` dimensions: `shape` (never NULL
    // for the flags Cython requests, which all include PyBUF_ND), `strides` and
    // `suboffsets` (when non-NULL) point to `ndim` entries valid while the buffer is held.
    let (shape, strides, suboffsets) = unsafe {
        let part = |p: *mut isize| (!p.is_null()).then(|| std::slice::from_raw_parts(p, ndim));
        (
            part(b.shape).unwrap_or(&[]),
            part(b.strides),
            part(b.suboffsets),
        )
    };
    if shape.len() != ndim {
        return Err(PyBufferError::new_err("exporter gave no shape"));
    }
    let info = BufferInfo {
        buf: b.buf.cast::<u8>(),
        itemsize: b.itemsize,
        len: b.len,
        shape,
        strides,
        suboffsets,
    };
    validate::check_axes(&info, decl.specs(), validate::contiguity(decl.specs())).map_err(to_py)?;
    let slice = validate::init_slice(&info, memview).map_err(to_py)?;
    Ok((slice, ndim))
}
