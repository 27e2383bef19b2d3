//! Slicing: the core's Cython semantics against the real compiled Cython of the selected
//! release, on random structures (NumPy views with any byte strides and offsets into a
//! larger block; PIL-style `_testbuffer.ndarray`s with suboffsets) × random index tuples.
//! Compiled slicing goes through the fixture functions (`live_slice_*`, one per index
//! pattern, with runtime bounds); Python-level slicing through Cython memoryview objects.
//! Every case compares data pointer, shape, strides, raw suboffsets and every element
//! address, or the exception kind and message.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};

use cyview::raw::slicing::{self, ObjectItem};
use cyview::Semantics;
use cyview::{MemviewSlice, Slice, SliceItem};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use support::{
    element_addresses, pattern_items, read_buffer, report, spec, with_python, Buffer, Func, Slots,
};

/// A buffer exporter to build in Python.
#[derive(Clone, Debug)]
enum Source {
    /// NumPy `as_strided` view of a block: `(block bytes, offset, shape, byte strides)`.
    Direct(usize, usize, Vec<usize>, Vec<isize>),
    /// `_testbuffer.ndarray` with `ND_PIL`, sliced per dimension by `keys`.
    Pil(
        Vec<usize>,
        Vec<(Option<isize>, Option<isize>, Option<isize>)>,
    ),
}

impl Source {
    fn ndim(&self) -> usize {
        match self {
            Source::Direct(_, _, s, _) | Source::Pil(s, _) => s.len(),
        }
    }

    fn build<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let ls = py.import("live_support")?;
        match self {
            Source::Direct(n, off, shape, strides) => {
                ls.getattr("direct")?
                    .call1((n, off, shape.clone(), strides.clone()))
            }
            Source::Pil(shape, keys) => ls.getattr("pil")?.call1((shape.clone(), keys.clone())),
        }
    }

    fn describe(&self) -> String {
        match self {
            Source::Direct(n, off, shape, strides) => {
                format!("live_support.direct({n}, {off}, {shape:?}, {strides:?})")
            }
            Source::Pil(shape, keys) => format!("live_support.pil({shape:?}, {keys:?})"),
        }
    }
}

fn direct_source() -> impl Strategy<Value = Source> {
    (1usize..=4)
        .prop_flat_map(|ndim| {
            let stride = prop_oneof![
                5 => (-4isize..=4).prop_map(|k| k * 8),
                2 => -40isize..=40,
                1 => Just(0isize),
            ];
            (
                proptest::collection::vec(0usize..=6, ndim),
                proptest::collection::vec(stride, ndim),
                0usize..=24,
            )
        })
        .prop_map(|(shape, strides, pad)| {
            let (mut lo, mut hi) = (0isize, 0isize);
            if !shape.contains(&0) {
                for (&n, &s) in shape.iter().zip(&strides) {
                    let d = (n as isize - 1) * s;
                    if d < 0 {
                        lo += d;
                    } else {
                        hi += d;
                    }
                }
            }
            let offset = (-lo) as usize + pad;
            let bytes = offset + hi as usize + 8 + pad;
            Source::Direct(bytes, offset, shape, strides)
        })
}

fn pil_source() -> impl Strategy<Value = Source> {
    (1usize..=4)
        .prop_flat_map(|ndim| {
            let key = (
                proptest::option::of(-6isize..=6),
                proptest::option::of(-6isize..=6),
                proptest::option::of(prop_oneof![(-3isize..=-1), (1isize..=3)]),
            );
            (
                proptest::collection::vec(1usize..=5, ndim),
                proptest::option::of(proptest::collection::vec(key, ndim)),
            )
        })
        .prop_map(|(shape, keys)| Source::Pil(shape, keys.unwrap_or_default()))
}

fn source() -> impl Strategy<Value = Source> {
    prop_oneof![3 => direct_source(), 2 => pil_source()]
}

fn value() -> impl Strategy<Value = isize> {
    prop_oneof![
        12 => -8isize..=8,
        1 => prop_oneof![Just(-1000isize), Just(1000), Just(-(1 << 40)), Just(1 << 40)],
    ]
}

fn py_err(e: &PyErr, py: Python<'_>) -> (String, String) {
    let kind = e
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    let msg = e.value(py).str().map(|s| s.to_string()).unwrap_or_default();
    (kind, msg)
}

/// Compares Cython's result buffer with the core's slice.
fn compare(cy: &Buffer, rust: &MemviewSlice, rust_ndim: usize, src: &Buffer) -> Result<(), String> {
    let c = cy.cython_slice();
    let n = cy.ndim;
    if n != rust_ndim {
        return Err(format!("ndim {n} vs {rust_ndim}"));
    }
    if c.data != rust.data {
        return Err(format!(
            "data {:?} vs {:?} (source {:?})",
            c.data, rust.data, src.raw.data
        ));
    }
    for (name, a, b) in [
        ("shape", &c.shape[..n], &rust.shape[..n]),
        ("strides", &c.strides[..n], &rust.strides[..n]),
        ("suboffsets", &c.suboffsets[..n], &rust.suboffsets[..n]),
    ] {
        if a != b {
            return Err(format!("{name} {a:?} vs {b:?}"));
        }
    }
    let (ea, eb) = (
        element_addresses(&c, n, &src.slots),
        element_addresses(rust, n, &src.slots),
    );
    if ea != eb {
        return Err(format!("elements {ea:?} vs {eb:?}"));
    }
    Ok(())
}

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Counts {
    run: AtomicUsize,
    skipped: AtomicUsize,
}

fn run_check(
    name: &str,
    default_cases: u32,
    strategy: impl Strategy<Value = (Source, prop::sample::Index, Vec<isize>, Vec<SliceItem>)>,
    body: impl Fn(
        Python<'_>,
        &Source,
        &Bound<'_, PyAny>,
        &Buffer,
        &prop::sample::Index,
        &[isize],
        &[SliceItem],
    ) -> Result<bool, TestCaseError>,
) {
    let counts = Counts {
        run: AtomicUsize::new(0),
        skipped: AtomicUsize::new(0),
    };
    let config = Config {
        cases: cases(default_cases),
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("regressions"),
        )),
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategy, |(source, pick, values, items)| {
        with_python(|py| {
            let obj = match source.build(py) {
                Ok(o) => o,
                Err(_) => {
                    counts.skipped.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
            };
            let buf = read_buffer(&obj)
                .map_err(|e| TestCaseError::fail(format!("source buffer: {e}")))?;
            if body(py, &source, &obj, &buf, &pick, &values, &items)? {
                counts.run.fetch_add(1, Ordering::Relaxed);
            } else {
                counts.skipped.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        })
    });
    let run = counts.run.load(Ordering::Relaxed);
    let failed = usize::from(result.is_err());
    report(name, run, run - failed.min(run), failed);
    println!(
        "{name}: {run} cases compared, {} sources not buildable or not applicable",
        counts.skipped.load(Ordering::Relaxed)
    );
    if let Err(e) = result {
        panic!("{name}: {e}");
    }
    assert!(
        run as u32 >= cases(default_cases) * 8 / 10,
        "{name}: only {run} cases ran"
    );
}

fn items_strategy() -> impl Strategy<Value = Vec<SliceItem>> {
    let item = prop_oneof![
        4 => value().prop_map(SliceItem::Index),
        6 => (proptest::option::of(value()), proptest::option::of(value()), proptest::option::of(value()))
            .prop_map(|(a, b, c)| SliceItem::Slice(Slice::new(a, b, c))),
        1 => Just(SliceItem::NewAxis),
        1 => Just(SliceItem::Ellipsis),
    ];
    proptest::collection::vec(item, 0..=4)
}

#[test]
fn compiled_slicing_matches_cython() {
    let funcs = spec();
    let strategy = (
        source(),
        any::<prop::sample::Index>(),
        proptest::collection::vec(value(), 12),
        Just(Vec::new()),
    );
    run_check(
        "slicing: compiled",
        10_000,
        strategy,
        |py, source, obj, buf, pick, values, _| {
            let ndim = source.ndim();
            let pil = matches!(source, Source::Pil(..));
            let candidates: Vec<&Func> = funcs
                .iter()
                .filter(|f| f.ndim == ndim && (f.decl != "strided" || !pil))
                .collect();
            let f = candidates[pick.index(candidates.len())];
            let values = &values[..f.params.len()];
            let items = pattern_items(f, values);
            let module = py
                .import(f.module.as_str())
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut args: Vec<Bound<'_, PyAny>> = vec![obj.clone()];
            for v in values {
                args.push(v.into_pyobject(py).unwrap().into_any());
            }
            let args = PyTuple::new(py, args).unwrap();
            let cy = module.getattr(f.name.as_str()).unwrap().call1(args);
            let rust = slicing::slice(&buf.raw, ndim, &items, Semantics::Cython, Slots(&buf.slots));
            let what = format!(
                "{}({}, {values:?}) = v[{}] on {}",
                f.name,
                source.describe(),
                f.pattern.join(", "),
                f.decl
            );
            match (cy, rust) {
                (Ok(r), Ok((raw, n))) => {
                    let cb = read_buffer(&r)
                        .map_err(|e| TestCaseError::fail(format!("{what}: result buffer: {e}")))?;
                    compare(&cb, &raw, n, buf)
                        .map_err(|e| TestCaseError::fail(format!("{what}: {e}")))?;
                }
                (Err(e), Err(r)) => {
                    let (kind, msg) = py_err(&e, py);
                    prop_assert_eq!(
                        (kind.as_str(), msg.as_str()),
                        (r.kind().name(), r.message()),
                        "{}",
                        what
                    );
                }
                (Ok(_), Err(r)) => {
                    return Err(TestCaseError::fail(format!(
                        "{what}: Cython ok, Rust {r:?}"
                    )))
                }
                (Err(e), Ok(_)) => {
                    return Err(TestCaseError::fail(format!(
                        "{what}: Cython raised {:?}, Rust ok",
                        py_err(&e, py)
                    )))
                }
            }
            Ok(true)
        },
    );
}

#[test]
fn python_level_slicing_matches_cython() {
    let strategy = (
        source(),
        any::<prop::sample::Index>(),
        Just(Vec::new()),
        items_strategy(),
    );
    run_check(
        "slicing: Python-level",
        3_000,
        strategy,
        |py, source, obj, buf, _, _, items| {
            let ndim = source.ndim();
            // Cython reads past the slice's dimensions (and may crash) for more index items
            // than dimensions or for several Ellipses: cyview refuses those; they are left out
            // by keeping at most `ndim` index items and one Ellipsis.
            let mut kept = Vec::new();
            let (mut n_idx, mut n_ell) = (0, 0);
            for it in items {
                match it {
                    SliceItem::NewAxis => kept.push(*it),
                    SliceItem::Ellipsis if n_ell == 1 => {}
                    _ if n_idx == ndim => {}
                    _ => {
                        n_idx += 1;
                        n_ell += usize::from(*it == SliceItem::Ellipsis);
                        kept.push(*it);
                    }
                }
            }
            let items = &kept[..];
            let core = py.import("live_core").unwrap();
            let m = core
                .getattr(format!("as_mv_{ndim}d").as_str())
                .unwrap()
                .call1((obj.clone(),));
            let m = m.map_err(|e| TestCaseError::fail(format!("as_mv: {e}")))?;
            let py_items: Vec<Bound<'_, PyAny>> = items
                .iter()
                .map(|it| match *it {
                    SliceItem::Index(i) => i.into_pyobject(py).unwrap().into_any(),
                    SliceItem::Slice(s) => pyo3::types::PySlice::full(py)
                        .getattr("__class__")
                        .unwrap()
                        .call1((s.start, s.stop, s.step))
                        .unwrap(),
                    SliceItem::NewAxis => py.None().into_bound(py),
                    SliceItem::Ellipsis => py.Ellipsis().into_bound(py),
                })
                .collect();
            let key = PyTuple::new(py, py_items).unwrap();
            let cy = m.get_item(key);
            let rust = slicing::getitem_object(
                &buf.raw,
                ndim,
                items,
                false,
                support::release_rules(),
                Slots(&buf.slots),
            );
            let what = format!("m[{items:?}] on {}", source.describe());
            match (cy, rust) {
                (Ok(r), Ok(ObjectItem::View(raw, n))) => {
                    let cb = read_buffer(&r)
                        .map_err(|e| TestCaseError::fail(format!("{what}: result buffer: {e}")))?;
                    compare(&cb, &raw, n, buf)
                        .map_err(|e| TestCaseError::fail(format!("{what}: {e}")))?;
                }
                (Ok(r), Ok(ObjectItem::Element(p))) => {
                    let value: f64 = r
                        .extract()
                        .map_err(|e| TestCaseError::fail(format!("{what}: {e}")))?;
                    // SAFETY: `getitem_object` only returns elements it bounds-checked in the
                    // live source buffer (`obj` is alive), so `p` is a readable f64 slot.
                    let mine = unsafe { p.cast::<f64>().read_unaligned() };
                    prop_assert_eq!(value.to_bits(), mine.to_bits(), "{}", what);
                }
                (Err(e), Err(r)) => {
                    let (kind, msg) = py_err(&e, py);
                    prop_assert_eq!(
                        (kind.as_str(), msg.as_str()),
                        (r.kind().name(), r.message()),
                        "{}",
                        what
                    );
                }
                (Ok(_), Err(r)) => {
                    return Err(TestCaseError::fail(format!(
                        "{what}: Cython ok, Rust {r:?}"
                    )))
                }
                (Err(e), Ok(_)) => {
                    return Err(TestCaseError::fail(format!(
                        "{what}: Cython raised {:?}, Rust ok",
                        py_err(&e, py)
                    )))
                }
            }
            Ok(true)
        },
    );
}
