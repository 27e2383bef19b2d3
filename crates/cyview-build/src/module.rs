//! Cythonizing and compiling one `.pyx` file (with extra C sources and libraries) into an
//! importable extension module, cached by everything that shapes the output. [`Fixtures`]
//! builds a folder of them with the same recipe.
//!
//! [`Fixtures`]: crate::Fixtures

use std::ffi::{OsStr, OsString};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::cache::{
    commit_entry, copy_if_changed, default_cache_dir, read, temp_sibling, Fnv, STAMP,
};
use crate::{io_err, Error, Python};

/// Bumped whenever the way this crate builds a module changes, so that old cache entries
/// are not reused.
const CACHE_SCHEMA: &str = "cyview-build fixtures v1";

/// Builds one `.pyx` file into an extension module that the given Python imports.
///
/// `python -m cython -3 X.pyx -o X.c` (run in the file's folder, so that the generated C
/// names `X.pyx` and not an absolute path), then the `cc` crate's C compiler with
/// `-shared -fPIC -O<level> -I<INCLUDEPY>` (and NumPy's headers when NumPy is installed),
/// the include folders, definitions and flags given here, on `X.c` and the extra sources,
/// linked with the libraries given here, into `<out_dir>/X{EXT_SUFFIX}`. Nothing links to
/// libpython: the interpreter that imports the module provides its symbols (Linux).
///
/// The result is cached in `<cache>/X-<key>/`, where the key hashes the Cython and Python
/// versions, `EXT_SUFFIX`, the compiler and every flag, the bytes of `X.pyx`, of the extra
/// sources and of the `.pxd`, `.pxi` and `.h` files directly in `X.pyx`'s folder and in
/// each include folder. An unchanged module is neither cythonized nor compiled again. The
/// cache is `<target>/cyview-build-cache` in a build script (one for every profile and
/// package), else `<out_dir>/.cyview-build-cache`.
///
/// ```no_run
/// // build.rs
/// let python = cyview_build::Python::find()?;
/// let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
/// let module = cyview_build::CythonModule::new(&python, "src/fast.pyx", &out)
///     .source("src/helpers.c")
///     .include_dir("include")
///     .define("USE_FAST_PATH", Some("1"))
///     .library("m")
///     .build()?;
/// println!("cargo:rustc-env=FAST_MODULE_DIR={}", out.display());
/// println!("cargo:warning=built {}", module.extension().display());
/// # Ok::<(), cyview_build::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct CythonModule<'a> {
    python: &'a Python,
    pyx: PathBuf,
    out_dir: PathBuf,
    options: Options,
}

/// How modules are compiled: what [`CythonModule`] and [`crate::Fixtures`] share.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    /// `-O<level>`; `None`: the builder's default.
    pub(crate) opt_level: Option<String>,
    pub(crate) include_dirs: Vec<PathBuf>,
    pub(crate) defines: Vec<(String, Option<String>)>,
    pub(crate) flags: Vec<String>,
    pub(crate) sources: Vec<PathBuf>,
    pub(crate) library_dirs: Vec<PathBuf>,
    pub(crate) libraries: Vec<String>,
    pub(crate) cache_dir: Option<PathBuf>,
    pub(crate) rerun_if_changed: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            opt_level: None,
            include_dirs: Vec::new(),
            defines: Vec::new(),
            flags: Vec::new(),
            sources: Vec::new(),
            library_dirs: Vec::new(),
            libraries: Vec::new(),
            cache_dir: None,
            rerun_if_changed: true,
        }
    }
}

/// One built extension module.
#[derive(Clone, Debug)]
pub struct BuiltModule {
    name: String,
    pyx: PathBuf,
    cache_entry: PathBuf,
    extension: PathBuf,
    from_cache: bool,
}

impl<'a> CythonModule<'a> {
    /// Builds `pyx` for `python` into `out_dir` (created if missing). A relative `pyx` is
    /// taken relative to the current directory (in a build script: the package's folder).
    /// The module's name is the file's stem, which must be a Python identifier.
    pub fn new(python: &'a Python, pyx: impl AsRef<Path>, out_dir: impl AsRef<Path>) -> Self {
        CythonModule {
            python,
            pyx: absolute(pyx.as_ref()),
            out_dir: out_dir.as_ref().to_path_buf(),
            options: Options::default(),
        }
    }

    /// The C optimisation level, `-O0` to `-O3`. Default: the build script's profile
    /// (Cargo's `OPT_LEVEL`; `s` and `z` give `-Os`), else 2.
    pub fn opt_level(mut self, level: u8) -> Self {
        self.options.opt_level = Some(level.to_string());
        self
    }

    /// Adds a C source file, compiled and linked into the module (relative: to the current
    /// directory). Its bytes are part of the cache key.
    pub fn source(mut self, path: impl AsRef<Path>) -> Self {
        self.options.sources.push(absolute(path.as_ref()));
        self
    }

    /// Adds a folder to the C compiler's include path (`-I`) and to Cython's (for
    /// `cimport`). The `.h`, `.pxd` and `.pxi` files directly in it are part of the cache
    /// key.
    pub fn include_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.options.include_dirs.push(absolute(dir.as_ref()));
        self
    }

    /// Defines a C preprocessor macro: `-DNAME` or `-DNAME=VALUE`.
    pub fn define(mut self, name: impl Into<String>, value: Option<&str>) -> Self {
        self.options
            .defines
            .push((name.into(), value.map(str::to_string)));
        self
    }

    /// Adds a C compiler flag (after the default ones).
    pub fn flag(mut self, flag: impl Into<String>) -> Self {
        self.options.flags.push(flag.into());
        self
    }

    /// Links a library: `-l<name>` (`"m"` for the C math library).
    pub fn library(mut self, name: impl Into<String>) -> Self {
        self.options.libraries.push(name.into());
        self
    }

    /// Adds a folder to the linker's search path (`-L`).
    pub fn library_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.options.library_dirs.push(absolute(dir.as_ref()));
        self
    }

    /// Uses `dir` as the cache instead of the default.
    pub fn cache_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.options.cache_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Whether to print `cargo:rerun-if-changed` for the sources (default: yes; turn off
    /// outside build scripts).
    pub fn rerun_if_changed(mut self, yes: bool) -> Self {
        self.options.rerun_if_changed = yes;
        self
    }

    /// Cythonizes and compiles the module (or takes it from the cache) and copies it into
    /// the output folder.
    ///
    /// # Errors
    ///
    /// [`Error::CythonMissing`] when the interpreter has no Cython, [`Error::Cythonize`] or
    /// [`Error::Compile`] with the tool's output when the module does not build,
    /// [`Error::Compiler`] without a usable C compiler, [`Error::Io`] for file-system
    /// failures (a missing source among them).
    pub fn build(&self) -> Result<BuiltModule, Error> {
        let folder = self.pyx.parent().unwrap_or(Path::new("."));
        let recipe = Recipe::new(
            self.python,
            &self.options,
            &default_opt_level(),
            folder,
            &self.out_dir,
        )?;
        recipe.build(&self.pyx, &self.out_dir)
    }
}

/// `OPT_LEVEL` as Cargo gives it to build scripts (`s` and `z` as `s`), else `2`.
fn default_opt_level() -> String {
    match std::env::var("OPT_LEVEL").as_deref() {
        Ok(level @ ("0" | "1" | "2" | "3")) => level.to_string(),
        Ok("s" | "z") => "s".to_string(),
        _ => "2".to_string(),
    }
}

/// `p` made absolute against the current directory.
pub(crate) fn absolute(p: &Path) -> PathBuf {
    if p.is_relative() {
        if let Ok(cwd) = std::env::current_dir() {
            return cwd.join(p);
        }
    }
    p.to_path_buf()
}

/// Everything but the module's own source, resolved once: the compiler command, the flags,
/// the part of the cache key all modules of a build share.
pub(crate) struct Recipe<'a> {
    python: &'a Python,
    cython_args: Vec<OsString>,
    compiler: Command,
    /// Before `-o`.
    flags: Vec<String>,
    /// After the C files.
    link: Vec<OsString>,
    sources: Vec<PathBuf>,
    common: Fnv,
    cache_dir: PathBuf,
    rerun_if_changed: bool,
}

impl<'a> Recipe<'a> {
    /// The recipe for modules in `folder` (whose `.pxd`, `.pxi` and `.h` files are part of
    /// the key) built into `out_dir`, at `options.opt_level` or else `default_opt`.
    pub(crate) fn new(
        python: &'a Python,
        options: &Options,
        default_opt: &str,
        folder: &Path,
        out_dir: &Path,
    ) -> Result<Self, Error> {
        let cython_version = python.require_cython()?.to_string();
        let opt = options.opt_level.as_deref().unwrap_or(default_opt);
        let compiler = c_compiler(opt)?;
        let mut flags: Vec<String> = vec!["-shared".into(), "-fPIC".into(), format!("-O{opt}")];
        for dir in python.include_dirs() {
            flags.push(format!("-I{}", dir.display()));
        }
        for dir in &options.include_dirs {
            flags.push(format!("-I{}", dir.display()));
        }
        for (name, value) in &options.defines {
            flags.push(match value {
                Some(v) => format!("-D{name}={v}"),
                None => format!("-D{name}"),
            });
        }
        flags.extend(options.flags.iter().cloned());
        let mut cython_args = Vec::new();
        for dir in &options.include_dirs {
            cython_args.push(OsString::from("-I"));
            cython_args.push(dir.as_os_str().to_os_string());
        }
        let mut link: Vec<OsString> = Vec::new();
        for dir in &options.library_dirs {
            let mut arg = OsString::from("-L");
            arg.push(dir);
            link.push(arg);
        }
        for lib in &options.libraries {
            link.push(format!("-l{lib}").into());
        }

        // The part of every module's key that does not depend on the module. (A build
        // without include folders, sources and libraries has the key of the first release
        // of this cache.)
        let mut common = Fnv::new();
        common.part("schema", CACHE_SCHEMA.as_bytes());
        common.part("cyview-build", env!("CARGO_PKG_VERSION").as_bytes());
        common.part("cython", cython_version.as_bytes());
        common.part(
            "cython sources",
            python.cython_digest().unwrap_or("").as_bytes(),
        );
        common.part("python", python.version().as_bytes());
        common.part("ext_suffix", python.ext_suffix().as_bytes());
        common.part("numpy", python.numpy_version().unwrap_or("").as_bytes());
        common.part("cc", compiler.get_program().as_encoded_bytes());
        for arg in compiler.get_args() {
            common.part("cc arg", arg.as_encoded_bytes());
        }
        for flag in &flags {
            common.part("flag", flag.as_bytes());
        }
        let mut dep_dirs = vec![folder];
        dep_dirs.extend(options.include_dirs.iter().map(PathBuf::as_path));
        for dir in dep_dirs {
            for dep in dependencies(dir)? {
                if options.rerun_if_changed {
                    println!("cargo:rerun-if-changed={}", dep.display());
                }
                common.part(
                    "dep name",
                    dep.file_name().unwrap_or_default().as_encoded_bytes(),
                );
                common.part("dep", &read(&dep)?);
            }
        }
        for source in &options.sources {
            if options.rerun_if_changed {
                println!("cargo:rerun-if-changed={}", source.display());
            }
            common.part(
                "source name",
                source.file_name().unwrap_or_default().as_encoded_bytes(),
            );
            common.part("source", &read(source)?);
        }
        for arg in &link {
            common.part("link", arg.as_encoded_bytes());
        }

        let cache_dir = match &options.cache_dir {
            Some(dir) => dir.clone(),
            None => default_cache_dir(
                out_dir,
                std::env::var_os("OUT_DIR").map(PathBuf::from).as_deref(),
            ),
        };
        fs::create_dir_all(&cache_dir).map_err(io_err("create", &cache_dir))?;
        fs::create_dir_all(out_dir).map_err(io_err("create", out_dir))?;
        Ok(Recipe {
            python,
            cython_args,
            compiler,
            flags,
            link,
            sources: options.sources.clone(),
            common,
            cache_dir,
            rerun_if_changed: options.rerun_if_changed,
        })
    }

    /// Builds (or takes from the cache) the module of `pyx` and copies it into `out_dir`.
    pub(crate) fn build(&self, pyx: &Path, out_dir: &Path) -> Result<BuiltModule, Error> {
        let name = pyx
            .file_stem()
            .and_then(OsStr::to_str)
            .filter(|n| is_identifier(n))
            .ok_or_else(|| Error::Cythonize {
                pyx: pyx.to_path_buf(),
                output: "the file name is not a Python identifier".to_string(),
            })?
            .to_string();
        if self.rerun_if_changed {
            println!("cargo:rerun-if-changed={}", pyx.display());
        }
        let mut key = self.common.clone();
        key.part("module", name.as_bytes());
        key.part("pyx", &read(pyx)?);
        let entry = self.cache_dir.join(format!("{name}-{:016x}", key.finish()));
        let so_name = format!("{name}{}", self.python.ext_suffix());
        let from_cache = entry.join(STAMP).is_file();
        if !from_cache {
            self.build_entry(pyx, &name, &so_name, &entry)?;
        }
        let extension = out_dir.join(&so_name);
        copy_if_changed(&entry.join(&so_name), &extension)?;
        Ok(BuiltModule {
            name,
            pyx: pyx.to_path_buf(),
            cache_entry: entry,
            extension,
            from_cache,
        })
    }

    /// Cythonizes and compiles into a temporary folder, then renames it to `entry`.
    fn build_entry(
        &self,
        pyx: &Path,
        name: &str,
        so_name: &str,
        entry: &Path,
    ) -> Result<(), Error> {
        let tmp = temp_sibling(entry);
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp).map_err(io_err("create", &tmp))?;
        let c_file = tmp.join(format!("{name}.c"));

        let start = Instant::now();
        if let Err(e) = cythonize(self.python, pyx, &c_file, &self.cython_args) {
            let _ = fs::remove_dir_all(&tmp);
            return Err(e);
        }
        let cythonized = start.elapsed();

        let start = Instant::now();
        let mut cc = clone_command(&self.compiler);
        cc.args(&self.flags)
            .arg("-o")
            .arg(tmp.join(so_name))
            .arg(&c_file)
            .args(&self.sources)
            .args(&self.link);
        let command = format!("{cc:?}");
        let out = cc
            .output()
            .map_err(io_err("run", Path::new(self.compiler.get_program())))?;
        if !out.status.success() {
            let _ = fs::remove_dir_all(&tmp);
            return Err(Error::Compile {
                c_file: entry.join(format!("{name}.c")),
                command,
                output: tool_output(&out),
            });
        }
        println!(
            "cyview-build: {name}: cythonize {:.1}s, compile {:.1}s",
            cythonized.as_secs_f64(),
            start.elapsed().as_secs_f64()
        );
        fs::write(tmp.join(STAMP), command).map_err(io_err("write", &tmp.join(STAMP)))?;
        commit_entry(&tmp, entry)
    }
}

/// `python -m cython -3 [args] X.pyx -o c_file`, run in `pyx`'s folder (so that the C
/// names `X.pyx`, not an absolute path).
pub(crate) fn cythonize(
    python: &Python,
    pyx: &Path,
    c_file: &Path,
    args: &[OsString],
) -> Result<(), Error> {
    let out = Command::new(python.executable())
        .args(["-m", "cython", "-3"])
        .args(args)
        .arg(pyx.file_name().unwrap_or_default())
        .arg("-o")
        .arg(c_file)
        .current_dir(pyx.parent().unwrap_or(Path::new(".")))
        .output()
        .map_err(io_err("run", python.executable()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Error::Cythonize {
            pyx: pyx.to_path_buf(),
            output: tool_output(&out),
        })
    }
}

/// The `.pxd`, `.pxi` and `.h` files directly in `dir`, sorted.
pub(crate) fn dependencies(dir: &Path) -> Result<Vec<PathBuf>, Error> {
    let mut deps = Vec::new();
    let entries = fs::read_dir(dir).map_err(io_err("read", dir))?;
    for entry in entries {
        let path = entry.map_err(io_err("read", dir))?.path();
        if path.is_file()
            && matches!(
                path.extension().and_then(OsStr::to_str),
                Some("pxd" | "pxi" | "h")
            )
        {
            deps.push(path);
        }
    }
    deps.sort();
    Ok(deps)
}

impl BuiltModule {
    /// The module name (the `.pyx` file stem).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The source file.
    pub fn pyx(&self) -> &Path {
        &self.pyx
    }

    /// The Cython-generated C file (in the cache).
    pub fn c_file(&self) -> PathBuf {
        self.cache_entry.join(format!("{}.c", self.name))
    }

    /// The module's cache folder.
    pub fn cache_entry(&self) -> &Path {
        &self.cache_entry
    }

    /// The importable extension module in the output folder (put that folder on
    /// `sys.path`).
    pub fn extension(&self) -> &Path {
        &self.extension
    }

    /// Whether the module came from the cache (neither cythonized nor compiled).
    pub fn from_cache(&self) -> bool {
        self.from_cache
    }
}

/// The `cc` crate's C compiler for the target at optimisation level `opt` (`0`..`3`, `s`),
/// as a command with its own flags. Outside a build script (no `TARGET`/`HOST`), for the
/// triple this crate was compiled for.
pub(crate) fn c_compiler(opt: &str) -> Result<Command, Error> {
    let mut build = cc::Build::new();
    for var in ["TARGET", "HOST"] {
        if std::env::var_os(var).is_none() {
            let triple = env!("CYVIEW_BUILD_COMPILED_FOR");
            match var {
                "TARGET" => build.target(triple),
                _ => build.host(triple),
            };
        }
    }
    let compiler = build
        .opt_level_str(opt)
        .debug(false)
        .pic(true)
        .warnings(false)
        .cargo_warnings(false)
        .try_get_compiler()
        .map_err(|e| Error::Compiler {
            detail: e.to_string(),
        })?;
    Ok(compiler.to_command())
}

fn clone_command(c: &Command) -> Command {
    let mut new = Command::new(c.get_program());
    new.args(c.get_args());
    for (k, v) in c.get_envs() {
        match v {
            Some(v) => new.env(k, v),
            None => new.env_remove(k),
        };
    }
    new
}

/// A tool's stderr and stdout, then its exit status.
pub(crate) fn tool_output(out: &std::process::Output) -> String {
    let mut s = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !stdout.trim().is_empty() {
        s.push_str(&stdout);
    }
    format!("{}\n({})", s.trim_end(), out.status)
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_names_must_be_identifiers() {
        assert!(is_identifier("layout"));
        assert!(is_identifier("_x1"));
        assert!(!is_identifier("1x"));
        assert!(!is_identifier("my-module"));
        assert!(!is_identifier(""));
    }
}
