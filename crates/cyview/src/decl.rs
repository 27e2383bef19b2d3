//! Typed-memoryview declarations written as Cython source text: `const double[:, ::1]`.
//!
//! [`MemviewDecl::parse`] reads the text Cython reads after `cdef` and gives the axis specs
//! Cython's compiler derives from it (`get_axes_specs` and `validate_axes_specs` in
//! `Compiler/MemoryView.py`), with Cython's compile-error messages. It is a `const fn`, so a
//! declaration in a `const` item that Cython would reject fails to compile:
//!
//! ```
//! use cyview::decl::MemviewDecl;
//! use cyview::AxisSpec;
//!
//! const D: MemviewDecl = MemviewDecl::parse_or_panic("const double[:, ::1]");
//! assert_eq!(D.specs(), &[AxisSpec::FOLLOW_DIRECT, AxisSpec::CONTIG_DIRECT]);
//! assert!(D.is_const());
//! assert_eq!(D.dtype_name(), "double");
//! assert_eq!(D.builtin_dtype().unwrap().name, "double");
//! ```
//!
//! ```compile_fail
//! // Cython: "Cannot specify an array that is both C and Fortran contiguous."
//! const D: cyview::decl::MemviewDecl = cyview::decl::MemviewDecl::parse_or_panic("double[::1, ::1]");
//! ```
//!
//! The grammar is the part of Cython's that memoryview declarations use: an optional `const`,
//! a dtype (a C scalar type such as `double`, `unsigned long long`, `float complex`,
//! `Py_ssize_t`, or a struct's name), then `[` axes `]` with one axis per dimension: `:`,
//! `::1`, or `::<spec>` where `<spec>` is `generic`, `strided`, `indirect`, `contiguous` or
//! `indirect_contiguous`, as `view.<spec>` / `cython.view.<spec>`, or bare (as if cimported
//! with `from cython.view cimport <spec>`; Cython refuses a bare name it cannot resolve with
//! `Invalid axis specification.`). White space may separate any two tokens.

use crate::abi::{Access, AxisSpec, Packing, MAX_DIMS};
use crate::error::{Error, ErrorKind};
use crate::format::typeinfo::bytes_eq;
use crate::format::{self, TypeInfo};

/// Why a declaration text was refused: Cython's compile error, or text outside the grammar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeclError<'t> {
    /// `Start must not be given.` (`double[1:]`).
    StartGiven,
    /// `Axis specification only allowed in the 'step' slot.` (`double[:1]`).
    StopGiven,
    /// `Step must be omitted, 1, or a valid specifier.` (`double[::2]`).
    BadStep,
    /// `Invalid axis specification.` (an unknown bare name in the step slot).
    InvalidSpec,
    /// `No such attribute '{name}'` (`view.<name>` where `cython.view` has no such spec;
    /// `generic_contiguous` is one: Cython's table names it, `cython.view` does not export it).
    NoSuchAttribute(&'t str),
    /// `Cannot specify an array that is both C and Fortran contiguous.` (two `::1`).
    BothCAndFortran,
    /// `Fortran contiguous specifier must follow an indirect dimension`.
    FortranAfterDirect,
    /// `Indirect dimension may not follow Fortran contiguous dimension`.
    IndirectAfterContig,
    /// `Dimension may not be contiguous`.
    DimensionMayNotBeContiguous,
    /// `Only one direct contiguous axis may be specified.`
    OnlyOneContig,
    /// `Only dimension(s) {a} (and {b}) may be contiguous and direct`.
    ContigNotAllowedHere {
        /// The first dimension that may be.
        first: usize,
        /// The other one (the last dimension), when it differs.
        last: Option<usize>,
    },
    /// `A memoryview cannot have both follow and strided axis specifiers.`
    FollowAndStrided,
    /// `More dimensions than the maximum number of buffer dimensions were used.` (8 or more).
    TooManyDimensions,
    /// The text is not `[const] dtype[axes]` (this crate's wording: Cython's parser error
    /// names the source position).
    Syntax(&'static str),
}

impl DeclError<'_> {
    /// The message: Cython's compile error text where Cython has one.
    pub fn message(&self) -> String {
        match *self {
            DeclError::ContigNotAllowedHere {
                first,
                last: Some(last),
            } => {
                format!("Only dimensions {first} and {last} may be contiguous and direct")
            }
            DeclError::ContigNotAllowedHere { first, last: None } => {
                format!("Only dimension {first} may be contiguous and direct")
            }
            DeclError::NoSuchAttribute(name) => format!("No such attribute '{name}'"),
            other => other.static_message().to_string(),
        }
    }

    /// The message as a `&'static str` (for a compile-time panic); the dimensions of
    /// [`DeclError::ContigNotAllowedHere`] are left out.
    pub const fn static_message(&self) -> &'static str {
        match self {
            DeclError::StartGiven => "Start must not be given.",
            DeclError::StopGiven => "Axis specification only allowed in the 'step' slot.",
            DeclError::BadStep => "Step must be omitted, 1, or a valid specifier.",
            DeclError::InvalidSpec => "Invalid axis specification.",
            DeclError::NoSuchAttribute(_) => "No such attribute (of cython.view)",
            DeclError::BothCAndFortran => {
                "Cannot specify an array that is both C and Fortran contiguous."
            }
            DeclError::FortranAfterDirect => {
                "Fortran contiguous specifier must follow an indirect dimension"
            }
            DeclError::IndirectAfterContig => {
                "Indirect dimension may not follow Fortran contiguous dimension"
            }
            DeclError::DimensionMayNotBeContiguous => "Dimension may not be contiguous",
            DeclError::OnlyOneContig => "Only one direct contiguous axis may be specified.",
            DeclError::ContigNotAllowedHere { .. } => {
                "Only the dimension after the last indirect one, or the last dimension, may be contiguous and direct"
            }
            DeclError::FollowAndStrided => {
                "A memoryview cannot have both follow and strided axis specifiers."
            }
            DeclError::TooManyDimensions => {
                "More dimensions than the maximum number of buffer dimensions were used."
            }
            DeclError::Syntax(what) => what,
        }
    }
}

impl From<DeclError<'_>> for Error {
    fn from(e: DeclError<'_>) -> Error {
        Error::new(ErrorKind::CompileError, e.message())
    }
}

/// A parsed declaration: the dtype's name, `const`, and the axis specs Cython derives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemviewDecl<'t> {
    dtype_name: &'t str,
    is_const: bool,
    specs: [AxisSpec; MAX_DIMS],
    ndim: usize,
}

/// The C scalar types a memoryview may hold, by the name Cython's source uses (after white
/// space is folded to one space).
const BUILTINS: &[(&str, &TypeInfo)] = &[
    ("char", &format::CHAR),
    ("signed char", &format::SIGNED_CHAR),
    ("unsigned char", &format::UNSIGNED_CHAR),
    ("short", &format::SHORT),
    ("unsigned short", &format::UNSIGNED_SHORT),
    ("int", &format::INT),
    ("unsigned int", &format::UNSIGNED_INT),
    ("long", &format::LONG),
    ("unsigned long", &format::UNSIGNED_LONG),
    ("long long", &format::LONG_LONG),
    ("unsigned long long", &format::UNSIGNED_LONG_LONG),
    ("Py_ssize_t", &format::PY_SSIZE_T),
    ("size_t", &format::SIZE_T),
    ("float", &format::FLOAT),
    ("double", &format::DOUBLE),
    ("long double", &format::LONG_DOUBLE),
    ("float complex", &format::FLOAT_COMPLEX),
    ("double complex", &format::DOUBLE_COMPLEX),
];

/// [`BUILTINS`] as Cython names them in a `const` declaration's messages (`Buffer dtype
/// mismatch, expected 'const double' but got 'float'`): same order.
const CONST_BUILTINS: [&TypeInfo; 18] = [
    &format::CHAR.named("const char"),
    &format::SIGNED_CHAR.named("const signed char"),
    &format::UNSIGNED_CHAR.named("const unsigned char"),
    &format::SHORT.named("const short"),
    &format::UNSIGNED_SHORT.named("const unsigned short"),
    &format::INT.named("const int"),
    &format::UNSIGNED_INT.named("const unsigned int"),
    &format::LONG.named("const long"),
    &format::UNSIGNED_LONG.named("const unsigned long"),
    &format::LONG_LONG.named("const long long"),
    &format::UNSIGNED_LONG_LONG.named("const unsigned long long"),
    &format::PY_SSIZE_T.named("const Py_ssize_t"),
    &format::SIZE_T.named("const size_t"),
    &format::FLOAT.named("const float"),
    &format::DOUBLE.named("const double"),
    &format::LONG_DOUBLE.named("const long double"),
    &format::FLOAT_COMPLEX.named("const float complex"),
    &format::DOUBLE_COMPLEX.named("const double complex"),
];

const fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

const fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

const fn skip_space(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_space(b[i]) {
        i += 1;
    }
    i
}

/// `b[start..end]` in a `const fn`.
const fn sub(b: &[u8], start: usize, end: usize) -> &[u8] {
    let (head, _) = b.split_at(end);
    let (_, tail) = head.split_at(start);
    tail
}

/// The dtype's words with white space folded to single spaces equal `name`.
const fn words_eq(b: &[u8], name: &[u8]) -> bool {
    let (mut i, mut j) = (0, 0);
    while i < b.len() {
        if is_space(b[i]) {
            while i < b.len() && is_space(b[i]) {
                i += 1;
            }
            if j >= name.len() || name[j] != b' ' {
                return false;
            }
            j += 1;
        } else {
            if j >= name.len() || name[j] != b[i] {
                return false;
            }
            i += 1;
            j += 1;
        }
    }
    j == name.len()
}

/// One axis as written: its spec, or `None` for `::1` (Cython's `cfcontig`).
type Written = Option<AxisSpec>;

const fn spec_named(name: &[u8]) -> Option<AxisSpec> {
    let s = if bytes_eq(name, b"generic") {
        AxisSpec::new(Access::Full, Packing::Strided)
    } else if bytes_eq(name, b"strided") {
        AxisSpec::new(Access::Direct, Packing::Strided)
    } else if bytes_eq(name, b"indirect") {
        AxisSpec::new(Access::Ptr, Packing::Strided)
    } else if bytes_eq(name, b"contiguous") {
        AxisSpec::new(Access::Direct, Packing::Contig)
    } else if bytes_eq(name, b"indirect_contiguous") {
        AxisSpec::new(Access::Ptr, Packing::Contig)
    } else {
        return None;
    };
    Some(s)
}

/// Parses one axis `[start] : [stop] [: [step]]` from `i`; returns it and the index after it.
const fn parse_axis<'t>(text: &'t str, i: usize) -> Result<(Written, usize), DeclError<'t>> {
    let b = text.as_bytes();
    let mut i = skip_space(b, i);
    if i < b.len() && b[i] != b':' {
        return Err(DeclError::StartGiven);
    }
    if i >= b.len() {
        return Err(DeclError::Syntax("expected ':' in an axis"));
    }
    i = skip_space(b, i + 1);
    if i < b.len() && b[i] != b':' && b[i] != b',' && b[i] != b']' {
        return Err(DeclError::StopGiven);
    }
    if i >= b.len() || b[i] != b':' {
        return Ok((Some(AxisSpec::STRIDED_DIRECT), i));
    }
    i = skip_space(b, i + 1);
    if i < b.len() && (b[i] == b',' || b[i] == b']') {
        return Ok((Some(AxisSpec::STRIDED_DIRECT), i));
    }
    if i < b.len() && b[i].is_ascii_digit() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if !bytes_eq(sub(b, start, i), b"1") {
            return Err(DeclError::BadStep);
        }
        return Ok((None, skip_space(b, i)));
    }
    // A name, possibly dotted: `contiguous`, `view.contiguous`, `cython.view.contiguous`;
    // the last part names the spec.
    let mut last_start;
    let mut dotted = false;
    loop {
        let start = i;
        while i < b.len() && is_ident(b[i]) {
            i += 1;
        }
        if i == start {
            return Err(DeclError::InvalidSpec);
        }
        last_start = start;
        let j = skip_space(b, i);
        if j < b.len() && b[j] == b'.' {
            dotted = true;
            i = skip_space(b, j + 1);
        } else {
            break;
        }
    }
    let name = sub(b, last_start, i);
    match spec_named(name) {
        Some(s) => Ok((Some(s), skip_space(b, i))),
        None if dotted => {
            let (_, tail) = text.split_at(last_start);
            let (attr, _) = tail.split_at(i - last_start);
            Err(DeclError::NoSuchAttribute(attr))
        }
        None => Err(DeclError::InvalidSpec),
    }
}

const fn is_indirect(s: AxisSpec) -> bool {
    !matches!(s.access, Access::Direct)
}

impl<'t> MemviewDecl<'t> {
    /// Parses `[const] dtype[axes]` and derives the axis specs as Cython's compiler does.
    ///
    /// Mirrors `get_axes_specs` and `validate_axes_specs` (`Compiler/MemoryView.py`): `:` is
    /// direct and strided; one `::1` makes the array C-contiguous when it is the last axis
    /// (then the axes after the last indirect one become `follow`) and Fortran-contiguous
    /// otherwise (it must come first or after an indirect axis; the axes after it become
    /// `follow`).
    ///
    /// # Errors
    ///
    /// Cython's compile error for the axes ([`DeclError`]), or [`DeclError::Syntax`].
    pub const fn parse(text: &'t str) -> Result<MemviewDecl<'t>, DeclError<'t>> {
        let b = text.as_bytes();
        let mut i = skip_space(b, 0);
        let mut is_const = false;
        if b.len() >= i + 5 && bytes_eq(sub(b, i, i + 5), b"const") {
            let after = i + 5;
            if after < b.len() && is_space(b[after]) {
                is_const = true;
                i = skip_space(b, after);
            }
        }
        // The dtype: everything up to `[`, trailing spaces dropped.
        let dtype_start = i;
        while i < b.len() && b[i] != b'[' {
            if !(is_ident(b[i]) || is_space(b[i])) {
                return Err(DeclError::Syntax(
                    "the dtype must be a C type or struct name",
                ));
            }
            i += 1;
        }
        if i >= b.len() {
            return Err(DeclError::Syntax("expected '[' after the dtype"));
        }
        let mut dtype_end = i;
        while dtype_end > dtype_start && is_space(b[dtype_end - 1]) {
            dtype_end -= 1;
        }
        if dtype_end == dtype_start {
            return Err(DeclError::Syntax("missing dtype"));
        }
        let (_, rest) = text.split_at(dtype_start);
        let (dtype_name, _) = rest.split_at(dtype_end - dtype_start);
        // The axes.
        let mut written: [Written; MAX_DIMS] = [Some(AxisSpec::STRIDED_DIRECT); MAX_DIMS];
        let mut n = 0;
        i += 1;
        loop {
            if n == MAX_DIMS {
                return Err(DeclError::TooManyDimensions);
            }
            let (w, next) = match parse_axis(text, i) {
                Ok(x) => x,
                Err(e) => return Err(e),
            };
            written[n] = w;
            n += 1;
            i = next;
            if i < b.len() && b[i] == b',' {
                i += 1;
            } else if i < b.len() && b[i] == b']' {
                i += 1;
                break;
            } else {
                return Err(DeclError::Syntax("expected ',' or ']' after an axis"));
            }
        }
        if skip_space(b, i) != b.len() {
            return Err(DeclError::Syntax("text after ']'"));
        }
        // Options.buffer_max_dims: a declaration may have at most 7 dimensions.
        if n >= MAX_DIMS {
            return Err(DeclError::TooManyDimensions);
        }
        let specs = match derive_specs(&written, n) {
            Ok(s) => s,
            Err(e) => return Err(e),
        };
        Ok(MemviewDecl {
            dtype_name,
            is_const,
            specs,
            ndim: n,
        })
    }

    /// [`MemviewDecl::parse`] for `const` items: a text Cython would reject panics, which
    /// in a `const` item is a compile error naming Cython's message.
    ///
    /// # Panics
    ///
    /// When [`MemviewDecl::parse`] returns an error.
    pub const fn parse_or_panic(text: &'t str) -> MemviewDecl<'t> {
        match MemviewDecl::parse(text) {
            Ok(d) => d,
            Err(e) => panic!("{}", e.static_message()),
        }
    }

    /// The dtype as written, white space folded (`"unsigned long long"`, `"Point"`).
    pub const fn dtype_name(&self) -> &'t str {
        self.dtype_name
    }

    /// The C scalar type's `TypeInfo` when the dtype is one (`None` for a struct name).
    pub const fn builtin_dtype(&self) -> Option<&'static TypeInfo> {
        let name = self.dtype_name.as_bytes();
        let mut k = 0;
        while k < BUILTINS.len() {
            if words_eq(name, BUILTINS[k].0.as_bytes()) {
                return Some(BUILTINS[k].1);
            }
            k += 1;
        }
        None
    }

    /// [`MemviewDecl::builtin_dtype`] named as Cython names the element type in this
    /// declaration's messages: `const double` for `const double[:]`, whose acquisition
    /// fails with `Buffer dtype mismatch, expected 'const double' but got 'float'`.
    pub const fn builtin_element_type(&self) -> Option<&'static TypeInfo> {
        if !self.is_const {
            return self.builtin_dtype();
        }
        let name = self.dtype_name.as_bytes();
        let mut k = 0;
        while k < BUILTINS.len() {
            if words_eq(name, BUILTINS[k].0.as_bytes()) {
                return Some(CONST_BUILTINS[k]);
            }
            k += 1;
        }
        None
    }

    /// Whether the dtype as written is `name` (white space folded): a struct's Cython name
    /// against its `TypeInfo` name, in a `const fn`.
    pub const fn dtype_is(&self, name: &str) -> bool {
        words_eq(self.dtype_name.as_bytes(), name.as_bytes())
    }

    /// Whether the declaration is `const` (read-only: no `PyBUF_WRITABLE`).
    pub const fn is_const(&self) -> bool {
        self.is_const
    }

    /// The axis specs, one per dimension.
    pub const fn specs(&self) -> &[AxisSpec] {
        self.specs.split_at(self.ndim).0
    }

    /// The number of dimensions.
    pub const fn ndim(&self) -> usize {
        self.ndim
    }
}

/// `get_axes_specs` after the axes are read, then `validate_axes_specs`.
const fn derive_specs(
    written: &[Written; MAX_DIMS],
    n: usize,
) -> Result<[AxisSpec; MAX_DIMS], DeclError<'static>> {
    let mut specs = [AxisSpec::STRIDED_DIRECT; MAX_DIMS];
    // Find the `::1` (at most one).
    let mut contig_dim: isize = 0;
    let mut is_contig = false;
    let mut k = 0;
    while k < n {
        match written[k] {
            Some(s) => specs[k] = s,
            None => {
                if is_contig {
                    return Err(DeclError::BothCAndFortran);
                }
                contig_dim = k as isize;
                // cf_access 'direct'; the packing becomes 'contig'.
                specs[k] = AxisSpec::CONTIG_DIRECT;
                is_contig = true;
            }
        }
        k += 1;
    }
    let mut is_c_contig = false;
    if is_contig {
        if contig_dim == n as isize - 1 {
            is_c_contig = true;
        } else {
            if contig_dim != 0 && !is_indirect(specs[contig_dim as usize - 1]) {
                return Err(DeclError::FortranAfterDirect);
            }
        }
        if is_c_contig {
            // The last indirect dimension (or -1).
            contig_dim = -1;
            let mut d = 0;
            while d < n {
                if is_indirect(specs[d]) {
                    contig_dim = d as isize;
                }
                d += 1;
            }
        }
        // 'follow' for the dimensions after contig_dim, up to the last (C) or all (Fortran).
        let start = (contig_dim + 1) as usize;
        let stop = n - is_c_contig as usize;
        let mut d = start;
        while d < stop {
            if is_indirect(specs[d]) {
                return Err(DeclError::IndirectAfterContig);
            }
            if matches!(specs[d].packing, Packing::Contig) {
                return Err(DeclError::DimensionMayNotBeContiguous);
            }
            specs[d] = AxisSpec::new(specs[d].access, Packing::Follow);
            d += 1;
        }
        if is_c_contig {
            specs[n - 1] = AxisSpec::new(specs[n - 1].access, Packing::Contig);
        }
    }
    // validate_axes_specs.
    let mut last_indirect: isize = -1;
    let mut d = 0;
    while d < n {
        if matches!(specs[d].access, Access::Ptr) {
            last_indirect = d as isize;
        }
        d += 1;
    }
    let mut has_contig = false;
    let mut has_strided = false;
    let mut d = 0;
    while d < n {
        let s = specs[d];
        match s.packing {
            Packing::Strided => has_strided = true,
            Packing::Contig => {
                if has_contig {
                    return Err(DeclError::OnlyOneContig);
                }
                let first = (last_indirect + 1) as usize;
                let last = n - 1;
                if d != first && d != last && !matches!(s.access, Access::Ptr) {
                    return Err(DeclError::ContigNotAllowedHere {
                        first,
                        last: if first != last { Some(last) } else { None },
                    });
                }
                has_contig = !matches!(s.access, Access::Ptr);
            }
            Packing::Follow => {
                if has_strided {
                    return Err(DeclError::FollowAndStrided);
                }
                // `Invalid use of the follow specifier.` cannot happen: text cannot name
                // `follow`, and get_axes_specs only writes it for C/Fortran arrays.
            }
        }
        if !matches!(s.access, Access::Direct) {
            has_strided = false;
        }
        d += 1;
    }
    Ok(specs)
}
