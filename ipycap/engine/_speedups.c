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

typedef struct {
    PyObject_HEAD
    PyObject *method;
    PyObject *cap;
} MethodProxyObject;

typedef struct {
    PyObject_HEAD
    PyObject *target;
    PyObject *cap;
    int writable;
    PyObject *weakreflist;
} ProxyBaseObject;

static PyTypeObject ProxyBase_Type;
static PyTypeObject MethodProxy_Type;
static PyObject *hook_slow = NULL;   /* slow(proxy, name) -> value */
static PyObject *hook_call = NULL;   /* call(method, cap, args, kwargs) -> value */
static PyObject *hook_result = NULL; /* result(value, cap) -> wrapped value */
static PyObject *hook_finish = NULL; /* finish(proxy, name, value) -> value */
static PyObject *hook_error = NULL;  /* error(exc) -> scrubbed exception */
/* membrane/readonly.py FAST_TYPES: type -> True when read-only proxies of it may bind their
 * Python methods here without asking whether the method mutates (no container in its MRO). */
static PyObject *readonly_fast_types = NULL;
static PyObject *str_revoked = NULL;
static PyObject *hook_view_miss = NULL; /* view_miss(view, name) -> value */

static int
is_plain(PyObject *v)
{
    PyTypeObject *t = Py_TYPE(v);
    return t == &PyLong_Type || t == &PyUnicode_Type || t == &PyFloat_Type ||
           t == &PyBool_Type || v == Py_None || t == &PyBytes_Type;
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
    PyObject *scrubbed = PyObject_CallOneArg(hook_error, value);
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

static PyObject *
proxy_getattro(ProxyBaseObject *self, PyObject *name)
{
    if (hook_slow == NULL || hook_finish == NULL || self->target == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "ipycap membrane is not initialised");
        return NULL;
    }
    if (PyUnicode_CheckExact(name) && PyUnicode_GET_LENGTH(name) > 0 &&
        PyUnicode_READ_CHAR(name, 0) != '_') {
        PyObject *revoked = PyObject_GetAttr(self->cap, str_revoked);
        if (revoked == NULL) {
            return NULL;
        }
        int is_revoked = (revoked != Py_False);
        Py_DECREF(revoked);
        if (!is_revoked) {
            PyObject *value = PyObject_GetAttr(self->target, name);
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
                (self->writable || readonly_fast(Py_TYPE(self->target)))) {
                MethodProxyObject *mp = PyObject_GC_New(MethodProxyObject, &MethodProxy_Type);
                if (mp == NULL) {
                    Py_DECREF(value);
                    return NULL;
                }
                mp->method = value; /* steals the reference */
                mp->cap = Py_NewRef(self->cap);
                PyObject_GC_Track(mp);
                return (PyObject *)mp;
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
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    proxy_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject ProxyBase_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "ipycap.engine._speedups.ProxyBase",
    .tp_basicsize = sizeof(ProxyBaseObject),
    .tp_dealloc = (destructor)proxy_dealloc,
    .tp_getattro = (getattrofunc)proxy_getattro,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
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
    PyObject *revoked = PyObject_GetAttr(self->cap, str_revoked);
    if (revoked == NULL) {
        return NULL;
    }
    int is_revoked = (revoked != Py_False);
    Py_DECREF(revoked);
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
    PyObject *res = PyObject_Call(self->method, args, NULL);
    if (res == NULL) {
        return raise_scrubbed();
    }
    if (is_plain(res)) {
        return res;
    }
    PyObject *wrapped = PyObject_CallFunctionObjArgs(hook_result, res, self->cap, NULL);
    Py_DECREF(res);
    return wrapped;
}

static int
method_traverse(MethodProxyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->method);
    Py_VISIT(self->cap);
    return 0;
}

static int
method_clear(MethodProxyObject *self)
{
    Py_CLEAR(self->method);
    Py_CLEAR(self->cap);
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
    .tp_getattro = PyObject_GenericGetAttr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
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

static PyObject *
set_readonly_types(PyObject *module, PyObject *table)
{
    if (!PyDict_CheckExact(table) || readonly_fast_types != NULL) {
        PyErr_SetString(PyExc_TypeError, "set_readonly_types(dict), once per process");
        return NULL;
    }
    readonly_fast_types = Py_NewRef(table);
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
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "new_method_proxy(method, cap)");
        return NULL;
    }
    MethodProxyObject *mp = PyObject_GC_New(MethodProxyObject, &MethodProxy_Type);
    if (mp == NULL) {
        return NULL;
    }
    mp->method = Py_NewRef(args[0]);
    mp->cap = Py_NewRef(args[1]);
    PyObject_GC_Track(mp);
    return (PyObject *)mp;
}

static PyMethodDef methods[] = {
    {"freeze_type", freeze_type, METH_O, NULL},
    {"new_method_proxy", (PyCFunction)(void (*)(void))new_method_proxy, METH_FASTCALL, NULL},
    {"set_view_hook", set_view_hook, METH_O, NULL},
    {"new_proxy", (PyCFunction)(void (*)(void))new_proxy, METH_FASTCALL, NULL},
    {"proxy_target", proxy_target, METH_O, NULL},
    {"proxy_cap", proxy_cap, METH_O, NULL},
    {"proxy_writable", proxy_writable, METH_O, NULL},
    {"set_readonly_types", set_readonly_types, METH_O, NULL},
    {"set_hooks", (PyCFunction)(void (*)(void))set_hooks, METH_FASTCALL, NULL},
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
    str_revoked = PyUnicode_InternFromString("revoked");
    if (str_revoked == NULL) {
        return NULL;
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
    return m;
}
