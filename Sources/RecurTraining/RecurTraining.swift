/// Training of Recur models: BPTT, optimizers, checkpoints. See the type docs.
import Recur
