//! Build-time support for cyview, for any `build.rs`: check that the installed Cython lays
//! out its memoryviews as cyview expects ([`check_abi`]), cythonize and compile a `.pyx`
//! module with extra C sources and libraries ([`CythonModule`]) or a folder of them
//! ([`Fixtures`]), cached, and extract Cython's memoryview structs from the generated C with
//! bindgen and libclang ([`BuiltModule::extract_layouts`]).
//!
//! ```no_run
//! // build.rs, in `fn main`: stop the build when the installed Cython's memoryview structs
//! // differ from cyview's
//! let checked = cyview_build::Python::find().and_then(|py| cyview_build::check_abi(&py));
//! if let Err(e) = checked {
//!     eprintln!("{e}");
//!     std::process::exit(1);
//! }
//! ```
//!
//! Configuration comes from the environment, read through [`env_var`] (which tells Cargo
//! to rerun the build script when it changes): `CYVIEW_PYTHON`, the interpreter, else
//! `PYO3_PYTHON` (the two must agree when both are set), else `python3`. The C compiler is
//! the `cc` crate's (`CC`, `CFLAGS`, ... as `cc` reads them). libclang is loaded at run
//! time (`LIBCLANG_PATH` to choose one).

#![warn(missing_docs)]

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

pub mod abi;
mod cache;
mod extract;
mod fixtures;
pub mod layouts;
mod module;
mod python;

pub use abi::{check_abi, compare_layouts, AbiCheck, AbiReport, CyviewAbi, Mismatch};
pub use extract::{
    extract_layouts, extract_layouts_tolerant, Extracted, TolerantLayouts, MEMORYVIEW_STRUCTS,
};
pub use fixtures::{BuiltFixtures, Fixtures};
pub use layouts::{Field, Layouts, StructLayout};
pub use module::{BuiltModule, CythonModule};
pub use python::{Python, PYO3_PYTHON_ENV, PYTHON_ENV};

/// Reads an environment variable for the build and prints
/// `cargo:rerun-if-env-changed=<name>`, so that changing it reruns the build script. Every
/// variable this crate reads goes through here.
pub fn env_var(name: &str) -> Option<OsString> {
    println!("cargo:rerun-if-env-changed={name}");
    std::env::var_os(name)
}

/// What can go wrong at build time. Display is one line naming what failed and what to do,
/// followed by the tool's output where there is one.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The interpreter could not be started.
    PythonNotFound {
        /// The program that was tried.
        program: PathBuf,
        /// The variable it came from (`CYVIEW_PYTHON`, `PYO3_PYTHON`), or `None` for the
        /// default `python3`.
        variable: Option<&'static str>,
    },
    /// `CYVIEW_PYTHON` and `PYO3_PYTHON` are both set and name different interpreters.
    PythonConflict {
        /// `CYVIEW_PYTHON`.
        cyview: PathBuf,
        /// `PYO3_PYTHON`.
        pyo3: PathBuf,
        /// How they differ.
        detail: String,
    },
    /// The interpreter started but could not be queried.
    PythonQuery {
        /// The interpreter.
        program: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// The interpreter cannot import Cython.
    CythonMissing {
        /// The interpreter.
        python: PathBuf,
        /// Its version.
        version: String,
        /// Why `import Cython` failed (the exception).
        detail: String,
    },
    /// Cython rejected a `.pyx` file.
    Cythonize {
        /// The source.
        pyx: PathBuf,
        /// Cython's output.
        output: String,
    },
    /// The `cc` crate found no usable C compiler.
    Compiler {
        /// `cc`'s message.
        detail: String,
    },
    /// The C compiler failed on a generated file.
    Compile {
        /// The generated C file.
        c_file: PathBuf,
        /// The command that was run.
        command: String,
        /// The compiler's output.
        output: String,
    },
    /// libclang could not be loaded or reported errors in the file.
    Clang {
        /// The file being parsed, if any.
        c_file: Option<PathBuf>,
        /// libclang's diagnostics.
        message: String,
    },
    /// The installed Cython lays out its memoryview structs differently from cyview.
    AbiMismatch {
        /// The Cython release.
        cython_version: String,
        /// The Python whose headers its C was read with.
        python_version: String,
        /// The releases cyview's layouts are those of, e.g. `0.29, 3.0 to 3.3`.
        supported: String,
        /// Every difference.
        mismatches: Vec<Mismatch>,
    },
    /// A module the build script needs has no `.pyx` in the fixtures folder.
    MissingModule {
        /// The fixtures folder.
        src_dir: PathBuf,
        /// The module name.
        name: String,
    },
    /// A requested struct is not defined in the generated C file.
    MissingStruct {
        /// The file.
        c_file: PathBuf,
        /// The struct.
        name: String,
    },
    /// bindgen failed.
    Bindgen {
        /// The file.
        c_file: PathBuf,
        /// bindgen's message.
        message: String,
    },
    /// A file-system operation failed.
    Io {
        /// What was being done, naming the path.
        context: String,
        /// The I/O error.
        source: io::Error,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::PythonNotFound { program, variable } => match variable {
                Some(var) => write!(
                    f,
                    "cyview-build: Python interpreter not found: {var}={} (set {var} to a Python 3 interpreter that has Cython)",
                    program.display()
                ),
                None => write!(
                    f,
                    "cyview-build: Python interpreter not found: `{}` is not on PATH (install CPython 3, or set {PYTHON_ENV} to a Python 3 interpreter that has Cython)",
                    program.display()
                ),
            },
            Error::PythonConflict {
                cyview,
                pyo3,
                detail,
            } => write!(
                f,
                "cyview-build: {PYTHON_ENV}={} and {PYO3_PYTHON_ENV}={} name different Python interpreters ({detail}): pyo3 would build for one and the Cython modules for the other; set only one of them, or both to the same interpreter",
                cyview.display(),
                pyo3.display()
            ),
            Error::PythonQuery { program, detail } => write!(
                f,
                "cyview-build: cannot query the Python interpreter {}: {detail}",
                program.display()
            ),
            Error::CythonMissing {
                python,
                version,
                detail,
            } => write!(
                f,
                "cyview-build: Cython is not installed for {0} (Python {version}; `import Cython` failed: {detail}): install it with `{0} -m pip install cython`, or set {PYTHON_ENV} to a Python that has Cython",
                python.display()
            ),
            Error::Cythonize { pyx, output } => {
                write!(f, "cyview-build: Cython failed on {}:\n{output}", pyx.display())
            }
            Error::Compiler { detail } => {
                write!(f, "cyview-build: no usable C compiler: {detail}")
            }
            Error::Compile {
                c_file,
                command,
                output,
            } => write!(
                f,
                "cyview-build: compiling {} failed: {command}\n{output}",
                c_file.display()
            ),
            Error::Clang { c_file, message } => match c_file {
                Some(c) => write!(f, "cyview-build: libclang on {}: {message}", c.display()),
                None => write!(f, "cyview-build: {message}"),
            },
            Error::AbiMismatch {
                cython_version,
                python_version,
                supported,
                mismatches,
            } => {
                write!(
                    f,
                    "cyview-build: Cython {cython_version} (Python {python_version}) lays out its memoryviews differently from cyview, which could not exchange them with its modules safely; use a Cython release cyview supports ({supported}) or a cyview release that supports Cython {cython_version}. The differences:"
                )?;
                for m in mismatches {
                    write!(f, "\n  {m}")?;
                }
                Ok(())
            }
            Error::MissingModule { src_dir, name } => write!(
                f,
                "cyview-build: {}/{name}.pyx does not exist",
                src_dir.display()
            ),
            Error::MissingStruct { c_file, name } => write!(
                f,
                "cyview-build: {} defines no struct `{name}` (does the module use a typed memoryview?)",
                c_file.display()
            ),
            Error::Bindgen { c_file, message } => {
                write!(f, "cyview-build: bindgen on {}: {message}", c_file.display())
            }
            Error::Io { context, source } => write!(f, "cyview-build: {context}: {source}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A closure that wraps an I/O error with "`<verb>` `<path>`".
pub(crate) fn io_err<'a>(
    verb: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> Error + 'a {
    move |source| Error::Io {
        context: format!("{verb} {}", path.display()),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_interpreter_is_one_line_naming_it() {
        let err = Python::query(Path::new("/nonexistent/cyview/python3")).unwrap_err();
        assert!(matches!(err, Error::PythonNotFound { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "cyview-build: Python interpreter not found: `/nonexistent/cyview/python3` is not on PATH (install CPython 3, or set CYVIEW_PYTHON to a Python 3 interpreter that has Cython)"
        );
    }

    #[test]
    fn missing_interpreter_from_env_names_the_variable() {
        let err = Error::PythonNotFound {
            program: PathBuf::from("/opt/py/bin/python"),
            variable: Some(PYTHON_ENV),
        };
        assert_eq!(
            err.to_string(),
            "cyview-build: Python interpreter not found: CYVIEW_PYTHON=/opt/py/bin/python (set CYVIEW_PYTHON to a Python 3 interpreter that has Cython)"
        );
    }

    #[test]
    fn missing_cython_says_how_to_get_it() {
        let err = Error::CythonMissing {
            python: PathBuf::from("/usr/bin/python3"),
            version: "3.11.2".to_string(),
            detail: "ModuleNotFoundError: No module named 'Cython'".to_string(),
        };
        assert_eq!(
            err.to_string(),
            "cyview-build: Cython is not installed for /usr/bin/python3 (Python 3.11.2; `import Cython` failed: ModuleNotFoundError: No module named 'Cython'): install it with `/usr/bin/python3 -m pip install cython`, or set CYVIEW_PYTHON to a Python that has Cython"
        );
        assert!(!err.to_string().contains('\n'));
    }

    #[test]
    fn render_sorts_structs_and_fields_and_shows_padding() {
        let field = |name: &str, offset, size| Field {
            name: name.to_string(),
            c_type: "int".to_string(),
            offset,
            size,
        };
        let layouts = Layouts {
            cython_version: "x".to_string(),
            python_version: "y".to_string(),
            source: "m.c".to_string(),
            clang_version: "z".to_string(),
            structs: vec![
                StructLayout {
                    name: "b".to_string(),
                    size: 16,
                    align: 8,
                    fields: vec![field("late", 8, 4), field("early", 0, 1)],
                },
                StructLayout {
                    name: "a".to_string(),
                    size: 4,
                    align: 4,
                    fields: vec![field("x", 0, 4)],
                },
            ],
        };
        assert_eq!(
            layouts.render(),
            "a  size 4  align 4\n    0    4  x  int\n\n\
             b  size 16  align 8\n    0    1  early  int\n    1    7  (padding)\n    8    4  late   int\n   12    4  (padding)\n"
        );
        assert_eq!(Layouts::from_json(&layouts.to_json()).unwrap(), layouts);
    }
}

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
