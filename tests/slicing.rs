//! Slicing: the core's Cython semantics against the real compiled Cython of the selected
//! release, on random structures (NumPy views with any byte strides and offsets into a
//! larger block; PIL-style `_testbuffer.ndarray`s with suboffsets) × random index tuples.
//! Compiled slicing goes through the fixture functions (`live_slice_*`, one per index
//! pattern, with runtime bounds); Python-level slicing through Cython memoryview objects.
//! Every case compares data pointer, shape, strides, raw suboffsets and every element
//! address, or the exception kind and message. The core's semantics is the build's
//! (`support::cython_semantics`): `Semantics::Cython` for a published release,
//! `Semantics::CythonPatched` for a build with the slice-bounds fix of `cython_patches/`.
//!
//! Each path runs its random pass once per test binary (`COMPILED`, `PYTHON_LEVEL`); each case
//! is attributed to the behaviour it exercises (Cython's exception, an element, an indirect
//! source, else the most particular rule of its items: negative step with a bound beyond the
//! extent, a bound beyond the extent, negative step, wraparound, new axis, integer index, plain
//! slices), and `compiled::*` and `python_level::*` hold one test per behaviour, so that a
//! failure names the behaviour that broke (`support::behaviour`).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::LazyLock;

use cyview::raw::slicing::{self, ObjectItem};
use cyview::{Slice, SliceItem};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use support::behaviour::{behaviour_tests, Pass, Tally};
use support::sources::{compare_view as compare, py_key, source, value, Source};
use support::{pattern_items, read_buffer, report, spec, with_python, Buffer, Func, Slots};

fn py_err(e: &PyErr, py: Python<'_>) -> (String, String) {
    let kind = e
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    let msg = e.value(py).str().map(|s| s.to_string()).unwrap_or_default();
    (kind, msg)
}

// The behaviours of slicing, named by what Cython does with the case. A case belongs to the
// first that applies: Cython's exception, else the element it returns, else the source's
// indirection, else the most particular rule its items exercise.
const INDEX_OUT_OF_BOUNDS: &str = "an index outside the extent raises IndexError naming the axis";
const STEP_ZERO: &str = "a slice with step zero raises ValueError naming the axis";
const OTHER_ERROR: &str = "other refused items raise Cython's exception and message";
const ELEMENT: &str = "an index on every dimension returns the element";
const INDIRECT: &str =
    "slicing an indirect (PIL-style) buffer keeps Cython's pointer, suboffsets and elements";
const NEGATIVE_STEP_BEYOND: &str =
    "a slice with negative step and a bound beyond the extent clamps as Cython does";
const BOUND_BEYOND: &str = "a slice bound beyond the extent clamps to the extent";
const NEGATIVE_STEP: &str = "a slice with negative step inside the extent walks backwards";
const NEGATIVE_WRAPS: &str = "a negative index or bound inside the extent wraps around once";
const NEW_AXIS: &str = "a new axis inserts a dimension of extent 1";
const INDEX_DROPS: &str = "an integer index drops its dimension";
const IN_BOUNDS: &str = "slices inside the extent (and an Ellipsis) keep Cython's geometry";
const BEHAVIOURS: &[&str] = &[
    INDEX_OUT_OF_BOUNDS,
    STEP_ZERO,
    OTHER_ERROR,
    ELEMENT,
    INDIRECT,
    NEGATIVE_STEP_BEYOND,
    BOUND_BEYOND,
    NEGATIVE_STEP,
    NEGATIVE_WRAPS,
    NEW_AXIS,
    INDEX_DROPS,
    IN_BOUNDS,
];

/// The behaviour of a case Cython refused, from its message.
fn refusal(message: &str) -> &'static str {
    if message.starts_with("Index out of bounds") {
        INDEX_OUT_OF_BOUNDS
    } else if message.starts_with("Step may not be zero") {
        STEP_ZERO
    } else {
        OTHER_ERROR
    }
}

/// The behaviour of a case Cython sliced: from the source (`src`) and the items.
fn sliced(src: &Buffer, items: &[SliceItem]) -> &'static str {
    let shape = &src.raw.shape[..src.ndim];
    if src.raw.suboffsets[..src.ndim].iter().any(|&s| s >= 0) {
        return INDIRECT;
    }
    // The source dimension each item applies to (None for a new axis or an Ellipsis).
    let consuming = items
        .iter()
        .filter(|it| matches!(it, SliceItem::Index(_) | SliceItem::Slice(_)))
        .count();
    let mut dim = 0usize;
    let mut axes = Vec::new();
    for it in items {
        match it {
            SliceItem::Index(_) | SliceItem::Slice(_) => {
                axes.push((it, shape.get(dim).copied()));
                dim += 1;
            }
            SliceItem::Ellipsis => dim += shape.len().saturating_sub(consuming),
            SliceItem::NewAxis => {}
        }
    }
    let beyond = |v: Option<isize>, n: isize| v.is_some_and(|v| v < -n || v > n);
    let negative = |v: Option<isize>, n: isize| v.is_some_and(|v| v < 0 && v >= -n);
    let slices = || {
        axes.iter().filter_map(|(it, n)| match it {
            SliceItem::Slice(s) => Some((s, n.unwrap_or(0))),
            _ => None,
        })
    };
    let backwards = |s: &Slice| s.step.is_some_and(|c| c < 0);
    if slices().any(|(s, n)| backwards(s) && (beyond(s.start, n) || beyond(s.stop, n))) {
        NEGATIVE_STEP_BEYOND
    } else if slices().any(|(s, n)| beyond(s.start, n) || beyond(s.stop, n)) {
        BOUND_BEYOND
    } else if slices().any(|(s, _)| backwards(s)) {
        NEGATIVE_STEP
    } else if axes.iter().any(|(it, n)| {
        let n = n.unwrap_or(0);
        match it {
            SliceItem::Index(i) => *i < 0,
            SliceItem::Slice(s) => negative(s.start, n) || negative(s.stop, n),
            _ => false,
        }
    }) {
        NEGATIVE_WRAPS
    } else if items.contains(&SliceItem::NewAxis) {
        NEW_AXIS
    } else if axes.iter().any(|(it, _)| matches!(it, SliceItem::Index(_))) {
        INDEX_DROPS
    } else {
        IN_BOUNDS
    }
}

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Runs one random pass of `name` against Cython: `body` compares a case, through
/// [`Tally::case`] with its behaviour.
fn run_check(
    name: &'static str,
    default_cases: u32,
    strategy: impl Strategy<Value = (Source, prop::sample::Index, Vec<isize>, Vec<SliceItem>)>,
    body: impl Fn(
        &Tally,
        Python<'_>,
        &Source,
        &Bound<'_, PyAny>,
        &Buffer,
        &prop::sample::Index,
        &[isize],
        &[SliceItem],
    ) -> Result<(), TestCaseError>,
) -> Pass {
    let skipped = AtomicUsize::new(0);
    let tally = Tally::new(name, BEHAVIOURS);
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
                    skipped.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
            };
            let buf = read_buffer(&obj)
                .map_err(|e| TestCaseError::fail(format!("source buffer: {e}")))?;
            body(&tally, py, &source, &obj, &buf, &pick, &values, &items)
        })
    });
    let outcome = tally.finish_proptest(result);
    let (run, failed) = (outcome.total(), outcome.failed());
    report(name, run, run - failed.min(run), failed);
    println!(
        "{name}: {run} cases compared, {} sources not buildable",
        skipped.load(Ordering::Relaxed)
    );
    outcome
}

/// Compares Cython's outcome `cy` with the core's `rust` for a case of `src` sliced by
/// `items`, attributed to its behaviour.
fn compare_outcomes(
    tally: &Tally,
    py: Python<'_>,
    what: &str,
    src: &Buffer,
    items: &[SliceItem],
    cy: PyResult<Bound<'_, PyAny>>,
    rust: Result<ObjectItem, cyview::Error>,
) -> Result<(), TestCaseError> {
    match cy {
        Err(e) => {
            let (kind, msg) = py_err(&e, py);
            tally.case(refusal(&msg), || match rust {
                Err(r) => {
                    prop_assert_eq!(
                        (kind.as_str(), msg.as_str()),
                        (r.kind().name(), r.message()),
                        "{}",
                        what
                    );
                    Ok(())
                }
                Ok(_) => Err(TestCaseError::fail(format!(
                    "{what}: Cython raised {:?}, Rust ok",
                    (kind, msg)
                ))),
            })
        }
        Ok(r) => {
            let element = r.extract::<f64>().ok();
            let behaviour = if element.is_some() {
                ELEMENT
            } else {
                sliced(src, items)
            };
            tally.case(behaviour, || match (element, rust) {
                (_, Err(r)) => Err(TestCaseError::fail(format!(
                    "{what}: Cython ok, Rust {r:?}"
                ))),
                (None, Ok(ObjectItem::View(raw, n))) => {
                    let cb = read_buffer(&r)
                        .map_err(|e| TestCaseError::fail(format!("{what}: result buffer: {e}")))?;
                    compare(&cb, &raw, n, src)
                        .map_err(|e| TestCaseError::fail(format!("{what}: {e}")))
                }
                (Some(value), Ok(ObjectItem::Element(p))) => {
                    // SAFETY: `getitem_object` only returns elements it bounds-checked in the
                    // live source buffer (the caller holds it), so `p` is a readable f64 slot.
                    let mine = unsafe { p.cast::<f64>().read_unaligned() };
                    prop_assert_eq!(value.to_bits(), mine.to_bits(), "{}", what);
                    Ok(())
                }
                (Some(_), Ok(ObjectItem::View(..))) => Err(TestCaseError::fail(format!(
                    "{what}: Cython returned an element, Rust a view"
                ))),
                (None, Ok(ObjectItem::Element(_))) => Err(TestCaseError::fail(format!(
                    "{what}: Cython returned a view, Rust an element"
                ))),
            })
        }
    }
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

/// Compiled slicing (`v[...]` in a `cdef` function, one fixture per index pattern) of random
/// sources with random runtime bounds, shared by the `compiled_*` tests below.
static COMPILED: LazyLock<Pass> = LazyLock::new(|| {
    let funcs = spec();
    let strategy = (
        source(),
        any::<prop::sample::Index>(),
        proptest::collection::vec(value(), 12),
        Just(Vec::new()),
    );
    run_check(
        "slicing: compiled",
        COMPILED_CASES,
        strategy,
        |tally, py, source, obj, buf, pick, values, _| {
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
            let rust = slicing::slice(
                &buf.raw,
                ndim,
                &items,
                support::cython_semantics(),
                Slots(&buf.slots),
            )
            .map(|(raw, n)| ObjectItem::View(raw, n));
            let what = format!(
                "{}({}, {values:?}) = v[{}] on {}",
                f.name,
                source.describe(),
                f.pattern.join(", "),
                f.decl
            );
            compare_outcomes(tally, py, &what, buf, &items, cy, rust)
        },
    )
});

/// Python-level slicing (`m[key]` on a Cython memoryview object) of random sources with
/// random keys, shared by the `python_level_*` tests below.
static PYTHON_LEVEL: LazyLock<Pass> = LazyLock::new(|| {
    let strategy = (
        source(),
        any::<prop::sample::Index>(),
        Just(Vec::new()),
        items_strategy(),
    );
    run_check(
        "slicing: Python-level",
        PYTHON_LEVEL_CASES,
        strategy,
        |tally, py, source, obj, buf, _, _, items| {
            let ndim = source.ndim();
            let rust = slicing::getitem_object_with(
                &buf.raw,
                ndim,
                items,
                slicing::Subscript::Tuple,
                support::release_rules(),
                support::cython_semantics(),
                Slots(&buf.slots),
            );
            // Where Cython's behaviour depends on memory past the slice's dimensions (more
            // items than dimensions), cyview refuses with `ErrorKind::Undefined`: Cython may
            // crash there, so those cases are not run here (tests/too_many_items.rs runs them
            // in child processes).
            // Rejected, not skipped: proptest draws another case, so the pass compares its
            // full count of cases whatever the draw (a stable count in the report).
            if matches!(&rust, Err(e) if e.kind() == cyview::ErrorKind::Undefined) {
                return Err(TestCaseError::reject(
                    "Cython reads past the slice's dimensions (tests/too_many_items.rs)",
                ));
            }
            let core = py.import("live_core").unwrap();
            let m = core
                .getattr(format!("as_mv_{ndim}d").as_str())
                .unwrap()
                .call1((obj.clone(),));
            let m = m.map_err(|e| TestCaseError::fail(format!("as_mv: {e}")))?;
            let key = py_key(py, items);
            let cy = m.get_item(key);
            let what = format!("m[{items:?}] on {}", source.describe());
            compare_outcomes(tally, py, &what, buf, items, cy, rust)
        },
    )
});

const COMPILED_CASES: u32 = 10_000;
const PYTHON_LEVEL_CASES: u32 = 3_000;

// ELEMENT is absent from the compiled pass: its fixtures compile slicing expressions, which
// always return a view (an index on every dimension is the Python-level pass's element).
behaviour_tests!(mod compiled: COMPILED, BEHAVIOURS, at_least (cases(COMPILED_CASES) * 8 / 10) as usize, absent [ELEMENT];
    an_index_outside_the_extent_raises_index_error_naming_the_axis => INDEX_OUT_OF_BOUNDS,
    a_slice_with_step_zero_raises_value_error_naming_the_axis => STEP_ZERO,
    other_refusals_raise_cythons_exception_and_message => OTHER_ERROR; may_be_empty,
    slicing_an_indirect_buffer_keeps_cythons_pointer_suboffsets_and_elements => INDIRECT,
    a_slice_with_negative_step_and_a_bound_beyond_the_extent_clamps_as_cython_does => NEGATIVE_STEP_BEYOND,
    a_slice_bound_beyond_the_extent_clamps_to_the_extent => BOUND_BEYOND,
    a_slice_with_negative_step_inside_the_extent_walks_backwards => NEGATIVE_STEP,
    a_negative_index_or_bound_inside_the_extent_wraps_around_once => NEGATIVE_WRAPS,
    a_new_axis_inserts_a_dimension_of_extent_one => NEW_AXIS,
    an_integer_index_drops_its_dimension => INDEX_DROPS,
    slices_inside_the_extent_keep_cythons_geometry => IN_BOUNDS,
);

// NEW_AXIS is absent from the Python-level pass: a Cython memoryview object refuses `None`
// as an index (`TypeError`, counted among the refusals) in every release.
behaviour_tests!(mod python_level: PYTHON_LEVEL, BEHAVIOURS, at_least (cases(PYTHON_LEVEL_CASES) * 8 / 10) as usize, absent [NEW_AXIS];
    an_index_outside_the_extent_raises_index_error_naming_the_axis => INDEX_OUT_OF_BOUNDS,
    a_slice_with_step_zero_raises_value_error_naming_the_axis => STEP_ZERO,
    other_refusals_raise_cythons_exception_and_message => OTHER_ERROR; may_be_empty,
    an_index_on_every_dimension_returns_the_element => ELEMENT,
    slicing_an_indirect_buffer_keeps_cythons_pointer_suboffsets_and_elements => INDIRECT,
    a_slice_with_negative_step_and_a_bound_beyond_the_extent_clamps_as_cython_does => NEGATIVE_STEP_BEYOND,
    a_slice_bound_beyond_the_extent_clamps_to_the_extent => BOUND_BEYOND,
    a_slice_with_negative_step_inside_the_extent_walks_backwards => NEGATIVE_STEP,
    a_negative_index_or_bound_inside_the_extent_wraps_around_once => NEGATIVE_WRAPS,
        an_integer_index_drops_its_dimension => INDEX_DROPS,
    slices_inside_the_extent_keep_cythons_geometry => IN_BOUNDS,
);
