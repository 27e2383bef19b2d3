//! Cythonizing and compiling a folder of `.pyx` files into importable extension modules,
//! each as [`CythonModule`](crate::CythonModule) builds one, in parallel.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::cache::default_cache_dir;
use crate::module::{absolute, Options, Recipe};
use crate::{io_err, BuiltModule, Error, Python};

/// Builds every top-level `*.pyx` of a folder into an extension module.
///
/// Each module `X.pyx` is built as [`CythonModule`](crate::CythonModule) builds one (cythonized in the folder,
/// compiled with `-shared -fPIC -O1 -I<INCLUDEPY>` and NumPy's headers when NumPy is
/// installed, cached by the same key) into `X{EXT_SUFFIX}` in the output folder. The
/// optimisation level is 1 unless [`Fixtures::opt_level`] says otherwise (not Cargo's
/// profile: test fixtures build fast and once for every profile). The top-level `.pxd`,
/// `.pxi` and `.h` files of the folder are part of every module's cache key. An unchanged
/// module is neither cythonized nor compiled again, nor are its layouts extracted again
/// ([`BuiltModule::extract_layouts`]). Modules are built in parallel (`NUM_JOBS`).
///
/// ```no_run
/// // build.rs
/// let python = cyview_build::Python::find()?;
/// let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
/// let built = cyview_build::Fixtures::new(&python, "cython_fixtures", out.join("fixtures"))
///     .build()?;
/// for module in built.modules() {
///     println!("{} -> {}", module.name(), module.extension().display());
/// }
/// # Ok::<(), cyview_build::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Fixtures<'a> {
    python: &'a Python,
    src_dir: PathBuf,
    out_dir: PathBuf,
    options: Options,
}

/// The modules a [`Fixtures`] build produced.
#[derive(Clone, Debug)]
pub struct BuiltFixtures {
    src_dir: PathBuf,
    out_dir: PathBuf,
    modules: Vec<BuiltModule>,
}

impl<'a> Fixtures<'a> {
    /// Builds the top-level `*.pyx` of `src_dir` into `out_dir` (created if missing) for
    /// `python`. The cache is `<target>/cyview-build-cache` when `OUT_DIR` is inside a Cargo
    /// target directory, else `<out_dir>/.cyview-build-cache`.
    pub fn new(python: &'a Python, src_dir: impl AsRef<Path>, out_dir: impl AsRef<Path>) -> Self {
        Fixtures {
            python,
            src_dir: absolute(src_dir.as_ref()),
            out_dir: out_dir.as_ref().to_path_buf(),
            options: Options::default(),
        }
    }

    /// Uses `dir` as the cache instead of the default.
    pub fn cache_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.options.cache_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// The C optimisation level, `-O0` to `-O3` (default 1).
    pub fn opt_level(mut self, level: u8) -> Self {
        self.options.opt_level = Some(level.to_string());
        self
    }

    /// Adds a C compiler flag (after the default ones; part of the cache key).
    pub fn flag(mut self, flag: impl Into<String>) -> Self {
        self.options.flags.push(flag.into());
        self
    }

    /// Whether to print `cargo:rerun-if-changed` for the folder and each source (default:
    /// yes; turn off outside build scripts).
    pub fn rerun_if_changed(mut self, yes: bool) -> Self {
        self.options.rerun_if_changed = yes;
        self
    }

    /// The cache directory this build uses.
    pub fn resolved_cache_dir(&self) -> PathBuf {
        match &self.options.cache_dir {
            Some(dir) => dir.clone(),
            None => default_cache_dir(
                &self.out_dir,
                std::env::var_os("OUT_DIR").map(PathBuf::from).as_deref(),
            ),
        }
    }

    /// Cythonizes and compiles every top-level `*.pyx` (cached), copies the modules into
    /// the output folder and removes modules there that no longer have a source.
    ///
    /// # Errors
    ///
    /// [`Error::CythonMissing`] when the interpreter has no Cython, [`Error::Cythonize`] or
    /// [`Error::Compile`] with the tool's output when a module does not build,
    /// [`Error::Io`] for file-system failures.
    pub fn build(&self) -> Result<BuiltFixtures, Error> {
        self.python.require_cython()?;
        if self.options.rerun_if_changed {
            // A directory is scanned recursively by Cargo: this catches new .pyx files.
            println!("cargo:rerun-if-changed={}", self.src_dir.display());
        }
        let pyx = self.pyx_files()?;
        let options = Options {
            cache_dir: Some(self.resolved_cache_dir()),
            ..self.options.clone()
        };
        let recipe = Recipe::new(self.python, &options, "1", &self.src_dir, &self.out_dir)?;

        let jobs = std::env::var("NUM_JOBS")
            .ok()
            .and_then(|n| n.parse::<usize>().ok())
            .or_else(|| std::thread::available_parallelism().map(|n| n.get()).ok())
            .unwrap_or(1)
            .clamp(1, pyx.len().max(1));
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<Result<BuiltModule, Error>>>> =
            Mutex::new(pyx.iter().map(|_| None).collect());
        std::thread::scope(|scope| {
            for _ in 0..jobs {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(file) = pyx.get(i) else { break };
                    let result = recipe.build(file, &self.out_dir);
                    if let Ok(mut results) = results.lock() {
                        results[i] = Some(result);
                    }
                });
            }
        });
        let results = results.into_inner().unwrap_or_else(|e| e.into_inner());
        let mut modules = Vec::with_capacity(results.len());
        for result in results {
            modules.push(result.ok_or_else(|| Error::Io {
                context: "a fixture build thread stopped early".to_string(),
                source: std::io::Error::other("thread panicked"),
            })??);
        }
        self.remove_stale(&modules)?;
        Ok(BuiltFixtures {
            src_dir: self.src_dir.clone(),
            out_dir: self.out_dir.clone(),
            modules,
        })
    }

    /// The sorted top-level `.pyx` files.
    fn pyx_files(&self) -> Result<Vec<PathBuf>, Error> {
        let mut pyx = Vec::new();
        let entries = fs::read_dir(&self.src_dir).map_err(io_err("read", &self.src_dir))?;
        for entry in entries {
            let path = entry.map_err(io_err("read", &self.src_dir))?.path();
            if path.is_file() && path.extension().and_then(OsStr::to_str) == Some("pyx") {
                pyx.push(path);
            }
        }
        pyx.sort();
        Ok(pyx)
    }

    /// Removes extension modules of this suffix from the output folder whose source is gone.
    fn remove_stale(&self, modules: &[BuiltModule]) -> Result<(), Error> {
        let suffix = self.python.ext_suffix();
        let entries = fs::read_dir(&self.out_dir).map_err(io_err("read", &self.out_dir))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(file) = path.file_name().and_then(OsStr::to_str) else {
                continue;
            };
            if file.ends_with(suffix) && !modules.iter().any(|m| m.extension() == path) {
                fs::remove_file(&path).map_err(io_err("remove", &path))?;
            }
        }
        Ok(())
    }
}

impl BuiltFixtures {
    /// The folder holding the extension modules (put it on `sys.path`).
    pub fn out_dir(&self) -> &Path {
        &self.out_dir
    }

    /// The modules, sorted by name.
    pub fn modules(&self) -> &[BuiltModule] {
        &self.modules
    }

    /// The module called `name`.
    pub fn module(&self, name: &str) -> Option<&BuiltModule> {
        self.modules.iter().find(|m| m.name() == name)
    }

    /// The module called `name`, which the caller cannot do without.
    ///
    /// # Errors
    ///
    /// [`Error::MissingModule`] when the fixtures folder has no `<name>.pyx`.
    pub fn require(&self, name: &str) -> Result<&BuiltModule, Error> {
        self.module(name).ok_or_else(|| Error::MissingModule {
            src_dir: self.src_dir.clone(),
            name: name.to_string(),
        })
    }
}
