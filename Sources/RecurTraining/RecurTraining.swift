// RecurTraining: trains character-level generators and writes them as .recur files.
//
// The path of a run, file by file:
//   Corpus.swift          text → checked UTF-8, CRLF → LF, character vocabulary, training/validation split
//   TrainingConfig.swift  everything the result depends on (model shape, windows, optimizer, seed)
//   ParameterLayout.swift where each tensor lives in one flat buffer in the runtime's layouts; the model
//                         builder of a buffer; embedding lookup and its gradient
//   Network.swift         the character generator: embedding, recurrent layers, dense, softmax
//                         cross-entropy, dropout; the per-shard workspace
//   RecurrentPass.swift   one recurrent direction's forward and backward over a window, with OpenBLAS
//                         GEMMs, on weights and gradients in the caller's flat buffer (shared with Tasks/)
//   Cells/                each cell's training side: GRU (both conventions), LSTM (with or without
//                         peepholes), SimpleRNN
//   BLAS.swift            sgemm through OpenBLAS, FloatBuffer, column sums and activation derivatives
//   Optimizer.swift       Adam, SGD, gradient clipping, learning-rate schedules
//   Trainer.swift         the loop: streams, windows, shards on threads, validation through the runtime,
//                         best model, early stopping
//   TrainingReports.swift step and epoch reports, events and the summary, as JSON lines
//   Trainer+Checkpoint.swift  checkpoints (save, open, resume) that resume exactly
//   Evaluation.swift      bits per character, perplexity and divergence from a reference, through the runtime
//   Tasks/                classify, tag and seq2seq models: their data, networks (on the same recurrent
//                         pass) and training loop
//
// Applications that only run models link `Recur` alone; this module is for the `recur train` and
// `recur eval` commands and for programs that train.
import Recur
