import ArgumentParser

extension RecurCommand {
    /// Commands defined in other files of this target (train, eval, quantize, bench, ...).
    static var moreCommands: [ParsableCommand.Type] { [Bench.self, Quantize.self, Logits.self, Train.self, Eval.self] }
}
