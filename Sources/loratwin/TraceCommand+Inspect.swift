import ArgumentParser
import Workloads

/// `loratwin trace inspect`: prints what a trace holds.
struct TraceInspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Print a trace's requests, duration, rate and burstiness, length percentiles and adapter shares.",
        discussion: "Reads the project's CSV/JSONL traces, the Azure LLM inference trace 2023 and BurstGPT (told apart by header)."
    )

    @Argument(help: "The trace file.")
    var file: String

    @Option(help: "The adapter catalogue (default: <name>.catalogue.csv beside a project trace, if any).")
    var catalogue: String?

    @Option(help: "The trace's format: loratwin, azure or burstgpt (default: from the header).")
    var from: String?

    @Option(help: "How many of the most used adapters to list.")
    var top: Int = 5

    func run() throws {
        try TraceCommandError.reporting {
            let kind = try sourceKind(from: from, path: file)
            let trace: Trace
            var skipped: [String: Int] = [:]
            if let source = try TraceSource.external(file, kind: kind) {
                let importer = try TraceImporter(source, options: ImportOptions())
                trace = try importer.readTrace()
                skipped = importer.skipped
            } else {
                trace = try TraceFiles.read(trace: file, catalogue: catalogue, collectUnknownAdapters: true)
            }
            print("\(file) (\(kind.rawValue))")
            print(TraceSummary(trace, top: max(top, 0)).report)
            for (reason, count) in skipped.sorted(by: { $0.key < $1.key }) { print("skipped         \(count) rows: \(reason)") }
        }
    }
}
