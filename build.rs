//! Builds `cython_fixtures/*.pyx` (top level only; `cython_fixtures/golden/` is ci/gen-golden's,
//! which also compiles the top-level `live_slice_*.pyx`, the one copy of the compiled slicing
//! functions; `cython_fixtures/bench/anchors.pyx` is built on its own, with `-O2`) for the
//! selected Python and Cython (`CYVIEW_PYTHON`, else `python3`) with cyview-build, and
//! extracts Cython's memoryview layouts from `layout.pyx`'s generated C.
//!
//! For the tests it emits:
//! - `CYVIEW_FIXTURES_DIR`: the folder of the compiled modules (`$OUT_DIR/fixtures`);
//! - `CYVIEW_CYTHON_VERSION`: the Cython release, `x.y.z`;
//! - `CYVIEW_SITE_PACKAGES`: the selected Python's site-packages;
//! - `CYVIEW_PYTHON_VERSION`: the selected Python's version, `x.y.z`;
//! - `CYVIEW_PYTHON_EXE`: the selected Python executable;
//! - `CYVIEW_OTHER_FIXTURES_DIR`, `CYVIEW_OTHER_CYTHON_VERSION`: `exchange.pyx` built as
//!   `exchange_other` by the partner release (`CYVIEW_OTHER_PYTHON`), or empty;
//! - `CYVIEW_NOATOMICS_FIXTURES_DIR`: `exchange.pyx` built as `exchange_noatomics` with
//!   `-DCYTHON_ATOMICS=0`;
//! - `CYVIEW_ANCHORS_FIXTURES_DIR`: `cython_fixtures/bench/anchors.pyx` built as
//!   `bench_anchors` with `-O2` (Cython's own costs, for the benches);
//! - `CYVIEW_ACQUIRE_C`: the C file Cython generated for `live_acquire.pyx`;
//!
//! and writes `$OUT_DIR/acquire_extractors.rs` (one `MemView`/`MemViewMut` type per
//! declaration of `live_acquire.pyx`, for the acquisition tests) and
//! `$OUT_DIR/cython_layouts.rs` (bindgen's types, for `include!`) and
//! `$OUT_DIR/cython_layouts.json` (clang's numbers, a `cyview_build::Layouts`).

use std::path::PathBuf;
use std::time::Instant;

use cyview_build::{Error, Fixtures, Python};

fn main() {
    if let Err(e) = run() {
        eprintln!("{e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Error> {
    let start = Instant::now();
    println!("cargo:rerun-if-changed=build.rs");
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by Cargo"));
    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by Cargo"));

    let python = Python::find()?;
    let cython = python.require_cython()?.to_string();
    let built = Fixtures::new(
        &python,
        manifest_dir.join("cython_fixtures"),
        out_dir.join("fixtures"),
    )
    .build()?;

    built.require("layout")?.extract_layouts(&python)?.write(
        out_dir.join("cython_layouts.rs"),
        out_dir.join("cython_layouts.json"),
    )?;

    println!(
        "cargo:rustc-env=CYVIEW_FIXTURES_DIR={}",
        built.out_dir().display()
    );
    println!("cargo:rustc-env=CYVIEW_CYTHON_VERSION={cython}");
    println!(
        "cargo:rustc-env=CYVIEW_SITE_PACKAGES={}",
        python.site_packages().display()
    );
    println!("cargo:rustc-env=CYVIEW_PYTHON_VERSION={}", python.version());
    println!(
        "cargo:rustc-env=CYVIEW_PYTHON_EXE={}",
        python.executable().display()
    );
    // The acquisition tests read each declaration's specs from Cython's own output.
    println!(
        "cargo:rustc-env=CYVIEW_ACQUIRE_C={}",
        built.require("live_acquire")?.c_file().display()
    );
    write_extractors(&manifest_dir, &out_dir)?;
    build_partner_exchange(&python, &manifest_dir, &out_dir)?;
    // The exchange module once more, built without atomics: its memoryviews serialise the
    // acquisition count with a lock, which CythonSlice must refuse.
    let no_atomics = build_copy(
        &python,
        &manifest_dir.join("cython_fixtures/exchange.pyx"),
        "exchange_noatomics",
        &["-DCYTHON_ATOMICS=0"],
        &out_dir.join("noatomics"),
    )?;
    println!(
        "cargo:rustc-env=CYVIEW_NOATOMICS_FIXTURES_DIR={}",
        no_atomics.out_dir().display()
    );
    // Cython's own costs that the benches compare with, compiled as extension modules
    // usually are (-O2, after the fixtures' default -O1).
    let anchors = build_copy(
        &python,
        &manifest_dir.join("cython_fixtures/bench/anchors.pyx"),
        "bench_anchors",
        &["-O2"],
        &out_dir.join("anchors"),
    )?;
    println!(
        "cargo:rustc-env=CYVIEW_ANCHORS_FIXTURES_DIR={}",
        anchors.out_dir().display()
    );
    embed_the_same_libpython(&python);
    let cached = built.modules().iter().filter(|m| m.from_cache()).count();
    println!(
        "cyview-build: Cython {cython}, Python {}: {} modules ({cached} cached) in {:.1}s",
        python.version(),
        built.modules().len(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// With `CYVIEW_OTHER_PYTHON` (a venv of another Cython release, for the same CPython; ci/test
/// sets it to the partner release), builds `exchange.pyx` again with that Cython as
/// `exchange_other`, so that modules of two releases can be loaded into one process. Emits
/// `CYVIEW_OTHER_FIXTURES_DIR` and `CYVIEW_OTHER_CYTHON_VERSION` (empty without it).
fn build_partner_exchange(
    python: &Python,
    manifest_dir: &std::path::Path,
    out_dir: &std::path::Path,
) -> Result<(), Error> {
    println!("cargo:rerun-if-env-changed=CYVIEW_OTHER_PYTHON");
    let other = std::env::var_os("CYVIEW_OTHER_PYTHON").filter(|p| !p.is_empty());
    if let Some(p) = other.as_ref().filter(|p| !std::path::Path::new(p).exists()) {
        println!(
            "cargo:warning=CYVIEW_OTHER_PYTHON={} does not exist: the mixed-release exchange \
             test will fail (ci/test makes that venv)",
            std::path::Path::new(p).display()
        );
    }
    let other = other.filter(|p| std::path::Path::new(p).exists());
    let (dir, version) = match other {
        Some(program) => {
            let other = Python::query(std::path::Path::new(&program))?;
            if other.version() != python.version() {
                eprintln!(
                    "cyview-build: CYVIEW_OTHER_PYTHON runs Python {}, not {}: the partner \
                     release's module could not be loaded next to the others",
                    other.version(),
                    python.version()
                );
                std::process::exit(1);
            }
            let version = other.require_cython()?.to_string();
            let built = build_copy(
                &other,
                &manifest_dir.join("cython_fixtures/exchange.pyx"),
                "exchange_other",
                &[],
                &out_dir.join("partner"),
            )?;
            (built.out_dir().display().to_string(), version)
        }
        None => (String::new(), String::new()),
    };
    println!("cargo:rustc-env=CYVIEW_OTHER_FIXTURES_DIR={dir}");
    println!("cargo:rustc-env=CYVIEW_OTHER_CYTHON_VERSION={version}");
    Ok(())
}

/// Builds a copy of the fixture `pyx` under the module name `name` (with extra C `flags`)
/// in `dir`: `dir/src/<name>.pyx`, `dir/fixtures/<name>.*.so`.
fn build_copy(
    python: &Python,
    pyx: &std::path::Path,
    name: &str,
    flags: &[&str],
    dir: &std::path::Path,
) -> Result<cyview_build::BuiltFixtures, Error> {
    let src = dir.join("src");
    std::fs::create_dir_all(&src).map_err(|e| io("create", &src, e))?;
    println!("cargo:rerun-if-changed={}", pyx.display());
    let target = src.join(format!("{name}.pyx"));
    let text = std::fs::read_to_string(pyx).map_err(|e| io("read", pyx, e))?;
    if std::fs::read_to_string(&target).ok().as_deref() != Some(text.as_str()) {
        std::fs::write(&target, text).map_err(|e| io("write", &target, e))?;
    }
    let mut fixtures = Fixtures::new(python, &src, dir.join("fixtures")).rerun_if_changed(false);
    for f in flags {
        fixtures = fixtures.flag(*f);
    }
    fixtures.build()
}

fn io(verb: &str, path: &std::path::Path, source: std::io::Error) -> Error {
    Error::Io {
        context: format!("{verb} {}", path.display()),
        source,
    }
}

/// The test binaries embed Python through pyo3, which links `libpython3.x.so` without an
/// rpath, so the dynamic loader may pick another installation's library of the same
/// major.minor (on Debian: /lib/x86_64-linux-gnu, 3.11.2, while the venvs run pyenv's
/// 3.11.7). Point the tests' rpath at the selected Python's own LIBDIR so the embedded
/// interpreter is the one the fixtures were built for.
fn embed_the_same_libpython(python: &Python) {
    let out = std::process::Command::new(python.executable())
        .args([
            "-c",
            "import sysconfig; print(sysconfig.get_config_var('LIBDIR') or '')",
        ])
        .output();
    if let Ok(out) = out {
        let libdir = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !libdir.is_empty() && std::path::Path::new(&libdir).is_dir() {
            println!("cargo:rustc-link-arg-tests=-Wl,-rpath,{libdir}");
            println!("cargo:rustc-link-arg-benches=-Wl,-rpath,{libdir}");
        }
    }
}

/// Writes `$OUT_DIR/acquire_extractors.rs`: for each `cdef [const] T[axes] v = obj` of
/// `live_acquire.pyx`, an `axes!` type for its axes and a `match` arm extracting `obj` with
/// `MemView<T, axes>` (const) or `MemViewMut<T, axes>`, so that the acquisition tests run
/// the extractor types a user would write for every declaration.
fn write_extractors(
    manifest_dir: &std::path::Path,
    out_dir: &std::path::Path,
) -> Result<(), Error> {
    let pyx = manifest_dir.join("cython_fixtures/live_acquire.pyx");
    println!("cargo:rerun-if-changed={}", pyx.display());
    let text = std::fs::read_to_string(&pyx).map_err(|e| io("read", &pyx, e))?;
    let mut axes = String::new();
    let mut arms = String::new();
    let mut name = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("def ") {
            name = rest.split('(').next().map(str::to_string);
            continue;
        }
        let Some(decl) = line.trim().strip_prefix("cdef ") else {
            continue;
        };
        let Some(decl) = decl.strip_suffix(" v = obj") else {
            continue;
        };
        let Some(name) = name.take() else { continue };
        let (is_const, decl) = match decl.strip_prefix("const ") {
            Some(d) => (true, d),
            None => (false, decl),
        };
        let open = decl.find('[').expect("a memoryview declaration");
        let (dtype, ax) = decl.split_at(open);
        let rust = match dtype {
            "double" => "f64",
            "float" => "f32",
            "int" => "::std::ffi::c_int",
            "long long" => "LongLong",
            "short" => "::std::ffi::c_short",
            "unsigned char" => "u8",
            "double complex" => "::num_complex::Complex<f64>",
            "float complex" => "::num_complex::Complex<f32>",
            "Pair" => "Pair",
            "PPair" => "PPair",
            other => panic!("live_acquire.pyx: no Rust type for the dtype {other:?}"),
        };
        let ty = format!("Axes_{name}");
        axes.push_str(&format!("cyview_py::axes!({ty} = {ax:?});\n"));
        let kind = if is_const { "MemView" } else { "MemViewMut" };
        arms.push_str(&format!(
            "        {name:?} => cyview_py::{kind}::<{rust}, {ty}>::new(obj).map(|v| (*v.as_raw(), v.ndim())),\n"
        ));
    }
    let code = format!(
        "// Generated by build.rs from cython_fixtures/live_acquire.pyx.\n{axes}\n\
         /// `obj` extracted with the declaration of `live_acquire.{{name}}`'s extractor type.\n\
         pub fn extract_as(name: &str, obj: &pyo3::Bound<'_, pyo3::PyAny>) -> \
         Option<pyo3::PyResult<(cyview::MemviewSlice, usize)>> {{\n    Some(match name {{\n{arms}        _ => return None,\n    }})\n}}\n"
    );
    let out = out_dir.join("acquire_extractors.rs");
    std::fs::write(&out, code).map_err(|e| io("write", &out, e))
}
