//! Data-driven checks grouped by the Cython behaviour each case exercises.
//!
//! A conformance check runs many cases (random or enumerated) in one pass, because they
//! share an interpreter, fixtures and a `cyview-report:` line. Each case is attributed to
//! one behaviour (a name such as `"index out of bounds raises IndexError naming the axis"`),
//! chosen from what Cython did with it; a failure carries the behaviour of its case. The pass
//! runs once per test binary ([`std::sync::LazyLock`]), and one `#[test]` per behaviour
//! asserts that no case of its behaviour failed, so that `cargo test` names the behaviour
//! that broke. A last test per check asserts that every failure was attributed and that the
//! pass ran all its cases.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Mutex;

use proptest::test_runner::{TestCaseError, TestError};

/// How a failure reason starts when its case was attributed to a behaviour.
const TAG: &str = "behaviour `";

/// Collects, during one pass, the cases per behaviour and the failures per behaviour.
pub struct Tally {
    check: &'static str,
    behaviours: &'static [&'static str],
    cases: Mutex<BTreeMap<&'static str, usize>>,
    failures: Mutex<BTreeMap<Option<&'static str>, Vec<String>>>,
}

impl Tally {
    /// A tally for the check named `check` (its `cyview-report:` name), whose cases are
    /// attributed to one of `behaviours`.
    pub fn new(check: &'static str, behaviours: &'static [&'static str]) -> Self {
        Tally {
            check,
            behaviours,
            cases: Mutex::new(BTreeMap::new()),
            failures: Mutex::new(BTreeMap::new()),
        }
    }

    fn known(&self, behaviour: &str) -> &'static str {
        self.behaviours
            .iter()
            .find(|b| **b == behaviour)
            .copied()
            .unwrap_or_else(|| panic!("{}: undeclared behaviour {behaviour:?}", self.check))
    }

    /// Counts one case of `behaviour`.
    pub fn count(&self, behaviour: &str) {
        let b = self.known(behaviour);
        *self.cases.lock().unwrap().entry(b).or_default() += 1;
    }

    /// Counts a case of `behaviour` and runs its comparison; a failure is tagged with the
    /// behaviour (for proptest, whose shrunk failure is attributed by [`Tally::finish`]).
    pub fn case<T>(
        &self,
        behaviour: &str,
        compare: impl FnOnce() -> Result<T, TestCaseError>,
    ) -> Result<T, TestCaseError> {
        self.count(behaviour);
        compare().map_err(|e| match e {
            TestCaseError::Fail(r) => TestCaseError::fail(format!("{TAG}{behaviour}`: {r}")),
            reject => reject,
        })
    }

    /// Records a failure of a case of `behaviour` (for passes that run every case).
    pub fn fail(&self, behaviour: &str, message: String) {
        let b = self.known(behaviour);
        self.failures
            .lock()
            .unwrap()
            .entry(Some(b))
            .or_default()
            .push(message);
    }

    /// Ends a proptest pass: its failure (the shrunk case) is attributed to the behaviour
    /// its reason is tagged with, if any.
    pub fn finish_proptest<V: Debug>(self, result: Result<(), TestError<V>>) -> Pass {
        if let Err(e) = result {
            let text = e.to_string();
            let behaviour = match &e {
                TestError::Fail(reason, _) => reason
                    .message()
                    .strip_prefix(TAG)
                    .and_then(|r| r.split('`').next())
                    .and_then(|b| self.behaviours.iter().find(|k| **k == b).copied()),
                TestError::Abort(_) => None,
            };
            self.failures
                .lock()
                .unwrap()
                .entry(behaviour)
                .or_default()
                .push(text);
        }
        self.finish()
    }

    /// Ends a pass.
    pub fn finish(self) -> Pass {
        let outcome = Pass {
            check: self.check,
            behaviours: self.behaviours,
            cases: self.cases.into_inner().unwrap(),
            failures: self.failures.into_inner().unwrap(),
        };
        outcome.print();
        outcome
    }
}

/// What one pass found: cases and failures per behaviour.
pub struct Pass {
    pub check: &'static str,
    pub behaviours: &'static [&'static str],
    pub cases: BTreeMap<&'static str, usize>,
    /// Failures per behaviour; `None`: a failure no behaviour was attributed (a panic in the
    /// harness, a proptest abort).
    pub failures: BTreeMap<Option<&'static str>, Vec<String>>,
}

impl Pass {
    /// All cases of the pass.
    pub fn total(&self) -> usize {
        self.cases.values().sum()
    }

    /// The number of failures.
    pub fn failed(&self) -> usize {
        self.failures.values().map(Vec::len).sum()
    }

    /// The number of cases of `behaviour`.
    pub fn cases_of(&self, behaviour: &str) -> usize {
        self.cases.get(behaviour).copied().unwrap_or(0)
    }

    fn print(&self) {
        println!("{}: {} cases by behaviour:", self.check, self.total());
        for b in self.behaviours {
            println!("  {:>7}  {b}", self.cases_of(b));
        }
    }

    /// Panics with the failures of the cases of `behaviour`, if any.
    pub fn assert_behaviour(&self, behaviour: &str) {
        assert!(
            self.behaviours.contains(&behaviour),
            "{}: undeclared behaviour {behaviour:?}",
            self.check
        );
        if let Some(f) = self.failures.get(&Some(behaviour)) {
            panic!(
                "{}: {behaviour}: {} failing case(s) of {}:\n{}",
                self.check,
                f.len(),
                self.cases_of(behaviour),
                f.iter().take(10).cloned().collect::<Vec<_>>().join("\n")
            );
        }
    }

    /// Panics on a failure no behaviour was attributed, and when fewer than `at_least`
    /// cases ran (unless a failure, reported by its behaviour's test, ended the pass).
    pub fn assert_complete(&self, at_least: usize) {
        if let Some(f) = self.failures.get(&None) {
            panic!(
                "{}: failure outside any behaviour:\n{}",
                self.check,
                f.join("\n")
            );
        }
        assert!(
            !self.failures.is_empty() || self.total() >= at_least,
            "{}: only {} cases ran, expected at least {at_least}",
            self.check,
            self.total()
        );
    }
}

/// One `#[test]` per behaviour of a pass, in a module named after the pass, and a test that
/// every case ran (`at_least`), every failure was attributed, and every behaviour the pass
/// declares has its test here (so that no failure can go unreported):
///
/// ```ignore
/// behaviour_tests!(mod compiled: COMPILED, BEHAVIOURS, at_least 8_000, absent [ELEMENT];
///     an_index_outside_the_extent_raises_index_error_naming_the_axis => INDEX_OUT_OF_BOUNDS,
///     other_refusals_raise_cythons_exception_and_message => OTHER_ERROR; may_be_empty,
///     ...
/// );
/// ```
///
/// A behaviour's test fails when the pass gave it no case, unless it is marked
/// `may_be_empty` (a catch-all, or a class that some releases do not show): a test that
/// checked nothing does not pass silently. Behaviours listed `absent` cannot occur in this
/// pass (say why where the pass is declared); the completeness test fails if one does.
macro_rules! behaviour_tests {
    (mod $module:ident: $outcome:expr, $behaviours:expr, at_least $min:expr
     $(, absent [$($absent:expr),* $(,)?])?;
     $($test:ident => $behaviour:expr $(; $may_be_empty:ident)?),* $(,)?) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $test() {
                    let pass = &$outcome;
                    pass.assert_behaviour($behaviour);
                    let may_be_empty = false $(|| stringify!($may_be_empty) == "may_be_empty")?;
                    if pass.cases_of($behaviour) == 0 {
                        assert!(
                            may_be_empty,
                            "{}: no case of {:?} in this pass: nothing was checked",
                            pass.check,
                            $behaviour
                        );
                        println!("{}: no case of {:?} in this pass", pass.check, $behaviour);
                    }
                }
            )*
            /// Every case ran, every failure was attributed to a behaviour, every behaviour
            /// has its test in this module, and no absent behaviour occurred.
            #[test]
            fn every_case_ran_and_every_behaviour_has_a_test() {
                let tested: &[&str] = &[$($behaviour),*];
                let absent: &[&str] = &[$($($absent),*)?];
                for b in $behaviours.iter() {
                    assert!(
                        tested.contains(b) || absent.contains(b),
                        "no test for the behaviour {b:?}"
                    );
                }
                for b in absent {
                    assert_eq!(
                        $outcome.cases_of(b),
                        0,
                        "{b:?} was declared absent from this pass but occurred: give it a test"
                    );
                }
                $outcome.assert_complete($min);
            }
        }
    };
}
pub(crate) use behaviour_tests;
