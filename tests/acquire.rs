//! Acquisition: `cyview_py::acquire` against Cython's own `cdef <decl> v = obj` for random
//! exporters (NumPy views of many dtypes and byte orders, strided, read-only, structured and
//! packed; `array.array`; bytes, bytearray, memoryview; Cython memoryviews of another module;
//! `_testbuffer.ndarray` with Fortran, PIL, read-only and failing getbuffer) × the declarations
//! of `live_acquire.pyx`: every axis-spec combination Cython accepts up to 3-d for `double`,
//! const and not, and a sample of them for `float`, `int`, `long long`, `unsigned char`,
//! `short`, `double complex`, `float complex`, a struct and a packed struct. Each
//! declaration's specs and request flags are read from the C that the release under test
//! generated. Rust must succeed exactly when Cython does, with the same data pointer, shape,
//! strides and suboffsets, or fail with the same exception kind and message.
//!
//! The random pass runs once per test binary (`ACQUISITION`); each case is attributed to the
//! behaviour Cython showed with it (accepts a direct or an indirect buffer; refuses for the
//! number of dimensions, the format, contiguity, direct/indirect access, a read-only buffer,
//! the exporter's own error; crashes on the format), and `acquisition::*` holds one test per
//! behaviour, so that a failure names the behaviour that broke (`support::behaviour`).

mod support;

use std::sync::LazyLock;

use cyview_py::{acquire, Declaration};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use pyo3::prelude::*;
use support::behaviour::{behaviour_tests, Pass, Tally};
use support::{acquire_declarations, err_of, eval, read_buffer, report, with_python, UNDEFINED};

/// NumPy dtypes of the exporters: (dtype as `ls.np_any` takes it, item size).
const NP_DTYPES: &[(&str, isize)] = &[
    ("'<f8'", 8),
    ("'>f8'", 8),
    ("'<f4'", 4),
    ("'<i8'", 8),
    ("'<i4'", 4),
    ("'>i4'", 4),
    ("'<i2'", 2),
    ("'|u1'", 1),
    ("'|i1'", 1),
    ("'|b1'", 1),
    ("'<c16'", 16),
    ("'>c16'", 16),
    ("'<c8'", 8),
    ("('struct', [('x', '<i4'), ('y', '<f8')], True)", 16),
    ("('struct', [('x', '<i4'), ('y', '<f8')], False)", 12),
    ("('struct', [('x', '<i4'), ('y', '<f4')], False)", 8),
    ("('struct', [('x', '<i4'), ('y', '>f8')], True)", 16),
];

/// The NumPy dtype whose items a declared element type describes (the exporters are biased
/// towards the declaration's dtype and ndim, so that half the cases get past the format).
fn natural_dtype(dtype: &str) -> (&'static str, isize) {
    let code = match dtype {
        "double" => "'<f8'",
        "float" => "'<f4'",
        "int" => "'<i4'",
        "long long" => "'<i8'",
        "unsigned char" => "'|u1'",
        "short" => "'<i2'",
        "double complex" => "'<c16'",
        "float complex" => "'<c8'",
        "Pair" => "('struct', [('x', '<i4'), ('y', '<f8')], True)",
        "PPair" => "('struct', [('x', '<i4'), ('y', '<f8')], False)",
        other => panic!("no NumPy dtype for {other}"),
    };
    *NP_DTYPES.iter().find(|(c, _)| *c == code).unwrap()
}

/// Byte strides of the exporter: random multiples of the item size (or of one byte), or
/// C- or Fortran-contiguous.
#[derive(Clone, Copy, Debug)]
enum Layout {
    Random,
    Bytewise,
    C,
    F,
}

/// A buffer exporter, as a Python expression over `live_support` (`ls`) and `live_core`,
/// biased towards the NumPy dtype and ndim of `hint`.
fn exporter(hint: (&'static str, isize), ndim: usize) -> impl Strategy<Value = String> {
    let shape = proptest::collection::vec(0usize..=4, 1..=3);
    let np = (
        prop_oneof![
            1 => proptest::sample::select(NP_DTYPES),
            1 => Just(hint),
        ],
        prop_oneof![
            1 => shape.clone(),
            1 => proptest::collection::vec(0usize..=4, ndim),
        ],
        proptest::collection::vec(prop_oneof![4 => -3isize..=3, 1 => -20isize..=20], 3),
        any::<bool>(),
        prop_oneof![
            Just(Layout::Random),
            Just(Layout::Bytewise),
            Just(Layout::C),
            Just(Layout::F)
        ],
    )
        .prop_map(|((dtype, item), shape, mult, readonly, layout)| {
            let contiguous = |order: &mut dyn Iterator<Item = usize>| {
                let mut strides = vec![0isize; shape.len()];
                let mut step = item;
                for d in order {
                    strides[d] = step;
                    step *= shape[d].max(1) as isize;
                }
                strides
            };
            let strides: Vec<isize> = match layout {
                Layout::Random => mult.iter().take(shape.len()).map(|&m| m * item).collect(),
                Layout::Bytewise => mult[..shape.len()].to_vec(),
                Layout::C => contiguous(&mut (0..shape.len()).rev()),
                Layout::F => contiguous(&mut (0..shape.len())),
            };
            let (mut lo, mut hi) = (0isize, 0isize);
            if !shape.contains(&0) {
                for (&n, &s) in shape.iter().zip(&strides) {
                    let d = (n as isize - 1) * s;
                    if d < 0 {
                        lo += d
                    } else {
                        hi += d
                    }
                }
            }
            let offset = -lo;
            let nbytes = offset + hi + item + 8;
            let py_ro = if readonly { "True" } else { "False" };
            format!("ls.np_any({dtype}, {nbytes}, {offset}, {shape:?}, {strides:?}, {py_ro})")
        });
    let tb = (
        shape.clone(),
        prop_oneof![
            Just("d"),
            Just("f"),
            Just("q"),
            Just("i"),
            Just("h"),
            Just("B")
        ],
        proptest::sample::subsequence(
            vec!["ND_FORTRAN", "ND_PIL", "ND_WRITABLE", "ND_GETBUF_FAIL"],
            0..=3,
        ),
    )
        .prop_map(|(shape, fmt, flags)| {
            let shape: Vec<usize> = shape.iter().map(|&n| n.max(1)).collect();
            format!("ls.testbuffer({shape:?}, '{fmt}', {flags:?})")
        });
    prop_oneof![
        6 => np,
        3 => tb,
        1 => (0usize..=6, any::<bool>()).prop_map(|(n, a)| format!("ls.structured({n}, {})", if a { "True" } else { "False" })),
        1 => (prop_oneof![Just("d"), Just("f"), Just("i"), Just("q"), Just("h"), Just("B"), Just("b")], 0usize..=5).prop_map(|(t, n)| format!("ls.array_array('{t}', {n})")),
        1 => (prop_oneof![Just("bytes"), Just("bytearray"), Just("memoryview")], 0usize..=16).prop_map(|(k, n)| format!("ls.raw_bytes('{k}', {n})")),
        1 => (1usize..=3, 1usize..=4).prop_map(|(nd, n)| format!("live_core.as_mv_{nd}d(ls.np_view('<f8', {b}, 0, {shape:?}, {strides:?}, False))", b = 8 * n.pow(nd as u32) + 8, shape = vec![n; nd], strides = (0..nd).rev().map(|k| 8 * n.pow(k as u32) as isize).collect::<Vec<_>>())),
    ]
}

/// The request flags cyview computes are the ones each release's C passes, for every
/// declaration.
#[test]
fn acquire_requests_the_buffer_flags_the_generated_c_passes() {
    let decls = acquire_declarations();
    assert!(decls.len() >= 600, "{} declarations", decls.len());
    let mut wrong = Vec::new();
    for d in &decls {
        let ours = cyview::raw::pybuf::buffer_flags(&d.specs, d.writable);
        if ours != d.flags {
            wrong.push(format!("{}: C {:#x}, cyview {:#x}", d.text, d.flags, ours));
        }
    }
    report(
        "acquire request flags",
        decls.len(),
        decls.len() - wrong.len(),
        wrong.len(),
    );
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// Every declaration's Cython text, parsed by `cyview::decl`, gives the axis specs, the
/// `const`-ness, the request flags and (for C scalar dtypes) the dtype that this release's
/// generated C has for it: what `Declaration::parse("const double[:, ::1]")` relies on.
#[test]
fn declaration_text_parses_to_the_specs_and_flags_of_the_generated_c() {
    let decls = acquire_declarations();
    assert!(decls.len() >= 600, "{} declarations", decls.len());
    let mut wrong = Vec::new();
    for d in &decls {
        let parsed = match cyview::decl::MemviewDecl::parse(&d.text) {
            Ok(p) => p,
            Err(e) => {
                wrong.push(format!("{}: refused: {}", d.text, e.message()));
                continue;
            }
        };
        let flags = cyview::raw::pybuf::buffer_flags(parsed.specs(), !parsed.is_const());
        let dtype_ok = match parsed.builtin_dtype() {
            Some(t) => t.name == d.dtype_name && t.size == d.dtype.size,
            // Structs are named, not built in: the name is the struct's.
            None => parsed.dtype_name() == d.dtype_name,
        };
        if parsed.specs() != d.specs.as_slice()
            || parsed.is_const() == d.writable
            || flags != d.flags
            || !dtype_ok
        {
            wrong.push(format!(
                "{}: C {:?} const={} flags={:#x} dtype {}, parsed {:?} const={} flags={:#x} dtype {}",
                d.text,
                d.specs,
                !d.writable,
                d.flags,
                d.dtype_name,
                parsed.specs(),
                parsed.is_const(),
                flags,
                parsed.dtype_name()
            ));
        }
    }
    report(
        "declaration text",
        decls.len(),
        decls.len() - wrong.len(),
        wrong.len(),
    );
    assert!(wrong.is_empty(), "{wrong:#?}");
}

// The behaviours of acquisition, named by what Cython does with the case.
const ACCEPTS_DIRECT: &str =
    "acquire accepts a matching direct buffer with Cython's data pointer, shape and strides";
const ACCEPTS_INDIRECT: &str =
    "acquire accepts a matching indirect (PIL-style) buffer with Cython's suboffsets";
const UNDEFINED_FORMAT: &str =
    "acquire refuses with a ValueError the formats on which Cython's format check crashes";
const WRONG_NDIM: &str = "acquire refuses a buffer with the wrong number of dimensions";
const WRONG_DTYPE: &str = "acquire refuses a buffer whose format does not match the dtype";
const NOT_CONTIGUOUS: &str = "acquire refuses a buffer that is not contiguous as declared";
const WRONG_ACCESS: &str =
    "acquire refuses a buffer whose direct or indirect access does not match the axis specs";
const READ_ONLY: &str = "acquire refuses a read-only buffer for a non-const declaration";
const EXPORTER_ERROR: &str = "acquire passes on the exporter's own getbuffer error";
const OTHER_REFUSAL: &str = "acquire refuses as Cython does in other cases";
const BEHAVIOURS: &[&str] = &[
    ACCEPTS_DIRECT,
    ACCEPTS_INDIRECT,
    UNDEFINED_FORMAT,
    WRONG_NDIM,
    WRONG_DTYPE,
    NOT_CONTIGUOUS,
    WRONG_ACCESS,
    READ_ONLY,
    EXPORTER_ERROR,
    OTHER_REFUSAL,
];

/// The behaviour of a refusal, from Cython's exception.
fn refusal(kind: &str, message: &str) -> &'static str {
    let m = message;
    if m.starts_with("Buffer has wrong number of dimensions") {
        WRONG_NDIM
    } else if m.contains("read-only") || m.contains("not writable") || m.contains("readonly") {
        READ_ONLY
    } else if m.contains("contiguous") {
        NOT_CONTIGUOUS
    } else if m.contains("direct access")
        || m.contains("indirectly accessible")
        || m.contains("suboffsets")
    {
        WRONG_ACCESS
    } else if m.starts_with("Buffer dtype")
        || m.starts_with("Item size")
        || m.starts_with("Expected")
        || m.contains("endian")
        || m.starts_with("Does not understand")
        || m.starts_with("Unexpected")
        || m.starts_with("Buffer acquisition")
    {
        WRONG_DTYPE
    } else if kind == "BufferError" {
        EXPORTER_ERROR
    } else {
        OTHER_REFUSAL
    }
}

/// The number of random cases of the acquisition pass.
fn acquisition_cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000)
}

/// One pass of random exporters × declarations against Cython, shared by the behaviour
/// tests below.
static ACQUISITION: LazyLock<Pass> = LazyLock::new(|| {
    let decls = acquire_declarations();
    let cases = acquisition_cases();
    let tally = Tally::new("acquisition", BEHAVIOURS);
    let hints: Vec<_> = decls
        .iter()
        .map(|d| (natural_dtype(&d.dtype_name), d.specs.len()))
        .collect();
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(
                "proptest-regressions/acquire.txt",
            ),
        )),
        ..Config::default()
    });
    let result = runner.run(
        &(0..decls.len()).prop_flat_map(|k| (Just(k), exporter(hints[k].0, hints[k].1))),
        |(k, expr)| {
            let d = &decls[k];
            let (name, decl_text) = (&d.name, &d.text);
            let decl = Declaration::new(d.dtype, &d.specs, d.writable);
            with_python(|py| {
                let obj =
                    eval(py, &expr).map_err(|e| TestCaseError::fail(format!("{expr}: {e}")))?;
                let module = py.import("live_acquire").unwrap();
                let rust = acquire(&obj, &decl);
                let what = format!("cdef {decl_text} v = {expr}");
                if let Err(e) = &rust {
                    let (kind, message) = err_of(py, e);
                    if message.starts_with(UNDEFINED) {
                        // Cython's format check crashes or hangs on this format (the
                        // `cython_crashes_on_structured_arrays` test runs one for real): Rust
                        // refuses it with a ValueError instead.
                        return tally.case(UNDEFINED_FORMAT, || {
                            prop_assert_eq!(kind, "ValueError", "{}", what);
                            Ok(())
                        });
                    }
                }
                let cy = module.getattr(name.as_str()).unwrap().call1((obj.clone(),));
                match (cy, rust) {
                    (Ok(r), rust) => {
                        let cb = read_buffer(&r)
                            .map_err(|e| TestCaseError::fail(format!("{what}: {e}")))?;
                        let c = cb.cython_slice();
                        let n = cb.ndim;
                        let behaviour = if c.suboffsets[..n].iter().any(|&s| s >= 0) {
                            ACCEPTS_INDIRECT
                        } else {
                            ACCEPTS_DIRECT
                        };
                        tally.case(behaviour, || {
                            let v = rust.map_err(|r| {
                                TestCaseError::fail(format!(
                                    "{what}: Cython accepts, Rust {:?}",
                                    err_of(py, &r)
                                ))
                            })?;
                            let s = v.as_raw();
                            prop_assert_eq!(n, v.ndim(), "{}", what);
                            prop_assert_eq!(c.data, s.data, "{}", what);
                            prop_assert_eq!(&c.shape[..n], &s.shape[..n], "{}", what);
                            prop_assert_eq!(&c.strides[..n], &s.strides[..n], "{}", what);
                            prop_assert_eq!(&c.suboffsets[..n], &s.suboffsets[..n], "{}", what);
                            Ok(())
                        })
                    }
                    (Err(e), rust) => {
                        let (kind, message) = err_of(py, &e);
                        tally.case(refusal(&kind, &message), || match rust {
                            Err(r) => {
                                prop_assert_eq!((kind, message), err_of(py, &r), "{}", what);
                                Ok(())
                            }
                            Ok(_) => Err(TestCaseError::fail(format!(
                                "{what}: Cython {:?}, Rust accepts",
                                (kind, message)
                            ))),
                        })
                    }
                }
            })
        },
    );
    let outcome = tally.finish_proptest(result);
    let n = outcome.total();
    report(
        "acquisition",
        n,
        n - outcome.failed().min(n),
        outcome.failed(),
    );
    outcome
});

behaviour_tests!(mod acquisition: ACQUISITION, BEHAVIOURS, at_least acquisition_cases() as usize;
    acquire_accepts_a_matching_direct_buffer_with_cythons_pointer_shape_and_strides => ACCEPTS_DIRECT,
    acquire_accepts_a_matching_indirect_buffer_with_cythons_suboffsets => ACCEPTS_INDIRECT,
    acquire_refuses_with_a_value_error_the_formats_on_which_cython_crashes => UNDEFINED_FORMAT,
    acquire_refuses_a_buffer_with_the_wrong_number_of_dimensions => WRONG_NDIM,
    acquire_refuses_a_buffer_whose_format_does_not_match_the_dtype => WRONG_DTYPE,
    acquire_refuses_a_buffer_that_is_not_contiguous_as_declared => NOT_CONTIGUOUS,
    acquire_refuses_a_buffer_whose_direct_or_indirect_access_does_not_match_the_specs => WRONG_ACCESS,
    acquire_refuses_a_read_only_buffer_for_a_non_const_declaration => READ_ONLY,
    acquire_passes_on_the_exporters_own_getbuffer_error => EXPORTER_ERROR,
    acquire_refuses_as_cython_does_in_other_cases => OTHER_REFUSAL; may_be_empty,
);

/// A finding: acquiring a NumPy structured array whose first field is an `int` into
/// `int[:]` makes Cython's format check dereference NULL (`"T{i:x:xxxxd:y:}"`: the dtype is
/// complete after `i`, the struct goes on). The crash is run for real in a child process;
/// cyview refuses the same buffer with a ValueError.
#[test]
fn cython_crashes_on_structured_arrays() {
    let int_1d = acquire_declarations()
        .into_iter()
        .find(|d| d.text == "int[:]")
        .expect("live_acquire.pyx declares int[:]");
    let script = format!(
        "import sys; sys.path[:0] = [{fixtures:?}, {site:?}]\n\
         import numpy as np, live_acquire\n\
         a = np.zeros(3, dtype=np.dtype([('x', '<i4'), ('y', '<f8')], align=True))\n\
         try:\n    live_acquire.{name}(a)\n\
         except Exception as e:\n    print(type(e).__name__, e)\n    sys.exit(3)\n\
         print('accepted')\n",
        fixtures = support::fixtures_dir(),
        site = env!("CYVIEW_SITE_PACKAGES"),
        name = int_1d.name,
    );
    let out = std::process::Command::new(env!("CYVIEW_PYTHON_EXE"))
        .args(["-c", &script])
        .output()
        .expect("run the child Python");
    use std::os::unix::process::ExitStatusExt;
    let signal = out.status.signal();
    assert_eq!(
        signal,
        Some(11),
        "expected Cython to crash with SIGSEGV; status {:?}, stdout {}",
        out.status,
        String::from_utf8_lossy(&out.stdout)
    );
    let rust = with_python(|py| -> PyResult<String> {
        let a = py.eval(
            c"__import__('numpy').zeros(3, dtype=__import__('numpy').dtype([('x', '<i4'), ('y', '<f8')], align=True))",
            None,
            None,
        )?;
        let err = acquire(&a, &Declaration::new(int_1d.dtype, &int_1d.specs, true))
            .err()
            .expect("cyview refuses");
        Ok(err_of(py, &err).1)
    })
    .unwrap();
    assert!(rust.starts_with(UNDEFINED), "{rust}");
    support::finding(
        "format-null-deref-structured-numpy",
        "crash",
        "cdef int[:] v = np.zeros(3, dtype=[('x', 'i4'), ('y', 'f8')])",
        "Cython's format check dereferences NULL (SIGSEGV) on the format 'T{i:x:xxxxd:y:}' \
         when the declared dtype is the struct's first field type",
    );
}
