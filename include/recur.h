/*
 * recur.h - the C API of Recur, an inference runtime for recurrent neural networks (GRU, LSTM, SimpleRNN)
 * stored in .recur files.
 *
 * Link with -lrecur (pkg-config: `pkg-config --cflags --libs recur`). The library needs no Swift runtime
 * on the machine; it depends on libc, libm, libstdc++, libgcc_s, OpenBLAS and libdeflate.
 *
 * Example: stream 200 characters continuing "Alice".
 *
 *     #include <recur.h>
 *     #include <stdio.h>
 *
 *     static int print_piece(const char *piece, size_t length, void *user) {
 *         (void)user;
 *         fwrite(piece, 1, length, stdout);
 *         fflush(stdout);
 *         return 0;                                   // non-zero stops the generation
 *     }
 *
 *     int main(void) {
 *         recur_model *model = NULL;
 *         recur_state *state = NULL;
 *         recur_sampler *sampler = NULL;
 *         recur_sampler_params params;
 *         recur_sampler_params_init(&params);         // defaults: temperature 1, no top-k/top-p, seed 0
 *         params.temperature = 0.8f;
 *         params.seed = 42;
 *         if (recur_model_open("alice.recur", 0, &model) != RECUR_OK
 *             || recur_state_new(model, &state) != RECUR_OK
 *             || recur_sampler_new(&params, &sampler) != RECUR_OK
 *             || recur_generate(state, sampler, "Alice", 200, print_piece, NULL, NULL) != RECUR_OK) {
 *             fprintf(stderr, "error: %s\n", recur_last_error());
 *         }
 *         recur_sampler_free(sampler);                // destructors accept NULL
 *         recur_state_free(state);
 *         recur_model_free(model);
 *         return 0;
 *     }
 *
 * Objects. A recur_model is a loaded file: immutable weights and vocabulary. A recur_state is one stream
 * of tokens through a model: the recurrent vectors (h, and c for LSTM layers) and the last output. A
 * recur_sampler turns an output vector into a token id and owns its random generator. Each is created by
 * a *_new / *_open function and destroyed by the matching *_free.
 *
 * Threads. A model may be shared by any number of threads at once: every function that takes a model
 * only reads it, and creating states from it concurrently is safe. A state is used by one thread at a
 * time; it may move between threads (hand it over with the usual synchronization). The same holds for a
 * sampler. A state keeps its model alive: freeing a model while states still use it is safe, also while
 * other threads are stepping those states; the model is released with its last state. (The model handle
 * itself must not be used after recur_model_free, and must not be freed while another thread is inside a
 * call that takes it.)
 *
 * Errors. Every fallible function returns a recur_status: RECUR_OK (0) or one of the RECUR_ERR_* codes
 * below, and writes its results through out-parameters. On failure, recur_last_error() gives a message
 * with the details ("token id 97 is outside the vocabulary (0..<96)"). The library never aborts, never
 * prints and never exits: NULL handles, NULL out-parameters, ids out of range and small buffers are all
 * reported as a status. Unless a function says otherwise, a NULL handle or a NULL required pointer gives
 * RECUR_ERR_INVALID_ARGUMENT, and out-parameters are left unchanged on failure.
 *
 * Strings are UTF-8. Text arguments are NUL-terminated; invalid UTF-8 gives RECUR_ERR_INVALID_ARGUMENT.
 */
#ifndef RECUR_H
#define RECUR_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define RECUR_API __attribute__((visibility("default")))
#else
#define RECUR_API
#endif

/* ---------------------------------------------------------------------------------------------------- */
/* Versions                                                                                             */
/* ---------------------------------------------------------------------------------------------------- */

/* The version of this header. Compare with recur_version() to check that header and library match. */
#define RECUR_VERSION_MAJOR 0
#define RECUR_VERSION_MINOR 1
#define RECUR_VERSION_PATCH 0
#define RECUR_VERSION_STRING "0.1.0"

/* The newest .recur format version this library writes; it reads every minor version of majors 1 to 6.
 * A file is written with the lowest version that describes it: 6.0 for word models that read unknown
 * words as their signatures (tokenizer.unk_signatures); 5.0 for translators whose decoder has an
 * attention layer (layer.N.kind = attention, over the encoder's outputs); 4.0 for files holding q8ri or
 * q4i tensors (8- and 4-bit weights with the rows interleaved for the kernels); 3.0 for models that read frames, pool
 * by mean or regress, and for files whose text preprocessing or padding is recorded (tokenizer.splitter,
 * tokenizer.pad_mask, tokenizer.pad_length); 2.0 for files holding q8r (int8 with one scale per row)
 * tensors or a translator reading its source reversed (encoder.reverse_source); 1.0 otherwise, so that
 * older readers open every file they can read. */
#define RECUR_FORMAT_VERSION_MAJOR 6
#define RECUR_FORMAT_VERSION_MINOR 0

/* The library's version at run time. Each pointer may be NULL (that part is not written). */
RECUR_API void recur_version(int *major, int *minor, int *patch);

/* The library's version as static text, e.g. "0.1.0". Never NULL; do not free. */
RECUR_API const char *recur_version_string(void);

/* The newest .recur format version the library writes (major.minor); it reads files of majors 1 and 2.
 * Each pointer may be NULL. */
RECUR_API void recur_format_version(int *major, int *minor);

/* ---------------------------------------------------------------------------------------------------- */
/* Status codes and error messages                                                                      */
/* ---------------------------------------------------------------------------------------------------- */

typedef int recur_status;

enum {
    RECUR_OK = 0,
    RECUR_ERR_INVALID_ARGUMENT = 1,   /* NULL where a value is needed, a bad flag, an empty prompt, ... */
    RECUR_ERR_IO = 2,                 /* a file could not be opened, read or mapped */
    RECUR_ERR_FORMAT = 3,             /* bytes that are not a valid .recur file or saved state (truncated, bad magic) */
    RECUR_ERR_UNSUPPORTED_VERSION = 4,/* a major format version this library does not read */
    RECUR_ERR_CHECKSUM = 5,           /* the stored checksum does not match: the data is corrupt */
    RECUR_ERR_MODEL = 6,              /* a well-formed file that does not describe a runnable model */
    RECUR_ERR_OUT_OF_RANGE = 7,       /* a token id, or text not covered by the vocabulary */
    RECUR_ERR_BUFFER_TOO_SMALL = 8,   /* a caller's buffer is too small; the required size was reported */
    RECUR_ERR_MISMATCH = 9,           /* a saved state or state belongs to another model */
    RECUR_ERR_NUMERICAL = 10,         /* NaN or infinity where a finite number is required */
    RECUR_ERR_UNSUPPORTED = 11,       /* valid, but not supported for this model (e.g. stepping a bidirectional layer) */
    RECUR_ERR_OUT_OF_MEMORY = 12      /* memory could not be allocated */
};

/* A short static description of a status code ("buffer too small"); "unknown status code" for values
 * not listed above. Never NULL; do not free. */
RECUR_API const char *recur_status_string(recur_status status);

/* The message of the last call that failed on the calling thread, e.g. "alice.recur: checksum mismatch
 * (stored 0x1a2b3c4d, computed 0x00c0ffee): the file is corrupt". "" when no call has failed on this
 * thread. Successful calls do not change it. Owned by the library: valid until the next failing call on
 * the same thread (or the thread's exit); copy it to keep it. Never NULL. */
RECUR_API const char *recur_last_error(void);

/* ---------------------------------------------------------------------------------------------------- */
/* Models                                                                                               */
/* ---------------------------------------------------------------------------------------------------- */

typedef struct recur_model recur_model;
typedef struct recur_state recur_state;
typedef struct recur_sampler recur_sampler;

/* Flags of recur_model_open and recur_model_open_buffer (combine with |; 0 for none). */
enum {
    /* Skip the CRC-32 over the whole file (one pass over its bytes). Structure, bounds and shapes are
     * checked regardless. Only for files that were verified before. */
    RECUR_OPEN_SKIP_CHECKSUM = 1,
    /* Read the file into private memory instead of mapping it (recur_model_open only; a buffer is
     * always copied). Costs the file's size in memory and one read at open; see recur_model_open. */
    RECUR_OPEN_NO_MMAP = 2,
    /* recur_classify, recur_tag and recur_translate run a text's tokens as they are, instead of cutting
     * and padding them to the length the file records for an unmasked model trained on padded batches
     * (tokenizer.pad_length, source_tokenizer.pad_length: the default reproduces the framework's own
     * predict on padded input; FORMAT.md §11 "Padding"). No effect on other models. */
    RECUR_OPEN_NO_PADDING = 4
};

/* Opens the .recur file at `path`: memory-mapped read-only, weights used in place, unless flags has
 * RECUR_OPEN_NO_MMAP. On success *model is a new model to free with recur_model_free. On failure *model
 * is set to NULL.
 *
 * A mapped file must not change while the model is open. The file is validated once, at open; if
 * another process then truncates it, the next access to the lost pages kills the process with SIGBUS,
 * and if it rewrites it in place, the model computes with the new, unvalidated bytes (which may be NaN).
 * Replacing the file by renaming a new one over it (as Recur's own writers do) is safe: the open model
 * keeps the old file. For files the process does not control (downloads, shared folders, user
 * uploads), pass RECUR_OPEN_NO_MMAP, or read the bytes yourself and call recur_model_open_buffer.
 * Returns RECUR_OK; RECUR_ERR_INVALID_ARGUMENT (NULL path or model, unknown flags); RECUR_ERR_IO (cannot
 * open or map); RECUR_ERR_FORMAT, RECUR_ERR_UNSUPPORTED_VERSION, RECUR_ERR_CHECKSUM (bad file);
 * RECUR_ERR_MODEL (a file that is not a runnable model); RECUR_ERR_NUMERICAL (non-finite weights).
 * RECUR_ERR_INVALID_ARGUMENT also when the environment variable RECUR_THREADS or RECUR_KERNELS is set to
 * a value the library cannot honour (the message names it). */
RECUR_API recur_status recur_model_open(const char *path, unsigned flags, recur_model **model);

/* Like recur_model_open, from `size` bytes in memory. The bytes are copied: the caller may free or reuse
 * `data` as soon as the call returns. A NULL `data` gives RECUR_ERR_INVALID_ARGUMENT; an empty or
 * truncated buffer gives RECUR_ERR_FORMAT. */
RECUR_API recur_status recur_model_open_buffer(const void *data, size_t size, unsigned flags, recur_model **model);

/* Releases the caller's reference to a model. States created from it stay valid: the model's memory is
 * released with the last of them. NULL is ignored. */
RECUR_API void recur_model_free(recur_model *model);

/* Number of tokens in the model's vocabulary (token ids are 0 ..< *size). */
RECUR_API recur_status recur_model_vocab_size(const recur_model *model, size_t *size);

/* Number of floats in the model's output: the logits of the next token for a generator (equal to the
 * vocabulary size), or the width of the last layer for other models. */
RECUR_API recur_status recur_model_output_size(const recur_model *model, size_t *size);

/* Properties of recur_model_get (RECUR_MODEL_CAN_STEP: 1 when streams can be stepped, with recur_state_step
 * for token models and recur_state_step_frame for frame models). */
typedef enum recur_model_property {
    RECUR_MODEL_VOCAB_SIZE = 0,         /* tokens in the vocabulary */
    RECUR_MODEL_OUTPUT_SIZE = 1,        /* floats in the output vector */
    RECUR_MODEL_STATE_FLOATS = 2,       /* floats of recurrent state (h, and c for LSTM, of every layer) */
    RECUR_MODEL_TOKENIZER = 3,          /* RECUR_TOKENIZER_CHAR or RECUR_TOKENIZER_WORD */
    RECUR_MODEL_BOS_ID = 4,             /* begin-of-sequence token id, -1 when the model has none */
    RECUR_MODEL_EOS_ID = 5,             /* end-of-sequence token id, -1 when none */
    RECUR_MODEL_PAD_ID = 6,             /* padding token id, -1 when none */
    RECUR_MODEL_UNK_ID = 7,             /* unknown-token id, -1 when none */
    RECUR_MODEL_OUTPUT_IS_PROBABILITY = 8, /* 1 when the output layer applies softmax, else 0 */
    RECUR_MODEL_FORMAT_MAJOR = 9,       /* format version of the file */
    RECUR_MODEL_FORMAT_MINOR = 10,
    RECUR_MODEL_CHECKSUM = 11,          /* the file's stored CRC-32 */
    RECUR_MODEL_PARAMETERS = 12,        /* number of weights */
    RECUR_MODEL_LAYERS = 13,            /* number of layers (embedding, recurrent and dense) */
    RECUR_MODEL_FILE_BYTES = 14,        /* size of the file */
    RECUR_MODEL_CAN_STEP = 15,          /* 1 when the model can be stepped (a recurrent layer, none bidirectional,
                                           no attention layer: that decoder steps only inside recur_translate*) */
    RECUR_MODEL_TASK = 16,              /* what the model does: a recur_task value */
    RECUR_MODEL_INPUT = 17,             /* what a step reads: a recur_input value */
    RECUR_MODEL_FRAME_SIZE = 18,        /* floats of one frame for frame models, 0 for token models */
    RECUR_MODEL_OUTPUT_KIND = 19        /* what the output vector holds: a recur_output_kind value */
} recur_model_property;

/* Values of RECUR_MODEL_TASK: the kind of model, and the call that runs it. */
typedef enum recur_task {
    RECUR_TASK_GENERATE = 0,            /* a generator: recur_generate, recur_state_step */
    RECUR_TASK_CLASSIFY = 1,            /* many-to-one: recur_classify */
    RECUR_TASK_TAG = 2,                 /* many-to-many: recur_tag */
    RECUR_TASK_SEQ2SEQ = 3,             /* encoder-decoder: recur_translate */
    RECUR_TASK_REGRESS = 4              /* values at every step (a forecaster): recur_predict, recur_state_step_frame */
} recur_task;

/* Values of RECUR_MODEL_INPUT. */
typedef enum recur_input {
    RECUR_INPUT_TOKENS = 0,             /* token ids: recur_state_step, recur_classify, ... */
    RECUR_INPUT_FRAMES = 1              /* vectors of RECUR_MODEL_FRAME_SIZE floats: recur_state_step_frame, recur_predict */
} recur_input;

/* Values of RECUR_MODEL_OUTPUT_KIND. */
typedef enum recur_output_kind {
    RECUR_OUTPUT_LOGITS = 0,            /* scores of a linear head (a generator's next token): softmax gives probabilities */
    RECUR_OUTPUT_PROBABILITIES = 1,     /* a softmax head: probabilities of exclusive classes, summing to 1 */
    RECUR_OUTPUT_INDEPENDENT = 2,       /* a sigmoid head: one probability per output (binary or multi-label) */
    RECUR_OUTPUT_VALUES = 3             /* real values (a regress model, or a recurrent layer's outputs) */
} recur_output_kind;

enum {
    RECUR_TOKENIZER_CHAR = 0,           /* one Unicode scalar per token; decoding concatenates */
    RECUR_TOKENIZER_WORD = 1            /* words and punctuation; decoding joins with single spaces */
};

/* Reads one integer property of the model into *value. An unknown property gives
 * RECUR_ERR_INVALID_ARGUMENT. */
RECUR_API recur_status recur_model_get(const recur_model *model, int property, int64_t *value);

/* The text of token `id`, borrowed: *text points to NUL-terminated UTF-8 owned by the model, valid until
 * recur_model_free(model). *length (when `length` is not NULL) receives its length in bytes without the
 * NUL (a piece may itself contain a NUL byte). Special tokens (BOS, EOS, PAD, UNK) give their name as
 * stored in the file. Returns RECUR_ERR_OUT_OF_RANGE when id is not in 0 ..< vocabulary size. */
RECUR_API recur_status recur_model_token_text(const recur_model *model, int32_t id, const char **text, size_t *length);

/* recur_model_token_text for the source vocabulary of a "seq2seq" model (source_tokenizer.*): the text
 * of the source ids recur_translate_attention gives. RECUR_ERR_UNSUPPORTED for other models. */
RECUR_API recur_status recur_model_source_token_text(const recur_model *model, int32_t id, const char **text,
                                                     size_t *length);

/* The id of the token whose text is exactly `piece` (special tokens included). Returns
 * RECUR_ERR_OUT_OF_RANGE when no token has this text. */
RECUR_API recur_status recur_model_token_id(const recur_model *model, const char *piece, int32_t *id);

/* Splits `text` into token ids, written to ids[0 .. *count). No BOS/EOS is added. *count always receives
 * the number of ids the text encodes to; when it exceeds `capacity` nothing is written to `ids` and the
 * call returns RECUR_ERR_BUFFER_TOO_SMALL (call again with a larger buffer). `ids` may be NULL when
 * `capacity` is 0 (to ask for the count). Text the vocabulary does not cover maps to the UNK token, or
 * gives RECUR_ERR_OUT_OF_RANGE when the model has none. */
RECUR_API recur_status recur_model_encode(const recur_model *model, const char *text, int32_t *ids,
                                          size_t capacity, size_t *count);

/* What recur_model_encode_with does with a character (char models) or word (word models) that is not in
 * the vocabulary of a model without an UNK token. A model with UNK maps every such piece to UNK. */
typedef enum recur_unknown {
    RECUR_UNKNOWN_ERROR = 0,            /* RECUR_ERR_OUT_OF_RANGE naming the piece and its position (as recur_model_encode) */
    RECUR_UNKNOWN_SKIP = 1,             /* leave the piece out */
    RECUR_UNKNOWN_REPLACE = 2           /* use its look-alike in the vocabulary: the letter without its accent
                                           (é → e, ß → ss), ASCII quotes, dashes, ellipsis and spaces for their
                                           typographic forms; a piece with none is still RECUR_ERR_OUT_OF_RANGE */
} recur_unknown;

/* recur_model_encode with a policy for text outside the vocabulary (a recur_unknown value; others give
 * RECUR_ERR_INVALID_ARGUMENT). Feed the ids to recur_state_prefill. */
RECUR_API recur_status recur_model_encode_with(const recur_model *model, const char *text, int unknown,
                                               int32_t *ids, size_t capacity, size_t *count);

/* Joins the text of ids[0 .. n) into `buffer` as NUL-terminated UTF-8 (special tokens are skipped; word
 * vocabularies put single spaces between words). *length always receives the text's length in bytes
 * without the NUL; when length + 1 exceeds `capacity` nothing is written and the call returns
 * RECUR_ERR_BUFFER_TOO_SMALL. `buffer` may be NULL when capacity is 0, `ids` when n is 0. An id out of
 * range gives RECUR_ERR_OUT_OF_RANGE. */
RECUR_API recur_status recur_model_decode(const recur_model *model, const int32_t *ids, size_t n,
                                          char *buffer, size_t capacity, size_t *length);

/* ---------------------------------------------------------------------------------------------------- */
/* States                                                                                               */
/* ---------------------------------------------------------------------------------------------------- */

/* A new state for `model`, zeroed (as after recur_state_reset). The state holds a reference to the model.
 * On failure *state is set to NULL. Free with recur_state_free. */
RECUR_API recur_status recur_state_new(recur_model *model, recur_state **state);

/* Releases a state (and its reference to the model). NULL is ignored. */
RECUR_API void recur_state_free(recur_state *state);

/* Zeroes the recurrent vectors and the output; the position returns to 0. */
RECUR_API recur_status recur_state_reset(recur_state *state);

/* Number of tokens the state has consumed since it was created or reset. */
RECUR_API recur_status recur_state_position(const recur_state *state, uint64_t *position);

/* The state's current output (after its last step or prefill; zeros after a reset), borrowed: the
 * pointer stays valid for the life of the state and the values change with each step, prefill,
 * restore, copy or reset. recur_model_output_size floats. */
RECUR_API recur_status recur_state_output(const recur_state *state, const float **output);

/* Feeds one token. *logits (when `logits` is not NULL) points to the model's output after it,
 * recur_model_output_size floats, borrowed: valid until the next call that changes this state.
 * Returns RECUR_ERR_OUT_OF_RANGE for an id outside the vocabulary (the state is unchanged) and
 * RECUR_ERR_UNSUPPORTED for a model that cannot run token by token. */
RECUR_API recur_status recur_state_step(recur_state *state, int32_t token, const float **logits);

/* Like recur_state_step, copying the output into out[0 .. output size). When `capacity` (in floats) is
 * smaller than the output size, returns RECUR_ERR_BUFFER_TOO_SMALL without stepping. */
RECUR_API recur_status recur_state_step_copy(recur_state *state, int32_t token, float *out, size_t capacity);

/* Feeds n >= 1 tokens (a prompt) in one call, faster than n steps: the input projections of many tokens
 * are one matrix product. The result equals stepping the tokens one by one up to floating-point rounding.
 * *logits as for recur_state_step. Every id is checked before any is fed: on RECUR_ERR_OUT_OF_RANGE the
 * state is unchanged. n = 0 gives RECUR_ERR_INVALID_ARGUMENT. */
RECUR_API recur_status recur_state_prefill(recur_state *state, const int32_t *tokens, size_t n, const float **logits);

/* Feeds one frame to a frame model (RECUR_MODEL_INPUT is RECUR_INPUT_FRAMES): `frame` holds n floats, n
 * = RECUR_MODEL_FRAME_SIZE. *output (when not NULL) points to the model's output after it, borrowed as for
 * recur_state_step. A frame that is padding (every feature equal to the model's mask value) leaves the
 * state and the output unchanged. Returns RECUR_ERR_INVALID_ARGUMENT for a wrong n or a NULL frame,
 * RECUR_ERR_NUMERICAL for a NaN or infinity in the frame, RECUR_ERR_UNSUPPORTED for a token model or a
 * model with a bidirectional layer; on error the state is unchanged. */
RECUR_API recur_status recur_state_step_frame(recur_state *state, const float *frame, size_t n, const float **output);

/* Feeds `count` >= 1 frames of `frame_size` floats each (count × frame_size floats, row-major) in one call:
 * the input projections of many frames are one matrix product, so this is faster than `count` steps and
 * equal to them up to floating-point rounding. frame_size must be RECUR_MODEL_FRAME_SIZE. Every frame is
 * checked before any is fed (errors as for recur_state_step_frame; the state is unchanged on error). */
RECUR_API recur_status recur_state_prefill_frames(recur_state *state, const float *frames, size_t count,
                                                  size_t frame_size, const float **output);

/* Batches: many streams of one model at once. A server stepping many streams, or a job scoring many
 * texts, calls these instead of one call per stream: the weights are read once per group of streams where
 * the products allow it (quantized types), and the call crosses the library boundary once.
 *
 * Equality. The results are bit for bit those of the single calls, in every dtype (f32, f16, q8, q4,
 * q8r, q8ri) and at every kernel level (RECUR_KERNELS): stepping n states with recur_state_step_batch
 * leaves each state and writes each output exactly as n calls of recur_state_step would; sampling and
 * generating in batches give the tokens and the text of the single calls with the same sampler
 * parameters. (int8 weights are read once per 4 streams with AVX2, 8 with AVX-512 and, on CPUs with AMX
 * tiles, once per batch of 4 or more streams, 16 streams per tile; f32 weights once per 8 streams with
 * AVX-512, in the single step's order of sums; the other types stream by stream by the single kernel.)
 *
 * Threads. One batched call may use the model's worker pool (RECUR_THREADS), as a single step does. Two
 * batched calls on disjoint sets of states (and samplers) may run at the same time on different threads;
 * a state or sampler must not be in two calls at once (a state that is inside a recur_generate is refused).
 *
 * Safety. Every argument of every stream is checked before any stream is stepped or sampled: a NULL
 * array or element, a handle of the wrong kind, a state of another model (RECUR_ERR_MISMATCH), the same
 * state (or sampler) twice, a token outside the vocabulary (RECUR_ERR_OUT_OF_RANGE) or a non-finite frame
 * in one stream, a buffer too small for n outputs, or an n whose n × output size overflows, gives an error
 * whose message names the stream ("stream 3: token id 99 is outside the vocabulary (0..<96)"), and no
 * state or sampler has changed. n = 0 gives RECUR_ERR_INVALID_ARGUMENT (as for recur_state_prefill): a
 * batch has at least one stream. */

/* Feeds tokens[i] to states[i] for i in 0 ..< n, all states of `model`, and copies the outputs into
 * out[i × V .. (i + 1) × V), V = recur_model_output_size (row-major, n × V floats). When `capacity` (in
 * floats) is smaller than n × V, returns RECUR_ERR_BUFFER_TOO_SMALL without stepping. The states' own
 * outputs (recur_state_output) hold the same values afterwards. RECUR_ERR_UNSUPPORTED for a model that
 * cannot run token by token (or reads frames). */
RECUR_API recur_status recur_state_step_batch(const recur_model *model, recur_state *const *states, size_t n,
                                              const int32_t *tokens, float *out, size_t capacity);

/* recur_state_step_batch for a frame model: `frames` holds n frames of `frame_size` floats (n ×
 * frame_size, row-major; frame_size = RECUR_MODEL_FRAME_SIZE), frame i for states[i]. A padding frame
 * leaves its stream as recur_state_step_frame does. Errors as for recur_state_step_frame, naming the
 * stream; RECUR_ERR_UNSUPPORTED for a token model. */
RECUR_API recur_status recur_state_step_frames_batch(const recur_model *model, recur_state *const *states, size_t n,
                                                     const float *frames, size_t frame_size, float *out,
                                                     size_t capacity);

/* The number of bytes recur_state_save writes for this state (fixed for a model). */
RECUR_API recur_status recur_state_size(const recur_state *state, size_t *size);

/* Serializes the state (recurrent vectors, last output, position, and a fingerprint of the model) into
 * `buffer`. *written receives the size; when it exceeds `capacity` nothing is written and the call
 * returns RECUR_ERR_BUFFER_TOO_SMALL. The bytes can be restored in another process or on another machine
 * (of the same byte order) into a state of the same model file. */
RECUR_API recur_status recur_state_save(const recur_state *state, void *buffer, size_t capacity, size_t *written);

/* Restores a state saved by recur_state_save. `data` is only read during the call. On failure the state
 * is unchanged. Returns RECUR_ERR_FORMAT (not a saved state, truncated or trailing bytes),
 * RECUR_ERR_UNSUPPORTED_VERSION, RECUR_ERR_MISMATCH (saved for another model), RECUR_ERR_CHECKSUM
 * (corrupt values). A translator with attention (RECUR_LAYER_ATTENTION) has states that only
 * recur_translate* steps; a saved one restores its vectors but holds no encoded source. */
RECUR_API recur_status recur_state_restore(recur_state *state, const void *data, size_t size);

/* Makes `destination` equal to `source` (a fork of the stream): vectors, output and position. Both must
 * belong to the same model, else RECUR_ERR_MISMATCH. Copying a state onto itself does nothing. */
RECUR_API recur_status recur_state_copy(recur_state *destination, const recur_state *source);

/* ---------------------------------------------------------------------------------------------------- */
/* Sampling and generation                                                                              */
/* ---------------------------------------------------------------------------------------------------- */

/* Sampling parameters. Fill with recur_sampler_params_init first, then change fields, so that fields
 * added in later versions get their defaults. */
typedef struct recur_sampler_params {
    float temperature;  /* 0: argmax (greedy); higher flattens the distribution. Default 1. Must be >= 0. */
    int32_t top_k;      /* keep only the k most likely tokens; 0 keeps all (default). Must be >= 0. */
    float top_p;        /* keep the most likely tokens up to this probability mass; in (0, 1]; default 1. */
    uint64_t seed;      /* seed of the random generator (SplitMix64); the same seed gives the same draws. */
} recur_sampler_params;

/* Fills *params with the defaults: temperature 1, top_k 0, top_p 1, seed 0. NULL is ignored. */
RECUR_API void recur_sampler_params_init(recur_sampler_params *params);

/* A new sampler. `params` is read during the call only. Invalid parameters (negative or non-finite
 * temperature, negative top_k, top_p outside (0, 1]) give RECUR_ERR_INVALID_ARGUMENT. On failure
 * *sampler is set to NULL. Free with recur_sampler_free. */
RECUR_API recur_status recur_sampler_new(const recur_sampler_params *params, recur_sampler **sampler);

/* Releases a sampler. NULL is ignored. */
RECUR_API void recur_sampler_free(recur_sampler *sampler);

/* Draws a token id from n >= 1 logits (unnormalized log-probabilities) into *token: temperature 0 takes
 * the largest (lowest id among equals); otherwise candidates sorted by logit are cut to top_k, turned
 * into probabilities softmax(logit / temperature), cut to the smallest prefix reaching top_p, and one is
 * drawn. Advances the random generator (except at temperature 0). NaN or +infinity in the logits, or
 * logits that are all -infinity, give RECUR_ERR_NUMERICAL. */
RECUR_API recur_status recur_sampler_sample(recur_sampler *sampler, const float *logits, size_t n, int32_t *token);

/* Draws a token id from the state's current output, as recur_generate does: the output is taken as
 * logits, or as probabilities when the model's last layer is a softmax. The state is not changed. */
RECUR_API recur_status recur_sampler_sample_state(recur_sampler *sampler, const recur_state *state, int32_t *token);

/* Draws one token per stream: tokens[i] from states[i]'s current output with samplers[i], as
 * recur_sampler_sample_state does, for i in 0 ..< n. The samplers must be distinct (the states need not
 * be). Checked as the batched calls above; a non-finite output in one stream gives RECUR_ERR_NUMERICAL
 * naming it, and then no sampler has advanced and `tokens` is unchanged. */
RECUR_API recur_status recur_sampler_sample_batch(recur_sampler *const *samplers, recur_state *const *states, size_t n,
                                                  int32_t *tokens);

/* Receives each piece of generated text: `piece` is NUL-terminated UTF-8 of `length` bytes, valid only
 * during the call. Return 0 to continue, non-zero to stop the generation. The callback may use any
 * other object, but calls on the generation's own state or sampler give RECUR_ERR_INVALID_ARGUMENT
 * (freeing them there is allowed: they are released when recur_generate returns). */
typedef int (*recur_piece_callback)(const char *piece, size_t length, void *user);

/* Streams text: feeds `prompt` (with the model's BOS token first, if it has one), then repeatedly
 * samples a token from the state's output with `sampler`, feeds it back, and hands its text to
 * `callback` as soon as it is sampled, until `max_tokens` tokens, the model's EOS token, or a non-zero
 * return from the callback. The state keeps everything consumed, so a later call continues the stream;
 * with an empty (or NULL) prompt the generation continues from the state's current output (this needs
 * a state that has consumed tokens, or a model with a BOS token). `callback` may be NULL; `user` is
 * passed to it unchanged. *generated (when not NULL) receives the number of tokens sampled (EOS not
 * counted; 0 on failure). A stop requested by the callback is not an error: the call returns RECUR_OK.
 * Returns RECUR_ERR_INVALID_ARGUMENT (NULL state or sampler, negative max_tokens, an empty prompt with
 * nothing to continue from); RECUR_ERR_OUT_OF_RANGE (prompt text outside the vocabulary of a model
 * without UNK); RECUR_ERR_UNSUPPORTED (a model that is not a generator, RECUR_MODEL_TASK other than
 * RECUR_TASK_GENERATE: translators, classifiers and taggers have their own calls); RECUR_ERR_NUMERICAL (the
 * model's output holds NaN or +infinity, or is all -infinity: weights that overflow; no text of that step
 * is delivered). */
RECUR_API recur_status recur_generate(recur_state *state, recur_sampler *sampler, const char *prompt,
                                      int32_t max_tokens, recur_piece_callback callback, void *user,
                                      int32_t *generated);

/* Beam-search parameters of recur_generate_beam. Initialize with recur_beam_params_init, then change fields,
 * so that fields added in later versions get their defaults; pass by pointer. */
typedef struct recur_beam_params {
    int32_t beam;           /* hypotheses kept at each step, 1 ... 256; 1 is greedy decoding (default 4) */
    int32_t best;           /* continuations handed to the result callback, 1 ... beam (default 1) */
    float length_penalty;   /* continuations are ranked by log p / length^penalty, >= 0 (default 1; 0 ranks
                               by log p alone); the length counts EOS when it was emitted */
    int32_t unknown;        /* prompt text outside the vocabulary: a recur_unknown value (default
                               RECUR_UNKNOWN_ERROR, as recur_generate) */
} recur_beam_params;

/* Fills *params with the defaults. NULL is ignored. */
RECUR_API void recur_beam_params_init(recur_beam_params *params);

/* Receives one continuation found by recur_generate_beam: `rank` 0 is the best; `text` is NUL-terminated
 * UTF-8 of `length` bytes (the text recur_generate would deliver for these tokens), `tokens` its `count`
 * token ids (EOS not included); `log_probability` is the sum of the natural-log probabilities of the
 * tokens (and of EOS when it was emitted), `score` the figure continuations are ranked by. Everything is
 * valid only during the call. Return 0 to receive the next continuation, non-zero to receive no more. */
typedef int (*recur_continuation_callback)(size_t rank, const char *text, size_t length, const int32_t *tokens,
                                           size_t count, double log_probability, double score, void *user);

/* Continues `prompt` by beam search instead of sampling. The prompt is fed as recur_generate feeds it.
 * Then each step extends every live hypothesis by its `beam` most likely next tokens and keeps the `beam`
 * best extensions by total log-probability (ties: the earlier hypothesis, then the lower token id); a
 * hypothesis that emits the model's EOS token or reaches `max_tokens` tokens is finished, and the search
 * ends when `beam` hypotheses are finished or none is live. The live hypotheses are stepped together
 * (one batched step per search step, which reads the weights once). With beam 1 the text is that of
 * recur_generate with a temperature-0 sampler.
 *
 * `callback` (may be NULL) receives the best continuation's text as it becomes certain: tokens that every
 * hypothesis still in the running shares are delivered as soon as they are shared, the rest when the
 * search ends; a non-zero return stops the search, and the delivered prefix is then the only result.
 * `results` (may be NULL) then receives the params->best finished continuations with the highest score,
 * best first (ties: the one finished first; fewer when fewer finished). `user` is passed to both. The
 * state ends holding the prompt and the best continuation, as if its tokens had been stepped (EOS is not
 * fed), so a later call continues the stream. *generated (when not NULL) receives the best continuation's
 * token count. params NULL means the defaults. Errors as for recur_generate, and
 * RECUR_ERR_INVALID_ARGUMENT for parameters out of range (checked before the prompt is fed). */
RECUR_API recur_status recur_generate_beam(recur_state *state, const char *prompt, int32_t max_tokens,
                                           const recur_beam_params *params, recur_piece_callback callback,
                                           recur_continuation_callback results, void *user, int32_t *generated);

/* Receives each piece of a batched generation: `index` is the prompt's index in the caller's list,
 * `piece` NUL-terminated UTF-8 of `length` bytes, valid only during the call. Return 0 to continue, a
 * positive value to end that prompt's stream (its slot takes the next prompt), a negative value to end the
 * whole generation (recur_generate_batch then returns RECUR_OK; prompts not started generate nothing). */
typedef int (*recur_batch_callback)(size_t index, const char *piece, size_t length, void *user);

/* Generates for `count` prompts of `model`, `slots` streams at a time (continuous batching): each slot
 * is a state of its own; the slots that are generating are stepped together (recur_state_step_batch) and
 * each samples with its prompt's sampler; a stream ends at its max_tokens[i] tokens, at the model's EOS
 * token, at the first occurrence of one of the `stop_count` stop strings (which is not delivered; text
 * that may begin one is held back until decided), or when the callback asks; its slot then takes the
 * next prompt of the list, until all are done. Each piece goes to `callback` (may be NULL) with its
 * prompt's index as soon as it is sampled; streams finish at different times, so the pieces of different
 * prompts interleave (those of one step come in slot order).
 *
 * Each prompt's text equals what recur_generate gives on a new state with a sampler of params[i] and
 * max_tokens[i] (and, with stop strings, what the generate of the Swift library and the command line
 * give with them). prompts[i] is fed after the model's BOS token, if it has one; an empty prompt needs a
 * model with a BOS token. `params` (count entries; NULL: the defaults of recur_sampler_params_init for
 * every prompt) and `max_tokens` (count entries, each >= 0) are read during the call only. `stop` may be
 * NULL when stop_count is 0; empty stop strings are ignored. `generated` (NULL, or count entries) receives
 * the number of tokens sampled for each prompt (EOS not counted). count = 0 is a no-op returning
 * RECUR_OK. Every prompt is encoded and every parameter checked before any is run: errors name the
 * prompt ("prompt 3: ..."): RECUR_ERR_INVALID_ARGUMENT (NULL arrays or prompts, invalid UTF-8, slots 0, a
 * negative max_tokens, invalid sampler parameters, an empty prompt without BOS), RECUR_ERR_OUT_OF_RANGE
 * (prompt text outside a vocabulary without UNK), RECUR_ERR_UNSUPPORTED (not a generator);
 * RECUR_ERR_NUMERICAL while generating (the output of a stream is not finite; pieces delivered before
 * stay delivered). The callback may call any function, including recur_generate_batch on the same model;
 * the call's states and samplers are its own. */
RECUR_API recur_status recur_generate_batch(const recur_model *model, const char *const *prompts, size_t count,
                                            const int32_t *max_tokens, const recur_sampler_params *params,
                                            const char *const *stop, size_t stop_count, size_t slots,
                                            recur_batch_callback callback, void *user, int32_t *generated);

/* ---------------------------------------------------------------------------------------------------- */
/* Whole-sequence and encoder-decoder models                                                            */
/* ---------------------------------------------------------------------------------------------------- */

/* These functions run a whole text through the model in one call; they need no state and, like every
 * function taking only a model, may be called from any number of threads at once. Which one applies
 * depends on the model's task (recur info shows it): "classify" (many-to-one, e.g. a sentiment
 * classifier), "tag" (many-to-many, e.g. a part-of-speech tagger) or "seq2seq" (an encoder-decoder
 * translator). Calling one on a model of another task gives RECUR_ERR_UNSUPPORTED. */

/* The name of output class or tag `index` of a classify or tag model, borrowed: NUL-terminated UTF-8
 * owned by the model, valid until recur_model_free(model). Returns RECUR_ERR_OUT_OF_RANGE when the model
 * names fewer labels (models without label names have none). */
RECUR_API recur_status recur_model_label(const recur_model *model, size_t index, const char **label);

/* Class probabilities of `text` (a "classify" model), written to probabilities[0 .. *count). A model
 * with a single sigmoid output gives two classes: [1 - p, p]. *count always receives the number of
 * classes; when it exceeds `capacity` nothing is written and the call returns RECUR_ERR_BUFFER_TOO_SMALL.
 * `probabilities` may be NULL when capacity is 0. Returns RECUR_ERR_INVALID_ARGUMENT (NULL text, a text
 * with no tokens), RECUR_ERR_OUT_OF_RANGE (text outside a vocabulary without UNK), RECUR_ERR_UNSUPPORTED,
 * RECUR_ERR_NUMERICAL. */
RECUR_API recur_status recur_classify(const recur_model *model, const char *text, float *probabilities,
                                      size_t capacity, size_t *count);

/* The most likely tag of every token of `text` (a "tag" model), written to tags[0 .. *count): one per
 * token of recur_model_encode(text), in order. Tag names come from recur_model_label. Buffer and error
 * rules as for recur_classify. */
RECUR_API recur_status recur_tag(const recur_model *model, const char *text, int32_t *tags, size_t capacity,
                                 size_t *count);

/* recur_classify for n texts: the class probabilities of texts[i] are written to
 * probabilities[i × C .. (i + 1) × C), C the number of classes (row-major, n × C floats), each equal to
 * recur_classify's. *classes (when not NULL) receives C. When capacity (in floats) is smaller than n × C,
 * nothing is written and the call returns RECUR_ERR_BUFFER_TOO_SMALL. The texts run one after another in
 * the call (a whole-sequence model has no state to batch); an error names the text ("text 4: ...") and
 * nothing is written. n = 0 gives RECUR_ERR_INVALID_ARGUMENT. */
RECUR_API recur_status recur_classify_batch(const recur_model *model, const char *const *texts, size_t n,
                                            float *probabilities, size_t capacity, size_t *classes);

/* recur_tag for n texts: the tags of every text, back to back, into tags[0 .. total), and the number of
 * tags of texts[i] into counts[i] (n entries, always written when the texts are valid). When the total
 * exceeds capacity, nothing is written to `tags` and the call returns RECUR_ERR_BUFFER_TOO_SMALL (counts
 * tell the size needed). Errors as for recur_classify_batch. */
RECUR_API recur_status recur_tag_batch(const recur_model *model, const char *const *texts, size_t n, int32_t *tags,
                                       size_t capacity, size_t *counts);

/* Runs a frame model over a whole sequence of `count` >= 1 frames (count × frame_size floats, row-major;
 * frame_size = RECUR_MODEL_FRAME_SIZE) from a zero state, and writes the head's outputs, row-major, into
 * out: one row (recur_model_output_size floats) per frame for tag and regress models, one row for the
 * sequence for classify models (as the head gives it: see RECUR_MODEL_OUTPUT_KIND). *rows receives the
 * number of rows; when rows × output size exceeds `capacity` (floats) nothing is written and the call
 * returns RECUR_ERR_BUFFER_TOO_SMALL. Bidirectional layers are allowed. Padding frames (equal to the
 * model's mask value) are skipped. Errors as for recur_state_step_frame. */
RECUR_API recur_status recur_predict(const recur_model *model, const float *frames, size_t count, size_t frame_size,
                                     float *out, size_t capacity, size_t *rows);

/* Decoding parameters of recur_translate. Initialize with recur_translate_params_init, then change fields;
 * pass by pointer. */
typedef struct recur_translate_params {
    int32_t beam;           /* beam width, 1 ... 256; 1 is greedy decoding (default 4) */
    int32_t max_length;     /* most target tokens to emit, >= 1 (default 100) */
    float length_penalty;   /* hypotheses are ranked by log p / length^penalty, >= 0 (default 1) */
} recur_translate_params;

/* Fills *params with the defaults. NULL is ignored. */
RECUR_API void recur_translate_params_init(recur_translate_params *params);

/* Translates `text` with a "seq2seq" model: encodes it (EOS appended when the source vocabulary has
 * one), then decodes from BOS until EOS or params->max_length tokens, by beam search (params NULL means
 * the defaults). The target text is written to `buffer` as NUL-terminated UTF-8; *length always receives
 * its length in bytes without the NUL; when length + 1 exceeds `capacity` nothing is written and the call
 * returns RECUR_ERR_BUFFER_TOO_SMALL (translating again with a larger buffer gives the same text).
 * Returns RECUR_ERR_INVALID_ARGUMENT (NULL text, an empty source, a beam or length out of range),
 * RECUR_ERR_OUT_OF_RANGE, RECUR_ERR_UNSUPPORTED, RECUR_ERR_NUMERICAL. */
RECUR_API recur_status recur_translate(const recur_model *model, const char *text,
                                       const recur_translate_params *params, char *buffer, size_t capacity,
                                       size_t *length);

/* recur_translate for a translator whose decoder has an attention layer (RECUR_LAYER_ATTENTION), giving
 * instead of the text the translation's target token ids, the source positions it attended over and,
 * for each target token, the attention weights of the decoder step that produced it:
 *
 *   tokens[0 .. n_out)          target token ids (EOS not included; recur_model_token gives their text)
 *   source[0 .. n_src)          source token ids the encoder read, in its reading order (the text's ids,
 *                               EOS appended when the source vocabulary has one; PAD tokens dropped unless
 *                               the source vocabulary is unmasked; reversed with encoder.reverse_source;
 *                               cut and padded to source_tokenizer.pad_length unless RECUR_OPEN_NO_PADDING)
 *   weights[0 .. n_out·n_src)   row-major: weights[i·n_src + s] is the weight of source position s when
 *                               target token i was produced; each row sums to 1, PAD positions are 0
 *
 * *n_out and *n_src always receive the sizes. When tokens_capacity < n_out, source_capacity < n_src or
 * weights_capacity < n_out·n_src, nothing is written and the call returns RECUR_ERR_BUFFER_TOO_SMALL
 * (translating again with larger buffers gives the same result; all NULL with capacities 0 asks for the
 * sizes). The translation is the one recur_translate gives with the same params. Returns
 * RECUR_ERR_UNSUPPORTED for a model without attention (or not a translator), and the errors of
 * recur_translate. */
RECUR_API recur_status recur_translate_attention(const recur_model *model, const char *text,
                                                 const recur_translate_params *params,
                                                 int32_t *tokens, size_t tokens_capacity,
                                                 int32_t *source, size_t source_capacity,
                                                 float *weights, size_t weights_capacity,
                                                 size_t *n_out, size_t *n_src);

/* ---------------------------------------------------------------------------------------------------- */
/* Layers                                                                                               */
/* ---------------------------------------------------------------------------------------------------- */

/* The values of a model's layers, as Keras's K.function([model.input], [model.layers[i].output]) reads
 * them: the recurrent vectors of a stream after a step or a prefill, and the outputs of one layer at every
 * step of a whole sequence. Layers are numbered 0 ..< RECUR_MODEL_LAYERS as in the file (layer.i.*) and in
 * Keras's model.layers: the embedding, if any, is layer 0, then the recurrent layers, then the dense layers
 * (a seq2seq model's layers are its decoder's). A layer index out of range gives RECUR_ERR_OUT_OF_RANGE. */

/* Properties of recur_model_layer_get. */
typedef enum recur_layer_property {
    RECUR_LAYER_KIND = 0,               /* a recur_layer_kind value */
    RECUR_LAYER_INPUT_SIZE = 1,         /* floats a step reads; for an embedding, the vocabulary size */
    RECUR_LAYER_UNITS = 2,              /* units of one direction (H); an embedding's dimension; a dense layer's outputs */
    RECUR_LAYER_OUTPUT_SIZE = 3,        /* floats of one step's output as the next layer reads it (2H for a
                                           bidirectional layer merged by concatenation) */
    RECUR_LAYER_DIRECTIONS = 4,         /* 2 for a bidirectional layer, 1 for other recurrent layers, 0 otherwise */
    RECUR_LAYER_STATE_VECTORS = 5,      /* vectors of state per direction: 2 (h and c) for LSTM, 1 (h) for GRU
                                           and SimpleRNN, 0 for embedding and dense layers */
    RECUR_LAYER_RETURN_SEQUENCES = 6    /* 1 when a recurrent layer outputs every step, 0 when only its last;
                                           1 for embedding and dense layers */
} recur_layer_property;

/* Values of RECUR_LAYER_KIND (the file's layer.i.kind). */
typedef enum recur_layer_kind {
    RECUR_LAYER_EMBEDDING = 0,
    RECUR_LAYER_RNN = 1,                /* SimpleRNN */
    RECUR_LAYER_GRU = 2,
    RECUR_LAYER_LSTM = 3,
    RECUR_LAYER_DENSE = 4,
    RECUR_LAYER_ATTENTION = 5           /* a translator's attention over the encoder's outputs (format 5):
                                           input size = the decoder state's width, units = output size */
} recur_layer_kind;

/* What recur_state_layer and recur_model_layer_outputs read of a layer. */
typedef enum recur_layer_values {
    RECUR_VALUES_OUTPUT = 0,            /* the layer's output as the next layer reads it: an embedding's vectors,
                                           a recurrent layer's output (a bidirectional layer's directions merged
                                           by its merge mode), a dense layer's activations */
    RECUR_VALUES_HIDDEN = 1,            /* h of a recurrent layer; a bidirectional layer's directions side by
                                           side, [forward, backward] (2H floats), whatever its merge mode */
    RECUR_VALUES_CELL = 2               /* c of an LSTM layer; directions as for RECUR_VALUES_HIDDEN */
} recur_layer_values;

/* Reads one integer property of layer `layer` into *value. An unknown property gives
 * RECUR_ERR_INVALID_ARGUMENT, a layer out of range RECUR_ERR_OUT_OF_RANGE. */
RECUR_API recur_status recur_model_layer_get(const recur_model *model, size_t layer, int property, int64_t *value);

/* Copies `values` (RECUR_VALUES_HIDDEN, or RECUR_VALUES_CELL for an LSTM layer) of recurrent layer `layer`
 * of the state, as its last step or prefill left it (zeros after a reset), into out[0 .. *count): H
 * floats, 2H for a bidirectional layer (whose vectors stay zero: such a model is not stepped). For a
 * stepped model, layer L's h is what layer L + 1 read at the last step, and the last recurrent layer's h is
 * what the dense head read to give recur_state_output. RECUR_VALUES_OUTPUT reads h too. *count always
 * receives the number of floats when the layer and values are valid; when it exceeds `capacity` nothing
 * is written and the call returns RECUR_ERR_BUFFER_TOO_SMALL. `out` may be NULL when capacity is 0.
 * Returns RECUR_ERR_OUT_OF_RANGE (a layer out of range); RECUR_ERR_INVALID_ARGUMENT (an embedding or dense
 * layer, which have no state; RECUR_VALUES_CELL of a GRU or SimpleRNN layer; an unknown `values`). The
 * state is never changed. */
RECUR_API recur_status recur_state_layer(const recur_state *state, size_t layer, int values, float *out,
                                         size_t capacity, size_t *count);

/* Runs n >= 1 tokens through the model from a zero state, as the whole-sequence calls do, and writes the
 * per-step `values` of layer `layer` into out, row-major: *rows rows of *width floats. There are n rows
 * (one per token), except where the model reduces the sequence to one vector: a recurrent layer that
 * returns only its last step (RECUR_VALUES_OUTPUT) and every layer after it, and a classifier's dense
 * layers (which read the last step, or the mean of the steps). RECUR_VALUES_HIDDEN and RECUR_VALUES_CELL
 * give every step of a recurrent layer: for a bidirectional layer the forward direction's final vector is
 * the first half of the last row and the backward direction's the second half of row 0. The width is
 * RECUR_LAYER_OUTPUT_SIZE for RECUR_VALUES_OUTPUT (the embedding's dimension, a dense layer's units), and
 * H × RECUR_LAYER_DIRECTIONS for the state vectors. The last layer's outputs are those the model's task
 * call computes from the same tokens (recur_tag's scores; recur_classify's probabilities, before a single
 * sigmoid output becomes two classes; a generator's logits after each token, which stepping gives too, not bit for bit:
 * the products are summed in another order). The tokens run as they are: no cutting or padding to the length the file
 * records (RECUR_OPEN_NO_PADDING); PAD tokens of a masked model carry the state. *rows and *width (both
 * required) always receive the size when the arguments are valid; when rows × width exceeds `capacity`
 * (floats) nothing is written and the call returns RECUR_ERR_BUFFER_TOO_SMALL; `out` may be NULL when
 * capacity is 0. Returns RECUR_ERR_INVALID_ARGUMENT (NULL tokens, n = 0, values the layer does not have,
 * as for recur_state_layer), RECUR_ERR_OUT_OF_RANGE (a layer out of range, a token id outside the
 * vocabulary), RECUR_ERR_UNSUPPORTED (a frame model, a seq2seq model), RECUR_ERR_NUMERICAL. Like the other
 * calls taking only a model, it may run on any number of threads at once. */
RECUR_API recur_status recur_model_layer_outputs(const recur_model *model, const int32_t *tokens, size_t n,
                                                 size_t layer, int values, float *out, size_t capacity,
                                                 size_t *rows, size_t *width);

/* recur_model_layer_outputs for a frame model over `count` >= 1 frames of `frame_size` floats (count ×
 * frame_size, row-major; frame_size = RECUR_MODEL_FRAME_SIZE), as recur_predict runs them: padding frames
 * carry the state. Errors as for recur_predict, and as above for the layer and values. */
RECUR_API recur_status recur_model_layer_outputs_frames(const recur_model *model, const float *frames, size_t count,
                                                        size_t frame_size, size_t layer, int values, float *out,
                                                        size_t capacity, size_t *rows, size_t *width);

#ifdef __cplusplus
}
#endif

#endif /* RECUR_H */
