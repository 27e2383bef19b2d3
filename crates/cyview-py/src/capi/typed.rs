//! Typed `cdef api` calls: [`CythonFunction<fn(..) -> R>`](CythonFunction), whose C
//! signature is derived from a Rust function type and whose calls are safe.

use std::ffi::{c_char, c_void, CStr};
use std::marker::PhantomData;

use cyview::raw::validate::{self, BufferInfo};
use cyview::MemviewSlice;
use pyo3::exceptions::{PySystemError, PyTypeError, PyValueError};
use pyo3::ffi;
use pyo3::prelude::*;

use super::ctype::{CReturn, CSignature, CType};
use crate::{CythonSlice, Declaration, MemviewAbi, MemviewType};

/// A typed memoryview declaration as a type, for [`SliceOf<D>`] in the signature of a
/// [`CythonFunction`]. Written with [`view_decl!`](crate::view_decl):
///
/// ```
/// cyview_py::view_decl!(pub Grid = "const double[:, :]");
/// # use cyview_py::ViewDecl;
/// assert_eq!(Grid::DECLARATION.specs().len(), 2);
/// ```
pub trait ViewDecl: 'static {
    /// The declaration (dtype, axes, `const`).
    const DECLARATION: Declaration<'static>;
}

/// Defines a type that stands for a Cython memoryview declaration, for [`SliceOf<D>`]:
/// `view_decl!(pub Grid = "const double[:, :]")`, or with a struct dtype
/// `view_decl!(Pairs = "Pair[::1]" for Pair)` (see [`Declaration::parse_for`]). A text
/// Cython rejects is a compile error with Cython's message.
#[macro_export]
macro_rules! view_decl {
    ($(#[$meta:meta])* $vis:vis $name:ident = $text:literal) => {
        $(#[$meta])*
        #[doc = concat!("The memoryview declaration `", $text, "`.")]
        $vis enum $name {}
        impl $crate::ViewDecl for $name {
            const DECLARATION: $crate::Declaration<'static> = $crate::Declaration::parse($text);
        }
        const _: $crate::Declaration<'static> = <$name as $crate::ViewDecl>::DECLARATION;
    };
    ($(#[$meta:meta])* $vis:vis $name:ident = $text:literal for $elem:ty) => {
        $(#[$meta])*
        #[doc = concat!("The memoryview declaration `", $text, "`.")]
        $vis enum $name {}
        impl $crate::ViewDecl for $name {
            const DECLARATION: $crate::Declaration<'static> =
                $crate::Declaration::parse_for::<$elem>($text);
        }
        const _: $crate::Declaration<'static> = <$name as $crate::ViewDecl>::DECLARATION;
    };
}

/// A typed memoryview declared `D` (a [`ViewDecl`]), as a parameter or result type in the
/// signature of a [`CythonFunction`]: C type `__Pyx_memviewslice`. Never constructed.
///
/// As a parameter it takes a `&CythonSlice` (checked against `D` at each call) or any
/// buffer exporter `&Bound<'py, T>` (acquired through the callee module's own memoryview
/// type, as Cython's `def` wrappers do; `None` is Cython's `None` view, as from Python); as
/// a result it gives a [`CythonSlice`] with `D`'s
/// number of dimensions. `Option<SliceOf<D>>` as a result gives `None` for Cython's `None`
/// view.
pub struct SliceOf<D: ViewDecl>(PhantomData<D>, std::convert::Infallible);

/// A Python object (`object` in Cython, C type `PyObject *`) as a parameter or result type
/// in the signature of a [`CythonFunction`]. Never constructed.
///
/// As a parameter it takes any `&Bound<'py, T>` (borrowed for the call); as a result it
/// gives a `Bound<'py, PyAny>` (a NULL result is Cython's error return).
pub enum Object {}

mod sealed {
    pub trait Param {}
    pub trait Return {}
    pub trait Arg {}
    pub trait Signature {}
}

/// The parameter types of a [`CythonFunction`] signature: the arithmetic types (`f64`,
/// `i32`, `isize`, ... : see [`CType`]), `*const c_char` (`char const *`, passed as a
/// `&CStr`), [`SliceOf<D>`] and [`Object`]. Other pointers cannot be passed safely (the
/// function may read or write through them as far as it likes): call those functions
/// through [`capi_function`](crate::capi_function)'s raw pointer.
pub trait Param: sealed::Param + 'static {
    /// The C type passed.
    type Raw: CType + Copy;
    /// Whether this is a memoryview (the callee's memoryview type is then needed).
    #[doc(hidden)]
    const VIEW: bool = false;
}

/// The result types of a [`CythonFunction`] signature: `()` (`void`), the arithmetic types,
/// `*const c_char`, [`SliceOf<D>`] (a [`CythonSlice`]), `Option<SliceOf<D>>` and
/// [`Object`] (a `Bound<'py, PyAny>`).
pub trait Return: sealed::Return + 'static {
    /// The C type returned.
    type Raw: CReturn + Copy;
    /// What the call gives.
    type Output<'py>;
    /// Takes over the raw result: the owned reference or acquisition it carries, or the
    /// exception of an error return (a NULL object or memoryview).
    ///
    /// # Safety
    ///
    /// `raw` was just returned by a function whose result has the type `Self` stands for
    /// (a new reference for [`Object`], an owned slice of `D`'s dimensions for
    /// [`SliceOf<D>`]), and nothing else owns what it carries.
    #[doc(hidden)]
    unsafe fn lift<'py>(py: Python<'py>, raw: Self::Raw) -> PyResult<Self::Output<'py>>;
}

/// What the callee of a call is, for converting arguments (opaque).
pub struct CallContext<'a> {
    qualified: &'a str,
    memview_type: Option<&'a MemviewType>,
}

/// An argument converted for the call: the raw value, and what must live until the call
/// returns (a memoryview made for it).
#[doc(hidden)]
pub struct Lowered<T> {
    raw: T,
    _keep: Option<CythonSlice>,
}

impl<T> Lowered<T> {
    fn plain(raw: T) -> Self {
        Lowered { raw, _keep: None }
    }
}

/// A Rust value accepted as an argument for parameter type `P`: the arithmetic types for
/// themselves, `&CStr` for `*const c_char`, `&CythonSlice` and `&Bound<'py, T>` (a buffer
/// exporter) for [`SliceOf<D>`], `&Bound<'py, T>` for [`Object`].
pub trait Arg<'py, P: Param>: sealed::Arg {
    /// Converts the argument in position `index` (from 1).
    #[doc(hidden)]
    fn lower(
        self,
        py: Python<'py>,
        cx: &CallContext<'_>,
        index: usize,
    ) -> PyResult<Lowered<P::Raw>>;
}

/// A Rust function type `fn(P1, ..., Pn) -> R` (up to 12 parameters) that stands for a
/// `cdef api` signature: each `P` a [`Param`], `R` a [`Return`].
pub trait Signature: sealed::Signature + 'static {
    /// The `unsafe extern "C" fn` pointer type of the C function.
    type RawFn: Copy;
    /// What a call gives.
    type Output<'py>;
    /// The C signature.
    fn c_signature() -> CSignature;
    /// Whether a parameter is a memoryview.
    #[doc(hidden)]
    fn has_views() -> bool;
}

/// The argument tuples of a call of a [`CythonFunction<S>`]: `(a1, ..., an)` with each
/// `a` an [`Arg`] of the parameter in its position (`(x,)` for one argument, `()` for none).
pub trait Args<'py, S: Signature> {
    /// Converts the arguments, calls, and converts the result.
    #[doc(hidden)]
    fn call(self, f: &CythonFunction<S>, py: Python<'py>) -> PyResult<S::Output<'py>>;
}

/// A `cdef api` function of a Cython module, typed by a Rust function type `S` whose
/// calls are safe:
///
/// ```no_run
/// use cyview_py::{view_decl, CythonFunction, SliceOf, Object};
/// use pyo3::prelude::*;
///
/// // cdef api const double[:, :] as_view(object obj)
/// // cdef api double row_sum(const double[:, :] v, Py_ssize_t i) except? -1
/// view_decl!(Grid = "const double[:, :]");
///
/// Python::attach(|py| -> PyResult<()> {
///     let mixed = py.import("mixed")?;
///     // SAFETY: Grid is the declaration of as_view's result and of row_sum's `v`.
///     let as_view = unsafe { CythonFunction::<fn(Object) -> SliceOf<Grid>>::new(&mixed, "as_view") }?;
///     let row_sum = unsafe { CythonFunction::<fn(SliceOf<Grid>, isize) -> f64>::new(&mixed, "row_sum") }?;
///     let v = as_view.call(py, (&py.import("numpy")?.call_method1("ones", ((3, 4),))?,))?;
///     assert_eq!(row_sum.call(py, (&v, 0))?, 4.0); // v: a CythonSlice, 2-d, held by Rust
///     assert!(row_sum.call(py, (&v, 3)).unwrap_err().is_instance_of::<pyo3::exceptions::PyIndexError>(py));
///     Ok(())
/// })
/// .unwrap();
/// ```
///
/// * **The signature** is derived from `S` ([`Signature::c_signature`]) and must be the
///   capsule's ([`CType`] lists the spellings: `f64` is `double`, `isize` `Py_ssize_t`,
///   [`SliceOf<D>`] `__Pyx_memviewslice`, [`Object`] `PyObject *`).
/// * **Errors**: after every call, an exception Cython set is returned as the `PyErr`
///   (what Cython's own callers do for `except *`; for `except? -1` and `except -1` it is the
///   same outcome, and a `noexcept` function prints and clears its exceptions itself), as is
///   an error return of a memoryview (NULL `memview`) or object (NULL) result.
/// * **Memoryview arguments** are real memoryview objects of the callee's own release: a
///   buffer exporter (`&Bound`, e.g. a [`RustBuffer`](crate::RustBuffer) or a NumPy array)
///   is acquired through the module's memoryview type ([`MemviewType::acquire`], Cython's
///   checks and exceptions) for the call, so the function may also make a Python object of
///   it; a `&CythonSlice` is checked against `D` (its memoryview object is of the callee
///   module's own memoryview type, ndim, format, item size, `const`, axes, and that it lies
///   in its buffer); a view of another module is refused (pass its buffer object).
/// * **Memoryview results** are [`CythonSlice`]s of `D`'s number of dimensions, owning the
///   acquisition Cython gave the caller.
pub struct CythonFunction<S: Signature> {
    raw: S::RawFn,
    qualified: String,
    memview_type: Option<MemviewType>,
    /// The module, kept alive with the code and state `raw` belongs to (a module removed
    /// from `sys.modules` and collected could free them).
    _module: std::sync::Arc<Py<PyModule>>,
}

impl<S: Signature> std::fmt::Debug for CythonFunction<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CythonFunction")
            .field("name", &self.qualified)
            .field("signature", &S::c_signature().to_string())
            .finish()
    }
}

impl<S: Signature> Clone for CythonFunction<S> {
    fn clone(&self) -> Self {
        CythonFunction {
            raw: self.raw,
            qualified: self.qualified.clone(),
            memview_type: self.memview_type.clone(),
            _module: self._module.clone(),
        }
    }
}

impl<S: Signature> CythonFunction<S> {
    /// `module.__pyx_capi__[name]` typed as `S`, after checking the capsule's C signature
    /// against `S`'s; with a memoryview parameter, also finds the module's memoryview type
    /// ([`MemviewType::of_module`]).
    ///
    /// # Errors
    ///
    /// As [`capi_function`](crate::capi_function); the refusals of
    /// [`MemviewType::of_module`] when a parameter is a memoryview.
    ///
    /// # Safety
    ///
    /// The capsule says only `__Pyx_memviewslice` for a typed memoryview, so the Rust side
    /// vouches for the rest: for every [`SliceOf<D>`] parameter, `D` is the declaration the
    /// Cython function gives it (same dtype and number of dimensions; axes and `const` no
    /// looser than Cython's: the call checks arguments against `D`, and the function relies on
    /// its own declaration); for a [`SliceOf<D>`] result, the function returns views of `D`'s
    /// number of dimensions. The function does not keep a `char const *` argument beyond the
    /// call.
    ///
    /// And, since `call` is safe, the function must be memory-safe for every argument a safe
    /// caller can give it:
    /// * every [`Object`] parameter is declared plain `object` in Cython: Cython writes
    ///   `PyObject *` in the capsule for `list`, `dict`, `tuple`, `str`, ... parameters too,
    ///   and such a function trusts the type its own callers checked;
    /// * any value of an integer parameter (an index used without `boundscheck` or
    ///   `wraparound` reads where the caller says);
    /// * `None` for a memoryview parameter, which becomes Cython's None view (null data,
    ///   extents 0), as Cython's `def` wrappers pass for a parameter without `not None`.
    pub unsafe fn new(module: &Bound<'_, PyModule>, name: &str) -> PyResult<Self> {
        const {
            assert!(std::mem::size_of::<S::RawFn>() == std::mem::size_of::<*const c_void>());
        }
        let c = super::capsule(module, name)?;
        let p = c.pointer_for(&S::c_signature(), std::any::type_name::<S>())?;
        let memview_type = if S::has_views() {
            Some(MemviewType::of_module(module)?)
        } else {
            None
        };
        Ok(CythonFunction {
            // SAFETY: `S::RawFn` is the `unsafe extern "C" fn` pointer type of `S`'s raw C
            // types (`Signature` is sealed and implemented for `fn` types only), of pointer
            // size (asserted above); the capsule holds the address of a function of a C type
            // with that ABI (the signature matched, see `CType`'s contract).
            raw: unsafe { std::mem::transmute_copy::<*mut c_void, S::RawFn>(&p.as_ptr()) },
            _module: std::sync::Arc::new(module.clone().unbind()),
            qualified: c.qualified,
            memview_type,
        })
    }

    /// Calls the function with `args` (a tuple, one [`Arg`] per parameter), holding the
    /// GIL.
    ///
    /// # Errors
    ///
    /// The exception the function raised (same type and message as from Python); the
    /// conversion errors of a memoryview argument (Cython's, for a buffer exporter; see
    /// [`CythonFunction`] for a `&CythonSlice`); `SystemError` when an exception was already
    /// set before the call (the function is then not called).
    pub fn call<'py, A: Args<'py, S>>(&self, py: Python<'py>, args: A) -> PyResult<S::Output<'py>> {
        args.call(self, py)
    }

    /// `module.name`.
    pub fn name(&self) -> &str {
        &self.qualified
    }

    /// The module's memoryview type, when a parameter is a memoryview (make
    /// [`CythonSlice`]s with it once, to pass in many calls).
    pub fn memview_type(&self) -> Option<&MemviewType> {
        self.memview_type.as_ref()
    }

    /// The raw function pointer ([`capi_function`](crate::capi_function)'s).
    pub fn as_raw(&self) -> S::RawFn {
        self.raw
    }

    fn context(&self) -> CallContext<'_> {
        CallContext {
            qualified: &self.qualified,
            memview_type: self.memview_type.as_ref(),
        }
    }
}

/// No exception may be set when the function is called: its own error checks would see it.
fn before_call(py: Python<'_>, cx: &CallContext<'_>) -> PyResult<()> {
    // SAFETY: the interpreter is attached (`py`).
    if unsafe { ffi::PyErr_Occurred() }.is_null() {
        return Ok(());
    }
    let pending = PyErr::fetch(py);
    let err = PySystemError::new_err(format!(
        "an exception was already set before calling cdef api function '{}' (not called)",
        cx.qualified
    ));
    err.set_cause(py, Some(pending));
    Err(err)
}

/// The exception the function set, if any (the result is then dropped: an acquisition or
/// reference it carries is given back).
fn after_call<T>(py: Python<'_>, out: PyResult<T>) -> PyResult<T> {
    let out = out?;
    match PyErr::take(py) {
        None => Ok(out),
        Some(e) => Err(e),
    }
}

// ---- parameters and arguments --------------------------------------------------------------

macro_rules! arithmetic {
    ($($t:ty),* $(,)?) => { $(
        impl sealed::Param for $t {}
        impl Param for $t {
            type Raw = $t;
        }
        impl sealed::Return for $t {}
        impl Return for $t {
            type Raw = $t;
            type Output<'py> = $t;
            unsafe fn lift<'py>(_: Python<'py>, raw: $t) -> PyResult<$t> {
                Ok(raw)
            }
        }
        impl sealed::Arg for $t {}
        impl<'py> Arg<'py, $t> for $t {
            fn lower(self, _: Python<'py>, _: &CallContext<'_>, _: usize) -> PyResult<Lowered<$t>> {
                Ok(Lowered::plain(self))
            }
        }
    )* };
}
arithmetic!(i8, u8, i16, u16, i32, u32, i64, u64, isize, usize, f32, f64);
#[cfg(feature = "num-complex")]
arithmetic!(num_complex::Complex<f32>, num_complex::Complex<f64>);

impl sealed::Return for () {}
impl Return for () {
    type Raw = ();
    type Output<'py> = ();
    unsafe fn lift<'py>(_: Python<'py>, _: ()) -> PyResult<()> {
        Ok(())
    }
}

impl sealed::Param for *const c_char {}
impl Param for *const c_char {
    type Raw = *const c_char;
}
impl sealed::Return for *const c_char {}
impl Return for *const c_char {
    type Raw = *const c_char;
    type Output<'py> = *const c_char;
    unsafe fn lift<'py>(_: Python<'py>, raw: *const c_char) -> PyResult<*const c_char> {
        Ok(raw)
    }
}
impl sealed::Arg for &CStr {}
impl<'py> Arg<'py, *const c_char> for &CStr {
    fn lower(
        self,
        _: Python<'py>,
        _: &CallContext<'_>,
        _: usize,
    ) -> PyResult<Lowered<*const c_char>> {
        Ok(Lowered::plain(self.as_ptr()))
    }
}

impl sealed::Param for Object {}
impl Param for Object {
    type Raw = *mut ffi::PyObject;
}
impl sealed::Return for Object {}
impl Return for Object {
    type Raw = *mut ffi::PyObject;
    type Output<'py> = Bound<'py, PyAny>;
    unsafe fn lift<'py>(py: Python<'py>, raw: *mut ffi::PyObject) -> PyResult<Bound<'py, PyAny>> {
        // SAFETY: an `object` result is a new reference, or NULL with an exception set
        // (this function's contract).
        unsafe { Bound::from_owned_ptr_or_err(py, raw) }
    }
}
impl<T> sealed::Arg for &Bound<'_, T> {}
impl<'py, T> Arg<'py, Object> for &Bound<'py, T> {
    fn lower(
        self,
        _: Python<'py>,
        _: &CallContext<'_>,
        _: usize,
    ) -> PyResult<Lowered<*mut ffi::PyObject>> {
        // Borrowed: `self` keeps the object alive for the call.
        Ok(Lowered::plain(self.as_ptr()))
    }
}

impl<D: ViewDecl> sealed::Param for SliceOf<D> {}
impl<D: ViewDecl> Param for SliceOf<D> {
    type Raw = MemviewSlice;
    const VIEW: bool = true;
}
impl<D: ViewDecl> sealed::Return for SliceOf<D> {}
impl<D: ViewDecl> Return for SliceOf<D> {
    type Raw = MemviewSlice;
    type Output<'py> = CythonSlice;
    unsafe fn lift<'py>(py: Python<'py>, raw: MemviewSlice) -> PyResult<CythonSlice> {
        // SAFETY: the result of a function returning a memoryview of `D`'s dimensions
        // (this function's contract), owned by the caller; NULL `memview` on error.
        unsafe { CythonSlice::from_returned(py, raw, D::DECLARATION.specs().len()) }
    }
}
impl<D: ViewDecl> sealed::Return for Option<SliceOf<D>> {}
impl<D: ViewDecl> Return for Option<SliceOf<D>> {
    type Raw = MemviewSlice;
    type Output<'py> = Option<CythonSlice>;
    unsafe fn lift<'py>(py: Python<'py>, raw: MemviewSlice) -> PyResult<Option<CythonSlice>> {
        // Cython's `None` view holds no reference (its counting ignores `None`).
        if raw.memview.cast::<ffi::PyObject>() == py.None().as_ptr() {
            return Ok(None);
        }
        // SAFETY: as for this function (the same contract).
        unsafe { SliceOf::<D>::lift(py, raw) }.map(Some)
    }
}

impl<'py, D: ViewDecl, T> Arg<'py, SliceOf<D>> for &Bound<'py, T> {
    fn lower(
        self,
        _: Python<'py>,
        cx: &CallContext<'_>,
        _: usize,
    ) -> PyResult<Lowered<MemviewSlice>> {
        if self.as_any().is_none() {
            // Cython's `None` view (`__Pyx_PyObject_to_MemoryviewSlice` of `None`): the
            // all-zero slice with `memview` pointing at `None`, which holds no reference.
            return Ok(Lowered::plain(MemviewSlice {
                memview: self.as_ptr().cast(),
                ..MemviewSlice::EMPTY
            }));
        }
        let slice = memview_type(cx)?.acquire(self.as_any(), &D::DECLARATION)?;
        Ok(Lowered {
            raw: *slice.as_raw(),
            _keep: Some(slice),
        })
    }
}

impl sealed::Arg for &CythonSlice {}
impl<'py, D: ViewDecl> Arg<'py, SliceOf<D>> for &CythonSlice {
    fn lower(
        self,
        py: Python<'py>,
        cx: &CallContext<'_>,
        index: usize,
    ) -> PyResult<Lowered<MemviewSlice>> {
        check_slice(py, self, &D::DECLARATION, cx, index)?;
        // Borrowed, as Cython borrows memoryview arguments: `self` holds the acquisition.
        Ok(Lowered::plain(*self.as_raw()))
    }
}

fn memview_type<'a>(cx: &CallContext<'a>) -> PyResult<&'a MemviewType> {
    cx.memview_type.ok_or_else(|| {
        PySystemError::new_err(format!(
            "no memoryview type for '{}' (a memoryview parameter without one)",
            cx.qualified
        ))
    })
}

fn family(abi: MemviewAbi) -> &'static str {
    match abi {
        MemviewAbi::Cython0_29 => "Cython 0.29",
        _ => "Cython 3",
    }
}

/// Checks that `s` may be passed as argument `index` declared `decl` to the function of
/// `cx`, as Cython would check a buffer for that declaration: its memoryview object is of
/// the callee's own memoryview type (or a subtype, `_memoryviewslice`: the function calls
/// the object's `cdef` methods through its type's vtable, whose entries differ between
/// releases of one layout family, 3.3 added one), ndim, format, item size, writability,
/// per-axis strides and suboffsets, contiguity; and that every element lies in the buffer
/// (a Cython-semantics slice may not).
fn check_slice(
    py: Python<'_>,
    s: &CythonSlice,
    decl: &Declaration<'_>,
    cx: &CallContext<'_>,
    index: usize,
) -> PyResult<()> {
    let callee_type = memview_type(cx)?;
    let callee = callee_type.abi();
    let at = || format!("argument {index} of '{}'", cx.qualified);
    let memview = s.as_raw().memview.cast::<ffi::PyObject>();
    let callee_ty = callee_type
        .type_object(py)
        .as_ptr()
        .cast::<ffi::PyTypeObject>();
    let same_type = !memview.is_null() && {
        // SAFETY: a CythonSlice holds an acquisition of its (non-null, checked) live
        // memoryview object, whose type is a live type object; the interpreter is attached
        // (`py`).
        unsafe { ffi::PyType_IsSubtype(ffi::Py_TYPE(memview), callee_ty) != 0 }
    };
    if !same_type {
        return Err(PyTypeError::new_err(format!(
            "{}: a view made by another Cython module ({}) cannot be passed to this one ({}): \
             the function calls its memoryview object's methods through its own module's \
             type; pass the buffer object instead",
            at(),
            family(s.abi()),
            family(callee)
        )));
    }
    let ndim = s.ndim();
    validate::check_buffer_ndim(ndim, decl.specs().len()).map_err(crate::to_py)?;
    let dtype = decl.element_type();
    cyview::format::check_format(s.format().to_bytes(), &dtype).map_err(crate::to_py)?;
    validate::check_itemsize(s.itemsize(), dtype.name, dtype.size).map_err(crate::to_py)?;
    if decl.writable() && s.readonly() {
        return Err(PyValueError::new_err(format!(
            "{}: a read-only view, for a memoryview parameter not declared const",
            at()
        )));
    }
    let raw = s.as_raw();
    let empty = raw.shape[..ndim].iter().any(|&n| n <= 0);
    let info = BufferInfo {
        buf: raw.data,
        itemsize: s.itemsize(),
        len: if empty { 0 } else { s.itemsize() },
        shape: &raw.shape[..ndim],
        strides: Some(&raw.strides[..ndim]),
        suboffsets: Some(&raw.suboffsets[..ndim]),
    };
    validate::check_axes(&info, decl.specs(), validate::contiguity(decl.specs()))
        .map_err(crate::to_py)?;
    s.prove_within()
}

// ---- signatures ------------------------------------------------------------------------------

macro_rules! signatures {
    ($($p:ident $a:ident $x:ident),*) => {
        impl<R: Return, $($p: Param),*> sealed::Signature for fn($($p),*) -> R {}
        impl<R: Return, $($p: Param),*> Signature for fn($($p),*) -> R {
            type RawFn = unsafe extern "C" fn($($p::Raw),*) -> R::Raw;
            type Output<'py> = R::Output<'py>;
            fn c_signature() -> CSignature {
                CSignature::new(
                    <R::Raw as CReturn>::c_names(),
                    vec![$((<$p::Raw as CType>::c_names(), <$p::Raw as CType>::const_by_value())),*],
                )
            }
            fn has_views() -> bool {
                false $(|| $p::VIEW)*
            }
        }
        impl<'py, R: Return, $($p: Param, $a: Arg<'py, $p>),*> Args<'py, fn($($p),*) -> R>
            for ($($a,)*)
        {
            #[allow(unused_variables, unused_mut)]
            fn call(
                self,
                f: &CythonFunction<fn($($p),*) -> R>,
                py: Python<'py>,
            ) -> PyResult<R::Output<'py>> {
                let cx = f.context();
                let ($($x,)*) = self;
                let mut index = 0;
                $(
                    index += 1;
                    let $x = $x.lower(py, &cx, index)?;
                )*
                before_call(py, &cx)?;
                // SAFETY: `f.raw` is the function of `f`'s capsule, whose C signature matched
                // the raw types (`CythonFunction::new`); every argument was converted to its
                // raw type by its `Arg`: arithmetic values, a C string borrowed for the call,
                // objects borrowed for the call, memoryview slices of real memoryview objects
                // of the callee module's own type, checked against the declaration the callee
                // has (`new`'s contract) and held (acquired) until after the call. The GIL is
                // held (`py`) and no exception is set.
                let raw = unsafe { (f.raw)($($x.raw),*) };
                // SAFETY: `raw` was just returned by the function, whose result is `R`'s.
                let out = unsafe { R::lift(py, raw) };
                after_call(py, out)
            }
        }
    };
}

signatures!();
signatures!(A1 T1 x1);
signatures!(A1 T1 x1, A2 T2 x2);
signatures!(A1 T1 x1, A2 T2 x2, A3 T3 x3);
signatures!(A1 T1 x1, A2 T2 x2, A3 T3 x3, A4 T4 x4);
signatures!(A1 T1 x1, A2 T2 x2, A3 T3 x3, A4 T4 x4, A5 T5 x5);
signatures!(A1 T1 x1, A2 T2 x2, A3 T3 x3, A4 T4 x4, A5 T5 x5, A6 T6 x6);
signatures!(A1 T1 x1, A2 T2 x2, A3 T3 x3, A4 T4 x4, A5 T5 x5, A6 T6 x6, A7 T7 x7);
signatures!(A1 T1 x1, A2 T2 x2, A3 T3 x3, A4 T4 x4, A5 T5 x5, A6 T6 x6, A7 T7 x7, A8 T8 x8);
signatures!(A1 T1 x1, A2 T2 x2, A3 T3 x3, A4 T4 x4, A5 T5 x5, A6 T6 x6, A7 T7 x7, A8 T8 x8,
            A9 T9 x9);
signatures!(A1 T1 x1, A2 T2 x2, A3 T3 x3, A4 T4 x4, A5 T5 x5, A6 T6 x6, A7 T7 x7, A8 T8 x8,
            A9 T9 x9, A10 T10 x10);
signatures!(A1 T1 x1, A2 T2 x2, A3 T3 x3, A4 T4 x4, A5 T5 x5, A6 T6 x6, A7 T7 x7, A8 T8 x8,
            A9 T9 x9, A10 T10 x10, A11 T11 x11);
signatures!(A1 T1 x1, A2 T2 x2, A3 T3 x3, A4 T4 x4, A5 T5 x5, A6 T6 x6, A7 T7 x7, A8 T8 x8,
            A9 T9 x9, A10 T10 x10, A11 T11 x11, A12 T12 x12);
