//! Hostile-user attacks on the safe API of `cyview` and `cyview-py`: safe Rust code that
//! tries to reach memory outside a buffer, leak uninitialised bytes to Python, or panic where
//! an error is documented. Each problem the attacks found is fixed and its test now checks
//! the refusal (none is `#[ignore]`d).
//!
//! Found and fixed:
//! * Cython's own memoryview objects export out-of-buffer geometry after a Python-level
//!   slice with Cython's length quirk (`mv[3:2:2]` on 3 elements selects index 3): the safe
//!   paths that trusted an exporter's `Py_buffer` read (`MemView`, `to_pyarray`) or wrote
//!   (`MemViewMut`) past the buffer. `acquire` now proves a `_memoryviewslice` exporter
//!   (or a memoryview over one) against the buffer it was sliced from.
//! * `CythonSlice::view`'s proof followed `_memoryviewslice.from_slice.memview` one level
//!   only: when that is itself a `_memoryviewslice` (`X.T` of such an `X`), the "root"
//!   geometry it proved against was the out-of-buffer slice. The walk now goes to the end.
//! * `element_struct!` accepted a field `TypeInfo` of the right size but without the field
//!   type's padding: `PADDED` was then `false` and `RustBuffer::from_elements` copied the
//!   padding bytes to Python. Such a field no longer compiles.
//! * A C-level exporter with a negative extent made `MemView::new` panic on an
//!   `unreachable!` instead of returning an error; a user `Axes` with 9 specs panicked in
//!   `Declaration::new` (it no longer compiles).
//!
//! Remaining (not memory safety): dropping the last `BufferSlice` or `CythonSlice` on
//! another thread while the owning thread stays attached (and waits for it) deadlocks: the
//! drop blocks for the GIL, as releasing a buffer needs it.

mod support;

use std::ffi::c_int;
use std::sync::Mutex;

use cyview::format;
use cyview::{s, Semantics};
use cyview_py::{
    acquire, view_decl, CythonFunction, Declaration, MemView, MemViewMut, Object, RustBuffer,
    SliceOf, Strided,
};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use support::with_python;

view_decl!(Line = "const double[:]");
type ViewOf1d = fn(Object) -> SliceOf<Line>;

/// Runs Python statements with `np`, `capi` and `live_core` in scope; returns the globals.
fn run<'py>(py: Python<'py>, code: &str) -> PyResult<Bound<'py, PyDict>> {
    let globals = PyDict::new(py);
    globals.set_item("np", py.import("numpy")?)?;
    globals.set_item("capi", py.import("capi")?)?;
    globals.set_item("live_core", py.import("live_core")?)?;
    let code = std::ffi::CString::new(code).expect("no NUL");
    py.run(&code, Some(&globals), None)?;
    Ok(globals)
}

/// `X = mv[3:2:2]` of a Cython memoryview `mv` over `a` (3 doubles, C-contiguous): Cython's
/// length formula gives one element at index 3, one past the end, and `X` exports exactly
/// that geometry (`np.asarray(X)` reads it too). Returns the globals (`a`, `mv`, `X`, `Y =
/// X.T`, `start`: the address of `a[0]`, `outside`: `X`'s buffer address).
fn quirk_slice(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    run(
        py,
        "a = np.array([1.5, 2.5, 3.5])\n\
         mv = capi.view_of_1d(a)\n\
         X = mv[3:2:2]\n\
         Y = X.T\n\
         start = a.__array_interface__['data'][0]\n\
         outside = np.asarray(X).__array_interface__['data'][0]\n",
    )
}

fn get<'py>(g: &Bound<'py, PyDict>, name: &str) -> Bound<'py, PyAny> {
    g.get_item(name).unwrap().unwrap()
}

/// The premise of the next tests, checked against real Cython: the memoryview object
/// Cython's Python-level `__getitem__` returns for `mv[3:2:2]` (3 elements) exports a
/// one-element buffer at byte 24 of the 24-byte array, and its `.T` (a `_memoryviewslice`
/// whose `from_slice.memview` is that `_memoryviewslice`) exports the same.
#[test]
fn cython_quirk_slice_exports_a_buffer_outside_its_source() {
    with_python(|py| -> PyResult<()> {
        let g = quirk_slice(py)?;
        let start: usize = get(&g, "start").extract()?;
        let outside: usize = get(&g, "outside").extract()?;
        assert_eq!(outside - start, 24, "X's element is one past the 3 doubles");
        let x = get(&g, "X");
        assert_eq!(x.getattr("shape")?.extract::<(isize,)>()?, (1,));
        assert!(x
            .get_type()
            .name()?
            .to_string()
            .ends_with("_memoryviewslice"));
        Ok(())
    })
    .unwrap();
}

/// `MemView::<f64, Strided<1>>::new(X)` (what a `#[pyfunction]` argument
/// `MemView<'_, f64, Strided<1>>` does with `X` from Python), `MemViewMut::new(X)` and
/// `acquire(X, ..)` (then `to_pyarray`) would read or write the 8 bytes after the array
/// (valgrind, before the fix: `Invalid read of size 8 ... 0 bytes after a block of size 24`):
/// all three refuse `X`, and `Y = X.T`, whose buffer is proven against the memoryview
/// they were sliced from.
#[test]
fn safe_views_of_a_cython_quirk_slice_are_refused() {
    with_python(|py| -> PyResult<()> {
        let g = quirk_slice(py)?;
        for name in ["X", "Y"] {
            let x = get(&g, name);
            let refused = |r: PyResult<()>| {
                let e = r.expect_err("a view past the buffer was accepted");
                assert!(
                    e.is_instance_of::<pyo3::exceptions::PyValueError>(py),
                    "{e}"
                );
            };
            refused(MemView::<f64, Strided<1>>::new(&x).map(drop));
            refused(MemViewMut::<f64, Strided<1>>::new(&x).map(drop));
            refused(acquire(&x, &Declaration::parse("const double[:]")).map(drop));
            // Through Python's own memoryview of it, too.
            let m = py.import("builtins")?.getattr("memoryview")?.call1((&x,))?;
            refused(MemView::<f64, Strided<1>>::new(&m).map(drop));
        }
        Ok(())
    })
    .unwrap();
}

/// The contrast: Cython memoryview slices that stay in the buffer, nested (`.T`, a slice
/// of a slice) or through Python's `memoryview`, are accepted, and each element read is
/// NumPy's element at the same index (`a[..]` with the same Python slice).
#[test]
fn safe_views_of_cython_slices_inside_the_buffer_read_numpys_elements() {
    with_python(|py| -> PyResult<()> {
        let g = run(
            py,
            concat!(
                "a = np.arange(12.0) * 1.5\n",
                "mv = capi.view_of_1d(a)\n",
                "cases = []\n",
                "for sl in [slice(None), slice(1, None), slice(None, None, 2), slice(None, None, -1),\n",
                "           slice(10, 2, -3), slice(3, 4), slice(5, 5)]:\n",
                "    x = mv[sl]\n",
                "    want = list(a[sl])\n",
                "    cases += [(x, want), (x.T, want), (x[::-1], want[::-1]), (memoryview(x), want)]\n",
            ),
        )?;
        let cases = get(&g, "cases");
        let mut n = 0;
        for case in cases.try_iter()? {
            let (x, want): (Bound<'_, PyAny>, Vec<f64>) = case?.extract()?;
            let v = MemView::<f64, Strided<1>>::new(&x)?;
            let got: Vec<f64> = v.iter().collect();
            assert_eq!(got, want, "{}", x.repr()?);
            let b = acquire(&x, &Declaration::parse("const double[:]"))?;
            assert_eq!(b.ndim(), 1);
            n += 1;
        }
        assert_eq!(n, 28);
        Ok(())
    })
    .unwrap();
}

/// `CythonSlice::view` proves a slice against the `Py_buffer` of its root memoryview. `Y =
/// X.T` (Cython's `memoryview_copy`, whose slice's `memview` is `X` itself) has
/// `from_slice.memview == X`, a `_memoryviewslice` whose `view` member describes the
/// out-of-buffer `mv[3:2:2]`: the root is found below it, so `capi_view_of_1d(Y)` (`cdef
/// const double[:] v = Y` reuses `Y`) gives a slice whose `view` is refused, as `X`'s is.
#[test]
fn cython_slice_view_of_a_nested_memoryviewslice_is_refused() {
    with_python(|py| -> PyResult<()> {
        let g = quirk_slice(py)?;
        let capi = py.import("capi")?;
        // SAFETY: capi.pyx declares `cdef api const double[:] capi_view_of_1d(object obj)`.
        let view_of = unsafe { CythonFunction::<ViewOf1d>::new(&capi, "capi_view_of_1d") }?;
        for name in ["X", "Y"] {
            let s = view_of.call(py, (&get(&g, name),))?;
            // SAFETY: nothing writes the array while the view lives.
            let r = unsafe { s.view::<f64>() }.map(drop);
            assert!(r.is_err(), "{name}: a view past the buffer was accepted");
        }
        Ok(())
    })
    .unwrap();
}

view_decl!(Row = "const double[::1]");
type First = fn(SliceOf<Row>) -> f64;

/// The nested slice of the previous test passed back to Cython: `call`'s argument check
/// (`check_slice`, which ends with the same proof) refuses it, so `capi_first` (`cdef api
/// double capi_first(const double[::1] v)`, returns `v[0]`) never reads the 8 bytes past
/// the array (it did before the fix: valgrind `Invalid read of size 8 at
/// __pyx_f_4capi_capi_first`).
#[test]
fn nested_memoryviewslice_is_refused_by_the_argument_check_of_a_safe_call() {
    with_python(|py| -> PyResult<()> {
        let g = quirk_slice(py)?;
        let capi = py.import("capi")?;
        // SAFETY: capi.pyx declares `cdef api const double[:] capi_view_of_1d(object obj)`
        // and `cdef api double capi_first(const double[::1] v) except? -1`.
        let (view_of, first) = unsafe {
            (
                CythonFunction::<ViewOf1d>::new(&capi, "capi_view_of_1d")?,
                CythonFunction::<First>::new(&capi, "capi_first")?,
            )
        };
        let sy = view_of.call(py, (&get(&g, "Y"),))?;
        let r = first.call(py, (&sy,));
        assert!(r.is_err(), "Cython read {r:?} past the buffer");
        Ok(())
    })
    .unwrap();
}

/// The contrast that passes: a `CythonSlice` sliced with Cython semantics out of the
/// buffer (the same quirk, made in Rust) is refused by `view`, by Python-semantics slicing
/// of it, and as an argument.
#[test]
fn cython_semantics_quirk_made_in_rust_is_refused() {
    with_python(|py| -> PyResult<()> {
        let g = quirk_slice(py)?;
        let capi = py.import("capi")?;
        // SAFETY: capi.pyx declares `cdef api const double[:] capi_view_of_1d(object obj)`.
        let view_of = unsafe { CythonFunction::<ViewOf1d>::new(&capi, "capi_view_of_1d") }?;
        let s = view_of.call(py, (&get(&g, "a"),))?;
        let out = s.slice_with(&s![3..2;2], Semantics::Cython)?;
        assert_eq!(&out.as_raw().shape[..1], &[1]);
        // SAFETY: nothing writes the array while the view lives.
        assert!(unsafe { out.view::<f64>() }.is_err());
        assert!(view_of.call(py, (&get(&g, "a"),)).is_ok());
        let again = out.slice(&s![..])?;
        // SAFETY: as above.
        assert!(unsafe { again.view::<f64>() }.is_err());
        Ok(())
    })
    .unwrap();
}

// ---- element_struct! and padding ---------------------------------------------------------

/// `struct Inner { a: u8, b: u32 }`: 8 bytes, 3 of them padding (1..4).
#[derive(Clone, Copy)]
#[repr(C)]
struct Inner {
    a: u8,
    b: u32,
}
// SAFETY: two integers (and padding): every bit pattern is a valid `Inner`.
unsafe impl cyview::FromBytes for Inner {}
cyview_py::element_struct!(Inner as "Inner" { a: &format::UNSIGNED_CHAR, b: &format::UNSIGNED_INT });

/// A struct whose one field is a padded struct.
#[derive(Clone, Copy)]
#[repr(C)]
struct Outer {
    inner: Inner,
}
// SAFETY: two integers (and padding): every bit pattern is a valid `Outer`; no drop glue, no
// interior mutability.
unsafe impl cyview::FromBytes for Outer {}
// Described by an 8-byte scalar (`&format::LONG_LONG`), the field hid its padding: `PADDED`
// was `false` and exports copied the padding bytes to Python. That no longer compiles (the
// `compile_fail` example of `element_struct!`); the field takes its type's own TypeInfo.
cyview_py::element_struct!(Outer as "Outer" { inner: <Inner as cyview_py::CythonElement>::TYPE_INFO });

/// `RustBuffer::from_elements` promises "no uninitialised byte reaches Python" for padded
/// structs: `Outer`'s padding (here filled with 0xAA before the fields were written, to see
/// it; in general uninitialised) is exported as zeros.
#[test]
fn element_struct_of_a_padded_field_exports_no_padding() {
    const { assert!(<Outer as cyview_py::CythonElement>::PADDED) };
    let mut values: Vec<Outer> = Vec::with_capacity(2);
    let p = values.as_mut_ptr();
    for i in 0..2usize {
        // SAFETY: `p.add(i)` is inside the capacity of 2; bytes filled, then both fields
        // written through raw pointers, so element `i` is initialised before `set_len`.
        unsafe {
            std::ptr::write_bytes(p.add(i).cast::<u8>(), 0xAA, 8);
            std::ptr::addr_of_mut!((*p.add(i)).inner.a).write(i as u8);
            std::ptr::addr_of_mut!((*p.add(i)).inner.b).write(7);
        }
    }
    // SAFETY: the two elements were initialised above.
    unsafe { values.set_len(2) };
    with_python(|py| -> PyResult<()> {
        let rb = Bound::new(py, RustBuffer::from_elements(values, &[2], &[8], 0, true)?)?;
        let bytes = py.import("builtins")?.getattr("bytes")?.call1((rb,))?;
        let bytes = bytes.cast::<PyBytes>()?.as_bytes().to_vec();
        for i in 0..2 {
            assert_eq!(
                &bytes[i * 8 + 1..i * 8 + 4],
                &[0; 3],
                "padding of element {i} reached Python"
            );
        }
        Ok(())
    })
    .unwrap();
}

/// The same export of values built the ordinary way (`Outer { inner: Inner { a, b } }`),
/// whose padding is uninitialised: the bytes Python receives there are zeros (under
/// valgrind with `--undef-value-errors=yes`, the comparison reported `Conditional jump or
/// move depends on uninitialised value(s)` before the fix).
#[test]
fn element_struct_padding_never_exports_uninitialised_bytes() {
    let values: Vec<Outer> = (0..64)
        .map(|i| Outer {
            inner: Inner { a: i as u8, b: 7 },
        })
        .collect();
    with_python(|py| -> PyResult<()> {
        let rb = Bound::new(py, RustBuffer::from_elements(values, &[64], &[8], 0, true)?)?;
        let bytes = py.import("builtins")?.getattr("bytes")?.call1((rb,))?;
        let bytes = bytes.cast::<PyBytes>()?.as_bytes().to_vec();
        let padding: u64 = (0..64).map(|i| u64::from(bytes[i * 8 + 2])).sum();
        if padding != 0 {
            panic!("padding bytes reached Python (sum {padding})");
        }
        Ok(())
    })
    .unwrap();
}

// ---- a C-level exporter that lies --------------------------------------------------------

/// A buffer exporter with a fixed, configurable geometry over its own 64 bytes.
#[pyclass(frozen)]
struct Liar {
    data: Box<[f64; 8]>,
    shape: Box<[isize]>,
    strides: Box<[isize]>,
    len: isize,
    exports: Mutex<usize>,
}

#[pymethods]
impl Liar {
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut pyo3::ffi::Py_buffer,
        _flags: c_int,
    ) -> PyResult<()> {
        let this = slf.get();
        *this.exports.lock().unwrap() += 1;
        // SAFETY: CPython passes a valid view to fill; the pointers stay valid while `slf`
        // lives, which `obj` ensures.
        unsafe {
            (*view).buf = this.data.as_ptr().cast_mut().cast();
            (*view).len = this.len;
            (*view).readonly = 1;
            (*view).itemsize = 8;
            (*view).format = c"d".as_ptr().cast_mut();
            (*view).ndim = this.shape.len() as c_int;
            (*view).shape = this.shape.as_ptr().cast_mut();
            (*view).strides = this.strides.as_ptr().cast_mut();
            (*view).suboffsets = std::ptr::null_mut();
            (*view).internal = std::ptr::null_mut();
            (*view).obj = slf.into_any().into_ptr();
        }
        Ok(())
    }

    unsafe fn __releasebuffer__(&self, _view: *mut pyo3::ffi::Py_buffer) {
        *self.exports.lock().unwrap() -= 1;
    }
}

fn liar(shape: &[isize], strides: &[isize], len: isize) -> Liar {
    Liar {
        data: Box::new([1.0; 8]),
        shape: shape.into(),
        strides: strides.into(),
        len,
        exports: Mutex::new(0),
    }
}

/// An exporter giving extent -1 (with `len` 8, so Cython's per-axis checks run, and pass:
/// extents `<= 1` are not checked). `acquire` accepts, as Cython's
/// `__Pyx_ValidateAndInit_memviewslice` does; `MemView::new` panicked on an `unreachable!`
/// (`memview.rs`, `gil_view`) and now refuses with a `ValueError`.
#[test]
fn negative_extent_from_an_exporter_is_an_error_in_memview_new() {
    with_python(|py| -> PyResult<()> {
        let obj = Bound::new(py, liar(&[-1], &[8], 8))?.into_any();
        let decl = Declaration::parse("const double[:]");
        let buf = acquire(&obj, &decl)?;
        assert_eq!(&buf.as_raw().shape[..1], &[-1]);
        drop(buf);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            MemView::<f64, Strided<1>>::new(&obj).map(|_| ())
        }));
        let e = r
            .expect("MemView::new of a negative extent panicked")
            .expect_err("MemView::new accepted a negative extent");
        assert!(
            e.is_instance_of::<pyo3::exceptions::PyValueError>(py),
            "{e}"
        );
        Ok(())
    })
    .unwrap();
}

/// Lies that must be refused, not read: wrong ndim (0, 9, 64, negative), a shape shorter
/// than... (the exporter's ndim decides), an item size of 0.
#[test]
fn lying_ndim_is_refused() {
    with_python(|py| -> PyResult<()> {
        for shape in [&[][..], &[1; 9][..], &[1, 1][..]] {
            let strides = vec![8isize; shape.len()];
            let obj = Bound::new(py, liar(shape, &strides, 8))?.into_any();
            assert!(MemView::<f64, Strided<1>>::new(&obj).is_err(), "{shape:?}");
            let obj: &Bound<'_, Liar> = obj.cast()?;
            assert_eq!(*obj.get().exports.lock().unwrap(), 0, "export released");
        }
        Ok(())
    })
    .unwrap();
}

// ---- threads: the last drop attaches to the interpreter --------------------------------

// The last drop of a `BufferSlice` or `CythonSlice` attaches to the interpreter (a buffer
// is released with it attached): dropping it on a thread while the owning thread stays
// attached and joins that thread deadlocks (README "Soundness" says so). A test of that
// needs a timeout, so there is none.

/// Not the last: clones dropped on other threads while attached only decrement.
#[test]
fn dropping_a_cython_slice_clone_on_another_thread_while_attached_returns() {
    with_python(|py| -> PyResult<()> {
        let g = run(py, "a = np.arange(4.0)")?;
        let capi = py.import("capi")?;
        // SAFETY: capi.pyx declares `cdef api const double[:] capi_view_of_1d(object obj)`.
        let view_of = unsafe { CythonFunction::<ViewOf1d>::new(&capi, "capi_view_of_1d") }?;
        let s = view_of.call(py, (&get(&g, "a"),))?;
        std::thread::scope(|scope| {
            for _ in 0..4 {
                let c = s.clone();
                scope.spawn(move || {
                    let d = c.clone();
                    drop(c);
                    drop(d);
                });
            }
        });
        assert_eq!(s.acquisition_count(), 1);
        Ok(())
    })
    .unwrap();
}

// ---- a Python subclass of Cython's memoryview ------------------------------------------

/// Cython's `memoryview` class can be subclassed from Python. Passing an instance `s` of
/// `class S(capi.memoryview)` to `capi_view_of_1d` gives a slice over `a` that cyview
/// accepts (Cython makes its own memoryview object for it); once the result drops, no
/// reference to `s` or `a` is left behind.
#[test]
fn python_subclass_of_cython_memoryview_leaks_nothing() {
    with_python(|py| -> PyResult<()> {
        let g = run(
            py,
            "a = np.arange(3.0)\n\
             MV = type(capi.view_of_1d(a)).__base__\n\
             class S(MV): pass\n\
             s = S(a, 0x11d, False)\n",
        )?;
        let capi = py.import("capi")?;
        // SAFETY: capi.pyx declares `cdef api const double[:] capi_view_of_1d(object obj)`.
        let view_of = unsafe { CythonFunction::<ViewOf1d>::new(&capi, "capi_view_of_1d") }?;
        let (s, a) = (get(&g, "s"), get(&g, "a"));
        let before = (support::refcount(&s), support::refcount(&a));
        let r = view_of.call(py, (&s,));
        if let Ok(v) = &r {
            // SAFETY: nothing writes `a` while the view lives.
            let v = unsafe { v.view::<f64>() }?;
            assert_eq!(v.to_vec()?, [0.0, 1.0, 2.0]);
        }
        drop(r);
        assert_eq!((support::refcount(&s), support::refcount(&a)), before);
        Ok(())
    })
    .unwrap();
}

/// `Pair { x: i32, y: f64 }` (4 padding bytes at 4..8) with its field `y` listed twice:
/// the listed extents add up to 16, so `PADDED` is `false`; the export is still refused,
/// by the format string builder (overlapping fields), before any byte is copied.
#[test]
fn element_struct_with_a_duplicated_field_is_not_exported() {
    #[derive(Clone, Copy)]
    #[repr(C)]
    struct Dup {
        x: i32,
        y: f64,
    }
    // SAFETY: two numbers (and padding): every bit pattern is valid.
    unsafe impl cyview::FromBytes for Dup {}
    cyview_py::element_struct!(Dup as "Dup" { y: &format::DOUBLE, y: &format::DOUBLE });
    const { assert!(!<Dup as cyview_py::CythonElement>::PADDED) };
    let mut values: Vec<Dup> = Vec::with_capacity(1);
    let p = values.as_mut_ptr();
    // SAFETY: inside the capacity; bytes filled, then both fields written.
    unsafe {
        std::ptr::write_bytes(p.cast::<u8>(), 0xAA, 16);
        std::ptr::addr_of_mut!((*p).x).write(1);
        std::ptr::addr_of_mut!((*p).y).write(2.0);
        values.set_len(1);
    }
    let e = RustBuffer::from_elements(values, &[1], &[16], 0, true).err();
    assert!(
        e.is_some(),
        "a struct with a field listed twice was exported"
    );
}

// ---- exporters changed while viewed ------------------------------------------------------

/// Python code run from inside a write loop (`map_inplace`'s closure) tries to resize,
/// release and replace what the view reads: the exporters refuse (`BufferError`) while the
/// view's buffer is held, and every element written lands in the buffer.
#[test]
fn exporters_refuse_to_change_while_viewed() {
    with_python(|py| -> PyResult<()> {
        let g = run(
            py,
            "b = bytearray(b'\\x01' * 64)\n\
             m = memoryview(b)\n\
             import array\n\
             arr = array.array('d', [1.0] * 8)\n\
             def resize_b():\n\
             \x20   out = []\n\
             \x20   for f in (lambda: b.extend(b'x' * 4096), lambda: b.clear(), lambda: m.release()):\n\
             \x20       try:\n\
             \x20           f(); out.append('done')\n\
             \x20       except BufferError:\n\
             \x20           out.append('refused')\n\
             \x20   return out\n\
             def resize_arr():\n\
             \x20   try:\n\
             \x20       arr.extend([2.0] * 4096); return 'done'\n\
             \x20   except BufferError:\n\
             \x20       return 'refused'\n",
        )?;
        let resize_b = get(&g, "resize_b");
        let v = MemViewMut::<u8, Strided<1>>::new(&get(&g, "m"))?;
        let mut outcomes = Vec::new();
        v.map_inplace(|x| {
            if outcomes.is_empty() {
                outcomes.push(resize_b.call0().unwrap().extract::<Vec<String>>().unwrap());
            }
            x + 1
        });
        assert_eq!(outcomes[0], ["refused", "refused", "refused"]);
        assert_eq!(v.to_vec()?, vec![2u8; 64]);
        let resize_arr = get(&g, "resize_arr");
        let w = MemViewMut::<f64, Strided<1>>::new(&get(&g, "arr"))?;
        let mut said = String::new();
        w.map_inplace(|x| {
            if said.is_empty() {
                said = resize_arr.call0().unwrap().extract().unwrap();
            }
            x * 3.0
        });
        assert_eq!(said, "refused");
        assert_eq!(w.sum(), 24.0);
        Ok(())
    })
    .unwrap();
}

// ---- user-implemented `Axes` ---------------------------------------------------------------
// An `Axes` with 9 specs made `MemView::new` panic at run time; it no longer compiles (the
// `compile_fail` example on `cyview_py::Axes`).

// ---- reference counts on refused arguments -------------------------------------------------

/// Buffer exporters refused as arguments of a safe call (wrong ndim, not C-contiguous,
/// read-only for a writable parameter, not a buffer, a lying exporter) leave every
/// reference count and export as it was.
#[test]
fn refused_arguments_leak_nothing() {
    view_decl!(LineMut = "double[:]");
    type Keep = fn(SliceOf<LineMut>) -> c_int;
    with_python(|py| -> PyResult<()> {
        let g = run(
            py,
            "a2 = np.zeros((2, 3))\n\
             a1 = np.arange(6.0)[::2]\n\
             ro = np.arange(3.0); ro.flags.writeable = False\n\
             nb = object()\n",
        )?;
        let capi = py.import("capi")?;
        // SAFETY: capi.pyx declares `cdef api double capi_first(const double[::1] v)` and
        // `cdef api int capi_keep(double[:] v) except -1`.
        let (first, keep) = unsafe {
            (
                CythonFunction::<First>::new(&capi, "capi_first")?,
                CythonFunction::<Keep>::new(&capi, "capi_keep")?,
            )
        };
        let liar = Bound::new(py, liar(&[-1], &[8], 8))?;
        for (name, obj) in [
            ("a2", get(&g, "a2")),
            ("a1", get(&g, "a1")),
            ("nb", get(&g, "nb")),
            ("liar", liar.clone().into_any()),
        ] {
            let before = support::refcount(&obj);
            assert!(first.call(py, (&obj,)).is_err(), "{name} accepted");
            assert_eq!(support::refcount(&obj), before, "{name}");
        }
        let ro = get(&g, "ro");
        let before = support::refcount(&ro);
        assert!(keep.call(py, (&ro,)).is_err(), "read-only accepted");
        assert_eq!(support::refcount(&ro), before);
        assert_eq!(*liar.get().exports.lock().unwrap(), 0);
        Ok(())
    })
    .unwrap();
}
