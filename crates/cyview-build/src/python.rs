//! Finding the Python interpreter (and the Cython in it) that modules are built for.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use crate::{env_var, Error};

/// The environment variable that selects the interpreter (else [`PYO3_PYTHON_ENV`], else
/// `python3` on `PATH`).
pub const PYTHON_ENV: &str = "CYVIEW_PYTHON";

/// pyo3's variable for the interpreter it builds for: [`Python::find`]'s fallback, which
/// must name the same interpreter as [`PYTHON_ENV`] when both are set.
pub const PYO3_PYTHON_ENV: &str = "PYO3_PYTHON";

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
    "cython_version": None, "cython_file": None, "cython_error": None, "cython_digest": None,
    "numpy_version": None, "numpy_include": None,
}
try:
    import Cython
    info["cython_version"] = Cython.__version__
    info["cython_file"] = Cython.__file__
    import hashlib, os
    root = os.path.dirname(Cython.__file__)
    digest = hashlib.sha256()
    for folder, subfolders, files in os.walk(root):
        subfolders.sort()
        for name in sorted(files):
            if name.endswith((".py", ".pyx", ".pxd", ".pxi", ".c", ".h", ".cpp")):
                path = os.path.join(folder, name)
                digest.update(os.path.relpath(path, root).encode() + b"\0")
                with open(path, "rb") as f:
                    digest.update(hashlib.sha256(f.read()).digest())
    info["cython_digest"] = digest.hexdigest()
except Exception as e:
    info["cython_error"] = "%s: %s" % (type(e).__name__, e)
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
    cython_error: Option<String>,
    cython_digest: Option<String>,
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
    cython_error: Option<String>,
    cython_digest: Option<String>,
    numpy_version: Option<String>,
    numpy_include: Option<PathBuf>,
}

impl Python {
    /// The interpreter named by `CYVIEW_PYTHON`, else by `PYO3_PYTHON`, else `python3` on
    /// `PATH`, queried once.
    ///
    /// Emits `cargo:rerun-if-env-changed` for both variables, and `cargo:rerun-if-changed`
    /// on Cython's `__init__.py` so that reinstalling Cython in the same environment reruns
    /// the build script. A relative path containing a `/` is taken relative to the current
    /// directory (for a build script: the package's manifest directory).
    ///
    /// When both variables are set, they must name the same interpreter (the same
    /// executable and site-packages), so that the modules are built for the Python that
    /// pyo3 links: otherwise [`Error::PythonConflict`].
    ///
    /// # Errors
    ///
    /// [`Error::PythonNotFound`] when the interpreter cannot be started,
    /// [`Error::PythonQuery`] when it runs but the query fails, [`Error::PythonConflict`]
    /// when the two variables name different interpreters.
    pub fn find() -> Result<Python, Error> {
        let python = Python::find_with(env_var(PYTHON_ENV), env_var(PYO3_PYTHON_ENV))?;
        if let Some(file) = &python.cython_file {
            println!("cargo:rerun-if-changed={}", file.display());
        }
        Ok(python)
    }

    /// [`Python::find`] with the values of `CYVIEW_PYTHON` and `PYO3_PYTHON` given.
    fn find_with(cyview: Option<OsString>, pyo3: Option<OsString>) -> Result<Python, Error> {
        let cyview = cyview.filter(|p| !p.is_empty());
        let pyo3 = pyo3.filter(|p| !p.is_empty());
        let python = match (&cyview, &pyo3) {
            (Some(p), _) => Python::query_from(p, Some(PYTHON_ENV))?,
            (None, Some(p)) => Python::query_from(p, Some(PYO3_PYTHON_ENV))?,
            (None, None) => Python::query_from(&OsString::from("python3"), None)?,
        };
        if let (Some(c), Some(p)) = (&cyview, &pyo3) {
            if c != p {
                let other = Python::query_from(p, Some(PYO3_PYTHON_ENV))?;
                if !python.same_interpreter(&other) {
                    return Err(Error::PythonConflict {
                        cyview: PathBuf::from(c),
                        pyo3: PathBuf::from(p),
                        detail: format!(
                            "Python {} with site-packages {}, Python {} with site-packages {}",
                            python.version,
                            python.site_packages.display(),
                            other.version,
                            other.site_packages.display()
                        ),
                    });
                }
            }
        }
        Ok(python)
    }

    /// [`Python::query`], with a failure to start the program attributed to `variable`.
    fn query_from(program: &OsString, variable: Option<&'static str>) -> Result<Python, Error> {
        Python::query(Path::new(program)).map_err(|e| match e {
            Error::PythonNotFound { program, .. } => Error::PythonNotFound { program, variable },
            other => other,
        })
    }

    /// Whether `other` is this interpreter: the same executable (symbolic links resolved)
    /// and the same site-packages (so not another virtual environment of it).
    fn same_interpreter(&self, other: &Python) -> bool {
        let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        canonical(&self.executable) == canonical(&other.executable)
            && canonical(&self.site_packages) == canonical(&other.site_packages)
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
                        variable: None,
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
            cython_error: query.cython_error,
            cython_digest: query.cython_digest,
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
            detail: self
                .cython_error
                .clone()
                .unwrap_or_else(|| "no Cython".to_string()),
        })
    }

    /// A SHA-256 (hex) of the installed Cython's sources (every `.py`, `.pyx`, `.pxd`,
    /// `.pxi`, `.c`, `.h` and `.cpp` file of the package, with its relative path), or `None`
    /// without Cython. Two builds of one version string (a PyPI wheel and a patched sdist,
    /// say) have different digests when their sources differ; the build caches key on it.
    pub fn cython_digest(&self) -> Option<&str> {
        self.cython_digest.as_deref()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh virtual environment of `python3` (no pip): another interpreter than
    /// `python3` itself, as far as the build is concerned (its own site-packages).
    fn scratch_venv(name: &str) -> PathBuf {
        let dir = std::env::temp_dir()
            .join(format!("cyview-build-unit-{}", std::process::id()))
            .join(name);
        let _ = std::fs::remove_dir_all(&dir);
        let out = Command::new("python3")
            .args(["-m", "venv", "--without-pip"])
            .arg(&dir)
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "python3 -m venv: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    }

    #[test]
    fn cyview_python_wins_and_pyo3_python_is_the_fallback() {
        let venv = scratch_venv("fallback");
        let python = venv.join("bin/python");
        let only_pyo3 = Python::find_with(None, Some(python.clone().into())).unwrap();
        assert_eq!(only_pyo3.site_packages(), venv_site_packages(&python));
        // The same interpreter through two of the venv's names is no conflict.
        let both = Python::find_with(
            Some(python.clone().into()),
            Some(venv.join("bin/python3").into()),
        )
        .unwrap();
        assert_eq!(both.site_packages(), only_pyo3.site_packages());
        let neither = Python::find_with(None, None).unwrap();
        assert_ne!(neither.site_packages(), only_pyo3.site_packages());
        // A venv without Cython: the error says why and how to install it there.
        let err = only_pyo3.require_cython().unwrap_err().to_string();
        let exe = only_pyo3.executable().display().to_string();
        assert!(
            err.contains("`import Cython` failed: ModuleNotFoundError: No module named 'Cython'"),
            "{err}"
        );
        assert!(
            err.contains(&format!("install it with `{exe} -m pip install cython`")),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&venv);
    }

    #[test]
    fn two_interpreters_are_refused_naming_both_variables() {
        let venv = scratch_venv("conflict");
        let python = venv.join("bin/python");
        let err =
            Python::find_with(Some(python.clone().into()), Some("python3".into())).unwrap_err();
        assert!(matches!(err, Error::PythonConflict { .. }), "{err:?}");
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "cyview-build: CYVIEW_PYTHON={} and PYO3_PYTHON=python3 name different Python interpreters (",
                python.display()
            )),
            "{text}"
        );
        assert!(
            text.ends_with("set only one of them, or both to the same interpreter"),
            "{text}"
        );
        let _ = std::fs::remove_dir_all(&venv);
    }

    #[test]
    fn a_missing_interpreter_names_its_variable() {
        let err = Python::find_with(None, Some("/nonexistent/cyview/python".into())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "cyview-build: Python interpreter not found: PYO3_PYTHON=/nonexistent/cyview/python (set PYO3_PYTHON to a Python 3 interpreter that has Cython)"
        );
    }

    /// The venv's site-packages as its own interpreter reports it.
    fn venv_site_packages(python: &Path) -> PathBuf {
        let out = Command::new(python)
            .args([
                "-c",
                "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            ])
            .output()
            .unwrap();
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    }
}
