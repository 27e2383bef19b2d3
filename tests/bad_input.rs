//! Bad input to `cyview_py::acquire`, next to Cython's own acquisition of the same object:
//! objects without the buffer protocol, `None`, buffers of more dimensions than Cython
//! handles, and exporters whose format string is malformed or truncated (hand-picked and
//! random). Rust fails exactly as Cython does (same exception kind and message) wherever
//! Cython's behaviour is defined, never crashes, and leaves every refcount and export count
//! as it found it. Also: an acquired view is read and dropped on a thread without the GIL.

mod support;

use cyview::format::{check_format_outcome, Outcome};
use cyview::MemviewSlice;
use cyview_py::{acquire, acquire_optional, Declaration, RustBuffer};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use pyo3::prelude::*;
use std::sync::LazyLock;

use support::behaviour::{behaviour_tests, Pass, Tally};
use support::{acquire_declarations, err_of, refcount, report, with_python, Decl};

/// Cython's `cdef <decl> v = obj` and `cyview_py::acquire` on `obj`: whether Cython accepted,
/// and whether Rust did the same: both fail the same way, or both succeed; the object's
/// refcount is back where it was afterwards.
fn same_as_cython(
    py: Python<'_>,
    d: &Decl,
    obj: &Bound<'_, PyAny>,
    what: &str,
) -> (bool, Result<(), String>) {
    let before = refcount(obj);
    let cy = py
        .import("live_acquire")
        .unwrap()
        .getattr(d.name.as_str())
        .unwrap()
        .call1((obj.clone(),));
    let rust = acquire(obj, &Declaration::new(d.dtype, &d.specs, d.writable));
    let accepted = cy.is_ok();
    match (&cy, &rust) {
        (Ok(_), Ok(_)) => {}
        (Err(c), Err(r)) if err_of(py, c) == err_of(py, r) => {}
        (c, r) => {
            return (
                accepted,
                Err(format!(
                    "cdef {} v = {what}: Cython {:?}, Rust {:?}",
                    d.text,
                    c.as_ref().map(|_| ()).map_err(|e| err_of(py, e)),
                    r.as_ref().map(|_| ()).map_err(|e| err_of(py, e))
                )),
            )
        }
    };
    drop((cy, rust));
    py.import("gc").unwrap().call_method0("collect").unwrap();
    if refcount(obj) != before {
        return (
            accepted,
            Err(format!(
                "cdef {} v = {what}: refcount {before} -> {}",
                d.text,
                refcount(obj)
            )),
        );
    }
    (accepted, Ok(()))
}

const NOT_A_BUFFER: &str =
    "an object without the buffer protocol is refused with Cython's TypeError and message";
const WRONG_NDIM: &str =
    "a buffer of another number of dimensions (a 0-d scalar, 9 to 64 dimensions) is refused as Cython refuses it";
const NON_BUFFER_BEHAVIOURS: &[&str] = &[NOT_A_BUFFER, WRONG_NDIM];

/// Objects without a buffer, and buffers of more dimensions than Cython handles, against
/// every seventh declaration (shared by the tests below).
static NON_BUFFERS: LazyLock<Pass> = LazyLock::new(|| {
    let decls = acquire_declarations();
    let tally = Tally::new("bad input: non-buffers and ndim", NON_BUFFER_BEHAVIOURS);
    with_python(|py| {
        let exprs = [
            (NOT_A_BUFFER, "5"),
            (NOT_A_BUFFER, "3.5"),
            (NOT_A_BUFFER, "'text'"),
            (NOT_A_BUFFER, "[1.0, 2.0]"),
            (NOT_A_BUFFER, "(1.0,)"),
            (NOT_A_BUFFER, "{}"),
            (NOT_A_BUFFER, "object()"),
            (NOT_A_BUFFER, "range(3)"),
            (WRONG_NDIM, "__import__('numpy').float64(1.0)"),
            // More dimensions than any declaration, up to NumPy's limit of 64.
            (WRONG_NDIM, "__import__('numpy').zeros((1,) * 9)"),
            (WRONG_NDIM, "__import__('numpy').zeros((2,) * 12)"),
            (WRONG_NDIM, "__import__('numpy').zeros((1,) * 64)"),
            (
                WRONG_NDIM,
                "__import__('_testbuffer').ndarray([1.0], shape=[1] * 20, format='d')",
            ),
        ];
        for (behaviour, expr) in exprs {
            let obj = py
                .eval(&std::ffi::CString::new(expr).unwrap(), None, None)
                .unwrap();
            for d in decls.iter().step_by(7) {
                tally.count(behaviour);
                match same_as_cython(py, d, &obj, expr) {
                    (false, Ok(())) => {}
                    (true, Ok(())) => {
                        tally.fail(behaviour, format!("{expr}: accepted by {}", d.text))
                    }
                    (_, Err(e)) => tally.fail(behaviour, e),
                }
            }
        }
    });
    let outcome = tally.finish();
    let (cases, failed) = (outcome.total(), outcome.failed());
    report(
        "bad input: non-buffers and ndim",
        cases,
        cases - failed,
        failed,
    );
    outcome
});

behaviour_tests!(mod non_buffers: NON_BUFFERS, NON_BUFFER_BEHAVIOURS, at_least 1000;
    an_object_without_the_buffer_protocol_is_refused_with_cythons_type_error => NOT_A_BUFFER,
    a_buffer_of_another_number_of_dimensions_is_refused_as_cython_refuses_it => WRONG_NDIM,
);

#[test]
fn none_is_a_none_view_in_cython_and_an_option_in_rust() {
    let decls = acquire_declarations();
    with_python(|py| {
        // (None's refcount is not checked: every thread of the test process shares it.)
        let none = py.None().into_bound(py);
        for d in &decls {
            let cy = py
                .import("live_acquire")
                .unwrap()
                .getattr(d.name.as_str())
                .unwrap()
                .call1((none.clone(),))
                .unwrap();
            // Cython's `cdef double[:] v = None` holds None, and returns it.
            assert!(cy.is_none(), "{}", d.text);
            let decl = Declaration::new(d.dtype, &d.specs, d.writable);
            assert!(acquire_optional(&none, &decl).unwrap().is_none());
            let err = acquire(&none, &decl).err().expect("acquire refuses None");
            assert_eq!(
                err_of(py, &err),
                (
                    "TypeError".to_string(),
                    "a bytes-like object is required, not 'NoneType'".to_string()
                )
            );
        }
    });
}

/// An exporter with the given format string over 8-byte items (1-d, 3 items).
fn exporter_with_format<'py>(py: Python<'py>, format: &str) -> Option<Bound<'py, RustBuffer>> {
    let memory: &'static mut [u64] = Box::leak(vec![0u64; 3].into_boxed_slice());
    let mut slice = MemviewSlice::EMPTY;
    slice.data = memory.as_mut_ptr().cast();
    slice.shape[0] = 3;
    slice.strides[0] = 8;
    slice.suboffsets[0] = -1;
    // SAFETY: the 3 items of 8 bytes lie in `memory`, which is leaked (valid forever, from
    // any thread); the format is what the consumer checks, not what the bytes are.
    let rb = unsafe { RustBuffer::from_raw(slice, 1, format, 8, false, None) }.ok()?;
    Some(Bound::new(py, rb).unwrap())
}

const FORMAT_ACCEPTED: &str = "a format string Cython accepts is accepted, its export released";
const FORMAT_REFUSED: &str = "a malformed or truncated format string is refused with Cython's exception and message, its export released";
const FORMAT_UNDEFINED: &str =
    "a format string on which Cython crashes or hangs is refused with a ValueError";
const FORMAT_BEHAVIOURS: &[&str] = &[FORMAT_ACCEPTED, FORMAT_REFUSED, FORMAT_UNDEFINED];

/// Hand-picked and 2,000 random (the same on every run) format strings of `RustBuffer`
/// exporters against the 1-d declarations (shared by the tests below): the number of
/// strings compared with Cython, and the outcome.
static FORMATS: LazyLock<(usize, Pass)> = LazyLock::new(|| {
    let decls: Vec<Decl> = acquire_declarations()
        .into_iter()
        .filter(|d| d.specs.len() == 1)
        .collect();
    let fixed = [
        "",
        "T{d",
        "T{d:x",
        "T{d:x:",
        "T{",
        "}",
        "d}",
        "d}junk",
        "(2",
        "(2,",
        "(2)",
        "(1)d",
        "Z",
        "Zq",
        "4",
        "4x",
        "xd",
        "dx",
        "@",
        "=d",
        "<d",
        ">d",
        "!d",
        "^d",
        "=q",
        "=l",
        "ll",
        "T{ii}",
        "T{i:x:i:y:}",
        "T{i:x:4xd:y:}",
        "^T{i:x:4xd:y:}",
        "T{i:x:=d:y:}",
        "Zd",
        "Zf",
        "2f",
        "ff",
        "B",
        "8B",
        "8s",
        "8p",
        "?",
        "O",
        "P",
        "g",
        "e",
        "w",
        "dd",
        "d ",
        " d",
        "d\t",
        "2d",
        "0d",
        "1d",
        "T{d}T{d}",
        "T{T{d}}",
        "(2)f",
    ];
    let alphabet: Vec<char> = "dfiqlhbBcZT{}():x@=<>!^0123456789 s?gPO".chars().collect();
    let random = proptest::collection::vec(proptest::sample::select(alphabet), 0..10)
        .prop_map(|v| v.into_iter().collect::<String>());
    // The same 2,000 random strings on every run.
    let mut runner = TestRunner::deterministic();
    let mut strings: Vec<String> = fixed.iter().map(|s| s.to_string()).collect();
    for _ in 0..2000 {
        strings.push(random.new_tree(&mut runner).unwrap().current());
    }
    let tally = Tally::new("bad input: format strings", FORMAT_BEHAVIOURS);
    let cases = with_python(|py| {
        let (mut cases, mut undefined, mut accepted) = (0usize, 0usize, 0usize);
        for (k, f) in strings.iter().enumerate() {
            let Some(obj) = exporter_with_format(py, f) else {
                continue;
            };
            let d = &decls[k % decls.len()];
            if !matches!(
                check_format_outcome(f.as_bytes(), d.dtype),
                Outcome::Accepted | Outcome::Raised(_) | Outcome::CharOutOfRange
            ) {
                // Cython would crash or hang; Rust refuses with a ValueError.
                tally.count(FORMAT_UNDEFINED);
                match acquire(
                    obj.as_any(),
                    &Declaration::new(d.dtype, &d.specs, d.writable),
                ) {
                    Err(e) if err_of(py, &e).0 == "ValueError" => {}
                    Err(e) => tally.fail(FORMAT_UNDEFINED, format!("{f:?}: {:?}", err_of(py, &e))),
                    Ok(_) => tally.fail(FORMAT_UNDEFINED, format!("{f:?}: accepted")),
                }
                undefined += 1;
                continue;
            }
            cases += 1;
            let (cython_accepts, same) =
                same_as_cython(py, d, obj.as_any(), &format!("RustBuffer(format={f:?})"));
            let behaviour = if cython_accepts {
                accepted += 1;
                FORMAT_ACCEPTED
            } else {
                FORMAT_REFUSED
            };
            tally.count(behaviour);
            if let Err(e) = same {
                tally.fail(behaviour, e);
            }
            if obj.get().export_count() != 0 {
                tally.fail(
                    behaviour,
                    format!("{f:?}: export count {}", obj.get().export_count()),
                );
            }
        }
        println!(
            "format strings: {cases} compared with Cython ({accepted} accepted), {undefined} \
             where Cython would crash or hang"
        );
        cases
    });
    let outcome = tally.finish();
    // The undefined formats are not compared with Cython (it would crash or hang).
    let failed = outcome.failed()
        - outcome
            .failures
            .get(&Some(FORMAT_UNDEFINED))
            .map_or(0, Vec::len);
    report("bad input: format strings", cases, cases - failed, failed);
    (cases, outcome)
});

behaviour_tests!(mod format_strings: FORMATS.1, FORMAT_BEHAVIOURS, at_least 1500;
    a_format_string_cython_accepts_is_accepted => FORMAT_ACCEPTED,
    a_malformed_or_truncated_format_string_is_refused_with_cythons_message => FORMAT_REFUSED,
    a_format_on_which_cython_crashes_or_hangs_is_refused_with_a_value_error => FORMAT_UNDEFINED,
);

/// At least 1,500 format strings are compared with Cython (the others are those on which
/// Cython crashes or hangs).
#[test]
fn at_least_1500_format_strings_are_compared_with_cython() {
    assert!(FORMATS.0 >= 1500, "{}", FORMATS.0);
}

/// Failing acquisitions (wrong ndim, wrong dtype, getbuffer failing) leave the exporter's
/// refcount and, for a `RustBuffer`, its export count as they were.
#[test]
fn failed_acquisitions_release_everything() {
    let decls = acquire_declarations();
    let d = decls.iter().find(|d| d.text == "double[:, ::1]").unwrap();
    with_python(|py| {
        let decl = Declaration::new(d.dtype, &d.specs, d.writable);
        for expr in [
            "__import__('numpy').zeros(4)",
            "__import__('numpy').zeros((2, 2), dtype='f4')",
            "__import__('numpy').zeros((2, 4))[:, ::2]",
            "__import__('_testbuffer').ndarray([1.0] * 4, shape=[2, 2], format='d', flags=__import__('_testbuffer').ND_GETBUF_FAIL)",
        ] {
            let obj = py
                .eval(&std::ffi::CString::new(expr).unwrap(), None, None)
                .unwrap();
            let before = refcount(&obj);
            for _ in 0..100 {
                assert!(acquire(&obj, &decl).is_err(), "{expr}");
            }
            assert_eq!(refcount(&obj), before, "{expr}");
        }
        let rb = Bound::new(
            py,
            RustBuffer::from_elements(vec![0f64; 4], &[4], &[8], 0, false).unwrap(),
        )
        .unwrap();
        let before = refcount(rb.as_any());
        for _ in 0..100 {
            assert!(acquire(rb.as_any(), &decl).is_err());
        }
        assert_eq!(rb.get().export_count(), 0);
        assert_eq!(refcount(rb.as_any()), before);
    });
}

/// A view acquired with the GIL is read on another thread that never attaches, and
/// dropped there (the release attaches); the exporter's refcount comes back.
#[test]
fn views_are_read_and_dropped_without_the_gil() {
    let decls = acquire_declarations();
    let d = decls
        .iter()
        .find(|d| d.text == "const double[:, :]")
        .unwrap();
    let (view, expected, obj) = with_python(|py| {
        let obj = py
            .eval(
                c"__import__('numpy').arange(60.0).reshape(6, 10)[::-2, 1::3]",
                None,
                None,
            )
            .unwrap();
        let expected: f64 = obj.call_method0("sum").unwrap().extract().unwrap();
        let view = acquire(&obj, &Declaration::new(d.dtype, &d.specs, d.writable)).unwrap();
        (view, expected, obj.unbind())
    });
    let before = with_python(|py| refcount(obj.bind(py)));
    let sum = with_python(|py| {
        py.detach(|| {
            std::thread::spawn(move || {
                // SAFETY: nothing writes the array while this thread reads it.
                let total: f64 = unsafe { view.view::<f64>() }.unwrap().iter().sum();
                drop(view);
                total
            })
            .join()
            .unwrap()
        })
    });
    assert_eq!(sum, expected);
    with_python(|py| assert_eq!(refcount(obj.bind(py)), before - 1));
}
