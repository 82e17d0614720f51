import ArgumentParser
import Foundation
import Workloads

/// `loratwin trace convert`: from Azure or BurstGPT to the project's format, or between CSV and
/// JSONL, row by row (the trace is never held in memory).
struct TraceConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Convert Azure or BurstGPT traces to the project's format, or CSV <-> JSONL.",
        discussion: """
            Streams row by row. From Azure or BurstGPT, adapters are assigned when --adapters is given
            (from --popularity, seeded), and the output's <name>.meta.json records how. Between the
            project's formats, the catalogue beside the input is copied beside the output.
            """
    )

    @Argument(help: "The trace to read.")
    var input: String

    @Argument(help: "The trace to write (.csv or .jsonl).")
    var output: String

    @Option(help: "The input's format: loratwin, azure or burstgpt (default: from the header).")
    var from: String?

    @Option(help: "Keep requests from this many seconds after the first (Azure, BurstGPT).")
    var windowStart: Double = 0

    @Option(help: "Keep requests before this many seconds after the first (Azure, BurstGPT).")
    var windowEnd: Double?

    @Option(help: "Multiply the request rate (divide the gaps) by this (Azure, BurstGPT).")
    var rateScale: Double = 1

    @Option(help: "Keep at most this many requests (Azure, BurstGPT).")
    var limit: Int?

    @Option(help: "BurstGPT: keep only this model (ChatGPT, GPT-4).")
    var model: String?

    @Option(help: "BurstGPT: keep only this log type (Conversation log, API log).")
    var logType: String?

    @OptionGroup var adapterOptions: AdapterOptions

    func run() throws {
        try TraceCommandError.reporting {
            let kind = try sourceKind(from: from, path: input)
            let written: Int
            if let source = try TraceSource.external(input, kind: kind, model: model, logType: logType) {
                var options = ImportOptions(
                    windowStartSeconds: windowStart, windowEndSeconds: windowEnd, rateScale: rateScale, limit: limit)
                if let n = adapterOptions.adapters, n > 0 {
                    options.adapters = AdapterAssignment(
                        catalogue: try adapterOptions.catalogue(count: n), popularity: try adapterOptions.parsedPopularity(),
                        seed: adapterOptions.seed)
                }
                let importer = try TraceImporter(source, options: options)
                written = try TraceFiles.write(importer, to: output)
                for (reason, count) in importer.skipped.sorted(by: { $0.key < $1.key }) { print("skipped \(count) rows: \(reason)") }
            } else {
                written = try TraceFiles.convert(input, to: output)
            }
            print("wrote \(output) (\(written) requests)")
        }
    }
}
