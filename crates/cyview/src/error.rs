//! The crate's one error type: the Python exception kind Cython raises and its exact text.

use core::fmt;

/// Which exception Cython raises (or, for [`ErrorKind::CompileError`], that Cython's compiler
/// rejects the expression before any code runs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Python's `IndexError`.
    IndexError,
    /// Python's `ValueError`.
    ValueError,
    /// Python's `TypeError`.
    TypeError,
    /// Python's `BufferError`.
    BufferError,
    /// Python's `MemoryError` (an allocation failed).
    MemoryError,
    /// Python's `OverflowError` (CPython raises it where Cython formats a `char` above 0x7f
    /// with `%c` in a format-string error).
    OverflowError,
    /// Cython refuses to compile the expression (for example too many indices for the
    /// declared number of dimensions). The message is this crate's wording, since Cython's
    /// compile error names the declared C type, which this crate does not know.
    CompileError,
    /// Cython's behaviour here depends on memory past the slice's dimensions (uninitialised
    /// or out of bounds): its result or exception is not determined by the inputs, or it
    /// crashes. cyview refuses such a case instead of guessing; the message says what Cython
    /// would read. Example: Python-level `m[0, 0]` on a 1-dimensional Cython memoryview in
    /// Cython 3.3, which reads the shape of dimension 1 (see
    /// [`getitem_object`](crate::raw::slicing::getitem_object)).
    Undefined,
}

impl ErrorKind {
    /// The Python exception's name (`"IndexError"`, ...), or `"CompileError"`, or
    /// `"Undefined"`.
    pub const fn name(self) -> &'static str {
        match self {
            ErrorKind::IndexError => "IndexError",
            ErrorKind::ValueError => "ValueError",
            ErrorKind::TypeError => "TypeError",
            ErrorKind::BufferError => "BufferError",
            ErrorKind::MemoryError => "MemoryError",
            ErrorKind::OverflowError => "OverflowError",
            ErrorKind::CompileError => "CompileError",
            ErrorKind::Undefined => "Undefined",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An error with the kind and the exact message Cython gives for the same situation.
///
/// `Display` prints the message alone, exactly as `str(exc)` does in Python.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Error {
    kind: ErrorKind,
    message: String,
}

impl Error {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn index(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::IndexError, message)
    }

    pub(crate) fn value(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::ValueError, message)
    }

    // The errors raised in more than one place, each built once.

    /// `IndexError: Out of bounds on buffer access (axis {axis})`: Cython's element access,
    /// compiled (`v[i, j]`) and Python-level (`pybuffer_index`).
    pub(crate) fn buffer_access_out_of_bounds(axis: usize) -> Self {
        Self::index(format!("Out of bounds on buffer access (axis {axis})"))
    }

    /// `IndexError: list assignment index out of range`: Python's list assignment inside
    /// Cython's `_unellipsify`.
    pub(crate) fn list_assignment_out_of_range() -> Self {
        Self::index("list assignment index out of range")
    }

    /// [`ErrorKind::Undefined`]: Cython's behaviour depends on memory past the slice's
    /// dimensions; `what` says what Cython reads.
    pub(crate) fn undefined(what: impl core::fmt::Display) -> Self {
        Self::new(
            ErrorKind::Undefined,
            format!("Cython's behaviour is undefined here: {what}"),
        )
    }

    /// `MemoryError` with `what` could not be allocated (Cython's own `MemoryError`s, from
    /// `PyErr_NoMemory`, have an empty message: pass `""`).
    pub(crate) fn no_memory(what: impl Into<String>) -> Self {
        Self::new(ErrorKind::MemoryError, what)
    }

    /// The exception kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, exactly as Cython formats it.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

/// The Python exception Cython raises: `IndexError`, `TypeError`, `BufferError`,
/// `MemoryError`, `OverflowError` by kind, `ValueError` for the rest (a
/// [`ErrorKind::CompileError`], which Python code meets only through this crate, included),
/// with the exact message. An [`ErrorKind::Undefined`] (where Cython itself has no defined
/// behaviour, for example reads past the slice's dimensions) becomes an `IndexError` whose
/// message starts with `Cython's behaviour is undefined here:`: always an exception, never
/// Cython's crash, and an `IndexError` because every such case is an index with more items
/// than dimensions. With it, `?` turns a cyview error into a `PyResult` error.
#[cfg(feature = "pyo3")]
#[cfg_attr(docsrs, doc(cfg(feature = "pyo3")))]
impl From<Error> for pyo3::PyErr {
    fn from(e: Error) -> pyo3::PyErr {
        use pyo3::exceptions::{
            PyBufferError, PyIndexError, PyMemoryError, PyOverflowError, PyTypeError, PyValueError,
        };
        let msg = e.message;
        match e.kind {
            ErrorKind::IndexError | ErrorKind::Undefined => PyIndexError::new_err(msg),
            ErrorKind::TypeError => PyTypeError::new_err(msg),
            ErrorKind::BufferError => PyBufferError::new_err(msg),
            ErrorKind::MemoryError => PyMemoryError::new_err(msg),
            ErrorKind::OverflowError => PyOverflowError::new_err(msg),
            ErrorKind::ValueError | ErrorKind::CompileError => PyValueError::new_err(msg),
        }
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = core::result::Result<T, E>;
