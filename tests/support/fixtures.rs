//! What the fixtures of `cython_fixtures/` declare: the compiled slicing functions of
//! `live_spec.json` (one per index pattern) and the declarations of `live_acquire.pyx` with
//! the specs and request flags the release's generated C has.

use std::collections::HashMap;

use pyo3::prelude::*;

use super::dtypes::{PPair, Pair};
use super::python::{cython_release, with_python};

/// `Release` rules for the Python-level path of the selected release.
pub fn release_rules() -> cyview::raw::slicing::Release {
    let release = cython_release();
    cyview::raw::slicing::Release::from_version(&release).unwrap_or_else(|| {
        panic!("cyview does not know the Python-level rules of Cython {release}")
    })
}

/// The slice arithmetic of the selected Cython build: `Semantics::Cython` for a published
/// release, `Semantics::CythonPatched` for a build with the slice-bounds fix of
/// `cython_patches/` (its version carries the label `+cyview.slice1`).
pub fn cython_semantics() -> cyview::Semantics {
    cyview::Semantics::of_cython_version(&cython_release())
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

pub fn dtype_of(name: &str) -> &'static cyview::format::TypeInfo {
    match name {
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
    }
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
                dtype: dtype_of(m["dtype"].as_str().unwrap()),
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

/// How cyview's format check starts the message for formats on which Cython crashes or
/// hangs (`cyview::format::Undefined::message`).
pub const UNDEFINED: &str = "Unsupported buffer format string:";
