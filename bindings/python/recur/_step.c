/* recur._step: State.step written in C.
 *
 * state.step(x) is the call a Python program makes once per token or frame. Through ctypes its fixed cost
 * (converting the arguments, the foreign call, copying the output) was larger than a small model's whole
 * step. A Stepper makes the library call with what it was given once, when the state was made:
 *
 *   - the state's handle and the library's functions as addresses taken from the library the package
 *     loaded (recur/_loader.py), so one library serves the process and this module links none; their
 *     types are those of include/recur.h;
 *   - the output array (numpy, float32): for a token model a buffer of the state's own, which
 *     recur_state_step_copy fills; for a frame model a view of the state's output, which
 *     recur_state_step_frame updates in place; step() returns it, or with copy=True a copy (the array
 *     the previous step returned, refilled, when nothing else holds it: see reusable());
 *   - Python callables for everything but the common case, so each error is the one the rest of the
 *     package raises: check(status) raises RecurError with the library's message, convert(x) turns any
 *     other token or frame into a Python int or a float32 array (or raises), error(status, message) makes
 *     a RecurError.
 *
 * A token that is an int in range, or a frame that is a one-dimensional C-contiguous float32 numpy array of
 * the frame size, goes to the library as it is (a misaligned one through a buffer of the Stepper's own).
 * The module is built from Python's and numpy's headers and recur.h.
 *
 * The interpreter lock is released during the library call (as ctypes does) for a model whose step is
 * long enough for other threads to gain from it (`release`, which recur/model.py sets from the file's
 * size), so threads stepping different states run at once. A small model keeps the lock: its whole step is
 * far shorter than the interpreter's switch interval, and giving the lock up and taking it back costs
 * about 400 instructions, more than the rest of this function (numpy keeps it for small arrays likewise).
 * One state stepped from two threads at once is refused with RecurError; a state closed while another
 * thread steps it is freed when that step
 * returns. The Stepper frees the state: State.close() calls its close(). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#include <numpy/arrayobject.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "recur.h"

typedef __typeof__(recur_state_step_copy) step_token_fn;
typedef __typeof__(recur_state_step_frame) step_frame_fn;
typedef __typeof__(recur_state_free) free_fn;

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    recur_state *state;          /* NULL once freed */
    step_token_fn *step_token;   /* token models */
    step_frame_fn *step_frame;   /* frame models */
    free_fn *free_state;
    long long vocab;             /* token models: ids in 0 ..< vocab */
    Py_ssize_t frame_size;       /* frame models: floats per frame; 0 for a token model */
    Py_ssize_t out_size;
    PyArrayObject *out;          /* what a step writes (see above) */
    PyObject *last;              /* the copy the last step returned (reused when nobody else holds it) */
    float *frame;                /* frame models: frame_size floats for a misaligned frame */
    PyObject *check, *convert, *error;
    int release;                 /* give up the interpreter lock during the library call */
    int closed;                  /* close() was called */
    int busy;                    /* a step is running with the interpreter lock released */
} Stepper;

static PyObject *copy_kw;        /* "copy" */

static void raise_error(Stepper *s, const char *message) {
    PyObject *e = PyObject_CallFunction(s->error, "is", RECUR_ERR_INVALID_ARGUMENT, message);
    if (e) {
        PyErr_SetObject((PyObject *)Py_TYPE(e), e);
        Py_DECREF(e);
    }
}

/* A frame the library can read as it is: a float32 numpy vector of the frame size, C-contiguous, in this
 * machine's byte order (alignment is seen to by the caller). */
static int is_frame(const Stepper *s, PyObject *x) {
    PyArrayObject *a = (PyArrayObject *)x;
    return PyArray_CheckExact(x) && PyArray_TYPE(a) == NPY_FLOAT32 && PyArray_NDIM(a) == 1 &&
           PyArray_DIM(a, 0) == s->frame_size && PyArray_IS_C_CONTIGUOUS(a) && PyArray_ISNOTSWAPPED(a);
}

/* Whether the copy returned by the previous step can be this step's: nothing but the Stepper holds it (no
 * reference, view, buffer export or weak reference elsewhere), and it is still the vector it was made as
 * (exact ndarray, float32 in native order, one dimension of out_size, owning its writable data). Nobody can
 * then tell it from a new array, and the step saves an allocation and a free (CPython's zip and enumerate
 * reuse their result tuples on the same condition). Never with the interpreter lock disabled, where the
 * reference count may be in flux. */
static int reusable(const Stepper *s) {
#ifdef Py_GIL_DISABLED
    (void)s;
    return 0;
#else
    PyArrayObject *a = (PyArrayObject *)s->last;
    const int want = NPY_ARRAY_C_CONTIGUOUS | NPY_ARRAY_OWNDATA | NPY_ARRAY_WRITEABLE | NPY_ARRAY_ALIGNED;
    return a && Py_REFCNT(s->last) == 1 && Py_IS_TYPE(s->last, &PyArray_Type) && PyArray_NDIM(a) == 1 &&
           PyArray_DIM(a, 0) == s->out_size && PyArray_TYPE(a) == NPY_FLOAT32 && PyArray_ISNOTSWAPPED(a) &&
           (PyArray_FLAGS(a) & want) == want && !PyArray_BASE(a) &&
           ((PyArrayObject_fields *)a)->weakreflist == NULL;
#endif
}

/* The library call for one token (frame == NULL) or one frame; -1 (a Python error set) when the state is
 * closed or another thread is stepping it. Nothing runs Python code between that check and the release of
 * the interpreter lock. */
static int call(Stepper *s, int32_t token, const float *frame) {
    if (s->closed) {
        raise_error(s, "the state is closed");
        return -1;
    }
    if (s->busy) {
        raise_error(s, "the state is being stepped by another thread (a state is one stream: step it from one "
                       "thread at a time, or give each thread its own)");
        return -1;
    }
    recur_status status;
    recur_state *state = s->state;
    float *out = (float *)PyArray_DATA(s->out);
    if (!s->release)
        return (int)(frame ? s->step_frame(state, frame, (size_t)s->frame_size, NULL)
                           : s->step_token(state, token, out, (size_t)s->out_size));
    s->busy = 1;
    Py_BEGIN_ALLOW_THREADS
    if (frame)
        status = s->step_frame(state, frame, (size_t)s->frame_size, NULL);
    else
        status = s->step_token(state, token, out, (size_t)s->out_size);
    Py_END_ALLOW_THREADS
    s->busy = 0;
    return (int)status;
}

static void free_now(Stepper *s) {
    if (s->state) {
        s->free_state(s->state);
        s->state = NULL;
    }
}

/* step(x, copy=True) */
static PyObject *stepper_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf, PyObject *kwnames) {
    Stepper *s = (Stepper *)self;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf), nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    PyObject *x, *copy_arg = NULL;
    if (nargs < 1 || nargs + nkw > 2 || (nkw == 1 && nargs != 1)) {
        PyErr_SetString(PyExc_TypeError, "step() takes a token (or frame) and an optional copy flag");
        return NULL;
    }
    x = args[0];
    if (nargs == 2)
        copy_arg = args[1];
    else if (nkw == 1) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, 0);
        if (name != copy_kw && PyUnicode_Compare(name, copy_kw) != 0) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_TypeError, "step() got an unexpected keyword argument '%U'", name);
            return NULL;
        }
        copy_arg = args[1];
    }
    int copy = 1;
    if (copy_arg && (copy = PyObject_IsTrue(copy_arg)) < 0)
        return NULL;
    if (s->closed) {                               /* before the argument is looked at, as call() would */
        raise_error(s, "the state is closed");
        return NULL;
    }

    int status;
    if (s->frame_size) {
        PyObject *held = NULL;
        PyArrayObject *a = (PyArrayObject *)x;
        if (!is_frame(s, x)) {
            if (!(held = PyObject_CallOneArg(s->convert, x)))
                return NULL;                 /* not a frame: the converter's TypeError or ValueError */
            a = (PyArrayObject *)held;
            if (!is_frame(s, held)) {
                Py_DECREF(held);
                PyErr_SetString(PyExc_SystemError, "recur: the frame converter returned no float32 frame");
                return NULL;
            }
        }
        const float *frame = (const float *)PyArray_DATA(a);
        if (!PyArray_ISALIGNED(a)) {
            memcpy(s->frame, frame, (size_t)s->frame_size * sizeof(float));
            frame = s->frame;
        }
        status = call(s, 0, frame);          /* (the caller holds x, and this function held, meanwhile) */
        Py_XDECREF(held);
    } else {
        long long token = -1;
        if (PyLong_CheckExact(x)) {
            int overflow = 0;
            token = PyLong_AsLongLongAndOverflow(x, &overflow);
            if (overflow)
                token = -1;
        }
        if (!(token >= 0 && token < s->vocab)) {
            PyObject *t = PyObject_CallOneArg(s->convert, x);   /* raises for anything not a valid id */
            if (!t)
                return NULL;
            token = PyLong_AsLongLong(t);
            Py_DECREF(t);
            if (token == -1 && PyErr_Occurred())
                return NULL;
            if (!(token >= 0 && token < s->vocab)) {
                PyErr_SetString(PyExc_SystemError, "recur: the token converter returned an id out of range");
                return NULL;
            }
        }
        status = call(s, (int32_t)token, NULL);
    }
    if (status < 0)
        return NULL;
    if (s->closed)                                 /* closed by another thread during the call */
        free_now(s);
    if (status != RECUR_OK) {
        PyObject *r = PyObject_CallFunction(s->check, "i", (int)status);
        Py_XDECREF(r);
        if (!r)
            return NULL;
        PyErr_SetString(PyExc_SystemError, "recur: check() did not raise for a failed step");
        return NULL;
    }
    if (copy) {                 /* a new vector and memcpy (PyArray_NewCopy goes through numpy's general assignment) */
        npy_intp n = s->out_size;
        PyObject *r = reusable(s) ? s->last : PyArray_SimpleNew(1, &n, NPY_FLOAT32);
        if (!r)
            return NULL;
        memcpy(PyArray_DATA((PyArrayObject *)r), PyArray_DATA(s->out), (size_t)n * sizeof(float));
        Py_INCREF(r);           /* the caller's reference (a new array's first one is the Stepper's) */
        if (r != s->last)
            Py_XSETREF(s->last, r);
        return r;
    }
    Py_INCREF(s->out);
    return (PyObject *)s->out;
}

/* Stepper(state, step_token, step_frame, free, vocab, frame_size, out, check, convert, error, release): addresses
 * as ints (0 for the step function a model does not use); out a C-contiguous float32 vector (writable for
 * a token model). */
static PyObject *stepper_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
    unsigned long long state, step_token, step_frame, free_state;
    long long vocab;
    Py_ssize_t frame_size;
    PyObject *out, *check, *convert, *error;
    int release;
    if (kwargs && PyDict_GET_SIZE(kwargs)) {
        PyErr_SetString(PyExc_TypeError, "Stepper takes positional arguments only");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "KKKKLnOOOOp", &state, &step_token, &step_frame, &free_state, &vocab, &frame_size,
                          &out, &check, &convert, &error, &release))
        return NULL;
    if (!state || !free_state || (frame_size ? !step_frame : !step_token) || frame_size < 0 ||
        (!frame_size && (vocab <= 0 || vocab > INT32_MAX)) || !PyCallable_Check(check) ||
        !PyCallable_Check(convert) || !PyCallable_Check(error)) {
        PyErr_SetString(PyExc_ValueError, "Stepper: bad arguments");
        return NULL;
    }
    PyArrayObject *o = (PyArrayObject *)out;
    if (!PyArray_Check(out) || PyArray_TYPE(o) != NPY_FLOAT32 || PyArray_NDIM(o) != 1 ||
        !PyArray_IS_C_CONTIGUOUS(o) || !PyArray_ISALIGNED(o) || !PyArray_ISNOTSWAPPED(o) ||
        (!frame_size && !PyArray_ISWRITEABLE(o))) {
        PyErr_SetString(PyExc_ValueError, "Stepper: the output must be a float32 vector");
        return NULL;
    }
    Stepper *s = (Stepper *)type->tp_alloc(type, 0);
    if (!s)
        return NULL;
    if (frame_size && !(s->frame = malloc((size_t)frame_size * sizeof(float)))) {
        Py_DECREF(s);
        return PyErr_NoMemory();
    }
    s->vectorcall = stepper_vectorcall;
    s->step_token = (step_token_fn *)(uintptr_t)step_token;
    s->step_frame = (step_frame_fn *)(uintptr_t)step_frame;
    s->free_state = (free_fn *)(uintptr_t)free_state;
    s->vocab = vocab;
    s->release = release;
    s->frame_size = frame_size;
    s->out_size = PyArray_DIM(o, 0);
    Py_INCREF(out);
    s->out = o;
    Py_INCREF(check);
    s->check = check;
    Py_INCREF(convert);
    s->convert = convert;
    Py_INCREF(error);
    s->error = error;
    s->state = (recur_state *)(uintptr_t)state;    /* last: from here the Stepper frees it */
    return (PyObject *)s;
}

static PyObject *stepper_close(PyObject *self, PyObject *unused) {
    Stepper *s = (Stepper *)self;
    (void)unused;
    s->closed = 1;
    if (!s->busy)
        free_now(s);
    Py_RETURN_NONE;
}

static void stepper_dealloc(PyObject *self) {
    Stepper *s = (Stepper *)self;
    free_now(s);              /* never busy here: a running step holds a reference */
    free(s->frame);
    Py_XDECREF(s->out);
    Py_XDECREF(s->last);
    Py_XDECREF(s->check);
    Py_XDECREF(s->convert);
    Py_XDECREF(s->error);
    Py_TYPE(self)->tp_free(self);
}

static PyObject *stepper_get_closed(PyObject *self, void *unused) {
    (void)unused;
    return PyBool_FromLong(((Stepper *)self)->closed);
}

static PyMethodDef stepper_methods[] = {
    {"close", stepper_close, METH_NOARGS,
     "Frees the state (after the running step, when another thread is stepping it); later steps raise."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef stepper_getset[] = {
    {"closed", stepper_get_closed, NULL, "close() was called", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject StepperType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "recur._step.Stepper",
    .tp_doc = "step(token_or_frame, copy=True): one step of a state; see recur.State.step.",
    .tp_basicsize = sizeof(Stepper),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_new = stepper_new,
    .tp_dealloc = stepper_dealloc,
    .tp_call = PyVectorcall_Call,
    .tp_vectorcall_offset = offsetof(Stepper, vectorcall),
    .tp_methods = stepper_methods,
    .tp_getset = stepper_getset,
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "recur._step", "State.step in C (see recur/_step.c).", -1, NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__step(void) {
    import_array();
    if (PyType_Ready(&StepperType) < 0)
        return NULL;
    copy_kw = PyUnicode_InternFromString("copy");
    if (!copy_kw)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    Py_INCREF(&StepperType);
    if (PyModule_AddObject(m, "Stepper", (PyObject *)&StepperType) < 0) {
        Py_DECREF(&StepperType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
