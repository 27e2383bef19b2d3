//! `View::sum` and `View::rows` against the element-by-element definitions, on random
//! direct and indirect structures (zero, negative and unaligned strides, empty extents).

mod common;

use common::{any_spec, slice_addresses, Structure};
use cyview::{FromBytes, IntoBytes, SliceItem, View, ViewMut};
use proptest::prelude::*;

/// A `u64` whose addition wraps: overlapping elements read back as large values, and the
/// test compares sums exactly, so overflow must not panic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(transparent)]
struct W(u64);

// SAFETY: `W` is a transparent `u64`: every bit pattern is a value, no padding.
unsafe impl FromBytes for W {}
// SAFETY: as above.
unsafe impl IntoBytes for W {}

impl std::ops::Add for W {
    type Output = W;
    fn add(self, o: W) -> W {
        W(self.0.wrapping_add(o.0))
    }
}

/// Writes `k + 1` at the k-th element address (C order), so sums see distinct values.
fn fill_distinct(s: &Structure) {
    for (k, a) in s.addresses().into_iter().enumerate() {
        // SAFETY: `a` is the address of an element of the live structure, 8 writable bytes.
        unsafe { (a as *mut u8).cast::<u64>().write_unaligned(k as u64 + 1) };
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn sum_is_the_sum_of_the_elements(spec in any_spec()) {
        let s = Structure::build(spec);
        fill_distinct(&s);
        // SAFETY: the structure's memory and pointer table live for the test.
        let v = unsafe { View::<W>::from_raw(s.raw, s.ndim) }.unwrap();
        let expected = v.iter().fold(W(0), |a, x| a + x);
        prop_assert_eq!(v.sum(), expected);
        // Also through the sub-views (their own fast paths) and a transposed view.
        let by_rows = v.rows().fold(W(0), |a, r| a + r.sum());
        prop_assert_eq!(by_rows, expected);
        if let Ok(t) = v.t() {
            prop_assert_eq!(t.sum(), expected);
        }
    }

    #[test]
    fn iter_mut_writes_in_c_order_like_map_inplace(spec in any_spec()) {
        // Two copies of one structure: one written through the proxies, one by map_inplace.
        let a = Structure::build(spec.clone());
        let b = Structure::build(spec);
        fill_distinct(&a);
        fill_distinct(&b);
        // SAFETY: the structures' memory lives for the test; each view is the only access.
        let mut va = unsafe { ViewMut::<W>::from_raw(a.raw, a.ndim) }.unwrap();
        // SAFETY: as above.
        let mut vb = unsafe { ViewMut::<W>::from_raw(b.raw, b.ndim) }.unwrap();
        for (k, x) in (101u64..).zip(va.iter_mut()) {
            x.update(|old| W(old.0.wrapping_mul(3).wrapping_add(k)));
        }
        let mut k = 100u64;
        vb.map_inplace(|old| {
            k += 1;
            W(old.0.wrapping_mul(3).wrapping_add(k))
        });
        prop_assert_eq!(va.as_view().iter().collect::<Vec<_>>(), vb.as_view().iter().collect::<Vec<_>>());
        prop_assert_eq!(va.iter_mut().len(), va.as_view().len());
    }

    #[test]
    fn rows_are_the_integer_indexed_subviews(spec in any_spec()) {
        let s = Structure::build(spec);
        // SAFETY: as above.
        let v = unsafe { View::<W>::from_raw(s.raw, s.ndim) }.unwrap();
        let rows: Vec<View<'_, W>> = v.rows().collect();
        prop_assert_eq!(rows.len(), s.spec.shape[0] as usize);
        prop_assert_eq!(v.rows().len(), rows.len());
        for (i, row) in rows.iter().enumerate() {
            let by_index = v.slice(&[SliceItem::Index(i as isize)]).unwrap();
            prop_assert_eq!(row.shape(), by_index.shape());
            prop_assert_eq!(row.strides(), by_index.strides());
            prop_assert_eq!(
                slice_addresses(row.as_raw(), row.ndim()),
                slice_addresses(by_index.as_raw(), by_index.ndim())
            );
        }
        let back: Vec<usize> = v.rows().rev().map(|r| r.as_raw().data as usize).collect();
        let fwd: Vec<usize> = rows.iter().rev().map(|r| r.as_raw().data as usize).collect();
        prop_assert_eq!(back, fwd);
    }
}

#[test]
fn float_sums_use_lanes_and_match_numpy_order_within_rounding() {
    // The lanes change the order of the additions: the result is within rounding of a
    // sequential sum, not necessarily equal to it.
    let data: Vec<f64> = (0..1003).map(|k| (k as f64).sin() * 1e3).collect();
    let v = View::from_slice(&data, &[17, 59]).unwrap();
    let seq: f64 = data.iter().sum();
    assert!((v.sum() - seq).abs() <= 1e-9 * data.iter().map(|x| x.abs()).sum::<f64>());
    let empty: [f64; 0] = [];
    assert_eq!(View::from_slice(&empty, &[0, 3]).unwrap().sum(), 0.0);
    assert_eq!(
        View::<f64>::from_slice(&empty, &[0])
            .unwrap()
            .rows()
            .count(),
        0
    );
}

#[test]
fn rows_of_an_empty_indirect_view_read_no_pointer_slot() {
    // Shape (3, 0), dimension 0 indirect, over a pointer table that does not exist: a view
    // without elements addresses nothing, and its rows must not read the table (an
    // exporter's `RustBuffer::from_raw` contract only covers slots reached by elements).
    let mut raw = cyview::MemviewSlice::EMPTY;
    raw.data = std::ptr::NonNull::<u64>::dangling().as_ptr().cast();
    raw.shape[..2].copy_from_slice(&[3, 0]);
    raw.strides[..2].copy_from_slice(&[8, 8]);
    raw.suboffsets[..2].copy_from_slice(&[0, -1]);
    // SAFETY: the view has no element, so no element or pointer slot is ever read.
    let v = unsafe { View::<f64>::from_raw(raw, 2) }.unwrap();
    let lens: Vec<usize> = v.rows().map(|r| r.len()).collect();
    assert_eq!(lens, vec![0, 0, 0]);
    assert_eq!(v.rows().rev().count(), 3);
    assert_eq!(v.sum(), 0.0);
}
