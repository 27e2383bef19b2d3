//! The build cache shared by every module build and the ABI check: entries are folders
//! named by an FNV-1a key of everything that shapes their content, made in a temporary
//! sibling and renamed into place once complete.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::{io_err, Error};

/// The stamp file that marks a complete cache entry.
pub(crate) const STAMP: &str = "complete";

/// `<target>/cyview-build-cache` when the build script's `OUT_DIR` (else `out_dir`) is
/// `<target>/<profile>/build/<pkg>/out` (one cache for every profile and package), else a
/// folder inside `out_dir`.
pub(crate) fn default_cache_dir(out_dir: &Path, build_out: Option<&Path>) -> PathBuf {
    let base = build_out.unwrap_or(out_dir);
    let mut ancestors = base.ancestors();
    let (_out, _pkg, build) = (ancestors.next(), ancestors.next(), ancestors.next());
    match (build.and_then(Path::file_name), ancestors.nth(1)) {
        (Some(b), Some(target)) if b == "build" => target.join("cyview-build-cache"),
        _ => out_dir.join(".cyview-build-cache"),
    }
}

/// A unique temporary sibling of `entry`.
pub(crate) fn temp_sibling(entry: &Path) -> PathBuf {
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
pub(crate) fn copy_if_changed(from: &Path, to: &Path) -> Result<(), Error> {
    let new = read(from)?;
    if fs::read(to).is_ok_and(|old| old == new) {
        return Ok(());
    }
    let tmp = temp_sibling(to);
    fs::write(&tmp, &new).map_err(io_err("write", &tmp))?;
    fs::rename(&tmp, to).map_err(io_err("rename", &tmp))
}

/// Writes `bytes` to `path` unless it already holds them (so that its modification time,
/// which Cargo watches, stays put).
pub(crate) fn write_if_changed(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    if fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    fs::write(path, bytes).map_err(io_err("write", path))
}

/// The bytes of `path`.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, Error> {
    fs::read(path).map_err(io_err("read", path))
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
