# cython: language_level=3
"""Fixture of ci/gen-formats: how Cython matches a buffer's PEP 3118 format string against a
declared memoryview dtype (`__Pyx_BufFmt_CheckString`, Buffer.c).

`Exporter(fmt, itemsize)` exports a one-element, one-dimensional buffer whose format string is
the bytes `fmt` (embedded NULs included) followed by a NUL that is the last readable byte
before a PROT_NONE page, so a read past the terminator faults instead of reading whatever
follows in memory.  `DECLS` lists `(name, sizeof, acquire)`: `acquire(obj)`, named
`acq_<name>` (spaces as underscores), runs
`cdef <decl>[:] v = obj`.  `install_crash_reporter(fd)` makes a SIGSEGV/SIGBUS write
"!crash null|overread|other" to fd and _exit: a NULL dereference (fault address below 64 KiB),
a read of the guard page after the format string, or anything else.
"""
from libc.string cimport memset
from libc.stdint cimport int32_t, int64_t, uint8_t

cdef extern from *:
    """
    #include <signal.h>
    #include <string.h>
    #include <sys/mman.h>
    #include <unistd.h>

    static char *cyfmt_guard = NULL;   /* the PROT_NONE page after the current format */
    static long cyfmt_page = 0;
    static int cyfmt_fd = -1;

    static void cyfmt_on_fault(int sig, siginfo_t *si, void *uc) {
        const char *msg = "!crash other\\n";
        char *a = (char *)si->si_addr;
        (void)sig; (void)uc;
        if (cyfmt_guard && a >= cyfmt_guard && a < cyfmt_guard + cyfmt_page)
            msg = "!crash overread\\n";
        else if ((unsigned long)a < 65536UL)
            msg = "!crash null\\n";
        if (cyfmt_fd >= 0) {
            ssize_t r = write(cyfmt_fd, msg, strlen(msg));
            (void)r;
        }
        _exit(86);
    }

    static int cyfmt_install(int fd) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = cyfmt_on_fault;
        sa.sa_flags = SA_SIGINFO;
        sigemptyset(&sa.sa_mask);
        cyfmt_fd = fd;
        if (sigaction(SIGSEGV, &sa, NULL) != 0) return -1;
        return sigaction(SIGBUS, &sa, NULL);
    }

    /* n bytes of fmt and a NUL, the NUL being the last byte before a PROT_NONE page. */
    static char *cyfmt_place(const char *fmt, size_t n, char **map, size_t *maplen) {
        long page = sysconf(_SC_PAGESIZE);
        size_t data_pages = (n + 1 + (size_t)page - 1) / (size_t)page;
        size_t len = (data_pages + 1) * (size_t)page;
        char *m = (char *)mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        char *guard, *s;
        if (m == MAP_FAILED) return NULL;
        guard = m + data_pages * (size_t)page;
        if (mprotect(guard, (size_t)page, PROT_NONE) != 0) { munmap(m, len); return NULL; }
        s = guard - (n + 1);
        memcpy(s, fmt, n);
        s[n] = 0;
        *map = m;
        *maplen = len;
        cyfmt_guard = guard;
        cyfmt_page = page;
        return s;
    }

    static void cyfmt_unplace(char *map, size_t maplen) {
        if (map) munmap(map, maplen);
    }
    """
    int cyfmt_install(int fd)
    char *cyfmt_place(const char *fmt, size_t n, char **map, size_t *maplen)
    void cyfmt_unplace(char *map, size_t maplen)


def install_crash_reporter(int fd):
    if cyfmt_install(fd) != 0:
        raise OSError("sigaction failed")


cdef class Exporter:
    """A 1-d buffer of one element of `itemsize` bytes (zeros) with format string `fmt`."""
    cdef char *fmt          # inside self.map
    cdef char *map          # owned mapping (munmap in __dealloc__)
    cdef size_t maplen
    cdef Py_ssize_t itemsize
    cdef Py_ssize_t shape[1]
    cdef Py_ssize_t strides[1]
    cdef double data[64]

    def __cinit__(self, bytes fmt, Py_ssize_t itemsize):
        self.map = NULL
        if itemsize <= 0 or itemsize > <Py_ssize_t>sizeof(self.data):
            raise ValueError("itemsize out of range")
        self.fmt = cyfmt_place(fmt, len(fmt), &self.map, &self.maplen)
        if self.fmt == NULL:
            raise MemoryError()
        self.itemsize = itemsize
        self.shape[0] = 1
        self.strides[0] = itemsize
        memset(self.data, 0, sizeof(self.data))

    def __dealloc__(self):
        cyfmt_unplace(self.map, self.maplen)

    def __getbuffer__(self, Py_buffer *buffer, int flags):
        buffer.buf = <void *>self.data
        buffer.obj = self
        buffer.len = self.itemsize
        buffer.itemsize = self.itemsize
        buffer.readonly = 0
        buffer.ndim = 1
        buffer.format = self.fmt
        buffer.shape = self.shape
        buffer.strides = self.strides
        buffer.suboffsets = NULL
        buffer.internal = NULL

    def __releasebuffer__(self, Py_buffer *buffer):
        pass


# ------------------------------------------------------------------ struct dtypes
cdef struct Point:
    int x
    int y

cdef struct DC:           # a double then a char: 7 bytes of trailing padding
    double d
    char c

cdef struct CD:           # a char then a double: 7 bytes of interior padding
    char c
    double d

cdef packed struct PackedCD:
    char c
    double d

cdef struct Nested:       # a struct at a non-first position
    int a
    Point p
    double z

cdef struct FirstNested:  # a struct at the first position
    Point p
    int z

cdef struct Deep:         # a struct whose first field is a struct, at a non-first position
    char tag
    FirstNested f

cdef struct Arr:          # an array field
    double a[3]
    int n

cdef struct Mat:          # a 2-d array field
    int m[2][3]

cdef struct Name:         # a char array field ('4s')
    char name[4]
    int id

cdef struct Pair:         # two doubles: Cython types it as complex ('C') with fields
    double re
    double im


# ------------------------------------------------------------------ acquisitions
DECLS = []

def acq_double(obj):
    cdef double[:] v = obj
DECLS.append(("double", sizeof(double), acq_double))

def acq_float(obj):
    cdef float[:] v = obj
DECLS.append(("float", sizeof(float), acq_float))

def acq_long_double(obj):
    cdef long double[:] v = obj
DECLS.append(("long double", sizeof(long double), acq_long_double))

def acq_int(obj):
    cdef int[:] v = obj
DECLS.append(("int", sizeof(int), acq_int))

def acq_long(obj):
    cdef long[:] v = obj
DECLS.append(("long", sizeof(long), acq_long))

def acq_unsigned_int(obj):
    cdef unsigned int[:] v = obj
DECLS.append(("unsigned int", sizeof(unsigned int), acq_unsigned_int))

def acq_unsigned_long(obj):
    cdef unsigned long[:] v = obj
DECLS.append(("unsigned long", sizeof(unsigned long), acq_unsigned_long))

def acq_signed_char(obj):
    cdef signed char[:] v = obj
DECLS.append(("signed char", sizeof(signed char), acq_signed_char))

def acq_unsigned_char(obj):
    cdef unsigned char[:] v = obj
DECLS.append(("unsigned char", sizeof(unsigned char), acq_unsigned_char))

def acq_char(obj):
    cdef char[:] v = obj
DECLS.append(("char", sizeof(char), acq_char))

def acq_short(obj):
    cdef short[:] v = obj
DECLS.append(("short", sizeof(short), acq_short))

def acq_unsigned_short(obj):
    cdef unsigned short[:] v = obj
DECLS.append(("unsigned short", sizeof(unsigned short), acq_unsigned_short))

def acq_long_long(obj):
    cdef long long[:] v = obj
DECLS.append(("long long", sizeof(long long), acq_long_long))

def acq_unsigned_long_long(obj):
    cdef unsigned long long[:] v = obj
DECLS.append(("unsigned long long", sizeof(unsigned long long), acq_unsigned_long_long))

def acq_Py_ssize_t(obj):
    cdef Py_ssize_t[:] v = obj
DECLS.append(("Py_ssize_t", sizeof(Py_ssize_t), acq_Py_ssize_t))

def acq_size_t(obj):
    cdef size_t[:] v = obj
DECLS.append(("size_t", sizeof(size_t), acq_size_t))

def acq_int32_t(obj):
    cdef int32_t[:] v = obj
DECLS.append(("int32_t", sizeof(int32_t), acq_int32_t))

def acq_int64_t(obj):
    cdef int64_t[:] v = obj
DECLS.append(("int64_t", sizeof(int64_t), acq_int64_t))

def acq_uint8_t(obj):
    cdef uint8_t[:] v = obj
DECLS.append(("uint8_t", sizeof(uint8_t), acq_uint8_t))

def acq_float_complex(obj):
    cdef float complex[:] v = obj
DECLS.append(("float complex", sizeof(float complex), acq_float_complex))

def acq_double_complex(obj):
    cdef double complex[:] v = obj
DECLS.append(("double complex", sizeof(double complex), acq_double_complex))

def acq_object(obj):
    cdef object[:] v = obj
DECLS.append(("object", sizeof(void *), acq_object))

def acq_Point(obj):
    cdef Point[:] v = obj
DECLS.append(("Point", sizeof(Point), acq_Point))

def acq_DC(obj):
    cdef DC[:] v = obj
DECLS.append(("DC", sizeof(DC), acq_DC))

def acq_CD(obj):
    cdef CD[:] v = obj
DECLS.append(("CD", sizeof(CD), acq_CD))

def acq_PackedCD(obj):
    cdef PackedCD[:] v = obj
DECLS.append(("PackedCD", sizeof(PackedCD), acq_PackedCD))

def acq_Nested(obj):
    cdef Nested[:] v = obj
DECLS.append(("Nested", sizeof(Nested), acq_Nested))

def acq_FirstNested(obj):
    cdef FirstNested[:] v = obj
DECLS.append(("FirstNested", sizeof(FirstNested), acq_FirstNested))

def acq_Deep(obj):
    cdef Deep[:] v = obj
DECLS.append(("Deep", sizeof(Deep), acq_Deep))

def acq_Arr(obj):
    cdef Arr[:] v = obj
DECLS.append(("Arr", sizeof(Arr), acq_Arr))

def acq_Mat(obj):
    cdef Mat[:] v = obj
DECLS.append(("Mat", sizeof(Mat), acq_Mat))

def acq_Name(obj):
    cdef Name[:] v = obj
DECLS.append(("Name", sizeof(Name), acq_Name))

def acq_Pair(obj):
    cdef Pair[:] v = obj
DECLS.append(("Pair", sizeof(Pair), acq_Pair))
