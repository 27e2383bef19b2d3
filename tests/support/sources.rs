//! The random sources and index items of the slicing checks (`tests/slicing.rs`,
//! `tests/too_many_items.rs`): buffer exporters built in Python (NumPy views with any byte
//! strides and offsets into a larger block; PIL-style `_testbuffer.ndarray`s), index values,
//! Python index keys, and the comparison of a Cython result view with cyview's slice.

use cyview::{MemviewSlice, SliceItem};
use proptest::prelude::*;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use super::{element_addresses, Buffer};

/// A buffer exporter to build in Python.
#[derive(Clone, Debug)]
pub enum Source {
    /// NumPy `as_strided` view of a block: `(block bytes, offset, shape, byte strides)`.
    Direct(usize, usize, Vec<usize>, Vec<isize>),
    /// `_testbuffer.ndarray` with `ND_PIL`, sliced per dimension by `keys`.
    Pil(
        Vec<usize>,
        Vec<(Option<isize>, Option<isize>, Option<isize>)>,
    ),
}

impl Source {
    pub fn ndim(&self) -> usize {
        match self {
            Source::Direct(_, _, s, _) | Source::Pil(s, _) => s.len(),
        }
    }

    pub fn build<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let ls = py.import("live_support")?;
        match self {
            Source::Direct(n, off, shape, strides) => {
                ls.getattr("direct")?
                    .call1((n, off, shape.clone(), strides.clone()))
            }
            Source::Pil(shape, keys) => ls.getattr("pil")?.call1((shape.clone(), keys.clone())),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Source::Direct(n, off, shape, strides) => {
                format!("live_support.direct({n}, {off}, {shape:?}, {strides:?})")
            }
            Source::Pil(shape, keys) => format!("live_support.pil({shape:?}, {keys:?})"),
        }
    }
}

pub fn direct_source() -> impl Strategy<Value = Source> {
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

pub fn pil_source() -> impl Strategy<Value = Source> {
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

pub fn source() -> impl Strategy<Value = Source> {
    prop_oneof![3 => direct_source(), 2 => pil_source()]
}

pub fn value() -> impl Strategy<Value = isize> {
    prop_oneof![
        12 => -8isize..=8,
        1 => prop_oneof![Just(-1000isize), Just(1000), Just(-(1 << 40)), Just(1 << 40)],
    ]
}

/// Compares Cython's result buffer with the core's slice.
pub fn compare_view(
    cy: &Buffer,
    rust: &MemviewSlice,
    rust_ndim: usize,
    src: &Buffer,
) -> Result<(), String> {
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

/// The Python index key `(items...)`: ints, `slice` objects, `None`, `Ellipsis`.
pub fn py_key<'py>(py: Python<'py>, items: &[SliceItem]) -> Bound<'py, PyTuple> {
    let py_items: Vec<Bound<'py, PyAny>> = items
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
    PyTuple::new(py, py_items).unwrap()
}
