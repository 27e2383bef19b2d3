"""The Rust extension `cyview_example` against its Cython twins (`cyfuncs`) and NumPy.

Each Rust function is called with the same arguments as the compiled Cython function with
the same memoryview declaration; results must match, and so must the exceptions: same type,
same message. PyO3 (0.30) leaves the message of an argument's extraction error as it is and
adds a PEP 678 note naming the argument ("while processing 'a'"), which Cython does not: the
tests check the note apart from the message.
"""

import array

import numpy as np
import pytest

import cyfuncs
import cyview_example as rs


def raised(f, *args):
    """The exception `f(*args)` raises."""
    with pytest.raises(Exception) as info:
        f(*args)
    return info.value


def assert_same_exception(rust, cython, *args, arg="a"):
    """`rust(*args)` and `cython(*args)` raise the same exception type with the same
    message; the Rust one carries PyO3's note naming the argument."""
    r = raised(rust, *args)
    c = raised(cython, *args)
    assert (type(r), str(r)) == (type(c), str(c))
    assert getattr(r, "__notes__", []) == [f"while processing '{arg}'"]
    return r


def grid(rows, cols, seed=0):
    """A C-contiguous float64 array of random values in [-1, 1)."""
    return np.random.default_rng(seed).uniform(-1, 1, (rows, cols))


# Inputs whose layout each declaration accepts: C-contiguous for `const double[:, ::1]`,
# any strides (steps, negative, transposed, empty) for `double[:, :]`, and a read-only
# zero-stride broadcast for `const double[:, :]`.
C_CONTIGUOUS = [
    pytest.param(lambda: grid(5, 7), id="5x7"),
    pytest.param(lambda: grid(300, 257, seed=1), id="300x257"),
    pytest.param(lambda: grid(1, 1), id="1x1"),
    pytest.param(lambda: grid(0, 3), id="0x3"),
    pytest.param(lambda: grid(4, 0), id="4x0"),
    pytest.param(lambda: grid(12, 10)[3:9], id="row-slice"),
    pytest.param(lambda: np.ascontiguousarray(grid(6, 4).T), id="copy-of-transpose"),
]
STRIDED = C_CONTIGUOUS + [
    pytest.param(lambda: grid(9, 8)[::2, ::-3], id="step-and-reverse"),
    pytest.param(lambda: grid(6, 4).T, id="transposed"),
    pytest.param(lambda: np.asfortranarray(grid(5, 3)), id="fortran"),
    pytest.param(lambda: grid(7, 6)[1:-1, 2:5], id="column-slice"),
    pytest.param(lambda: grid(10, 10)[::-1, :0], id="empty-columns"),
]
STRIDED_CONST = STRIDED + [
    pytest.param(lambda: np.broadcast_to(grid(1, 5), (4, 5)), id="zero-stride"),
]


def base(a):
    """The array that owns the memory of view `a`."""
    return a.base if a.base is not None else a


def read_only(a):
    """A read-only copy of `a`."""
    a = np.array(a)
    a.flags.writeable = False
    return a


# --- row_sums: `const double[:, ::1] a` -------------------------------------------------


@pytest.mark.parametrize("make", C_CONTIGUOUS)
def test_row_sums_matches_cython_and_numpy(make):
    a = make()
    got = rs.row_sums(a)
    assert isinstance(got, np.ndarray) and got.dtype == np.float64
    assert got.shape == (a.shape[0],)
    # Rust sums in interleaved lanes, Cython's twin in order, NumPy pairwise: the same up
    # to rounding.
    np.testing.assert_allclose(got, cyfuncs.row_sums(a), rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(got, a.sum(axis=1), rtol=1e-13, atol=1e-13)


def test_row_sums_is_exact_on_integers():
    a = np.arange(1000 * 37, dtype=np.float64).reshape(1000, 37) - 5000
    np.testing.assert_array_equal(rs.row_sums(a), cyfuncs.row_sums(a))
    np.testing.assert_array_equal(rs.row_sums(a), a.sum(axis=1))


def test_row_sums_takes_any_buffer_exporter():
    # A memoryview of an array.array, cast to 2-d: the buffer protocol, no NumPy.
    values = array.array("d", range(12))
    m = memoryview(values).cast("B").cast("d", [3, 4])
    np.testing.assert_array_equal(rs.row_sums(m), cyfuncs.row_sums(m))
    np.testing.assert_array_equal(rs.row_sums(m), [6.0, 22.0, 38.0])


def test_row_sums_accepts_read_only_arrays():
    a = read_only(grid(3, 4))
    np.testing.assert_allclose(rs.row_sums(a), cyfuncs.row_sums(a), rtol=1e-13)


@pytest.mark.parametrize(
    "arg",
    [
        pytest.param(lambda: grid(4, 6)[:, ::2], id="strided-columns"),
        pytest.param(lambda: grid(4, 6).T, id="transposed"),
        pytest.param(lambda: np.asfortranarray(grid(3, 2)), id="fortran"),
        pytest.param(lambda: grid(6, 4)[::-1], id="reversed-rows"),
    ],
)
def test_row_sums_refuses_non_c_contiguous_as_cython(arg):
    r = assert_same_exception(rs.row_sums, cyfuncs.row_sums, arg())
    assert (type(r), str(r)) == (ValueError, "ndarray is not C-contiguous")


# --- scale_inplace: `double[:, :] a` ----------------------------------------------------


@pytest.mark.parametrize("make", STRIDED)
@pytest.mark.parametrize("k", [2.5, -1.0, 0.0])
def test_scale_inplace_matches_cython_and_numpy(make, k):
    # Three views of three equal fresh arrays.
    a_rust, a_cython, a_numpy = make(), make(), make()
    assert rs.scale_inplace(a_rust, k) is None
    cyfuncs.scale_inplace(a_cython, k)
    a_numpy *= k
    np.testing.assert_array_equal(a_rust, a_cython)
    np.testing.assert_array_equal(a_rust, a_numpy)
    # Elements outside the view are left as Cython and NumPy leave them.
    np.testing.assert_array_equal(base(a_rust), base(a_cython))
    np.testing.assert_array_equal(base(a_rust), base(a_numpy))


def test_scale_inplace_leaves_the_rest_of_the_array():
    a = grid(6, 6)
    before = a.copy()
    rs.scale_inplace(a[1::2, ::-2], 3.0)
    expected = before.copy()
    expected[1::2, ::-2] *= 3.0
    np.testing.assert_array_equal(a, expected)


def test_scale_inplace_refuses_read_only_as_cython():
    for a in (read_only(grid(2, 3)), np.broadcast_to(grid(1, 3), (2, 3))):
        r = assert_same_exception(rs.scale_inplace, cyfuncs.scale_inplace, a, 2.0)
        assert (type(r), str(r)) == (ValueError, "buffer source array is read-only")


def test_scale_inplace_bad_factor_as_cython():
    a = grid(2, 2)
    assert_same_exception(rs.scale_inplace, cyfuncs.scale_inplace, a, "x", arg="k")


# --- cython_total: Rust calls `cdef api double total(const double[:, :] v) except? -1` ----


@pytest.mark.parametrize("make", STRIDED_CONST)
def test_cython_total_matches_cython_and_numpy(make):
    a = make()
    # The same Cython function, called from Rust or from Cython: bit for bit.
    assert rs.cython_total(a) == cyfuncs.total_py(a)
    assert rs.cython_total(a) == pytest.approx(a.sum(), rel=1e-13, abs=1e-13)


def test_cython_total_of_minus_one_is_not_an_error():
    # -1.0 is total's error value (`except? -1`): with no exception set it is the result.
    a = np.array([[-0.5, -0.25], [-0.25, 0.0]])
    assert rs.cython_total(a) == cyfuncs.total_py(a) == -1.0


@pytest.mark.parametrize(
    "a",
    [
        pytest.param(np.array([[1e308, 1e308]]), id="overflow"),
        pytest.param(np.array([[1.0], [np.nan]]), id="nan"),
    ],
)
def test_cython_total_raises_through_rust(a):
    # The exception Cython raises inside `total` reaches Python through the Rust caller.
    r, c = raised(rs.cython_total, a), raised(cyfuncs.total_py, a)
    assert (type(r), str(r)) == (type(c), str(c))
    assert isinstance(r, ValueError) and "not finite" in str(r)


# --- wrong arguments: every function, as Cython ------------------------------------------

PAIRS = [
    pytest.param(rs.row_sums, cyfuncs.row_sums, (), id="row_sums"),
    pytest.param(rs.scale_inplace, cyfuncs.scale_inplace, (2.0,), id="scale_inplace"),
    pytest.param(rs.cython_total, cyfuncs.total_py, (), id="cython_total"),
]
BAD = [
    pytest.param(lambda: np.arange(6).reshape(2, 3), id="int64"),
    pytest.param(lambda: np.ones((2, 3), np.float32), id="float32"),
    pytest.param(lambda: np.ones((2, 3), np.complex128), id="complex128"),
    pytest.param(lambda: np.ones((2, 3), ">f8"), id="big-endian"),
    pytest.param(lambda: np.ones(3), id="1-d"),
    pytest.param(lambda: np.ones((2, 2, 2)), id="3-d"),
    pytest.param(lambda: np.float64(1.0), id="0-d"),
    pytest.param(lambda: [[1.0, 2.0]], id="list"),
    pytest.param(lambda: "abc", id="str"),
    pytest.param(lambda: b"12345678", id="bytes"),
    pytest.param(lambda: object(), id="object"),
]


@pytest.mark.parametrize("rust, cython, rest", PAIRS)
@pytest.mark.parametrize("make", BAD)
def test_wrong_argument_as_cython(rust, cython, rest, make):
    assert_same_exception(rust, cython, make(), *rest)


def test_wrong_dtype_and_ndim_messages():
    # Two of the messages above, spelled out (what Cython 3.3 says).
    r = assert_same_exception(rs.row_sums, cyfuncs.row_sums, np.arange(6).reshape(2, 3))
    assert (type(r), str(r)) == (
        ValueError,
        "Buffer dtype mismatch, expected 'const double' but got 'long'",
    )
    r = assert_same_exception(rs.scale_inplace, cyfuncs.scale_inplace, np.ones(3), 2.0)
    assert (type(r), str(r)) == (
        ValueError,
        "Buffer has wrong number of dimensions (expected 2, got 1)",
    )


def test_none_is_refused():
    # A Rust `MemView` argument refuses None (`Option<MemView>` would take it); the Cython
    # twins declare `not None`. Both raise TypeError, with different messages: Cython's
    # names the argument, the Rust one is the buffer protocol's, which Cython gives for
    # any other object without a buffer.
    class NoneType:
        pass

    for rust, cython, rest in [
        (rs.row_sums, cyfuncs.row_sums, ()),
        (rs.scale_inplace, cyfuncs.scale_inplace, (2.0,)),
    ]:
        r, c = raised(rust, None, *rest), raised(cython, None, *rest)
        assert type(r) is type(c) is TypeError
        assert str(c) == "Argument 'a' must not be None"
        assert str(r) == str(raised(cython, NoneType(), *rest))
