/* The array protocols (__array_interface__, __array_struct__, __dataframe__, the Arrow C and
 * DLPack names) for objects capsule code shapes.
 *
 * numpy (and every library that converts with it) looks these names up on any object that is
 * not a basic Python type, with a plain getattr, and trusts the answer: an address, a shape
 * and strides it reads and writes without a bounds check.  So an object whose answer capsule
 * code chooses is raw memory.  Two process-wide hooks close the ways capsule code chooses one
 * (ipycap/engine/arrayguard.py decides; this module only hooks):
 *
 *  - class creation: type.__new__ (PyType_Type.tp_new, and the inherited copy in every
 *    metaclass that exists when installed) calls hook(cls) after a class is made, however it
 *    was made: a class statement, type(name, bases, ns), a metaclass called directly, or a
 *    standard-library deputy (Enum('E', ns), namedtuple, make_dataclass).  (Setting names on
 *    a class later is the guard's: tp_setattro cannot be hooked, type.__setattr__'s slot
 *    wrapper would then refuse every class.)
 *  - instance dicts capsule code fills that no class can guard: functions (f.__dict__, and
 *    bound methods, which answer from their function), staticmethod/classmethod objects
 *    (instance dicts of their own) and types.SimpleNamespace (its keyword arguments): their
 *    getattr answers the two names with
 *    AttributeError, as if absent (no such object is ever an array).
 *
 * A capsule never reaches this module (it is not importable in a capsule: ipycap's own).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>

static newfunc type_new_orig = NULL;
static PyObject *new_hook = NULL;     /* hook(cls) -> None, raises to refuse the class */
/* guard._CAPSULE_BUILTINS: address hash of a capsule's builtins dict -> (dict, context) */
static PyObject *capsule_table = NULL;
/* guard._CAPSULE_CODE: address hash of a gate-compiled code object -> weakref to it */
static PyObject *code_table = NULL;
static PyObject *generated_table = NULL; /* guard._GENERATED_CODE: code made for a capsule */
/* The protocol names (arrayguard.ARRAY_NAMES): numpy's array interface, the DataFrame
 * interchange protocol (its buffers report raw addresses), the Arrow C and DLPack capsules. */
static const char *const protocol_names[] = {
    "__array_interface__",      "__array_struct__",          "__dataframe__",
    "__arrow_c_array__",        "__arrow_c_stream__",        "__arrow_c_schema__",
    "__arrow_c_device_array__", "__arrow_c_device_stream__", "__dlpack__",
    "__dlpack_device__",        "__cuda_array_interface__",  NULL,
};
#define N_NAMES (sizeof(protocol_names) / sizeof(protocol_names[0]) - 1)
static PyObject *names_interned[N_NAMES];

static int
is_name(PyObject *name, PyObject *interned)
{
    if (name == interned) {
        return 1;
    }
    if (!PyUnicode_CheckExact(name) && !PyUnicode_Check(name)) {
        return 0;
    }
    if (PyUnicode_GET_LENGTH(name) != PyUnicode_GET_LENGTH(interned)) {
        return 0;
    }
    return PyUnicode_Compare(name, interned) == 0;
}

static int
is_array_name(PyObject *name)
{
    /* every name is a dunder of 10 or more characters: most lookups stop here */
    if (!PyUnicode_Check(name) || PyUnicode_READY(name) < 0 || PyUnicode_GET_LENGTH(name) < 10 ||
        PyUnicode_READ_CHAR(name, 0) != '_') {
        PyErr_Clear();
        return 0;
    }
    for (size_t i = 0; i < N_NAMES; i++) {
        if (names_interned[i] != NULL && is_name(name, names_interned[i])) {
            return 1;
        }
    }
    return 0;
}

/* Whether a frame of capsule code is on this thread's stack (its builtins dict is one the
 * guard registered: the same test as guard.context_of, not the forgeable mark): when none
 * is, nobody's capsule asked for the class, and the hook is not called (trusted code pays a
 * walk in C only).  The hook decides the rest (the nearest frame). */
static int
is_capsule_builtins(PyObject *builtins)
{
    PyObject *key = PyLong_FromSsize_t(_Py_HashPointer(builtins));
    if (key == NULL) {
        return -1;
    }
    PyObject *entry = PyDict_GetItemWithError(capsule_table, key); /* borrowed */
    Py_DECREF(key);
    if (entry == NULL) {
        return PyErr_Occurred() ? -1 : 0;
    }
    return PyTuple_Check(entry) && PyTuple_GET_SIZE(entry) > 0 &&
           PyTuple_GET_ITEM(entry, 0) == builtins;
}

static int
code_in_table(PyObject *table, PyFrameObject *f)
{
    if (table == NULL) {
        return 0;
    }
    PyCodeObject *code = PyFrame_GetCode(f); /* new reference */
    PyObject *key = PyLong_FromSsize_t(_Py_HashPointer(code));
    if (key == NULL) {
        Py_DECREF(code);
        return -1;
    }
    PyObject *entry = PyDict_GetItemWithError(table, key); /* borrowed */
    Py_DECREF(key);
    int found = 0;
    if (entry != NULL && PyWeakref_Check(entry)) {
        found = PyWeakref_GetObject(entry) == (PyObject *)code;
    }
    Py_DECREF(code);
    if (entry == NULL && PyErr_Occurred()) {
        return -1;
    }
    return found;
}

static int
capsule_on_stack(void)
{
    PyFrameObject *f = PyEval_GetFrame(); /* borrowed */
    if (f == NULL) {
        return 0;
    }
    Py_INCREF(f);
    while (f != NULL) {
        PyObject *builtins = PyFrame_GetBuiltins(f);
        int found = 0;
        if (builtins != NULL) {
            found = is_capsule_builtins(builtins);
            Py_DECREF(builtins);
        }
        if (found == 0) {
            found = code_in_table(code_table, f);
        }
        if (found == 0) {
            /* code a library generated for a capsule acts for it (guard.asked_by_capsule) */
            found = code_in_table(generated_table, f);
        }
        if (found < 0 || PyErr_Occurred()) {
            PyErr_Clear();
            found = 1; /* unsure: let the hook decide */
        }
        if (found) {
            Py_DECREF(f);
            return 1;
        }
        PyFrameObject *back = PyFrame_GetBack(f);
        Py_DECREF(f);
        f = back;
    }
    return 0;
}

static PyObject *
guarded_type_new(PyTypeObject *meta, PyObject *args, PyObject *kwds)
{
    PyObject *cls = type_new_orig(meta, args, kwds);
    if (cls == NULL || new_hook == NULL || !PyType_Check(cls)) {
        return cls;
    }
    if (!capsule_on_stack()) {
        return cls;
    }
    PyObject *r = PyObject_CallOneArg(new_hook, cls);
    if (r == NULL) {
        Py_DECREF(cls);
        return NULL;
    }
    Py_DECREF(r);
    return cls;
}

/* Instance getattr of the types whose dicts no class guards. */
#define N_INSTANCE 4
static PyTypeObject *inst_types[N_INSTANCE];
static getattrofunc inst_orig[N_INSTANCE];
static int n_inst = 0;

static getattrofunc
orig_for(PyTypeObject *tp)
{
    for (; tp != NULL; tp = tp->tp_base) {
        for (int i = 0; i < n_inst; i++) {
            if (inst_types[i] == tp) {
                return inst_orig[i];
            }
        }
    }
    return PyObject_GenericGetAttr;
}

static PyObject *
guarded_instance_getattro(PyObject *obj, PyObject *name)
{
    if (PyUnicode_Check(name) && is_array_name(name)) {
        PyErr_Format(PyExc_AttributeError, "'%.100s' object has no attribute '%U'",
                     Py_TYPE(obj)->tp_name, name);
        return NULL;
    }
    return orig_for(Py_TYPE(obj))(obj, name);
}

static void
patch_instance_type(PyTypeObject *tp)
{
    if (n_inst >= N_INSTANCE || tp->tp_getattro == guarded_instance_getattro) {
        return;
    }
    inst_types[n_inst] = tp;
    inst_orig[n_inst] = tp->tp_getattro;
    n_inst++;
    tp->tp_getattro = guarded_instance_getattro;
}

/* Every metaclass that exists now copied type's slots when it was made: ``patch`` each
 * copy (every subclass of ``tp``, recursively). */
static int
for_each_metaclass(PyTypeObject *tp, void (*patch)(PyTypeObject *))
{
    PyObject *meth = PyDict_GetItemString(PyType_Type.tp_dict, "__subclasses__");
    if (meth == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "type.__subclasses__ is missing");
        return -1;
    }
    PyObject *subs = PyObject_CallOneArg(meth, (PyObject *)tp);
    if (subs == NULL) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(subs); i++) {
        PyTypeObject *sub = (PyTypeObject *)PyList_GET_ITEM(subs, i);
        patch(sub);
        if (for_each_metaclass(sub, patch) < 0) {
            Py_DECREF(subs);
            return -1;
        }
    }
    Py_DECREF(subs);
    return 0;
}

static void
patch_type_new(PyTypeObject *sub)
{
    if (sub->tp_new == type_new_orig) {
        sub->tp_new = guarded_type_new;
    }
}

static int
patch_metaclasses(PyTypeObject *tp)
{
    return for_each_metaclass(tp, patch_type_new);
}

/* Class attribute stores (type's setattro, and the copies every metaclass made of it):
 * after a store or delete of a dunder name on a heap class succeeded, setattr_hook(cls,
 * name) is called (hooks.after_type_store: a capsule function a trusted deputy stored as an
 * operand dunder of a capsule class is guarded like one the capsule stored).  A metaclass
 * with its own __setattr__ reaches type.__setattr__, whose wrapper calls the original. */
static setattrofunc type_setattro_orig = NULL;
static PyObject *setattr_hook = NULL;

static int
guarded_type_setattro(PyObject *cls, PyObject *name, PyObject *value)
{
    int r = type_setattro_orig(cls, name, value);
    if (r < 0 || setattr_hook == NULL || !PyUnicode_Check(name) ||
        !(((PyTypeObject *)cls)->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
        return r;
    }
    if (PyUnicode_READY(name) < 0) {
        PyErr_Clear();
        return r;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(name);
    if (n < 5 || PyUnicode_READ_CHAR(name, 0) != '_' || PyUnicode_READ_CHAR(name, 1) != '_' ||
        PyUnicode_READ_CHAR(name, n - 1) != '_' || PyUnicode_READ_CHAR(name, n - 2) != '_') {
        return r;
    }
    PyObject *res = PyObject_CallFunctionObjArgs(setattr_hook, cls, name, NULL);
    if (res == NULL) {
        return -1;
    }
    Py_DECREF(res);
    return r;
}

static void
patch_setattro(PyTypeObject *sub)
{
    if (sub->tp_setattro == type_setattro_orig) {
        sub->tp_setattro = guarded_type_setattro;
    }
}

static int
patch_metaclass_setattro(PyTypeObject *tp)
{
    return for_each_metaclass(tp, patch_setattro);
}

/* install_setattr_hook(hook): once per process (a second call replaces the hook). */
static PyObject *
ag_install_setattr_hook(PyObject *self, PyObject *hook)
{
    if (!PyCallable_Check(hook)) {
        PyErr_SetString(PyExc_TypeError, "the hook must be callable");
        return NULL;
    }
    Py_INCREF(hook);
    Py_XSETREF(setattr_hook, hook);
    if (type_setattro_orig != NULL) {
        Py_RETURN_NONE;
    }
    type_setattro_orig = PyType_Type.tp_setattro;
    /* type.__setattr__/__delattr__ call the slot they wrap after a check that it is the
     * type's own slot (hackcheck): they wrap the guarded one too */
    const char *wrappers[] = {"__setattr__", "__delattr__"};
    for (int i = 0; i < 2; i++) {
        PyObject *d = PyDict_GetItemString(PyType_Type.tp_dict, wrappers[i]); /* borrowed */
        if (d == NULL || !PyObject_TypeCheck(d, &PyWrapperDescr_Type) ||
            ((PyWrapperDescrObject *)d)->d_wrapped != (void *)type_setattro_orig) {
            type_setattro_orig = NULL;
            PyErr_SetString(PyExc_RuntimeError, "type.__setattr__ is not the slot wrapper");
            return NULL;
        }
    }
    for (int i = 0; i < 2; i++) {
        PyObject *d = PyDict_GetItemString(PyType_Type.tp_dict, wrappers[i]);
        ((PyWrapperDescrObject *)d)->d_wrapped = (void *)guarded_type_setattro;
    }
    PyType_Type.tp_setattro = guarded_type_setattro;
    if (patch_metaclass_setattro(&PyType_Type) < 0) {
        return NULL;
    }
    PyType_Modified(&PyType_Type);
    Py_RETURN_NONE;
}

/* install(new_hook, namespace_type, capsule_table[, code_table, generated_table]): once per
 * process. */
static PyObject *
ag_install(PyObject *self, PyObject *args)
{
    PyObject *hook, *ns_type, *table, *codes = NULL, *generated = NULL;
    if (!PyArg_ParseTuple(args, "OO!O!|O!O!", &hook, &PyType_Type, &ns_type, &PyDict_Type, &table,
                          &PyDict_Type, &codes, &PyDict_Type, &generated)) {
        return NULL;
    }
    Py_XINCREF(generated);
    Py_XSETREF(generated_table, generated);
    Py_INCREF(table);
    Py_XSETREF(capsule_table, table);
    Py_XINCREF(codes);
    Py_XSETREF(code_table, codes);
    if (!PyCallable_Check(hook)) {
        PyErr_SetString(PyExc_TypeError, "the hook must be callable");
        return NULL;
    }
    Py_INCREF(hook);
    Py_XSETREF(new_hook, hook);
    if (type_new_orig != NULL) {
        Py_RETURN_NONE; /* already installed: the hooks are replaced */
    }
    for (size_t i = 0; i < N_NAMES; i++) {
        names_interned[i] = PyUnicode_InternFromString(protocol_names[i]);
        if (names_interned[i] == NULL) {
            return NULL;
        }
    }
    type_new_orig = PyType_Type.tp_new;
    PyType_Type.tp_new = guarded_type_new;
    if (patch_metaclasses(&PyType_Type) < 0) {
        return NULL;
    }
    patch_instance_type(&PyFunction_Type);
    patch_instance_type(&PyStaticMethod_Type);
    patch_instance_type(&PyClassMethod_Type);
    patch_instance_type((PyTypeObject *)ns_type);
    Py_RETURN_NONE;
}

/* place(cls, name, value): put value in the heap class's own dict, past any descriptor its
 * metaclass has for name (ipycap's own placement of the guard; the names are not slots). */
static PyObject *
ag_place(PyObject *self, PyObject *args)
{
    PyTypeObject *cls;
    PyObject *name, *value;
    if (!PyArg_ParseTuple(args, "O!UO", &PyType_Type, &cls, &name, &value)) {
        return NULL;
    }
    if (!(cls->tp_flags & Py_TPFLAGS_HEAPTYPE) || cls->tp_dict == NULL) {
        PyErr_SetString(PyExc_TypeError, "place() takes a heap class");
        return NULL;
    }
    if (PyDict_SetItem(cls->tp_dict, name, value) < 0) {
        return NULL;
    }
    PyType_Modified(cls);
    Py_RETURN_NONE;
}

/* installed() -> whether the hooks are in place (every metaclass made since inherits them). */
static PyObject *
ag_installed(PyObject *self, PyObject *unused)
{
    return PyBool_FromLong(type_new_orig != NULL && PyType_Type.tp_new == guarded_type_new &&
                           PyFunction_Type.tp_getattro == guarded_instance_getattro);
}

/* frame_runs_capsule_code(frame, table): whether the frame's code object is in ``table``
 * (guard._CAPSULE_CODE), read with PyFrame_GetCode: frame.f_code raises an audit event. */
static PyObject *
ag_frame_runs_capsule_code(PyObject *self, PyObject *args)
{
    PyObject *frame, *table;
    if (!PyArg_ParseTuple(args, "O!O!", &PyFrame_Type, &frame, &PyDict_Type, &table)) {
        return NULL;
    }
    int found = code_in_table(table, (PyFrameObject *)frame);
    if (found < 0) {
        return NULL;
    }
    return PyBool_FromLong(found);
}

/* caller_is_capsule(depth): whether the Python frame ``depth`` levels out from the running
 * one (1: the caller of the Python function calling this) runs capsule code: its builtins
 * are a capsule's (guard.context_of) or its code is the gate's (guard._CAPSULE_CODE).  The
 * operand hooks' fast path (hooks.py): sys._getframe raises an audit event, this does not. */
static PyObject *
ag_caller_is_capsule(PyObject *self, PyObject *arg)
{
    Py_ssize_t depth = PyLong_AsSsize_t(arg);
    if (depth == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (capsule_table == NULL) {
        Py_RETURN_FALSE;
    }
    PyFrameObject *f = PyEval_GetFrame(); /* borrowed */
    if (f == NULL) {
        Py_RETURN_FALSE;
    }
    Py_INCREF(f);
    while (depth-- > 0 && f != NULL) {
        PyFrameObject *back = PyFrame_GetBack(f);
        Py_DECREF(f);
        f = back;
    }
    if (f == NULL) {
        Py_RETURN_FALSE;
    }
    PyObject *builtins = PyFrame_GetBuiltins(f);
    int found = 0;
    if (builtins != NULL) {
        found = is_capsule_builtins(builtins);
        Py_DECREF(builtins);
    }
    if (found == 0) {
        found = code_in_table(code_table, f);
    }
    Py_DECREF(f);
    if (found < 0) {
        return NULL;
    }
    return PyBool_FromLong(found);
}

/* OperandHook(fn, slow): the class-dict entry hooks.py puts for a capsule function under an
 * operand dunder name.  A method descriptor (bound like a function, without a bound method
 * object); called, it calls fn as it is when the running Python frame (the caller) runs
 * capsule code, else slow(fn, args, kwargs), which judges the operands (hooks.py). */
typedef struct {
    PyObject_HEAD
    PyObject *fn;
    PyObject *slow;
    PyObject *dict;
    PyObject *owner; /* the class whose entry it is, or NULL */
    vectorcallfunc vectorcall;
} OperandHook;

/* Operands no caller needs judged: exact str, int, float, bool, bytes, None (plain data, as
 * membrane.is_plain says of them). */
static int
trivially_plain(PyObject *v)
{
    return v == Py_None || PyLong_CheckExact(v) || PyUnicode_CheckExact(v) ||
           PyFloat_CheckExact(v) || PyBool_Check(v) || PyBytes_CheckExact(v);
}

static int
frame_is_capsule(PyFrameObject *f)
{
    if (f == NULL || capsule_table == NULL) {
        return 0;
    }
    PyObject *builtins = PyFrame_GetBuiltins(f);
    int found = 0;
    if (builtins != NULL) {
        found = is_capsule_builtins(builtins);
        Py_DECREF(builtins);
    }
    if (found == 0) {
        found = code_in_table(code_table, f);
    }
    if (found < 0) {
        PyErr_Clear();
        found = 0; /* unsure: the slow path decides */
    }
    return found;
}

static PyObject *
oh_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    OperandHook *h = (OperandHook *)self;
    Py_ssize_t n = PyVectorcall_NARGS(nargsf);
    if (h->owner != NULL && n >= 1 && (PyObject *)Py_TYPE(args[0]) == h->owner) {
        /* self an instance of exactly the capsule class, every other operand plain: the
         * slow path would pass them all as they are, whoever calls */
        Py_ssize_t total = n + (kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0);
        Py_ssize_t i = 1;
        while (i < total && trivially_plain(args[i])) {
            i++;
        }
        if (i == total) {
            return PyObject_Vectorcall(h->fn, args, nargsf, kwnames);
        }
    }
    if (frame_is_capsule(PyEval_GetFrame())) {
        return PyObject_Vectorcall(h->fn, args, nargsf, kwnames);
    }
    PyObject *tuple = PyTuple_New(n);
    if (tuple == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_INCREF(args[i]);
        PyTuple_SET_ITEM(tuple, i, args[i]);
    }
    PyObject *kw = PyDict_New();
    if (kw == NULL) {
        Py_DECREF(tuple);
        return NULL;
    }
    if (kwnames != NULL) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwnames); i++) {
            if (PyDict_SetItem(kw, PyTuple_GET_ITEM(kwnames, i), args[n + i]) < 0) {
                Py_DECREF(tuple);
                Py_DECREF(kw);
                return NULL;
            }
        }
    }
    PyObject *res = PyObject_CallFunctionObjArgs(h->slow, h->fn, tuple, kw, NULL);
    Py_DECREF(tuple);
    Py_DECREF(kw);
    return res;
}

static PyObject *
oh_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *fn, *slow, *owner = NULL;
    if (!PyArg_ParseTuple(args, "OO|O!:OperandHook", &fn, &slow, &PyType_Type, &owner)) {
        return NULL;
    }
    OperandHook *h = (OperandHook *)type->tp_alloc(type, 0);
    if (h == NULL) {
        return NULL;
    }
    Py_INCREF(fn);
    Py_INCREF(slow);
    h->fn = fn;
    h->slow = slow;
    h->dict = NULL;
    Py_XINCREF(owner);
    h->owner = owner;
    h->vectorcall = oh_vectorcall;
    return (PyObject *)h;
}

static int
oh_traverse(OperandHook *h, visitproc visit, void *arg)
{
    Py_VISIT(h->fn);
    Py_VISIT(h->slow);
    Py_VISIT(h->dict);
    Py_VISIT(h->owner);
    return 0;
}

static int
oh_clear(OperandHook *h)
{
    Py_CLEAR(h->fn);
    Py_CLEAR(h->slow);
    Py_CLEAR(h->dict);
    Py_CLEAR(h->owner);
    return 0;
}

static void
oh_dealloc(OperandHook *h)
{
    PyObject_GC_UnTrack(h);
    oh_clear(h);
    Py_TYPE(h)->tp_free((PyObject *)h);
}

static PyObject *
oh_descr_get(PyObject *self, PyObject *obj, PyObject *type)
{
    if (obj == NULL || obj == Py_None) {
        Py_INCREF(self);
        return self;
    }
    return PyMethod_New(self, obj);
}

static PyObject *
oh_call(PyObject *self, PyObject *args, PyObject *kwds)
{
    return PyVectorcall_Call(self, args, kwds);
}

static PyGetSetDef oh_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL},
};

static PyTypeObject OperandHookType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "ipycap.engine.hooks.OperandHook",
    .tp_basicsize = sizeof(OperandHook),
    .tp_dealloc = (destructor)oh_dealloc,
    .tp_vectorcall_offset = offsetof(OperandHook, vectorcall),
    .tp_call = oh_call,
    .tp_getattro = PyObject_GenericGetAttr,
    .tp_setattro = PyObject_GenericSetAttr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL |
                Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_doc = "OperandHook(fn, slow): a guarded operand entry of a capsule class (hooks.py)",
    .tp_traverse = (traverseproc)oh_traverse,
    .tp_clear = (inquiry)oh_clear,
    .tp_getset = oh_getset,
    .tp_descr_get = oh_descr_get,
    .tp_dictoffset = offsetof(OperandHook, dict),
    .tp_new = oh_new,
};

/* The __init__ of a capsule class, for the instantiations trusted code makes: the class's
 * tp_init slot (slot_tp_init, which calls the class dict's __init__) is replaced on each
 * capsule class whose __init__ is capsule code, so the dict entry stays a plain function
 * (super().__init__ chains stay as fast as without ipycap).  Called with operands that are
 * all plain data, or from capsule code, the original slot runs; otherwise
 * init_slow(self, args, kwargs) (hooks.py) calls __init__ with call-scoped operands. */
static initproc slot_init_orig = NULL;
static PyObject *init_slow = NULL;

static int
guarded_tp_init(PyObject *self, PyObject *args, PyObject *kwds)
{
    int plain = 1;
    for (Py_ssize_t i = 0; plain && i < PyTuple_GET_SIZE(args); i++) {
        plain = trivially_plain(PyTuple_GET_ITEM(args, i));
    }
    if (plain && kwds != NULL) {
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (plain && PyDict_Next(kwds, &pos, &k, &v)) {
            plain = trivially_plain(v);
        }
    }
    if (plain || init_slow == NULL || frame_is_capsule(PyEval_GetFrame())) {
        return slot_init_orig(self, args, kwds);
    }
    PyObject *res =
        PyObject_CallFunctionObjArgs(init_slow, self, args, kwds != NULL ? kwds : Py_None, NULL);
    if (res == NULL) {
        return -1;
    }
    if (res != Py_None) {
        PyErr_Format(PyExc_TypeError, "__init__() should return None, not '%.200s'",
                     Py_TYPE(res)->tp_name);
        Py_DECREF(res);
        return -1;
    }
    Py_DECREF(res);
    return 0;
}

/* guard_init(cls[, slow]): put guarded_tp_init in cls's tp_init if it is slot_tp_init (the
 * first call learns slot_tp_init from cls, which must have a Python __init__).  Whether it
 * is in place. */
static PyObject *
ag_guard_init(PyObject *self, PyObject *args)
{
    PyTypeObject *cls;
    PyObject *slow = NULL;
    if (!PyArg_ParseTuple(args, "O!|O", &PyType_Type, &cls, &slow)) {
        return NULL;
    }
    if (slow != NULL) {
        Py_INCREF(slow);
        Py_XSETREF(init_slow, slow);
    }
    if (!(cls->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
        Py_RETURN_FALSE;
    }
    if (cls->tp_init == guarded_tp_init) {
        Py_RETURN_TRUE;
    }
    if (slot_init_orig == NULL) {
        slot_init_orig = cls->tp_init;
    }
    if (cls->tp_init != slot_init_orig) {
        Py_RETURN_FALSE;
    }
    cls->tp_init = guarded_tp_init;
    Py_RETURN_TRUE;
}

static PyObject *
ag_init_is_guarded(PyObject *self, PyObject *cls)
{
    if (!PyType_Check(cls)) {
        Py_RETURN_FALSE;
    }
    return PyBool_FromLong(((PyTypeObject *)cls)->tp_init == guarded_tp_init);
}

static PyMethodDef methods[] = {
    {"guard_init", ag_guard_init, METH_VARARGS,
     "guard_init(cls[, slow]): guard cls's tp_init (a capsule __init__)"},
    {"init_is_guarded", ag_init_is_guarded, METH_O, "init_is_guarded(cls)"},
    {"install_setattr_hook", ag_install_setattr_hook, METH_O,
     "install_setattr_hook(hook): hook(cls, name) after a dunder store on a heap class"},
    {"caller_is_capsule", ag_caller_is_capsule, METH_O,
     "caller_is_capsule(depth): the frame depth levels out runs capsule code"},
    {"frame_runs_capsule_code", ag_frame_runs_capsule_code, METH_VARARGS,
     "frame_runs_capsule_code(frame, table): the frame runs a code object of the table"},
    {"install", ag_install, METH_VARARGS,
     "install(new_hook, SimpleNamespace, capsule_table[, code_table, generated_table]): hook "
     "class creation and the array "
     "protocol names (once per process)."},
    {"place", ag_place, METH_VARARGS, "place(cls, name, value): set in the class's own dict."},
    {"installed", ag_installed, METH_NOARGS, "Whether the hooks are in place."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "ipycap.engine._arrayguard",
    "Hooks for the array protocols of capsule-shaped objects (see ipycap.engine.arrayguard).",
    -1, methods,
};

PyMODINIT_FUNC
PyInit__arrayguard(void)
{
    if (PyType_Ready(&OperandHookType) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&moduledef);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&OperandHookType);
    if (PyModule_AddObject(m, "OperandHook", (PyObject *)&OperandHookType) < 0) {
        Py_DECREF(&OperandHookType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
