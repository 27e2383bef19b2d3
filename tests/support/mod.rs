//! Shared support for the conformance tests: the embedded interpreter with the selected
//! release's site-packages and the compiled fixtures on `sys.path`, reading Py_buffers, and
//! the report lines `ci/matrix` collects.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Once;

use cyview::{Error, MemviewSlice, ReadPointer, MAX_DIMS};
use proptest::test_runner::{Config, TestRunner};
use pyo3::prelude::*;
use pyo3::types::PyList;

/// The directory holding the compiled fixture modules of the selected release.
pub fn fixtures_dir() -> String {
    std::env::var("CYVIEW_FIXTURES_DIR")
        .ok()
        .or(option_env!("CYVIEW_FIXTURES_DIR").map(String::from))
        .expect("CYVIEW_FIXTURES_DIR: build the root package with build.rs (ci/test)")
}

/// The Cython release the fixtures were built with.
pub fn cython_release() -> String {
    std::env::var("CYVIEW_CYTHON_VERSION")
        .ok()
        .or(option_env!("CYVIEW_CYTHON_VERSION").map(String::from))
        .expect("CYVIEW_CYTHON_VERSION: build the root package with build.rs (ci/test)")
}

fn site_packages() -> Option<String> {
    std::env::var("CYVIEW_SITE_PACKAGES")
        .ok()
        .or(option_env!("CYVIEW_SITE_PACKAGES").map(String::from))
}

static PATHS: Once = Once::new();

/// Runs `f` with the interpreter attached and the fixture paths set up (once).
pub fn with_python<R>(f: impl for<'py> FnOnce(Python<'py>) -> R) -> R {
    Python::attach(|py| {
        PATHS.call_once(|| {
            let sys = py.import("sys").expect("sys");
            let path = sys.getattr("path").expect("sys.path");
            let path = path.cast::<PyList>().expect("sys.path is a list");
            let mut dirs = vec![
                fixtures_dir(),
                format!("{}/cython_fixtures", env!("CARGO_MANIFEST_DIR")),
            ];
            dirs.extend(site_packages());
            for d in dirs.into_iter().rev() {
                path.insert(0, d).expect("sys.path.insert");
            }
        });
        f(py)
    })
}

/// A buffer as `PyObject_GetBuffer(PyBUF_FULL_RO)` exports it, as a cyview slice, with the
/// exporter's pointer slots (for indirect buffers) recorded by address.
pub struct Buffer {
    pub raw: MemviewSlice,
    pub ndim: usize,
    pub itemsize: isize,
    /// For a Cython `_memoryviewslice`: the raw `__Pyx_memviewslice.suboffsets`, which the
    /// Py_buffer hides (NULL) when none is `>= 0`.
    pub raw_suboffsets: Option<[isize; MAX_DIMS]>,
    /// Pointer slots reachable with in-bounds index prefixes: slot address -> pointer.
    pub slots: HashMap<usize, usize>,
}

impl Buffer {
    /// The slice as Cython stores it (raw suboffsets when known).
    pub fn cython_slice(&self) -> MemviewSlice {
        let mut s = self.raw;
        if let Some(sub) = self.raw_suboffsets {
            s.suboffsets[..self.ndim].copy_from_slice(&sub[..self.ndim]);
        }
        s
    }
}

/// Reads pointers only from slots recorded from a real export; anything else is refused, so
/// a wrong geometry can be followed without touching memory.
pub struct Slots<'a>(pub &'a HashMap<usize, usize>);

impl ReadPointer for Slots<'_> {
    fn read_pointer(&self, at: *const u8) -> Result<*mut u8, Error> {
        self.0
            .get(&(at as usize))
            .map(|&p| std::ptr::without_provenance_mut(p))
            .ok_or_else(|| Error::new(cyview::ErrorKind::ValueError, "not a pointer slot"))
    }
}

/// Element addresses of `raw` in C order, following pointers through `slots` (None where a
/// step goes through something that is not a recorded pointer slot).
pub fn element_addresses(
    raw: &MemviewSlice,
    ndim: usize,
    slots: &HashMap<usize, usize>,
) -> Vec<Option<usize>> {
    let mut out = Vec::new();
    let shape = &raw.shape[..ndim];
    if shape.iter().any(|&n| n <= 0) {
        return out;
    }
    let mut idx = vec![0isize; ndim];
    loop {
        out.push(
            cyview::raw::slicing::element_ptr_unchecked(raw, &idx, Slots(slots))
                .ok()
                .map(|p| p as usize),
        );
        let mut d = ndim;
        loop {
            if d == 0 {
                return out;
            }
            d -= 1;
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
}

/// Reads `obj`'s buffer (FULL_RO) and releases it at once.
pub fn read_buffer(obj: &Bound<'_, PyAny>) -> PyResult<Buffer> {
    // SAFETY: a zeroed Py_buffer is the documented initial state for PyObject_GetBuffer.
    let mut view: pyo3::ffi::Py_buffer = unsafe { std::mem::zeroed() };
    // SAFETY: `obj` is a live object (we hold a reference and the interpreter is attached);
    // `view` is a valid out-parameter.
    let rc =
        unsafe { pyo3::ffi::PyObject_GetBuffer(obj.as_ptr(), &mut view, pyo3::ffi::PyBUF_FULL_RO) };
    if rc != 0 {
        return Err(PyErr::fetch(obj.py()));
    }
    let ndim = view.ndim as usize;
    let result = (|| {
        if ndim > MAX_DIMS {
            return Err(pyo3::exceptions::PyValueError::new_err("ndim > 8"));
        }
        let mut raw = MemviewSlice {
            data: view.buf.cast::<u8>(),
            ..MemviewSlice::EMPTY
        };
        // SAFETY: PyObject_GetBuffer succeeded with PyBUF_FULL_RO: `shape` and `strides`
        // point to `ndim` Py_ssize_t each, `suboffsets` to `ndim` or is NULL.
        unsafe {
            for d in 0..ndim {
                raw.shape[d] = *view.shape.add(d);
                raw.strides[d] = *view.strides.add(d);
                raw.suboffsets[d] = if view.suboffsets.is_null() {
                    -1
                } else {
                    *view.suboffsets.add(d)
                };
            }
        }
        // A Cython _memoryviewslice exports pointers into its `from_slice`, whose
        // `strides` follow `shape` by 8 entries and `suboffsets` by 16 (checked by type
        // name and by the strides pointer, so other exporters are never read this way).
        let is_cython_slice = obj.get_type().name().is_ok_and(|n| n == "_memoryviewslice");
        let raw_suboffsets =
            if is_cython_slice && ndim > 0 && view.strides == view.shape.wrapping_add(MAX_DIMS) {
                let mut s = [0isize; MAX_DIMS];
                // SAFETY: `shape` points at `__Pyx_memviewslice.shape`, so `shape + 16` is its
                // `suboffsets` array of 8 entries, inside the same live struct.
                unsafe {
                    for (d, slot) in s.iter_mut().enumerate().take(ndim) {
                        *slot = *view.shape.add(2 * MAX_DIMS + d);
                    }
                }
                Some(s)
            } else {
                None
            };
        let mut slots = HashMap::new();
        record_slots(&raw, ndim, 0, raw.data, &mut slots);
        Ok(Buffer {
            raw,
            ndim,
            itemsize: view.itemsize,
            raw_suboffsets,
            slots,
        })
    })();
    // SAFETY: `view` was filled by a successful PyObject_GetBuffer and is released once.
    unsafe { pyo3::ffi::PyBuffer_Release(&mut view) };
    result
}

/// Walks every in-bounds index prefix of a valid export and records its pointer slots.
/// Slots are walked even when a later dimension is empty: Cython follows them for an
/// in-bounds index, and the exporters used here (`_testbuffer`) keep them valid.
fn record_slots(
    raw: &MemviewSlice,
    ndim: usize,
    dim: usize,
    p: *mut u8,
    slots: &mut HashMap<usize, usize>,
) {
    if dim == ndim {
        return;
    }
    for i in 0..raw.shape[dim] {
        let mut q = p.wrapping_offset(i * raw.strides[dim]);
        if raw.suboffsets[dim] >= 0 {
            // SAFETY: the exporter's buffer is valid (PEP 3118): for an in-bounds prefix
            // the slot of an indirect dimension holds a readable pointer.
            let target = unsafe { q.cast::<*mut u8>().read_unaligned() };
            slots.insert(q as usize, target as usize);
            q = target.wrapping_offset(raw.suboffsets[dim]);
        }
        record_slots(raw, ndim, dim + 1, q, slots);
    }
}

/// Prints the line `ci/matrix` collects for a check.
pub fn report(check: &str, cases: usize, passed: usize, failed: usize) {
    println!(
        "cyview-report: {}",
        serde_json::json!({"check": check, "release": cython_release(), "cases": cases, "passed": passed, "failed": failed})
    );
}

/// Prints a finding line for `ci/matrix`.
pub fn finding(id: &str, kind: &str, reproducer: &str, detail: &str) {
    println!(
        "cyview-finding: {}",
        serde_json::json!({"id": id, "kind": kind, "release": cython_release(), "reproducer": reproducer, "detail": detail})
    );
}

/// `Release` rules for the Python-level path of the selected release.
pub fn release_rules() -> cyview::raw::slicing::Release {
    let release = cython_release();
    cyview::raw::slicing::Release::from_version(&release).unwrap_or_else(|| {
        panic!("cyview does not know the Python-level rules of Cython {release}")
    })
}

/// A compiled slicing function of the live fixtures (`cython_fixtures/live_spec.json`).
#[derive(Clone, Debug, serde::Deserialize)]
pub struct Func {
    pub name: String,
    pub module: String,
    pub decl: String,
    pub ndim: usize,
    pub pattern: Vec<String>,
    pub params: Vec<String>,
}

/// Every compiled slicing function of the live fixtures.
pub fn spec() -> Vec<Func> {
    serde_json::from_str(include_str!("../../cython_fixtures/live_spec.json"))
        .expect("live_spec.json")
}

/// The items a fixture pattern evaluates to with these runtime values (one per parameter,
/// in `f.params` order).
pub fn pattern_items(f: &Func, values: &[isize]) -> Vec<cyview::SliceItem> {
    use cyview::{Slice, SliceItem};
    let by_name: HashMap<&str, isize> = f
        .params
        .iter()
        .map(String::as_str)
        .zip(values.iter().copied())
        .collect();
    f.pattern
        .iter()
        .enumerate()
        .map(|(pos, tok)| match tok.as_str() {
            "i" => SliceItem::Index(by_name[format!("i{pos}").as_str()]),
            "N" => SliceItem::NewAxis,
            "E" => SliceItem::Ellipsis,
            ":" => SliceItem::Slice(Slice::FULL),
            t => {
                let parts: Vec<&str> = t.split(':').collect();
                let get = |k: usize, letter: char| {
                    parts
                        .get(k)
                        .filter(|p| !p.is_empty())
                        .map(|_| by_name[format!("{letter}{pos}").as_str()])
                };
                SliceItem::Slice(Slice::new(get(0, 'a'), get(1, 'b'), get(2, 'c')))
            }
        })
        .collect()
}

// ---------------------------------------------------------------- live_acquire.pyx

/// `cdef struct Pair: int x; double y` of live_acquire.pyx.
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct Pair {
    pub x: i32,
    pub y: f64,
}

/// `cdef packed struct PPair: int x; double y` of live_acquire.pyx.
#[derive(Clone, Copy, Debug)]
#[repr(C, packed)]
pub struct PPair {
    pub x: i32,
    pub y: f64,
}

/// One declaration of live_acquire.pyx with its specs and request flags as the release's C
/// has them.
pub struct Decl {
    pub name: String,
    pub text: String,
    pub dtype: &'static cyview::format::TypeInfo,
    /// The element type as declared, without `const`.
    pub dtype_name: String,
    pub specs: Vec<cyview::AxisSpec>,
    pub writable: bool,
    pub flags: u32,
}

pub fn dtype_of(name: &str, is_const: bool) -> &'static cyview::format::TypeInfo {
    let base: &'static cyview::format::TypeInfo = match name {
        "double" => &cyview::format::DOUBLE,
        "float" => &cyview::format::FLOAT,
        "int" => &cyview::format::INT,
        "long long" => &cyview::format::LONG_LONG,
        "unsigned char" => &cyview::format::UNSIGNED_CHAR,
        "short" => &cyview::format::SHORT,
        "double complex" => &cyview::format::DOUBLE_COMPLEX,
        "float complex" => &cyview::format::FLOAT_COMPLEX,
        "Pair" => <Pair as cyview_py::CythonElement>::TYPE_INFO,
        "PPair" => <PPair as cyview_py::CythonElement>::TYPE_INFO,
        other => panic!("live_acquire.json: unknown dtype {other}"),
    };
    if !is_const {
        return base;
    }
    // Cython names a const element type `const <name>` in its messages.
    let name: &'static str = Box::leak(format!("const {}", base.name).into_boxed_str());
    Box::leak(Box::new(base.named(name)))
}

pub fn acquire_declarations() -> Vec<Decl> {
    let meta: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/cython_fixtures/live_acquire.json"
        ))
        .expect("live_acquire.json"),
    )
    .unwrap();
    let meta = meta.as_array().unwrap();
    let names: Vec<&str> = meta.iter().map(|m| m["name"].as_str().unwrap()).collect();
    let found: Vec<(Vec<u32>, u32, usize)> = with_python(|py| {
        py.import("live_support")?
            .call_method1("acquire_specs", (env!("CYVIEW_ACQUIRE_C"), names.clone()))?
            .extract()
    })
    .expect("specs from the generated C");
    meta.iter()
        .zip(found)
        .map(|(m, (specs, flags, ndim))| {
            let is_const = m["const"].as_bool().unwrap();
            assert_eq!(ndim as u64, m["ndim"].as_u64().unwrap());
            Decl {
                name: m["name"].as_str().unwrap().to_string(),
                text: m["decl"].as_str().unwrap().to_string(),
                dtype: dtype_of(m["dtype"].as_str().unwrap(), is_const),
                dtype_name: m["dtype"].as_str().unwrap().to_string(),
                specs: specs
                    .iter()
                    .map(|&f| cyview::AxisSpec::from_flags(f).expect("a spec Cython emits"))
                    .collect(),
                writable: !is_const,
                flags,
            }
        })
        .collect()
}

// SAFETY: two numbers; any bit pattern of the fields and of the padding is valid.
unsafe impl cyview::FromBytes for Pair {}
// SAFETY: as for `Pair` (no padding at all).
unsafe impl cyview::FromBytes for PPair {}
cyview_py::element_struct!(Pair as "Pair" { x: &cyview::format::INT, y: &cyview::format::DOUBLE });
cyview_py::element_struct!(packed PPair as "PPair" { x: &cyview::format::INT, y: &cyview::format::DOUBLE });

// ---------------------------------------------------------------- shared test helpers

/// An exception's type name and message, as the tests compare them.
pub fn err_of(py: Python<'_>, e: &PyErr) -> (String, String) {
    let kind = e
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    (
        kind,
        e.value(py).str().map(|s| s.to_string()).unwrap_or_default(),
    )
}

/// `PROPTEST_CASES` when set, else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A proptest runner with `cases` cases whose failures persist in `file`.
pub fn runner(cases: u32, file: &'static str) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::Direct(file),
        )),
        ..Config::default()
    })
}

/// Evaluates a Python expression with `ls` (`live_support`), `live_core` and `np` in scope.
pub fn eval<'py>(py: Python<'py>, expr: &str) -> PyResult<Bound<'py, PyAny>> {
    let globals = pyo3::types::PyDict::new(py);
    globals.set_item("ls", py.import("live_support")?)?;
    globals.set_item("live_core", py.import("live_core")?)?;
    globals.set_item("np", py.import("numpy")?)?;
    let code = std::ffi::CString::new(expr)
        .map_err(|e| pyo3::exceptions::PyValueError::new_err(e.to_string()))?;
    py.eval(&code, Some(&globals), None)
}

/// The object's reference count (compared before/after, never as an absolute).
pub fn refcount(obj: &Bound<'_, PyAny>) -> isize {
    // SAFETY: `obj` is a live object and the interpreter is attached (we hold a `Bound`).
    unsafe { pyo3::ffi::Py_REFCNT(obj.as_ptr()) }
}

/// How cyview's format check starts the message for formats on which Cython crashes or
/// hangs (`cyview::format::Undefined::message`).
pub const UNDEFINED: &str = "Unsupported buffer format string:";

/// Every index of `shape`, in C order (last index fastest).
pub fn c_order(shape: &[usize]) -> Vec<Vec<usize>> {
    let mut out = vec![vec![]];
    for &n in shape {
        out = out
            .into_iter()
            .flat_map(|p| {
                (0..n).map(move |i| {
                    let mut q = p.clone();
                    q.push(i);
                    q
                })
            })
            .collect();
    }
    out
}
