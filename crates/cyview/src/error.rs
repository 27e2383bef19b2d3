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
}

impl ErrorKind {
    /// The Python exception's name (`"IndexError"`, ...), or `"CompileError"`.
    pub const fn name(self) -> &'static str {
        match self {
            ErrorKind::IndexError => "IndexError",
            ErrorKind::ValueError => "ValueError",
            ErrorKind::TypeError => "TypeError",
            ErrorKind::BufferError => "BufferError",
            ErrorKind::MemoryError => "MemoryError",
            ErrorKind::OverflowError => "OverflowError",
            ErrorKind::CompileError => "CompileError",
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
/// with the exact message. With it, `?` turns a cyview error into a `PyResult` error.
#[cfg(feature = "pyo3")]
#[cfg_attr(docsrs, doc(cfg(feature = "pyo3")))]
impl From<Error> for pyo3::PyErr {
    fn from(e: Error) -> pyo3::PyErr {
        use pyo3::exceptions::{
            PyBufferError, PyIndexError, PyMemoryError, PyOverflowError, PyTypeError, PyValueError,
        };
        let msg = e.message;
        match e.kind {
            ErrorKind::IndexError => PyIndexError::new_err(msg),
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
