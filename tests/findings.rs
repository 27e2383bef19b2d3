//! Findings: where the selected Cython release's slicing differs from Python semantics
//! (NumPy for direct buffers, CPython's `_testbuffer.ndarray` for PIL-style indirect ones).
//!
//! A difference is not a failure of this project: it is recorded, with the smallest
//! reproducer found, in a deterministic table snapshotted per release. A Cython result with
//! an element outside its source is flagged as a memory-safety finding. The search is
//! systematic: every 1-d slice pattern over extents 0-6 with bounds -8..8 and None and
//! steps -3..3 and None, then random 2-4-d cases with a fixed seed. On every case the
//! core's Cython semantics must predict Cython exactly (that part *is* a check):
//! `Semantics::Cython`, or `Semantics::CythonPatched` when the Cython under test is a build
//! with the slice-bounds fix of `cython_patches/` (version label `+cyview.slice1`; its
//! snapshot is `findings_vs_python_semantics@3.3.1+cyview.slice1.snap`).
//!
//! The search runs once per test binary (`SEARCH`); `core_predicts_cython::*` holds one test
//! per finding class (the core predicts Cython on every case of the class), and the snapshot of
//! the findings table is a test of its own.

mod support;

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use cyview::raw::slicing;
use cyview::SliceItem;
use pyo3::prelude::*;
use pyo3::types::PyTuple;
use support::behaviour::{behaviour_tests, Pass, Tally};
use support::{
    element_addresses, pattern_items, read_buffer, spec, with_python, Buffer, Func, Slots,
};

/// One observed outcome: the selected source indices (flat C-order positions of the
/// source's elements, `None` outside the source) or an exception.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Picked(Vec<usize>, Vec<Option<usize>>),
    Raised(String),
}

impl Outcome {
    fn render(&self) -> String {
        match self {
            Outcome::Picked(shape, v) => {
                let items: Vec<String> = v
                    .iter()
                    .map(|x| x.map_or("OUTSIDE".to_string(), |i| i.to_string()))
                    .collect();
                format!("shape {shape:?} -> [{}]", items.join(", "))
            }
            Outcome::Raised(e) => format!("raises {e}"),
        }
    }
}

fn outcome_of(
    buf: &Buffer,
    slots: &HashMap<usize, usize>,
    index_of: &HashMap<usize, usize>,
) -> Outcome {
    let raw = buf.cython_slice();
    let shape = raw.shape[..buf.ndim].iter().map(|&n| n as usize).collect();
    let picked = element_addresses(&raw, buf.ndim, slots)
        .into_iter()
        .map(|a| a.and_then(|a| index_of.get(&a).copied()))
        .collect();
    Outcome::Picked(shape, picked)
}

fn item_text(it: &SliceItem) -> String {
    let o = |x: Option<isize>| x.map_or(String::new(), |v| v.to_string());
    match it {
        SliceItem::Index(i) => i.to_string(),
        SliceItem::Slice(s) => match s.step {
            Some(c) => format!("{}:{}:{c}", o(s.start), o(s.stop)),
            None => format!("{}:{}", o(s.start), o(s.stop)),
        },
        SliceItem::NewAxis => "None".into(),
        SliceItem::Ellipsis => "...".into(),
    }
}

/// An item as `live_support.numpy_items` takes it: (kind, a, b, c).
type PyItem = (String, Option<isize>, Option<isize>, Option<isize>);

fn items_tuple(items: &[SliceItem]) -> Vec<PyItem> {
    items
        .iter()
        .map(|it| match *it {
            SliceItem::Index(i) => ("i".to_string(), Some(i), None, None),
            SliceItem::Slice(s) => ("s".to_string(), s.start, s.stop, s.step),
            SliceItem::NewAxis => ("N".to_string(), None, None, None),
            SliceItem::Ellipsis => ("E".to_string(), None, None, None),
        })
        .collect()
}

struct Case {
    /// Python expression building the source.
    source: String,
    items: Vec<SliceItem>,
    cython: Outcome,
    python: Outcome,
    /// Size of the case, for choosing the smallest reproducer.
    size: (usize, isize),
}

// The finding classes: how Cython's outcome differs from Python semantics on a case. The
// core must predict Cython on the cases of every class; one test per class says so.
const AGREES: &str = "Cython agrees with Python";
const OTHER_EXCEPTION: &str = "Cython raises another exception than Python";
const OUTSIDE: &str = "memory safety: Cython selects an element outside the source";
const RAISES_WHERE_PYTHON_SLICES: &str = "Cython raises where Python slices";
const SLICES_WHERE_PYTHON_RAISES: &str = "Cython slices where Python raises";
const OTHER_SHAPE: &str = "Cython gives another shape (same elements)";
const MORE: &str = "Cython selects more elements than Python";
const FEWER: &str = "Cython selects fewer elements than Python";
const OTHER_ELEMENTS: &str = "Cython selects other elements than Python";
const CLASSES: &[&str] = &[
    AGREES,
    OTHER_EXCEPTION,
    OUTSIDE,
    RAISES_WHERE_PYTHON_SLICES,
    SLICES_WHERE_PYTHON_RAISES,
    OTHER_SHAPE,
    MORE,
    FEWER,
    OTHER_ELEMENTS,
];

/// The finding class of a case (`None`: Cython agrees with Python).
fn classify(c: &Case) -> Option<&'static str> {
    let kind = |e: &str| e.split(':').next().unwrap_or_default().to_string();
    match (&c.cython, &c.python) {
        (a, b) if a == b => None,
        // Exception messages differ between Cython and NumPy by nature; the kind counts.
        (Outcome::Raised(a), Outcome::Raised(b)) if kind(a) == kind(b) => None,
        (Outcome::Raised(_), Outcome::Raised(_)) => Some(OTHER_EXCEPTION),
        (Outcome::Picked(_, v), _) if v.iter().any(Option::is_none) => Some(OUTSIDE),
        (Outcome::Raised(_), Outcome::Picked(..)) => Some(RAISES_WHERE_PYTHON_SLICES),
        (Outcome::Picked(..), Outcome::Raised(_)) => Some(SLICES_WHERE_PYTHON_RAISES),
        (Outcome::Picked(_, a), Outcome::Picked(_, b)) if a == b => Some(OTHER_SHAPE),
        (Outcome::Picked(_, a), Outcome::Picked(_, b)) if a.len() > b.len() => Some(MORE),
        (Outcome::Picked(_, a), Outcome::Picked(_, b)) if a.len() < b.len() => Some(FEWER),
        _ => Some(OTHER_ELEMENTS),
    }
}

fn call_cython<'py>(
    py: Python<'py>,
    f: &Func,
    obj: &Bound<'py, PyAny>,
    values: &[isize],
) -> PyResult<Bound<'py, PyAny>> {
    let module = py.import(f.module.as_str())?;
    let mut args: Vec<Bound<'py, PyAny>> = vec![obj.clone()];
    for v in values {
        args.push(v.into_pyobject(py)?.into_any());
    }
    module
        .getattr(f.name.as_str())?
        .call1(PyTuple::new(py, args)?)
}

fn err_text(py: Python<'_>, e: &PyErr) -> String {
    let kind = e
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    format!(
        "{kind}: {}",
        e.value(py).str().map(|s| s.to_string()).unwrap_or_default()
    )
}

/// Runs one case: Cython through the fixture, Python semantics through NumPy or
/// `_testbuffer`, and the core's prediction of Cython (which must match).
#[allow(clippy::too_many_arguments)]
fn run_case(
    py: Python<'_>,
    f: &Func,
    values: &[isize],
    source_expr: &str,
    obj: &Bound<'_, PyAny>,
    src: &Buffer,
    index_of: &HashMap<usize, usize>,
    tally: &Tally,
) -> Case {
    let items = pattern_items(f, values);
    let cy = call_cython(py, f, obj, values);
    let rust = slicing::slice(
        &src.raw,
        src.ndim,
        &items,
        support::cython_semantics(),
        Slots(&src.slots),
    );
    let cython = match &cy {
        Ok(r) => outcome_of(
            &read_buffer(r).expect("result buffer"),
            &src.slots,
            index_of,
        ),
        Err(e) => Outcome::Raised(err_text(py, e)),
    };
    // The core's prediction, in the same terms.
    let predicted = match &rust {
        Ok((raw, n)) => {
            let b = Buffer {
                raw: *raw,
                ndim: *n,
                itemsize: 8,
                raw_suboffsets: None,
                slots: HashMap::new(),
            };
            outcome_of(&b, &src.slots, index_of)
        }
        Err(e) => Outcome::Raised(format!("{}: {}", e.kind(), e.message())),
    };
    let mismatch = (predicted != cython).then(|| {
        format!(
            "{source_expr}[{}]: Cython {} vs core {}",
            f.pattern.join(", "),
            cython.render(),
            predicted.render()
        )
    });
    // Python semantics: the same items through the exporter's own slicing.
    let ls = py.import("live_support").unwrap();
    let python = if f.decl == "strided" {
        match ls
            .getattr("numpy_slice")
            .unwrap()
            .call1((obj.clone(), items_tuple(&items)))
            .unwrap()
            .extract::<(String, Bound<'_, PyAny>, Bound<'_, PyAny>, Bound<'_, PyAny>)>()
        {
            Ok((tag, data, shape, strides)) if tag == "ok" => {
                let data: usize = data.extract().unwrap();
                let shape: Vec<isize> = shape.extract().unwrap();
                let strides: Vec<isize> = strides.extract().unwrap();
                let mut raw = cyview::MemviewSlice {
                    data: std::ptr::without_provenance_mut(data),
                    ..cyview::MemviewSlice::EMPTY
                };
                for d in 0..shape.len() {
                    raw.shape[d] = shape[d];
                    raw.strides[d] = strides[d];
                    raw.suboffsets[d] = -1;
                }
                let b = Buffer {
                    raw,
                    ndim: shape.len(),
                    itemsize: 8,
                    raw_suboffsets: None,
                    slots: HashMap::new(),
                };
                outcome_of(&b, &src.slots, index_of)
            }
            Ok((_, kind, msg, _)) => Outcome::Raised(format!(
                "{}: {}",
                kind.extract::<String>().unwrap(),
                msg.extract::<String>().unwrap()
            )),
            Err(e) => Outcome::Raised(err_text(py, &e)),
        }
    } else {
        match obj.get_item(support::sources::py_key(py, &items)) {
            Ok(r) => match read_buffer(&r) {
                Ok(b) => {
                    let mut slots = src.slots.clone();
                    slots.extend(b.slots.iter());
                    outcome_of(&b, &slots, index_of)
                }
                Err(e) => Outcome::Raised(err_text(py, &e)),
            },
            Err(e) => Outcome::Raised(err_text(py, &e)),
        }
    };
    let size = (
        src.raw.shape[..src.ndim].iter().map(|&n| n as usize).sum(),
        values.iter().map(|v| v.abs()).sum(),
    );
    let case = Case {
        source: source_expr.to_string(),
        items,
        cython,
        python,
        size,
    };
    let class = classify(&case).unwrap_or(AGREES);
    tally.count(class);
    if let Some(m) = mismatch {
        tally.fail(class, m);
    }
    case
}

struct Source {
    expr: String,
}

fn build<'py>(py: Python<'py>, s: &Source) -> Bound<'py, PyAny> {
    let code = std::ffi::CString::new(s.expr.clone()).unwrap();
    let globals = pyo3::types::PyDict::new(py);
    globals
        .set_item("live_support", py.import("live_support").unwrap())
        .unwrap();
    py.eval(&code, Some(&globals), None).unwrap()
}

/// Flat C-order position of every element address of the source.
fn index_map(src: &Buffer) -> HashMap<usize, usize> {
    element_addresses(&src.raw, src.ndim, &src.slots)
        .into_iter()
        .enumerate()
        .filter_map(|(k, a)| a.map(|a| (a, k)))
        .collect()
}

/// What the search found: the core's predictions per finding class, the number of cases,
/// and the findings table of this release.
struct Search {
    outcome: Pass,
    cases: usize,
    table: String,
}

/// The search, run once and shared by the tests below.
static SEARCH: LazyLock<Search> = LazyLock::new(search);

fn search() -> Search {
    let funcs: Vec<Func> = spec();
    let release = support::cython_release();
    let mut all: Vec<Case> = Vec::new();
    let tally = Tally::new("findings: core predicts Cython on the search", CLASSES);
    with_python(|py| {
        // 1. Exhaustive 1-d: every slice pattern, extents 0-6, direct and PIL sources.
        let bounds: Vec<isize> = (-8..=8).collect();
        let steps: Vec<isize> = vec![-3, -2, -1, 1, 2, 3];
        for n in 0..=6usize {
            let sources = [
                (
                    "strided",
                    Source {
                        expr: format!("live_support.direct({}, 8, [{n}], [8])", 8 * n + 16),
                    },
                ),
                (
                    "generic",
                    Source {
                        expr: format!("live_support.pil([{}], [])", n.max(1)),
                    },
                ),
            ];
            for (decl, source) in &sources {
                if *decl == "generic" && n == 0 {
                    continue; // _testbuffer's PIL arrays need a non-empty first dimension
                }
                let obj = build(py, source);
                let src = read_buffer(&obj).unwrap();
                let index_of = index_map(&src);
                for f in funcs.iter().filter(|f| {
                    f.ndim == 1 && f.decl == *decl && f.pattern.len() == 1 && f.pattern[0] != "i"
                }) {
                    let grids: Vec<Vec<isize>> = f
                        .params
                        .iter()
                        .map(|p| {
                            if p.starts_with('c') {
                                steps.clone()
                            } else {
                                bounds.clone()
                            }
                        })
                        .collect();
                    let mut values = vec![0isize; grids.len()];
                    let mut idx = vec![0usize; grids.len()];
                    loop {
                        for (k, g) in grids.iter().enumerate() {
                            values[k] = g[idx[k]];
                        }
                        all.push(run_case(
                            py,
                            f,
                            &values,
                            &source.expr,
                            &obj,
                            &src,
                            &index_of,
                            &tally,
                        ));
                        let mut k = grids.len();
                        loop {
                            if k == 0 {
                                break;
                            }
                            k -= 1;
                            idx[k] += 1;
                            if idx[k] < grids[k].len() {
                                break;
                            }
                            idx[k] = 0;
                        }
                        if k == 0 && idx.iter().all(|&i| i == 0) {
                            break;
                        }
                    }
                }
            }
        }
        // 2. Random multi-d cases (fixed seed): direct sources with byte strides of any
        //    sign, through every compiled pattern.
        let mut seed: u64 = 0x5eed_cafe;
        let mut next = move |m: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % m
        };
        for _ in 0..3000 {
            let ndim = 2 + next(3) as usize;
            let shape: Vec<isize> = (0..ndim).map(|_| next(5) as isize).collect();
            let strides: Vec<isize> = (0..ndim).map(|_| (next(9) as isize - 4) * 8).collect();
            let (mut lo, mut hi) = (0isize, 0isize);
            if !shape.contains(&0) {
                for (&n, &s) in shape.iter().zip(&strides) {
                    let d = (n - 1) * s;
                    if d < 0 {
                        lo += d
                    } else {
                        hi += d
                    }
                }
            }
            let source = Source {
                expr: format!(
                    "live_support.direct({}, {}, {shape:?}, {strides:?})",
                    hi - lo + 16,
                    -lo + 8
                ),
            };
            let obj = build(py, &source);
            let src = read_buffer(&obj).unwrap();
            let index_of = index_map(&src);
            let candidates: Vec<&Func> = funcs
                .iter()
                .filter(|f| f.ndim == ndim && f.decl == "strided")
                .collect();
            let f = candidates[next(candidates.len() as u64) as usize];
            let values: Vec<isize> = f.params.iter().map(|_| next(17) as isize - 8).collect();
            all.push(run_case(
                py,
                f,
                &values,
                &source.expr,
                &obj,
                &src,
                &index_of,
                &tally,
            ));
        }
    });
    // Group the differences, keep the smallest reproducer of each kind.
    let mut groups: BTreeMap<&str, (usize, &Case)> = BTreeMap::new();
    for c in &all {
        if let Some(kind) = classify(c) {
            let e = groups.entry(kind).or_insert((0, c));
            e.0 += 1;
            if (c.size, c.source.len()) < (e.1.size, e.1.source.len()) {
                e.1 = c;
            }
        }
    }
    // The snapshot's file name carries the release: a build that nothing pins is compared
    // with the snapshot of the release it follows (support::snapshot_release).
    println!("findings: Cython {release} against Python semantics");
    let mut table = format!("Against Python semantics: {} cases\n\n", all.len());
    table.push_str(
        "| finding | cases | smallest reproducer | Cython | Python |\n|---|---|---|---|---|\n",
    );
    for (kind, (count, c)) in &groups {
        let items: Vec<String> = c.items.iter().map(item_text).collect();
        let repro = format!("v = {}; v[{}]", c.source, items.join(", "));
        table.push_str(&format!(
            "| {kind} | {count} | `{repro}` | {} | {} |\n",
            c.cython.render(),
            c.python.render()
        ));
        support::finding(
            &format!("{kind} / {repro}"),
            if kind.starts_with("memory") {
                "outside-source"
            } else {
                "python-semantics"
            },
            &repro,
            &format!(
                "Cython: {}; Python: {}",
                c.cython.render(),
                c.python.render()
            ),
        );
    }
    let outcome = tally.finish();
    support::report(
        "findings: core predicts Cython on the search",
        all.len(),
        all.len() - outcome.failed(),
        outcome.failed(),
    );
    println!("{table}");
    Search {
        outcome,
        cases: all.len(),
        table,
    }
}

// One test per finding class: the core predicts Cython on every case of the class. Which
// classes a release shows, and how many cases each, is pinned by the release's snapshot
// (`findings_against_python_semantics_match_the_snapshot_of_this_release`), so a class
// may be empty here.
behaviour_tests!(mod core_predicts_cython: SEARCH.outcome, CLASSES, at_least 10_001;
    where_cython_agrees_with_python => AGREES,
    where_cython_raises_another_exception_than_python => OTHER_EXCEPTION; may_be_empty,
    where_cython_selects_an_element_outside_the_source => OUTSIDE; may_be_empty,
    where_cython_raises_and_python_slices => RAISES_WHERE_PYTHON_SLICES; may_be_empty,
    where_cython_slices_and_python_raises => SLICES_WHERE_PYTHON_RAISES; may_be_empty,
    where_cython_gives_another_shape_with_the_same_elements => OTHER_SHAPE; may_be_empty,
    where_cython_selects_more_elements_than_python => MORE; may_be_empty,
    where_cython_selects_fewer_elements_than_python => FEWER; may_be_empty,
    where_cython_selects_other_elements_than_python => OTHER_ELEMENTS; may_be_empty,
);

/// The search's cases are the ones tallied by finding class.
#[test]
fn search_tallies_every_case() {
    assert_eq!(SEARCH.outcome.total(), SEARCH.cases);
}

/// The findings of this release (classes, counts, smallest reproducers) are the snapshot's.
#[test]
fn findings_against_python_semantics_match_the_snapshot_of_this_release() {
    let release =
        support::snapshot_release("findings_vs_python_semantics", &support::cython_release());
    insta::with_settings!({snapshot_suffix => release, prepend_module_to_snapshot => false}, {
        insta::assert_snapshot!("findings_vs_python_semantics", SEARCH.table.clone());
    });
}
