//! Soundness of `cyview_py::CythonSlice` against hostile or extreme inputs (issue 9):
//!
//! * `acquisition_count_refuses_to_wrap`: at cyview's limit for the 32-bit acquisition count
//!   (`i32::MAX / 2`), `try_clone` and `from_borrowed` refuse with an `OverflowError` and
//!   leave the count alone; the object is still released exactly once afterwards.
//! * `clone_at_the_count_limit_aborts`: `Clone::clone` at the limit aborts the process (run
//!   in a child process: this test binary itself, with the `#[ignore]`d
//!   `clone_at_the_count_limit_aborts_in_child`).
//! * `pure_python_fake_memoryview_is_refused`: a class defined in Python, named
//!   `<module>.memoryview` and as large as a Cython 3 memoryview object, is refused before
//!   any of its bytes is read or written.
//!
//! The counts are set near the limit by writing the object's count field (found as
//! `MemviewAbi` describes it), not by a billion clones.

mod support;

use std::process::Command;
use std::sync::atomic::{AtomicI32, Ordering};

use cyview::MemviewSlice;
use cyview_py::{capi_function, CythonSlice, MemviewAbi};
use pyo3::prelude::*;
use support::{eval, refcount, report, with_python};

/// cyview's documented limit: the highest count it takes an acquisition from.
const LIMIT: i32 = i32::MAX / 2;

/// The exact refusal at the limit.
const OVERFLOW_MESSAGE: &str = "memoryview acquisition count is 1073741823; cyview's limit \
                                is 1073741823 (i32::MAX / 2): refusing another acquisition \
                                before the 32-bit count can wrap";

/// Set in the child process of `clone_at_the_count_limit_aborts`.
const CHILD_ENV: &str = "CYVIEW_SOUNDNESS_CLONE_AT_LIMIT";

type FromObject = unsafe extern "C" fn(*mut pyo3::ffi::PyObject) -> MemviewSlice;

/// Cython's `cdef double[::view.generic, ::view.generic] v = obj` (the `exchange` fixture),
/// owned by Rust.
fn view_of(obj: &Bound<'_, PyAny>) -> PyResult<CythonSlice> {
    let py = obj.py();
    let m = py.import("exchange")?;
    // The C signature is derived from the type and checked against the capsule's.
    let from_object: FromObject = capi_function(&m, "exch_from_object")?;
    // SAFETY: the function takes a borrowed object and returns an owned 2-d slice or an error
    // slice with the exception set.
    unsafe { CythonSlice::from_returned(py, from_object(obj.as_ptr()), 2) }
}

/// The acquisition count of `v`'s memoryview object, as its release lays it out.
fn count_of(v: &CythonSlice) -> &AtomicI32 {
    let at = v.as_raw().memview.cast::<u8>();
    let abi = v.abi();
    let p = match abi.aligned_pointer_offset() {
        // SAFETY: `v` holds a count on a live 0.29 memoryview object (identified as such),
        // which has the count pointer at `off`.
        Some(off) => unsafe { at.add(off).cast::<*mut i32>().read() },
        // SAFETY: `v` holds a count on a live 3.x memoryview object, whose count is at
        // `count_offset`, inside the object.
        None => unsafe { at.add(abi.count_offset()).cast::<i32>() },
    };
    // SAFETY: `p` is the object's aligned `int` count, alive while `v` holds it and only
    // accessed atomically (modules with atomics; others are refused by `identify`).
    unsafe { AtomicI32::from_ptr(p) }
}

/// A view of a fresh exporter: (exporter, view, exporter's refcount before the view).
fn fresh_view(py: Python<'_>) -> (Bound<'_, PyAny>, CythonSlice, isize) {
    let obj = eval(py, "ls.np_view('<f8', 64, 0, [2, 3], [24, 8], False)").unwrap();
    let start = refcount(&obj);
    let v = view_of(&obj).unwrap();
    assert_eq!(v.acquisition_count(), 1);
    (obj, v, start)
}

#[test]
fn acquisition_count_refuses_to_wrap() {
    with_python(|py| {
        let (obj, v, start) = fresh_view(py);
        let count = count_of(&v);
        assert_eq!(count.load(Ordering::SeqCst), v.acquisition_count());

        // Up to the limit, acquisitions are taken.
        count.store(LIMIT - 1, Ordering::SeqCst);
        let w = v.try_clone().unwrap();
        assert_eq!(v.acquisition_count(), LIMIT);

        // At the limit: refused, count unchanged, by `try_clone` ...
        let err = v.try_clone().err().unwrap();
        assert_eq!(
            (
                err.get_type(py).name().unwrap().to_string(),
                err.value(py).to_string()
            ),
            ("OverflowError".to_string(), OVERFLOW_MESSAGE.to_string())
        );
        assert_eq!(v.acquisition_count(), LIMIT);
        // ... and by `from_borrowed` (a callback lent this slice).
        // SAFETY: a live 2-d slice made by Cython (held by `v`).
        let err = unsafe { CythonSlice::from_borrowed(py, v.as_raw(), 2) }
            .err()
            .unwrap();
        assert_eq!(
            (
                err.get_type(py).name().unwrap().to_string(),
                err.value(py).to_string()
            ),
            ("OverflowError".to_string(), OVERFLOW_MESSAGE.to_string())
        );
        assert_eq!(v.acquisition_count(), LIMIT);

        // Above the limit (acquisitions taken by Cython itself, which has none): refused too.
        count.store(LIMIT + 5, Ordering::SeqCst);
        let err = v.try_clone().err().unwrap();
        assert_eq!(
            err.value(py).to_string(),
            "memoryview acquisition count is 1073741828; cyview's limit is 1073741823 \
             (i32::MAX / 2): refusing another acquisition before the 32-bit count can wrap"
        );
        assert_eq!(v.acquisition_count(), LIMIT + 5);
        count.store(LIMIT, Ordering::SeqCst);

        // Back to the real count (`v` and `w`): the object is released once, at the end.
        drop(w);
        assert_eq!(v.acquisition_count(), LIMIT - 1);
        count.store(1, Ordering::SeqCst);
        let w = v.try_clone().unwrap();
        assert_eq!(v.acquisition_count(), 2);
        drop(w);
        assert!(
            refcount(&obj) > start,
            "the memoryview object holds the exporter"
        );
        drop(v);
        assert_eq!(refcount(&obj), start, "the memoryview object was released");
    });
    report("soundness: acquisition count refuses to wrap", 3, 3, 0);
}

/// Run only by `clone_at_the_count_limit_aborts`, in a child process: clones a view whose
/// count is at the limit, which must abort.
#[test]
#[ignore = "aborts the process: run by clone_at_the_count_limit_aborts in a child"]
fn clone_at_the_count_limit_aborts_in_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    with_python(|py| {
        let (_obj, v, _) = fresh_view(py);
        count_of(&v).store(LIMIT, Ordering::SeqCst);
        println!("cloning at the limit");
        let w = v.clone();
        // Not reached when the clone aborts; otherwise leave the object consistent.
        std::mem::forget(w);
        count_of(&v).store(1, Ordering::SeqCst);
        panic!("Clone::clone at the acquisition count limit returned");
    });
}

#[test]
fn clone_at_the_count_limit_aborts() {
    use std::os::unix::process::ExitStatusExt;
    let exe = std::env::current_exe().unwrap();
    // Through `sh` for `ulimit -c 0`: the abort leaves no core file behind.
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -c 0; exec \"$0\" \"$@\"")
        .arg(&exe)
        .args([
            "--exact",
            "clone_at_the_count_limit_aborts_in_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    let what = format!(
        "child {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(stdout.contains("cloning at the limit"), "{what}");
    assert_eq!(out.status.signal(), Some(6), "SIGABRT: {what}");
    assert!(
        stderr.contains(&format!("cyview-py: {OVERFLOW_MESSAGE}; aborting\n")),
        "{what}"
    );
    report("soundness: clone at the count limit aborts", 1, 1, 0);
}

/// The refusal of every class defined in Python named `mod.memoryview`.
const FAKE_REFUSED: &str = "'mod.memoryview' is not a Cython memoryview object (its \
                            tp_dealloc is in CPython itself, as for a class defined in Python)";

/// Asserts that `fake` (of `size` bytes) is refused by `CythonSlice::from_borrowed` with
/// `FAKE_REFUSED`, its bytes and refcount unchanged; `count` is what its "count" reads.
fn assert_fake_refused(fake: &Bound<'_, PyAny>, size: usize) -> i32 {
    let py = fake.py();
    let bytes = || {
        // SAFETY: `fake` is a live object of `size` bytes (its type's basicsize).
        unsafe { std::slice::from_raw_parts(fake.as_ptr().cast::<u8>(), size) }.to_vec()
    };
    let before = bytes();
    let lock = u64::from_ne_bytes(before[48..56].try_into().unwrap());
    assert_eq!(lock, 0, "the word where the lock would be is NULL");
    let count = i32::from_ne_bytes(before[56..60].try_into().unwrap());
    let refs = refcount(fake);
    let mut slice = MemviewSlice::EMPTY;
    slice.memview = fake.as_ptr().cast();
    // SAFETY: the object is alive for the call; it must be refused before being read.
    let err = unsafe { CythonSlice::from_borrowed(py, &slice, 1) }
        .err()
        .unwrap();
    assert_eq!(
        (
            err.get_type(py).name().unwrap().to_string(),
            err.value(py).to_string()
        ),
        ("TypeError".to_string(), FAKE_REFUSED.to_string())
    );
    assert_eq!(bytes(), before, "the object's bytes are unchanged");
    assert_eq!(refcount(fake), refs, "the object's refcount is unchanged");
    count
}

#[test]
fn pure_python_fake_memoryview_is_refused() {
    with_python(|py| {
        let g = pyo3::types::PyDict::new(py);
        // A module made at runtime, with a class named `<module>.memoryview` whose 18 slots
        // make it exactly as large as a Cython 3 memoryview object. Slot `s04` sits where
        // the lock is (left NULL), `s05` where the count is: it holds an int whose address
        // has a positive low word where one can be found (it depends on where the loader
        // and malloc put things), so that the count would read positive and a
        // size-and-name check would go on to count in it.
        //
        // A second fake makes the count read 1 whatever the addresses: a subclass of
        // `array.array` (64 bytes: `weakreflist` at 48 where the lock is, `ob_exports` at 56
        // where the count is) with 12 slots, while one buffer export is held.
        py.run(
            c"
import array, sys, types
mod = types.ModuleType('mod')
sys.modules['mod'] = mod
names = tuple('s%02d' % i for i in range(18))
mod.memoryview = type('mod.memoryview', (), {'__slots__': names, '__module__': 'mod'})
mod.keep = list(range(257)) + [10**30 + k for k in range(64)] + [
    type('t%d' % k, (), {}) for k in range(8)] + [bytes(600 + k) for k in range(8)]
pick = next((c for c in mod.keep if 0 < (id(c) & 0xffffffff) < 0x80000000), None)
fake = mod.memoryview()
fake.s05 = pick
names = tuple('a%02d' % i for i in range(12))
ArrayFake = type('mod.memoryview', (array.array,), {'__slots__': names, '__module__': 'mod'})
array_fake = ArrayFake('d', [1.0, 2.0])
export = memoryview(array_fake)
",
            Some(&g),
            None,
        )
        .unwrap();
        let get = |k: &str| g.get_item(k).unwrap().unwrap();
        let size_of = |o: &Bound<'_, PyAny>| -> usize {
            o.get_type()
                .getattr("__basicsize__")
                .unwrap()
                .extract()
                .unwrap()
        };

        let fake = get("fake");
        let size = size_of(&fake);
        assert_eq!(size, MemviewAbi::Cython3.object_size());
        assert_eq!(
            fake.get_type().name().unwrap().to_string(),
            "mod.memoryview"
        );
        let pick = get("pick");
        if !pick.is_none() {
            // SAFETY: `fake` is a live object of 160 bytes; 56 is inside it.
            let slot = unsafe { fake.as_ptr().cast::<u8>().add(56).cast::<usize>().read() };
            assert_eq!(slot, pick.as_ptr() as usize, "s05 is at the count's offset");
        }
        let count = assert_fake_refused(&fake, size);
        if pick.is_none() {
            println!("no int with a positive low word this run: the count read {count}");
        } else {
            assert!(count > 0, "the count read {count}");
        }

        let array_fake = get("array_fake");
        let size = size_of(&array_fake);
        assert_eq!(size, MemviewAbi::Cython3.object_size());
        assert_eq!(
            array_fake.get_type().name().unwrap().to_string(),
            "mod.memoryview"
        );
        assert_eq!(assert_fake_refused(&array_fake, size), 1, "ob_exports");
        get("export").call_method0("release").unwrap();

        py.run(c"import sys; del sys.modules['mod']", None, None)
            .unwrap();
    });
    report("soundness: pure-Python fake memoryviews refused", 2, 2, 0);
}
