//! Python-level indexing with more items than dimensions: `m[items]` on a Cython memoryview
//! object, random tuples of up to 11 items (integers in and far out of range, slices, several
//! Ellipses, `None`) on random 1-4-d sources, against the selected release.
//!
//! Every case either matches Cython (run in this process on the `_memoryviewslice` of
//! `live_core.as_mv_{n}d`, as `tests/slicing.rs` does: same geometry and elements, same
//! element, or same exception and message), or cyview refuses it with
//! [`ErrorKind::Undefined`]. Each refused case is run in a child process
//! (`cython_fixtures/too_many_child.py`, where Cython may crash) on Cython's plain
//! `memoryview` over two `padded.Padded` exporters that are identical within `ndim` and
//! differ in the shape, strides and suboffsets entries past it (extent 0, versus a huge
//! extent with stride 0), and classified:
//!
//! * **crash**: the child died (signal) in either run;
//! * **differ**: the two runs gave different results or exceptions: the outcome depends on
//!   the memory past the dimensions;
//! * **same result** / **same exception past ndim**: identical outcomes, a result or an
//!   exception naming an axis `>= ndim` (raised after the first read past the dimensions,
//!   from values the test does not control: the slice path reads a stack copy whose entries
//!   past `ndim` Cython never wrote);
//! * **same exception naming no axis**: identical exceptions without an axis, raised after
//!   the first read past the dimensions (for example 0.29.37's `OverflowError: Python int
//!   too large to convert to C ssize_t` from a result built of such values);
//! * **deterministic**: an identical exception naming an axis `< ndim`, or one of
//!   `_unellipsify`'s (`Cannot index with type ...`, `list assignment index out of range`).
//!   Cython raised it before reading past the dimensions (it processes dimension 0 first, and
//!   the expansion before any), so cyview should have predicted it: such a case fails the
//!   test.

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use cyview::raw::slicing::{self, ObjectItem, Subscript};
use cyview::{ErrorKind, Slice, SliceItem};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use pyo3::prelude::*;
use serde_json::{json, Value};
use support::sources::{compare_view, py_key, source, value, Source};
use support::{err_of, fixtures_dir, read_buffer, release_rules, report, with_python, Slots};

/// Random cases per release (`PROPTEST_CASES` overrides).
const CASES: u32 = 2_000;
/// Paddings per refused case (`PADS` of the child script).
const PADS: usize = 2;

fn items_strategy() -> impl Strategy<Value = Vec<SliceItem>> {
    let item = prop_oneof![
        8 => value().prop_map(SliceItem::Index),
        8 => (proptest::option::of(value()), proptest::option::of(value()), proptest::option::of(value()))
            .prop_map(|(a, b, c)| SliceItem::Slice(Slice::new(a, b, c))),
        3 => Just(SliceItem::Ellipsis),
        1 => Just(SliceItem::NewAxis),
    ];
    proptest::collection::vec(item, 0..=11)
}

/// The items as the child script reads them.
fn items_json(items: &[SliceItem]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|it| match *it {
                SliceItem::Index(i) => json!(["i", i]),
                SliceItem::Slice(s) => json!(["s", s.start, s.stop, s.step]),
                SliceItem::NewAxis => json!(["N"]),
                SliceItem::Ellipsis => json!(["E"]),
            })
            .collect(),
    )
}

/// The source as the child script builds it: the `live_support` function and its arguments.
fn source_json(source: &Source) -> Value {
    match source {
        Source::Direct(n, off, shape, strides) => json!(["direct", [n, off, shape, strides]]),
        Source::Pil(shape, keys) => json!(["pil", [shape, keys]]),
    }
}

/// A case cyview refused: to run in the child.
struct Refused {
    source: Source,
    ndim: usize,
    items: Vec<SliceItem>,
    message: String,
}

/// What one child run gave: its JSON outcome, or the signal (or exit status) it died of.
#[derive(Clone, Debug, PartialEq)]
enum Run {
    Outcome(Value),
    Crash(String),
}

/// Runs every refused case `PADS` times in child processes, restarting after each crash.
fn run_children(cases: &[Refused]) -> Vec<[Run; PADS]> {
    let dir = std::env::temp_dir().join(format!("cyview-too-many-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("cases.json");
    let doc: Vec<Value> = cases
        .iter()
        .map(|c| json!({"source": source_json(&c.source), "items": items_json(&c.items)}))
        .collect();
    std::fs::write(&file, serde_json::to_string(&doc).unwrap()).unwrap();
    let mut path = vec![
        fixtures_dir(),
        format!("{}/cython_fixtures", env!("CARGO_MANIFEST_DIR")),
    ];
    path.extend(option_env!("CYVIEW_SITE_PACKAGES").map(String::from));
    let mut runs: HashMap<(usize, usize), Run> = HashMap::new();
    let (mut case, mut pad) = (0usize, 0usize);
    while case < cases.len() {
        let mut child = Command::new(env!("CYVIEW_PYTHON_EXE"))
            .arg(format!(
                "{}/cython_fixtures/too_many_child.py",
                env!("CARGO_MANIFEST_DIR")
            ))
            .arg(&file)
            .arg(case.to_string())
            .arg(pad.to_string())
            .env("PYTHONPATH", path.join(":"))
            .env("PYTHONFAULTHANDLER", "")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the child Python");
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            let v: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("child output {line:?}: {e}"));
            let (i, p) = (
                v[0].as_u64().unwrap() as usize,
                v[1].as_u64().unwrap() as usize,
            );
            runs.insert((i, p), Run::Outcome(v[2].clone()));
            (case, pad) = if p + 1 == PADS {
                (i + 1, 0)
            } else {
                (i, p + 1)
            };
        }
        let out = child.wait_with_output().unwrap();
        if case >= cases.len() {
            assert!(
                out.status.success(),
                "child: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            break;
        }
        // The child died in run (case, pad).
        let status = out.status;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            status.signal().is_some() || !stderr.contains("Traceback"),
            "the child script failed on case {case}: {stderr}"
        );
        let how = match status.signal() {
            Some(s) => format!("signal {s}"),
            None => format!("exit {status}"),
        };
        runs.insert((case, pad), Run::Crash(how));
        (case, pad) = if pad + 1 == PADS {
            (case + 1, 0)
        } else {
            (case, pad + 1)
        };
    }
    let _ = std::fs::remove_dir_all(&dir);
    (0..cases.len())
        .map(|i| std::array::from_fn(|p| runs.remove(&(i, p)).expect("every run recorded")))
        .collect()
}

/// The axis an exception message names (`(axis 1)`, `dimension 2`), if any.
fn named_axis(message: &str) -> Option<usize> {
    for tag in ["(axis ", "dimension "] {
        if let Some(at) = message.find(tag) {
            let digits: String = message[at + tag.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            return digits.parse().ok();
        }
    }
    None
}

const CRASH: &str = "crash";
const DIFFER: &str = "differ between paddings";
const SAME_RESULT: &str = "same result";
const SAME_ERROR_PAST: &str = "same exception naming an axis >= ndim";
const SAME_ERROR_NO_AXIS: &str = "same exception naming no axis";
const DETERMINISTIC: &str =
    "same exception naming an axis < ndim or raised by the expansion (should be predicted)";

fn classify(ndim: usize, runs: &[Run; PADS]) -> &'static str {
    if runs.iter().any(|r| matches!(r, Run::Crash(_))) {
        return CRASH;
    }
    if runs.iter().any(|r| *r != runs[0]) {
        return DIFFER;
    }
    let Run::Outcome(v) = &runs[0] else {
        unreachable!()
    };
    if v[0] != "err" {
        return SAME_RESULT;
    }
    let message = v[2].as_str().unwrap_or_default();
    // The errors of `_unellipsify` come before any read of the slice's arrays.
    let expansion = message.starts_with("Cannot index with type")
        || message == "list assignment index out of range";
    match named_axis(message) {
        Some(axis) if axis >= ndim => SAME_ERROR_PAST,
        Some(_) => DETERMINISTIC,
        None if expansion => DETERMINISTIC,
        None => SAME_ERROR_NO_AXIS,
    }
}

/// Compares Cython's in-process outcome with cyview's; `Err` describes a mismatch.
fn compare(
    py: Python<'_>,
    buf: &support::Buffer,
    cy: PyResult<Bound<'_, PyAny>>,
    rust: Result<ObjectItem, cyview::Error>,
) -> Result<(), String> {
    match (cy, rust) {
        (Err(e), Err(r)) => {
            let (kind, msg) = err_of(py, &e);
            if (kind.as_str(), msg.as_str()) == (r.kind().name(), r.message()) {
                Ok(())
            } else {
                Err(format!("Cython {kind}: {msg}, cyview {r:?}"))
            }
        }
        (Err(e), Ok(_)) => Err(format!("Cython {:?}, cyview ok", err_of(py, &e))),
        (Ok(_), Err(r)) => Err(format!("Cython ok, cyview {r:?}")),
        (Ok(r), Ok(item)) => match (r.extract::<f64>().ok(), item) {
            (Some(value), ObjectItem::Element(p)) => {
                // SAFETY: `getitem_object` returns only elements it bounds-checked in the live
                // source buffer (the caller holds it), so `p` is a readable f64 slot.
                let mine = unsafe { p.cast::<f64>().read_unaligned() };
                (value.to_bits() == mine.to_bits())
                    .then_some(())
                    .ok_or(format!("element {value} vs {mine}"))
            }
            (None, ObjectItem::View(raw, n)) => {
                let cb = read_buffer(&r).map_err(|e| format!("result buffer: {e}"))?;
                compare_view(&cb, &raw, n, buf)
            }
            (Some(_), ObjectItem::View(..)) => Err("Cython an element, cyview a view".into()),
            (None, ObjectItem::Element(_)) => Err("Cython a view, cyview an element".into()),
        },
    }
}

#[test]
fn more_items_than_dimensions_match_cython_or_are_undefined_in_cython() {
    let n = support::cases(CASES);
    let strategy = (source(), items_strategy());
    let mut runner = TestRunner::deterministic();
    let release = release_rules();
    let (mut matched, mut matched_surplus, mut unbuildable) = (0usize, 0usize, 0usize);
    let mut mismatches: Vec<String> = Vec::new();
    let mut refused: Vec<Refused> = Vec::new();
    for _ in 0..n {
        let (source, items) = strategy.new_tree(&mut runner).unwrap().current();
        let ndim = source.ndim();
        with_python(|py| {
            let Ok(obj) = source.build(py) else {
                unbuildable += 1;
                return;
            };
            let buf = read_buffer(&obj).expect("source buffer");
            let rust = slicing::getitem_object_with(
                &buf.raw,
                ndim,
                &items,
                Subscript::Tuple,
                release,
                support::cython_semantics(),
                Slots(&buf.slots),
            );
            if let Err(e) = &rust {
                if e.kind() == ErrorKind::Undefined {
                    refused.push(Refused {
                        source: source.clone(),
                        ndim,
                        items: items.clone(),
                        message: e.message().to_string(),
                    });
                    return;
                }
            }
            let m = py
                .import("live_core")
                .unwrap()
                .getattr(format!("as_mv_{ndim}d").as_str())
                .unwrap()
                .call1((obj.clone(),))
                .expect("as_mv");
            let cy = m.get_item(py_key(py, &items));
            match compare(py, &buf, cy, rust) {
                Ok(()) => {
                    matched += 1;
                    let addressing = items
                        .iter()
                        .filter(|i| matches!(i, SliceItem::Index(_) | SliceItem::Slice(_)))
                        .count();
                    let none = items.contains(&SliceItem::NewAxis);
                    matched_surplus += usize::from(addressing > ndim && !none);
                }
                Err(e) => mismatches.push(format!("m[{items:?}] on {}: {e}", source.describe())),
            }
        });
    }
    let outcomes = run_children(&refused);
    let mut classes: Vec<(&str, usize)> = [
        CRASH,
        DIFFER,
        SAME_RESULT,
        SAME_ERROR_PAST,
        SAME_ERROR_NO_AXIS,
        DETERMINISTIC,
    ]
    .iter()
    .map(|c| (*c, 0))
    .collect();
    let mut wrong: Vec<String> = Vec::new();
    for (case, runs) in refused.iter().zip(&outcomes) {
        let class = classify(case.ndim, runs);
        let slot = classes.iter_mut().find(|(c, _)| *c == class).unwrap();
        if slot.1 == 0 {
            println!(
                "slicing: too many items: e.g. {class}: m[{:?}] on {}: {runs:?}",
                case.items,
                case.source.describe()
            );
        }
        slot.1 += 1;
        if class == DETERMINISTIC {
            wrong.push(format!(
                "m[{:?}] on {}: cyview refused ({}), Cython raised {:?} before reading past the dimensions",
                case.items,
                case.source.describe(),
                case.message,
                runs[0]
            ));
        }
    }
    let total = matched + mismatches.len() + refused.len();
    report(
        "slicing: too many items",
        total,
        total - mismatches.len() - wrong.len(),
        mismatches.len() + wrong.len(),
    );
    println!(
        "slicing: too many items: {total} cases ({unbuildable} sources not buildable): {matched} \
         matched Cython ({matched_surplus} of them with more index or slice items than \
         dimensions and no None), {} mismatched, {} refused as Undefined and run in a child: {}",
        mismatches.len(),
        refused.len(),
        classes
            .iter()
            .map(|(c, k)| format!("{k} {c}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(
        mismatches.is_empty(),
        "{} cases differ from Cython, e.g.:\n{}",
        mismatches.len(),
        mismatches[..mismatches.len().min(10)].join("\n")
    );
    assert!(
        wrong.is_empty(),
        "{} refused cases where Cython's error is deterministic, e.g.:\n{}",
        wrong.len(),
        wrong[..wrong.len().min(10)].join("\n")
    );
    assert!(
        matched_surplus > 0,
        "no case with more items than dimensions was matched: the strategy misses the zone"
    );
}

/// A 0-dimensional Cython memoryview (`as_mv_1d(a)[0, ...]`, a `_memoryviewslice` of
/// `ndim == 0`) indexed with tuples of integers: cyview matches Cython (3.3's
/// `pybuffer_index` 0-d branch: index 0 keeps the element, others raise naming the axis;
/// 3.0-3.2's list assignment error) or refuses as Undefined (0.29's and 3.3's slice path,
/// which starts with `assert memview.view.ndim > 0`; a negative index, which reads
/// `view.shape[d]`). Refused keys are not run.
#[test]
fn zero_dimensional_views_index_as_cython_does() {
    let keys: &[&[isize]] = &[&[0], &[1], &[0, 0], &[0, 0, 0], &[0, 3], &[2, 0], &[0, -1]];
    let release = release_rules();
    let (mut compared, mut refused) = (0usize, 0usize);
    with_python(|py| {
        let obj = support::eval(py, "ls.direct(64, 8, [3], [8])").unwrap();
        let m1 = py
            .import("live_core")
            .unwrap()
            .getattr("as_mv_1d")
            .unwrap()
            .call1((obj,))
            .unwrap();
        let m0 = m1
            .get_item((1, py.Ellipsis()))
            .expect("a 0-d view of element 1");
        let buf = read_buffer(&m0).expect("the 0-d view's buffer");
        assert_eq!(buf.ndim, 0);
        for key in keys {
            let items: Vec<SliceItem> = key.iter().map(|&i| SliceItem::Index(i)).collect();
            let rust = slicing::getitem_object_with(
                &buf.raw,
                0,
                &items,
                Subscript::Tuple,
                release,
                support::cython_semantics(),
                Slots(&buf.slots),
            );
            if matches!(&rust, Err(e) if e.kind() == ErrorKind::Undefined) {
                refused += 1;
                continue;
            }
            let cy = m0.get_item(py_key(py, &items));
            if let Err(e) = compare(py, &buf, cy, rust) {
                panic!("m0[{key:?}]: {e}");
            }
            compared += 1;
        }
    });
    report(
        "slicing: 0-d views indexed by tuples",
        compared + refused,
        compared + refused,
        0,
    );
    println!("slicing: 0-d views: {compared} keys matched Cython, {refused} refused as Undefined");
    if release != cyview::Release::Cython0_29 {
        assert!(compared > 0, "no key compared");
    }
}

/// The tester's examples on an empty 1-d view: `m[1, 4:-2:-1]` and `m[0, -3]` raise on
/// axis 0 before Cython reads past the dimension in 0.29 and 3.3 (3.0-3.2: `list assignment
/// index out of range`); cyview gives the same exception and message (3.3 takes the element
/// path for `m[0, -3]`, 0.29 the slice path).
#[test]
fn errors_on_axis_zero_come_before_the_surplus_items() {
    let release = release_rules();
    with_python(|py| {
        let obj = support::eval(py, "ls.direct(16, 0, [0], [8])").unwrap();
        let buf = read_buffer(&obj).unwrap();
        let m = py
            .import("live_core")
            .unwrap()
            .getattr("as_mv_1d")
            .unwrap()
            .call1((obj.clone(),))
            .unwrap();
        let keys: [&[SliceItem]; 2] = [
            &[
                SliceItem::Index(1),
                SliceItem::Slice(Slice::new(Some(4), Some(-2), Some(-1))),
            ],
            &[SliceItem::Index(0), SliceItem::Index(-3)],
        ];
        for items in keys {
            let rust = slicing::getitem_object_with(
                &buf.raw,
                1,
                items,
                Subscript::Tuple,
                release,
                support::cython_semantics(),
                Slots(&buf.slots),
            );
            let cy = m.get_item(py_key(py, items));
            let Err(e) = &cy else {
                panic!("m[{items:?}]: Cython returned a value");
            };
            let (_, message) = err_of(py, e);
            // 3.0-3.2 raise `list assignment index out of range` in `_unellipsify` instead.
            if release != cyview::Release::Cython3_0 {
                assert_eq!(named_axis(&message), Some(0), "m[{items:?}]: {message}");
            }
            if let Err(e) = compare(py, &buf, cy, rust) {
                panic!("m[{items:?}]: {e}");
            }
        }
    });
}
