//! cyview-build against the real interpreter (`CYVIEW_PYTHON`, else `python3`) and its
//! Cython: build a folder of fixtures, reuse the cache, report Cython's errors, extract the
//! memoryview layouts.

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use common::python;
use cyview_build::{Error, Fixtures, MEMORYVIEW_STRUCTS};

const SUM_PYX: &str = "\
# cython: language_level=3
def total(double[:] v):
    cdef double s = 0
    cdef Py_ssize_t i
    for i in range(v.shape[0]):
        s += v[i]
    return s
";

#[test]
fn builds_importable_modules_and_reuses_the_cache() {
    let python = python();
    let dir = scratch_in("cache");
    fs::write(dir.join("src/summing.pyx"), SUM_PYX).unwrap();
    fs::create_dir_all(dir.join("src/sub")).unwrap();
    fs::write(dir.join("src/sub/ignored.pyx"), "this is not Cython").unwrap();
    let fixtures = Fixtures::new(&python, dir.join("src"), dir.join("out"))
        .cache_dir(dir.join("cache"))
        .rerun_if_changed(false);

    let first = fixtures.build().unwrap_or_else(|e| panic!("{e}"));
    let names: Vec<&str> = first.modules().iter().map(|m| m.name()).collect();
    assert_eq!(names, ["summing"], "only top-level .pyx files are built");
    let module = &first.modules()[0];
    assert!(!module.from_cache());
    assert_eq!(
        module.extension(),
        dir.join("out")
            .join(format!("summing{}", python.ext_suffix()))
    );

    // The module imports and runs in the interpreter it was built for.
    let out = Command::new(python.executable())
        .arg("-c")
        .arg("import sys, array; sys.path.insert(0, sys.argv[1]); import summing; print(summing.total(array.array('d', [1.5, 2.0, 3.25])))")
        .arg(dir.join("out"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "6.75");

    let second = fixtures.build().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        second.modules()[0].from_cache(),
        "an unchanged module comes from the cache"
    );

    fs::write(
        dir.join("src/summing.pyx"),
        format!("{SUM_PYX}\n# changed\n"),
    )
    .unwrap();
    let third = fixtures.build().unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !third.modules()[0].from_cache(),
        "a changed source is rebuilt"
    );

    fs::remove_file(dir.join("src/summing.pyx")).unwrap();
    let fourth = fixtures.build().unwrap_or_else(|e| panic!("{e}"));
    assert!(fourth.modules().is_empty());
    assert!(
        !module.extension().exists(),
        "a module whose source is gone is removed"
    );
}

#[test]
fn cython_errors_name_the_file_and_carry_cythons_message() {
    let python = python();
    let dir = scratch_in("broken");
    fs::write(dir.join("src/broken.pyx"), "cdef int f(:\n").unwrap();
    let err = Fixtures::new(&python, dir.join("src"), dir.join("out"))
        .cache_dir(dir.join("cache"))
        .rerun_if_changed(false)
        .build()
        .unwrap_err();
    let Error::Cythonize { pyx, output } = &err else {
        panic!("expected a Cythonize error, got {err:?}");
    };
    assert_eq!(pyx, &dir.join("src/broken.pyx"));
    assert!(output.contains("broken.pyx:1:"), "{output}");
    assert!(
        err.to_string().starts_with(&format!(
            "cyview-build: Cython failed on {}:\n",
            dir.join("src/broken.pyx").display()
        )),
        "{err}"
    );
}

#[test]
fn extracts_the_four_memoryview_structs() {
    let python = python();
    let dir = scratch_in("extract");
    fs::write(dir.join("src/summing.pyx"), SUM_PYX).unwrap();
    let built = Fixtures::new(&python, dir.join("src"), dir.join("out"))
        .cache_dir(dir.join("cache"))
        .rerun_if_changed(false)
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let module = built.require("summing").unwrap();
    let extracted = module
        .extract_layouts(&python)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut names: Vec<&str> = extracted
        .layouts
        .structs
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    names.sort_unstable();
    let mut expected = MEMORYVIEW_STRUCTS.to_vec();
    expected.sort_unstable();
    assert_eq!(names, expected);
    assert_eq!(
        extracted.layouts.cython_version,
        python.cython_version().unwrap()
    );
    let slice = extracted.layouts.get("__Pyx_memviewslice").unwrap();
    let fields: Vec<&str> = slice.fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        fields,
        ["memview", "data", "shape", "strides", "suboffsets"]
    );
    for name in MEMORYVIEW_STRUCTS {
        assert!(
            extracted
                .bindings
                .contains(&format!("pub struct {name} {{")),
            "bindgen output defines {name}"
        );
    }
    // The second extraction comes from the module's cache entry, identical.
    assert_eq!(module.extract_layouts(&python).unwrap(), extracted);

    let missing = built.require("nope").unwrap_err();
    assert_eq!(
        missing.to_string(),
        format!(
            "cyview-build: {}/nope.pyx does not exist",
            dir.join("src").display()
        )
    );
}

/// A fresh scratch folder of this test file.
fn scratch_in(name: &str) -> PathBuf {
    common::scratch("cyview-build-tests", name, &["src"])
}
