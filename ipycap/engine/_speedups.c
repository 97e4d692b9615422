/* The membrane's fast path: a proxy base type whose attribute lookup runs in C.
 *
 * Only the common case is handled here: an exact-str public name on a live capability whose
 * value is an exact primitive (int, float, str, bytes, bool, None), which is returned as is.
 * Every other case calls back into ipycap.engine.membrane (Python), which makes every decision.
 * The target and capability live in C struct fields with no descriptor, so no Python-level
 * route (slots, __dict__, gc aside) reaches them; ipycap.engine.membrane reads them with
 * proxy_target(), which is never reachable from capsule code.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <stdint.h>
#include <structmember.h>

typedef struct {
    PyObject_HEAD
    PyObject *method;
    PyObject *cap;
    PyObject *cache; /* the capability's IdentityCache (results are wrapped with it), or NULL */
    vectorcallfunc vectorcall;
} MethodProxyObject;

typedef struct {
    PyObject_HEAD
    PyObject *target;
    PyObject *cap;
    PyObject *cache; /* the capability's IdentityCache, or NULL (then results go to Python) */
    PyObject *weakreflist;
    vectorcallfunc vectorcall; /* calls without an argument tuple (d.get(k), f(x)) */
    int writable;
    int has_methods; /* it may own entries of the method cache (mcache, below) */
} ProxyBaseObject;

/* The identity cache of one capability: target -> its live proxy (one per writable flag),
 * an open-addressing table of *borrowed* proxy pointers.  A proxy holds its cache strongly
 * and takes itself out when it dies (or is cleared by the GC), so the table never holds a
 * dead proxy and needs no weak references.  Keys are derived from each proxy's own target
 * and writable fields, kept in the slot beside it (no pointer chase while probing). */
typedef struct {
    uintptr_t key; /* the proxy's target address | its writable flag */
    ProxyBaseObject *proxy;
} CacheSlot;

typedef struct {
    PyObject_HEAD
    CacheSlot *slots;
    Py_ssize_t mask; /* size - 1 (size a power of two), or -1 before the first insert */
    Py_ssize_t used;
    size_t version; /* changes on every insert, removal and resize */
} IdentityCacheObject;

static PyTypeObject ProxyBase_Type;
static PyTypeObject MethodProxy_Type;
static PyObject *proxy_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf,
                                  PyObject *kwnames);
static PyObject *method_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf,
                                   PyObject *kwnames);
static PyObject *hook_slow = NULL;   /* slow(proxy, name) -> value */
static PyObject *hook_call = NULL;   /* call(method, cap, args, kwargs) -> value */
static PyObject *hook_result = NULL; /* result(value, cap) -> wrapped value */
static PyObject *hook_finish = NULL; /* finish(proxy, name, value) -> value */
static PyObject *hook_error = NULL;  /* error(exc) -> scrubbed exception */
/* membrane/readonly.py FAST_TYPES: type -> True when read-only proxies of it may bind their
 * Python methods here without asking whether the method mutates (no container in its MRO). */
static PyObject *readonly_fast_types = NULL;
/* membrane.crossing._getitem_read_only(proxy, key): indexing a read-only dict subclass */
static PyObject *readonly_getitem = NULL;
static PyObject *str_revoked = NULL;
static PyObject *hook_view_miss = NULL; /* view_miss(view, name) -> value */
static PyObject *hook_judge = NULL;     /* judge(result, proxy) -> capsule value (derived.py) */
static PyObject *judge_iterating = NULL; /* membrane/derived.py ITERATING: proxy address -> entry */
static PyObject *hook_wrap = NULL;      /* wrap(value, cap, writable) -> capsule value */
static PyObject *hook_export = NULL;    /* export(value) -> trusted value */
static PyObject *hook_revoked = NULL;   /* revoked(cap): raises the recorded RevokedError */
static PyObject *proxy_class = NULL;    /* ipycap.engine.membrane.crossing.Proxy */
static PyObject *reverse_class = NULL;  /* ipycap.engine.membrane.crossing.ReverseProxy */
static PyObject *mutating = NULL;       /* membrane/readonly.py EXACT_MUTATORS: {type: {method names}} */
static PyObject *fast_types = NULL;     /* tuple: builtin types wrap() only proxies+caches */
static PyObject *str_class = NULL;
static PyTypeObject IdentityCache_Type;

static int
is_plain(PyObject *v)
{
    PyTypeObject *t = Py_TYPE(v);
    return t == &PyLong_Type || t == &PyUnicode_Type || t == &PyFloat_Type ||
           t == &PyBool_Type || v == Py_None || t == &PyBytes_Type;
}

static int
all_plain(PyObject *tuple)
{
    Py_ssize_t n = PyTuple_GET_SIZE(tuple);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!is_plain(PyTuple_GET_ITEM(tuple, i))) {
            return 0;
        }
    }
    return 1;
}

/* membrane.scrub's answer for the commonest exceptions, computed here without the hop:
 * exact builtin classes (so never the capsule's own, never a refusal of ipycap's) whose
 * arguments are all plain.  KeyError keeps its plain key, StopIteration loses its value,
 * IndexError/ValueError/TypeError/AttributeError become tp(str(exc)) -- exactly what scrub
 * returns for them.  NULL (no error set) means: ask scrub. */
static PyObject *
scrub_fast(PyObject *value)
{
    PyObject *tp = (PyObject *)Py_TYPE(value);
    PyObject *args = ((PyBaseExceptionObject *)value)->args;
    if (args == NULL || !PyTuple_CheckExact(args) || !all_plain(args)) {
        return NULL;
    }
    if (tp == PyExc_KeyError) {
        if (PyTuple_GET_SIZE(args) == 0) {
            return NULL;
        }
        return PyObject_CallOneArg(PyExc_KeyError, PyTuple_GET_ITEM(args, 0));
    }
    if (tp == PyExc_StopIteration) {
        return PyObject_CallNoArgs(PyExc_StopIteration);
    }
    if (tp == PyExc_IndexError || tp == PyExc_ValueError || tp == PyExc_TypeError ||
        tp == PyExc_AttributeError) {
        PyObject *message = PyObject_Str(value);
        if (message == NULL) {
            PyErr_Clear();
            return NULL;
        }
        PyObject *fresh = PyObject_CallOneArg(tp, message);
        Py_DECREF(message);
        return fresh;
    }
    return NULL;
}

static PyObject *
raise_scrubbed(void)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL && value != NULL) {
        PyException_SetTraceback(value, tb);
    }
    Py_XDECREF(type);
    Py_XDECREF(tb);
    if (value == NULL || hook_error == NULL) {
        Py_XDECREF(value);
        PyErr_SetString(PyExc_RuntimeError, "ipycap membrane is not initialised");
        return NULL;
    }
    PyObject *scrubbed = PyExceptionInstance_Check(value) ? scrub_fast(value) : NULL;
    if (scrubbed == NULL) {
        if (PyErr_Occurred()) {
            Py_DECREF(value);
            return NULL;
        }
        scrubbed = PyObject_CallOneArg(hook_error, value);
    }
    Py_DECREF(value);
    if (scrubbed == NULL) {
        return NULL;
    }
    if (!PyExceptionInstance_Check(scrubbed)) {
        Py_DECREF(scrubbed);
        PyErr_SetString(PyExc_RuntimeError, "ipycap scrub hook returned a non-exception");
        return NULL;
    }
    PyErr_SetObject((PyObject *)Py_TYPE(scrubbed), scrubbed);
    Py_DECREF(scrubbed);
    return NULL;
}

/* Whether a read-only proxy may bind a Python method of this type in C (else the finish
 * hook decides, and fills the table for next time). */
static int
readonly_fast(PyTypeObject *tp)
{
    if (readonly_fast_types == NULL) {
        return 0;
    }
    PyObject *v = PyDict_GetItemWithError(readonly_fast_types, (PyObject *)tp);
    if (v == NULL) {
        PyErr_Clear();
        return 0;
    }
    return v == Py_True;
}

/* Whether results of this type's items are judged in Python (membrane/derived.py marks the
 * type in the same table with a value that is neither True nor False). */
static int
readonly_derived(PyTypeObject *tp)
{
    if (readonly_fast_types == NULL) {
        return 0;
    }
    PyObject *v = PyDict_GetItemWithError(readonly_fast_types, (PyObject *)tp);
    if (v == NULL) {
        PyErr_Clear();
        return 0;
    }
    return v != Py_True && v != Py_False;
}

/* -- the identity cache ---------------------------------------------------------------- */
static inline uintptr_t
cache_key(PyObject *target, int writable)
{
    return (uintptr_t)target | (uintptr_t)(writable != 0); /* objects are 8-aligned */
}

/* Address order, mostly: objects allocated together (the rows of a table) land in nearby
 * slots, so a pass over 10^6 of them walks the table instead of missing the CPU cache on
 * every probe (a mixing hash cost 3x here); the high bits folded in spread objects whose
 * addresses differ by a multiple of the table size. */
static inline size_t
cache_hash(uintptr_t key)
{
    uint64_t h = (uint64_t)key;
    return (size_t)((h >> 4) ^ (h >> 23) ^ (h >> 41));
}

static ProxyBaseObject *
cache_lookup(IdentityCacheObject *c, PyObject *target, int writable)
{
    if (c->mask < 0) {
        return NULL;
    }
    uintptr_t key = cache_key(target, writable);
    size_t mask = (size_t)c->mask;
    size_t i = cache_hash(key) & mask;
    for (;;) {
        CacheSlot *slot = &c->slots[i];
        if (slot->proxy == NULL) {
            return NULL;
        }
        if (slot->key == key) {
            ProxyBaseObject *p = slot->proxy;
            /* the key is this proxy's own target and flag: the target is alive (the proxy
             * holds it), so no other object can have its address */
            return p->target == target && p->writable == writable ? p : NULL;
        }
        i = (i + 1) & mask;
    }
}

static int
cache_resize(IdentityCacheObject *c, Py_ssize_t size)
{
    CacheSlot *old = c->slots;
    Py_ssize_t old_size = c->mask + 1;
    CacheSlot *slots = PyMem_Calloc((size_t)size, sizeof(CacheSlot));
    if (slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    c->slots = slots;
    c->mask = size - 1;
    c->version++;
    for (Py_ssize_t j = 0; j < old_size; j++) {
        if (old[j].proxy != NULL) {
            size_t i = cache_hash(old[j].key) & (size_t)c->mask;
            while (slots[i].proxy != NULL) {
                i = (i + 1) & (size_t)c->mask;
            }
            slots[i] = old[j];
        }
    }
    PyMem_Free(old);
    return 0;
}

static int
cache_insert(IdentityCacheObject *c, ProxyBaseObject *p)
{
    if (c->mask < 0 || (c->used + 1) * 3 >= (c->mask + 1) * 2) {
        Py_ssize_t size = c->mask < 0 ? 8 : (c->mask + 1) * 2;
        if (cache_resize(c, size) < 0) {
            return -1;
        }
    }
    uintptr_t key = cache_key(p->target, p->writable);
    size_t i = cache_hash(key) & (size_t)c->mask;
    while (c->slots[i].proxy != NULL) {
        i = (i + 1) & (size_t)c->mask;
    }
    c->slots[i].key = key;
    c->slots[i].proxy = p;
    c->used++;
    c->version++;
    return 0;
}

/* Linear probing with backward-shift deletion: no tombstones.  The table shrinks when it
 * is mostly empty, so a burst of 10^6 short-lived proxies leaves no large table behind. */
static void
cache_remove(IdentityCacheObject *c, ProxyBaseObject *p)
{
    if (c->mask < 0 || p->target == NULL) {
        return;
    }
    size_t mask = (size_t)c->mask;
    size_t i = cache_hash(cache_key(p->target, p->writable)) & mask;
    for (;;) {
        ProxyBaseObject *q = c->slots[i].proxy;
        if (q == NULL) {
            return; /* never cached (bound methods are not) */
        }
        if (q == p) {
            break;
        }
        i = (i + 1) & mask;
    }
    size_t hole = i;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (c->slots[j].proxy == NULL) {
            break;
        }
        size_t home = cache_hash(c->slots[j].key) & mask;
        /* the entry at j may fill the hole unless its home is cyclically in (hole, j] */
        if ((j > hole && (home <= hole || home > j)) || (j < hole && (home <= hole && home > j))) {
            c->slots[hole] = c->slots[j];
            hole = j;
        }
    }
    c->slots[hole].proxy = NULL;
    c->slots[hole].key = 0;
    c->used--;
    c->version++;
    Py_ssize_t size = c->mask + 1;
    if (size > 64 && c->used * 16 < size) {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb); /* may run in a dealloc with an error set */
        if (cache_resize(c, size / 2) < 0) {
            PyErr_Clear(); /* keep the larger table */
        }
        PyErr_Restore(type, value, tb);
    }
}

static void
cache_dealloc(IdentityCacheObject *c)
{
    PyMem_Free(c->slots);
    Py_TYPE(c)->tp_free((PyObject *)c);
}

static PyObject *
cache_len(IdentityCacheObject *c, PyObject *unused)
{
    return PyLong_FromSsize_t(c->used);
}

static PyMethodDef cache_methods[] = {
    {"live", (PyCFunction)cache_len, METH_NOARGS, "number of live proxies in the cache"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject IdentityCache_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ipycap.engine._speedups.IdentityCache",
    .tp_basicsize = sizeof(IdentityCacheObject),
    .tp_dealloc = (destructor)cache_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One capability's identity cache: target -> live proxy (borrowed).",
    .tp_methods = cache_methods,
    .tp_new = NULL,
};

static void
proxy_uncache(ProxyBaseObject *self)
{
    if (self->cache != NULL) {
        cache_remove((IdentityCacheObject *)self->cache, self);
        Py_CLEAR(self->cache);
    }
}

static ProxyBaseObject *
alloc_proxy(PyObject *target, PyObject *cap, PyObject *cache, int writable)
{
    PyTypeObject *tp = (PyTypeObject *)proxy_class;
    ProxyBaseObject *p = (ProxyBaseObject *)tp->tp_alloc(tp, 0);
    if (p == NULL) {
        return NULL;
    }
    p->target = Py_NewRef(target);
    p->cap = Py_NewRef(cap);
    p->cache = Py_XNewRef(cache);
    p->writable = writable;
    p->vectorcall = proxy_vectorcall;
    return p;
}

static int
is_fast_type(PyTypeObject *tp)
{
    if (fast_types == NULL) {
        return 0;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(fast_types);
    for (Py_ssize_t i = 0; i < n; i++) {
        if ((PyObject *)tp == PyTuple_GET_ITEM(fast_types, i)) {
            return 1;
        }
    }
    return 0;
}

/* membrane.wrap(value, cap, writable) for a result derived from proxy ``self``: plain values
 * and flat tuples of them as they are, a proxy as it is, the builtin containers and their
 * iterators and views (fast_types: wrap() only proxies and caches them, and the withheld
 * check cannot refuse a builtin class) proxied and cached here; everything else decided by
 * membrane.wrap.  Borrowed ``value``, new reference returned. */
static PyObject *
wrap_result(PyObject *value, PyObject *cap, PyObject *cache, int writable)
{
    if (is_plain(value)) {
        return Py_NewRef(value);
    }
    PyTypeObject *tp = Py_TYPE(value);
    if ((PyObject *)tp == proxy_class) {
        return Py_NewRef(value);
    }
    if (tp == &PyTuple_Type && all_plain(value)) {
        return Py_NewRef(value);
    }
    if (cache != NULL && is_fast_type(tp)) {
        IdentityCacheObject *c = (IdentityCacheObject *)cache;
        if (c->mask < 0 || (c->used + 1) * 3 >= (c->mask + 1) * 2) {
            if (cache_resize(c, c->mask < 0 ? 8 : (c->mask + 1) * 2) < 0) {
                return NULL;
            }
        }
        /* one probe: the live proxy, or the free slot the new one takes */
        uintptr_t key = cache_key(value, writable);
        size_t mask = (size_t)c->mask;
        size_t i = cache_hash(key) & mask;
        for (;;) {
            CacheSlot *slot = &c->slots[i];
            if (slot->proxy == NULL) {
                break;
            }
            if (slot->key == key && slot->proxy->target == value &&
                slot->proxy->writable == writable) {
                return Py_NewRef((PyObject *)slot->proxy);
            }
            i = (i + 1) & mask;
        }
        size_t version = c->version;
        ProxyBaseObject *p = alloc_proxy(value, cap, cache, writable);
        if (p == NULL) {
            return NULL;
        }
        if (c->version != version) {
            /* the allocation ran a GC pass whose finalizers touched this cache: probe
             * again (and keep the proxy one of them may have made for ``value``) */
            ProxyBaseObject *q = cache_lookup(c, value, writable);
            if (q != NULL) {
                Py_DECREF(p);
                return Py_NewRef((PyObject *)q);
            }
            if (cache_insert(c, p) < 0) {
                Py_DECREF(p);
                return NULL;
            }
            return (PyObject *)p;
        }
        c->slots[i].key = key;
        c->slots[i].proxy = p;
        c->used++;
        c->version++;
        return (PyObject *)p;
    }
    if (hook_wrap == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ipycap membrane is not initialised");
        return NULL;
    }
    return PyObject_CallFunctionObjArgs(hook_wrap, value, cap, writable ? Py_True : Py_False,
                                        NULL);
}

/* Same, stealing ``value`` (a fresh result); NULL passes an error through. */
static PyObject *
wrap_steal(PyObject *value, PyObject *cap, PyObject *cache, int writable)
{
    if (value == NULL) {
        return NULL;
    }
    if (is_plain(value)) {
        return value;
    }
    PyObject *res = wrap_result(value, cap, cache, writable);
    Py_DECREF(value);
    return res;
}

/* Whether ``value``, a result of proxy ``self``, is judged by membrane/derived.py's rule
 * (the one hand-off of every slot, membrane.crossing._judge_result): its target is a
 * library container (readonly_derived), or an iterator of one's items (derived.ITERATING)
 * and ``value`` a tuple or a library container itself (an item of any other class, such as
 * a numpy scalar, has nothing to judge: it is wrapped as before, without the hop). */
static int
judges_results(ProxyBaseObject *self, PyObject *value)
{
    if (hook_judge == NULL) {
        return 0;
    }
    if (readonly_derived(Py_TYPE(self->target))) {
        return 1;
    }
    if (judge_iterating == NULL || PyDict_GET_SIZE(judge_iterating) == 0) {
        return 0;
    }
    if (!PyTuple_CheckExact(value) && !readonly_derived(Py_TYPE(value))) {
        return 0;
    }
    /* the key object.__hash__ gives in Python (derived.py's _address): the address
     * rotated right by 4 bits, as CPython's _Py_HashPointer */
    size_t y = (size_t)(void *)self;
    y = (y >> 4) | (y << (8 * sizeof(void *) - 4));
    Py_hash_t h = (Py_hash_t)y;
    PyObject *key = PyLong_FromSsize_t(h == -1 ? -2 : h);
    if (key == NULL) {
        PyErr_Clear();
        return 0;
    }
    int r = PyDict_Contains(judge_iterating, key);
    Py_DECREF(key);
    if (r < 0) {
        PyErr_Clear();
        return 0;
    }
    return r;
}

/* wrap_steal for a result of proxy ``self``'s own operation (comparison, iteration, call):
 * judged by the derived rule when judges_results says so. */
static PyObject *
judge_steal(ProxyBaseObject *self, PyObject *value)
{
    if (value == NULL) {
        return NULL;
    }
    if (!is_plain(value) && judges_results(self, value)) {
        PyObject *res = PyObject_CallFunctionObjArgs(hook_judge, value, (PyObject *)self, NULL);
        Py_DECREF(value);
        return res;
    }
    return wrap_steal(value, self->cap, self->cache, 0);
}

/* membrane.export(value) for an operand capsule code hands a proxy: plain values as they
 * are, a proxy's own target, everything else decided by membrane.export. */
static PyObject *
export_operand(PyObject *value)
{
    if (is_plain(value) || (PyTuple_CheckExact(value) && all_plain(value))) {
        /* a flat tuple of exact primitives (df.iat[i, 0]) as membrane.export passes it */
        return Py_NewRef(value);
    }
    if ((PyObject *)Py_TYPE(value) == proxy_class) {
        PyObject *t = ((ProxyBaseObject *)value)->target;
        if (t == NULL) {
            PyErr_SetString(PyExc_RuntimeError, "a cleared ipycap proxy");
            return NULL;
        }
        return Py_NewRef(t);
    }
    if (hook_export == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ipycap membrane is not initialised");
        return NULL;
    }
    return PyObject_CallOneArg(hook_export, value);
}

/* ``cap.revoked is not False`` (the check the attribute fast path has always made).  For
 * registry.Capability, whose ``revoked`` is a slot, the slot is read at its offset while the
 * class is unchanged (same version tag as when the hooks were set); any other capability
 * object, or a changed class, goes through getattr.  1 revoked, 0 live, -1 error. */
static PyTypeObject *cap_type = NULL;
static Py_ssize_t cap_revoked_offset = -1;
static unsigned int cap_version = 0;

static int
cap_revoked(PyObject *cap)
{
    if (Py_TYPE(cap) == cap_type && cap_version != 0 &&
        cap_type->tp_version_tag == cap_version &&
        (cap_type->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG)) {
        PyObject *v = *(PyObject **)((char *)cap + cap_revoked_offset);
        if (v != NULL) {
            return v != Py_False;
        }
    }
    PyObject *revoked = PyObject_GetAttr(cap, str_revoked);
    if (revoked == NULL) {
        return -1;
    }
    int is_revoked = (revoked != Py_False);
    Py_DECREF(revoked);
    return is_revoked;
}

/* 0 when the proxy may be used: initialised, not cleared, its capability not revoked
 * (revoked: membrane's hook raises the recorded RevokedError). */
static int proxy_refuse(ProxyBaseObject *self, int is_revoked);

/* cap_revoked's answer "live" without a call: a registry.Capability of the unchanged class
 * whose revoked slot holds False.  0 means: ask cap_revoked. */
static inline int
cap_live_fast(PyObject *cap)
{
    return __builtin_expect(Py_TYPE(cap) == cap_type && cap_type->tp_version_tag == cap_version &&
                                cap_version != 0 &&
                                (cap_type->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG) &&
                                *(PyObject **)((char *)cap + cap_revoked_offset) == Py_False,
                            1);
}

static inline int
proxy_ready(ProxyBaseObject *self)
{
    if (__builtin_expect(self->target != NULL && hook_revoked != NULL, 1) &&
        cap_live_fast(self->cap)) {
        return 0;
    }
    return proxy_refuse(self, 0);
}

/* proxy_ready's slow half: not initialised, a cleared proxy, another capability class, or
 * revoked (then membrane's hook raises the recorded RevokedError). */
static int
proxy_refuse(ProxyBaseObject *self, int unused)
{
    if (self->target == NULL || hook_revoked == NULL || proxy_class == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ipycap membrane is not initialised");
        return -1;
    }
    int is_revoked = cap_revoked(self->cap);
    if (is_revoked < 0) {
        return -1;
    }
    if (is_revoked) {
        PyObject *r = PyObject_CallOneArg(hook_revoked, self->cap);
        if (r != NULL) {
            Py_DECREF(r);
            PyErr_SetString(PyExc_RuntimeError, "ipycap: revoked capability not refused");
        }
        return -1;
    }
    return 0;
}


/* -- the boundary auditor's view of the C steps (ipycap.engine.auditor, test mode) ----------
 * A trusted Python function a slot calls returns into C (which wraps its result), but the
 * profile function sees it return into the capsule frame below.  While the auditor runs,
 * every slot notes that frame around its call into the target, per thread, so the auditor
 * can tell the two apart (crossing_frame()).  Off, it costs one branch. */
static int audit_mode = 0;
#define AUDIT_STACK 256
static _Thread_local PyObject *audit_frames[AUDIT_STACK];
static _Thread_local int audit_depth = 0;

static inline void
cross_enter(void)
{
    if (audit_mode) {
        if (audit_depth < AUDIT_STACK) {
            audit_frames[audit_depth] = (PyObject *)PyEval_GetFrame(); /* borrowed, live */
        }
        audit_depth++;
    }
}

static inline void
cross_leave(void)
{
    if (audit_mode && audit_depth > 0) {
        audit_depth--;
    }
}

#define CROSS(call)                                                                            \
    ({                                                                                         \
        cross_enter();                                                                         \
        __typeof__(call) cross_result_ = (call);                                               \
        cross_leave();                                                                         \
        cross_result_;                                                                         \
    })

/* -- builtin methods of proxied builtin containers (d.get, l.index, s.isdisjoint) ---------
 * For an instance of a class whose public attributes resolve in the class alone -- a static,
 * immutable class of metaclass type, with no instance dict and the generic getattr -- a read
 * of a method always gives the same thing: the class's method descriptor bound to the
 * instance, stateless.  The proxy of that bound method (what proxy_getattro gives for it,
 * below) is kept here per (container proxy, name) and handed out again, instead of a fresh
 * bound method and a fresh proxy on every call.  Everything else is decided again at every
 * read exactly as without the cache: the capability's revocation first, the read-only
 * mutator check after; the cached proxy checks its capability at every call, as any proxy.
 * An entry is dropped when its container proxy dies or is cleared (the entry holds no
 * reference to it), so the cache keeps no target alive beyond its own proxy; a collision
 * replaces the older entry.  The one thing a capsule can tell: ``d.get is d.get``. */
#define MCACHE_SIZE 64
static struct {
    ProxyBaseObject *owner; /* borrowed: owner->has_methods makes its death drop the entry */
    PyObject *name;         /* strong */
    PyObject *method;       /* strong: the Proxy of the bound method */
} mcache[MCACHE_SIZE];

static inline size_t
mcache_slot(ProxyBaseObject *owner, PyObject *name)
{
    return ((((uintptr_t)owner) >> 4) ^ (((uintptr_t)name) >> 4) * 7) % MCACHE_SIZE;
}

static inline int
methods_cacheable(PyTypeObject *tp)
{
    return Py_IS_TYPE(tp, &PyType_Type) && !(tp->tp_flags & Py_TPFLAGS_HEAPTYPE) &&
           (tp->tp_flags & Py_TPFLAGS_IMMUTABLETYPE) && tp->tp_dictoffset == 0 &&
           tp->tp_getattro == PyObject_GenericGetAttr;
}

static void
mcache_drop(ProxyBaseObject *owner)
{
    if (!owner->has_methods) {
        return;
    }
    owner->has_methods = 0;
    for (size_t i = 0; i < MCACHE_SIZE; i++) {
        if (mcache[i].owner == owner) {
            PyObject *n = mcache[i].name, *m = mcache[i].method;
            mcache[i].owner = NULL;
            mcache[i].name = NULL;
            mcache[i].method = NULL;
            Py_XDECREF(n);
            Py_XDECREF(m); /* may run code that changes other slots: each is read afresh */
        }
    }
}

static void
mcache_insert(ProxyBaseObject *owner, PyObject *name, PyObject *method)
{
    size_t i = mcache_slot(owner, name);
    PyObject *old_name = mcache[i].name, *old_method = mcache[i].method;
    mcache[i].owner = owner;
    mcache[i].name = Py_NewRef(name);
    mcache[i].method = Py_NewRef(method);
    owner->has_methods = 1;
    Py_XDECREF(old_name);
    Py_XDECREF(old_method);
}

/* The read-only decision for a builtin method ``name`` bound to the target of ``self``:
 * 1 when it is one of EXACT_MUTATORS of a read-only target (or a class readonly.py must
 * judge), 0 when the fast path may hand it out, -1 on error. */
static int
readonly_mutator(ProxyBaseObject *self, PyObject *name)
{
    if (self->writable) {
        /* a writable library container: its methods' results are judged, in Python */
        return readonly_derived(Py_TYPE(self->target));
    }
    PyObject *names = PyDict_GetItemWithError(mutating, (PyObject *)Py_TYPE(self->target));
    if (names == NULL && PyErr_Occurred()) {
        return -1;
    }
    /* not an exact list/dict/set/bytearray: a subclass or another container (OrderedDict,
     * deque, a file) is judged in Python by the class that defines the method
     * (membrane/readonly.py), unless FAST_TYPES clears it */
    if (names == NULL) {
        return !readonly_fast(Py_TYPE(self->target));
    }
    return PySet_Contains(names, name);
}

static PyObject *
proxy_getattro(ProxyBaseObject *self, PyObject *name)
{
    if (hook_slow == NULL || hook_finish == NULL || self->target == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ipycap membrane is not initialised");
        return NULL;
    }
    if (PyUnicode_CheckExact(name) && name == str_class && proxy_class != NULL) {
        /* membrane.class_for_capsule for a static class of module builtins (tp_name without
         * a dot, so __module__ is 'builtins'): the class itself, which share_class leaves as
         * it is (no heap class in its MRO).  Any other class is decided in Python. */
        PyTypeObject *tp = Py_TYPE(self->target);
        if (!(tp->tp_flags & Py_TPFLAGS_HEAPTYPE) && strchr(tp->tp_name, '.') == NULL) {
            if (proxy_ready(self) < 0) {
                return NULL;
            }
            return Py_NewRef((PyObject *)tp);
        }
    }
    if (PyUnicode_CheckExact(name) && PyUnicode_GET_LENGTH(name) > 0 &&
        PyUnicode_READ_CHAR(name, 0) != '_') {
        int is_revoked = cap_live_fast(self->cap) ? 0 : cap_revoked(self->cap);
        if (is_revoked < 0) {
            return NULL;
        }
        if (!is_revoked && mutating != NULL && proxy_class != NULL &&
            methods_cacheable(Py_TYPE(self->target))) {
            size_t i = mcache_slot(self, name);
            if (mcache[i].owner == self && mcache[i].name == name) {
                PyObject *m = mcache[i].method;
                PyObject *bound = ((ProxyBaseObject *)m)->target;
                if (bound != NULL && PyCFunction_GET_SELF(bound) == self->target) {
                    int refuse = readonly_mutator(self, name);
                    if (refuse < 0) {
                        return NULL;
                    }
                    if (!refuse) {
                        return Py_NewRef(m);
                    }
                }
            }
        }
        if (!is_revoked) {
            PyObject *value = CROSS(PyObject_GetAttr(self->target, name));
            if (value == NULL) {
                return raise_scrubbed();
            }
            if (is_plain(value)) {
                return value;
            }
            /* Only a method bound to the target itself (which was admitted when it was
             * wrapped) stays in C; one bound to another object (e.g. an attribute holding
             * IPython's shell.ev) is decided by ipycap.engine.membrane. */
            if (PyMethod_Check(value) && PyMethod_GET_SELF(value) == self->target &&
                (self->writable ? !readonly_derived(Py_TYPE(self->target))
                                : readonly_fast(Py_TYPE(self->target)))) {
                MethodProxyObject *mp = PyObject_GC_New(MethodProxyObject, &MethodProxy_Type);
                if (mp == NULL) {
                    Py_DECREF(value);
                    return NULL;
                }
                mp->method = value; /* steals the reference */
                mp->cap = Py_NewRef(self->cap);
                mp->cache = Py_XNewRef(self->cache);
                mp->vectorcall = method_vectorcall;
                PyObject_GC_Track(mp);
                return (PyObject *)mp;
            }
            /* A builtin method bound to the target (list.append, dict.get): what
             * membrane._finish_getattr gives, an uncached proxy of it with the target's
             * writable flag -- unless the target is read-only and the method one of
             * EXACT_MUTATORS (then _ReadOnlyMethod, from Python; other types when FAST_TYPES does not clear them).  Only plain
             * metaclasses (no __eq__/__hash__ of theirs in the EXACT_MUTATORS lookup) and
             * methods with no __module__ (so not ipycap's own functions) stay here. */
            if (PyCFunction_CheckExact(value) && PyCFunction_GET_SELF(value) == self->target &&
                ((PyCFunctionObject *)value)->m_module == NULL && proxy_class != NULL &&
                mutating != NULL && Py_IS_TYPE(Py_TYPE(self->target), &PyType_Type)) {
                int refuse = readonly_mutator(self, name);
                if (refuse < 0) {
                    Py_DECREF(value);
                    return NULL;
                }
                if (!refuse) {
                    PyObject *p = (PyObject *)alloc_proxy(value, self->cap, self->cache,
                                                          self->writable);
                    Py_DECREF(value);
                    if (p != NULL && methods_cacheable(Py_TYPE(self->target))) {
                        mcache_insert(self, name, p);
                    }
                    return p;
                }
            }
            PyObject *res = PyObject_CallFunctionObjArgs(hook_finish, (PyObject *)self, name,
                                                         value, NULL);
            Py_DECREF(value);
            return res;
        }
    }
    return PyObject_CallFunctionObjArgs(hook_slow, (PyObject *)self, name, NULL);
}

static int
proxy_traverse(ProxyBaseObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->target);
    Py_VISIT(self->cap);
    return 0;
}

static int
proxy_clear(ProxyBaseObject *self)
{
    proxy_uncache(self); /* before the target goes: the cache finds the slot by it */
    mcache_drop(self);
    Py_CLEAR(self->target);
    Py_CLEAR(self->cap);
    return 0;
}

/* Proxies are always instances of a Python subclass (ipycap.engine.membrane.Proxy), whose
 * subtype_dealloc calls this and then releases the reference to the heap type itself, so
 * this must not: a second Py_DECREF here freed the Proxy class after enough proxies died. */
static void
proxy_dealloc(ProxyBaseObject *self)
{
    PyObject_GC_UnTrack(self);
    /* Out of the cache first: a weakref callback that wraps the same target again must
     * get a fresh proxy, never this dying one. */
    proxy_uncache(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    proxy_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}


/* -- protocol slots ------------------------------------------------------------------
 * Each one is membrane.crossing._call for its operation: the capability checked, operands
 * exported (plain values and proxies here, the rest by membrane.export), the target's own
 * operation run, the result wrapped (wrap_result) or, for the raw=True operations (len,
 * bool, hash, in), given as the exact int/bool the C API returns, exceptions scrubbed. */
static Py_ssize_t
proxy_length(ProxyBaseObject *self)
{
    if (proxy_ready(self) < 0) {
        return -1;
    }
    Py_ssize_t n = CROSS(PyObject_Size(self->target));
    if (n < 0 && PyErr_Occurred()) {
        raise_scrubbed();
    }
    return n;
}

static PyObject *
proxy_subscript(ProxyBaseObject *self, PyObject *key)
{
    if (proxy_ready(self) < 0) {
        return NULL;
    }
    PyObject *t = self->target;
    if (PyList_CheckExact(t) && PyLong_CheckExact(key)) {
        /* list[int] as list_subscript computes it, for an index in range */
        Py_ssize_t i = PyLong_AsSsize_t(key);
        if (i == -1 && PyErr_Occurred()) {
            PyErr_Clear(); /* out of Py_ssize_t: list_subscript raises its own error */
        } else {
            Py_ssize_t n = PyList_GET_SIZE(t);
            if (i < 0) {
                i += n;
            }
            if (i >= 0 && i < n) {
                /* a reference of our own before anything (a GC pass) can run */
                return wrap_steal(Py_NewRef(PyList_GET_ITEM(t, i)), self->cap, self->cache, 0);
            }
        }
    }
    if (!self->writable && readonly_getitem != NULL &&
        ((PyDict_Check(t) && !PyDict_CheckExact(t)) || readonly_derived(Py_TYPE(t)))) {
        /* a read-only dict subclass: a defaultdict's missing key would be inserted; a
         * library container: its item is judged (membrane/derived.py) */
        return PyObject_CallFunctionObjArgs(readonly_getitem, (PyObject *)self, key, NULL);
    }
    PyObject *k = export_operand(key);
    if (k == NULL) {
        return NULL;
    }
    PyObject *res = CROSS(PyObject_GetItem(t, k));
    Py_DECREF(k);
    if (res == NULL) {
        return raise_scrubbed();
    }
    return judge_steal(self, res);
}

static int
proxy_contains(ProxyBaseObject *self, PyObject *item)
{
    if (proxy_ready(self) < 0) {
        return -1;
    }
    PyObject *k = export_operand(item);
    if (k == NULL) {
        return -1;
    }
    int r = CROSS(PySequence_Contains(self->target, k));
    Py_DECREF(k);
    if (r < 0) {
        raise_scrubbed();
    }
    return r;
}

static PyObject *
proxy_iter(ProxyBaseObject *self)
{
    if (proxy_ready(self) < 0) {
        return NULL;
    }
    PyObject *it = CROSS(PyObject_GetIter(self->target));
    if (it == NULL) {
        return raise_scrubbed();
    }
    return judge_steal(self, it);
}

static PyObject *
proxy_iternext(ProxyBaseObject *self)
{
    if (proxy_ready(self) < 0) {
        return NULL;
    }
    PyObject *t = self->target;
    iternextfunc next = Py_TYPE(t)->tp_iternext;
    if (next == NULL || next == &_PyObject_NextNotImplemented) { /* not PyIter_Check(t) */
        PyErr_Format(PyExc_TypeError, "'%.200s' object is not an iterator", Py_TYPE(t)->tp_name);
        return raise_scrubbed();
    }
    PyObject *res = CROSS(next(t));
    if (res == NULL) {
        if (PyErr_Occurred()) {
            return raise_scrubbed(); /* StopIteration(value) loses its trusted value */
        }
        return NULL; /* exhausted */
    }
    return judge_steal(self, res);
}

static Py_hash_t
proxy_hash(ProxyBaseObject *self)
{
    if (proxy_ready(self) < 0) {
        return -1;
    }
    Py_hash_t h = CROSS(PyObject_Hash(self->target));
    if (h == -1 && PyErr_Occurred()) {
        raise_scrubbed();
    }
    return h;
}

static int
proxy_bool(ProxyBaseObject *self)
{
    if (proxy_ready(self) < 0) {
        return -1;
    }
    int r = CROSS(PyObject_IsTrue(self->target));
    if (r < 0) {
        raise_scrubbed();
    }
    return r;
}

static PyObject *compare_names[6];

/* membrane.crossing._make_binary for the six comparisons: the target class's own method
 * first (type(target).__<op>__, found in its MRO: only for a plain metaclass, whose lookup
 * runs no code, else Python's descriptor protocol decides); on NotImplemented, a capsule
 * object operand gets NotImplemented (Python then tries its reflected method, which sees this
 * proxy), trusted data the full comparison on both raw values. */
static PyObject *
proxy_richcompare(ProxyBaseObject *self, PyObject *other, int op)
{
    if (!PyObject_TypeCheck((PyObject *)self, &ProxyBase_Type)) {
        Py_RETURN_NOTIMPLEMENTED; /* reflected: self is the other operand */
    }
    if (proxy_ready(self) < 0) {
        return NULL;
    }
    PyObject *o = export_operand(other);
    if (o == NULL) {
        return NULL;
    }
    PyObject *t = self->target;
    PyObject *res;
    PyTypeObject *tp = Py_TYPE(t);
    PyObject *impl;
    if (Py_IS_TYPE(tp, &PyType_Type)) {
        /* type.__getattribute__ for a plain metaclass: the MRO attribute, through its
         * __get__(None, cls) when it has one (no data descriptor of type's own is named so) */
        impl = _PyType_Lookup(tp, compare_names[op]); /* borrowed */
        if (impl != NULL) {
            descrgetfunc get = Py_TYPE(impl)->tp_descr_get;
            impl = get != NULL ? CROSS(get(impl, NULL, (PyObject *)tp)) : Py_NewRef(impl);
            if (impl == NULL) {
                Py_DECREF(o);
                return raise_scrubbed();
            }
        }
    } else {
        impl = PyObject_GetAttr((PyObject *)tp, compare_names[op]);
        if (impl == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
                Py_DECREF(o);
                return raise_scrubbed();
            }
            PyErr_Clear();
        }
    }
    if (impl == NULL || impl == Py_None) { /* getattr(type(target), dunder, None) is None */
        Py_XDECREF(impl);
        res = Py_NewRef(Py_NotImplemented);
    } else {
        PyObject *args[2] = {t, o};
        res = CROSS(PyObject_Vectorcall(impl, args, 2, NULL));
        Py_DECREF(impl);
    }
    if (res == NULL) {
        Py_DECREF(o);
        return raise_scrubbed();
    }
    if (res != Py_NotImplemented) {
        Py_DECREF(o);
        return judge_steal(self, res);
    }
    Py_DECREF(res);
    if ((PyObject *)Py_TYPE(o) == reverse_class) {
        Py_DECREF(o);
        Py_RETURN_NOTIMPLEMENTED;
    }
    res = CROSS(PyObject_RichCompare(t, o, op));
    Py_DECREF(o);
    if (res == NULL) {
        return raise_scrubbed();
    }
    return judge_steal(self, res);
}

/* membrane.crossing.Proxy.__call__: plain positional arguments stay in C, anything else is
 * exported by membrane._call_method (the hook), which also wraps and scrubs. */
static PyObject *
proxy_call(ProxyBaseObject *self, PyObject *args, PyObject *kwargs)
{
    if (proxy_ready(self) < 0) {
        return NULL;
    }
    if (hook_call == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ipycap membrane is not initialised");
        return NULL;
    }
    if ((kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0) || !all_plain(args)) {
        return PyObject_CallFunctionObjArgs(hook_call, self->target, self->cap, args,
                                            kwargs ? kwargs : Py_None, NULL);
    }
    PyObject *res = CROSS(PyObject_Call(self->target, args, NULL));
    if (res == NULL) {
        return raise_scrubbed();
    }
    return judge_steal(self, res);
}

static PyObject *
tuple_from_array(PyObject *const *items, Py_ssize_t n)
{
    PyObject *t = PyTuple_New(n);
    if (t == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyTuple_SET_ITEM(t, i, Py_NewRef(items[i]));
    }
    return t;
}

/* The same call without an argument tuple: plain positional arguments go straight to the
 * target; anything else is packed and handed to membrane._call_method as proxy_call does. */
static PyObject *
call_vector(PyObject *target, PyObject *cap, PyObject *cache, PyObject *const *args,
            size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t n = PyVectorcall_NARGS(nargsf);
    int fast = kwnames == NULL || PyTuple_GET_SIZE(kwnames) == 0;
    for (Py_ssize_t i = 0; fast && i < n; i++) {
        fast = is_plain(args[i]);
    }
    if (!fast) {
        if (hook_call == NULL) {
            PyErr_SetString(PyExc_RuntimeError, "ipycap membrane is not initialised");
            return NULL;
        }
        PyObject *tuple = tuple_from_array(args, n);
        if (tuple == NULL) {
            return NULL;
        }
        PyObject *kwargs = Py_NewRef(Py_None);
        Py_ssize_t nk = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
        if (nk > 0) {
            Py_DECREF(kwargs);
            kwargs = PyDict_New();
            for (Py_ssize_t i = 0; kwargs != NULL && i < nk; i++) {
                if (PyDict_SetItem(kwargs, PyTuple_GET_ITEM(kwnames, i), args[n + i]) < 0) {
                    Py_CLEAR(kwargs);
                }
            }
            if (kwargs == NULL) {
                Py_DECREF(tuple);
                return NULL;
            }
        }
        PyObject *res = PyObject_CallFunctionObjArgs(hook_call, target, cap, tuple, kwargs, NULL);
        Py_DECREF(tuple);
        Py_DECREF(kwargs);
        return res;
    }
    PyObject *res = CROSS(PyObject_Vectorcall(target, args, nargsf, NULL));
    if (res == NULL) {
        return raise_scrubbed();
    }
    if (cache == NULL) {
        if (is_plain(res)) {
            return res;
        }
        PyObject *wrapped = PyObject_CallFunctionObjArgs(hook_result, res, cap, NULL);
        Py_DECREF(res);
        return wrapped;
    }
    return wrap_steal(res, cap, cache, 0);
}

static PyObject *
proxy_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    ProxyBaseObject *self = (ProxyBaseObject *)callable;
    if (proxy_ready(self) < 0) {
        return NULL;
    }
    return call_vector(self->target, self->cap, self->cache, args, nargsf, kwnames);
}

static PyMappingMethods proxy_as_mapping = {
    .mp_length = (lenfunc)proxy_length,
    .mp_subscript = (binaryfunc)proxy_subscript,
};

static PySequenceMethods proxy_as_sequence = {
    .sq_length = (lenfunc)proxy_length,
    .sq_contains = (objobjproc)proxy_contains,
};

static PyNumberMethods proxy_as_number = {
    .nb_bool = (inquiry)proxy_bool,
};

static PyTypeObject ProxyBase_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ipycap.engine._speedups.ProxyBase",
    .tp_basicsize = sizeof(ProxyBaseObject),
    .tp_dealloc = (destructor)proxy_dealloc,
    .tp_getattro = (getattrofunc)proxy_getattro,
    .tp_as_number = &proxy_as_number,
    .tp_as_sequence = &proxy_as_sequence,
    .tp_as_mapping = &proxy_as_mapping,
    .tp_hash = (hashfunc)proxy_hash,
    .tp_call = (ternaryfunc)proxy_call,
    .tp_vectorcall_offset = offsetof(ProxyBaseObject, vectorcall),
    .tp_richcompare = (richcmpfunc)proxy_richcompare,
    .tp_iter = (getiterfunc)proxy_iter,
    .tp_iternext = (iternextfunc)proxy_iternext,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC |
                Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "Base of ipycap's membrane proxies (attribute fast path in C).",
    .tp_traverse = (traverseproc)proxy_traverse,
    .tp_clear = (inquiry)proxy_clear,
    .tp_weaklistoffset = offsetof(ProxyBaseObject, weakreflist),
    .tp_new = NULL,
};


/* A proxied bound method: calls with plain arguments and a plain result stay in C;
 * everything else goes through ipycap.engine.membrane's hooks (export, wrap, scrub). */
static PyObject *
method_call(MethodProxyObject *self, PyObject *args, PyObject *kwargs)
{
    if (hook_call == NULL || hook_result == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ipycap membrane is not initialised");
        return NULL;
    }
    int is_revoked = cap_revoked(self->cap);
    if (is_revoked < 0) {
        return NULL;
    }
    int fast = !is_revoked && (kwargs == NULL || PyDict_GET_SIZE(kwargs) == 0);
    if (fast) {
        Py_ssize_t n = PyTuple_GET_SIZE(args);
        for (Py_ssize_t i = 0; i < n; i++) {
            if (!is_plain(PyTuple_GET_ITEM(args, i))) {
                fast = 0;
                break;
            }
        }
    }
    if (!fast) {
        return PyObject_CallFunctionObjArgs(hook_call, self->method, self->cap, args,
                                            kwargs ? kwargs : Py_None, NULL);
    }
    PyObject *res = CROSS(PyObject_Call(self->method, args, NULL));
    if (res == NULL) {
        return raise_scrubbed();
    }
    if (is_plain(res)) {
        return res;
    }
    if (self->cache != NULL) {
        return wrap_steal(res, self->cap, self->cache, 0);
    }
    PyObject *wrapped = PyObject_CallFunctionObjArgs(hook_result, res, self->cap, NULL);
    Py_DECREF(res);
    return wrapped;
}

static PyObject *
method_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    MethodProxyObject *self = (MethodProxyObject *)callable;
    if (hook_call == NULL || hook_result == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ipycap membrane is not initialised");
        return NULL;
    }
    int is_revoked = cap_revoked(self->cap);
    if (is_revoked < 0) {
        return NULL;
    }
    if (is_revoked) {
        /* membrane._call_method refuses it (the recorded RevokedError) */
        PyObject *tuple = tuple_from_array(args, PyVectorcall_NARGS(nargsf));
        if (tuple == NULL) {
            return NULL;
        }
        PyObject *res = PyObject_CallFunctionObjArgs(hook_call, self->method, self->cap, tuple,
                                                     Py_None, NULL);
        Py_DECREF(tuple);
        return res;
    }
    return call_vector(self->method, self->cap, self->cache, args, nargsf, kwnames);
}

static int
method_traverse(MethodProxyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->method);
    Py_VISIT(self->cap);
    return 0; /* the cache holds no references (borrowed slots) */
}

static int
method_clear(MethodProxyObject *self)
{
    Py_CLEAR(self->method);
    Py_CLEAR(self->cap);
    Py_CLEAR(self->cache);
    return 0;
}

static void
method_dealloc(MethodProxyObject *self)
{
    PyObject_GC_UnTrack(self);
    method_clear(self);
    PyObject_GC_Del(self);
}

static PyObject *
method_repr(MethodProxyObject *self)
{
    return PyUnicode_FromString("<proxied method>");
}

static PyTypeObject MethodProxy_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ipycap.engine._speedups.MethodProxy",
    .tp_basicsize = sizeof(MethodProxyObject),
    .tp_dealloc = (destructor)method_dealloc,
    .tp_repr = (reprfunc)method_repr,
    .tp_call = (ternaryfunc)method_call,
    .tp_vectorcall_offset = offsetof(MethodProxyObject, vectorcall),
    .tp_getattro = PyObject_GenericGetAttr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "A method of a protected object, as a capsule sees it.",
    .tp_traverse = (traverseproc)method_traverse,
    .tp_clear = (inquiry)method_clear,
    .tp_new = NULL,
};


/* Module views: names a view has decided live in its instance dict, found here by the
 * generic lookup at C speed; only a miss calls back into ipycap.engine.modules, which decides
 * (and refuses private names, submodules the capsule may not see, ...). */
static PyObject *
view_getattro(PyObject *self, PyObject *name)
{
    PyObject *res = PyObject_GenericGetAttr(self, name);
    if (res != NULL || !PyErr_ExceptionMatches(PyExc_AttributeError)) {
        return res;
    }
    if (hook_view_miss == NULL) {
        return NULL;
    }
    PyErr_Clear();
    return PyObject_CallFunctionObjArgs(hook_view_miss, self, name, NULL);
}

static PyTypeObject ViewBase_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ipycap.engine._speedups.ViewBase",
    .tp_basicsize = sizeof(PyObject),
    .tp_getattro = view_getattro,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Base of ipycap's module views (attribute lookup in C).",
    .tp_new = PyType_GenericNew,
};

static PyObject *
set_view_hook(PyObject *module, PyObject *hook)
{
    if (hook_view_miss != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the view hook is set once per process");
        return NULL;
    }
    hook_view_miss = Py_NewRef(hook);
    Py_RETURN_NONE;
}

static ProxyBaseObject *
check_proxy(PyObject *obj)
{
    if (!PyObject_TypeCheck(obj, &ProxyBase_Type)) {
        PyErr_SetString(PyExc_TypeError, "not an ipycap proxy");
        return NULL;
    }
    return (ProxyBaseObject *)obj;
}

static PyObject *
new_proxy(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "new_proxy(cls, target, cap, writable)");
        return NULL;
    }
    PyObject *cls = args[0];
    if (!PyType_Check(cls) || cls == (PyObject *)&ProxyBase_Type ||
        !PyType_IsSubtype((PyTypeObject *)cls, &ProxyBase_Type) ||
        !(((PyTypeObject *)cls)->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
        PyErr_SetString(PyExc_TypeError, "cls must be a Python subclass of ProxyBase");
        return NULL;
    }
    int writable = PyObject_IsTrue(args[3]);
    if (writable < 0) {
        return NULL;
    }
    PyTypeObject *tp = (PyTypeObject *)cls;
    ProxyBaseObject *self = (ProxyBaseObject *)tp->tp_alloc(tp, 0);
    if (self == NULL) {
        return NULL;
    }
    Py_INCREF(args[1]);
    self->target = args[1];
    Py_INCREF(args[2]);
    self->cap = args[2];
    self->writable = writable;
    self->vectorcall = proxy_vectorcall;
    return (PyObject *)self;
}

static PyObject *
proxy_target(PyObject *module, PyObject *obj)
{
    ProxyBaseObject *p = check_proxy(obj);
    if (p == NULL) {
        return NULL;
    }
    return Py_NewRef(p->target);
}

static PyObject *
proxy_cap(PyObject *module, PyObject *obj)
{
    ProxyBaseObject *p = check_proxy(obj);
    if (p == NULL) {
        return NULL;
    }
    return Py_NewRef(p->cap);
}

static PyObject *
proxy_writable(PyObject *module, PyObject *obj)
{
    ProxyBaseObject *p = check_proxy(obj);
    if (p == NULL) {
        return NULL;
    }
    return PyBool_FromLong(p->writable);
}

static PyObject *
set_hooks(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "set_hooks(slow, finish, error, call, result)");
        return NULL;
    }
    if (hook_slow != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "hooks are set once per process");
        return NULL;
    }
    hook_slow = Py_NewRef(args[0]);
    hook_finish = Py_NewRef(args[1]);
    hook_error = Py_NewRef(args[2]);
    hook_call = Py_NewRef(args[3]);
    hook_result = Py_NewRef(args[4]);
    Py_RETURN_NONE;
}

/* set_judge_hook(judge, iterating): membrane.crossing._judge_result and derived.ITERATING,
 * once per process. */
static PyObject *
set_judge_hook(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyCallable_Check(args[0]) || !PyDict_CheckExact(args[1]) ||
        hook_judge != NULL) {
        PyErr_SetString(PyExc_TypeError, "set_judge_hook(judge, iterating), once per process");
        return NULL;
    }
    hook_judge = Py_NewRef(args[0]);
    judge_iterating = Py_NewRef(args[1]);
    Py_RETURN_NONE;
}

static PyObject *
set_readonly_types(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyDict_CheckExact(args[0]) || !PyCallable_Check(args[1]) ||
        readonly_fast_types != NULL) {
        PyErr_SetString(PyExc_TypeError,
                        "set_readonly_types(fast_types_dict, getitem), once per process");
        return NULL;
    }
    readonly_fast_types = Py_NewRef(args[0]);
    readonly_getitem = Py_NewRef(args[1]);
    Py_RETURN_NONE;
}

/* Make a class immutable (CPython's own flag for static types): assigning or deleting its
 * attributes then raises TypeError.  Used on standard-library classes before a capsule gets
 * them, so capsule code cannot monkeypatch what trusted code shares (plain attribute stores
 * on classes raise no audit event on 3.11). */
static PyObject *
freeze_type(PyObject *module, PyObject *obj)
{
    if (!PyType_Check(obj)) {
        PyErr_SetString(PyExc_TypeError, "freeze_type() takes a class");
        return NULL;
    }
    PyTypeObject *tp = (PyTypeObject *)obj;
    if (!(tp->tp_flags & Py_TPFLAGS_IMMUTABLETYPE)) {
        tp->tp_flags |= Py_TPFLAGS_IMMUTABLETYPE;
        PyType_Modified(tp);
    }
    Py_RETURN_NONE;
}

/* A proxied bound method for the membrane (ipycap.engine.membrane.crossing._bind): the
 * method and capability live in C fields, so no Python closure cell holds them where a
 * library's getattr (pandas eval, typing) could read them. */
static PyObject *
new_method_proxy(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 && nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "new_method_proxy(method, cap[, cache])");
        return NULL;
    }
    PyObject *cache = nargs == 3 && args[2] != Py_None ? args[2] : NULL;
    if (cache != NULL && !Py_IS_TYPE(cache, &IdentityCache_Type)) {
        PyErr_SetString(PyExc_TypeError, "cache must be an IdentityCache");
        return NULL;
    }
    MethodProxyObject *mp = PyObject_GC_New(MethodProxyObject, &MethodProxy_Type);
    if (mp == NULL) {
        return NULL;
    }
    mp->method = Py_NewRef(args[0]);
    mp->cap = Py_NewRef(args[1]);
    mp->cache = Py_XNewRef(cache);
    mp->vectorcall = method_vectorcall;
    PyObject_GC_Track(mp);
    return (PyObject *)mp;
}

static PyObject *
new_cache(PyObject *module, PyObject *unused)
{
    IdentityCacheObject *c = PyObject_New(IdentityCacheObject, &IdentityCache_Type);
    if (c == NULL) {
        return NULL;
    }
    c->slots = NULL;
    c->mask = -1;
    c->used = 0;
    c->version = 0;
    return (PyObject *)c;
}

/* cache_get(cache, value, writable) -> the live proxy of ``value`` or None. */
static PyObject *
cache_get(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !Py_IS_TYPE(args[0], &IdentityCache_Type)) {
        PyErr_SetString(PyExc_TypeError, "cache_get(cache, value, writable)");
        return NULL;
    }
    int writable = PyObject_IsTrue(args[2]);
    if (writable < 0) {
        return NULL;
    }
    ProxyBaseObject *p = cache_lookup((IdentityCacheObject *)args[0], args[1], writable);
    if (p == NULL) {
        Py_RETURN_NONE;
    }
    return Py_NewRef((PyObject *)p);
}

/* cache_new(cache, value, cap, writable, store) -> a new Proxy (stored in the cache when
 * ``store``); the caller has already looked the cache up and made its checks. */
static PyObject *
cache_new(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5 || !Py_IS_TYPE(args[0], &IdentityCache_Type) || proxy_class == NULL) {
        PyErr_SetString(PyExc_TypeError, "cache_new(cache, value, cap, writable, store)");
        return NULL;
    }
    int writable = PyObject_IsTrue(args[3]);
    int store = PyObject_IsTrue(args[4]);
    if (writable < 0 || store < 0) {
        return NULL;
    }
    IdentityCacheObject *c = (IdentityCacheObject *)args[0];
    ProxyBaseObject *p = alloc_proxy(args[1], args[2], args[0], writable);
    if (p == NULL) {
        return NULL;
    }
    if (store && cache_lookup(c, args[1], writable) == NULL && cache_insert(c, p) < 0) {
        Py_DECREF(p);
        return NULL;
    }
    return (PyObject *)p;
}

static PyObject *
set_protocol_hooks(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 8) {
        PyErr_SetString(PyExc_TypeError,
                        "set_protocol_hooks(wrap, export, revoked, Proxy, ReverseProxy, "
                        "mutating, fast_types, Capability)");
        return NULL;
    }
    if (proxy_class != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "hooks are set once per process");
        return NULL;
    }
    PyObject *cls = args[3];
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, &ProxyBase_Type) ||
        !PyDict_CheckExact(args[5]) || !PyTuple_CheckExact(args[6])) {
        PyErr_SetString(PyExc_TypeError, "set_protocol_hooks: bad arguments");
        return NULL;
    }
    Py_ssize_t n = PyTuple_GET_SIZE(args[6]);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *t = PyTuple_GET_ITEM(args[6], i);
        /* only static builtin classes: their instances never pass the withheld check's
         * isinstance or come from ipycap's modules */
        if (!PyType_Check(t) || (((PyTypeObject *)t)->tp_flags & Py_TPFLAGS_HEAPTYPE) ||
            strchr(((PyTypeObject *)t)->tp_name, '.') != NULL) {
            PyErr_SetString(PyExc_TypeError, "fast types must be static builtin classes");
            return NULL;
        }
    }
    if (!PyType_Check(args[7])) {
        PyErr_SetString(PyExc_TypeError, "Capability must be a class");
        return NULL;
    }
    PyTypeObject *ct = (PyTypeObject *)args[7];
    PyObject *descr = _PyType_Lookup(ct, str_revoked); /* assigns a version tag */
    if (descr != NULL && Py_IS_TYPE(descr, &PyMemberDescr_Type) &&
        ((PyMemberDescrObject *)descr)->d_member->type == T_OBJECT_EX &&
        !(((PyMemberDescrObject *)descr)->d_member->flags & READONLY) &&
        (ct->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG)) {
        cap_type = (PyTypeObject *)Py_NewRef(args[7]);
        cap_revoked_offset = ((PyMemberDescrObject *)descr)->d_member->offset;
        cap_version = ct->tp_version_tag;
    }
    hook_wrap = Py_NewRef(args[0]);
    hook_export = Py_NewRef(args[1]);
    hook_revoked = Py_NewRef(args[2]);
    reverse_class = Py_NewRef(args[4]);
    mutating = Py_NewRef(args[5]);
    fast_types = Py_NewRef(args[6]);
    /* CPython 3.11 does not pass the vectorcall flag on to heap subclasses: Proxy overrides
     * no __call__, so its calls are ProxyBase's, with or without the argument tuple. */
    PyTypeObject *ptp = (PyTypeObject *)cls;
    if (ptp->tp_call == (ternaryfunc)proxy_call) {
        ptp->tp_vectorcall_offset = offsetof(ProxyBaseObject, vectorcall);
        ptp->tp_flags |= Py_TPFLAGS_HAVE_VECTORCALL;
    }
    proxy_class = Py_NewRef(cls);
    Py_RETURN_NONE;
}

static PyObject *
set_audit(PyObject *module, PyObject *on)
{
    int v = PyObject_IsTrue(on);
    if (v < 0) {
        return NULL;
    }
    audit_mode = v;
    audit_depth = 0;
    Py_RETURN_NONE;
}

/* The capsule frame whose C slot is calling into a target on this thread now, or None. */
static PyObject *
crossing_frame(PyObject *module, PyObject *unused)
{
    if (audit_depth <= 0 || audit_depth > AUDIT_STACK || audit_frames[audit_depth - 1] == NULL) {
        Py_RETURN_NONE;
    }
    return Py_NewRef(audit_frames[audit_depth - 1]);
}

/* -- lines of a revocable file (ipycap.engine.handles) ------------------------------------
 * ``for line in f`` over a capsule's file: the iterator RevocableFile.__iter__ gives.  Every
 * line first checks that one of the capabilities that opened the file is still active (as
 * RevocableFile.__next__ does); when none is, ``refuse('read')`` (the file's own check,
 * which closes it and raises) decides.  No attribute of it is readable but its class's. */
typedef struct {
    PyObject_HEAD
    PyObject *file;   /* the raw io object */
    PyObject *caps;   /* tuple of the read capabilities */
    PyObject *refuse; /* RevocableFile.__ipycap_check__, bound */
} CheckedLinesObject;

static PyObject *
lines_next(CheckedLinesObject *self)
{
    Py_ssize_t n = PyTuple_GET_SIZE(self->caps);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *cap = PyTuple_GET_ITEM(self->caps, i);
        int revoked = cap_live_fast(cap) ? 0 : cap_revoked(cap);
        if (revoked < 0) {
            return NULL;
        }
        if (!revoked) {
            iternextfunc next = Py_TYPE(self->file)->tp_iternext;
            if (next == NULL) {
                PyErr_SetString(PyExc_TypeError, "a capsule's file is not iterable");
                return NULL;
            }
            return CROSS(next(self->file));
        }
    }
    PyObject *r = PyObject_CallFunction(self->refuse, "s", "read");
    if (r != NULL) {
        Py_DECREF(r);
        PyErr_SetString(PyExc_RuntimeError, "ipycap: a revoked file read not refused");
    }
    return NULL;
}

static int
lines_traverse(CheckedLinesObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->file);
    Py_VISIT(self->caps);
    Py_VISIT(self->refuse);
    return 0;
}

static int
lines_clear(CheckedLinesObject *self)
{
    Py_CLEAR(self->file);
    Py_CLEAR(self->caps);
    Py_CLEAR(self->refuse);
    return 0;
}

static void
lines_dealloc(CheckedLinesObject *self)
{
    PyObject_GC_UnTrack(self);
    lines_clear(self);
    PyObject_GC_Del(self);
}

static PyTypeObject CheckedLines_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ipycap.engine._speedups.CheckedLines",
    .tp_basicsize = sizeof(CheckedLinesObject),
    .tp_dealloc = (destructor)lines_dealloc,
    .tp_getattro = PyObject_GenericGetAttr,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)lines_next,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The lines of a capsule's file, each read while its grant is active.",
    .tp_traverse = (traverseproc)lines_traverse,
    .tp_clear = (inquiry)lines_clear,
    .tp_new = NULL,
};

/* checked_lines(file, caps: tuple, refuse) -> CheckedLines */
static PyObject *
checked_lines(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3 || !PyTuple_CheckExact(args[1]) || !PyCallable_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "checked_lines(file, caps: tuple, refuse)");
        return NULL;
    }
    CheckedLinesObject *it = PyObject_GC_New(CheckedLinesObject, &CheckedLines_Type);
    if (it == NULL) {
        return NULL;
    }
    it->file = Py_NewRef(args[0]);
    it->caps = Py_NewRef(args[1]);
    it->refuse = Py_NewRef(args[2]);
    PyObject_GC_Track(it);
    return (PyObject *)it;
}

/* method_cache_clear([phase, info]): drops every entry of the method cache; as a gc.callbacks
 * entry, at the start of each collection ("start"), so a cycle through a cached method
 * (a target holding its own proxy) is collected as without the cache. */
static PyObject *
method_cache_clear(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs > 0 && !(PyUnicode_Check(args[0]) && PyUnicode_CompareWithASCIIString(args[0], "start") == 0)) {
        Py_RETURN_NONE;
    }
    for (size_t i = 0; i < MCACHE_SIZE; i++) {
        PyObject *n = mcache[i].name, *m = mcache[i].method;
        mcache[i].owner = NULL;
        mcache[i].name = NULL;
        mcache[i].method = NULL;
        Py_XDECREF(n);
        Py_XDECREF(m);
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"checked_lines", (PyCFunction)(void (*)(void))checked_lines, METH_FASTCALL, NULL},
    {"method_cache_clear", (PyCFunction)(void (*)(void))method_cache_clear, METH_FASTCALL, NULL},
    {"set_audit", set_audit, METH_O, NULL},
    {"crossing_frame", crossing_frame, METH_NOARGS, NULL},
    {"new_cache", new_cache, METH_NOARGS, NULL},
    {"cache_get", (PyCFunction)(void (*)(void))cache_get, METH_FASTCALL, NULL},
    {"cache_new", (PyCFunction)(void (*)(void))cache_new, METH_FASTCALL, NULL},
    {"set_protocol_hooks", (PyCFunction)(void (*)(void))set_protocol_hooks, METH_FASTCALL, NULL},
    {"freeze_type", freeze_type, METH_O, NULL},
    {"new_method_proxy", (PyCFunction)(void (*)(void))new_method_proxy, METH_FASTCALL, NULL},
    {"set_view_hook", set_view_hook, METH_O, NULL},
    {"new_proxy", (PyCFunction)(void (*)(void))new_proxy, METH_FASTCALL, NULL},
    {"proxy_target", proxy_target, METH_O, NULL},
    {"proxy_cap", proxy_cap, METH_O, NULL},
    {"proxy_writable", proxy_writable, METH_O, NULL},
    {"set_readonly_types", (PyCFunction)(void (*)(void))set_readonly_types, METH_FASTCALL, NULL},
    {"set_hooks", (PyCFunction)(void (*)(void))set_hooks, METH_FASTCALL, NULL},
    {"set_judge_hook", (PyCFunction)(void (*)(void))set_judge_hook, METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "ipycap.engine._speedups", NULL, -1, methods,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    if (PyType_Ready(&ProxyBase_Type) < 0 || PyType_Ready(&MethodProxy_Type) < 0 ||
        PyType_Ready(&ViewBase_Type) < 0) {
        return NULL;
    }
    if (PyType_Ready(&IdentityCache_Type) < 0 || PyType_Ready(&CheckedLines_Type) < 0) {
        return NULL;
    }
    str_revoked = PyUnicode_InternFromString("revoked");
    str_class = PyUnicode_InternFromString("__class__");
    if (str_revoked == NULL || str_class == NULL) {
        return NULL;
    }
    static const char *cmp[6] = {"__lt__", "__le__", "__eq__", "__ne__", "__gt__", "__ge__"};
    for (int i = 0; i < 6; i++) {
        compare_names[i] = PyUnicode_InternFromString(cmp[i]);
        if (compare_names[i] == NULL) {
            return NULL;
        }
    }
    PyObject *m = PyModule_Create(&moduledef);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&ProxyBase_Type);
    if (PyModule_AddObject(m, "ProxyBase", (PyObject *)&ProxyBase_Type) < 0) {
        Py_DECREF(&ProxyBase_Type);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&ViewBase_Type);
    if (PyModule_AddObject(m, "ViewBase", (PyObject *)&ViewBase_Type) < 0) {
        Py_DECREF(&ViewBase_Type);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&MethodProxy_Type);
    if (PyModule_AddObject(m, "MethodProxy", (PyObject *)&MethodProxy_Type) < 0) {
        Py_DECREF(&MethodProxy_Type);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&CheckedLines_Type);
    if (PyModule_AddObject(m, "CheckedLines", (PyObject *)&CheckedLines_Type) < 0) {
        Py_DECREF(&CheckedLines_Type);
        Py_DECREF(m);
        return NULL;
    }
    /* For _fastbuiltins (set up by trusted code only): where a ProxyBase keeps its target. */
    if (PyModule_AddIntConstant(m, "TARGET_OFFSET", (long)offsetof(ProxyBaseObject, target)) <
        0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
