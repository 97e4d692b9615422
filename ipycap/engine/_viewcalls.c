/* Functions a module view hands out, revocable (ipycap/engine/modules.py).
 *
 * A ViewFunction forwards every call to the module's function while its view's grant
 * holds.  The check is one pointer comparison: the authority epoch (ipycap.engine.epoch,
 * STATE[0]) the wrapper was last checked in against the current one; only after a grant,
 * revoke, expiry or policy change does the owner's check run again (in Python), which
 * either returns the epoch to remember or raises the refusal.  The wrapped function and its
 * owner are never given out: no member, no __dict__, no __wrapped__. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>

static PyObject *epoch_state = NULL; /* ipycap.engine.epoch.STATE, a one-item list */
static PyObject *check_hook = NULL;  /* check(owner) -> the epoch checked in, or raises */
static PyObject *result_hook = NULL; /* result(value) -> what the capsule gets: a module (or a
                                      * tuple holding one) comes back as its view or refused */

typedef struct {
    PyObject_HEAD
    PyObject *fn;
    PyObject *owner;
    PyObject *token;
    PyObject *convert; /* convert(args) -> exact copies, or NULL: arguments pass as they are */
    vectorcallfunc vectorcall;
} ViewFunctionObject;

/* Whether an argument is an instance of a heap subclass of a builtin value type (str, bytes,
 * int, float, complex, tuple, frozenset): such an object may be capsule-made (carry
 * attributes, a __del__, its class's namespace) and a trusted cache keyed by it would keep
 * it (issue 11, I3).  One flags test for the exact types every ordinary call passes. */
static inline int
needs_copy(PyObject *a)
{
    PyTypeObject *tp = Py_TYPE(a);
    if (!(tp->tp_flags & Py_TPFLAGS_HEAPTYPE)) {
        if (tp == &PyTuple_Type) { /* (address, prefix) pairs: their items too, one level */
            for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(a); i++) {
                if (Py_TYPE(PyTuple_GET_ITEM(a, i))->tp_flags & Py_TPFLAGS_HEAPTYPE) {
                    PyObject *item = PyTuple_GET_ITEM(a, i);
                    PyTypeObject *it = Py_TYPE(item);
                    if ((it->tp_flags &
                         (Py_TPFLAGS_LONG_SUBCLASS | Py_TPFLAGS_BYTES_SUBCLASS |
                          Py_TPFLAGS_UNICODE_SUBCLASS | Py_TPFLAGS_TUPLE_SUBCLASS)) ||
                        PyFloat_Check(item) || PyComplex_Check(item) ||
                        PyFrozenSet_Check(item)) {
                        return 1;
                    }
                }
            }
        }
        return 0;
    }
    return (tp->tp_flags & (Py_TPFLAGS_LONG_SUBCLASS | Py_TPFLAGS_BYTES_SUBCLASS |
                            Py_TPFLAGS_UNICODE_SUBCLASS | Py_TPFLAGS_TUPLE_SUBCLASS)) ||
           PyFloat_Check(a) || PyComplex_Check(a) || PyFrozenSet_Check(a);
}

/* An exact copy of a str, bytes, int or float subclass instance, by the base type's own
 * data (no code of the subclass runs); NULL without an error for the other types. */
static PyObject *
fast_copy(PyObject *a)
{
    unsigned long flags = Py_TYPE(a)->tp_flags;
    if (flags & Py_TPFLAGS_UNICODE_SUBCLASS) {
        if (PyUnicode_READY(a) < 0) {
            return NULL;
        }
        return PyUnicode_FromKindAndData(PyUnicode_KIND(a), PyUnicode_DATA(a),
                                         PyUnicode_GET_LENGTH(a));
    }
    if (flags & Py_TPFLAGS_BYTES_SUBCLASS) {
        return PyBytes_FromStringAndSize(PyBytes_AS_STRING(a), PyBytes_GET_SIZE(a));
    }
    if (flags & Py_TPFLAGS_LONG_SUBCLASS) {
        return PyLong_Type.tp_as_number->nb_int(a); /* int's own slot: an exact copy */
    }
    if (PyFloat_Check(a)) {
        return PyFloat_FromDouble(PyFloat_AS_DOUBLE(a));
    }
    return NULL;
}

/* The call with every argument that needs it replaced by an exact copy: in C for the
 * common value types, else by convert() (tuples, frozensets, complex: caches.exact_args). */
static PyObject *
vf_call_converted(ViewFunctionObject *self, PyObject *const *args, Py_ssize_t nargs,
                  PyObject *kwnames)
{
    Py_ssize_t total = nargs + (kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0);
    PyObject *small[8];
    if (total <= 8) {
        Py_ssize_t i = 0;
        for (; i < total; i++) {
            PyObject *a = args[i];
            if (!needs_copy(a)) {
                small[i] = Py_NewRef(a);
                continue;
            }
            PyObject *c = fast_copy(a);
            if (c == NULL) {
                break;
            }
            small[i] = c;
        }
        if (i == total) {
            PyObject *res = PyObject_Vectorcall(self->fn, small, nargs, kwnames);
            for (Py_ssize_t j = 0; j < total; j++) {
                Py_DECREF(small[j]);
            }
            return res;
        }
        for (Py_ssize_t j = 0; j < i; j++) {
            Py_DECREF(small[j]);
        }
        if (PyErr_Occurred()) {
            return NULL;
        }
    }
    PyObject *given = PyTuple_New(total);
    if (given == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < total; i++) {
        PyTuple_SET_ITEM(given, i, Py_NewRef(args[i]));
    }
    PyObject *copies = PyObject_CallOneArg(self->convert, given);
    Py_DECREF(given);
    if (copies == NULL) {
        return NULL;
    }
    if (!PyTuple_CheckExact(copies) || PyTuple_GET_SIZE(copies) != total) {
        Py_DECREF(copies);
        PyErr_SetString(PyExc_RuntimeError, "ipycap: argument conversion failed");
        return NULL;
    }
    PyObject *res = PyObject_Vectorcall(self->fn, &PyTuple_GET_ITEM(copies, 0), nargs, kwnames);
    Py_DECREF(copies);
    return res;
}

static int
vf_check(ViewFunctionObject *self)
{
    if (epoch_state != NULL && PyList_GET_SIZE(epoch_state) > 0 &&
        PyList_GET_ITEM(epoch_state, 0) == self->token) {
        return 0;
    }
    if (check_hook == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ipycap's view functions are not set up");
        return -1;
    }
    PyObject *token = PyObject_CallOneArg(check_hook, self->owner);
    if (token == NULL) {
        return -1;
    }
    Py_XSETREF(self->token, token);
    return 0;
}

/* Whether a result is, or is a tuple holding, a module: a library function returning one
 * (polars' import_optional('sys'), sklearn's get_namespace) handed the capsule the raw
 * module, past the views attributes get (session 11). */
static inline int
holds_module(PyObject *r)
{
    if (PyModule_Check(r)) {
        return 1;
    }
    if (PyTuple_CheckExact(r)) {
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(r); i++) {
            if (PyModule_Check(PyTuple_GET_ITEM(r, i))) {
                return 1;
            }
        }
    }
    return 0;
}

static PyObject *vf_call(PyObject *op, PyObject *const *args, size_t nargsf,
                         PyObject *kwnames);

/* The boundary auditor's view of this C step (as _speedups.c's slots): a view's Python
 * function returns into this wrapper, which judges the result, but the profile function
 * sees it return into the capsule frame below.  While the auditor runs, each call notes that
 * frame, per thread (crossing_frame()).  Off, it costs one branch. */
static int audit_mode = 0;
#define AUDIT_STACK 256
static _Thread_local PyObject *audit_frames[AUDIT_STACK];
static _Thread_local int audit_depth = 0;

static PyObject *
vf_vectorcall(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    PyObject *res;
    if (audit_mode) {
        if (audit_depth < AUDIT_STACK) {
            audit_frames[audit_depth] = (PyObject *)PyEval_GetFrame(); /* borrowed, live */
        }
        audit_depth++;
        res = vf_call(op, args, nargsf, kwnames);
        audit_depth--;
    }
    else {
        res = vf_call(op, args, nargsf, kwnames);
    }
    if (res == NULL || !(holds_module(res) || PyDict_CheckExact(res) || PyList_CheckExact(res) ||
                         PySet_CheckExact(res))) {
        return res;
    }
    /* a module, or a container that may be one of the module's own tables (sklearn's
     * distance_metrics() is its PAIRWISE_DISTANCE_FUNCTIONS): the hook decides */
    if (result_hook == NULL) {
        Py_DECREF(res);
        PyErr_SetString(PyExc_RuntimeError, "ipycap's view functions are not set up");
        return NULL;
    }
    PyObject *seen = PyObject_CallFunctionObjArgs(result_hook, res,
                                                  ((ViewFunctionObject *)op)->fn, NULL);
    Py_DECREF(res);
    return seen;
}

static PyObject *
vf_call(PyObject *op, PyObject *const *args, size_t nargsf, PyObject *kwnames)
{
    ViewFunctionObject *self = (ViewFunctionObject *)op;
    if (vf_check(self) < 0) {
        return NULL;
    }
    PyObject *fn = self->fn;
    if (self->convert != NULL) {
        Py_ssize_t total =
            PyVectorcall_NARGS(nargsf) + (kwnames != NULL ? PyTuple_GET_SIZE(kwnames) : 0);
        for (Py_ssize_t i = 0; i < total; i++) {
            if (needs_copy(args[i])) {
                return vf_call_converted(self, args, PyVectorcall_NARGS(nargsf), kwnames);
            }
        }
    }
    if (kwnames == NULL && PyCFunction_CheckExact(fn)) {
        /* a builtin's C function directly, as CPython's specialised calls do (math.sqrt) */
        Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
        int flags = PyCFunction_GET_FLAGS(fn);
        PyObject *res = NULL;
        if (Py_EnterRecursiveCall(" in a module's function")) {
            return NULL;
        }
        if (flags == METH_O && nargs == 1) {
            res = PyCFunction_GET_FUNCTION(fn)(PyCFunction_GET_SELF(fn), args[0]);
        }
        else if (flags == METH_FASTCALL) {
            res = ((_PyCFunctionFast)(void (*)(void))PyCFunction_GET_FUNCTION(fn))(
                PyCFunction_GET_SELF(fn), args, nargs);
        }
        else {
            Py_LeaveRecursiveCall();
            return PyObject_Vectorcall(fn, args, nargsf, NULL);
        }
        Py_LeaveRecursiveCall();
        return res;
    }
    return PyObject_Vectorcall(fn, args, nargsf, kwnames);
}

static PyTypeObject ViewFunction_Type;

/* make(fn, owner, convert=None): for the engine only (the type has no constructor capsule
 * code could call) */
static PyObject *
vf_make(PyObject *module, PyObject *args)
{
    PyObject *fn, *owner, *convert = Py_None;
    if (!PyArg_UnpackTuple(args, "make", 2, 3, &fn, &owner, &convert)) {
        return NULL;
    }
    ViewFunctionObject *self = PyObject_GC_New(ViewFunctionObject, &ViewFunction_Type);
    if (self == NULL) {
        return NULL;
    }
    self->fn = Py_NewRef(fn);
    self->owner = Py_NewRef(owner);
    self->token = Py_NewRef(Py_None); /* never an epoch: checked at the first call */
    self->convert = convert == Py_None ? NULL : Py_NewRef(convert);
    self->vectorcall = vf_vectorcall;
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

static int
vf_traverse(ViewFunctionObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->fn);
    Py_VISIT(self->owner);
    Py_VISIT(self->token);
    Py_VISIT(self->convert);
    return 0;
}

static int
vf_clear(ViewFunctionObject *self)
{
    Py_CLEAR(self->fn);
    Py_CLEAR(self->owner);
    Py_CLEAR(self->token);
    Py_CLEAR(self->convert);
    return 0;
}

static void
vf_dealloc(ViewFunctionObject *self)
{
    PyObject_GC_UnTrack(self);
    vf_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
vf_repr(ViewFunctionObject *self)
{
    if (self->fn == NULL) {
        return PyUnicode_FromString("<view function>");
    }
    return PyObject_Repr(self->fn);
}

/* A Python function stored as a class attribute binds like the function it stands for. */
static PyObject *
vf_descr_get(PyObject *op, PyObject *obj, PyObject *type)
{
    ViewFunctionObject *self = (ViewFunctionObject *)op;
    if (obj == NULL || obj == Py_None || self->fn == NULL ||
        Py_TYPE(self->fn)->tp_descr_get == NULL || !PyFunction_Check(self->fn)) {
        return Py_NewRef(op);
    }
    return PyMethod_New(op, obj);
}

/* Its plain facts, as str (or None) only: the function's own attributes are not reachable. */
static PyObject *
vf_fact(ViewFunctionObject *self, void *closure)
{
    if (self->fn == NULL) {
        Py_RETURN_NONE;
    }
    PyObject *v = PyObject_GetAttrString(self->fn, (const char *)closure);
    if (v == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) {
            return NULL;
        }
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    if (!PyUnicode_CheckExact(v)) {
        Py_DECREF(v);
        Py_RETURN_NONE;
    }
    return v;
}

static PyObject *
vf_self(PyObject *op, PyObject *unused)
{
    return Py_NewRef(op);
}

static PyGetSetDef vf_getset[] = {
    {"__name__", (getter)vf_fact, NULL, NULL, "__name__"},
    {"__qualname__", (getter)vf_fact, NULL, NULL, "__qualname__"},
    {"__module__", (getter)vf_fact, NULL, NULL, "__module__"},
    {"__doc__", (getter)vf_fact, NULL, NULL, "__doc__"},
    {"__text_signature__", (getter)vf_fact, NULL, NULL, "__text_signature__"},
    {NULL},
};

static PyMethodDef vf_methods[] = {
    /* copy.copy/deepcopy of a function returns it (functions are atomic for copy) */
    {"__copy__", vf_self, METH_NOARGS, NULL},
    {"__deepcopy__", (PyCFunction)(void (*)(void))vf_self, METH_O, NULL},
    {NULL},
};

static PyTypeObject ViewFunction_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ipycap.engine._viewcalls.ViewFunction",
    .tp_basicsize = sizeof(ViewFunctionObject),
    .tp_dealloc = (destructor)vf_dealloc,
    .tp_vectorcall_offset = offsetof(ViewFunctionObject, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_repr = (reprfunc)vf_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_doc = "A function handed out by a module view: refused once its grant is gone.",
    .tp_traverse = (traverseproc)vf_traverse,
    .tp_clear = (inquiry)vf_clear,
    .tp_methods = vf_methods,
    .tp_getset = vf_getset,
    .tp_descr_get = vf_descr_get,
    .tp_new = NULL,
};

static PyObject *
setup(PyObject *module, PyObject *args)
{
    PyObject *state, *hook;
    if (!PyArg_ParseTuple(args, "O!O", &PyList_Type, &state, &hook)) {
        return NULL;
    }
    if (epoch_state != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "view functions are set up once per process");
        return NULL;
    }
    epoch_state = Py_NewRef(state);
    check_hook = Py_NewRef(hook);
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

/* The capsule frame whose view function call is running on this thread now, or None. */
static PyObject *
crossing_frame(PyObject *module, PyObject *unused)
{
    if (audit_depth <= 0 || audit_depth > AUDIT_STACK || audit_frames[audit_depth - 1] == NULL) {
        Py_RETURN_NONE;
    }
    return Py_NewRef(audit_frames[audit_depth - 1]);
}

static PyObject *
set_result_hook(PyObject *module, PyObject *hook)
{
    if (result_hook != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the result hook is set once per process");
        return NULL;
    }
    result_hook = Py_NewRef(hook);
    Py_RETURN_NONE;
}

static PyObject *
unwrap(PyObject *module, PyObject *op)
{
    /* for trusted code (the engine): the function itself, or None */
    if (Py_TYPE(op) != &ViewFunction_Type || ((ViewFunctionObject *)op)->fn == NULL) {
        Py_RETURN_NONE;
    }
    return Py_NewRef(((ViewFunctionObject *)op)->fn);
}

static PyMethodDef module_methods[] = {
    {"setup", setup, METH_VARARGS, NULL},
    {"make", vf_make, METH_VARARGS, NULL},
    {"unwrap", unwrap, METH_O, NULL},
    {"set_result_hook", set_result_hook, METH_O, NULL},
    {"set_audit", set_audit, METH_O, NULL},
    {"crossing_frame", crossing_frame, METH_NOARGS, NULL},
    {NULL},
};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "ipycap.engine._viewcalls",
    "Revocable functions handed out by module views.", -1, module_methods,
};

PyMODINIT_FUNC
PyInit__viewcalls(void)
{
    if (PyType_Ready(&ViewFunction_Type) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&moduledef);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&ViewFunction_Type);
    if (PyModule_AddObject(m, "ViewFunction", (PyObject *)&ViewFunction_Type) < 0) {
        Py_DECREF(&ViewFunction_Type);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
