//! Cythonizing and compiling a folder of `.pyx` files into importable extension modules,
//! with a cache keyed by everything that shapes the output.

use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use crate::{io_err, Error, Python};

/// Bumped whenever the way this crate builds a module changes, so that old cache entries
/// are not reused.
const CACHE_SCHEMA: &str = "cyview-build fixtures v1";

/// The stamp file that marks a complete cache entry.
const STAMP: &str = "complete";

/// Builds every top-level `*.pyx` of a folder into an extension module.
///
/// Per module `X.pyx`: `python -m cython -3 X.pyx -o X.c` (run in the folder, so the
/// generated C names `X.pyx` and not an absolute path), then the `cc` crate's C compiler
/// with `-shared -fPIC -O1 -I<INCLUDEPY>` (and NumPy's headers when NumPy is installed) into
/// `X{EXT_SUFFIX}`, which is copied into the output folder. Nothing links to libpython: the
/// interpreter that imports the module provides its symbols (Linux).
///
/// Each module is cached in `<cache>/<X>-<key>/`, where the key hashes the Cython and
/// Python versions, `EXT_SUFFIX`, the headers, the compiler and its flags, and the bytes of
/// `X.pyx` and of every top-level `.pxd`/`.pxi` of the folder. An unchanged module is
/// neither cythonized nor compiled again, nor are its layouts extracted again
/// ([`Module::extract_layouts`]). Modules are built in parallel (`NUM_JOBS`).
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
    cache_dir: Option<PathBuf>,
    flags: Vec<String>,
    rerun_if_changed: bool,
}

/// The modules a [`Fixtures`] build produced.
#[derive(Clone, Debug)]
pub struct BuiltFixtures {
    src_dir: PathBuf,
    out_dir: PathBuf,
    modules: Vec<Module>,
}

/// One built extension module.
#[derive(Clone, Debug)]
pub struct Module {
    name: String,
    pyx: PathBuf,
    cache_entry: PathBuf,
    extension: PathBuf,
    from_cache: bool,
}

impl<'a> Fixtures<'a> {
    /// Builds the top-level `*.pyx` of `src_dir` into `out_dir` (created if missing) for
    /// `python`. The cache is `<target>/cyview-build-cache` when `OUT_DIR` is inside a Cargo
    /// target directory, else `<out_dir>/.cyview-build-cache`.
    pub fn new(python: &'a Python, src_dir: impl AsRef<Path>, out_dir: impl AsRef<Path>) -> Self {
        let src_dir = src_dir.as_ref();
        let src_dir = if src_dir.is_relative() {
            std::env::current_dir()
                .map(|cwd| cwd.join(src_dir))
                .unwrap_or_else(|_| src_dir.to_path_buf())
        } else {
            src_dir.to_path_buf()
        };
        Fixtures {
            python,
            src_dir,
            out_dir: out_dir.as_ref().to_path_buf(),
            cache_dir: None,
            flags: Vec::new(),
            rerun_if_changed: true,
        }
    }

    /// Uses `dir` as the cache instead of the default.
    pub fn cache_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cache_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Adds a C compiler flag (after the default ones; part of the cache key).
    pub fn flag(mut self, flag: impl Into<String>) -> Self {
        self.flags.push(flag.into());
        self
    }

    /// Whether to print `cargo:rerun-if-changed` for the folder and each source (default:
    /// yes; turn off outside build scripts).
    pub fn rerun_if_changed(mut self, yes: bool) -> Self {
        self.rerun_if_changed = yes;
        self
    }

    /// The cache directory this build uses.
    pub fn resolved_cache_dir(&self) -> PathBuf {
        match &self.cache_dir {
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
        let cython_version = self.python.require_cython()?.to_string();
        if self.rerun_if_changed {
            // A directory is scanned recursively by Cargo: this catches new .pyx files.
            println!("cargo:rerun-if-changed={}", self.src_dir.display());
        }
        let sources = self.sources()?;
        let compiler = c_compiler()?;
        let mut flags: Vec<String> = ["-shared", "-fPIC", "-O1"].map(String::from).to_vec();
        for dir in self.python.include_dirs() {
            flags.push(format!("-I{}", dir.display()));
        }
        flags.extend(self.flags.iter().cloned());

        // The part of every module's key that does not depend on the module.
        let mut common = Fnv::new();
        common.part("schema", CACHE_SCHEMA.as_bytes());
        common.part("cyview-build", env!("CARGO_PKG_VERSION").as_bytes());
        common.part("cython", cython_version.as_bytes());
        common.part("python", self.python.version().as_bytes());
        common.part("ext_suffix", self.python.ext_suffix().as_bytes());
        common.part(
            "numpy",
            self.python.numpy_version().unwrap_or("").as_bytes(),
        );
        common.part("cc", compiler.get_program().as_encoded_bytes());
        for arg in compiler.get_args() {
            common.part("cc arg", arg.as_encoded_bytes());
        }
        for flag in &flags {
            common.part("flag", flag.as_bytes());
        }
        for dep in &sources.shared {
            if self.rerun_if_changed {
                println!("cargo:rerun-if-changed={}", dep.display());
            }
            common.part(
                "dep name",
                dep.file_name().unwrap_or_default().as_encoded_bytes(),
            );
            common.part("dep", &read(dep)?);
        }

        let cache_dir = self.resolved_cache_dir();
        fs::create_dir_all(&cache_dir).map_err(io_err("create", &cache_dir))?;
        fs::create_dir_all(&self.out_dir).map_err(io_err("create", &self.out_dir))?;

        let jobs = std::env::var("NUM_JOBS")
            .ok()
            .and_then(|n| n.parse::<usize>().ok())
            .or_else(|| std::thread::available_parallelism().map(|n| n.get()).ok())
            .unwrap_or(1)
            .clamp(1, sources.pyx.len().max(1));
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<Result<Module, Error>>>> =
            Mutex::new(sources.pyx.iter().map(|_| None).collect());
        std::thread::scope(|scope| {
            for _ in 0..jobs {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(pyx) = sources.pyx.get(i) else { break };
                    let result = self.build_one(pyx, &common, &compiler, &flags, &cache_dir);
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

    /// The sorted top-level `.pyx` files and the `.pxd`/`.pxi` files they may depend on.
    fn sources(&self) -> Result<Sources, Error> {
        let mut sources = Sources::default();
        let entries = fs::read_dir(&self.src_dir).map_err(io_err("read", &self.src_dir))?;
        for entry in entries {
            let path = entry.map_err(io_err("read", &self.src_dir))?.path();
            if !path.is_file() {
                continue;
            }
            match path.extension().and_then(OsStr::to_str) {
                Some("pyx") => sources.pyx.push(path),
                Some("pxd" | "pxi") => sources.shared.push(path),
                _ => {}
            }
        }
        sources.pyx.sort();
        sources.shared.sort();
        Ok(sources)
    }

    /// Builds (or takes from the cache) one module and copies it into the output folder.
    fn build_one(
        &self,
        pyx: &Path,
        common: &Fnv,
        compiler: &Command,
        flags: &[String],
        cache_dir: &Path,
    ) -> Result<Module, Error> {
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
        let mut key = common.clone();
        key.part("module", name.as_bytes());
        key.part("pyx", &read(pyx)?);
        let entry = cache_dir.join(format!("{name}-{:016x}", key.finish()));
        let so_name = format!("{name}{}", self.python.ext_suffix());
        let from_cache = entry.join(STAMP).is_file();
        if !from_cache {
            self.build_entry(pyx, &name, &so_name, compiler, flags, &entry)?;
        }
        let extension = self.out_dir.join(&so_name);
        copy_if_changed(&entry.join(&so_name), &extension)?;
        Ok(Module {
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
        compiler: &Command,
        flags: &[String],
        entry: &Path,
    ) -> Result<(), Error> {
        let tmp = temp_sibling(entry);
        let _ = fs::remove_dir_all(&tmp);
        fs::create_dir_all(&tmp).map_err(io_err("create", &tmp))?;
        let c_file = tmp.join(format!("{name}.c"));

        let start = Instant::now();
        let mut cython = Command::new(self.python.executable());
        cython
            .args(["-m", "cython", "-3"])
            .arg(pyx.file_name().unwrap_or_default())
            .arg("-o")
            .arg(&c_file)
            .current_dir(pyx.parent().unwrap_or(Path::new(".")));
        let out = cython
            .output()
            .map_err(io_err("run", self.python.executable()))?;
        if !out.status.success() {
            let _ = fs::remove_dir_all(&tmp);
            return Err(Error::Cythonize {
                pyx: pyx.to_path_buf(),
                output: tool_output(&out),
            });
        }
        let cythonized = start.elapsed();

        let start = Instant::now();
        let mut cc = clone_command(compiler);
        cc.args(flags).arg("-o").arg(tmp.join(so_name)).arg(&c_file);
        let command = format!("{cc:?}");
        let out = cc
            .output()
            .map_err(io_err("run", Path::new(compiler.get_program())))?;
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

    /// Removes extension modules of this suffix from the output folder whose source is gone.
    fn remove_stale(&self, modules: &[Module]) -> Result<(), Error> {
        let suffix = self.python.ext_suffix();
        let entries = fs::read_dir(&self.out_dir).map_err(io_err("read", &self.out_dir))?;
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(file) = path.file_name().and_then(OsStr::to_str) else {
                continue;
            };
            if file.ends_with(suffix) && !modules.iter().any(|m| m.extension == path) {
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
    pub fn modules(&self) -> &[Module] {
        &self.modules
    }

    /// The module called `name`.
    pub fn module(&self, name: &str) -> Option<&Module> {
        self.modules.iter().find(|m| m.name == name)
    }

    /// The module called `name`, which the caller cannot do without.
    ///
    /// # Errors
    ///
    /// [`Error::MissingModule`] when the fixtures folder has no `<name>.pyx`.
    pub fn require(&self, name: &str) -> Result<&Module, Error> {
        self.module(name).ok_or_else(|| Error::MissingModule {
            src_dir: self.src_dir.clone(),
            name: name.to_string(),
        })
    }
}

impl Module {
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

    /// The importable extension module in the output folder.
    pub fn extension(&self) -> &Path {
        &self.extension
    }

    /// Whether the module came from the cache (neither cythonized nor compiled).
    pub fn from_cache(&self) -> bool {
        self.from_cache
    }
}

#[derive(Default)]
struct Sources {
    pyx: Vec<PathBuf>,
    shared: Vec<PathBuf>,
}

/// `<target>/cyview-build-cache` when the build script's `OUT_DIR` (else `out_dir`) is
/// `<target>/<profile>/build/<pkg>/out` (one cache for every profile and package), else a
/// folder inside `out_dir`.
fn default_cache_dir(out_dir: &Path, build_out: Option<&Path>) -> PathBuf {
    let base = build_out.unwrap_or(out_dir);
    let mut ancestors = base.ancestors();
    let (_out, _pkg, build) = (ancestors.next(), ancestors.next(), ancestors.next());
    match (build.and_then(Path::file_name), ancestors.nth(1)) {
        (Some(b), Some(target)) if b == "build" => target.join("cyview-build-cache"),
        _ => out_dir.join(".cyview-build-cache"),
    }
}

/// The `cc` crate's C compiler for the target, as a command with its own flags. Outside a
/// build script (no `TARGET`/`HOST`), for the triple this crate was compiled for.
pub(crate) fn c_compiler() -> Result<Command, Error> {
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
        .opt_level(1)
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

/// A unique temporary sibling of `entry`.
fn temp_sibling(entry: &Path) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let mut name = entry.file_name().unwrap_or_default().to_os_string();
    name.push(format!(
        ".tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    entry.with_file_name(name)
}

/// Renames a completed temporary folder into place; when another build got there first,
/// keeps theirs (same key, same content).
pub(crate) fn commit_entry(tmp: &Path, entry: &Path) -> Result<(), Error> {
    match fs::rename(tmp, entry) {
        Ok(()) => Ok(()),
        Err(_) if entry.join(STAMP).is_file() => {
            let _ = fs::remove_dir_all(tmp);
            Ok(())
        }
        Err(e) => {
            // An incomplete entry (no stamp) from an interrupted build: replace it.
            let _ = fs::remove_dir_all(entry);
            fs::rename(tmp, entry).map_err(|_| io_err("rename", tmp)(e))
        }
    }
}

/// Copies `from` to `to` unless `to` already has the same bytes. Writes a temporary file
/// and renames it, so that a process that has the old module loaded keeps a valid mapping.
fn copy_if_changed(from: &Path, to: &Path) -> Result<(), Error> {
    let new = read(from)?;
    if fs::read(to).is_ok_and(|old| old == new) {
        return Ok(());
    }
    let tmp = temp_sibling(to);
    fs::write(&tmp, &new).map_err(io_err("write", &tmp))?;
    fs::rename(&tmp, to).map_err(io_err("rename", &tmp))
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, Error> {
    fs::read(path).map_err(io_err("read", path))
}

fn tool_output(out: &std::process::Output) -> String {
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

/// 64-bit FNV-1a over length-prefixed, labelled parts: a hash that is the same on every
/// toolchain (unlike `DefaultHasher`), for cache keys.
#[derive(Clone, Debug)]
pub(crate) struct Fnv(u64);

impl Fnv {
    pub(crate) fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    pub(crate) fn part(&mut self, label: &str, bytes: &[u8]) {
        self.bytes(&(label.len() as u64).to_le_bytes());
        self.bytes(label.as_bytes());
        self.bytes(&(bytes.len() as u64).to_le_bytes());
        self.bytes(bytes);
    }

    pub(crate) fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_1a_matches_the_reference_vectors() {
        // Test vectors of the FNV reference (http://www.isthe.com/chongo/tech/comp/fnv/).
        let hash = |s: &str| {
            let mut h = Fnv::new();
            h.bytes(s.as_bytes());
            h.finish()
        };
        assert_eq!(hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(hash("foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn key_parts_are_length_prefixed() {
        let key = |parts: &[(&str, &str)]| {
            let mut h = Fnv::new();
            for (label, value) in parts {
                h.part(label, value.as_bytes());
            }
            h.finish()
        };
        assert_ne!(key(&[("a", "bc")]), key(&[("ab", "c")]));
        assert_ne!(
            key(&[("flag", "-O1"), ("flag", "")]),
            key(&[("flag", "-O1")])
        );
    }

    #[test]
    fn module_names_must_be_identifiers() {
        assert!(is_identifier("layout"));
        assert!(is_identifier("_x1"));
        assert!(!is_identifier("1x"));
        assert!(!is_identifier("my-module"));
        assert!(!is_identifier(""));
    }

    #[test]
    fn cache_lives_in_the_target_directory() {
        let build_out = Path::new("/t/target/debug/build/pkg-0123/out");
        let fixtures = build_out.join("fixtures");
        let in_target = Path::new("/t/target/cyview-build-cache");
        assert_eq!(default_cache_dir(&fixtures, Some(build_out)), in_target);
        assert_eq!(default_cache_dir(build_out, None), in_target);
        assert_eq!(
            default_cache_dir(Path::new("/tmp/fixtures"), None),
            Path::new("/tmp/fixtures/.cyview-build-cache")
        );
    }
}
