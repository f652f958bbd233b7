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
        let args = joinNegativeValues(routeTrainTask(Array(CommandLine.arguments.dropFirst())))
        do {
            var command = try parseAsRoot(args)
            if let problem = KernelEnvironment.problem { throw CLIError(problem) }
            try command.run()
        } catch let e as RecurError {
            fail(e.message)
        } catch let e as CLIError {
            fail(e.message)
        } catch {
            // --help and --version print as ArgumentParser lays them out; every other parse or validation
            // error is one line (ArgumentParser's first line) and its exit code.
            let code = exitCode(for: error)
            if code == .success { exit(withError: error) }
            let first = message(for: error).split(separator: "\n").first.map(String.init) ?? "invalid arguments"
            let command = args.first { !$0.hasPrefix("-") } ?? ""
            let known = RecurCommand.configuration.subcommands.map { $0._commandName }
            let help = known.contains(command) ? "recur \(command) --help" : "recur --help"
            fail(first.replacingOccurrences(of: "Error: ", with: "") + " (see '\(help)')", status: code.rawValue)
        }
    }
}

/// `--tokens -5` is `--tokens=-5`: ArgumentParser takes "-5" for an option and reports a missing value,
/// so an option followed by a negative number is joined with it and the command's own check speaks.
func joinNegativeValues(_ args: [String]) -> [String] {
    var out: [String] = []
    var i = 0
    while i < args.count {
        let a = args[i]
        if a == "--" { out += args[i...]; break }
        if a.hasPrefix("--"), !a.contains("="), i + 1 < args.count, looksNegative(args[i + 1]) {
            out.append(a + "=" + args[i + 1])
            i += 2
            continue
        }
        out.append(a)
        i += 1
    }
    return out
}

func looksNegative(_ s: String) -> Bool {
    guard s.hasPrefix("-"), s.count > 1 else { return false }
    let rest = s.dropFirst()
    return Double(rest) != nil || rest.lowercased() == "inf" || rest.lowercased() == "nan"
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
    guard let task, task != Task.generate.rawValue else { return args }
    return ["train-task"] + args.dropFirst()
}

/// A one-line error for the user.
struct CLIError: Error {
    var message: String
    init(_ m: String) { message = m }
}

func fail(_ message: String, status: Int32 = 1) -> Never {
    FileHandle.standardError.write(("recur: error: " + message + "\n").data(using: .utf8)!)
    Foundation.exit(status == 0 ? 1 : status)
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
    let candidates = [installedPath("alice.recur")] + checkoutPaths("models/alice.recur")
        + [FileManager.default.currentDirectoryPath + "/models/alice.recur"]
    for c in candidates where FileManager.default.fileExists(atPath: c) { return c }
    throw CLIError("no model given and no default model found (looked for $RECUR_MODEL, \(candidates.first!), models/alice.recur)")
}

/// The folder of the running binary, symbolic links resolved.
func binaryFolder() -> URL {
    URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
}

/// PREFIX/share/recur/NAME for a binary installed as PREFIX/bin/recur.
func installedPath(_ name: String) -> String {
    binaryFolder().deletingLastPathComponent().appendingPathComponent("share/recur/" + name).path
}

/// RELATIVE under each of the binary's four nearest ancestors: the checkout of a binary built as
/// .build/<config>/recur or .build/<triple>/<config>/recur.
func checkoutPaths(_ relative: String) -> [String] {
    var dir = binaryFolder(), out: [String] = []
    for _ in 0..<4 {
        dir = dir.deletingLastPathComponent()
        out.append(dir.appendingPathComponent(relative).path)
    }
    return out
}

/// Options every command that opens a model shares.
struct LoadOptions: ParsableArguments {
    @Flag(name: .customLong("no-mmap"), help: "Read the model into memory instead of mapping it (for files another process may change while they are open).")
    var noMmap = false
}

/// Opens a model (the default one when `path` is nil) and refuses one whose task is not `task`, with a
/// line that names what the model is and which command runs it.
func loadModel(_ path: String?, task: Task? = nil, load: LoadOptions? = nil, verify: Bool = true,
               configure: (inout Model.Options) -> Void = { _ in }) throws -> Model {
    var timings = LoadTimings()
    return try loadModel(path, task: task, load: load, verify: verify, timings: &timings, configure: configure)
}

/// `loadModel`, recording where the open's time went.
func loadModel(_ path: String?, task: Task? = nil, load: LoadOptions? = nil, verify: Bool = true,
               timings: inout LoadTimings, configure: (inout Model.Options) -> Void = { _ in }) throws -> Model {
    let p = try path ?? defaultModelPath()
    var o = Model.Options()
    o.verifyChecksum = verify
    o.mapFile = !(load?.noMmap ?? false)   // (a LoadOptions not parsed from arguments cannot be read)
    configure(&o)
    let m = try Model(path: p, options: o, timings: &timings)
    if let task, m.architecture.task != task {
        let kind = m.architecture.task
        throw CLIError("\(p) is \(kind.noun) (model.task \(kind.rawValue)), not \(task.noun); run it with `recur \(kind.call)`")
    }
    return m
}
/// `--unknown error|skip|replace`: what to do with text outside a vocabulary without UNK.
struct UnknownOption: ParsableArguments {
    @Option(name: .long, help: "Characters (or words) not in the vocabulary of a model without UNK: error (default), skip, or replace (by a look-alike: é → e, ’ → ').")
    var unknown: String = "error"

    func policy() throws -> Vocabulary.UnknownPolicy {
        guard let p = Vocabulary.UnknownPolicy(rawValue: unknown) else {
            throw CLIError("--unknown must be error, skip or replace (got '\(unknown)')")
        }
        return p
    }
}

/// The checkout's (or installation's) copy of a data file named relative to the repository, such as
/// `data/pos/en_ewt-ud-dev.upos.txt`: under the current folder, then in the checkout the binary was
/// built in, then PREFIX/share/recur/ of an installed binary.
func defaultDataFile(_ relative: String) throws -> String {
    let candidates = [FileManager.default.currentDirectoryPath + "/" + relative] + checkoutPaths(relative)
        + [installedPath(relative)]
    for c in candidates where FileManager.default.isReadableFile(atPath: c) { return c }
    throw CLIError("the default data file \(relative) is not in the current folder or the checkout this recur was built in; give the data with --data FILE...")
}

/// Fails unless a file can be written at `path` (its folder exists and is writable, and it is not a
/// folder itself), so that a long run does not end on an unwritable output. Probes with a file of its own.
func requireWritable(_ path: String, _ option: String) throws {
    var isDir: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isDir), isDir.boolValue {
        throw CLIError("\(option) \(path) is a folder; name a file")
    }
    let folder = URL(fileURLWithPath: path).deletingLastPathComponent().path
    guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDir), isDir.boolValue else {
        throw CLIError("\(option) \(path): the folder \(folder) does not exist")
    }
    let probe = folder + "/.recur-write-probe-\(getpid())"
    let fd = open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
    guard fd >= 0 else {
        throw CLIError("\(option) \(path): cannot write in \(folder) (\(String(cString: strerror(errno))))")
    }
    close(fd)
    unlink(probe)
    if FileManager.default.fileExists(atPath: path) && !FileManager.default.isWritableFile(atPath: path) {
        throw CLIError("\(option) \(path) exists and is not writable")
    }
}
