import ArgumentParser
import Foundation
import Recur

@main
struct RecurCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "recur",
        abstract: "Run, train and inspect recurrent neural network models (.recur files).",
        version: RecurVersion.string,
        subcommands: [Generate.self, Info.self, Create.self] + RecurCommand.moreCommands,
        defaultSubcommand: nil
    )

    static func main() {
        do {
            var command = try parseAsRoot(routeTrainTask(Array(CommandLine.arguments.dropFirst())))
            try command.run()
        } catch let e as RecurError {
            fail(e.message)
        } catch let e as CLIError {
            fail(e.message)
        } catch {
            exit(withError: error)
        }
    }
}

/// `recur train --task classify|tag|seq2seq …` is `recur train-task --task …` (same options); `recur train`
/// without --task, or with `--task generate`, trains the character generator.
func routeTrainTask(_ args: [String]) -> [String] {
    guard args.first == "train" else { return args }
    var task: String? = nil
    var i = 1
    while i < args.count {
        let a = args[i]
        if a == "--" { break }
        if a == "--task", i + 1 < args.count { task = args[i + 1]; i += 2; continue }
        if a.hasPrefix("--task=") { task = String(a.dropFirst("--task=".count)) }
        i += 1
    }
    guard let task, task != "generate" else { return args }
    return ["train-task"] + args.dropFirst()
}

/// A one-line error for the user.
struct CLIError: Error {
    var message: String
    init(_ m: String) { message = m }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(("recur: error: " + message + "\n").data(using: .utf8)!)
    Foundation.exit(1)
}

/// Writes text to stdout immediately (no buffering), so streamed characters appear as they are sampled.
func emit(_ s: String) {
    fputs(s, stdout)
    fflush(stdout)
}

/// Where `recur` looks for a model when none is named: $RECUR_MODEL, then the model installed beside the
/// binary (PREFIX/share/recur/alice.recur), then the repository's models/alice.recur.
func defaultModelPath() throws -> String {
    if let env = ProcessInfo.processInfo.environment["RECUR_MODEL"], !env.isEmpty { return env }
    let exe = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
    var candidates: [String] = []
    let bin = exe.deletingLastPathComponent()
    candidates.append(bin.deletingLastPathComponent().appendingPathComponent("share/recur/alice.recur").path)
    // .build/<config>/recur or .build/<triple>/<config>/recur inside a checkout
    var dir = bin
    for _ in 0..<4 {
        dir = dir.deletingLastPathComponent()
        candidates.append(dir.appendingPathComponent("models/alice.recur").path)
    }
    candidates.append(FileManager.default.currentDirectoryPath + "/models/alice.recur")
    for c in candidates where FileManager.default.fileExists(atPath: c) { return c }
    throw CLIError("no model given and no default model found (looked for $RECUR_MODEL, \(candidates.first!), models/alice.recur)")
}

func loadModel(_ path: String?, verify: Bool = true) throws -> Model {
    let p = try path ?? defaultModelPath()
    var o = Model.Options()
    o.verifyChecksum = verify
    return try Model(path: p, options: o)
}
