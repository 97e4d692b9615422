/* Fast paths of the capsule builtins (ipycap/engine/builtins.py, guard.py).
 *
 * Every function here decides only the common, unambiguous case itself and hands every
 * other call, unchanged, to the Python implementation it stands in front of (the "slow"
 * function given to setup()).  Nothing here refuses: a refusal, a proxy, a class that would
 * need freezing, a name the guard's tables route elsewhere -- all go to Python.  The tables
 * are the guard's own live objects (rules.PROTOCOL, rules.LIBRARY_ATTRS, OWN_TYPES, ...),
 * read at every call, so a change to them counts at once.
 *
 * The functions are created with no __self__ (PyCFunction_NewEx(def, NULL, NULL)): a capsule
 * that reads isinstance.__self__ gets None, never this module.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <structmember.h>
#include <time.h>

/* Set once by setup(); owned references for the life of the process. */
static PyObject *S = NULL;      /* the settings dict given to setup() */
static PyObject *capsule_builtins;   /* guard._CAPSULE_BUILTINS: hash(dict) -> (dict, ctx) */
static PyObject *epoch_state;   /* epoch.STATE: [n] */
static PyTypeObject *proxy_type;
static PyTypeObject *view_type;
static PyObject *own_types;     /* OWN_TYPES._refs: hash(cls) -> weakref */
static PyObject *tables_version; /* guard.TABLES_VERSION: [n], changed with either table */
static PyObject *proxy_types;   /* PROXY_TYPES._entries: hash(cls) -> (cls, rule) */
static PyObject *protocol, *frame_attrs, *format_attrs, *exception_attrs, *library_attrs;
static PyObject *never, *special, *own_only, *descriptive, *class_names;
static PyObject *slow_import, *slow_isinstance, *slow_issubclass, *slow_type;
static PyObject *slow_getattr[2], *slow_hasattr[2], *slow_hook, *slow_vars, *share_class;
static PyObject *format_fns[2];  /* guarded_format, guarded_format_map (proxy mode) */
static PyObject *template_attrs_cache; /* guard.TEMPLATE_ATTRS: template -> attribute names */
static PyObject *capsule_type;   /* the capsule's 'type' object (set by set_type) */
static int can_freeze;           /* _speedups.freeze_type is there (share_class freezes) */

static PyObject *s_class;
static PyObject *s_dict_name, *s_format_name, *s_format_map_name, *s_ipycap_prefix;
static PyObject *str_format, *str_format_map;

/* -- helpers ---------------------------------------------------------------------------- */

static int
contains(PyObject *container, PyObject *key)
{
    if (PyDict_Check(container)) {
        return PyDict_Contains(container, key);
    }
    return PySet_Contains(container, key);
}

/* Whether an identity table (OWN_TYPES._refs / PROXY_TYPES._entries) has ``cls`` by its
 * address hash; ``weak``: the value is a weakref that must still point at cls, else an
 * entry tuple whose first item must be cls. */
static int
in_table(PyObject *table, PyObject *cls, int weak)
{
    PyObject *key = PyLong_FromSsize_t(_Py_HashPointer(cls));
    if (key == NULL) {
        return -1;
    }
    PyObject *v = PyDict_GetItemWithError(table, key);
    Py_DECREF(key);
    if (v == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    if (weak) {
        return PyWeakref_Check(v) && PyWeakref_GET_OBJECT(v) == cls;
    }
    return PyTuple_Check(v) && PyTuple_GET_SIZE(v) > 0 && PyTuple_GET_ITEM(v, 0) == cls;
}

/* Whether guard.share_class(cls) would do nothing: no class of its MRO is a mutable heap
 * class other than the capsule's own (share_class freezes only such classes). */
static int
share_is_noop(PyObject *obj)
{
    if (!can_freeze) {
        return 1;
    }
    if (!PyType_Check(obj)) {
        return 0;
    }
    PyObject *mro = ((PyTypeObject *)obj)->tp_mro;
    if (mro == NULL || !PyTuple_Check(mro)) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(mro); i++) {
        PyTypeObject *b = (PyTypeObject *)PyTuple_GET_ITEM(mro, i);
        unsigned long f = b->tp_flags;
        if (!(f & Py_TPFLAGS_HEAPTYPE) || (f & Py_TPFLAGS_IMMUTABLETYPE)) {
            continue;
        }
        int own = in_table(own_types, (PyObject *)b, 1);
        if (own <= 0) {
            if (own < 0) {
                PyErr_Clear();
            }
            return 0;
        }
    }
    return 1;
}

/* What the identity tables and share_class say of one class, cached per class: valid
 * while its version tag (which changes with the class, its bases and its MRO -- a freeze
 * included: PyType_Modified) and TABLES_VERSION are unchanged. */
enum { T_PROXY = 1, T_OWN = 2, T_SHARE_NOOP = 4 };
#define TCACHE_SIZE 512
static struct {
    PyTypeObject *tp;
    unsigned int tag;
    Py_ssize_t tver;
    int flags;
} tcache[TCACHE_SIZE];

/* TABLES_VERSION[0] as a number; the int object met last is kept (a strong reference, so
 * its address is never another int's) with its value, to skip the conversion. */
static PyObject *tver_obj = NULL;
static Py_ssize_t tver_val = 0;

static inline Py_ssize_t
tables_ver(void)
{
    PyObject *v = PyList_GET_ITEM(tables_version, 0);
    if (v == tver_obj) {
        return tver_val;
    }
    Py_ssize_t n = PyLong_AsSsize_t(v);
    if (n == -1 && PyErr_Occurred()) {
        return -1;
    }
    Py_XSETREF(tver_obj, Py_NewRef(v));
    tver_val = n;
    return n;
}

static int
type_info(PyTypeObject *tp)
{
    Py_ssize_t tver = tables_ver();
    if (tver == -1 && PyErr_Occurred()) {
        return -1;
    }
    size_t slot = ((size_t)tp >> 4) % TCACHE_SIZE;
    int valid = (tp->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG) != 0;
    if (valid && tcache[slot].tp == tp && tcache[slot].tag == tp->tp_version_tag &&
        tcache[slot].tver == tver) {
        return tcache[slot].flags;
    }
    int flags = 0, c;
    if ((c = in_table(proxy_types, (PyObject *)tp, 0)) < 0) {
        return -1;
    }
    flags |= c ? T_PROXY : 0;
    if ((c = in_table(own_types, (PyObject *)tp, 1)) < 0) {
        return -1;
    }
    flags |= c ? T_OWN : 0;
    flags |= share_is_noop((PyObject *)tp) ? T_SHARE_NOOP : 0;
    if (valid) {
        tcache[slot].tp = tp;
        tcache[slot].tag = tp->tp_version_tag;
        tcache[slot].tver = tver;
        tcache[slot].flags = flags;
    }
    return flags;
}

/* share_class(value), returning a new reference to value. */
static PyObject *
shared(PyObject *value)
{
    if (PyType_Check(value)) {
        int f = type_info((PyTypeObject *)value);
        if (f < 0) {
            PyErr_Clear();
        }
        else if (f & T_SHARE_NOOP) {
            return value;
        }
    }
    PyObject *r = PyObject_CallOneArg(share_class, value);
    if (r == NULL) {
        Py_DECREF(value);
        return NULL;
    }
    Py_DECREF(r);
    return value;
}

static PyObject *
call_slow(PyObject *slow, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    return PyObject_Vectorcall(slow, args, nargsf, kwnames);
}

/* What the guard's immutable tables (frozensets) say of a name, computed once per name:
 * rules.LIBRARY_ATTRS (a dict that grows as library profiles load) is read at every call. */
enum {
    N_FORMAT = 1 << 0,     /* rules.FORMAT_ATTRS */
    N_EXC = 1 << 1,        /* rules.EXCEPTION_ATTRS */
    N_NEVER = 1 << 2,      /* classify() == 'never' (NEVER, or '__ipycap...') */
    N_SPECIAL = 1 << 3,    /* classify() == 'special' */
    N_OWN = 1 << 4,        /* classify() == 'own' */
    N_ALLOW = 1 << 5,      /* classify() == 'allow' */
    N_CLASSNAME = 1 << 6,  /* guard._CLASS_NAMES */
    N_RISKY = 1 << 7,      /* is_risky() but for LIBRARY_ATTRS */
    N_RISKY_REXEC = 1 << 8, /* is_risky_rexec() but for LIBRARY_ATTRS */
    N_LIB = 1 << 9          /* in rules.LIBRARY_ATTRS (while its version is lib_version) */
};
static uint64_t lib_version; /* rules.LIBRARY_ATTRS's ma_version_tag the flags were made at */
static PyObject *name_cache; /* exact str -> int (the flags above) */
#define NAME_CACHE_MAX 4096

static int is_risky_static(PyObject *name, int mode);

/* The flags of the names met last, by identity (the names of code constants are the same
 * objects at every call): a strong reference to each, so an address is never reused. */
#define NSLOTS 256
static struct {
    PyObject *name;
    long flags;
} nslot[NSLOTS];

static long name_flags_slow(PyObject *name);

/* The flags of an exact str, or -1 with an error set. */
static long
name_flags(PyObject *name)
{
    uint64_t v = ((PyDictObject *)library_attrs)->ma_version_tag;
    if (v != lib_version) {
        /* LIBRARY_ATTRS changed (a library profile loaded): every flag is made again */
        for (int k = 0; k < NSLOTS; k++) {
            Py_CLEAR(nslot[k].name);
        }
        PyDict_Clear(name_cache);
        lib_version = v;
    }
    size_t i = ((size_t)name >> 4) % NSLOTS;
    if (nslot[i].name == name) {
        return nslot[i].flags;
    }
    long f = name_flags_slow(name);
    if (f >= 0) {
        Py_XSETREF(nslot[i].name, Py_NewRef(name));
        nslot[i].flags = f;
    }
    return f;
}

static long
name_flags_slow(PyObject *name)
{
    PyObject *v = PyDict_GetItemWithError(name_cache, name);
    if (v != NULL) {
        return PyLong_AsLong(v);
    }
    if (PyErr_Occurred()) {
        return -1;
    }
    long f = 0;
    int c;
#define FLAG(table, bit)                 \
    if ((c = contains(table, name)) < 0) \
        return -1;                       \
    if (c)                               \
        f |= bit;
    FLAG(format_attrs, N_FORMAT);
    FLAG(exception_attrs, N_EXC);
    FLAG(class_names, N_CLASSNAME);
    /* rules.classify, in its order */
    if ((c = contains(never, name)) < 0) {
        return -1;
    }
    if (c || PyUnicode_Tailmatch(name, s_ipycap_prefix, 0, PY_SSIZE_T_MAX, -1) == 1) {
        f |= N_NEVER;
    }
    else {
        FLAG(special, N_SPECIAL)
        else {
            FLAG(own_only, N_OWN)
            else {
                FLAG(protocol, N_ALLOW)
                else {
                    FLAG(descriptive, N_ALLOW);
                }
            }
        }
    }
#undef FLAG
    if ((c = is_risky_static(name, 0)) < 0) {
        return -1;
    }
    if (c) {
        f |= N_RISKY;
    }
    if ((c = is_risky_static(name, 1)) < 0) {
        return -1;
    }
    if (c) {
        f |= N_RISKY_REXEC;
    }
    if ((c = PyDict_Contains(library_attrs, name)) < 0) {
        return -1;
    }
    if (c) {
        f |= N_LIB;
    }
    if (PyDict_GET_SIZE(name_cache) < NAME_CACHE_MAX) {
        PyObject *fv = PyLong_FromLong(f);
        if (fv == NULL || PyDict_SetItem(name_cache, name, fv) < 0) {
            Py_XDECREF(fv);
            return -1;
        }
        Py_DECREF(fv);
    }
    return f;
}

/* fn(first, *args, **kwnames) for a vectorcall's arguments. */
static PyObject *
call_prepended(PyObject *fn, PyObject *first, PyObject *const *args, size_t nargsf,
               PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    Py_ssize_t total = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0);
    PyObject *small[8];
    PyObject **stack = small;
    if (total + 1 > 8) {
        stack = PyMem_Malloc((total + 1) * sizeof(PyObject *));
        if (stack == NULL) {
            return PyErr_NoMemory();
        }
    }
    stack[0] = first;
    for (Py_ssize_t i = 0; i < total; i++) {
        stack[i + 1] = args[i];
    }
    PyObject *r = PyObject_Vectorcall(fn, stack, nargs + 1, kwnames);
    if (stack != small) {
        PyMem_Free(stack);
    }
    return r;
}

/* rules.is_risky (mode 0, proxy) / rules.is_risky_rexec (mode 1), on an exact str. */
static int
is_risky(PyObject *name, int mode)
{
    long f = name_flags(name);
    if (f < 0) {
        return -1;
    }
    return (f & ((mode ? N_RISKY_REXEC : N_RISKY) | N_LIB)) != 0;
}

/* is_risky without rules.LIBRARY_ATTRS (the part that never changes). */
static int
is_risky_static(PyObject *name, int mode)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(name);
    int kind = PyUnicode_KIND(name);
    const void *d = PyUnicode_DATA(name);
    if (mode == 0) {
        /* name[:2] == '__' and name[-2:] == '__' (overlapping for 2 and 3 characters) */
        if (n >= 2 && PyUnicode_READ(kind, d, 0) == '_' && PyUnicode_READ(kind, d, 1) == '_' &&
            PyUnicode_READ(kind, d, n - 1) == '_' && PyUnicode_READ(kind, d, n - 2) == '_') {
            int p = contains(protocol, name);
            return p < 0 ? -1 : !p;
        }
    }
    else if (n >= 1 && PyUnicode_READ(kind, d, 0) == '_') {
        int p = contains(protocol, name);
        return p < 0 ? -1 : !p;
    }
    PyObject *tables[3] = {frame_attrs, format_attrs, exception_attrs};
    for (int i = 0; i < 3; i++) {
        int c = contains(tables[i], name);
        if (c != 0) {
            return c;
        }
    }
    return 0;
}

/* The entry (builtins dict, context, import cache) of the innermost Python frame's builtins,
 * or NULL (borrowed; no error set) when that frame is not capsule code. */
static PyObject *
frame_entry(void)
{
    PyObject *b = PyEval_GetBuiltins();
    if (b == NULL) {
        return NULL;
    }
    PyObject *key = PyLong_FromSsize_t(_Py_HashPointer(b));
    if (key == NULL) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *entry = PyDict_GetItemWithError(capsule_builtins, key);
    Py_DECREF(key);
    if (entry == NULL || !PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) < 2 ||
        PyTuple_GET_ITEM(entry, 0) != b) {
        PyErr_Clear();
        return NULL;
    }
    return entry;
}

/* -- __import__ ----------------------------------------------------------------------- */

/* registry.Capability (exact) and the offsets of its slots 'revoked', 'uses', 'last_use'. */
static PyTypeObject *capability_type;
static Py_ssize_t off_revoked, off_uses, off_last_use;
#define SLOT(obj, off) ((PyObject **)((char *)(obj) + (off)))

static int
slot_offset(PyTypeObject *tp, const char *name, Py_ssize_t *off)
{
    PyObject *d = PyDict_GetItemString(tp->tp_dict, name);
    if (d == NULL || !PyObject_TypeCheck(d, &PyMemberDescr_Type)) {
        PyErr_Format(PyExc_TypeError, "_fastbuiltins: Capability.%s is not a slot", name);
        return -1;
    }
    PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
    if (m->type != T_OBJECT_EX) {
        PyErr_Format(PyExc_TypeError, "_fastbuiltins: Capability.%s is not an object slot", name);
        return -1;
    }
    *off = m->offset;
    return 0;
}

/* The same import again: the entry the Python __import__ stored, (epoch, len(sys.modules),
 * module, view, cap, Registry.counter(cap, name)), used only while every part of it still
 * holds; the use is counted as Registry.count_use counts it (the first after an event is
 * Python's). */
static PyObject *
import_hit(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    /* the import statement's call: (name, globals, locals, fromlist, level) */
    if (kwnames != NULL || nargs != 5 || !PyUnicode_CheckExact(args[0])) {
        return NULL;
    }
    PyObject *fromlist = args[3];
    if (!(PyLong_CheckExact(args[4]) && PyLong_AsLong(args[4]) == 0)) {
        PyErr_Clear();
        return NULL;
    }
    if (fromlist != Py_None && !PyTuple_CheckExact(fromlist)) {
        return NULL;
    }
    /* Only tuples of exact strs as keys: nothing capsule-defined is hashed or compared. */
    if (fromlist != Py_None) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(fromlist); i++) {
            if (!PyUnicode_CheckExact(PyTuple_GET_ITEM(fromlist, i))) {
                return NULL;
            }
        }
    }
    PyObject *entry = frame_entry();
    if (entry == NULL || PyTuple_GET_SIZE(entry) < 3) {
        return NULL;
    }
    PyObject *cache = PyTuple_GET_ITEM(entry, 2); /* the context's import_cache */
    if (!PyDict_CheckExact(cache)) {
        return NULL;
    }
    PyObject *hit;
    if (fromlist == Py_None) {
        hit = PyDict_GetItemWithError(cache, args[0]); /* 'import a.b': keyed by the name */
    }
    else {
        PyObject *key = PyTuple_Pack(2, args[0], fromlist);
        hit = key ? PyDict_GetItemWithError(cache, key) : NULL;
        Py_XDECREF(key);
    }
    if (hit == NULL || !PyTuple_CheckExact(hit) || PyTuple_GET_SIZE(hit) != 6) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *modules = PyImport_GetModuleDict();
    if (PyTuple_GET_ITEM(hit, 0) != PyList_GET_ITEM(epoch_state, 0)) {
        /* the epoch is a small int or one object per value: compare by value */
        int eq = PyObject_RichCompareBool(PyTuple_GET_ITEM(hit, 0),
                                          PyList_GET_ITEM(epoch_state, 0), Py_EQ);
        if (eq != 1) {
            PyErr_Clear();
            return NULL;
        }
    }
    if (PyLong_AsSsize_t(PyTuple_GET_ITEM(hit, 1)) != PyDict_Size(modules)) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *mod = PyDict_GetItemWithError(modules, args[0]);
    if (mod == NULL || mod != PyTuple_GET_ITEM(hit, 2)) {
        PyErr_Clear();
        return NULL;
    }
    PyObject *cap = PyTuple_GET_ITEM(hit, 4);
    if (Py_TYPE(cap) != capability_type) {
        return NULL;
    }
    if (*SLOT(cap, off_revoked) != Py_False) {
        return NULL;
    }
    /* count the use as Registry.count_use does while the counter is primed: cap.uses,
     * cap.last_use and the counter's uses not recorded yet */
    PyObject *counter = PyTuple_GET_ITEM(hit, 5);
    if (!PyList_CheckExact(counter) || PyList_GET_SIZE(counter) != 2 ||
        PyList_GET_ITEM(counter, 1) != Py_True) {
        return NULL; /* the first use since the last event: Python records it */
    }
    PyObject *uses = *SLOT(cap, off_uses);
    if (uses == NULL || !PyLong_CheckExact(uses)) {
        return NULL;
    }
    /* last_use: the wall clock, coarse (a display of when, not a measurement) */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    PyObject *one = PyLong_FromLong(1);
    PyObject *uses1 = PyNumber_Add(uses, one);
    PyObject *n1 = PyNumber_Add(PyList_GET_ITEM(counter, 0), one);
    PyObject *now = PyFloat_FromDouble((double)ts.tv_sec + ts.tv_nsec * 1e-9);
    Py_DECREF(one);
    if (uses1 == NULL || n1 == NULL || now == NULL) {
        Py_XDECREF(uses1);
        Py_XDECREF(n1);
        Py_XDECREF(now);
        return NULL; /* an error is set: raised to the caller */
    }
    Py_SETREF(*SLOT(cap, off_uses), uses1);
    Py_XSETREF(*SLOT(cap, off_last_use), now);
    PyList_SetItem(counter, 0, n1); /* steals n1 */
    return Py_NewRef(PyTuple_GET_ITEM(hit, 3));
}

static PyObject *
fast_import(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    PyObject *r = import_hit(args, nargs, kwnames);
    if (r != NULL || PyErr_Occurred()) {
        return r;
    }
    return call_slow(slow_import, args, nargsf, kwnames);
}

/* -- isinstance / issubclass ---------------------------------------------------------- */

/* Whether builtins._checks_run_no_capsule_code(classinfo) holds for a reason C can see
 * without running anything: a static class whose metaclass is exactly ``type``, or a flat
 * tuple of them (proxied classes and the capsule's type go to Python). */
static int
static_classinfo(PyObject *c)
{
    if (PyType_CheckExact(c)) {
        return !(((PyTypeObject *)c)->tp_flags & Py_TPFLAGS_HEAPTYPE);
    }
    if (!PyTuple_CheckExact(c)) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(c); i++) {
        PyObject *item = PyTuple_GET_ITEM(c, i);
        if (!PyType_CheckExact(item) || (((PyTypeObject *)item)->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
            return 0;
        }
    }
    return 1;
}

/* A proxy's target (borrowed), for builtins._isinstance's first branch: the proxy is of
 * exactly proxy_type (a ProxyBase, whose target field is at proxy_target_offset), live,
 * and its target's class is static (its __class__ is read in C, no trusted Python code
 * runs beside the capsule frame).  NULL: ask Python. */
static Py_ssize_t proxy_target_offset = -1;

static PyObject *
static_target(PyObject *obj)
{
    if (proxy_target_offset < 0 || Py_TYPE(obj) != proxy_type) {
        return NULL;
    }
    PyObject *t = *(PyObject **)((char *)obj + proxy_target_offset);
    if (t == NULL || (Py_TYPE(t)->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
        return NULL;
    }
    return t;
}

static PyObject *
fast_isinstance(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs == 2 && Py_TYPE(args[0]) == proxy_type && static_classinfo(args[1])) {
        /* isinstance(target_of(obj), classinfo), as builtins._isinstance does */
        PyObject *t = static_target(args[0]);
        if (t != NULL) {
            Py_INCREF(t);
            int r = PyObject_IsInstance(t, args[1]);
            Py_DECREF(t);
            if (r < 0) {
                return NULL;
            }
            return PyBool_FromLong(r);
        }
    }
    if (nargs == 2 && Py_TYPE(args[0]) != proxy_type) {
        int r = PyObject_IsInstance(args[0], args[1]);
        if (r < 0) {
            return NULL;
        }
        return PyBool_FromLong(r);
    }
    return call_slow(slow_isinstance, args, nargs, NULL);
}

static PyObject *
fast_issubclass(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs == 2 && Py_TYPE(args[0]) != proxy_type && args[0] != capsule_type) {
        int r = PyObject_IsSubclass(args[0], args[1]);
        if (r < 0) {
            return NULL;
        }
        return PyBool_FromLong(r);
    }
    return call_slow(slow_issubclass, args, nargs, NULL);
}

/* -- type ------------------------------------------------------------------------------- */

/* The base of builtins._CapsuleType: type(x) of anything but a proxy or a module view, whose
 * class share_class would leave as it is, is answered here; the rest by the Python class's
 * _call (which does everything, the fast case included). */
static PyObject *
capsule_type_call(PyObject *self, PyObject *args, PyObject *kwargs)
{
    if (PyTuple_GET_SIZE(args) == 1 && (kwargs == NULL || PyDict_GET_SIZE(kwargs) == 0)) {
        PyTypeObject *tp = Py_TYPE(PyTuple_GET_ITEM(args, 0));
        if (tp != proxy_type && tp != view_type) {
            int f = type_info(tp);
            if (f < 0) {
                return NULL;
            }
            if (f & T_SHARE_NOOP) {
                return Py_NewRef((PyObject *)tp);
            }
        }
    }
    if (slow_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the capsule type is not set up");
        return NULL;
    }
    PyObject *full = PyTuple_New(PyTuple_GET_SIZE(args) + 1);
    if (full == NULL) {
        return NULL;
    }
    PyTuple_SET_ITEM(full, 0, Py_NewRef(self));
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args); i++) {
        PyTuple_SET_ITEM(full, i + 1, Py_NewRef(PyTuple_GET_ITEM(args, i)));
    }
    PyObject *r = PyObject_Call(slow_type, full, kwargs);
    Py_DECREF(full);
    return r;
}

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall; /* set by set_type() on the capsule's 'type' */
} TypeBaseObject;

static PyObject *
capsule_type_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf,
                        PyObject *kwnames)
{
    if (PyVectorcall_NARGS(nargsf) == 1 && kwnames == NULL) {
        PyTypeObject *tp = Py_TYPE(args[0]);
        if (tp != proxy_type && tp != view_type) {
            int f = type_info(tp);
            if (f < 0) {
                return NULL;
            }
            if (f & T_SHARE_NOOP) {
                return Py_NewRef((PyObject *)tp);
            }
        }
    }
    return call_prepended(slow_type, self, args, nargsf, kwnames);
}

static PyTypeObject TypeBase_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ipycap.engine._fastbuiltins.TypeBase",
    .tp_basicsize = sizeof(TypeBaseObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_call = capsule_type_call,
    .tp_new = PyType_GenericNew,
};

/* -- the guard: getattr, hasattr, the gate's attribute hook, vars -------------------------- */

static PyObject *new_format(PyObject *template, int which);

/* getattr(value, name) for the two reads ``p.__class__.__name__`` makes, answered as
 * CPython's own code would (NULL without an error: do the full getattr):
 * - ``__class__`` of an object with the generic getattr whose class resolves the name to
 *   object's own descriptor: its type (object_get_class);
 * - ``__name__`` of a class whose metaclass is exactly type (whose dict is immutable, so the
 *   name is its data descriptor, type_name): a heap class's ht_name, a static class's
 *   tp_name after the last dot. */
static PyObject *object_class_descr; /* object.__dict__['__class__'] */
static PyObject *s_name;

static PyObject *
quick_getattr(PyObject *value, PyObject *name)
{
    if (name == s_class) {
        PyTypeObject *tp = Py_TYPE(value);
        if (tp->tp_getattro == PyObject_GenericGetAttr &&
            _PyType_Lookup(tp, s_class) == object_class_descr) {
            return Py_NewRef((PyObject *)tp);
        }
        return NULL;
    }
    if (name == s_name && Py_IS_TYPE(value, &PyType_Type)) {
        PyTypeObject *t = (PyTypeObject *)value;
        if (t->tp_flags & Py_TPFLAGS_HEAPTYPE) {
            return Py_NewRef(((PyHeapTypeObject *)t)->ht_name);
        }
        const char *dot = strrchr(t->tp_name, '.');
        return PyUnicode_FromString(dot == NULL ? t->tp_name : dot + 1);
    }
    return NULL;
}

static inline PyObject *
read_attr(PyObject *value, PyObject *name)
{
    PyObject *r = quick_getattr(value, name);
    return r != NULL ? r : PyObject_GetAttr(value, name);
}

/* guard.decide(value, name, 'proxy') for the cases it answers without a refusal or a
 * class-specific rule; NULL without an error: ask the Python hook. */
static PyObject *
decide_fast(PyObject *value, PyObject *name)
{
    int c = 0;
    PyTypeObject *tp = Py_TYPE(value);
    int tf = type_info(tp);
    if (tf < 0 || (tf & T_PROXY)) {
        c = tf;
        goto slow;
    }
    long f = name_flags(name);
    if (f < 0 || (f & N_LIB)) {
        c = f < 0 ? -1 : 0;
        goto slow;
    }
    if (f & N_FORMAT) {
        /* guard._format_attr on an exact str: the bound guarded format */
        if (!PyUnicode_CheckExact(value)) {
            goto slow;
        }
        if (PyUnicode_Compare(name, s_format_name) == 0) {
            return new_format(value, 0);
        }
        if (PyUnicode_Compare(name, s_format_map_name) == 0) {
            return new_format(value, 1);
        }
        goto slow;
    }
    if (f & (N_EXC | N_NEVER)) {
        goto slow;
    }
    if (f & N_SPECIAL) {
        if (name != s_class && PyUnicode_Compare(name, s_class) != 0) {
            goto slow;
        }
        PyObject *r = read_attr(value, name); /* _special: share_class(getattr()) */
        return r == NULL ? NULL : shared(r);
    }
    if (f & N_OWN) {
        if (!(tf & T_OWN)) { /* is_own: tp in OWN_TYPES */
            goto slow;
        }
        return PyObject_GetAttr(value, name);
    }
    if (!(f & N_ALLOW)) {
        goto slow; /* unclassified names: the Python rules */
    }
    PyObject *r = read_attr(value, name);
    if (r == NULL) {
        return NULL;
    }
    int share = (f & N_CLASSNAME) != 0;
    if (!share) {
        if (PyType_Check(r)) {
            share = 1;
        }
        else if (!(PyUnicode_CheckExact(r) || PyLong_CheckExact(r) || PyTuple_CheckExact(r) ||
                   PyDict_CheckExact(r) || r == Py_None)) {
            share = PyObject_IsInstance(r, (PyObject *)&PyType_Type);
        }
    }
    if (share < 0) {
        Py_DECREF(r);
        return NULL;
    }
    return share ? shared(r) : r;
slow:
    if (c < 0) {
        PyErr_Clear();
    }
    return NULL;
}

static PyObject *
fast_hook(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs == 2 && PyUnicode_CheckExact(args[1])) {
        PyObject *r = decide_fast(args[0], args[1]);
        if (r != NULL || PyErr_Occurred()) {
            return r;
        }
    }
    return call_slow(slow_hook, args, nargs, NULL);
}

static PyObject *
fast_vars(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs == 1) {
        PyObject *r = decide_fast(args[0], s_dict_name);
        if (r != NULL || PyErr_Occurred()) {
            return r;
        }
    }
    return call_slow(slow_vars, args, nargs, NULL);
}

static PyObject *
getattr_mode(int mode, PyObject *const *args, Py_ssize_t nargs)
{
    if ((nargs == 2 || nargs == 3) && PyUnicode_CheckExact(args[1])) {
        int risky = is_risky(args[1], mode);
        if (risky == 0) {
            if (nargs == 2) {
                return PyObject_GetAttr(args[0], args[1]);
            }
            PyObject *r;
            if (_PyObject_LookupAttr(args[0], args[1], &r) < 0) {
                return NULL;
            }
            return r != NULL ? r : Py_NewRef(args[2]);
        }
        if (risky < 0) {
            PyErr_Clear();
        }
    }
    return call_slow(slow_getattr[mode], args, nargs, NULL);
}

static PyObject *
hasattr_mode(int mode, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs == 2 && PyUnicode_CheckExact(args[1])) {
        int risky = is_risky(args[1], mode);
        if (risky == 0) {
            PyObject *r;
            int found = _PyObject_LookupAttr(args[0], args[1], &r);
            if (found < 0) {
                return NULL;
            }
            Py_XDECREF(r);
            return PyBool_FromLong(found);
        }
        if (risky < 0) {
            PyErr_Clear();
        }
    }
    return call_slow(slow_hasattr[mode], args, nargs, NULL);
}

static PyObject *
fast_getattr(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return getattr_mode(0, args, nargs);
}

static PyObject *
fast_getattr_rexec(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return getattr_mode(1, args, nargs);
}

static PyObject *
fast_hasattr(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return hasattr_mode(0, args, nargs);
}

static PyObject *
fast_hasattr_rexec(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    return hasattr_mode(1, args, nargs);
}

/* -- str.format ------------------------------------------------------------------------- */

/* Whether str.format(template, ...) can traverse an attribute or an item: a field name
 * (what follows any '{' up to ':', '!', '}' or '{') holds '.' or '['.  Conservative: an
 * escaped '{{' is scanned too. */
static int
template_traverses(PyObject *t)
{
    Py_ssize_t n = PyUnicode_GET_LENGTH(t);
    int kind = PyUnicode_KIND(t);
    const void *d = PyUnicode_DATA(t);
    for (Py_ssize_t i = 0; i < n; i++) {
        if (PyUnicode_READ(kind, d, i) != '{') {
            continue;
        }
        for (Py_ssize_t j = i + 1; j < n; j++) {
            Py_UCS4 c = PyUnicode_READ(kind, d, j);
            if (c == ':' || c == '!' || c == '}' || c == '{') {
                break;
            }
            if (c == '.' || c == '[') {
                return 1;
            }
        }
    }
    return 0;
}

/* str.format / str.format_map bound to a template, as capsules get them (a callable that
 * is not a function: nothing of the implementation hangs off it). */
typedef struct {
    PyObject_HEAD
    PyObject *template; /* an exact str */
    int which;          /* 0 format, 1 format_map */
    vectorcallfunc vectorcall;
} FormatObject;

static PyObject *
format_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    FormatObject *f = (FormatObject *)self;
    PyObject *plain = f->which ? str_format_map : str_format;
    PyObject *fn = plain;
    if (template_traverses(f->template)) {
        /* guard._traverses_only_plain_names for a template seen before: every attribute
         * its fields traverse is one the guard leaves to plain getattr */
        fn = format_fns[f->which];
        PyObject *names = PyDict_GetItemWithError(template_attrs_cache, f->template);
        if (names != NULL && PyTuple_CheckExact(names)) {
            int risky = 0;
            for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(names) && !risky; i++) {
                PyObject *n = PyTuple_GET_ITEM(names, i);
                risky = PyUnicode_CheckExact(n) ? is_risky(n, 0) : 1;
            }
            if (risky == 0) {
                fn = plain;
            }
        }
        if (PyErr_Occurred()) {
            PyErr_Clear();
            fn = format_fns[f->which];
        }
    }
    return call_prepended(fn, f->template, args, nargsf, kwnames);
}

static void
format_dealloc(FormatObject *f)
{
    Py_XDECREF(f->template);
    Py_TYPE(f)->tp_free((PyObject *)f);
}

static PyObject *
format_repr(FormatObject *f)
{
    return PyUnicode_FromString(f->which ? "<guarded str.format_map>" : "<guarded str.format>");
}

static PyTypeObject Format_Type = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ipycap.engine._fastbuiltins.GuardedFormat",
    .tp_basicsize = sizeof(FormatObject),
    .tp_vectorcall_offset = offsetof(FormatObject, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_dealloc = (destructor)format_dealloc,
    .tp_repr = (reprfunc)format_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
};

static PyObject *
new_format(PyObject *template, int which)
{
    FormatObject *f = PyObject_New(FormatObject, &Format_Type);
    if (f == NULL) {
        return NULL;
    }
    f->template = Py_NewRef(template);
    f->which = which;
    f->vectorcall = format_vectorcall;
    return (PyObject *)f;
}

/* -- setup -------------------------------------------------------------------------------- */

static PyMethodDef fast_defs[] = {
    {"__import__", (PyCFunction)(void (*)(void))fast_import, METH_FASTCALL | METH_KEYWORDS,
     NULL},
    {"isinstance", (PyCFunction)(void (*)(void))fast_isinstance, METH_FASTCALL, NULL},
    {"issubclass", (PyCFunction)(void (*)(void))fast_issubclass, METH_FASTCALL, NULL},
    {"_ipycap_getattr", (PyCFunction)(void (*)(void))fast_hook, METH_FASTCALL, NULL},
    {"vars", (PyCFunction)(void (*)(void))fast_vars, METH_FASTCALL, NULL},
    {"getattr", (PyCFunction)(void (*)(void))fast_getattr, METH_FASTCALL, NULL},
    {"hasattr", (PyCFunction)(void (*)(void))fast_hasattr, METH_FASTCALL, NULL},
    {"getattr", (PyCFunction)(void (*)(void))fast_getattr_rexec, METH_FASTCALL, NULL},
    {"hasattr", (PyCFunction)(void (*)(void))fast_hasattr_rexec, METH_FASTCALL, NULL},
};

static PyObject *
get(PyObject *settings, const char *name)
{
    PyObject *v = PyDict_GetItemString(settings, name);
    if (v == NULL) {
        PyErr_Format(PyExc_KeyError, "_fastbuiltins.setup: missing %s", name);
        return NULL;
    }
    return v;
}

/* setup(settings: dict) -> dict of the builtins (name -> function; getattr_rexec, ...). */
static PyObject *
setup(PyObject *module, PyObject *settings)
{
    if (S != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_fastbuiltins is already set up");
        return NULL;
    }
    if (!PyDict_Check(settings)) {
        PyErr_SetString(PyExc_TypeError, "setup(settings: dict)");
        return NULL;
    }
#define GET(var, name)                              \
    if ((var = get(settings, name)) == NULL) {      \
        return NULL;                                \
    }
    PyObject *t;
    GET(capsule_builtins, "capsule_builtins");
    GET(epoch_state, "epoch");
    GET(t, "proxy_type");
    proxy_type = (PyTypeObject *)t;
    GET(t, "view_type");
    view_type = (PyTypeObject *)t;
    GET(own_types, "own_types");
    GET(tables_version, "tables_version");
    GET(proxy_types, "proxy_types");
    GET(protocol, "protocol");
    GET(frame_attrs, "frame_attrs");
    GET(format_attrs, "format_attrs");
    GET(exception_attrs, "exception_attrs");
    GET(library_attrs, "library_attrs");
    GET(never, "never");
    GET(special, "special");
    GET(own_only, "own_only");
    GET(descriptive, "descriptive");
    GET(class_names, "class_names");
    GET(slow_import, "slow_import");
    GET(slow_isinstance, "slow_isinstance");
    GET(slow_issubclass, "slow_issubclass");
    GET(slow_getattr[0], "slow_getattr");
    GET(slow_hasattr[0], "slow_hasattr");
    GET(slow_getattr[1], "slow_getattr_rexec");
    GET(slow_hasattr[1], "slow_hasattr_rexec");
    GET(slow_hook, "slow_hook");
    GET(slow_vars, "slow_vars");
    GET(share_class, "share_class");
    GET(format_fns[0], "guarded_format");
    GET(format_fns[1], "guarded_format_map");
    GET(template_attrs_cache, "template_attrs");
    GET(t, "capability_type");
    if (!PyType_Check(t)) {
        PyErr_SetString(PyExc_TypeError, "capability_type");
        return NULL;
    }
    capability_type = (PyTypeObject *)t;
    if (slot_offset(capability_type, "revoked", &off_revoked) < 0 ||
        slot_offset(capability_type, "uses", &off_uses) < 0 ||
        slot_offset(capability_type, "last_use", &off_last_use) < 0) {
        return NULL;
    }
    GET(t, "can_freeze");
    can_freeze = PyObject_IsTrue(t);
    /* the C proxy's layout: its base class and the target field's offset in it (absent
     * without _speedups: then proxies always go to Python) */
    PyObject *base = PyDict_GetItemString(settings, "proxy_base");
    PyObject *off = PyDict_GetItemString(settings, "proxy_target_offset");
    if (base != NULL && off != NULL && base != Py_None && PyType_Check(base) &&
        PyLong_Check(off) && PyType_IsSubtype(proxy_type, (PyTypeObject *)base)) {
        Py_ssize_t o = PyLong_AsSsize_t(off);
        if (o == -1 && PyErr_Occurred()) {
            return NULL;
        }
        if (o >= (Py_ssize_t)sizeof(PyObject) &&
            o + (Py_ssize_t)sizeof(PyObject *) <= ((PyTypeObject *)base)->tp_basicsize) {
            proxy_target_offset = o;
        }
    }
#undef GET
    if (!PyList_Check(epoch_state) || PyList_GET_SIZE(epoch_state) != 1 ||
        !PyDict_CheckExact(library_attrs) ||
        !PyList_Check(tables_version) || PyList_GET_SIZE(tables_version) != 1 ||
        !PyDict_Check(capsule_builtins) || !PyDict_Check(own_types) ||
        !PyDict_Check(proxy_types) || !PyDict_Check(template_attrs_cache) || !PyType_Check(proxy_type) || !PyType_Check(view_type)) {
        PyErr_SetString(PyExc_TypeError, "_fastbuiltins.setup: unexpected settings");
        return NULL;
    }
    S = Py_NewRef(settings); /* keeps every borrowed object above alive */
    PyObject *out = PyDict_New();
    if (out == NULL) {
        return NULL;
    }
    const char *keys[] = {"__import__", "isinstance", "issubclass", "_ipycap_getattr", "vars",
                          "getattr", "hasattr", "getattr_rexec", "hasattr_rexec"};
    for (int i = 0; i < 9; i++) {
        PyObject *f = PyCFunction_NewEx(&fast_defs[i], NULL, NULL);
        if (f == NULL || PyDict_SetItemString(out, keys[i], f) < 0) {
            Py_XDECREF(f);
            Py_DECREF(out);
            return NULL;
        }
        Py_DECREF(f);
    }
    return out;
}

/* set_type(capsule_type, slow_call): the capsule's 'type' instance and its full Python call. */
static PyObject *
set_type(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || capsule_type != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "set_type(type_object, slow_call), once");
        return NULL;
    }
    if (!PyType_IsSubtype(Py_TYPE(args[0]), &TypeBase_Type)) {
        PyErr_SetString(PyExc_TypeError, "set_type: not a TypeBase instance");
        return NULL;
    }
    capsule_type = Py_NewRef(args[0]);
    slow_type = Py_NewRef(args[1]);
    /* Calls of this one object take the vectorcall path (its class is ipycap's own). */
    PyTypeObject *tp = Py_TYPE(args[0]);
    ((TypeBaseObject *)args[0])->vectorcall = capsule_type_vectorcall;
    tp->tp_vectorcall_offset = offsetof(TypeBaseObject, vectorcall);
    tp->tp_flags |= Py_TPFLAGS_HAVE_VECTORCALL;
    PyType_Modified(tp);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"setup", setup, METH_O, NULL},
    {"set_type", (PyCFunction)(void (*)(void))set_type, METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "ipycap.engine._fastbuiltins", NULL, -1, methods,
};

PyMODINIT_FUNC
PyInit__fastbuiltins(void)
{
    if (PyType_Ready(&TypeBase_Type) < 0 || PyType_Ready(&Format_Type) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&moduledef);
    if (m == NULL) {
        return NULL;
    }
#define INTERN(var, s)                                     \
    if ((var = PyUnicode_InternFromString(s)) == NULL) {   \
        return NULL;                                       \
    }
    if ((name_cache = PyDict_New()) == NULL) {
        return NULL;
    }
    INTERN(s_class, "__class__");
    INTERN(s_name, "__name__");
    INTERN(s_dict_name, "__dict__");
    INTERN(s_format_name, "format");
    INTERN(s_format_map_name, "format_map");
    INTERN(s_ipycap_prefix, "__ipycap");
#undef INTERN
    object_class_descr = PyDict_GetItemWithError(PyBaseObject_Type.tp_dict, s_class);
    if (object_class_descr == NULL) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_RuntimeError, "object has no __class__ descriptor");
        }
        return NULL;
    }
    Py_INCREF(object_class_descr);
    str_format = PyObject_GetAttrString((PyObject *)&PyUnicode_Type, "format");
    str_format_map = PyObject_GetAttrString((PyObject *)&PyUnicode_Type, "format_map");
    if (str_format == NULL || str_format_map == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(m, "TypeBase", (PyObject *)&TypeBase_Type) < 0 ||
        PyModule_AddObjectRef(m, "GuardedFormat", (PyObject *)&Format_Type) < 0) {
        return NULL;
    }
    return m;
}
