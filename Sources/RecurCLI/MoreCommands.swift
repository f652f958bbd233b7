import ArgumentParser

extension RecurCommand {
    /// Commands defined in other files of this target (train, eval, quantize, bench, ...).
    static var moreCommands: [ParsableCommand.Type] { [Classify.self, Tag.self, Translate.self, Predict.self, Logits.self, Train.self, TrainTask.self, Eval.self, Bench.self, Quantize.self] }
}
