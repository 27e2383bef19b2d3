//! Typed `cdef api` calls: `cyview_py::CythonFunction` on the functions of
//! `cython_fixtures/capi.pyx`, each compared with its `def` twin (the same C function called
//! from Python by Cython's own code).
//!
//! * `signatures_derived_from_rust_types_are_the_capsule_names`: the C signature derived
//!   from each Rust function type is the name Cython gave the capsule (exactly, where the
//!   usual spellings are used; else one of the accepted spellings).
//! * `calls_return_what_the_def_twins_return`: scalars of every C type, views in and out.
//! * `error_returns_raise_what_the_def_twins_raise`: `except? -1`, `except -1`, `except *`,
//!   `noexcept`, a view result's NULL memview, an object argument Cython refuses.
//! * `cython_slices_are_checked_as_cython_checks_views`: ndim and contiguity refused with
//!   the messages Cython gives for the same view; read-only, cross-release and out-of-buffer
//!   views refused.
//! * `rust_buffers_go_through_real_memoryview_objects`: a `RustBuffer` argument reaches
//!   Cython as a memoryview of the callee's module: `np.asarray(v)`, `return v`, `kept = v`
//!   and writes work, and every export, reference and acquisition is given back.
//! * `wrong_signatures_and_modules_are_refused`, `an_exception_set_before_the_call_is_refused`.

mod support;

use std::ffi::{c_char, c_int, c_long, c_longlong, c_uint, c_ulong, c_ulonglong, CStr};

use cyview::{s, MemviewSlice, Semantics};
use cyview_py::{
    capi_function, view_decl, CSignature, CythonFunction, CythonSlice, MemviewAbi, MemviewType,
    Object, RustBuffer, Signature, SliceOf, ViewDecl,
};
use num_complex::Complex;
use pyo3::prelude::*;
use pyo3::types::{PyCapsule, PyDict};
use support::{cython_release, err_of, refcount, report, with_python};

view_decl!(Grid = "const double[:, :]");
view_decl!(GridOut = "double[:, ::1]");
view_decl!(Row = "const double[::1]");
view_decl!(Line = "const double[:]");
view_decl!(LineMut = "double[:]");

type Total = fn(SliceOf<Grid>) -> f64;
type RowSum = fn(SliceOf<Grid>, isize) -> f64;
type Scaled = fn(SliceOf<Grid>, f64) -> SliceOf<GridOut>;
type ViewOf = fn(Object) -> SliceOf<Grid>;
type ViewOf1d = fn(Object) -> SliceOf<Line>;
type First = fn(SliceOf<Row>) -> f64;
type Fill = fn(SliceOf<GridOut>, f64) -> c_int;
type AsArray = fn(SliceOf<Grid>) -> Object;
type Maybe = fn(SliceOf<LineMut>, c_int) -> Option<SliceOf<LineMut>>;
type Keep = fn(SliceOf<LineMut>) -> c_int;
type Forget = fn() -> c_int;
type Ints =
    fn(i8, u8, i16, u16, c_int, c_uint, c_long, c_ulong, c_longlong, c_ulonglong) -> c_longlong;
type Stdint = fn(i8, i16, i32, i64, u8, u16, u32, u64) -> i64;
type Sizes = fn(isize, usize, isize, usize, c_int, f64) -> isize;
type Product = fn(f32, f32) -> f32;
type Cplx = fn(Complex<f64>, Complex<f32>) -> Complex<f64>;
type Strlen = fn(*const c_char) -> isize;
type Name = fn() -> *const c_char;
type Check = fn(c_int);
type Positive = fn(c_int) -> c_int;
type Quiet = fn(f64) -> f64;
type Nothing = fn();
type SumPtr = unsafe extern "C" fn(*const f64, isize) -> f64;
type Pointers = unsafe extern "C" fn(
    *mut u8,
    *const u8,
    *mut *mut f64,
    *mut *const c_char,
    *mut isize,
) -> *mut *mut c_char;

fn capi(py: Python<'_>) -> Bound<'_, PyModule> {
    py.import("capi").expect("import capi")
}

/// `f` typed as `S`.
fn function<S: Signature>(py: Python<'_>, name: &str) -> CythonFunction<S> {
    // SAFETY: every `SliceOf<D>` of the signatures above is the declaration capi.pyx gives
    // that parameter or result; `capi_strlen` does not keep its argument.
    unsafe { CythonFunction::<S>::new(&capi(py), name) }
        .unwrap_or_else(|e| panic!("capi.{name}: {e}"))
}

/// Evaluates `expr` with `np`, `ls` (live_support) and `capi` in scope, plus `vars`.
fn eval<'py>(
    py: Python<'py>,
    expr: &str,
    vars: &[(&str, &Bound<'py, PyAny>)],
) -> PyResult<Bound<'py, PyAny>> {
    let globals = PyDict::new(py);
    globals.set_item("np", py.import("numpy")?)?;
    globals.set_item("ls", py.import("live_support")?)?;
    globals.set_item("capi", capi(py))?;
    for (k, v) in vars {
        globals.set_item(k, v)?;
    }
    let code = std::ffi::CString::new(expr).unwrap();
    py.eval(&code, Some(&globals), None)
}

fn ev<'py>(py: Python<'py>, expr: &str) -> Bound<'py, PyAny> {
    eval(py, expr, &[]).unwrap_or_else(|e| panic!("{expr}: {e}"))
}

/// The def twin's exception for `expr` (which must raise).
fn twin_err(py: Python<'_>, expr: &str, vars: &[(&str, &Bound<'_, PyAny>)]) -> (String, String) {
    match eval(py, expr, vars) {
        Ok(v) => panic!("{expr} gave {v}, expected an exception"),
        Err(e) => err_of(py, &e),
    }
}

/// The capsule names of `capi.__pyx_capi__`, by function name.
fn capsule_names(py: Python<'_>) -> Vec<(String, String)> {
    let capi = capi(py).getattr("__pyx_capi__").unwrap();
    let capi = capi.cast::<PyDict>().unwrap();
    let mut out: Vec<(String, String)> = capi
        .iter()
        .map(|(k, v)| {
            let c = v.cast_into::<PyCapsule>().unwrap();
            // SAFETY: a live capsule's name is a NUL-terminated string it keeps.
            let name = unsafe { c.name().unwrap().unwrap().as_cstr() };
            (k.to_string(), name.to_string_lossy().into_owned())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn signatures_derived_from_rust_types_are_the_capsule_names() {
    fn sig<S: Signature>() -> CSignature {
        S::c_signature()
    }
    // (function, derived signature, whether the usual spellings are Cython's)
    let derived: Vec<(&str, CSignature, bool)> = vec![
        ("capi_total", sig::<Total>(), true),
        ("capi_row_sum", sig::<RowSum>(), true),
        ("capi_scaled", sig::<Scaled>(), true),
        ("capi_view_of", sig::<ViewOf>(), true),
        ("capi_view_of_1d", sig::<ViewOf1d>(), true),
        ("capi_first", sig::<First>(), true),
        ("capi_fill", sig::<Fill>(), true),
        ("capi_as_array", sig::<AsArray>(), true),
        ("capi_as_object", sig::<AsArray>(), true),
        ("capi_maybe", sig::<Maybe>(), true),
        ("capi_keep", sig::<Keep>(), true),
        ("capi_forget", sig::<Forget>(), true),
        // long long is PY_LONG_LONG, i64's second spelling where `long` has 64 bits.
        ("capi_ints", sig::<Ints>(), false),
        // int64_t and int32_t: the fixed-width spellings come after long / int.
        ("capi_stdint", sig::<Stdint>(), false),
        // intptr_t and uintptr_t, and `const int` as "int const ".
        ("capi_sizes", sig::<Sizes>(), false),
        ("capi_product", sig::<Product>(), true),
        ("capi_complex", sig::<Cplx>(), true),
        ("capi_strlen", sig::<Strlen>(), true),
        ("capi_name", sig::<Name>(), true),
        ("capi_check", sig::<Check>(), true),
        ("capi_positive", sig::<Positive>(), true),
        ("capi_quiet", sig::<Quiet>(), true),
        ("capi_nothing", sig::<Nothing>(), true),
        ("capi_sum_ptr", CSignature::of::<SumPtr>(), true),
        ("capi_pointers", CSignature::of::<Pointers>(), true),
    ];
    with_python(|py| {
        let capsules = capsule_names(py);
        let mut names: Vec<&str> = derived.iter().map(|d| d.0).collect();
        names.sort();
        let listed: Vec<&str> = capsules.iter().map(|c| c.0.as_str()).collect();
        assert_eq!(
            names, listed,
            "every cdef api function of capi.pyx has a Rust type here"
        );
        for (name, sig, exact) in &derived {
            let capsule = &capsules.iter().find(|c| c.0 == *name).unwrap().1;
            assert!(
                sig.matches(capsule),
                "{name}: '{capsule}' does not match '{sig}'"
            );
            if *exact {
                assert_eq!(&sig.to_string(), capsule, "{name}");
            } else {
                assert_ne!(&sig.to_string(), capsule, "{name}: now exact, move it");
            }
        }
        // The typed functions look up without error (signature checked again).
        let _ = function::<Ints>(py, "capi_ints");
        let _ = function::<Sizes>(py, "capi_sizes");
        report(
            "capi: derived signatures are the capsule names",
            derived.len(),
            derived.len(),
            0,
        );
    });
}

#[test]
fn calls_return_what_the_def_twins_return() {
    with_python(|py| {
        let mut cases = 0;
        let ints = function::<Ints>(py, "capi_ints");
        for (a, b, c, d, e, f, g, h, i, j) in [
            (1i8, 2u8, 3i16, 4u16, 5, 6, 7, 8, 9, 1),
            (-3, 255, -7, 9, -2, 0, -5, 1, -1, 0),
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0),
        ] {
            let ours = ints.call(py, (a, b, c, d, e, f, g, h, i, j)).unwrap();
            let twin: i64 = capi(py)
                .call_method1("ints", (a, b, c, d, e, f, g, h, i, j))
                .unwrap()
                .extract()
                .unwrap();
            assert_eq!(ours, twin, "ints{:?}", (a, b, c, d, e, f, g, h, i, j));
            cases += 1;
        }
        let stdint = function::<Stdint>(py, "capi_stdint");
        for args in [
            (1i8, 2i16, 3i32, 4i64, 5u8, 6u16, 7u32, 8u64),
            (-128, 300, -70000, 1 << 40, 200, 60000, 4_000_000_000, 12),
        ] {
            let ours = stdint.call(py, args).unwrap();
            let twin: i64 = capi(py)
                .call_method1("stdint", args)
                .unwrap()
                .extract()
                .unwrap();
            assert_eq!(ours, twin, "stdint{args:?}");
            cases += 1;
        }
        let sizes = function::<Sizes>(py, "capi_sizes");
        let args = (-4isize, 5usize, -6isize, 7usize, 8, 9.75);
        let twin: isize = capi(py)
            .call_method1("sizes", args)
            .unwrap()
            .extract()
            .unwrap();
        assert_eq!(sizes.call(py, args).unwrap(), twin);
        let product = function::<Product>(py, "capi_product");
        let twin: f32 = capi(py)
            .call_method1("product", (1.5f32, -2.25f32))
            .unwrap()
            .extract()
            .unwrap();
        assert_eq!(product.call(py, (1.5f32, -2.25f32)).unwrap(), twin);
        let cplx = function::<Cplx>(py, "capi_complex");
        let ours = cplx
            .call(py, (Complex::new(1.5, -2.0), Complex::new(0.5f32, 3.0)))
            .unwrap();
        let twin = ev(py, "capi.complex_(complex(1.5, -2.0), complex(0.5, 3.0))");
        let twin = Complex::new(
            twin.getattr("real").unwrap().extract::<f64>().unwrap(),
            twin.getattr("imag").unwrap().extract::<f64>().unwrap(),
        );
        assert_eq!(ours, twin);
        let strlen = function::<Strlen>(py, "capi_strlen");
        let twin: isize = capi(py)
            .call_method1("strlen_", (&b"cyview"[..],))
            .unwrap()
            .extract()
            .unwrap();
        assert_eq!(strlen.call(py, (c"cyview",)).unwrap(), twin);
        let name = function::<Name>(py, "capi_name");
        let p = name.call(py, ()).unwrap();
        // SAFETY: a static C string of the module.
        assert_eq!(unsafe { CStr::from_ptr(p) }, c"capi fixture");
        function::<Check>(py, "capi_check").call(py, (3,)).unwrap();
        function::<Nothing>(py, "capi_nothing")
            .call(py, ())
            .unwrap();
        cases += 7;

        // Views: NumPy arrays of several layouts, acquired through capi's memoryview type.
        let total = function::<Total>(py, "capi_total");
        let row_sum = function::<RowSum>(py, "capi_row_sum");
        let scaled = function::<Scaled>(py, "capi_scaled");
        let first = function::<First>(py, "capi_first");
        for expr in [
            "np.arange(12.0).reshape(3, 4)",
            "np.arange(12.0).reshape(3, 4).T",
            "np.arange(40.0).reshape(5, 8)[::-2, 1::3]",
            "ls.direct(200, 96, [3, 4], [-32, 8])",
            "np.ones((1, 1))",
        ] {
            let a = ev(py, expr);
            let vars = [("a", &a)];
            let twin: f64 = eval(py, "capi.total(a)", &vars).unwrap().extract().unwrap();
            assert_eq!(total.call(py, (&a,)).unwrap(), twin, "total({expr})");
            let twin: f64 = eval(py, "capi.row_sum(a, 0)", &vars)
                .unwrap()
                .extract()
                .unwrap();
            assert_eq!(
                row_sum.call(py, (&a, 0)).unwrap(),
                twin,
                "row_sum({expr}, 0)"
            );
            let w = scaled.call(py, (&a, -1.5)).unwrap();
            assert_eq!(w.ndim(), 2);
            assert_eq!(w.acquisition_count(), 1);
            // SAFETY: nothing writes the new array while it is read.
            let ours = unsafe { w.view::<f64>() }.unwrap().to_vec().unwrap();
            let twin: Vec<Vec<f64>> = eval(py, "np.asarray(capi.scaled(a, -1.5)).tolist()", &vars)
                .unwrap()
                .extract()
                .unwrap();
            assert_eq!(ours, twin.concat(), "scaled({expr})");
            // The returned view passes back in (a CythonSlice argument).
            let twin: f64 = eval(py, "capi.total(capi.scaled(a, -1.5))", &vars)
                .unwrap()
                .extract()
                .unwrap();
            assert_eq!(total.call(py, (&w,)).unwrap(), twin);
            cases += 4;
        }
        let a = ev(py, "np.arange(5.0) + 0.5");
        let twin: f64 = eval(py, "capi.first(a)", &[("a", &a)])
            .unwrap()
            .extract()
            .unwrap();
        assert_eq!(first.call(py, (&a,)).unwrap(), twin);
        // The raw pointer API, its signature derived from the pointer type.
        let sum_ptr: SumPtr = capi_function(&capi(py), "capi_sum_ptr").unwrap();
        let data = [1.0, 2.5, 4.0];
        // SAFETY: `data` holds the 3 doubles the function reads.
        assert_eq!(unsafe { sum_ptr(data.as_ptr(), 3) }, 7.5);
        report(
            "capi: calls return what the def twins return",
            cases + 2,
            cases + 2,
            0,
        );
    });
}

#[test]
fn error_returns_raise_what_the_def_twins_raise() {
    with_python(|py| {
        let total = function::<Total>(py, "capi_total");
        let row_sum = function::<RowSum>(py, "capi_row_sum");
        let scaled = function::<Scaled>(py, "capi_scaled");
        let view_of = function::<ViewOf>(py, "capi_view_of");
        let strlen = function::<Strlen>(py, "capi_strlen");
        let mut cases = 0;
        let mut same = |ours: PyErr, expr: &str, vars: &[(&str, &Bound<'_, PyAny>)]| {
            assert_eq!(err_of(py, &ours), twin_err(py, expr, vars), "{expr}");
            cases += 1;
        };
        // except? -1 that raises
        let empty = ev(py, "np.ones((0, 3))");
        same(
            total.call(py, (&empty,)).unwrap_err(),
            "capi.total(a)",
            &[("a", &empty)],
        );
        let a = ev(py, "np.ones((2, 3))");
        same(
            row_sum.call(py, (&a, 2)).unwrap_err(),
            "capi.row_sum(a, 2)",
            &[("a", &a)],
        );
        same(
            row_sum.call(py, (&a, -1)).unwrap_err(),
            "capi.row_sum(a, -1)",
            &[("a", &a)],
        );
        // A view result's error return (memview NULL)
        same(
            scaled.call(py, (&a, 0.0)).unwrap_err(),
            "capi.scaled(a, 0.0)",
            &[("a", &a)],
        );
        // ... from an object Cython refuses inside the function
        for expr in ["np.ones((2, 2), dtype=np.float32)", "np.ones(3)", "'text'"] {
            let o = ev(py, expr);
            same(
                view_of.call(py, (&o,)).unwrap_err(),
                "capi.view_of(o)",
                &[("o", &o)],
            );
        }
        // Arguments Cython refuses when it converts them, and `None` (Cython's None view,
        // which the function finds empty)
        for expr in [
            "np.ones(3)",
            "np.ones((2, 2), dtype=np.int64)",
            "np.ones((2, 2), dtype='>f8')",
            "b'ab'",
            "None",
        ] {
            let o = ev(py, expr);
            same(
                total.call(py, (&o,)).unwrap_err(),
                "capi.total(o)",
                &[("o", &o)],
            );
        }
        let first = function::<First>(py, "capi_first");
        let strided = ev(py, "np.arange(6.0)[::2]");
        same(
            first.call(py, (&strided,)).unwrap_err(),
            "capi.first(o)",
            &[("o", &strided)],
        );
        // except -1
        let positive = function::<Positive>(py, "capi_positive");
        assert_eq!(positive.call(py, (4,)).unwrap(), 4);
        same(
            positive.call(py, (0,)).unwrap_err(),
            "capi.positive(0)",
            &[],
        );
        // except * (void)
        let check = function::<Check>(py, "capi_check");
        same(check.call(py, (-2,)).unwrap_err(), "capi.check(-2)", &[]);
        same(
            strlen.call(py, (c"",)).unwrap_err(),
            "capi.strlen_(b'')",
            &[],
        );
        // noexcept: Cython prints the exception and returns 0, to Rust as to Python.
        let quiet = function::<Quiet>(py, "capi_quiet");
        let twin: f64 = ev(py, "capi.quiet(-1.0)").extract().unwrap();
        assert_eq!(quiet.call(py, (-1.0,)).unwrap(), twin);
        assert!(PyErr::take(py).is_none());
        report(
            "capi: error returns raise what the def twins raise",
            cases + 1,
            cases + 1,
            0,
        );
    });
}

#[test]
fn cython_slices_are_checked_as_cython_checks_views() {
    with_python(|py| {
        let view_of_1d = function::<ViewOf1d>(py, "capi_view_of_1d");
        let total = function::<Total>(py, "capi_total");
        let first = function::<First>(py, "capi_first");
        let maybe = function::<Maybe>(py, "capi_maybe");
        let arr = ev(py, "np.arange(10.0)");
        let v = view_of_1d.call(py, (&arr,)).unwrap();
        assert_eq!((v.ndim(), v.acquisition_count()), (1, 1));
        // A 1-d view for a 2-d parameter: Cython's message for the same view from Python.
        let err = total.call(py, (&v,)).unwrap_err();
        assert_eq!(
            err_of(py, &err),
            twin_err(py, "capi.total(capi.view_of_1d(a))", &[("a", &arr)])
        );
        // A strided view for `const double[::1]`.
        let w = v.slice(&s![..;2]).unwrap();
        let err = first.call(py, (&w,)).unwrap_err();
        assert_eq!(
            err_of(py, &err),
            twin_err(py, "capi.first(capi.view_of_1d(a)[::2])", &[("a", &arr)])
        );
        // A contiguous one passes, and the count is unchanged (arguments are borrowed).
        let twin: f64 = eval(py, "capi.first(capi.view_of_1d(a)[3:])", &[("a", &arr)])
            .unwrap()
            .extract()
            .unwrap();
        let u = v.slice(&s![3..]).unwrap();
        assert_eq!(first.call(py, (&u,)).unwrap(), twin);
        assert_eq!(v.acquisition_count(), 3);
        // A read-only view for a parameter that is not const (refused before Cython sees it).
        let ro = ev(py, "ls.np_view('<f8', 80, 0, [10], [8], True)");
        let r = view_of_1d.call(py, (&ro,)).unwrap();
        assert!(r.readonly());
        let twin: f64 = eval(py, "capi.first(ro)", &[("ro", &ro)])
            .unwrap()
            .extract()
            .unwrap();
        assert_eq!(
            first.call(py, (&r,)).unwrap(),
            twin,
            "a const parameter takes it"
        );
        let err = maybe.call(py, (&r, 1)).unwrap_err();
        assert_eq!(
            err.value(py).to_string(),
            "argument 1 of 'capi.capi_maybe': a read-only view, for a memoryview parameter not \
             declared const"
        );
        // A Cython-semantics slice that leaves its buffer: Cython's v[3:2:2] of 3 elements
        // selects one element past the end, which Cython would read; refused as
        // `CythonSlice::view` refuses it.
        let three = view_of_1d.call(py, (&ev(py, "np.arange(3.0)"),)).unwrap();
        let out = three.slice_with(&s![3..2;2], Semantics::Cython).unwrap();
        assert_eq!(out.as_raw().shape[0], 1);
        let err = maybe.call(py, (&out, 1)).unwrap_err();
        // SAFETY: nothing writes the array.
        let refused = unsafe { out.view::<f64>() }.err().unwrap();
        assert_eq!(err_of(py, &err), err_of(py, &refused));
        assert_eq!(three.acquisition_count(), 2);
        report(
            "capi: CythonSlice arguments checked as Cython checks views",
            5,
            5,
            0,
        );
    });
}

/// The partner release's `exchange_other` module (built by build.rs with
/// `CYVIEW_OTHER_PYTHON`), and this release's `exchange`.
fn exchange_views(py: Python<'_>, obj: &Bound<'_, PyAny>) -> (CythonSlice, CythonSlice) {
    view_decl!(Generic = "double[::view.generic, ::view.generic]");
    let dir = env!("CYVIEW_OTHER_FIXTURES_DIR");
    assert!(
        !dir.is_empty(),
        "no partner release: build with CYVIEW_OTHER_PYTHON set (ci/test does)"
    );
    let path = py.import("sys").unwrap().getattr("path").unwrap();
    if !path.contains(dir).unwrap() {
        path.call_method1("insert", (0, dir)).unwrap();
    }
    let view = |module: &str| {
        let m = py.import(module).unwrap();
        // SAFETY: exch_from_object returns `double[::view.generic, ::view.generic]`.
        let f = unsafe {
            CythonFunction::<fn(Object) -> SliceOf<Generic>>::new(&m, "exch_from_object")
        }
        .unwrap();
        f.call(py, (obj,)).unwrap()
    };
    (view("exchange"), view("exchange_other"))
}

#[test]
fn views_pass_only_to_functions_of_their_own_module() {
    with_python(|py| {
        let total = function::<Total>(py, "capi_total");
        let view_of = function::<ViewOf>(py, "capi_view_of");
        let a = ev(py, "np.arange(12.0).reshape(3, 4)[:, ::-1]");
        let twin: f64 = eval(py, "capi.total(a)", &[("a", &a)])
            .unwrap()
            .extract()
            .unwrap();
        // A view the callee's own module made: its memoryview object is of the module's
        // type, whose cdef methods (vtable) the callee calls.
        let own = view_of.call(py, (&a,)).unwrap();
        assert_eq!(total.call(py, (&own,)).unwrap(), twin);
        // Views of other modules are refused, even of the same release: the vtable of the
        // memoryview type differs between releases of one layout family (3.3 added an entry
        // before `_get_base`), and nothing tells a module's release reliably.
        let (same, other) = exchange_views(py, &a);
        assert_ne!(same.abi(), other.abi());
        let family = |abi| {
            if abi == MemviewAbi::Cython0_29 {
                "Cython 0.29"
            } else {
                "Cython 3"
            }
        };
        for v in [&same, &other] {
            let err = total.call(py, (v,)).unwrap_err();
            assert_eq!(
                err.value(py).to_string(),
                format!(
                    "argument 1 of 'capi.capi_total': a view made by another Cython module ({}) \
                     cannot be passed to this one ({}): the function calls its memoryview \
                     object's methods through its own module's type; pass the buffer object \
                     instead",
                    family(v.abi()),
                    family(own.abi())
                )
            );
        }
        // Refusals take no count.
        assert_eq!(
            (
                same.acquisition_count(),
                other.acquisition_count(),
                own.acquisition_count()
            ),
            (1, 1, 1)
        );
        report("capi: views of other modules", 3, 3, 0);
    });
}

#[test]
fn rust_buffers_go_through_real_memoryview_objects() {
    with_python(|py| {
        let total = function::<Total>(py, "capi_total");
        let as_array = function::<AsArray>(py, "capi_as_array");
        let as_object = function::<AsArray>(py, "capi_as_object");
        let fill = function::<Fill>(py, "capi_fill");
        let keep = function::<Keep>(py, "capi_keep");
        let forget = function::<Forget>(py, "capi_forget");
        let mt = total.memview_type().unwrap();
        assert_eq!(
            mt.abi(),
            if cython_release().starts_with("0.29") {
                MemviewAbi::Cython0_29
            } else {
                MemviewAbi::Cython3
            }
        );
        let data: Vec<f64> = (0..6).map(f64::from).collect();
        let rb = Bound::new(py, RustBuffer::from_vec(data, &[2, 3], false).unwrap()).unwrap();
        let any = rb.as_any();
        let vars = [("rb", any)];
        let before = refcount(any);
        let gc = || {
            py.import("gc").unwrap().call_method0("collect").unwrap();
        };

        // Element reads, as the def twin reads them.
        let twin: f64 = eval(py, "capi.total(rb)", &vars)
            .unwrap()
            .extract()
            .unwrap();
        for _ in 0..100 {
            assert_eq!(total.call(py, (&rb,)).unwrap(), twin);
        }
        gc();
        assert_eq!((rb.get().export_count(), refcount(any)), (0, before));

        // np.asarray(v) inside Cython: an array over the Rust memory, which keeps the export
        // alive (through capi's memoryview object) until it is dropped.
        let arr = as_array.call(py, (&rb,)).unwrap();
        let twin: Vec<Vec<f64>> = eval(py, "capi.as_array(rb).tolist()", &vars)
            .unwrap()
            .extract()
            .unwrap();
        assert_eq!(
            arr.call_method0("tolist")
                .unwrap()
                .extract::<Vec<Vec<f64>>>()
                .unwrap(),
            twin
        );
        let addr: usize = eval(py, "a.__array_interface__['data'][0]", &[("a", &arr)])
            .unwrap()
            .extract()
            .unwrap();
        assert_eq!(addr, rb.get().data_ptr().unwrap() as usize);
        gc();
        assert_eq!(rb.get().export_count(), 1);
        drop(arr);
        gc();
        assert_eq!((rb.get().export_count(), refcount(any)), (0, before));

        // `return v`: a memoryview object of capi whose base is the RustBuffer.
        let obj = as_object.call(py, (&rb,)).unwrap();
        let mv_type = mt.type_object(py);
        assert!(obj.is_instance(mv_type).unwrap());
        assert!(obj.getattr("base").unwrap().is(any));
        let twin: Vec<Vec<f64>> = eval(py, "np.asarray(capi.as_object(rb)).tolist()", &vars)
            .unwrap()
            .extract()
            .unwrap();
        let ours: Vec<Vec<f64>> = eval(py, "np.asarray(o).tolist()", &[("o", &obj)])
            .unwrap()
            .extract()
            .unwrap();
        assert_eq!(ours, twin);
        drop(obj);
        gc();
        assert_eq!((rb.get().export_count(), refcount(any)), (0, before));

        // Writes into the Rust memory (a writable, C-contiguous parameter).
        assert_eq!(fill.call(py, (&rb, 2.5)).unwrap(), 0);
        let twin: Vec<Vec<f64>> = eval(py, "np.asarray(rb).tolist()", &vars)
            .unwrap()
            .extract()
            .unwrap();
        assert_eq!(twin, vec![vec![2.5; 3]; 2]);
        // A read-only buffer for a writable parameter: the exporter's refusal, as from Python.
        let ro = Bound::new(
            py,
            RustBuffer::from_vec(vec![1.0f64; 4], &[2, 2], true).unwrap(),
        )
        .unwrap();
        let err = fill.call(py, (&ro, 1.0)).unwrap_err();
        assert_eq!(
            err_of(py, &err),
            twin_err(py, "capi.fill(ro, 1.0)", &[("ro", ro.as_any())])
        );

        // `kept = v` in a module global: the memoryview object (and the export) outlive the
        // call until Cython lets go.
        let line = Bound::new(
            py,
            RustBuffer::from_vec(vec![1.0f64, 2.0], &[2], false).unwrap(),
        )
        .unwrap();
        let line_before = refcount(line.as_any());
        assert_eq!(keep.call(py, (&line,)).unwrap(), 0);
        gc();
        assert_eq!(line.get().export_count(), 1);
        assert_eq!(forget.call(py, ()).unwrap(), 0);
        gc();
        assert_eq!(
            (line.get().export_count(), refcount(line.as_any())),
            (0, line_before)
        );

        // Made once, passed many times: a CythonSlice from the module's memoryview type.
        let v = mt.acquire(any, &Grid::DECLARATION).unwrap();
        assert_eq!(v.acquisition_count(), 1);
        for _ in 0..100 {
            assert_eq!(total.call(py, (&v,)).unwrap(), 15.0);
        }
        assert_eq!((v.acquisition_count(), rb.get().export_count()), (1, 1));
        drop(v);
        gc();
        assert_eq!((rb.get().export_count(), refcount(any)), (0, before));
        report("capi: RustBuffers through real memoryview objects", 7, 7, 0);
    });
}

#[test]
fn results_own_their_acquisitions() {
    with_python(|py| {
        let view_of_1d = function::<fn(Object) -> SliceOf<LineMut>>(py, "capi_view_of_1d");
        let maybe = function::<Maybe>(py, "capi_maybe");
        let keep = function::<Keep>(py, "capi_keep");
        let forget = function::<Forget>(py, "capi_forget");
        let arr = ev(py, "np.arange(4.0)");
        let before = refcount(&arr);
        let v = view_of_1d.call(py, (&arr,)).unwrap();
        assert_eq!(v.acquisition_count(), 1);
        for _ in 0..100 {
            let w = maybe.call(py, (&v, 1)).unwrap().unwrap();
            assert_eq!((w.ndim(), w.acquisition_count()), (1, 2));
            assert!(maybe.call(py, (&v, 0)).unwrap().is_none());
        }
        assert_eq!(v.acquisition_count(), 1);
        keep.call(py, (&v,)).unwrap();
        assert_eq!(v.acquisition_count(), 2);
        forget.call(py, ()).unwrap();
        assert_eq!(v.acquisition_count(), 1);
        drop(v);
        py.import("gc").unwrap().call_method0("collect").unwrap();
        assert_eq!(refcount(&arr), before);
        report("capi: results own their acquisitions", 3, 3, 0);
    });
}

#[test]
fn wrong_signatures_and_modules_are_refused() {
    with_python(|py| {
        let m = capi(py);
        // SAFETY: refused before any call.
        let err = unsafe { CythonFunction::<fn(SliceOf<Grid>) -> f32>::new(&m, "capi_total") }
            .unwrap_err();
        assert_eq!(
            err.value(py).to_string(),
            format!(
                "cdef api function 'capi.capi_total' has the C signature 'double \
                 (__Pyx_memviewslice)', but the Rust type {} stands for 'float \
                 (__Pyx_memviewslice)'",
                std::any::type_name::<fn(SliceOf<Grid>) -> f32>()
            )
        );
        // SAFETY: as above.
        let err =
            unsafe { CythonFunction::<fn(SliceOf<Grid>, i64) -> f64>::new(&m, "capi_row_sum") }
                .unwrap_err();
        assert!(
            err.value(py).to_string().ends_with(
                "stands for 'double (__Pyx_memviewslice, long)' (parameter 2 may also be \
                 PY_LONG_LONG or int64_t)"
            ),
            "{}",
            err.value(py)
        );
        let err = capi_function::<unsafe extern "C" fn(MemviewSlice) -> f64>(&m, "capi_nope")
            .unwrap_err();
        assert!(err.value(py).to_string().starts_with(
            "\"module 'capi' has no cdef api function 'capi_nope' (it has: capi_as_array, "
        ));
        let sys = py.import("sys").unwrap();
        let err = MemviewType::of_module(&sys).unwrap_err();
        assert_eq!(
            err.value(py).to_string(),
            "module 'sys' has no __file__: it is not a compiled Cython module"
        );
        let numpy = py.import("numpy").unwrap();
        let err = MemviewType::of_module(&numpy).unwrap_err();
        assert!(err
            .value(py)
            .to_string()
            .starts_with("module 'numpy' defines no Cython memoryview type"));
        // A type named like Cython's memoryview in its module, of no known release's size.
        let err = MemviewType::of_module(&py.import("fakemv").unwrap()).unwrap_err();
        let size: usize = ev(py, "__import__('fakemv').memoryview.__basicsize__")
            .extract()
            .unwrap();
        assert_eq!(
            err.value(py).to_string(),
            format!(
                "'fakemv.memoryview' objects have {size} bytes, which no known Cython release \
                 gives its memoryview (168: 0.29; 160: 3.0-3.3): unknown release, not touching it"
            )
        );
        report("capi: wrong signatures and modules refused", 5, 5, 0);
    });
}

#[test]
fn an_exception_set_before_the_call_is_refused() {
    with_python(|py| {
        let positive = function::<Positive>(py, "capi_positive");
        pyo3::exceptions::PyKeyError::new_err("stale").restore(py);
        let err = positive.call(py, (1,)).unwrap_err();
        assert_eq!(
            err_of(py, &err),
            (
                "SystemError".to_string(),
                "an exception was already set before calling cdef api function \
                 'capi.capi_positive' (not called)"
                    .to_string()
            )
        );
        assert_eq!(
            err_of(py, &err.cause(py).unwrap()),
            ("KeyError".to_string(), "'stale'".to_string())
        );
        assert!(PyErr::take(py).is_none());
        assert_eq!(positive.call(py, (1,)).unwrap(), 1);
        report("capi: an exception set before the call", 1, 1, 0);
    });
}
