//! Declarations as Cython text (`cyview::decl`, `cyview_py::Declaration::parse`) against the
//! real Cython compiler of the selected release: each text below is compiled as
//! `cdef <text> v = obj` in a module of its own; where Cython refuses it, cyview refuses it
//! with Cython's message, and where Cython accepts it, cyview accepts it. (The axis specs
//! and flags of accepted texts are compared with the generated C for all the declarations
//! of `live_acquire.pyx` in `tests/acquire.rs`.)

mod support;

use std::process::Command;

use cyview::decl::MemviewDecl;
use support::report;

/// Texts Cython refuses, one or more per compile error of `get_axes_specs` /
/// `validate_axes_specs`, and texts near them that it accepts.
const TEXTS: &[&str] = &[
    "double[1:]",
    "double[:1]",
    "double[::2]",
    "double[::0]",
    "double[::view.bogus]",
    "double[::cython.view.bogus]",
    "double[::bogus]",
    "double[::1, ::1]",
    "double[:, ::1, :]",
    "double[::1, ::view.indirect]",
    "double[::1, ::view.contiguous]",
    "double[::view.contiguous, ::view.contiguous]",
    "double[:, ::view.contiguous, :]",
    "double[::view.indirect, :, ::view.contiguous, :]",
    "double[:, :, :, :, :, :, :, :]",
    "double[::view.indirect, ::1, :]",
    "double[::view.indirect, :, ::1]",
    "double[::view.contiguous, :]",
    "double[:, ::view.contiguous]",
    "double[::view.generic_contiguous, :]",
    "double[::view.indirect_contiguous, ::1]",
    "double[:, :, :, :, :, :, :]",
    "const int[:, ::1]",
    "unsigned long long[::cython.view.strided]",
    "float complex[ : , :: 1 ]",
];

/// What the selected release's Cython says about `cdef <text> v = obj`: `None` when it
/// compiles, else the message of its first error.
fn cython_verdict(dir: &std::path::Path, k: usize, text: &str) -> Option<String> {
    let pyx = dir.join(format!("decl_{k}.pyx"));
    std::fs::write(
        &pyx,
        format!("cimport cython\nfrom cython cimport view\ndef f(obj):\n    cdef {text} v = obj\n"),
    )
    .unwrap();
    let out = Command::new(env!("CYVIEW_PYTHON_EXE"))
        .args(["-m", "cython", "-3", "-o"])
        .arg(dir.join(format!("decl_{k}.c")))
        .arg(&pyx)
        .output()
        .expect("run the Cython compiler");
    if out.status.success() {
        return None;
    }
    let output =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    // The first "decl_K.pyx:L:C: message" line.
    let prefix = format!("decl_{k}.pyx:");
    let line = output
        .lines()
        .find(|l| l.contains(&prefix) && l.matches(':').count() >= 3)
        .unwrap_or_else(|| panic!("no error line from Cython for {text}:\n{output}"));
    let after = &line[line.find(&prefix).unwrap() + prefix.len()..];
    // Skip "L:C: ".
    let mut parts = after.splitn(3, ':');
    parts.next();
    parts.next();
    Some(parts.next().unwrap().trim().to_string())
}

#[test]
fn declaration_text_is_accepted_or_refused_with_cythons_compile_error() {
    let dir = std::env::temp_dir().join(format!("cyview-decl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut wrong = Vec::new();
    for (k, text) in TEXTS.iter().enumerate() {
        let cython = cython_verdict(&dir, k, text);
        let ours = MemviewDecl::parse(text).err().map(|e| e.message());
        if cython != ours {
            wrong.push(format!("{text}: Cython {cython:?}, cyview {ours:?}"));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    report(
        "declaration text: compile errors",
        TEXTS.len(),
        TEXTS.len() - wrong.len(),
        wrong.len(),
    );
    assert!(wrong.is_empty(), "{wrong:#?}");
}

/// `?` turns a cyview error into the Python exception Cython raises for it (cyview's
/// `From<cyview::Error> for PyErr`), message unchanged.
#[test]
fn cyview_errors_convert_to_the_python_exception_with_question_mark() {
    use pyo3::exceptions::{PyIndexError, PyValueError};
    use pyo3::prelude::*;

    fn refused_declaration() -> PyResult<cyview_py::Declaration<'static>> {
        Ok(cyview_py::Declaration::try_parse("double[::2]")?)
    }
    fn out_of_bounds() -> PyResult<()> {
        let data = [0.0f64; 6];
        let v = cyview::View::from_slice(&data, &[3, 2])?;
        v.slice(&cyview::s![5, ..])?;
        Ok(())
    }
    support::with_python(|py| {
        let e = refused_declaration().unwrap_err();
        assert!(e.is_instance_of::<PyValueError>(py));
        assert_eq!(
            e.value(py).to_string(),
            "Step must be omitted, 1, or a valid specifier."
        );
        let e = out_of_bounds().unwrap_err();
        assert!(e.is_instance_of::<PyIndexError>(py));
        assert_eq!(e.value(py).to_string(), "Index out of bounds (axis 0)");
    });
}

/// A struct dtype is taken by its Cython name (`parse_for::<T>`, checked at compile time in a
/// `const` item); `try_parse` refuses a dtype that is not a C scalar type.
#[test]
fn struct_dtypes_are_named_by_their_cython_struct() {
    const PAIRS: cyview_py::Declaration =
        cyview_py::Declaration::parse_for::<support::Pair>("const Pair[::1]");
    assert_eq!(PAIRS.dtype().name, "Pair");
    assert_eq!(PAIRS.specs(), &[cyview::AxisSpec::CONTIG_DIRECT]);
    assert!(!PAIRS.writable());
    let err = cyview_py::Declaration::try_parse("Pair[:]").unwrap_err();
    assert_eq!(err.kind(), cyview::ErrorKind::CompileError);
    assert_eq!(
        err.message(),
        "'Pair' is not a C scalar type (use Declaration::parse_for for a struct)"
    );
}
