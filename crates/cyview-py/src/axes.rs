//! The dimensions of an extractor's declaration ([`crate::MemView`]'s `D`): the number of
//! dimensions and one Cython axis spec per dimension, as types.

use cyview::{Access, AxisSpec, Packing, MAX_DIMS};

/// The axes of a typed memoryview declaration: `D` in [`MemView<'py, T, D>`](crate::MemView)
/// stands for the `[...]` of `T[...]` in Cython. The built-in kinds are
/// [`C<N>`] (`[:, ::1]`), [`F<N>`] (`[::1, :]`), [`Strided<N>`] (`[:, :]`), [`Indirect<N>`]
/// (`[::view.indirect, ...]`) and [`Generic<N>`] (`[::view.generic, ...]`); any other
/// Cython text through [`axes!`](crate::axes).
///
/// An implementation with more than 8 specs (`MAX_DIMS`) does not compile once used in a
/// view type:
///
/// ```compile_fail
/// use cyview::AxisSpec;
/// use cyview_py::{Axes, MemView};
/// struct Nine;
/// impl Axes for Nine {
///     const SPECS: &'static [AxisSpec] = &[AxisSpec::STRIDED_DIRECT; 9];
/// }
/// pyo3::Python::attach(|py| {
///     let _ = MemView::<f64, Nine>::new(py.None().bind(py));
/// });
/// ```
pub trait Axes: 'static {
    /// One spec per dimension, as Cython's compiler derives them from the text.
    const SPECS: &'static [AxisSpec];
}

/// Specs for `N` dimensions: `first` on dimension 0, `last` on dimension `N - 1`, `rest`
/// on the others; for `N == 1` the contiguous one of `first` and `last` when there is one
/// (`[::1]` is both C- and Fortran-contiguous).
const fn specs<const N: usize>(first: AxisSpec, rest: AxisSpec, last: AxisSpec) -> [AxisSpec; N] {
    assert!(
        N >= 1 && N < MAX_DIMS,
        "a typed memoryview has 1 to 7 dimensions"
    );
    let mut out = [rest; N];
    out[0] = first;
    out[N - 1] = last;
    if N == 1 && first.flags() == CONTIG.flags() {
        out[0] = first;
    }
    out
}

const FOLLOW: AxisSpec = AxisSpec::FOLLOW_DIRECT;
const CONTIG: AxisSpec = AxisSpec::CONTIG_DIRECT;
const STRIDED: AxisSpec = AxisSpec::STRIDED_DIRECT;
const PTR: AxisSpec = AxisSpec::new(Access::Ptr, Packing::Strided);
const FULL: AxisSpec = AxisSpec::new(Access::Full, Packing::Strided);

macro_rules! builtin_axes {
    ($(#[$doc:meta])* $name:ident, $first:expr, $rest:expr, $last:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        pub struct $name<const N: usize>;

        impl<const N: usize> $name<N> {
            const ARRAY: [AxisSpec; N] = specs::<N>($first, $rest, $last);
        }

        impl<const N: usize> Axes for $name<N> {
            const SPECS: &'static [AxisSpec] = &Self::ARRAY;
        }
    };
}

builtin_axes!(
    /// `N` dimensions, C-contiguous: Cython's `[:, ::1]` (`[::1]` for one dimension).
    C, FOLLOW, FOLLOW, CONTIG
);
builtin_axes!(
    /// `N` dimensions, Fortran-contiguous: Cython's `[::1, :]` (`[::1]` for one dimension).
    F, CONTIG, FOLLOW, FOLLOW
);
builtin_axes!(
    /// `N` direct dimensions with any strides: Cython's `[:, :]`. NumPy views with negative
    /// or zero strides, `array.array`, plain `memoryview`s.
    Strided, STRIDED, STRIDED, STRIDED
);
builtin_axes!(
    /// `N` indirect (pointer) dimensions: Cython's `[::view.indirect, ::view.indirect]`.
    Indirect, PTR, PTR, PTR
);
builtin_axes!(
    /// `N` dimensions each direct or indirect as the buffer has them: Cython's
    /// `[::view.generic, ::view.generic]`; accepts any exporter, PIL-style ones included.
    Generic, FULL, FULL, FULL
);

// One dimension: `C<1>` and `F<1>` are both `[::1]`.
const _: () = {
    assert!(F::<1>::SPECS[0].flags() == CONTIG.flags());
    assert!(C::<1>::SPECS[0].flags() == CONTIG.flags());
};

/// Declares axes from Cython text, for mixes the built-in kinds do not cover:
///
/// ```
/// cyview_py::axes!(
///     /// A table of row pointers to contiguous rows.
///     pub RowPointers = "[::view.indirect, ::1]"
/// );
/// # use cyview_py::Axes;
/// assert_eq!(RowPointers::SPECS.len(), 2);
/// ```
///
/// A text Cython rejects is a compile error with Cython's message.
#[macro_export]
macro_rules! axes {
    ($(#[$doc:meta])* $vis:vis $name:ident = $text:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
        $vis struct $name;

        impl $crate::Axes for $name {
            const SPECS: &'static [$crate::__cyview::AxisSpec] = {
                const DECL: $crate::__cyview::decl::MemviewDecl<'static> =
                    $crate::__cyview::decl::MemviewDecl::parse_or_panic(concat!("char", $text));
                const N: usize = DECL.ndim();
                const ARRAY: [$crate::__cyview::AxisSpec; N] = $crate::__axes_array::<N>(DECL.specs());
                &ARRAY
            };
        }
    };
}

#[doc(hidden)]
pub const fn __axes_array<const N: usize>(specs: &[AxisSpec]) -> [AxisSpec; N] {
    let mut out = [STRIDED; N];
    let mut k = 0;
    while k < N {
        out[k] = specs[k];
        k += 1;
    }
    out
}
