//! Stateful fuzzing of the safe operations at the Python boundary (issue 9): random
//! `RustBuffer`s (direct with random strides, or PIL-style indirect) exported to Python,
//! acquired back as Cython would (`acquire`) and by Cython itself (`exch_from_object`,
//! giving a `CythonSlice`), then random sequences of view operations — slicing in both
//! semantics, new axes, indexing, transpose, iteration, copies, `CythonSlice` clone / drop /
//! Cython-semantics slice / view, Cython reading a view back (`exch_sum`) — with every
//! address any view reaches checked against the buffer's own elements (found independently,
//! by walking the exporter's recorded pointer slots), every value read checked against the
//! value Rust stored there, and export counts and refcounts back to their start at the end.
//!
//! `CYVIEW_FUZZ_BOUNDARY_SEQUENCES` (default 20,000) and `CYVIEW_FUZZ_SEED` (default a fixed
//! seed) choose the run; `ci/valgrind` runs a fixed-seed subset under memcheck.

mod support;

use std::collections::HashMap;

use cyview::{format, Access, AxisSpec, MemviewSlice, Packing, Semantics, Slice, SliceItem, View};
use cyview_py::{acquire, capi_function, CythonSlice, Declaration, RustBuffer};
use pyo3::prelude::*;
use support::{element_addresses, read_buffer, refcount, report, with_python};

const GENERIC: AxisSpec = AxisSpec::new(Access::Full, Packing::Strided);

type FromObject = unsafe extern "C" fn(*mut pyo3::ffi::PyObject) -> MemviewSlice;
type Sum = unsafe extern "C" fn(MemviewSlice) -> f64;

/// xorshift64*: small, deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn int(&mut self, lo: i64, hi: i64) -> isize {
        (lo + self.below((hi - lo + 1) as u64) as i64) as isize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    /// An index or bound: mostly small, sometimes extreme.
    fn bound(&mut self) -> isize {
        match self.below(10) {
            0 => isize::MIN,
            1 => isize::MAX,
            2 => self.int(-100, 100),
            _ => self.int(-5, 5),
        }
    }
}

/// The buffer as Rust built it: the address and value of every element, computed from the
/// construction parameters (not through any view).
struct Source {
    buffer: Py<RustBuffer>,
    ndim: usize,
    readonly: bool,
    /// Element address -> value stored there.
    values: HashMap<usize, f64>,
}

fn direct_source(py: Python<'_>, rng: &mut Rng) -> Option<Source> {
    let ndim = rng.int(1, 3) as usize;
    let shape: Vec<usize> = (0..ndim).map(|_| rng.int(0, 4) as usize).collect();
    let strides: Vec<isize> = (0..ndim).map(|_| 8 * rng.int(-6, 6)).collect();
    // The lowest element offset decides where the first element must be.
    let (mut lo, mut hi) = (0isize, 0isize);
    for (&n, &s) in shape.iter().zip(&strides) {
        let span = (n.max(1) as isize - 1) * s;
        if span < 0 {
            lo += span;
        } else {
            hi += span;
        }
    }
    let offset = (-lo) as usize;
    let len = ((hi - lo) / 8 + 1) as usize;
    let data: Vec<f64> = (0..len).map(|k| k as f64 + 0.25).collect();
    let readonly = rng.chance(20);
    let rb = RustBuffer::from_elements(data.clone(), &shape, &strides, offset, readonly)
        .expect("an in-memory geometry is accepted");
    let buffer = Py::new(py, rb).unwrap();
    let mut values = HashMap::new();
    let base = buffer.borrow(py).data_ptr().unwrap() as usize - offset;
    for idx in support::c_order(&shape) {
        let off = offset as isize
            + idx
                .iter()
                .zip(&strides)
                .map(|(&i, &s)| i as isize * s)
                .sum::<isize>();
        let p = buffer.borrow(py).element_ptr(&idx).unwrap() as usize;
        assert_eq!(
            p,
            base + off as usize,
            "element_ptr agrees with the construction"
        );
        values.insert(p, data[off as usize / 8]);
    }
    Some(Source {
        buffer,
        ndim,
        readonly,
        values,
    })
}

fn indirect_source(py: Python<'_>, rng: &mut Rng) -> Option<Source> {
    let rows = rng.int(0, 4) as usize;
    let row_shape: Vec<usize> = (0..rng.int(1, 2)).map(|_| rng.int(0, 4) as usize).collect();
    let per_row: usize = row_shape.iter().product();
    let data: Vec<Vec<f64>> = (0..rows)
        .map(|r| (0..per_row).map(|k| (100 * r + k) as f64 + 0.5).collect())
        .collect();
    let readonly = rng.chance(20);
    let buffer = Py::new(
        py,
        RustBuffer::indirect(data.clone(), &row_shape, readonly).unwrap(),
    )
    .unwrap();
    let mut shape = vec![rows];
    shape.extend(&row_shape);
    let mut values = HashMap::new();
    for idx in support::c_order(&shape) {
        let flat = idx[1..]
            .iter()
            .zip(&row_shape)
            .fold(0usize, |a, (&i, &n)| a * n + i);
        let p = buffer.borrow(py).element_ptr(&idx).unwrap() as usize;
        values.insert(p, data[idx[0]][flat]);
    }
    Some(Source {
        buffer,
        ndim: shape.len(),
        readonly,
        values,
    })
}

fn random_items(rng: &mut Rng, ndim: usize) -> Vec<SliceItem> {
    let n = rng.int(0, ndim as i64 + 2) as usize;
    let mut items = Vec::new();
    for _ in 0..n {
        items.push(match rng.below(10) {
            0 => SliceItem::NewAxis,
            1 if !items.contains(&SliceItem::Ellipsis) => SliceItem::Ellipsis,
            2 | 3 => SliceItem::Index(rng.bound()),
            _ => {
                let opt = |rng: &mut Rng| rng.chance(60).then(|| rng.bound());
                let step = match rng.below(6) {
                    0 => None,
                    1 => Some(isize::MIN),
                    2 => Some(0),
                    _ => Some(rng.int(-3, 3)),
                };
                SliceItem::Slice(Slice::new(opt(rng), opt(rng), step))
            }
        });
    }
    items
}

/// Whether everything `raw` can reach through in-bounds index prefixes is the buffer's:
/// each pointer slot read before its first empty dimension is a recorded slot of the
/// exporter, and, when no dimension is empty, each element is one of the buffer's. Walked
/// independently of the library, with i128 addresses and the recorded slots.
fn reaches_only_the_buffer(
    raw: &MemviewSlice,
    ndim: usize,
    source: &Source,
    slots: &HashMap<usize, usize>,
) -> bool {
    fn walk(
        raw: &MemviewSlice,
        ndim: usize,
        d: usize,
        p: i128,
        source: &Source,
        slots: &HashMap<usize, usize>,
    ) -> bool {
        if d == ndim {
            return usize::try_from(p).is_ok_and(|a| source.values.contains_key(&a));
        }
        (0..raw.shape[d]).all(|i| {
            let q = p + i as i128 * raw.strides[d] as i128;
            if raw.suboffsets[d] < 0 {
                return walk(raw, ndim, d + 1, q, source, slots);
            }
            match usize::try_from(q).ok().and_then(|q| slots.get(&q)) {
                Some(&target) => walk(
                    raw,
                    ndim,
                    d + 1,
                    target as i128 + raw.suboffsets[d] as i128,
                    source,
                    slots,
                ),
                None => false,
            }
        })
    }
    walk(raw, ndim, 0, raw.data as usize as i128, source, slots)
}

struct Stats {
    ops: usize,
    refused: HashMap<String, usize>,
}

fn check_view(
    view: &View<'_, f64>,
    source: &Source,
    slots: &HashMap<usize, usize>,
    stats: &mut Stats,
) {
    let addrs = element_addresses(view.as_raw(), view.ndim(), slots);
    let values = view.to_vec().expect("small views fit in memory");
    assert_eq!(addrs.len(), values.len());
    for (a, v) in addrs.iter().zip(&values) {
        let a = a.expect("every pointer slot read is one of the exporter's");
        assert!(
            source.values.contains_key(&a),
            "address {a:#x} is not an element of the buffer"
        );
        assert_eq!(source.values[&a], *v, "value at {a:#x}");
    }
    let sum: f64 = view.iter().sum();
    assert_eq!(sum, values.iter().sum::<f64>());
    stats.ops += 1;
}

fn refusal(stats: &mut Stats, e: &cyview::Error) {
    *stats.refused.entry(format!("{:?}", e.kind())).or_default() += 1;
}

/// [`refusal`] for a `CythonSlice` refusal: the exception's class name, which is the
/// `ErrorKind`'s name.
fn refusal_py(stats: &mut Stats, py: Python<'_>, e: &PyErr) {
    let kind = e
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    *stats.refused.entry(kind).or_default() += 1;
}

/// One sequence of operations on one source.
fn sequence(py: Python<'_>, rng: &mut Rng, api: (FromObject, Sum), stats: &mut Stats) {
    let source = if rng.chance(60) {
        direct_source(py, rng)
    } else {
        indirect_source(py, rng)
    };
    let Some(source) = source else { return };
    let obj = source.buffer.bind(py).clone().into_any();
    let rc0 = refcount(&obj);
    let recorded = read_buffer(&obj).unwrap().slots;

    // Through `acquire`, as Cython's acquisition would.
    let specs = vec![GENERIC; source.ndim];
    let decl = Declaration::new(&format::DOUBLE, &specs, false);
    let acquired = acquire(&obj, &decl).expect("a generic const declaration accepts it");
    // SAFETY: nothing writes the buffer during the sequence.
    let root = unsafe { acquired.view::<f64>() }.unwrap();
    check_view(&root, &source, &recorded, stats);
    let mut views = vec![root];
    for _ in 0..rng.int(1, 10) {
        let v = views[rng.below(views.len() as u64) as usize];
        let result = match rng.below(5) {
            0 => v.t(),
            1 => v.slice_with(&random_items(rng, v.ndim()), Semantics::Cython),
            _ => v.slice(&random_items(rng, v.ndim())),
        };
        match result {
            Ok(w) => {
                check_view(&w, &source, &recorded, stats);
                let idx: Vec<usize> = w
                    .shape()
                    .iter()
                    .map(|&n| rng.below(n as u64 + 1) as usize)
                    .collect();
                match w.get(&idx) {
                    Some(x) => {
                        let a = element_addresses(w.as_raw(), w.ndim(), &recorded);
                        assert!(a.iter().any(|a| source.values.get(&a.unwrap()) == Some(&x)));
                    }
                    None => assert!(idx.iter().zip(w.shape()).any(|(&i, &n)| i as isize >= n)),
                }
                if views.len() < 8 {
                    views.push(w);
                }
            }
            Err(e) => refusal(stats, &e),
        }
    }
    drop(views);
    drop(acquired);

    // Through Cython (2-d only: the fixture's functions take double[:, :] generic views).
    if source.ndim == 2 {
        // SAFETY: exch_from_object borrows the object and returns an owned 2-d slice or an
        // error slice with the exception set.
        let root = unsafe { CythonSlice::from_returned(py, (api.0)(obj.as_ptr()), 2) };
        let root = match (root, source.readonly) {
            (Ok(root), false) => root,
            (Err(e), true) => {
                // The fixture's views are writable: Cython refuses a read-only buffer.
                assert_eq!(e.to_string(), "BufferError: Object is not writable.");
                return finish(py, &source, &obj, rc0);
            }
            (r, readonly) => panic!("readonly {readonly}: {:?}", r.map(|_| ())),
        };
        let mut held = vec![root];
        for _ in 0..rng.int(1, 10) {
            let k = rng.below(held.len() as u64) as usize;
            match rng.below(6) {
                0 => {
                    let c = held[k].clone();
                    held.push(c);
                }
                1 if held.len() > 1 => {
                    held.swap_remove(k);
                }
                2 | 3 => {
                    let items = random_items(rng, 2);
                    match held[k].slice_with(&items, cyview::Semantics::Cython) {
                        Ok(s) if s.ndim() <= 2 => held.push(s),
                        Ok(_) => {}
                        Err(e) => refusal_py(stats, py, &e),
                    }
                }
                _ => {
                    let s = &held[k];
                    // SAFETY: nothing writes the buffer during the sequence.
                    match unsafe { s.view::<f64>() } {
                        Ok(v) => {
                            assert!(reaches_only_the_buffer(
                                s.as_raw(),
                                s.ndim(),
                                &source,
                                &recorded
                            ));
                            check_view(&v, &source, &recorded, stats);
                            if s.ndim() == 2 {
                                // Cython reads the same view back.
                                // SAFETY: a live 2-d double slice, every element inside.
                                let total = unsafe { (api.1)(*s.as_raw()) };
                                assert_eq!(total, v.iter().sum::<f64>());
                            }
                        }
                        Err(_) => {
                            // Refused: only when something it can reach (a pointer slot
                            // before its first empty dimension, or an element) would not
                            // be the buffer's.
                            assert!(
                                !reaches_only_the_buffer(s.as_raw(), s.ndim(), &source, &recorded),
                                "an in-buffer slice was refused: {:?}",
                                s.as_raw()
                            );
                            *stats.refused.entry("CythonSlice::view".into()).or_default() += 1;
                        }
                    }
                }
            }
            stats.ops += 1;
        }
        drop(held);
    }
    finish(py, &source, &obj, rc0);
}

fn finish(py: Python<'_>, source: &Source, obj: &Bound<'_, PyAny>, rc0: isize) {
    assert_eq!(
        source.buffer.borrow(py).export_count(),
        0,
        "exports released"
    );
    assert_eq!(refcount(obj), rc0, "refcount back to start");
}

#[test]
fn random_operation_sequences_stay_inside_the_buffer() {
    let n: usize = std::env::var("CYVIEW_FUZZ_BOUNDARY_SEQUENCES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let seed: u64 = std::env::var("CYVIEW_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_cafe);
    with_python(|py| {
        let m = py.import("exchange").unwrap();
        let api = (
            capi_function::<FromObject>(&m, "exch_from_object").unwrap(),
            capi_function::<Sum>(&m, "exch_sum").unwrap(),
        );
        let mut rng = Rng(seed | 1);
        let mut stats = Stats {
            ops: 0,
            refused: HashMap::new(),
        };
        for _ in 0..n {
            sequence(py, &mut rng, api, &mut stats);
        }
        let mut refused: Vec<_> = stats.refused.iter().collect();
        refused.sort();
        println!(
            "fuzz boundary: {n} sequences, {} operations, refused {refused:?}",
            stats.ops
        );
        report("fuzz: boundary operation sequences", n, n, 0);
    });
}
