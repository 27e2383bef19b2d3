#!/usr/bin/env python3
"""Golden vectors of Cython's PEP 3118 format-string matching (`__Pyx_BufFmt_CheckString`).

Run with the venv's python (Cython + NumPy installed) after ci/gen-formats compiled
formats.pyx into BUILD:

    formats_run.py run --build BUILD --cython X --out FILE [--timeout S]
    formats_run.py list                 (print the format strings, one repr a line)

Every declaration of formats.DECLS is crossed with every format string of `format_list()`
(the few hang-prone and slow ones only with `HANG_DECLS`): an `Exporter` with that format and the
declaration's item size is acquired as `cdef <decl>[:] v = obj`, and the outcome recorded:

    "ok"                          accepted
    "<ExceptionType>: <message>"  raised
    "crash:null"                  SIGSEGV at an address below 64 KiB (a NULL dereference)
    "crash:overread"              SIGSEGV in the guard page after the format's NUL
    "crash:other", "crash:signal-N", "crash:exit-N"   anything else that killed the process
    "hang"                        no answer within --timeout seconds (SLOW_TIMEOUT for the
                                  formats on which Cython is known to take seconds)

Acquisitions run in forked children (a fork server per shard, two shards): a crash or hang
costs one fork, and the next child starts at the following case.  Output (sorted, stable):

    {"cython": X, "numpy": V, "decls": [{"name", "size"}], "formats": [latin-1 strings],
     "outcomes": [...], "results": {decl: [outcome index, or null when not run, per format]}}
"""
import json
import os
import random
import select
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# Declarations that hang-prone and slow formats are crossed with (each hang costs --timeout
# seconds, each slow case seconds).
HANG_DECLS = ("double", "Arr", "Mat")
SLOW_TIMEOUT = 120.0
SEED = 20251125
N_RANDOM = 3000


# ============================================================== format strings
SCALARS = ["?", "c", "b", "B", "h", "H", "i", "I", "l", "L", "q", "Q", "f", "d", "g",
           "Zf", "Zd", "Zg", "O", "P", "s", "p", "x", "w", "u", "e", "n", "N", "v", "t", "X"]
ORDERS = ["@", "=", "<", ">", "!", "^"]


def numpy_formats():
    """The format strings NumPy exports for scalar and structured dtypes."""
    import numpy as np
    out = []
    scalars = ["f8", "f4", "f2", "g", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "?",
               "c8", "c16", "G", "O", "S1", "S4", "V4", "U2", ">f8", "<f8", ">i4", "<i4",
               ">c16", "=i2"]
    for t in scalars:
        out.append(memoryview(np.zeros(1, t)).format)
    point = [("x", "i4"), ("y", "i4")]
    specs = [
        point,
        [("x", "<i4"), ("y", "<i4")],
        [("x", ">i4"), ("y", ">i4")],
        [("x", "i8"), ("y", "i8")],
        [("x", "u4"), ("y", "i4")],
        [("x", "i4")],
        [("x", "i4"), ("y", "i4"), ("z", "i4")],
        [("d", "f8"), ("c", "i1")],
        [("d", "f8"), ("c", "S1")],
        [("d", "f8"), ("c", "u1")],
        [("d", "f8"), ("c", "?")],
        [("c", "i1"), ("d", "f8")],
        [("c", "S1"), ("d", "f8")],
        [("c", "u1"), ("d", "<f8")],
        [("a", "f8", (3,)), ("n", "i4")],
        [("a", "f8", (2,)), ("n", "i4")],
        [("a", "f4", (3,)), ("n", "i4")],
        [("a", "f8", (3, 1)), ("n", "i4")],
        [("m", "i4", (2, 3))],
        [("m", "i4", (3, 2))],
        [("m", "i4", (6,))],
        [("name", "S4"), ("id", "i4")],
        [("name", "S3"), ("id", "i4")],
        [("name", "i1", (4,)), ("id", "i4")],
        [("a", "i4"), ("p", point), ("z", "f8")],
        [("a", "i4"), ("x", "i4"), ("y", "i4"), ("z", "f8")],
        [("p", point), ("z", "i4")],
        [("tag", "i1"), ("f", [("p", point), ("z", "i4")])],
        [("tag", "S1"), ("f", [("p", point), ("z", "i4")])],
        [("re", "f8"), ("im", "f8")],
        [("re", "f4"), ("im", "f4")],
        [("z", "c16")],
        [("o", "O")],
    ]
    for spec in specs:
        for align in (False, True):
            dt = np.dtype(spec, align=align)
            out.append(memoryview(np.zeros(1, dt)).format)
    return out


def hand_formats():
    """Valid and malformed formats picked by hand: (format, kind) pairs (see format_list)."""
    f = []
    add = f.append
    for c in SCALARS:
        add(c)
        for o in ORDERS:
            add(o + c)
            add(o + o + c)
        for n in ("0", "1", "2", "3", "16"):
            add(n + c)
        add(c + c)
        add(c + "x")
        add("x" + c)
        add(c + " ")
        add(" " + c)
        add("\n" + c + "\r")
        add("\t" + c)
        add(c + ":name:")
        add("T{" + c + "}")
        add("T{" + c + ":a:}")
        add("(1)" + c)
        add("()" + c)
    # structs: Point, padding, packing, nesting, arrays, char arrays, complex-as-struct
    f += ["ii", "2i", "T{ii}", "T{2i}", "T{i}i", "iT{i}", "T{i}T{i}", "T{i:x:}T{i:y:}",
          "i:x:i:y:", "T{i:x:i:y:}", "T{i:x:d:y:}", "T{=i:x:=i:y:}", "T{<i<i}", "=ii", "<2i",
          ">ii", "T{ii}x", "T{ii}}", "T{i}}i", "T{iii}", "iii", "i", "T{i}", "li", "qq", "ll",
          "T{l:x:l:y:}", "T{I:x:i:y:}", "T{Ii}", "T{hh}", "T{ih}", "2T{i}", "T{T{ii}}",
          "T{T{i}i}", "T{i}T{}i", "T{}ii", "T{}T{}ii", "T{i}xxxxi", "ixxxxi", "i4xi", "4xii",
          "dc", "T{dc}", "T{dcxxxxxxx}", "dc7x", "dc8x", "dc6x", "T{d:d:c:c:}", "dbx", "db",
          "dB", "d?", "ds", "dp", "dcx", "d7xc", "cd", "cxxxxxxxd", "c7xd", "T{cxxxxxxxd}",
          "^cd", "=cd", "<cd", "T{^cd}", "@cd", "^dc", "=dc", "^c=d", "c=d", "=c@d", "c^d",
          "bd", "Bd", "b7xd", "s7xd", "cd:x:", "c:c:d:d:",
          "iT{ii}d", "i2id", "iiid", "i ii d", "T{i:a:T{ii}:p:d:z:}", "iT{ii}xxxxd", "iiixxxxd",
          "i^iid", "i=i=i=d", "T{ii}i", "iii", "T{T{ii}i}", "2ii", "3i", "T{ii}ix",
          "cT{T{ii}i}", "cxxxT{T{ii}i}", "cxxxiii", "c3xiii", "bxxxiii", "cxxxT{ii}i",
          "cxxxT{T{ii}}i",
          "(3)di", "(3)d:a:i:n:", "T{(3)d:a:i:n:}", "3di", "dddi", "(3)dixxxx", "(3)di4x",
          "(2)di", "(4)di", "(3)fi", "(3)d", "(3)dd", "(3)(3)di", "2(3)di", "(3)2di", "(3,)di",
          "(3,1)di", "(1,3)di", "(3)di(1)i", "d(3)", "(3)", "(", "(3", "(3,", "(,3)d", "(3,,)d",
          "(3x)d", "(3)d(3)d", "(03)di", "(00003)di", "(-3)di",
          "(2,3)i", "(3,2)i", "(6)i", "(2)(3)i", "(2,3)ii", "6i", "(2,3)", "(2,3,1)i", "(2)i",
          "(2,3,4,5,6,7,8,9,10)i", "(2,3)I", "(2,3)l",
          "4si", "4s:name:i:id:", "T{4s:name:i:id:}", "3si", "5si", "(4)si", "(4)ci", "4ci",
          "cccci", "4bi", "(4)bi", "s", "4s", "4p", "4pi", "s3xi", "(2)2si", "4s4s",
          "Zd", "Zf", "dd", "ff", "2d", "2f", "T{dd}", "T{d:re:d:im:}", "T{Zd}", "(2)d", "dx",
          "Zdd", "ZdZd", "dZd", "ZfZf", "T{ff}", "Zd:z:", "T{Zd:z:}", "Z", "Zi", "Z ", "ZZd",
          "Zx", "Z(", "ZO", "Zdx", "=Zd", "<Zf", "^Zd", "=dd", "=ff", "=g", "<g", "^g",
          "=Zg", "gg", "Zg", "2g", "O", "OO", "2O", "T{O}", "=O", "P", "PP", "l:o:",
          ]
    # malformed and truncated
    f += ["", " ", "T", "T{", "T{}", "T{}}", "}", "}}", "{", "{d}", "T}", "T d", "TT{d}",
          "T{d", "T{d}", "T{{d}}", "d}", "d}junk", "d}}", "}d", "dT{d}", "dT{}", "d(3)d",
          "d(3)", "d()", "d()d", "dT{d", "T{d}}d", "T{d}d", "2T{d}", "0T{d}", "0T{d}}",
          "0T{}d", "0T{", "1T{d}", "T{d}x", "x", "xd", "dx", "xxd", "8x", "d8x", "0x", "0d",
          "0i", "00d", "d0", "0", "1", "d1", "d 1", "1 d", "2 d", "2\nd", "d:", "d:a",
          "d:abc", ":abc:d", ":a:", "::d", ":", "d::", "d: :", "d:\x00:", "d\x00:",
          "\x00", "\x00d", "d\x00junk", "d\x00", "d\x00\x00", "\x00:", ":\x00:d",
          "\xff", "d\xff", "\x80d", "(3\xff)d", "(3)\xe9", "\x7f", "\x01", "d\x01", "(3\x01",
          "(3\n", "(3 )d", "\td", "d\t", "\vd", "\fd", "d d", "d\rd", "@", "=", "<",
          ">", "!", "^", "@@d", "<>d", "!d", ">d", "2>d", "2!d", "d>", "d<", "d!",
          "2147483647d", "2147483648d", "2147483649d", "4294967295d", "4294967296d",
          "4294967297d", "4294967298d", "99999999999999999999d", "-1d", "+1d", "1e3d",
          "18446744073709551615d", "18446744073709551616d", "4294967295", "4294967296",
          "4294967295i", "4294967296i", "4294967297i", "4294967296T{d}", "4294967297T{d}",
          "4294967295T{d}", "2147483648T{d}", "2147483648T{d}x", "4294967295x", "4294967294x", "4294967296x", "4294967295xd",
          "(4294967299)di", "(4294967295)di", "(2147483648)di", "(3)4294967296d",
          "1000000T{}d", "1000000T{x}d", "1000000T{}", "1000T{2x}d", "1000T{T{}}d",
          "1000000T{T{}}d", "65536T{0x}d", "3T{}d", "3T{x}", "3T{x}d", "3T{xd}", "8T{x}d",
          "T{x}7xd", "2T{4x}d", "T{4x}T{4x}d", "T{xxxx}xxxxd",
          "T{d}T{d}", "3T{d}", "2T{i}", "2T{ii}", "2T{iT{i}}", "T{i}T{i}T{i}",
          "2T{i}d", "T{2i}d", "T{i}T{i}d", "2T{d}}", "2T{d", "3T{i", "T{i", "T{iT{i", "T{i}T{i",
          "T{(3)d}i", "T{(3)d:a:}T{i:n:}", "T{(3)d}T{i}", "(3)T{d}i", "(3)T{d}", "T{(3)}",
          "T{(3)di}", "T{(3)di}}", "(3)di}", "(3)di}i", "c(2,3)", "(3)s", "3(3)d",
          "3T{3T{3T{x}}}d", "2T{3T{x}5x}d", "9T{9T{9T{9T{x}}}}d", "5T{2T{x}T{xx}}d",
          "7T{7T{7T{7T{7T{x}}}}}d", "16T{16T{16T{16T{x}}}}d", "40T{40T{40T{40T{x}}}}d",
          "3T{i3T{x}}d", "2T{i}3T{x}d", "2T{i3T{x}}", "3T{c3T{x}}d", "2T{c}2T{3x}i",
          "2T{2T{i}}d", "2T{2T{i}x}d", "4T{2T{c}}d", "2T{d2T{x}}", "2T{c2T{x}d}",
          "3T{0T{x}}d", "0T{3T{x}}d", "2T{3T{x}}xd", "2T{=3T{x}}d", "2T{3T{x}@}d",
          "2T{(3)d}i", "2T{(3)di}", "3T{2T{}x}d", "5T{T{x}x}d", "6T{3T{x}2x}T{d}",
          "T{b}T{T{ii}i}", "T{c}T{T{ii}i}", "T{c:tag:}T{T{i:x:i:y:}:p:i:z:}:f:",
          "bT{ii}i", "bxxxT{ii}i", "bxxxiii", "c3xiii", "c3x2ii",
          ]
    # whitespace inside an array shape, at the position of a number: Cython never returns
    hangs = ["( 3)d", "(3, 3)d", "(3,\n", "(\t3)di", "(3,\n3)i", "(2, 3)i", "(\r)d", "( )d",
             "4294967294T{}d", "4294967294T{x}d", "4294967000T{}", "2147483648T{}d"]
    # repeat counts of about 2**30: Cython takes seconds, then answers
    slow = ["99999999999T{}d",      # 1215752191 passes
            "2147483647T{x}d"]      # 2**31 - 1 passes, each one byte of padding
    return [(x, None) for x in f] + [(x, "hang") for x in hangs] + [(x, "slow") for x in slow]


ALPHABET = (list("?cbBhHiIlLqQfdgOPsp") * 3 + list("0123456789") * 2 +
            list("T{}{}()(),,::xxZZ@=<>!^    \n\r\t") + list("Tx{}(),:ZZ") +
            list("awuensvLN\x00\x01\x7f\x80\xff"))


def wrap_i32(digits):
    v = 0
    for ch in digits:
        v = (v * 10 + (ord(ch) - 48)) & 0xFFFFFFFF
    return v - (1 << 32) if v >= (1 << 31) else v


def digit_runs(s):
    run = ""
    for ch in s + "\x00":
        if "0" <= ch <= "9":
            run += ch
        elif run:
            yield run
            run = ""


def acceptable_random(s):
    """No slow loop and no hang, which cost the timeout each: a number whose C int value is
    not in [0, 10**6) may repeat a later sub-struct for seconds (or, negative, for 2**64
    times), and whitespace after a '(' can make Cython spin forever.  The hand-picked
    formats cover both kinds."""
    for run in digit_runs(s):
        v = wrap_i32(run)
        if 10 ** 6 <= v < 2 ** 31:
            return False
        if v < 0 and "T" in s[s.index(run) + len(run):]:
            return False
    if "(" in s and any(w in s[s.index("("):] for w in " \t\n\r\v\f"):
        return False
    return True


def random_formats(n):
    rng = random.Random(SEED)
    out = []
    while len(out) < n:
        kind = rng.random()
        if kind < 0.6:
            s = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 16)))
        elif kind < 0.75:
            # a struct-ish shape: nested braces and fields
            parts = []
            for _ in range(rng.randint(1, 6)):
                r = rng.random()
                if r < 0.3:
                    parts.append("T{")
                elif r < 0.5:
                    parts.append("}")
                elif r < 0.6:
                    parts.append("(%d)" % rng.randint(0, 4) if rng.random() < 0.7 else
                                 "(%d,%d)" % (rng.randint(0, 3), rng.randint(0, 4)))
                elif r < 0.7:
                    parts.append("%dx" % rng.randint(0, 8))
                else:
                    parts.append((str(rng.randint(0, 4)) if rng.random() < 0.3 else "") +
                                 rng.choice(SCALARS[:22]) +
                                 (":%s:" % rng.choice("abxyz") if rng.random() < 0.3 else ""))
            s = "".join(parts)
        elif kind < 0.85:
            # huge numbers in front of types, structs and padding
            big = rng.choice(["2147483647", "2147483648", "4294967295", "4294967296",
                              "4294967297", "9999999999", "18446744073709551615",
                              "18446744073709551617", "99999999999999999999999"])
            s = big + rng.choice(["d", "i", "x", "T{d}", "T{}", "T{x}", "(3)d", "s", ""])
            s += "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 4)))
        else:
            s = "".join(chr(rng.randint(0, 255)) for _ in range(rng.randint(0, 12)))
        if acceptable_random(s):
            out.append(s)
    return out


def format_list():
    """(format, kind) pairs, de-duplicated, in a stable order; kind is None, "hang" (Cython
    never returns) or "slow" (Cython returns after seconds)."""
    seen = set()
    out = []
    for fmt, kind in hand_formats() + [(x, None) for x in numpy_formats()] + \
            [(x, None) for x in random_formats(N_RANDOM)]:
        if fmt not in seen:
            seen.add(fmt)
            out.append((fmt, kind))
    return out


# ===================================================================== running
def outcome(acquire, fmt, size, exporter):
    try:
        acquire(exporter(fmt.encode("latin-1"), size))
    except BaseException as e:  # noqa: B902 - record whatever Cython raises
        return "%s: %s" % (type(e).__name__, e)
    return "ok"


def child(mod, cases, start, wfd):
    mod.install_crash_reporter(wfd)
    funcs = {name: (size, fn) for name, size, fn in mod.DECLS}
    for i in range(start, len(cases)):
        decl, fmt, _ = cases[i]
        size, fn = funcs[decl]
        os.write(wfd, (json.dumps([i, outcome(fn, fmt, size, mod.Exporter)]) + "\n").encode())
    os._exit(0)


def fork_server(mod, cases, timeout, log):
    """Runs every case in forked children; returns the outcomes in order."""
    results = [None] * len(cases)
    i = 0
    while i < len(cases):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                child(mod, cases, i, w)
            finally:
                os._exit(99)
        os.close(w)
        buf = b""
        expect = i
        killed = False
        reported = False
        while True:
            wait = SLOW_TIMEOUT if expect < len(cases) and cases[expect][2] == "slow" else timeout
            ready, _, _ = select.select([r], [], [], wait)
            if not ready:
                os.kill(pid, signal.SIGKILL)
                killed = True
                break
            data = os.read(r, 1 << 16)
            if not data:
                break
            buf += data
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                if line.startswith(b"!crash "):
                    results[expect] = "crash:" + line[7:].decode()
                    expect += 1
                    reported = True
                    continue
                j, res = json.loads(line)
                assert j == expect, (j, expect)
                results[j] = res
                expect += 1
        os.close(r)
        _, status = os.waitpid(pid, 0)
        if killed:
            results[expect] = "hang"
            if cases[expect][2] is None:
                log("unexpected hang: %r on %s" % (cases[expect][1], cases[expect][0]))
            i = expect + 1
        elif expect < len(cases) and not reported:
            if os.WIFSIGNALED(status):
                results[expect] = "crash:signal-%d" % os.WTERMSIG(status)
            else:
                results[expect] = "crash:exit-%d" % os.WEXITSTATUS(status)
            i = expect + 1
        else:
            # the child finished (expect == len) or reported the crash of case expect - 1
            i = expect
    return results


def run(build, cython, out, timeout):
    sys.path.insert(0, build)
    import formats as mod
    import numpy as np

    t0 = time.time()
    decls = [(name, size) for name, size, _ in mod.DECLS]
    fmts = format_list()
    cases = []
    for fmt, kind in fmts:
        for name, _ in decls:
            if kind is None or name in HANG_DECLS:
                cases.append((name, fmt, kind))

    def log(msg):
        sys.stderr.write("formats_run: %s\n" % msg)

    # two shards, each a fork server, results through a file each
    shards = 2
    pids = []
    for k in range(shards):
        pid = os.fork()
        if pid == 0:
            try:
                res = fork_server(mod, cases[k::shards], timeout, log)
                with open(os.path.join(build, "shard-%d.json" % k), "w") as fh:
                    json.dump(res, fh)
                os._exit(0)
            except BaseException:
                import traceback
                traceback.print_exc()
                os._exit(1)
        pids.append(pid)
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        if status != 0:
            log("a shard failed")
            sys.exit(1)
    outcomes = [None] * len(cases)
    for k in range(shards):
        with open(os.path.join(build, "shard-%d.json" % k)) as fh:
            outcomes[k::shards] = json.load(fh)
    assert all(o is not None for o in outcomes)

    table = sorted(set(outcomes))
    index = {o: n for n, o in enumerate(table)}
    fpos = {fmt: n for n, (fmt, _) in enumerate(fmts)}
    results = {name: [None] * len(fmts) for name, _ in decls}
    for (name, fmt, _), o in zip(cases, outcomes):
        results[name][fpos[fmt]] = index[o]

    d = json.dumps
    lines = ['{"cython": %s,' % d(cython),
             ' "numpy": %s,' % d(np.__version__),
             ' "cases": %d,' % len(cases),
             ' "decls": [',
             ",\n".join('  {"name": %s, "size": %d}' % (d(n), s) for n, s in decls) + "],",
             ' "formats": [',
             ",\n".join("  " + d(fmt) for fmt, _ in fmts) + "],",
             ' "outcomes": [',
             ",\n".join("  " + d(o) for o in table) + "],",
             ' "results": {',
             ",\n".join("  %s: %s" % (d(n), d(results[n], separators=(",", ":")))
                        for n, _ in decls) + "}}"]
    with open(out, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    counts = {}
    for o in outcomes:
        k = o if o in ("ok", "hang") or o.startswith("crash") else o.split(":")[0]
        counts[k] = counts.get(k, 0) + 1
    log("Cython %s: %d cases (%d formats x %d declarations) in %.1fs: %s"
        % (cython, len(cases), len(fmts), len(decls), time.time() - t0,
           ", ".join("%s %d" % kv for kv in sorted(counts.items()))))


def main(argv):
    if argv[:1] == ["list"]:
        for fmt, kind in format_list():
            print(repr(fmt), "(%s)" % kind if kind else "")
        return
    if argv[:1] != ["run"]:
        sys.exit(__doc__)
    args = dict(zip(argv[1::2], argv[2::2]))
    run(args["--build"], args["--cython"], args["--out"], float(args.get("--timeout", "2")))


if __name__ == "__main__":
    main(sys.argv[1:])
