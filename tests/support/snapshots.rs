//! Which committed snapshot a build is compared with.
//!
//! Every pinned release (and the patched build of `cython_patches/`) has its own snapshot,
//! `tests/snapshots/NAME@RELEASE.snap`. A build that nothing pins (a Cython checkout in
//! development, a pre-release, a release between two pinned ones) is compared with the
//! snapshot of the pinned release it follows, so that `ci/matrix --cython SPEC` tells whether
//! the build changed anything against it: a difference fails, showing what changed.

use std::path::Path;

/// The leading numbers of a version's first three parts: `3.4.0a0` -> `[3, 4, 0]`.
fn numbers(version: &str) -> Vec<u32> {
    version
        .split('.')
        .take(3)
        .map(|part| {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().unwrap_or(0)
        })
        .collect()
}

/// The pinned release a build of `version` (without a local `+label`) follows, from
/// `pinned` (ci/cython-versions.txt): the one of the same `X.Y` series, else the newest one
/// older than `version`, else the oldest one.
pub fn baseline_release<'a>(version: &str, pinned: &'a [String]) -> Option<&'a str> {
    let v = numbers(version);
    let series = |r: &&String| v.len() >= 2 && numbers(r).get(..2) == v.get(..2);
    pinned
        .iter()
        .filter(series)
        .max_by_key(|r| numbers(r))
        .or_else(|| {
            pinned
                .iter()
                .filter(|r| numbers(r) < v)
                .max_by_key(|r| numbers(r))
        })
        .or_else(|| pinned.iter().min_by_key(|r| numbers(r)))
        .map(String::as_str)
}

/// The suffix of the committed snapshot `name` that this build (`release`, as
/// [`cython_release`](super::cython_release) gives it) is compared with: `release` itself
/// when its snapshot exists, else its baseline (see [`baseline_release`]; with the build's
/// local `+label` when that snapshot exists). Says on stderr when it is not `release`.
pub fn snapshot_release(name: &str, release: &str) -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let exists = |r: &str| Path::new(&format!("{root}/tests/snapshots/{name}@{r}.snap")).exists();
    if exists(release) {
        return release.to_string();
    }
    let pinned: Vec<String> = std::fs::read_to_string(format!("{root}/ci/cython-versions.txt"))
        .expect("ci/cython-versions.txt")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    let (public, label) = match release.split_once('+') {
        Some((public, label)) => (public, Some(label)),
        None => (release, None),
    };
    let Some(base) = baseline_release(public, &pinned) else {
        return release.to_string();
    };
    let chosen = match label {
        Some(label) if exists(&format!("{base}+{label}")) => format!("{base}+{label}"),
        _ => base.to_string(),
    };
    eprintln!(
        "snapshot {name}: no snapshot of Cython {release}; compared with the one of {chosen}, \
         the pinned release it follows"
    );
    chosen
}
