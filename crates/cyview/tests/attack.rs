//! Hostile-user attacks on `cyview`'s safe API that need no Python: random declaration text
//! (multi-byte characters next to every token), and views at the extremes of `isize` /
//! `usize` that the stateful fuzzers reach rarely. Every call must return (`Ok` or `Err`),
//! never panic.

mod common;

use common::rng::Rng;
use cyview::decl::MemviewDecl;
use cyview::{s, Order, SliceItem, View, ViewMut};

const TOKENS: &[&str] = &[
    "const",
    "double",
    "float",
    "unsigned",
    "long",
    "int",
    "char",
    "complex",
    "Point",
    "[",
    "]",
    ":",
    "::",
    ",",
    "1",
    "::1",
    "view.",
    "view",
    "generic",
    "indirect",
    "contiguous",
    "indirect_contiguous",
    "generic_contiguous",
    "strided",
    "direct",
    "follow",
    "cython.",
    " ",
    "  ",
    "\t",
    "\n",
    "é",
    "ω",
    "\u{3000}",
    "\u{a0}",
    "𝔡",
    "_",
    ".",
    "0",
    "-1",
    "...",
];

/// Random declaration texts built from Cython's tokens and multi-byte characters, plus
/// every prefix of a few valid declarations followed by a multi-byte character: parsed
/// without panicking.
#[test]
fn random_declaration_text_never_panics() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut texts: Vec<String> = Vec::new();
    for valid in [
        "const double[:, ::1]",
        "double[::view.indirect, ::view.contiguous]",
        "float complex[::view.generic_contiguous, :]",
        "unsigned long long[:, :, :, :, :, :, :, :]",
    ] {
        for end in 0..=valid.len() {
            for tail in ["é", "ω", "\u{3000}", "𝔡", ""] {
                texts.push(format!("{}{tail}", &valid[..end]));
            }
        }
    }
    for _ in 0..60_000 {
        let n = 1 + rng.below(14);
        let mut t = String::new();
        for _ in 0..n {
            t.push_str(TOKENS[rng.below(TOKENS.len())]);
        }
        texts.push(t);
    }
    let mut panics = Vec::new();
    for t in &texts {
        let r = std::panic::catch_unwind(|| {
            let _ = MemviewDecl::parse(t).map(|d| (d.specs().len(), d.builtin_dtype().is_some()));
        });
        if r.is_err() {
            panics.push(t.clone());
        }
    }
    assert!(
        panics.is_empty(),
        "{} texts panic, e.g. {:?}",
        panics.len(),
        &panics[..panics.len().min(5)]
    );
}

/// Views at the extremes: extents up to `isize::MAX` over one byte with zero strides,
/// strides of `isize::MIN`/`MAX` on extent-1 axes, every accessor and derivation called.
#[test]
fn extreme_geometries_return() {
    let mut bytes = [7u8; 16];
    let big = isize::MAX as usize;
    let cases: &[(&[usize], &[isize])] = &[
        (&[big], &[0]),
        (&[big, big], &[0, 0]),
        (&[1, big], &[isize::MIN, 0]),
        (&[1, 1], &[isize::MAX, isize::MIN]),
        (&[big, 0], &[1, 1]),
        (&[0, big], &[isize::MAX, isize::MAX]),
        (&[1; 8], &[isize::MIN; 8]),
        (&[2, 1, 2], &[0, isize::MIN, 0]),
    ];
    for &(shape, strides) in cases {
        let Ok(v) = View::<u8>::from_bytes(&bytes, 0, shape, strides) else {
            continue;
        };
        let _ = (v.len(), v.is_empty(), v.is_c_contig(), v.is_f_contig());
        let _ = v.get(&vec![0; shape.len()]);
        let _ = v.at(&vec![-1; shape.len()]);
        let _ = v.at(&vec![isize::MIN; shape.len()]);
        let _ = v.rows().next_back().map(|r| r.len());
        let _ = v.t().map(|t| t.len());
        let item = s![isize::MIN..isize::MAX;isize::MIN][0];
        let items: Vec<SliceItem> = vec![item; shape.len()];
        let _ = v.slice(&items);
        let _ = v.iter().take(3).count();
        let _ = v.copy(Order::C).map(|c| c.itemsize());
        if v.len() < 1000 {
            let _ = v.sum();
            let _ = v.to_vec();
        }
        let mut w = ViewMut::<u8>::from_bytes(&mut bytes, 0, shape, strides).unwrap();
        if w.len() < 1000 {
            w.fill(1);
            w.map_inplace(|x| x + 1);
        }
        let _ = w.set(&vec![usize::MAX; shape.len()], 3);
        let _ = w.slice_mut(&items).map(|m| m.len());
    }
}

/// Every slice of small 1-d and 2-d views (bounds -9..9 and `None`, steps ±1..±4 and
/// `None`, extremes of `isize`) with each of the three semantics, `Semantics::CythonPatched`
/// included (the stateful fuzzer drives only the other two through `View::slice_with`): a
/// result is either refused or reaches only elements of its source, checked address by
/// address against the byte range of the source's elements.
#[test]
fn every_small_slice_of_every_semantics_stays_in_the_source() {
    use cyview::Semantics;
    use cyview::Slice;
    let bytes: Vec<u8> = (0..=255).collect();
    let bounds: Vec<Option<isize>> = (-9..9)
        .map(Some)
        .chain([None, Some(isize::MIN), Some(isize::MAX)])
        .collect();
    let steps: Vec<Option<isize>> = [-4, -3, -2, -1, 1, 2, 3, 4, isize::MIN, isize::MAX]
        .into_iter()
        .map(Some)
        .chain([None])
        .collect();
    let addresses = |v: &View<'_, u8>| -> Vec<usize> {
        let mut out = Vec::new();
        let n = v.shape().to_vec();
        let base = v.as_raw().data as isize;
        let st = v.strides().to_vec();
        let mut idx = vec![0isize; n.len()];
        if n.contains(&0) {
            return out;
        }
        loop {
            let a = idx.iter().zip(&st).fold(base, |a, (&i, &s)| a + i * s);
            out.push(a as usize);
            let mut d = n.len();
            loop {
                if d == 0 {
                    return out;
                }
                d -= 1;
                idx[d] += 1;
                if idx[d] < n[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
    };
    let mut checked = 0u64;
    for (shape, strides, offset) in [
        (vec![0usize], vec![3isize], 10usize),
        (vec![1], vec![5], 0),
        (vec![3], vec![-7], 20),
        (vec![5], vec![2], 3),
        (vec![2, 3], vec![-9, 2], 40),
        (vec![3, 1], vec![4, 100], 0),
    ] {
        let src = View::<u8>::from_bytes(&bytes, offset, &shape, &strides).unwrap();
        let inside: std::collections::HashSet<usize> = addresses(&src).into_iter().collect();
        for sem in [
            Semantics::Python,
            Semantics::Cython,
            Semantics::CythonPatched,
        ] {
            for &a in &bounds {
                for &b in &bounds {
                    for &k in &steps {
                        let item = SliceItem::Slice(Slice::new(a, b, k));
                        let mut lists = vec![vec![item]];
                        if shape.len() == 2 {
                            lists.push(vec![SliceItem::Slice(Slice::FULL), item]);
                            lists.push(vec![SliceItem::Index(-1), item]);
                        }
                        for items in lists {
                            if let Ok(r) = src.slice_with(&items, sem) {
                                checked += 1;
                                for p in addresses(&r) {
                                    assert!(
                                        inside.contains(&p),
                                        "{sem:?} {items:?} of {shape:?}/{strides:?} reaches {p:#x}"
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(checked > 10_000, "{checked}");
}
