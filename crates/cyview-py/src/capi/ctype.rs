//! The C types of `cdef api` signatures as Cython spells them in `__pyx_capi__`, and the
//! Rust types that have their ABI.
//!
//! The spellings were read from the capsules of modules compiled by every pinned Cython
//! release (0.29.37, 3.0.12, 3.1.8, 3.2.9, 3.3.1 write them identically); the conformance
//! suite's `tests/capi.rs` checks them against `cython_fixtures/capi.pyx`.

use std::ffi::{c_char, c_long, c_void};
use std::fmt;

use cyview::MemviewSlice;

/// A Rust type with the C ABI of the C types Cython spells as [`CType::c_names`] in the
/// signature of a `cdef api` function (the name of its capsule in `__pyx_capi__`).
///
/// Several C types may share one Rust type: `i64` is `long` (where C's `long` has 64
/// bits), `PY_LONG_LONG` (`long long`) and `int64_t`. Implemented for the integer and
/// floating-point types, `num_complex::Complex<f32>` / `Complex<f64>` (feature
/// `num-complex`: `float complex`, `double complex`), [`MemviewSlice`]
/// (`__Pyx_memviewslice`, any typed memoryview), `pyo3::ffi::PyObject` (`PyObject`, as the
/// pointee of `*mut PyObject`: `object`), `c_void` (`void`, as a pointee) and pointers to
/// those (`*mut T`: `T *`; `*const T`: `T const *`).
///
/// A `ctypedef public` name appears in signatures by its own name: implement this trait
/// for a `#[repr(transparent)]` wrapper that lists it.
///
/// # Safety
///
/// Every name `c_names` lists is the spelling of a C type with exactly `Self`'s size,
/// alignment and calling-convention class on the target, so that a function pointer of
/// that C type may be called through one with `Self` in its place.
pub unsafe trait CType {
    /// The spellings Cython may write for this type in a capsule name, the usual one first.
    fn c_names() -> Vec<String>;

    /// Whether a by-value parameter may also be spelled `<name> const ` (Cython's spelling
    /// of `const int x`, with the trailing space): true for the arithmetic types.
    #[doc(hidden)]
    fn const_by_value() -> bool {
        false
    }
}

/// Whether C's `char` is signed on the target (it is Rust's `c_char`).
const CHAR_SIGNED: bool = c_char::MIN != 0;
/// Whether C's `long` has 64 bits on the target (it is Rust's `c_long`).
const LONG_64: bool = std::mem::size_of::<c_long>() == 8;

/// `before`, then `platform` when the target has it, then `after`.
fn names(before: &[&str], platform: Option<&str>, after: &[&str]) -> Vec<String> {
    before
        .iter()
        .copied()
        .chain(platform)
        .chain(after.iter().copied())
        .map(String::from)
        .collect()
}

macro_rules! arithmetic {
    ($($t:ty => $names:expr;)*) => { $(
        // SAFETY: each spelling is the C type of that size and signedness on the target
        // (`char` and `long` only where `c_char` / `c_long` is this type), or of the same
        // floating-point format; Cython's complex types are `float _Complex` /
        // `double _Complex` (or a struct of two), passed as two floats.
        unsafe impl CType for $t {
            fn c_names() -> Vec<String> {
                $names
            }
            fn const_by_value() -> bool {
                true
            }
        }
    )* };
}

// `c_long` is `i64` where `long` has 64 bits, and `c_char` is `i8` where `char` is signed:
// their users write `long` and `char` (`char const *`), listed first there.
arithmetic! {
    i8 => names(&[], CHAR_SIGNED.then_some("char"), &["signed char", "int8_t"]);
    u8 => names(&[], (!CHAR_SIGNED).then_some("char"), &["unsigned char", "uint8_t"]);
    i16 => names(&["short", "int16_t"], None, &[]);
    u16 => names(&["unsigned short", "uint16_t"], None, &[]);
    i32 => names(&["int", "int32_t"], (!LONG_64).then_some("long"), &[]);
    u32 => names(&["unsigned int", "uint32_t", "Py_UCS4"], (!LONG_64).then_some("unsigned long"), &[]);
    i64 => names(&[], LONG_64.then_some("long"), &["PY_LONG_LONG", "int64_t"]);
    u64 => names(&[], LONG_64.then_some("unsigned long"), &["unsigned PY_LONG_LONG", "uint64_t"]);
    isize => names(&["Py_ssize_t", "Py_hash_t", "intptr_t"], None, &[]);
    usize => names(&["size_t", "uintptr_t"], None, &[]);
    f32 => names(&["float"], None, &[]);
    f64 => names(&["double"], None, &[]);
}
#[cfg(feature = "num-complex")]
arithmetic! {
    num_complex::Complex<f32> => names(&["__pyx_t_float_complex"], None, &[]);
    num_complex::Complex<f64> => names(&["__pyx_t_double_complex"], None, &[]);
}

// SAFETY: `MemviewSlice` is `#[repr(C)]` with the fields of `__Pyx_memviewslice` (checked
// against every release's generated C by the conformance suite's layout tests).
unsafe impl CType for MemviewSlice {
    fn c_names() -> Vec<String> {
        vec!["__Pyx_memviewslice".into()]
    }
}

// SAFETY: only ever a pointee (`PyObject *`): a pointer to it is a pointer.
unsafe impl CType for pyo3::ffi::PyObject {
    fn c_names() -> Vec<String> {
        vec!["PyObject".into()]
    }
}

// SAFETY: only ever a pointee (`void *`): a pointer to it is a pointer.
unsafe impl CType for c_void {
    fn c_names() -> Vec<String> {
        vec!["void".into()]
    }
}

/// `T` followed by `*` as C declarators are written: `double *`, `char **`.
fn pointer_to(inner: Vec<String>, qualifier: &str) -> Vec<String> {
    inner
        .into_iter()
        .map(|t| {
            if t.ends_with('*') {
                format!("{t}{qualifier}*")
            } else {
                format!("{t} {qualifier}*")
            }
        })
        .collect()
}

// SAFETY: a pointer, whatever it points to.
unsafe impl<T: CType + ?Sized> CType for *mut T {
    fn c_names() -> Vec<String> {
        pointer_to(T::c_names(), "")
    }
}

// SAFETY: a pointer, whatever it points to.
unsafe impl<T: CType + ?Sized> CType for *const T {
    fn c_names() -> Vec<String> {
        // `const double *` is spelled `double const *`; `const char **` `char const **`.
        pointer_to(
            T::c_names()
                .into_iter()
                .map(|t| format!("{t} const"))
                .collect(),
            "",
        )
    }
}

/// The result type of a C function: a [`CType`], or `()` for `void`.
///
/// # Safety
///
/// As for [`CType`]: every name is a C type with `Self`'s ABI as a return value.
pub unsafe trait CReturn {
    /// The spellings of the result type, the usual one first.
    fn c_names() -> Vec<String>;
}

// SAFETY: as the `CType` impl.
unsafe impl<T: CType> CReturn for T {
    fn c_names() -> Vec<String> {
        T::c_names()
    }
}

// SAFETY: `()` is how Rust writes a function without a result.
unsafe impl CReturn for () {
    fn c_names() -> Vec<String> {
        vec!["void".into()]
    }
}

/// The C signature a Rust function type stands for, matched against the names Cython gives
/// the capsules of `__pyx_capi__` (`"double (__Pyx_memviewslice, Py_ssize_t)"`).
///
/// Each position lists the spellings it accepts (a Rust type may stand for several C
/// types of one ABI, see [`CType`]). `Display` writes the usual spelling of each, which is
/// Cython's exact signature when the Cython code uses those spellings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CSignature {
    result: Vec<String>,
    params: Vec<Param>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Param {
    names: Vec<String>,
    const_by_value: bool,
}

impl CSignature {
    /// The signature of a function with result `R` and parameters `params` (each the
    /// spellings of one parameter and whether it may be `const` by value).
    pub(crate) fn new(result: Vec<String>, params: Vec<(Vec<String>, bool)>) -> Self {
        CSignature {
            result,
            params: params
                .into_iter()
                .map(|(names, const_by_value)| Param {
                    names,
                    const_by_value,
                })
                .collect(),
        }
    }

    /// The signature a function pointer type `F` stands for.
    pub fn of<F: CFunctionPointer>() -> Self {
        F::c_signature()
    }

    /// Whether `capsule_name` (Cython's spelling of a `cdef api` signature) is one of the
    /// spellings this signature accepts: `R (P1, P2)` with `R *(...)` for a pointer result
    /// and `R (void)` without parameters; a by-value arithmetic parameter may be spelled
    /// `int const ` (`const int x`).
    pub fn matches(&self, capsule_name: &str) -> bool {
        self.result.iter().any(|r| {
            let sep = if r.ends_with('*') { "" } else { " " };
            capsule_name
                .strip_prefix(r.as_str())
                .and_then(|rest| rest.strip_prefix(sep))
                .and_then(|rest| rest.strip_prefix('('))
                .is_some_and(|rest| self.params_match(rest))
        })
    }

    /// Whether `rest` is the parameter list (after its `(`) with its closing `)` and
    /// nothing after.
    fn params_match(&self, rest: &str) -> bool {
        if self.params.is_empty() {
            return rest == "void)";
        }
        fn from(params: &[Param], rest: &str) -> bool {
            let Some((p, more)) = params.split_first() else {
                return false;
            };
            let end = if more.is_empty() { ")" } else { ", " };
            p.names.iter().any(|n| {
                let Some(after) = rest.strip_prefix(n.as_str()) else {
                    return false;
                };
                let after = match after.strip_prefix(" const ") {
                    Some(a) if p.const_by_value => a,
                    _ => after,
                };
                match after.strip_prefix(end) {
                    Some(a) if more.is_empty() => a.is_empty(),
                    Some(a) => from(more, a),
                    None => false,
                }
            })
        }
        from(&self.params, rest)
    }

    /// The spellings that a position other than the usual one accepts, for messages:
    /// `"parameter 2 may also be long or int64_t"`.
    pub(crate) fn alternatives(&self) -> Vec<String> {
        let mut out = Vec::new();
        let list = |names: &[String]| names[1..].join(" or ");
        if self.result.len() > 1 {
            out.push(format!("the result may also be {}", list(&self.result)));
        }
        for (k, p) in self.params.iter().enumerate() {
            if p.names.len() > 1 {
                out.push(format!(
                    "parameter {} may also be {}",
                    k + 1,
                    list(&p.names)
                ));
            }
        }
        out
    }
}

impl fmt::Display for CSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let first = |names: &[String]| names.first().cloned().unwrap_or_default();
        let r = first(&self.result);
        let sep = if r.ends_with('*') { "" } else { " " };
        let params: Vec<String> = self.params.iter().map(|p| first(&p.names)).collect();
        let params = if params.is_empty() {
            "void".to_string()
        } else {
            params.join(", ")
        };
        write!(f, "{r}{sep}({params})")
    }
}

mod sealed {
    pub trait Sealed {}
}

/// An `unsafe extern "C" fn` pointer type whose parameters are [`CType`]s and whose result
/// is a [`CReturn`], up to 12 parameters: what [`capi_function`](crate::capi_function)
/// returns, with the signature it checks.
pub trait CFunctionPointer: sealed::Sealed + Copy {
    /// The C signature this type stands for.
    fn c_signature() -> CSignature;
}

macro_rules! function_pointers {
    ($($p:ident),*) => {
        impl<R: CReturn, $($p: CType),*> sealed::Sealed for unsafe extern "C" fn($($p),*) -> R {}
        impl<R: CReturn, $($p: CType),*> CFunctionPointer for unsafe extern "C" fn($($p),*) -> R {
            fn c_signature() -> CSignature {
                CSignature::new(R::c_names(), vec![$(($p::c_names(), $p::const_by_value())),*])
            }
        }
    };
}

function_pointers!();
function_pointers!(A);
function_pointers!(A, B);
function_pointers!(A, B, C);
function_pointers!(A, B, C, D);
function_pointers!(A, B, C, D, E);
function_pointers!(A, B, C, D, E, F);
function_pointers!(A, B, C, D, E, F, G);
function_pointers!(A, B, C, D, E, F, G, H);
function_pointers!(A, B, C, D, E, F, G, H, I);
function_pointers!(A, B, C, D, E, F, G, H, I, J);
function_pointers!(A, B, C, D, E, F, G, H, I, J, K);
function_pointers!(A, B, C, D, E, F, G, H, I, J, K, L);

#[cfg(test)]
mod tests {
    use super::*;

    type F = unsafe extern "C" fn(MemviewSlice, isize) -> f64;

    #[test]
    fn display_and_match() {
        let s = CSignature::of::<F>();
        assert_eq!(s.to_string(), "double (__Pyx_memviewslice, Py_ssize_t)");
        assert!(s.matches("double (__Pyx_memviewslice, Py_ssize_t)"));
        assert!(s.matches("double (__Pyx_memviewslice, Py_ssize_t const )"));
        assert!(s.matches("double (__Pyx_memviewslice, intptr_t)"));
        assert!(!s.matches("double (__Pyx_memviewslice, Py_ssize_t) "));
        assert!(!s.matches("double (__Pyx_memviewslice)"));
        assert!(!s.matches("double (__Pyx_memviewslice const , Py_ssize_t)"));
        let v = CSignature::of::<unsafe extern "C" fn()>();
        assert_eq!(v.to_string(), "void (void)");
        assert!(v.matches("void (void)"));
        let p = CSignature::of::<
            unsafe extern "C" fn(*const c_char, *mut *mut c_char) -> *const c_char,
        >();
        assert_eq!(p.to_string(), "char const *(char const *, char **)");
    }
}
