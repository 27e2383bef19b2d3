//! `extract_layouts_tolerant`: clang errors outside the requested structs are tolerated,
//! errors inside them (or inside a type they use) are refused; and the C of an old Cython
//! release that does not compile on this Python lays out like a release whose C does.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use cyview_build::{extract_layouts, extract_layouts_tolerant, Error, Python, MEMORYVIEW_STRUCTS};

const USED: &str = "typedef struct { int a; double b; } Used;\n";
const TARGET: &str = "typedef struct { Used u; char *p; long n[3]; Used *q; } Target;\n";
/// Errors outside any function body and outside `Target` and `Used` (twice: 5 errors with
/// the redefinition of `Other`).
const OUTSIDE: &str = "static int bad_global = undeclared_thing;\nstruct Other { unknown_t x; };\n";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).expect("write C file");
    path
}

#[test]
fn errors_outside_the_structs_are_tolerated_and_change_nothing() {
    let py = common::python();
    let dir = common::scratch("tolerant", "outside", &[]);
    let clean = write(&dir, "clean.c", &format!("{USED}{TARGET}"));
    let broken = write(
        &dir,
        "broken.c",
        &format!("{USED}{OUTSIDE}{TARGET}{OUTSIDE}"),
    );

    let strict = extract_layouts(&py, &clean, &["Target", "Used"]).expect("clean file");
    assert!(
        matches!(
            extract_layouts(&py, &broken, &["Target"]),
            Err(Error::Clang { .. })
        ),
        "the strict extractor refuses any error"
    );
    let tolerant = extract_layouts_tolerant(&py, &broken, &["Target", "Used"]).expect("tolerated");
    assert_eq!(
        tolerant.tolerated_errors.len(),
        5,
        "{:?}",
        tolerant.tolerated_errors
    );
    assert_eq!(tolerant.layouts.structs, strict.layouts.structs);
    // a clean file: nothing tolerated, the same numbers as the strict extractor
    let same = extract_layouts_tolerant(&py, &clean, &["Target", "Used"]).expect("clean file");
    assert!(same.tolerated_errors.is_empty());
    assert_eq!(same.layouts, strict.layouts);
}

#[test]
fn an_error_inside_a_struct_is_refused() {
    let py = common::python();
    let dir = common::scratch("tolerant", "inside", &[]);
    let cases = [
        (
            "in_struct.c",
            format!("{USED}{OUTSIDE}typedef struct {{ Used u; unknown_t bad; }} Target;\n"),
        ),
        (
            "in_used_type.c",
            format!("typedef struct {{ int a; unknown_t bad; }} Used;\n{OUTSIDE}{TARGET}"),
        ),
        (
            "in_pointee.c",
            format!(
                "typedef struct {{ int a; unknown_t bad; }} Used;\n{OUTSIDE}typedef struct {{ Used *q; }} Target;\n"
            ),
        ),
    ];
    for (name, text) in cases {
        let c = write(&dir, name, &text);
        match extract_layouts_tolerant(&py, &c, &["Target"]) {
            Err(Error::Clang { message, .. }) => assert!(
                message.contains("within the requested structs") && message.contains("unknown_t"),
                "{name}: {message}"
            ),
            other => panic!("{name}: an error inside the struct was not refused: {other:?}"),
        }
    }
}

#[test]
fn a_fatal_error_is_refused() {
    let py = common::python();
    let dir = common::scratch("tolerant", "fatal", &[]);
    let c = write(
        &dir,
        "fatal.c",
        &format!("{USED}{TARGET}#include \"no_such_header.h\"\n"),
    );
    let err = extract_layouts_tolerant(&py, &c, &["Target"]).expect_err("fatal error");
    assert!(err.to_string().contains("no_such_header.h"), "{err}");
}

/// The venv python of Cython release `x` made by ci/sweep (ci/lib.sh's ensure_cy_venv).
fn release_python(x: &str) -> PathBuf {
    let py = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../.venvs")
        .join(format!("cy-{x}"))
        .join("bin/python");
    assert!(
        py.exists(),
        "{} is missing: make it with `. ci/lib.sh; ensure_cy_venv {x}`",
        py.display()
    );
    py
}

/// The C that Cython release `x` generates for a module with a typed memoryview.
fn old_c(x: &str, dir: &Path) -> (Python, PathBuf) {
    let py = release_python(x);
    let pyx = write(
        dir,
        "old_mv.pyx",
        "def f(double[:, ::1] a):\n    return a.shape[0]\n",
    );
    let out = Command::new(&py)
        .args(["-m", "cython", "-3"])
        .arg(&pyx)
        .output()
        .expect("run cython");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        Python::query(&py).expect("query python"),
        dir.join("old_mv.c"),
    )
}

#[test]
#[ignore = "needs .venvs/cy-0.29.11, cy-0.29.14 (pure-Python installs) and cy-0.29.37: `. ci/lib.sh; ensure_cy_venv X` for each"]
fn cython_0_29_11_and_0_29_14_lay_out_like_0_29_37() {
    let dir = common::scratch("tolerant", "old", &["0.29.11", "0.29.14", "0.29.37"]);
    let (new_py, new) = old_c("0.29.37", &dir.join("0.29.37"));
    let strict = extract_layouts(&new_py, &new, &MEMORYVIEW_STRUCTS).expect("0.29.37's C");
    for x in ["0.29.11", "0.29.14"] {
        let (old_py, old) = old_c(x, &dir.join(x));
        let err = extract_layouts(&old_py, &old, &MEMORYVIEW_STRUCTS).expect_err(x);
        assert!(err.to_string().contains("longintrepr.h"), "{x}: {err}");
        let tolerant = extract_layouts_tolerant(&old_py, &old, &MEMORYVIEW_STRUCTS).expect(x);
        assert_eq!(tolerant.layouts.cython_version, x);
        assert_eq!(tolerant.layouts.structs, strict.layouts.structs, "{x}");
        // 0.29.11's PyCode_New calls do not match 3.11's macro (preprocessor errors in
        // function bodies); 0.29.14's C parses once longintrepr.h is found
        let expect_errors = x == "0.29.11";
        assert_eq!(
            !tolerant.tolerated_errors.is_empty(),
            expect_errors,
            "{x}: {:?}",
            tolerant.tolerated_errors
        );
    }
}
