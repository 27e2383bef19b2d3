//! Proptest strategies: random structure specs (direct, indirect) and random index items.

use cyview::MAX_DIMS;
use proptest::prelude::*;

use super::structure::Spec;

fn stride_strategy(item: isize) -> impl Strategy<Value = isize> {
    prop_oneof![
        4 => (-5isize..=5).prop_map(move |k| k * item),
        1 => -40isize..=40,
        1 => Just(0isize),
    ]
}

/// Random direct structures: ndim 1-4, extents 0-6, strides of any sign including zero and
/// byte strides that are not multiples of the item size.
pub fn direct_spec() -> impl Strategy<Value = Spec> {
    (1usize..=4)
        .prop_flat_map(|ndim| {
            (
                proptest::collection::vec(0isize..=6, ndim),
                proptest::collection::vec(stride_strategy(8), ndim),
            )
        })
        .prop_map(|(shape, strides)| Spec {
            shape,
            strides,
            indirect: None,
            suboffset: -1,
            itemsize: 8,
        })
}

/// Random indirect structures: dimension 0 or 1 holds pointers (PIL style).
pub fn indirect_spec() -> impl Strategy<Value = Spec> {
    (1usize..=4)
        .prop_flat_map(|ndim| {
            let k = if ndim >= 2 { 0usize..=1 } else { 0usize..=0 };
            (
                proptest::collection::vec(0isize..=5, ndim),
                proptest::collection::vec(stride_strategy(8), ndim),
                k,
                0isize..=24,
                proptest::collection::vec(-3isize..=3, ndim),
            )
        })
        .prop_map(|(shape, mut strides, k, suboffset, slot_strides)| {
            for d in 0..=k {
                strides[d] = slot_strides[d] * 8;
            }
            Spec {
                shape,
                strides,
                indirect: Some(k),
                suboffset,
                itemsize: 8,
            }
        })
}

pub fn any_spec() -> impl Strategy<Value = Spec> {
    prop_oneof![3 => direct_spec(), 2 => indirect_spec()]
}

fn bound() -> impl Strategy<Value = Option<isize>> {
    prop_oneof![
        3 => Just(None),
        8 => (-9isize..=9).prop_map(Some),
        1 => prop_oneof![Just(-1000isize), Just(1000), Just(-(1 << 40)), Just(1 << 40), Just(isize::MIN), Just(isize::MAX)].prop_map(Some),
    ]
}

fn step() -> impl Strategy<Value = Option<isize>> {
    prop_oneof![
        4 => Just(None),
        8 => prop_oneof![(-4isize..=-1), (1isize..=4)].prop_map(Some),
        1 => Just(Some(0)),
        1 => prop_oneof![Just(-1000isize), Just(1000), Just(isize::MIN), Just(isize::MAX)].prop_map(Some),
    ]
}

pub fn item() -> impl Strategy<Value = cyview::SliceItem> {
    use cyview::{Slice, SliceItem};
    prop_oneof![
        4 => prop_oneof![
            8 => -8isize..=8,
            1 => prop_oneof![Just(-1000isize), Just(1000), Just(isize::MIN), Just(isize::MAX)],
        ].prop_map(SliceItem::Index),
        6 => (bound(), bound(), step()).prop_map(|(a, b, c)| SliceItem::Slice(Slice::new(a, b, c))),
        1 => Just(SliceItem::NewAxis),
        1 => Just(SliceItem::Ellipsis),
    ]
}

pub fn items() -> impl Strategy<Value = Vec<cyview::SliceItem>> {
    proptest::collection::vec(item(), 0..=MAX_DIMS.min(5))
}
