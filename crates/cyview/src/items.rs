//! The vocabulary of an index expression `v[a, b:c, None, ...]`: [`Slice`], [`SliceItem`],
//! the [`s!`](crate::s) macro that builds them with Python-like syntax, and the choice of
//! slice arithmetic, [`Semantics`]. What the items do to a slice is in
//! [`raw::slicing`](crate::raw::slicing) (Cython's rules) and [`View::slice`](crate::View::slice).

/// A slice `start:stop:step` with each part optional, as Python's `slice` object.
///
/// Python equivalent: `slice(start, stop, step)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Slice {
    /// First index (`None`: from the start in the direction of `step`).
    pub start: Option<isize>,
    /// End index, exclusive (`None`: to the end in the direction of `step`).
    pub stop: Option<isize>,
    /// Step (`None`: 1). Zero is an error.
    pub step: Option<isize>,
}

impl Slice {
    /// The bare `:`.
    pub const FULL: Slice = Slice {
        start: None,
        stop: None,
        step: None,
    };

    /// `start:stop:step`.
    pub const fn new(start: Option<isize>, stop: Option<isize>, step: Option<isize>) -> Self {
        Slice { start, stop, step }
    }

    /// Whether this is the bare `:` (Cython's compiler emits a plain copy of the extent,
    /// stride and suboffset for it, with the same result as the general path).
    pub const fn is_full(&self) -> bool {
        self.start.is_none() && self.stop.is_none() && self.step.is_none()
    }

    /// The same slice with `step`.
    pub const fn step_by(self, step: isize) -> Self {
        Slice {
            step: Some(step),
            ..self
        }
    }
}

/// One item of an index expression `v[a, b:c, None, ...]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SliceItem {
    /// An integer index; removes the dimension. Negative counts from the end.
    Index(isize),
    /// A slice; keeps the dimension.
    Slice(Slice),
    /// `None` / `np.newaxis`: inserts a dimension of extent 1 and stride 0.
    NewAxis,
    /// `...`: the first expands to as many `:` as needed; later ones act as a single `:`.
    Ellipsis,
}

impl From<isize> for SliceItem {
    fn from(i: isize) -> Self {
        SliceItem::Index(i)
    }
}

impl From<Slice> for SliceItem {
    fn from(s: Slice) -> Self {
        SliceItem::Slice(s)
    }
}

impl From<core::ops::Range<isize>> for SliceItem {
    fn from(r: core::ops::Range<isize>) -> Self {
        SliceItem::Slice(Slice::new(Some(r.start), Some(r.end), None))
    }
}

impl From<core::ops::RangeFrom<isize>> for SliceItem {
    fn from(r: core::ops::RangeFrom<isize>) -> Self {
        SliceItem::Slice(Slice::new(Some(r.start), None, None))
    }
}

impl From<core::ops::RangeTo<isize>> for SliceItem {
    fn from(r: core::ops::RangeTo<isize>) -> Self {
        SliceItem::Slice(Slice::new(None, Some(r.end), None))
    }
}

impl From<core::ops::RangeFull> for SliceItem {
    fn from(_: core::ops::RangeFull) -> Self {
        SliceItem::Slice(Slice::FULL)
    }
}

/// Builds a `[SliceItem; N]` with Python-like syntax.
///
/// Each item is an integer expression, a range (`a..b`, `a..`, `..b`, `..`) optionally
/// followed by `;step`, `NewAxis` or `Ellipsis`. Ranges are half-open like Python slices;
/// their bounds may be negative.
///
/// ```
/// use cyview::{s, SliceItem, Slice};
/// // Python: v[1, 2:5, ::-1, None, ...]
/// let items = s![1, 2..5, ..;-1, NewAxis, Ellipsis];
/// assert_eq!(items[2], SliceItem::Slice(Slice::new(None, None, Some(-1))));
/// assert_eq!(items[3], SliceItem::NewAxis);
/// ```
#[macro_export]
macro_rules! s {
    (@acc [$($done:expr,)*]) => { [$($done,)*] };
    (@acc [$($done:expr,)*] NewAxis $(, $($rest:tt)*)?) => {
        $crate::s!(@acc [$($done,)* $crate::SliceItem::NewAxis,] $($($rest)*)?)
    };
    (@acc [$($done:expr,)*] Ellipsis $(, $($rest:tt)*)?) => {
        $crate::s!(@acc [$($done,)* $crate::SliceItem::Ellipsis,] $($($rest)*)?)
    };
    (@acc [$($done:expr,)*] .. ; $step:expr $(, $($rest:tt)*)?) => {
        $crate::s!(@acc [$($done,)* $crate::SliceItem::Slice($crate::Slice::new(None, None, Some($step))),] $($($rest)*)?)
    };
    (@acc [$($done:expr,)*] .. $(, $($rest:tt)*)?) => {
        $crate::s!(@acc [$($done,)* $crate::SliceItem::Slice($crate::Slice::FULL),] $($($rest)*)?)
    };
    // Python bounds such as `8..-100;-3` are "reversed" Rust ranges on purpose.
    (@acc [$($done:expr,)*] $r:expr ; $step:expr $(, $($rest:tt)*)?) => {
        $crate::s!(@acc [$($done,)* {
            #[allow(clippy::reversed_empty_ranges)]
            let item = $crate::SliceItem::from($r);
            item.with_step($step)
        },] $($($rest)*)?)
    };
    (@acc [$($done:expr,)*] $r:expr $(, $($rest:tt)*)?) => {
        $crate::s!(@acc [$($done,)* {
            #[allow(clippy::reversed_empty_ranges)]
            let item = $crate::SliceItem::from($r);
            item
        },] $($($rest)*)?)
    };
    ($($t:tt)*) => { $crate::s!(@acc [] $($t)*) };
}

impl SliceItem {
    /// The item with its step replaced if it is a slice (used by [`s!`] for `a..b;step`);
    /// other items are returned unchanged.
    pub const fn with_step(self, step: isize) -> Self {
        match self {
            SliceItem::Slice(s) => SliceItem::Slice(s.step_by(step)),
            other => other,
        }
    }
}

/// Which slice arithmetic to use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Semantics {
    /// Cython's own clamping, quirks included (see [`raw::slicing`](crate::raw::slicing)).
    Cython,
    /// CPython's `PySlice_AdjustIndices`.
    Python,
    /// Cython built with this project's slice-bounds fix (`cython_patches/` in the
    /// repository; the build's `Cython.__version__` carries the local label
    /// `+cyview.slice1`): each slice's length is CPython's, so it selects what Python
    /// selects ([`resolve_cython_patched`](crate::raw::slicing::resolve_cython_patched)),
    /// and everything else is Cython's, as with [`Semantics::Cython`] (the start, which
    /// differs from Python's only for an empty result, the indirect-dimension bookkeeping,
    /// the errors, the step kept as given). Use
    /// [`Semantics::of_cython_version`] to pick it from a version string.
    CythonPatched,
}

impl Semantics {
    /// The local version label of a Cython build with the slice-bounds fix.
    pub const PATCHED_LABEL: &'static str = "cyview.slice1";

    /// The semantics of the compiled slicing of a Cython build, from its
    /// `Cython.__version__`: [`Semantics::CythonPatched`] when the version's local label
    /// (after `+`) names [`Semantics::PATCHED_LABEL`] (`"3.3.1+cyview.slice1"`), else
    /// [`Semantics::Cython`] (every release Cython has published, `"3.3.1"`).
    ///
    /// ```
    /// use cyview::Semantics;
    /// assert_eq!(Semantics::of_cython_version("3.3.1"), Semantics::Cython);
    /// assert_eq!(Semantics::of_cython_version("3.3.1+cyview.slice1"), Semantics::CythonPatched);
    /// assert_eq!(Semantics::of_cython_version("3.3.1+other"), Semantics::Cython);
    /// ```
    pub fn of_cython_version(version: &str) -> Semantics {
        match version.split_once('+') {
            Some((_, local)) if local.split('+').any(|l| l == Self::PATCHED_LABEL) => {
                Semantics::CythonPatched
            }
            _ => Semantics::Cython,
        }
    }
}
