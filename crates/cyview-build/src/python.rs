//! Finding the Python interpreter (and the Cython in it) the fixtures are built for.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use crate::{env_var, Error};

/// The environment variable that selects the interpreter (default: `python3` on `PATH`).
pub const PYTHON_ENV: &str = "CYVIEW_PYTHON";

/// The script [`Python::query`] runs: everything the build needs, in one subprocess, as one
/// line of JSON.
const QUERY_SCRIPT: &str = r#"
import json, sys, sysconfig
info = {
    "executable": sys.executable,
    "version": "%d.%d.%d" % sys.version_info[:3],
    "include_dir": sysconfig.get_config_var("INCLUDEPY") or sysconfig.get_paths()["include"],
    "ext_suffix": sysconfig.get_config_var("EXT_SUFFIX"),
    "site_packages": sysconfig.get_paths()["purelib"],
    "cython_version": None, "cython_file": None,
    "numpy_version": None, "numpy_include": None,
}
try:
    import Cython
    info["cython_version"] = Cython.__version__
    info["cython_file"] = Cython.__file__
except ImportError:
    pass
try:
    import numpy
    info["numpy_version"] = numpy.__version__
    info["numpy_include"] = numpy.get_include()
except ImportError:
    pass
print(json.dumps(info))
"#;

/// What [`QUERY_SCRIPT`] prints.
#[derive(Deserialize)]
struct Query {
    executable: String,
    version: String,
    include_dir: PathBuf,
    ext_suffix: Option<String>,
    site_packages: PathBuf,
    cython_version: Option<String>,
    cython_file: Option<PathBuf>,
    numpy_version: Option<String>,
    numpy_include: Option<PathBuf>,
}

/// A Python interpreter, queried once: its version, headers, extension-module suffix,
/// site-packages, and the Cython (and NumPy) installed in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Python {
    executable: PathBuf,
    version: String,
    include_dir: PathBuf,
    ext_suffix: String,
    site_packages: PathBuf,
    cython_version: Option<String>,
    cython_file: Option<PathBuf>,
    numpy_version: Option<String>,
    numpy_include: Option<PathBuf>,
}

impl Python {
    /// The interpreter named by `CYVIEW_PYTHON`, else `python3` on `PATH`, queried once.
    ///
    /// Emits `cargo:rerun-if-env-changed=CYVIEW_PYTHON`, and `cargo:rerun-if-changed` on
    /// Cython's `__init__.py` so that reinstalling Cython in the same environment reruns the
    /// build script. A relative `CYVIEW_PYTHON` containing a `/` is taken relative to the
    /// current directory (for a build script: the package's manifest directory).
    ///
    /// # Errors
    ///
    /// [`Error::PythonNotFound`] when the interpreter cannot be started,
    /// [`Error::PythonQuery`] when it runs but the query fails.
    pub fn find() -> Result<Python, Error> {
        let (program, from_env) = match env_var(PYTHON_ENV) {
            Some(p) if !p.is_empty() => (p, true),
            _ => (OsString::from("python3"), false),
        };
        let python = Python::query(Path::new(&program)).map_err(|e| match e {
            Error::PythonNotFound { program, .. } => Error::PythonNotFound { program, from_env },
            other => other,
        })?;
        if let Some(file) = &python.cython_file {
            println!("cargo:rerun-if-changed={}", file.display());
        }
        Ok(python)
    }

    /// Queries the interpreter at `program` (a path, or a name looked up on `PATH`).
    ///
    /// # Errors
    ///
    /// [`Error::PythonNotFound`] when it cannot be started, [`Error::PythonQuery`] when it
    /// runs but the query fails.
    pub fn query(program: &Path) -> Result<Python, Error> {
        let program = absolute_if_relative_path(program);
        let output = Command::new(&program)
            .arg("-c")
            .arg(QUERY_SCRIPT)
            .output()
            .map_err(|source| match source.kind() {
                io::ErrorKind::NotFound | io::ErrorKind::PermissionDenied => {
                    Error::PythonNotFound {
                        program: program.clone(),
                        from_env: false,
                    }
                }
                _ => Error::PythonQuery {
                    program: program.clone(),
                    detail: source.to_string(),
                },
            })?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(Error::PythonQuery {
                program,
                detail: format!(
                    "{} ({})",
                    last_line(&String::from_utf8_lossy(&output.stderr)),
                    output.status
                ),
            });
        }
        let query: Query = serde_json::from_str(stdout.trim()).map_err(|e| Error::PythonQuery {
            program: program.clone(),
            detail: format!("unexpected output {:?}: {e}", stdout.trim()),
        })?;
        let ext_suffix = query.ext_suffix.ok_or_else(|| Error::PythonQuery {
            program: program.clone(),
            detail: "sysconfig has no EXT_SUFFIX (not a CPython 3?)".to_string(),
        })?;
        Ok(Python {
            executable: if query.executable.is_empty() {
                program
            } else {
                PathBuf::from(query.executable)
            },
            version: query.version,
            include_dir: query.include_dir,
            ext_suffix,
            site_packages: query.site_packages,
            cython_version: query.cython_version,
            cython_file: query.cython_file,
            numpy_version: query.numpy_version,
            numpy_include: query.numpy_include,
        })
    }

    /// The interpreter (`sys.executable`).
    pub fn executable(&self) -> &Path {
        &self.executable
    }

    /// The Python version, `x.y.z`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The directory of `Python.h` (`sysconfig.get_config_var("INCLUDEPY")`).
    pub fn include_dir(&self) -> &Path {
        &self.include_dir
    }

    /// The file-name suffix of an importable extension module (`EXT_SUFFIX`), e.g.
    /// `.cpython-311-x86_64-linux-gnu.so`.
    pub fn ext_suffix(&self) -> &str {
        &self.ext_suffix
    }

    /// The interpreter's site-packages (`sysconfig.get_paths()["purelib"]`): for a venv,
    /// the venv's.
    pub fn site_packages(&self) -> &Path {
        &self.site_packages
    }

    /// The installed Cython's version (`Cython.__version__`), or `None` without Cython.
    pub fn cython_version(&self) -> Option<&str> {
        self.cython_version.as_deref()
    }

    /// The installed Cython's version.
    ///
    /// # Errors
    ///
    /// [`Error::CythonMissing`] when this interpreter cannot import Cython.
    pub fn require_cython(&self) -> Result<&str, Error> {
        self.cython_version().ok_or_else(|| Error::CythonMissing {
            python: self.executable.clone(),
            version: self.version.clone(),
        })
    }

    /// The installed NumPy's version, or `None` without NumPy.
    pub fn numpy_version(&self) -> Option<&str> {
        self.numpy_version.as_deref()
    }

    /// NumPy's C headers (`numpy.get_include()`), or `None` without NumPy. Fixtures are
    /// compiled with it on the include path so that they may `cimport numpy`.
    pub fn numpy_include(&self) -> Option<&Path> {
        self.numpy_include.as_deref()
    }

    /// The `-I` directories a Cython-generated C file of this interpreter needs.
    pub fn include_dirs(&self) -> Vec<&Path> {
        let mut dirs = vec![self.include_dir()];
        dirs.extend(self.numpy_include());
        dirs
    }
}

/// `p` made absolute against the current directory when it is a relative path with a
/// directory part (`.venvs/x/bin/python`); a bare name (`python3`) is left for `PATH`.
fn absolute_if_relative_path(p: &Path) -> PathBuf {
    if p.is_relative() && p.components().count() > 1 {
        if let Ok(cwd) = std::env::current_dir() {
            return cwd.join(p);
        }
    }
    p.to_path_buf()
}

/// The last non-empty line of `s` (a traceback's message).
pub(crate) fn last_line(s: &str) -> &str {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}
