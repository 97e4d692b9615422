/* Memory accounting for capsule cells (--max-memory): a hook on Python's allocators.
 *
 * What counts: every byte Python's allocators take from the system while a budget is armed,
 * net of what they give back.  Two places see all of it with sizes known on both sides:
 *  - the arena allocator of pymalloc (PyObject_SetArenaAllocator): small objects (<= 512
 *    bytes) of the object and mem domains live in 1 MiB arenas, alloc and free get the size;
 *  - the raw domain (PyMem_SetAllocator(PYMEM_DOMAIN_RAW)): larger blocks of every domain end
 *    there; sizes come from malloc_usable_size (glibc/musl), on allocation and on free alike.
 * pymalloc's fast path (a block from an arena it already has) is not touched, which keeps the
 * cost small.  The count is process-wide (any thread's allocation moves it); only the capsule
 * thread (limit_thread) is refused: its allocation returns NULL, which Python turns into
 * MemoryError, and the budget is marked as hit.  Frees always succeed.
 *
 * The hook is installed by arm() and taken out by disarm(), so trusted code between capsule
 * cells runs on the plain allocators: every block is allocated and freed by the previous
 * allocator underneath, so a block may be freed with or without the hook in place.  (If
 * someone hooked the allocators on top of ours meanwhile, e.g. tracemalloc, ours stays in,
 * forwarding.)
 *
 * numpy's array data does not come from Python's allocators: numpy (>= 1.22) takes it from
 * a per-context memory handler (a PyCapsule "mem_handler" holding a PyDataMem_Handler, kept
 * in a contextvar).  numpy_handler() sets ours for the calling context only -- the capsule
 * thread's -- counting and refusing like the raw domain.  numpy frees each array with the
 * handler it was allocated with, so ours stays valid for the life of the process; the
 * struct layout is numpy's stable ABI (version 1), written out here so no numpy headers are
 * needed at build time.  It needs
 * the raw allocator to be the C library's malloc underneath: with PYTHONMALLOC debug hooks
 * malloc_usable_size would read the wrong header, so install() refuses then.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>

static PyMemAllocatorEx raw_prev;
static PyObjectArenaAllocator arena_prev;
static int installed = 0;

/* Shared with threads that do not hold the GIL (the raw domain): atomics. */
static volatile int armed = 0;
static volatile int64_t used = 0;      /* net bytes since arm() */
static volatile int64_t peak = 0;
static volatile int64_t budget = 0;
static volatile int hit = 0;
static volatile int64_t refused_size = 0;
static pthread_t limit_thread;
static volatile int limit_thread_set = 0;

static inline int
over_budget(size_t more)
{
    int64_t now = __atomic_load_n(&used, __ATOMIC_RELAXED);
    if ((int64_t)more <= budget - now) {
        return 0;
    }
    if (!limit_thread_set || !pthread_equal(pthread_self(), limit_thread)) {
        return 0; /* counted, never refused: not the capsule's thread */
    }
    __atomic_store_n(&hit, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&refused_size, (int64_t)more, __ATOMIC_RELAXED);
    return 1;
}

static inline void
account(int64_t delta)
{
    int64_t now = __atomic_add_fetch(&used, delta, __ATOMIC_RELAXED);
    if (delta > 0) {
        int64_t p = __atomic_load_n(&peak, __ATOMIC_RELAXED);
        while (now > p && !__atomic_compare_exchange_n(&peak, &p, now, 0, __ATOMIC_RELAXED,
                                                       __ATOMIC_RELAXED)) {
        }
    }
}

static void *
raw_malloc(void *ctx, size_t size)
{
    if (!armed) {
        return raw_prev.malloc(raw_prev.ctx, size);
    }
    if (over_budget(size)) {
        return NULL;
    }
    void *p = raw_prev.malloc(raw_prev.ctx, size);
    if (p != NULL) {
        account((int64_t)malloc_usable_size(p));
    }
    return p;
}

static void *
raw_calloc(void *ctx, size_t nelem, size_t elsize)
{
    if (!armed) {
        return raw_prev.calloc(raw_prev.ctx, nelem, elsize);
    }
    if (elsize != 0 && nelem > SIZE_MAX / elsize) {
        return NULL;
    }
    if (over_budget(nelem * elsize)) {
        return NULL;
    }
    void *p = raw_prev.calloc(raw_prev.ctx, nelem, elsize);
    if (p != NULL) {
        account((int64_t)malloc_usable_size(p));
    }
    return p;
}

static void *
raw_realloc(void *ctx, void *ptr, size_t size)
{
    if (!armed) {
        return raw_prev.realloc(raw_prev.ctx, ptr, size);
    }
    size_t old = ptr != NULL ? malloc_usable_size(ptr) : 0;
    if (size > old && over_budget(size - old)) {
        return NULL; /* the old block stays valid, as realloc promises */
    }
    void *p = raw_prev.realloc(raw_prev.ctx, ptr, size);
    if (p != NULL) {
        account((int64_t)malloc_usable_size(p) - (int64_t)old);
    }
    return p;
}

static void
raw_free(void *ctx, void *ptr)
{
    if (armed && ptr != NULL) {
        account(-(int64_t)malloc_usable_size(ptr));
    }
    raw_prev.free(raw_prev.ctx, ptr);
}

static void *
arena_alloc(void *ctx, size_t size)
{
    if (armed && over_budget(size)) {
        return NULL; /* pymalloc then tries the raw domain, which refuses too */
    }
    void *p = arena_prev.alloc(arena_prev.ctx, size);
    if (p != NULL && armed) {
        account((int64_t)size);
    }
    return p;
}

static void
arena_free(void *ctx, void *ptr, size_t size)
{
    if (armed && ptr != NULL) {
        account(-(int64_t)size);
    }
    arena_prev.free(arena_prev.ctx, ptr, size);
}

/* numpy's PyDataMemAllocator / PyDataMem_Handler (numpy/ndarraytypes.h, version 1). */
typedef struct {
    void *ctx;
    void *(*malloc)(void *ctx, size_t size);
    void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
    void *(*realloc)(void *ctx, void *ptr, size_t new_size);
    void (*free)(void *ctx, void *ptr, size_t size);
} np_allocator;

typedef struct {
    char name[127];
    uint8_t version;
    np_allocator allocator;
} np_handler;

static void *
np_malloc(void *ctx, size_t size)
{
    if (size == 0) {
        size = 1;
    }
    if (armed && over_budget(size)) {
        return NULL; /* numpy raises MemoryError ("Unable to allocate ...") */
    }
    void *p = malloc(size);
    if (p != NULL && armed) {
        account((int64_t)malloc_usable_size(p));
    }
    return p;
}

static void *
np_calloc(void *ctx, size_t nelem, size_t elsize)
{
    if (nelem == 0 || elsize == 0) {
        nelem = elsize = 1;
    }
    if (nelem > SIZE_MAX / elsize) {
        return NULL;
    }
    if (armed && over_budget(nelem * elsize)) {
        return NULL;
    }
    void *p = calloc(nelem, elsize);
    if (p != NULL && armed) {
        account((int64_t)malloc_usable_size(p));
    }
    return p;
}

static void *
np_realloc(void *ctx, void *ptr, size_t size)
{
    if (size == 0) {
        size = 1;
    }
    size_t old = ptr != NULL ? malloc_usable_size(ptr) : 0;
    if (armed && size > old && over_budget(size - old)) {
        return NULL;
    }
    void *p = realloc(ptr, size);
    if (p != NULL && armed) {
        account((int64_t)malloc_usable_size(p) - (int64_t)old);
    }
    return p;
}

static void
np_free(void *ctx, void *ptr, size_t size)
{
    if (armed && ptr != NULL) {
        account(-(int64_t)malloc_usable_size(ptr));
    }
    free(ptr);
}

static np_handler np_ours = {
    "ipycap_memlimit", 1, {NULL, np_malloc, np_calloc, np_realloc, np_free},
};
static PyObject *np_capsule = NULL;

/* numpy_handler(array_api, handler_or_None) -> the previous handler.  array_api is numpy's
 * _ARRAY_API capsule (the C API table: PyDataMem_SetHandler is entry 304 since 1.22);
 * None sets ipycap's counting handler, a handler object (a previous return) restores it.
 * For the calling thread's context only. */
static PyObject *
ml_numpy_handler(PyObject *self, PyObject *args)
{
    PyObject *api_capsule, *handler;
    if (!PyArg_ParseTuple(args, "OO", &api_capsule, &handler)) {
        return NULL;
    }
    void **api = (void **)PyCapsule_GetPointer(api_capsule, NULL);
    if (api == NULL) {
        return NULL;
    }
    if (handler == Py_None) {
        if (np_capsule == NULL) {
            np_capsule = PyCapsule_New(&np_ours, "mem_handler", NULL);
            if (np_capsule == NULL) {
                return NULL;
            }
        }
        handler = np_capsule;
    }
    else if (!PyCapsule_IsValid(handler, "mem_handler")) {
        PyErr_SetString(PyExc_TypeError, "not a numpy memory handler");
        return NULL;
    }
    PyObject *(*set_handler)(PyObject *) = (PyObject * (*)(PyObject *)) api[304];
    return set_handler(handler);
}

static void
uninstall(void)
{
    PyMemAllocatorEx raw;
    PyObjectArenaAllocator arena;
    if (!installed) {
        return;
    }
    PyMem_GetAllocator(PYMEM_DOMAIN_RAW, &raw);
    PyObject_GetArenaAllocator(&arena);
    if (raw.malloc != raw_malloc || arena.alloc != arena_alloc) {
        return; /* someone hooked on top of ours: ours stays, forwarding */
    }
    PyMem_SetAllocator(PYMEM_DOMAIN_RAW, &raw_prev);
    PyObject_SetArenaAllocator(&arena_prev);
    installed = 0;
}

static PyObject *
ml_install(PyObject *self, PyObject *unused)
{
    if (installed) {
        Py_RETURN_NONE;
    }
    PyMemAllocatorEx raw = {NULL, raw_malloc, raw_calloc, raw_realloc, raw_free};
    PyObjectArenaAllocator arena = {NULL, arena_alloc, arena_free};
    PyMem_GetAllocator(PYMEM_DOMAIN_RAW, &raw_prev);
    PyObject_GetArenaAllocator(&arena_prev);
    /* The raw domain is used without the GIL: set it with the GIL held and before any
     * budget is armed, so no block is counted by one allocator and freed by another. */
    PyMem_SetAllocator(PYMEM_DOMAIN_RAW, &raw);
    PyObject_SetArenaAllocator(&arena);
    installed = 1;
    Py_RETURN_NONE;
}

/* arm(budget_bytes): start counting from zero; the calling thread is the one refused. */
static PyObject *
ml_arm(PyObject *self, PyObject *arg)
{
    long long b = PyLong_AsLongLong(arg);
    if (b == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (!installed) {
        ml_install(self, NULL);
    }
    budget = b;
    __atomic_store_n(&used, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&peak, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&hit, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&refused_size, 0, __ATOMIC_RELAXED);
    limit_thread = pthread_self();
    limit_thread_set = 1;
    __atomic_store_n(&armed, 1, __ATOMIC_SEQ_CST);
    Py_RETURN_NONE;
}

/* disarm() -> (peak_bytes, hit, refused_size): stop counting. */
static PyObject *
ml_disarm(PyObject *self, PyObject *unused)
{
    __atomic_store_n(&armed, 0, __ATOMIC_SEQ_CST);
    limit_thread_set = 0;
    uninstall();
    return Py_BuildValue("(LiL)", (long long)peak, (int)hit, (long long)refused_size);
}

/* state() -> (used_bytes, peak_bytes, hit): while armed. */
static PyObject *
ml_state(PyObject *self, PyObject *unused)
{
    return Py_BuildValue("(LLi)", (long long)used, (long long)peak, (int)hit);
}

/* async_raise(thread_ident, exc_type_or_None): PyThreadState_SetAsyncExc, for ipycap's own
 * use (a capsule never reaches this module).  None clears a pending one. */
static PyObject *
ml_async_raise(PyObject *self, PyObject *args)
{
    unsigned long ident;
    PyObject *exc;
    if (!PyArg_ParseTuple(args, "kO", &ident, &exc)) {
        return NULL;
    }
    int n = PyThreadState_SetAsyncExc(ident, exc == Py_None ? NULL : exc);
    return PyLong_FromLong(n);
}

/* The stop trace of a timed-out cell (see limits._Run.start_stop_trace).  A C trace
 * function, not sys.settrace: it raises the stop at every line and call of a capsule frame
 * (a frame whose builtins hold the capsule mark), and unlike a Python trace function it stays
 * installed after raising.  It never raises in trusted frames. */
static PyObject *stop_exc = NULL;

static int
stop_trace(PyObject *mark, PyFrameObject *frame, int what, PyObject *arg)
{
    if (what != PyTrace_LINE && what != PyTrace_CALL && what != PyTrace_OPCODE) {
        return 0;
    }
    PyObject *builtins = PyFrame_GetBuiltins(frame);
    if (builtins == NULL) {
        PyErr_Clear();
        return 0;
    }
    int capsule = PyDict_Check(builtins) && PyDict_GetItemWithError(builtins, mark) != NULL;
    Py_DECREF(builtins);
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    if (capsule && stop_exc != NULL) {
        PyErr_SetNone(stop_exc);
        return -1;
    }
    return 0;
}

/* start_stop_trace(exc_type, mark): on the calling thread (audited as sys.settrace). */
static PyObject *
ml_start_stop_trace(PyObject *self, PyObject *args)
{
    PyObject *exc, *mark;
    if (!PyArg_ParseTuple(args, "OU", &exc, &mark)) {
        return NULL;
    }
    Py_INCREF(exc);
    Py_XSETREF(stop_exc, exc);
    /* the mark lives as long as the trace: it is the trace's object */
    PyEval_SetTrace(stop_trace, mark);
    if (PyErr_Occurred()) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"start_stop_trace", ml_start_stop_trace, METH_VARARGS,
     "start_stop_trace(exc_type, mark): raise exc_type at every line of a marked frame."},
    {"async_raise", ml_async_raise, METH_VARARGS, "async_raise(ident, exc_type or None)."},
    {"install", ml_install, METH_NOARGS, "Install the allocator hook (arm() does it too)."},
    {"arm", ml_arm, METH_O, "arm(budget): count from zero; refuse this thread over budget."},
    {"disarm", ml_disarm, METH_NOARGS, "disarm() -> (peak, hit, refused_size)."},
    {"state", ml_state, METH_NOARGS, "state() -> (used, peak, hit)."},
    {"numpy_handler", ml_numpy_handler, METH_VARARGS,
     "numpy_handler(_ARRAY_API, None or handler) -> previous handler (this context)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "ipycap.engine._memlimit",
    "Memory accounting of capsule cells (see ipycap.engine.limits).", -1, methods,
};

PyMODINIT_FUNC
PyInit__memlimit(void)
{
    return PyModule_Create(&moduledef);
}
