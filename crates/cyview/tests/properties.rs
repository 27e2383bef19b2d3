//! Properties of slicing on random 1-4-d direct and indirect structures laid out in real
//! memory.
//!
//! The oracle here selects indices per dimension by brute force (walking `range(n)` the way
//! Python's and Cython's slice rules describe), independently of the crate's arithmetic; the
//! brute-force Python rule is itself checked against CPython in `python_oracle_agrees_with_cpython`.

mod common;

use std::collections::HashSet;

use common::{all_indices, any_spec, direct_spec, items, slice_addresses, Structure};
use cyview::raw::slicing;
use cyview::Semantics;
use cyview::{ErrorKind, Slice, SliceItem, TrustedMemory};
use proptest::prelude::*;

/// `list(range(n))[start:stop:step]` by walking the range, or `None` for step 0.
fn naive_python(n: isize, s: Slice) -> Option<Vec<isize>> {
    let n = n as i128;
    let step = s.step.unwrap_or(1) as i128;
    if step == 0 {
        return None;
    }
    let norm = |b: isize, lo: i128, hi: i128| -> i128 {
        let b = b as i128;
        let b = if b < 0 { b + n } else { b };
        b.clamp(lo, hi)
    };
    let mut out = Vec::new();
    if step > 0 {
        let start = s.start.map_or(0, |a| norm(a, 0, n));
        let stop = s.stop.map_or(n, |b| norm(b, 0, n));
        let mut i = start;
        while i < stop {
            out.push(i as isize);
            i += step;
        }
    } else {
        let start = s.start.map_or(n - 1, |a| norm(a, -1, n - 1));
        let stop = s.stop.map_or(-1, |b| norm(b, -1, n - 1));
        let mut i = start;
        while i > stop {
            out.push(i as isize);
            i += step;
        }
    }
    Some(out)
}

/// Cython's rules (`__pyx_memoryview_slice_memviewslice`) restated: bounds clamped (negative
/// bounds to 0 whatever the step; a start past the end to `n - 1` for a negative step),
/// then `len = (stop - start) / step` in C's truncating division, plus one whenever that
/// division leaves a remainder, floored at 0; the selection is `start + k * step`.
fn naive_cython(n: isize, s: Slice) -> Option<Vec<isize>> {
    let n = n as i128;
    let step = s.step.unwrap_or(1) as i128;
    if step == 0 {
        return None;
    }
    let wrap = |b: isize| -> i128 {
        let b = b as i128;
        if b < 0 {
            (b + n).max(0)
        } else {
            b
        }
    };
    let (start, stop) = if step > 0 {
        (
            s.start.map_or(0, |a| wrap(a).min(n)),
            s.stop.map_or(n, |b| wrap(b).min(n)),
        )
    } else {
        // A negative start wraps and clamps to 0; only a start >= n is pulled back to n - 1.
        let start = s.start.map_or(n - 1, |a| {
            if a < 0 {
                wrap(a)
            } else {
                (a as i128).min(n - 1)
            }
        });
        (start, s.stop.map_or(-1, |b| wrap(b).min(n)))
    };
    let diff = stop - start;
    let mut len = diff / step; // i128 division truncates toward zero, as C's does
    if diff % step != 0 {
        len += 1;
    }
    let len = len.max(0);
    Some((0..len).map(|k| (start + k * step) as isize).collect())
}

enum Sel {
    New,
    Fixed(isize),
    Pick(Vec<isize>),
}

/// Expected result of a slicing.
struct Expect {
    shape: Vec<isize>,
    /// Source index of every result element, in C order.
    sources: Vec<Vec<isize>>,
    /// A kept indirect dimension whose suboffset ends negative: (result dim, result empty).
    negative_suboffset: Option<(usize, bool)>,
    /// Some selected index lies outside its dimension (Cython's length arithmetic).
    out_of_bounds: bool,
}

/// Expected result of `src[items]`, or the error kind. `indirect` is the source's indirect
/// dimension and its suboffset.
fn oracle(
    shape: &[isize],
    strides: &[isize],
    indirect: Option<(usize, isize)>,
    items: &[SliceItem],
    sem: Semantics,
    in_bounds: bool,
) -> Result<Expect, ErrorKind> {
    let ndim = shape.len();
    let n_idx = items.iter().filter(|i| **i != SliceItem::NewAxis).count() as isize;
    // Expansion (Cython's unellipsify): the first Ellipsis becomes ndim - n_idx + 1 full
    // slices (none when negative); the count is checked afterwards.
    let mut exp = Vec::new();
    let mut seen = false;
    for it in items {
        match it {
            SliceItem::Ellipsis if !seen => {
                seen = true;
                for _ in 0..(ndim as isize - n_idx + 1).max(0) {
                    exp.push(SliceItem::Slice(Slice::FULL));
                }
            }
            SliceItem::Ellipsis => exp.push(SliceItem::Slice(Slice::FULL)),
            other => exp.push(*other),
        }
    }
    let used = exp.iter().filter(|i| **i != SliceItem::NewAxis).count();
    if used > ndim {
        return Err(ErrorKind::CompileError);
    }
    for _ in used..ndim {
        exp.push(SliceItem::Slice(Slice::FULL));
    }
    if exp
        .iter()
        .filter(|i| !matches!(i, SliceItem::Index(_)))
        .count()
        >= cyview::MAX_DIMS
    {
        return Err(ErrorKind::CompileError);
    }
    let wrap = |i: isize, n: isize| -> Option<isize> {
        let j = if i < 0 {
            i as i128 + n as i128
        } else {
            i as i128
        };
        (0..n as i128).contains(&j).then_some(j as isize)
    };
    if ndim > 0 && exp.iter().all(|i| matches!(i, SliceItem::Index(_))) {
        // Element access: all axes are checked.
        let mut idx = Vec::new();
        for (d, it) in exp.iter().enumerate() {
            let SliceItem::Index(i) = it else {
                unreachable!()
            };
            match wrap(*i, shape[d]) {
                Some(j) => idx.push(j),
                None => return Err(ErrorKind::IndexError),
            }
        }
        return Ok(Expect {
            shape: vec![],
            sources: vec![idx],
            negative_suboffset: None,
            out_of_bounds: false,
        });
    }
    let mut sels = Vec::new();
    let mut kept = 0;
    let mut dim = 0;
    // The kept indirect dimension (result dim) and the sum its suboffset accumulates.
    let mut kept_indirect: Option<(usize, i128)> = None;
    let mut empty = false;
    let mut out_of_bounds = false;
    for it in &exp {
        let first = match *it {
            SliceItem::NewAxis => {
                sels.push(Sel::New);
                kept += 1;
                continue;
            }
            SliceItem::Index(i) => {
                let j = wrap(i, shape[dim]).ok_or(ErrorKind::IndexError)?;
                if indirect.is_some_and(|(d, _)| d == dim) && kept > 0 {
                    return Err(ErrorKind::IndexError);
                }
                sels.push(Sel::Fixed(j));
                Some(j)
            }
            SliceItem::Slice(s) => {
                let picked = match sem {
                    Semantics::Python | Semantics::CythonPatched => naive_python(shape[dim], s),
                    Semantics::Cython => naive_cython(shape[dim], s),
                }
                .ok_or(ErrorKind::ValueError)?;
                let first = picked.first().copied();
                empty |= picked.is_empty();
                let outside = picked.iter().any(|&i| i < 0 || i >= shape[dim]);
                // The in-bounds variant refuses an outside selection only once the whole
                // result is known to be non-empty (an empty result addresses nothing), so
                // later items' errors come first.
                out_of_bounds |= outside;
                sels.push(Sel::Pick(picked));
                first
            }
            SliceItem::Ellipsis => unreachable!(),
        };
        if let Some((_, acc)) = kept_indirect.as_mut() {
            *acc += first.unwrap_or(0) as i128 * strides[dim] as i128;
        }
        if let (Some((d, sub)), SliceItem::Slice(_)) = (indirect, it) {
            if d == dim {
                kept_indirect = Some((kept, sub as i128));
            }
        }
        if !matches!(it, SliceItem::Index(_)) {
            kept += 1;
        }
        dim += 1;
    }
    let negative_suboffset = match kept_indirect {
        Some((d, acc)) if acc < 0 => Some((d, empty)),
        _ => None,
    };
    // Only an empty result without indirect dimensions escapes the checks.
    let inert = empty && kept_indirect.is_none();
    if in_bounds && out_of_bounds && !inert {
        return Err(ErrorKind::ValueError);
    }
    // An empty result's negative suboffset depends on the start offsets of its empty
    // selections, which this oracle does not model: the implementation may refuse it (the
    // callers allow a "suboffset" refusal of an empty result), so only non-empty ones are
    // predicted.
    if (sem == Semantics::Python || in_bounds)
        && negative_suboffset.is_some_and(|(_, empty)| !empty)
    {
        return Err(ErrorKind::ValueError);
    }
    let result_shape: Vec<isize> = sels
        .iter()
        .filter_map(|s| match s {
            Sel::New => Some(1),
            Sel::Fixed(_) => None,
            Sel::Pick(v) => Some(v.len() as isize),
        })
        .collect();
    let mut sources = Vec::new();
    for ridx in all_indices(&result_shape) {
        let mut k = 0;
        let mut src = Vec::new();
        for s in &sels {
            match s {
                Sel::New => k += 1,
                Sel::Fixed(j) => src.push(*j),
                Sel::Pick(v) => {
                    src.push(v[ridx[k] as usize]);
                    k += 1;
                }
            }
        }
        sources.push(src);
    }
    if out_of_bounds && !empty {
        // The selection reaches outside the source; report the shape only.
        return Ok(Expect {
            shape: result_shape,
            sources: vec![],
            negative_suboffset,
            out_of_bounds,
        });
    }
    Ok(Expect {
        shape: result_shape,
        sources,
        negative_suboffset,
        out_of_bounds: false,
    })
}

fn source_indirect(s: &Structure) -> Option<(usize, isize)> {
    s.spec.indirect.map(|d| (d, s.spec.suboffset))
}

fn run(
    structure: &Structure,
    items: &[SliceItem],
    sem: Semantics,
) -> Result<(cyview::MemviewSlice, usize), cyview::Error> {
    // SAFETY: the structure's memory is alive and all its pointer slots are written.
    let mem = unsafe { TrustedMemory::new() };
    slicing::slice(&structure.raw, structure.ndim, items, sem, mem)
}

fn check_against_oracle(
    spec: common::Spec,
    items: Vec<SliceItem>,
    sem: Semantics,
) -> Result<(), TestCaseError> {
    let s = Structure::build(spec);
    let expected = oracle(
        &s.spec.shape,
        &s.spec.strides,
        source_indirect(&s),
        &items,
        sem,
        false,
    );
    let got = run(&s, &items, sem);
    match (expected, got) {
        (Ok(exp), Ok((raw, ndim))) => {
            prop_assert_eq!(&raw.shape[..ndim], &exp.shape[..]);
            match exp.negative_suboffset {
                // Cython's arithmetic selects indices outside the source: only the shape is
                // comparable (the addresses lie outside the structure's memory).
                _ if exp.out_of_bounds => prop_assert_eq!(sem, Semantics::Cython),
                // Cython's bookkeeping turns the indirect dimension into a direct one: the
                // result must show exactly that (and is not comparable element-wise).
                Some((d, false)) => prop_assert!(raw.suboffsets[d] < 0),
                _ => {
                    let want: Vec<usize> = exp.sources.iter().map(|i| s.address(i)).collect();
                    prop_assert_eq!(slice_addresses(&raw, ndim), want);
                }
            }
        }
        (Ok(exp), Err(e)) if exp.sources.is_empty() && sem == Semantics::Python => {
            // Empty result whose (unused) start offsets make an indirect suboffset negative:
            // refusing is allowed.
            prop_assert_eq!(e.kind(), ErrorKind::ValueError);
            prop_assert!(e.message().contains("suboffset"), "{}", e);
        }
        (Err(kind), Err(e)) => prop_assert_eq!(kind, e.kind(), "message: {}", e),
        (e, g) => prop_assert!(
            false,
            "oracle {:?} vs implementation {:?}",
            e.map(|x| x.shape),
            g.map(|x| x.1)
        ),
    }
    Ok(())
}

/// 2,000 cases per property by default; `PROPTEST_CASES` raises (or lowers) it.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    /// Python semantics select, per dimension, exactly the indices `range(n)[slice]` selects,
    /// and the result addresses the source's elements at those indices.
    #[test]
    fn python_semantics_equal_range_slicing_per_dimension(spec in any_spec(), items in items()) {
        check_against_oracle(spec, items, Semantics::Python)?;
    }

    /// The same for Cython's clamping rules (the harness compares them with compiled Cython).
    #[test]
    fn cython_semantics_equal_brute_force_clamping_per_dimension(spec in any_spec(), items in items()) {
        check_against_oracle(spec, items, Semantics::Cython)?;
    }

    /// The patched Cython arithmetic selects what CPython's (`PySlice_AdjustIndices`)
    /// selects: the same length, the same start unless the result is empty, and Cython's
    /// start and step (as given) otherwise.
    #[test]
    fn patched_resolve_selects_what_python_resolve_selects(
        n in 0isize..40,
        start in proptest::option::of(-50isize..50),
        stop in proptest::option::of(-50isize..50),
        step in proptest::option::of(prop_oneof![-5isize..=5, Just(isize::MIN), Just(isize::MAX)]),
    ) {
        let s = Slice::new(start, stop, step);
        let patched = slicing::resolve_cython_patched(s, n, 0);
        let python = slicing::resolve_python(s, n, 0);
        let cython = slicing::resolve_cython(s, n, 0);
        match (patched, python, cython) {
            (Ok(p), Ok(q), Ok(c)) => {
                prop_assert_eq!(p.len, q.len);
                if p.len > 0 {
                    prop_assert_eq!(p.start, q.start);
                }
                prop_assert_eq!((p.start, p.step), (c.start, c.step));
                prop_assert_eq!(p.step, step.unwrap_or(1));
            }
            (Err(p), Err(q), Err(_)) => prop_assert_eq!(p.message(), q.message()),
            (p, q, c) => prop_assert!(false, "{:?} vs {:?} vs {:?}", p, q, c),
        }
    }

    /// Cython with the slice-bounds fix (`Semantics::CythonPatched`) selects what
    /// `range(n)[slice]` selects, with Cython's indirect bookkeeping (a negative suboffset is
    /// kept, as Cython keeps it, not refused).
    #[test]
    fn patched_cython_semantics_equal_range_slicing_per_dimension(spec in any_spec(), items in items()) {
        check_against_oracle(spec, items, Semantics::CythonPatched)?;
    }

    /// Every element address of a slice, in either semantics, is an element address of the
    /// source: a view can never reach outside its source.
    #[test]
    fn slice_elements_lie_in_the_source(spec in any_spec(), items in items()) {
        let s = Structure::build(spec);
        let source: HashSet<usize> = s.addresses().into_iter().collect();
        for sem in [Semantics::Python, Semantics::Cython, Semantics::CythonPatched] {
            // SAFETY: the structure's memory is alive and all its pointer slots are written.
            let mem = unsafe { TrustedMemory::new() };
            if let Ok((raw, ndim)) = slicing::slice_in_bounds(&s.raw, s.ndim, &items, sem, mem) {
                for a in slice_addresses(&raw, ndim) {
                    prop_assert!(source.contains(&a), "{:?} reaches outside: {:#x}", sem, a);
                }
            }
        }
    }

    /// Slicing a slice gives the elements that composing the two index maps selects, in both
    /// semantics (this exercises the data-pointer / suboffset bookkeeping across calls).
    #[test]
    fn composing_two_slicings_equals_the_composed_selection(spec in any_spec(), a in items(), b in items()) {
        let s = Structure::build(spec);
        for sem in [Semantics::Python, Semantics::Cython, Semantics::CythonPatched] {
            // SAFETY: the structure's memory is alive and all its pointer slots are written.
            let mem = unsafe { TrustedMemory::new() };
            let Ok((first, n1)) = slicing::slice_in_bounds(&s.raw, s.ndim, &a, sem, mem) else { continue };
            let Ok(Expect { sources: src_of_first, .. }) = oracle(&s.spec.shape, &s.spec.strides, source_indirect(&s), &a, sem, true) else {
                prop_assert!(false, "oracle disagrees on success of the first slicing");
                unreachable!()
            };
            // Where is the indirect dimension of `first`, if still kept?
            let ind = (0..n1).find(|&d| first.suboffsets[d] >= 0).map(|d| (d, first.suboffsets[d]));
            // SAFETY: `first` is an in-bounds slice of the live structure.
            let mem = unsafe { TrustedMemory::new() };
            let second = slicing::slice_in_bounds(&first, n1, &b, sem, mem);
            let expected = oracle(&first.shape[..n1], &first.strides[..n1], ind, &b, sem, true);
            match (expected, second) {
                (Ok(exp), Err(e)) if exp.sources.is_empty() => {
                    // The in-bounds variant refuses what would reach outside the source.
                    prop_assert_eq!(e.kind(), ErrorKind::ValueError);
                    prop_assert!(e.message().starts_with("Cannot slice"), "{}", e);
                }
                (Ok(Expect { shape, sources: srcs, .. }), Ok((raw, n2))) => {
                    prop_assert_eq!(&raw.shape[..n2], &shape[..]);
                    // Map second-level indices to first-level ones, then to source indices.
                    let first_shape = first.shape[..n1].to_vec();
                    let flat = |idx: &[isize]| -> usize {
                        idx.iter().zip(&first_shape).fold(0usize, |acc, (&i, &n)| acc * n as usize + i as usize)
                    };
                    let want: Vec<usize> = srcs.iter().map(|i| s.address(&src_of_first[flat(i)])).collect();
                    prop_assert_eq!(slice_addresses(&raw, n2), want);
                }
                (Err(kind), Err(e)) => prop_assert_eq!(kind, e.kind()),
                (e, g) => prop_assert!(false, "oracle {:?} vs implementation {:?}", e.map(|x| x.shape), g.map(|x| x.1)),
            }
        }
    }

    /// Integer indexing composes: `v[i, rest...]` addresses the same elements as `v[i][rest...]`.
    #[test]
    fn index_then_rest_equals_index_tuple(spec in direct_spec(), i in -7isize..7, rest in items()) {
        let s = Structure::build(spec);
        let mut whole = vec![SliceItem::Index(i)];
        whole.extend(rest.iter().copied());
        let direct = run(&s, &whole, Semantics::Cython);
        if let Ok((first, n1)) = run(&s, &[SliceItem::Index(i)], Semantics::Cython) {
            if n1 == 0 {
                return Ok(());
            }
            let two = slicing::slice(&first, n1, &rest, Semantics::Cython, cyview::Direct);
            match (direct, two) {
                (Ok((a, na)), Ok((b, nb))) => {
                    prop_assert_eq!(na, nb);
                    prop_assert_eq!(slice_addresses(&a, na), slice_addresses(&b, nb));
                }
                // Error axes are numbered differently (the tuple counts the indexed axis).
                (Err(a), Err(b)) => prop_assert_eq!(a.kind(), b.kind()),
                (a, b) => prop_assert!(false, "{:?} vs {:?}", a.map(|x| x.1), b.map(|x| x.1)),
            }
        }
    }
}

/// The brute-force Python rule above agrees with CPython's own `range` slicing on every
/// small case (n 0-6, bounds -9..9 and None, steps -4..4 and None).
#[test]
fn python_oracle_agrees_with_cpython() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let python = std::env::var("CYVIEW_PYTHON").unwrap_or_else(|_| "python3".into());
    let bounds: Vec<Option<isize>> = std::iter::once(None).chain((-9..=9).map(Some)).collect();
    let steps: Vec<Option<isize>> = std::iter::once(None)
        .chain((-4..=4).filter(|&x| x != 0).map(Some))
        .collect();
    let mut cases = Vec::new();
    for n in 0..=6isize {
        for &a in &bounds {
            for &b in &bounds {
                for &c in &steps {
                    cases.push((n, Slice::new(a, b, c)));
                }
            }
        }
    }
    let fmt = |o: Option<isize>| o.map_or("None".to_string(), |v| v.to_string());
    let mut script = String::from("import sys\n");
    for (n, s) in &cases {
        script.push_str(&format!(
            "print(list(range({n})[{}:{}:{}]))\n",
            fmt(s.start),
            fmt(s.stop),
            fmt(s.step)
        ));
    }
    let mut child = Command::new(&python)
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run {python} (set CYVIEW_PYTHON or install python3): {e}")
        });
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), cases.len());
    for ((n, s), line) in cases.iter().zip(lines) {
        let mine = naive_python(*n, *s).unwrap();
        let rendered = format!(
            "[{}]",
            mine.iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        assert_eq!(rendered, line, "n={n} slice={s:?}");
        // And the crate's arithmetic gives the same selection.
        let r = slicing::resolve_python(*s, *n, 0).unwrap();
        let got: Vec<isize> = (0..r.len).map(|k| r.start + k * r.step).collect();
        assert_eq!(got, mine, "n={n} slice={s:?}");
    }
    assert!(cases.len() > 25_000);
}

// The shrunk failures proptest found while this suite was written (kept in
// properties.proptest-regressions), each as a named example.

fn spec(
    shape: &[isize],
    strides: &[isize],
    indirect: Option<usize>,
    suboffset: isize,
) -> common::Spec {
    common::Spec {
        shape: shape.to_vec(),
        strides: strides.to_vec(),
        indirect,
        suboffset,
        itemsize: 8,
    }
}

fn sl(start: Option<isize>, stop: Option<isize>, step: Option<isize>) -> SliceItem {
    SliceItem::Slice(Slice::new(start, stop, step))
}

fn both(spec: common::Spec, items: Vec<SliceItem>) {
    for sem in [
        Semantics::Python,
        Semantics::Cython,
        Semantics::CythonPatched,
    ] {
        check_against_oracle(spec.clone(), items.clone(), sem).unwrap();
    }
}

#[test]
fn cython_length_arithmetic_gives_one_element_for_stop_0_step_minus_2_on_an_empty_axis() {
    both(
        spec(&[0], &[0], None, -1),
        vec![sl(None, Some(0), Some(-2))],
    );
    both(
        spec(&[0, 0], &[0, 0], None, -1),
        vec![sl(None, Some(0), Some(-2))],
    );
    // And Cython semantics really select one element there (outside the empty source).
    let s = Structure::build(spec(&[0], &[8], None, -1));
    let (raw, n) = run(&s, &[sl(None, Some(0), Some(-2))], Semantics::Cython).unwrap();
    assert_eq!((n, raw.shape[0]), (1, 1));
    let (raw, _) = run(&s, &[sl(None, Some(0), Some(-2))], Semantics::Python).unwrap();
    assert_eq!(raw.shape[0], 0);
}

#[test]
fn negative_start_with_negative_step_on_an_empty_axis_clamps_to_0_in_cython() {
    both(
        spec(&[0, 0, 0], &[0, 0, 0], Some(0), 0),
        vec![sl(Some(-1), None, Some(-2))],
    );
}

#[test]
fn negative_step_offset_after_a_kept_indirect_axis_makes_its_suboffset_negative() {
    both(
        spec(&[1, 1, 2], &[0, 0, -24], Some(0), 0),
        vec![SliceItem::Ellipsis, sl(None, None, Some(-2))],
    );
    both(
        spec(&[0, 0], &[0, 8], Some(0), 0),
        vec![SliceItem::Ellipsis, sl(None, None, Some(-2))],
    );
    let s = Structure::build(spec(&[1, 1, 2], &[0, 0, -24], Some(0), 0));
    let items = [SliceItem::Ellipsis, sl(None, None, Some(-2))];
    let (raw, _) = run(&s, &items, Semantics::Cython).unwrap();
    assert_eq!(raw.suboffsets[0], -24);
    let err = run(&s, &items, Semantics::Python).unwrap_err();
    assert_eq!(
        err.message(),
        "Cannot slice: the suboffset of indirect dimension 0 would become negative (-24)"
    );
}

#[test]
fn ellipsis_then_an_index_for_every_axis_is_element_access() {
    both(
        spec(&[0, 0, 0], &[0, 0, 0], None, -1),
        vec![
            SliceItem::Ellipsis,
            SliceItem::Index(0),
            SliceItem::Index(0),
            SliceItem::Index(0),
        ],
    );
}

#[test]
fn slicing_twice_composes_in_the_shrunk_cases() {
    let cases: Vec<(common::Spec, Vec<SliceItem>, Vec<SliceItem>)> = vec![
        (
            spec(&[0], &[0], None, -1),
            vec![],
            vec![sl(Some(-1), None, Some(-1))],
        ),
        (
            spec(&[0, 0, 0, 0], &[0, 0, 0, 0], None, -1),
            vec![],
            vec![sl(None, Some(0), Some(-2)), SliceItem::Index(0)],
        ),
        (
            spec(&[0], &[0], Some(0), 0),
            vec![sl(None, None, None), SliceItem::Ellipsis],
            vec![],
        ),
        (
            spec(&[0, 0, 0, 0], &[0, 0, 0, 0], Some(0), 0),
            vec![SliceItem::NewAxis; 2],
            vec![SliceItem::NewAxis; 2],
        ),
    ];
    for (spec, a, b) in cases {
        let s = Structure::build(spec);
        for sem in [
            Semantics::Python,
            Semantics::Cython,
            Semantics::CythonPatched,
        ] {
            // SAFETY: the structure's memory is alive and its pointer slots are written.
            let mem = unsafe { TrustedMemory::new() };
            let Ok((first, n1)) = slicing::slice_in_bounds(&s.raw, s.ndim, &a, sem, mem) else {
                continue;
            };
            let ind = (0..n1)
                .find(|&d| first.suboffsets[d] >= 0)
                .map(|d| (d, first.suboffsets[d]));
            // SAFETY: `first` is an in-bounds slice of the live structure.
            let mem = unsafe { TrustedMemory::new() };
            let second = slicing::slice_in_bounds(&first, n1, &b, sem, mem);
            match (
                oracle(&first.shape[..n1], &first.strides[..n1], ind, &b, sem, true),
                second,
            ) {
                (Ok(exp), Ok((raw, n2))) => assert_eq!(&raw.shape[..n2], &exp.shape[..]),
                (Ok(exp), Err(e)) => assert!(
                    exp.sources.is_empty() && e.message().starts_with("Cannot slice"),
                    "{e}"
                ),
                (Err(kind), Err(e)) => assert_eq!(kind, e.kind()),
                (Err(kind), Ok(_)) => panic!("oracle {kind:?}, implementation succeeded"),
            }
        }
    }
}

/// Reads "pointers" without touching memory: the value is derived from the address, so
/// chains of indirections can be followed on arbitrary garbage.
struct Arithmetic;

impl cyview::ReadPointer for Arithmetic {
    fn read_pointer(&self, at: *const u8) -> Result<*mut u8, cyview::Error> {
        Ok(std::ptr::without_provenance_mut(
            (at as usize).rotate_left(7) ^ 0x5a5a,
        ))
    }
}

fn wild() -> impl Strategy<Value = isize> {
    prop_oneof![
        4 => -10isize..=10,
        1 => any::<isize>(),
        1 => prop_oneof![Just(isize::MIN), Just(isize::MAX), Just(isize::MIN + 1), Just(isize::MAX - 1)],
    ]
}

fn wild_slice() -> impl Strategy<Value = cyview::MemviewSlice> {
    (
        proptest::collection::vec(wild(), 8),
        proptest::collection::vec(wild(), 8),
        proptest::collection::vec(wild(), 8),
        any::<usize>(),
    )
        .prop_map(|(shape, strides, subs, data)| {
            let mut raw = cyview::MemviewSlice::EMPTY;
            raw.data = std::ptr::without_provenance_mut(data);
            raw.shape.copy_from_slice(&shape);
            raw.strides.copy_from_slice(&strides);
            raw.suboffsets.copy_from_slice(&subs);
            raw
        })
}

fn wild_items() -> impl Strategy<Value = Vec<SliceItem>> {
    let item = prop_oneof![
        wild().prop_map(SliceItem::Index),
        (
            proptest::option::of(wild()),
            proptest::option::of(wild()),
            proptest::option::of(wild())
        )
            .prop_map(|(a, b, c)| SliceItem::Slice(Slice::new(a, b, c))),
        Just(SliceItem::NewAxis),
        Just(SliceItem::Ellipsis),
    ];
    proptest::collection::vec(item, 0..=20)
}

proptest! {
    #![proptest_config(config())]

    /// No input makes the pure functions panic (in debug builds, overflow included): garbage
    /// geometry, any ndim up to 12, any items.
    #[test]
    fn no_input_panics(raw in wild_slice(), ndim in 0usize..=12, items in wild_items(), bare in any::<bool>(), itemsize in wild()) {
        use cyview::raw::slicing::{self, Release};
        use cyview::raw::{contig, validate};
        use cyview::{AxisSpec, Contiguity, Order};
        for sem in [Semantics::Python, Semantics::Cython, Semantics::CythonPatched] {
            let _ = slicing::slice(&raw, ndim, &items, sem, Arithmetic);
            let _ = slicing::slice_in_bounds(&raw, ndim, &items, sem, Arithmetic);
            let _ = slicing::slice(&raw, ndim, &items, sem, cyview::Direct);
        }
        for release in [Release::Cython0_29, Release::Cython3_0, Release::Cython3_3] {
            let _ = slicing::getitem_object(&raw, ndim, &items, subscript(bare), release, Arithmetic);
        }
        let idx: Vec<isize> = items.iter().map(|i| match i { SliceItem::Index(i) => *i, _ => 0 }).collect();
        let _ = slicing::element_ptr(&raw, ndim, &idx, Arithmetic);
        let _ = slicing::element_ptr_unchecked(&raw, &idx, Arithmetic);
        let _ = slicing::expand(&items, ndim);
        let mut t = raw;
        let _ = slicing::transpose(&mut t, ndim);
        for s in items.iter().filter_map(|i| match i { SliceItem::Slice(s) => Some(*s), _ => None }) {
            let _ = slicing::resolve_cython(s, raw.shape[0], 0);
            let _ = slicing::resolve_python(s, raw.shape[0], 0);
        }
        for order in [Order::C, Order::Fortran] {
            let _ = contig::is_contig(&raw, ndim, itemsize, order);
            let mut strides = [0isize; 8];
            let _ = contig::contiguous_strides(&raw.shape[..ndim.min(8)], &mut strides, itemsize, order);
            let _ = cyview::ContigBuffer::new(&raw.shape[..ndim.min(8)].iter().map(|n| n.rem_euclid(4)).collect::<Vec<_>>(), 8, order);
        }
        let _ = contig::best_order(&raw, ndim);
        let n = ndim.min(8);
        let info = validate::BufferInfo {
            buf: raw.data,
            itemsize,
            len: itemsize,
            shape: &raw.shape[..n],
            strides: bare.then_some(&raw.strides[..n]),
            suboffsets: (!bare).then_some(&raw.suboffsets[..n]),
        };
        let specs: Vec<AxisSpec> = (0..n).filter_map(|d| AxisSpec::from_flags(1u32 << (d % 3) | 8u32 << ((d / 3) % 3))).collect();
        for c in [Contiguity::None, Contiguity::C, Contiguity::Fortran] {
            let _ = validate::check_axes(&info, &specs, c);
        }
        let _ = validate::check_itemsize(itemsize, "double", 8);
        let _ = validate::init_slice(&info, std::ptr::null_mut());
    }
}

/// An empty result whose empty selection still moves the kept indirect dimension's
/// suboffset by its start (here `-1:0` on extent 4 starts at 3: +24, then index -3 on the
/// stride -16 dimension: -32): the suboffset ends at 0, the result is kept, and no element
/// is addressed. The oracle used to assume an empty selection starts at 0 (suboffset -32)
/// and predicted a refusal.
#[test]
fn empty_selection_start_still_moves_the_kept_indirect_suboffset() {
    let items = vec![
        sl(None, None, None),
        sl(Some(-1), Some(0), None),
        SliceItem::Index(-3),
    ];
    both(spec(&[0, 4, 5], &[0, 8, -16], Some(0), 8), items.clone());
    let s = Structure::build(spec(&[0, 4, 5], &[0, 8, -16], Some(0), 8));
    for sem in [
        Semantics::Python,
        Semantics::Cython,
        Semantics::CythonPatched,
    ] {
        let (raw, n) = run(&s, &items, sem).unwrap();
        assert_eq!((n, &raw.shape[..2], raw.suboffsets[0]), (2, &[0, 0][..], 0));
    }
}

/// `m[x]` (one item, `bare`) or `m[(..)]`.
fn subscript(bare: bool) -> slicing::Subscript {
    if bare {
        slicing::Subscript::Single
    } else {
        slicing::Subscript::Tuple
    }
}
