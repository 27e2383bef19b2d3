//! One `.pyx` module with an extra C source, an include folder, a definition and the C
//! math library, built with the real Cython and C compiler for the selected interpreter
//! (`CYVIEW_PYTHON`, else `PYO3_PYTHON`, else `python3`) and run there.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::python;
use cyview_build::{CythonModule, Error, Python};

const PYX: &str = "\
# cython: language_level=3
cdef extern from \"scaled.h\":
    double scaled_cbrt(double x)

def apply(double[:] v):
    cdef Py_ssize_t i
    for i in range(v.shape[0]):
        v[i] = scaled_cbrt(v[i])
";

const HEADER: &str = "double scaled_cbrt(double x);\n";

const SOURCE: &str = "\
#include <math.h>
#include \"scaled.h\"
double scaled_cbrt(double x) { return SCALE * cbrt(x); }
";

/// Writes the module's files into `dir`.
fn write_sources(dir: &Path) {
    fs::write(dir.join("src/cbrt_mod.pyx"), PYX).unwrap();
    fs::write(dir.join("include/scaled.h"), HEADER).unwrap();
    fs::write(dir.join("src/scaled.c"), SOURCE).unwrap();
}

fn module<'a>(python: &'a Python, dir: &Path) -> CythonModule<'a> {
    CythonModule::new(python, dir.join("src/cbrt_mod.pyx"), dir.join("out"))
        .source(dir.join("src/scaled.c"))
        .include_dir(dir.join("include"))
        .define("SCALE", Some("3.0"))
        .library("m")
        .cache_dir(dir.join("cache"))
        .rerun_if_changed(false)
}

/// Runs `script` in the interpreter with `dir` first on `sys.path`: its stdout.
fn run_python(python: &Python, dir: &Path, script: &str) -> String {
    let out = Command::new(python.executable())
        .arg("-c")
        .arg(format!(
            "import sys; sys.path.insert(0, sys.argv[1])\n{script}"
        ))
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn builds_a_module_with_a_c_source_and_libm_that_runs_in_python() {
    let python = python();
    let dir = scratch_in("cbrt");
    write_sources(&dir);
    let built = module(&python, &dir)
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(built.name(), "cbrt_mod");
    assert!(!built.from_cache());
    assert_eq!(
        built.extension(),
        dir.join("out")
            .join(format!("cbrt_mod{}", python.ext_suffix()))
    );

    // The module's C function against CPython's own math.cbrt (libm's), scaled the same.
    let out = run_python(
        &python,
        &dir.join("out"),
        "import array, math, cbrt_mod\n\
         xs = [-8.0, 0.5, 2.0, 10.0, 1e300]\n\
         v = array.array('d', xs)\n\
         cbrt_mod.apply(v)\n\
         print(repr(list(v)))\n\
         print(repr([3.0 * math.cbrt(x) for x in xs]))",
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[0], lines[1], "the module's results, then Python's");

    // The library is a dependency of the module (the interpreter has libm loaded anyway,
    // so only the dynamic section shows the link).
    let elf = Command::new("readelf")
        .arg("-d")
        .arg(built.extension())
        .output()
        .expect("readelf (binutils) runs");
    let dynamic = String::from_utf8_lossy(&elf.stdout);
    assert!(dynamic.contains("Shared library: [libm.so"), "{dynamic}");

    // Unchanged: from the cache. A changed extra source: rebuilt.
    assert!(module(&python, &dir).build().unwrap().from_cache());
    fs::write(dir.join("src/scaled.c"), format!("{SOURCE}/* changed */\n")).unwrap();
    assert!(!module(&python, &dir).build().unwrap().from_cache());
    // So does a changed header in an include folder, or a changed definition.
    fs::write(
        dir.join("include/scaled.h"),
        format!("{HEADER}/* changed */\n"),
    )
    .unwrap();
    assert!(!module(&python, &dir).build().unwrap().from_cache());
    let other = module(&python, &dir)
        .define("UNUSED", None)
        .build()
        .unwrap();
    assert!(!other.from_cache());
}

#[test]
fn a_missing_extra_source_is_named() {
    let python = python();
    let dir = scratch_in("missing");
    write_sources(&dir);
    let err = module(&python, &dir)
        .source(dir.join("src/absent.c"))
        .build()
        .unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(
        err.to_string().starts_with(&format!(
            "cyview-build: read {}: ",
            dir.join("src/absent.c").display()
        )),
        "{err}"
    );
}

#[test]
fn a_c_error_in_an_extra_source_carries_the_compilers_message() {
    let python = python();
    let dir = scratch_in("nolib");
    write_sources(&dir);
    // Without -DSCALE the extra source does not compile.
    let err = CythonModule::new(&python, dir.join("src/cbrt_mod.pyx"), dir.join("out"))
        .source(dir.join("src/scaled.c"))
        .include_dir(dir.join("include"))
        .cache_dir(dir.join("cache"))
        .rerun_if_changed(false)
        .build()
        .unwrap_err();
    let Error::Compile { output, .. } = &err else {
        panic!("expected a compile error, got {err:?}");
    };
    assert!(output.contains("SCALE"), "{output}");
    assert!(
        err.to_string().starts_with("cyview-build: compiling "),
        "{err}"
    );
}

/// A fresh scratch folder of this test file.
fn scratch_in(name: &str) -> PathBuf {
    common::scratch("cyview-build-module", name, &["src", "include"])
}

/// Two Cython installations of one version string whose sources differ (a PyPI wheel and a
/// patched sdist, say) have different source digests, so the build caches never hand one
/// the other's modules; the same installation has the same digest every time.
#[test]
fn cython_sources_digest_tells_builds_of_one_version_apart() {
    let python = python();
    let dir = common::scratch("module", "cython-digest", &["site"]);
    let site = dir.join("site");
    // A copy of the installed Cython package with one comment added to a utility file.
    let copy = Command::new(python.executable())
        .arg("-c")
        .arg(
            "import os, shutil, sys, Cython\n\
             dst = os.path.join(sys.argv[1], 'Cython')\n\
             shutil.copytree(os.path.dirname(Cython.__file__), dst)\n\
             with open(os.path.join(dst, 'Utility', 'MemoryView_C.c'), 'a') as f:\n\
             \x20   f.write('\\n/* patched */\\n')\n",
        )
        .arg(&site)
        .status()
        .expect("run python");
    assert!(copy.success(), "copying the Cython package failed");
    let wrapper = dir.join("python-with-copy");
    fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nPYTHONPATH='{}' exec '{}' \"$@\"\n",
            site.display(),
            python.executable().display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let patched = Python::query(&wrapper).unwrap_or_else(|e| panic!("{e}"));
    let again = Python::query(python.executable()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(patched.cython_version(), python.cython_version());
    let digest = python
        .cython_digest()
        .expect("a digest of the installed Cython");
    assert_eq!(digest.len(), 64);
    assert_eq!(again.cython_digest(), Some(digest));
    assert_ne!(patched.cython_digest(), Some(digest));
}
