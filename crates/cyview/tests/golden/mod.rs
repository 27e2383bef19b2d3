//! The golden vectors of every pinned Cython release, one file per kind: `cython.json`
//! (`ci/gen-golden`) and `formats.json` (`ci/gen-formats`), merged from the harnesses'
//! per-release output by `cython_fixtures/golden/releases.py` (its docstring is the layout).
//!
//! In short: `"releases"` lists the releases the file holds. Everything that is the same for
//! all of them is written once. A case (an object with an `"id"` in a list of cases) whose
//! result differs between releases is written once per result, beginning with
//! `"releases": [...]`, the releases it holds for. `"by_release"` holds the other keys that
//! differ (the `"cython"` key, notes); where the top level has an object under the same key,
//! only the members that differ, and for a list member (a declaration's format-check
//! results) only the positions that differ, `{"<position>": value}`.
//!
//! [`for_release`] gives back the document the harness wrote for one release, as
//! `releases.py split` does.
#![allow(dead_code)]

use serde_json::{Map, Value};

const RELEASES: &str = "releases";
const BY_RELEASE: &str = "by_release";

/// `tests/golden/<file>`, parsed; `generator` is the script to run when it is missing.
pub fn read(file: &str, generator: &str) -> Value {
    let path = format!("{}/tests/golden/{file}", env!("CARGO_MANIFEST_DIR"));
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e} (run {generator})"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The releases a golden file holds, oldest first.
pub fn releases(all: &Value) -> Vec<&str> {
    all[RELEASES]
        .as_array()
        .expect("a golden file lists its releases")
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect()
}

/// Whether a value is a list of cases: objects with an `"id"`.
fn is_case_list(v: &Value) -> bool {
    v.as_array().is_some_and(|cases| {
        !cases.is_empty()
            && cases
                .iter()
                .all(|c| c.as_object().is_some_and(|c| c.contains_key("id")))
    })
}

/// Whether a case holds for `release`: it names no releases (all) or names this one.
fn holds_for(case: &Value, release: &str) -> bool {
    match case.get(RELEASES) {
        None => true,
        Some(rs) => rs.as_array().unwrap().iter().any(|r| r == release),
    }
}

/// The vectors of one release: the cases that hold for it (without their `"releases"`),
/// the common keys, and its `"by_release"` entries on top.
pub fn for_release(all: &Value, release: &str) -> Value {
    assert!(
        releases(all).contains(&release),
        "the golden file has no vectors for Cython {release} (it has {:?}): run the generator",
        releases(all)
    );
    let mut doc = Map::new();
    for (key, value) in all.as_object().unwrap() {
        if key == RELEASES || key == BY_RELEASE {
            continue;
        }
        let value = if is_case_list(value) {
            let cases = value.as_array().unwrap().iter();
            Value::Array(
                cases
                    .filter(|c| holds_for(c, release))
                    .map(|c| {
                        let mut c = c.as_object().unwrap().clone();
                        c.remove(RELEASES);
                        Value::Object(c)
                    })
                    .collect(),
            )
        } else {
            value.clone()
        };
        doc.insert(key.clone(), value);
    }
    if let Some(delta) = all[BY_RELEASE].get(release).and_then(Value::as_object) {
        for (key, value) in delta {
            match (doc.get_mut(key), value) {
                (Some(Value::Object(common)), Value::Object(members)) => {
                    for (member, value) in members {
                        match (common.get_mut(member), value) {
                            // A list most releases share, and this release's positions.
                            (Some(Value::Array(list)), Value::Object(patch)) => {
                                for (at, v) in patch {
                                    list[at.parse::<usize>().unwrap()] = v.clone();
                                }
                            }
                            _ => {
                                common.insert(member.clone(), value.clone());
                            }
                        }
                    }
                }
                _ => {
                    doc.insert(key.clone(), value.clone());
                }
            }
        }
    }
    Value::Object(doc)
}

/// The releases of ci/cython-versions.txt, oldest first.
pub fn pinned_releases() -> Vec<String> {
    let pinned = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../ci/cython-versions.txt"
    ))
    .unwrap();
    let mut releases: Vec<String> = pinned
        .lines()
        .map(|l| l.split('#').next().unwrap().trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    releases.sort_by_key(|r| {
        r.split('.')
            .map(|p| p.parse::<u32>().unwrap())
            .collect::<Vec<_>>()
    });
    releases
}

/// Asserts that golden file `file` (written by `generator`) holds exactly the pinned
/// releases of ci/cython-versions.txt, and that each has a test (`tested`, the releases the
/// calling test file has a test for).
pub fn assert_pinned_releases(file: &str, generator: &str, tested: &[&str]) {
    let pinned = pinned_releases();
    for release in &pinned {
        assert!(
            tested.contains(&release.as_str()),
            "no {file} test for pinned release {release}"
        );
    }
    let all = read(file, generator);
    assert_eq!(
        releases(&all),
        pinned,
        "tests/golden/{file}: run {generator}"
    );
}
