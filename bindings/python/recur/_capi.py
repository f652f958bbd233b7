"""The C API of include/recur.h, one to one, through ctypes.

Each function of the header is declared once here (argument and result types), with its C declaration
as a comment above it; see the header for ownership rules and status codes. Functions return the raw
``recur_status``; :func:`check` turns a failure into :class:`RecurError` carrying the library's own
message. The library is loaded on first use (:func:`lib`), not at import, so that the pure-Python parts of
the package work without it.
"""

from __future__ import annotations

import ctypes as C
import enum
import threading

from . import _loader

# Header version this module mirrors (RECUR_VERSION_* in recur.h).
RECUR_VERSION_MAJOR = 0
RECUR_VERSION_MINOR = 1
RECUR_VERSION_PATCH = 0
RECUR_VERSION_STRING = "0.1.0"
RECUR_FORMAT_VERSION_MAJOR = 6
RECUR_FORMAT_VERSION_MINOR = 0


class Status(enum.IntEnum):
    """recur_status values."""
    OK = 0
    INVALID_ARGUMENT = 1
    IO = 2
    FORMAT = 3
    UNSUPPORTED_VERSION = 4
    CHECKSUM = 5
    MODEL = 6
    OUT_OF_RANGE = 7
    BUFFER_TOO_SMALL = 8
    MISMATCH = 9
    NUMERICAL = 10
    UNSUPPORTED = 11
    OUT_OF_MEMORY = 12


# RECUR_OPEN_* flags
RECUR_OPEN_SKIP_CHECKSUM = 1
RECUR_OPEN_NO_MMAP = 2
RECUR_OPEN_NO_PADDING = 4

# recur_model_property
RECUR_MODEL_VOCAB_SIZE = 0
RECUR_MODEL_OUTPUT_SIZE = 1
RECUR_MODEL_STATE_FLOATS = 2
RECUR_MODEL_TOKENIZER = 3
RECUR_MODEL_BOS_ID = 4
RECUR_MODEL_EOS_ID = 5
RECUR_MODEL_PAD_ID = 6
RECUR_MODEL_UNK_ID = 7
RECUR_MODEL_OUTPUT_IS_PROBABILITY = 8
RECUR_MODEL_FORMAT_MAJOR = 9
RECUR_MODEL_FORMAT_MINOR = 10
RECUR_MODEL_CHECKSUM = 11
RECUR_MODEL_PARAMETERS = 12
RECUR_MODEL_LAYERS = 13
RECUR_MODEL_FILE_BYTES = 14
RECUR_MODEL_CAN_STEP = 15
RECUR_MODEL_TASK = 16
RECUR_MODEL_INPUT = 17
RECUR_MODEL_FRAME_SIZE = 18
RECUR_MODEL_OUTPUT_KIND = 19

# recur_task
RECUR_TASK_GENERATE = 0
RECUR_TASK_CLASSIFY = 1
RECUR_TASK_TAG = 2
RECUR_TASK_SEQ2SEQ = 3
RECUR_TASK_REGRESS = 4
TASKS = ("generate", "classify", "tag", "seq2seq", "regress")   # by recur_task value

# recur_input
RECUR_INPUT_TOKENS = 0
RECUR_INPUT_FRAMES = 1
INPUTS = ("tokens", "frames")                        # by recur_input value

# recur_output_kind
RECUR_OUTPUT_LOGITS = 0
RECUR_OUTPUT_PROBABILITIES = 1
RECUR_OUTPUT_INDEPENDENT = 2
RECUR_OUTPUT_VALUES = 3
OUTPUT_KINDS = ("logits", "probabilities", "independent", "values")   # by recur_output_kind value

# recur_unknown
RECUR_UNKNOWN_ERROR = 0
RECUR_UNKNOWN_SKIP = 1
RECUR_UNKNOWN_REPLACE = 2
UNKNOWN = ("error", "skip", "replace")              # by recur_unknown value

RECUR_TOKENIZER_CHAR = 0
RECUR_TOKENIZER_WORD = 1

# recur_layer_property
RECUR_LAYER_KIND = 0
RECUR_LAYER_INPUT_SIZE = 1
RECUR_LAYER_UNITS = 2
RECUR_LAYER_OUTPUT_SIZE = 3
RECUR_LAYER_DIRECTIONS = 4
RECUR_LAYER_STATE_VECTORS = 5
RECUR_LAYER_RETURN_SEQUENCES = 6

# recur_layer_kind
RECUR_LAYER_EMBEDDING = 0
RECUR_LAYER_RNN = 1
RECUR_LAYER_GRU = 2
RECUR_LAYER_LSTM = 3
RECUR_LAYER_DENSE = 4
RECUR_LAYER_ATTENTION = 5
LAYER_KINDS = ("embedding", "rnn", "gru", "lstm", "dense", "attention")   # by recur_layer_kind value (the file's layer.i.kind)

# recur_layer_values
RECUR_VALUES_OUTPUT = 0
RECUR_VALUES_HIDDEN = 1
RECUR_VALUES_CELL = 2


class RecurError(Exception):
    """An error reported by the Recur library (or found before calling it).

    ``code`` is a :class:`Status` (``RecurError.code == Status.CHECKSUM``), ``message`` the library's
    message (``recur_last_error()``).
    """

    def __init__(self, code: int, message: str):
        try:
            code = Status(code)
        except ValueError:
            pass
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        name = self.code.name.lower() if isinstance(self.code, Status) else str(self.code)
        return f"{self.message} [{name}]"


# Opaque handles: distinct pointer types, so that ctypes refuses a state where a model is expected.
class recur_model(C.Structure):
    pass


class recur_state(C.Structure):
    pass


class recur_sampler(C.Structure):
    pass


model_p = C.POINTER(recur_model)
state_p = C.POINTER(recur_state)
sampler_p = C.POINTER(recur_sampler)
recur_status = C.c_int


class recur_sampler_params(C.Structure):
    # typedef struct recur_sampler_params { float temperature; int32_t top_k; float top_p; uint64_t seed; }
    _fields_ = [("temperature", C.c_float), ("top_k", C.c_int32), ("top_p", C.c_float), ("seed", C.c_uint64)]


# typedef int (*recur_piece_callback)(const char *piece, size_t length, void *user);
recur_piece_callback = C.CFUNCTYPE(C.c_int, C.POINTER(C.c_char), C.c_size_t, C.c_void_p)

# typedef int (*recur_batch_callback)(size_t index, const char *piece, size_t length, void *user);
recur_batch_callback = C.CFUNCTYPE(C.c_int, C.c_size_t, C.POINTER(C.c_char), C.c_size_t, C.c_void_p)

# typedef int (*recur_continuation_callback)(size_t rank, const char *text, size_t length, const int32_t *tokens,
#                                            size_t count, double log_probability, double score, void *user);
recur_continuation_callback = C.CFUNCTYPE(C.c_int, C.c_size_t, C.POINTER(C.c_char), C.c_size_t,
                                          C.POINTER(C.c_int32), C.c_size_t, C.c_double, C.c_double, C.c_void_p)


class BeamParams(C.Structure):
    """recur_beam_params."""
    _fields_ = [("beam", C.c_int32), ("best", C.c_int32), ("length_penalty", C.c_float), ("unknown", C.c_int32)]


_P = C.POINTER
_size_p = _P(C.c_size_t)
_float_pp = _P(_P(C.c_float))


class TranslateParams(C.Structure):
    """recur_translate_params."""
    _fields_ = [("beam", C.c_int32), ("max_length", C.c_int32), ("length_penalty", C.c_float)]


def _declare(L: C.CDLL) -> C.CDLL:
    def fn(name, restype, *argtypes):
        f = getattr(L, name)
        f.restype = restype
        f.argtypes = list(argtypes)

    # void recur_version(int *major, int *minor, int *patch);
    fn("recur_version", None, _P(C.c_int), _P(C.c_int), _P(C.c_int))
    # const char *recur_version_string(void);
    fn("recur_version_string", C.c_char_p)
    # void recur_format_version(int *major, int *minor);
    fn("recur_format_version", None, _P(C.c_int), _P(C.c_int))
    # const char *recur_status_string(recur_status status);
    fn("recur_status_string", C.c_char_p, recur_status)
    # const char *recur_last_error(void);
    fn("recur_last_error", C.c_char_p)

    # recur_status recur_model_open(const char *path, unsigned flags, recur_model **model);
    fn("recur_model_open", recur_status, C.c_char_p, C.c_uint, _P(model_p))
    # recur_status recur_model_open_buffer(const void *data, size_t size, unsigned flags, recur_model **model);
    fn("recur_model_open_buffer", recur_status, C.c_void_p, C.c_size_t, C.c_uint, _P(model_p))
    # void recur_model_free(recur_model *model);
    fn("recur_model_free", None, model_p)
    # recur_status recur_model_vocab_size(const recur_model *model, size_t *size);
    fn("recur_model_vocab_size", recur_status, model_p, _size_p)
    # recur_status recur_model_output_size(const recur_model *model, size_t *size);
    fn("recur_model_output_size", recur_status, model_p, _size_p)
    # recur_status recur_model_get(const recur_model *model, int property, int64_t *value);
    fn("recur_model_get", recur_status, model_p, C.c_int, _P(C.c_int64))
    # recur_status recur_model_token_text(const recur_model *model, int32_t id, const char **text, size_t *length);
    fn("recur_model_token_text", recur_status, model_p, C.c_int32, _P(_P(C.c_char)), _size_p)
    # recur_status recur_model_source_token_text(const recur_model *model, int32_t id, const char **text, size_t *length);
    fn("recur_model_source_token_text", recur_status, model_p, C.c_int32, _P(_P(C.c_char)), _size_p)
    # recur_status recur_model_token_id(const recur_model *model, const char *piece, int32_t *id);
    fn("recur_model_token_id", recur_status, model_p, C.c_char_p, _P(C.c_int32))
    # recur_status recur_model_encode(const recur_model *model, const char *text, int32_t *ids,
    #                                 size_t capacity, size_t *count);
    fn("recur_model_encode", recur_status, model_p, C.c_char_p, _P(C.c_int32), C.c_size_t, _size_p)
    # recur_status recur_model_encode_with(const recur_model *model, const char *text, int unknown,
    #                                      int32_t *ids, size_t capacity, size_t *count);
    fn("recur_model_encode_with", recur_status, model_p, C.c_char_p, C.c_int, _P(C.c_int32), C.c_size_t, _size_p)
    # recur_status recur_model_decode(const recur_model *model, const int32_t *ids, size_t n,
    #                                 char *buffer, size_t capacity, size_t *length);
    fn("recur_model_decode", recur_status, model_p, _P(C.c_int32), C.c_size_t, C.c_char_p, C.c_size_t, _size_p)

    # recur_status recur_state_new(recur_model *model, recur_state **state);
    fn("recur_state_new", recur_status, model_p, _P(state_p))
    # void recur_state_free(recur_state *state);
    fn("recur_state_free", None, state_p)
    # recur_status recur_state_reset(recur_state *state);
    fn("recur_state_reset", recur_status, state_p)
    # recur_status recur_state_position(const recur_state *state, uint64_t *position);
    fn("recur_state_position", recur_status, state_p, _P(C.c_uint64))
    # recur_status recur_state_output(const recur_state *state, const float **output);
    fn("recur_state_output", recur_status, state_p, _float_pp)
    # recur_status recur_state_step(recur_state *state, int32_t token, const float **logits);
    fn("recur_state_step", recur_status, state_p, C.c_int32, _float_pp)
    # recur_status recur_state_step_copy(recur_state *state, int32_t token, float *out, size_t capacity);
    fn("recur_state_step_copy", recur_status, state_p, C.c_int32, _P(C.c_float), C.c_size_t)
    # recur_status recur_state_prefill(recur_state *state, const int32_t *tokens, size_t n, const float **logits);
    fn("recur_state_prefill", recur_status, state_p, _P(C.c_int32), C.c_size_t, _float_pp)
    # recur_status recur_state_step_frame(recur_state *state, const float *frame, size_t n, const float **output);
    fn("recur_state_step_frame", recur_status, state_p, _P(C.c_float), C.c_size_t, _float_pp)
    # recur_status recur_state_prefill_frames(recur_state *state, const float *frames, size_t count,
    #                                         size_t frame_size, const float **output);
    fn("recur_state_prefill_frames", recur_status, state_p, _P(C.c_float), C.c_size_t, C.c_size_t, _float_pp)
    # recur_status recur_state_step_batch(const recur_model *model, recur_state *const *states, size_t n,
    #                                     const int32_t *tokens, float *out, size_t capacity);
    fn("recur_state_step_batch", recur_status, model_p, _P(state_p), C.c_size_t, _P(C.c_int32), _P(C.c_float),
       C.c_size_t)
    # recur_status recur_state_step_frames_batch(const recur_model *model, recur_state *const *states, size_t n,
    #                                            const float *frames, size_t frame_size, float *out,
    #                                            size_t capacity);
    fn("recur_state_step_frames_batch", recur_status, model_p, _P(state_p), C.c_size_t, _P(C.c_float), C.c_size_t,
       _P(C.c_float), C.c_size_t)
    # recur_status recur_state_size(const recur_state *state, size_t *size);
    fn("recur_state_size", recur_status, state_p, _size_p)
    # recur_status recur_state_save(const recur_state *state, void *buffer, size_t capacity, size_t *written);
    fn("recur_state_save", recur_status, state_p, C.c_void_p, C.c_size_t, _size_p)
    # recur_status recur_state_restore(recur_state *state, const void *data, size_t size);
    fn("recur_state_restore", recur_status, state_p, C.c_void_p, C.c_size_t)
    # recur_status recur_state_copy(recur_state *destination, const recur_state *source);
    fn("recur_state_copy", recur_status, state_p, state_p)

    # void recur_sampler_params_init(recur_sampler_params *params);
    fn("recur_sampler_params_init", None, _P(recur_sampler_params))
    # recur_status recur_sampler_new(const recur_sampler_params *params, recur_sampler **sampler);
    fn("recur_sampler_new", recur_status, _P(recur_sampler_params), _P(sampler_p))
    # void recur_sampler_free(recur_sampler *sampler);
    fn("recur_sampler_free", None, sampler_p)
    # recur_status recur_sampler_sample(recur_sampler *sampler, const float *logits, size_t n, int32_t *token);
    fn("recur_sampler_sample", recur_status, sampler_p, _P(C.c_float), C.c_size_t, _P(C.c_int32))
    # recur_status recur_sampler_sample_state(recur_sampler *sampler, const recur_state *state, int32_t *token);
    fn("recur_sampler_sample_state", recur_status, sampler_p, state_p, _P(C.c_int32))
    # recur_status recur_sampler_sample_batch(recur_sampler *const *samplers, recur_state *const *states, size_t n,
    #                                         int32_t *tokens);
    fn("recur_sampler_sample_batch", recur_status, _P(sampler_p), _P(state_p), C.c_size_t, _P(C.c_int32))
    # recur_status recur_generate(recur_state *state, recur_sampler *sampler, const char *prompt,
    #                             int32_t max_tokens, recur_piece_callback callback, void *user,
    #                             int32_t *generated);
    fn("recur_generate", recur_status, state_p, sampler_p, C.c_char_p, C.c_int32, recur_piece_callback,
       C.c_void_p, _P(C.c_int32))
    # recur_status recur_generate_batch(const recur_model *model, const char *const *prompts, size_t count,
    #                                   const int32_t *max_tokens, const recur_sampler_params *params,
    #                                   const char *const *stop, size_t stop_count, size_t slots,
    #                                   recur_batch_callback callback, void *user, int32_t *generated);
    # void recur_beam_params_init(recur_beam_params *params);
    fn("recur_beam_params_init", None, _P(BeamParams))
    # recur_status recur_generate_beam(recur_state *state, const char *prompt, int32_t max_tokens,
    #                                  const recur_beam_params *params, recur_piece_callback callback,
    #                                  recur_continuation_callback results, void *user, int32_t *generated);
    fn("recur_generate_beam", recur_status, state_p, C.c_char_p, C.c_int32, _P(BeamParams), recur_piece_callback,
       recur_continuation_callback, C.c_void_p, _P(C.c_int32))
    fn("recur_generate_batch", recur_status, model_p, _P(C.c_char_p), C.c_size_t, _P(C.c_int32),
       _P(recur_sampler_params), _P(C.c_char_p), C.c_size_t, C.c_size_t, recur_batch_callback, C.c_void_p,
       _P(C.c_int32))

    # recur_status recur_model_label(const recur_model *model, size_t index, const char **label);
    fn("recur_model_label", recur_status, model_p, C.c_size_t, _P(C.c_char_p))
    # recur_status recur_classify(const recur_model *model, const char *text, float *probabilities,
    #                             size_t capacity, size_t *count);
    fn("recur_classify", recur_status, model_p, C.c_char_p, _P(C.c_float), C.c_size_t, _size_p)
    # recur_status recur_tag(const recur_model *model, const char *text, int32_t *tags, size_t capacity,
    #                        size_t *count);
    fn("recur_tag", recur_status, model_p, C.c_char_p, _P(C.c_int32), C.c_size_t, _size_p)
    # recur_status recur_classify_batch(const recur_model *model, const char *const *texts, size_t n,
    #                                   float *probabilities, size_t capacity, size_t *classes);
    fn("recur_classify_batch", recur_status, model_p, _P(C.c_char_p), C.c_size_t, _P(C.c_float), C.c_size_t, _size_p)
    # recur_status recur_tag_batch(const recur_model *model, const char *const *texts, size_t n, int32_t *tags,
    #                              size_t capacity, size_t *counts);
    fn("recur_tag_batch", recur_status, model_p, _P(C.c_char_p), C.c_size_t, _P(C.c_int32), C.c_size_t, _size_p)
    # recur_status recur_predict(const recur_model *model, const float *frames, size_t count, size_t frame_size,
    #                            float *out, size_t capacity, size_t *rows);
    fn("recur_predict", recur_status, model_p, _P(C.c_float), C.c_size_t, C.c_size_t, _P(C.c_float), C.c_size_t,
       _size_p)
    # void recur_translate_params_init(recur_translate_params *params);
    fn("recur_translate_params_init", None, _P(TranslateParams))
    # recur_status recur_translate(const recur_model *model, const char *text,
    #                              const recur_translate_params *params, char *buffer, size_t capacity,
    #                              size_t *length);
    fn("recur_translate", recur_status, model_p, C.c_char_p, _P(TranslateParams), C.c_char_p, C.c_size_t, _size_p)
    # recur_status recur_translate_attention(const recur_model *model, const char *text,
    #                                        const recur_translate_params *params,
    #                                        int32_t *tokens, size_t tokens_capacity,
    #                                        int32_t *source, size_t source_capacity,
    #                                        float *weights, size_t weights_capacity,
    #                                        size_t *n_out, size_t *n_src);
    fn("recur_translate_attention", recur_status, model_p, C.c_char_p, _P(TranslateParams), _P(C.c_int32), C.c_size_t,
       _P(C.c_int32), C.c_size_t, _P(C.c_float), C.c_size_t, _size_p, _size_p)
    # recur_status recur_model_layer_get(const recur_model *model, size_t layer, int property, int64_t *value);
    fn("recur_model_layer_get", recur_status, model_p, C.c_size_t, C.c_int, _P(C.c_int64))
    # recur_status recur_state_layer(const recur_state *state, size_t layer, int values, float *out,
    #                                size_t capacity, size_t *count);
    fn("recur_state_layer", recur_status, state_p, C.c_size_t, C.c_int, _P(C.c_float), C.c_size_t, _size_p)
    # recur_status recur_model_layer_outputs(const recur_model *model, const int32_t *tokens, size_t n,
    #                                        size_t layer, int values, float *out, size_t capacity,
    #                                        size_t *rows, size_t *width);
    fn("recur_model_layer_outputs", recur_status, model_p, _P(C.c_int32), C.c_size_t, C.c_size_t, C.c_int,
       _P(C.c_float), C.c_size_t, _size_p, _size_p)
    # recur_status recur_model_layer_outputs_frames(const recur_model *model, const float *frames, size_t count,
    #                                               size_t frame_size, size_t layer, int values, float *out,
    #                                               size_t capacity, size_t *rows, size_t *width);
    fn("recur_model_layer_outputs_frames", recur_status, model_p, _P(C.c_float), C.c_size_t, C.c_size_t, C.c_size_t,
       C.c_int, _P(C.c_float), C.c_size_t, _size_p, _size_p)
    return L


# Names of every declared function (tests compare them with the header).
FUNCTIONS = (
    "recur_version", "recur_version_string", "recur_format_version", "recur_status_string", "recur_last_error",
    "recur_model_open", "recur_model_open_buffer", "recur_model_free", "recur_model_vocab_size",
    "recur_model_output_size", "recur_model_get", "recur_model_token_text", "recur_model_token_id",
    "recur_model_encode", "recur_model_encode_with", "recur_model_decode",
    "recur_state_new", "recur_state_free", "recur_state_reset", "recur_state_position", "recur_state_output",
    "recur_state_step", "recur_state_step_copy", "recur_state_prefill", "recur_state_step_frame",
    "recur_state_prefill_frames", "recur_state_step_batch", "recur_state_step_frames_batch", "recur_state_size", "recur_state_save",
    "recur_state_restore", "recur_state_copy",
    "recur_sampler_params_init", "recur_sampler_new", "recur_sampler_free", "recur_sampler_sample",
    "recur_sampler_sample_state", "recur_sampler_sample_batch", "recur_generate", "recur_beam_params_init",
    "recur_generate_beam", "recur_generate_batch",
    "recur_model_label", "recur_classify", "recur_tag", "recur_classify_batch", "recur_tag_batch", "recur_predict", "recur_translate_params_init",
    "recur_translate", "recur_translate_attention", "recur_model_source_token_text", "recur_model_layer_get", "recur_state_layer", "recur_model_layer_outputs",
    "recur_model_layer_outputs_frames",
)

_lock = threading.Lock()
_lib: "C.CDLL | None" = None


def lib() -> C.CDLL:
    """The library with every function declared, loaded on first use. Raises OSError when it cannot be
    found (see ``recur._loader``) or when its major.minor version differs from this package's."""
    global _lib
    if _lib is None:
        with _lock:
            if _lib is None:
                handle, path = _loader.load_library()
                L = _declare(handle)
                major, minor, patch = C.c_int(), C.c_int(), C.c_int()
                L.recur_version(C.byref(major), C.byref(minor), C.byref(patch))
                if (major.value, minor.value) != (RECUR_VERSION_MAJOR, RECUR_VERSION_MINOR):
                    raise OSError(f"{path} is Recur {major.value}.{minor.value}.{patch.value}; this package "
                                  f"needs {RECUR_VERSION_MAJOR}.{RECUR_VERSION_MINOR}.x")
                _lib = L
    return _lib


def last_error() -> str:
    """recur_last_error() of the calling thread, decoded."""
    return lib().recur_last_error().decode("utf-8", "replace")


def check(status: int) -> None:
    """Raises RecurError with the library's message when ``status`` is not RECUR_OK."""
    if status != 0:
        raise RecurError(status, last_error())
