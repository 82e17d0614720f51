import ArgumentParser
import Foundation
import Workloads

/// `loratwin trace generate`: writes a seeded synthetic trace and its catalogue.
struct TraceGenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate a seeded trace and its adapter catalogue.",
        discussion: """
            Either a generator section in YAML (--spec, as under a scenario's workload:, with piecewise
            schedules and popularity shifts) or the options below. Writes OUT, OUT's catalogue
            (<name>.catalogue.csv) and provenance (<name>.meta.json).
            """
    )

    @Argument(help: "The trace to write (.csv or .jsonl).")
    var out: String

    @Option(help: "A generator section in YAML; the other generator options are then not allowed.")
    var spec: String?

    @Option(help: "Number of requests.")
    var requests: Int = 1000

    @Option(help: "Arrival process: poisson, gamma or constant.")
    var arrival: String = "poisson"

    @Option(help: "Mean arrival rate, requests per second.")
    var rate: Double = 10

    @Option(help: "Coefficient of variation of the gaps (gamma arrivals).")
    var cv: Double = 2

    @Option(help: "Prompt lengths: N, fixed:N, uniform:LO:HI, normal:MEAN:SD[:LO:HI], lognormal:MEAN:SIGMA[:LO:HI], empirical:TRACE.")
    var promptTokens: String = "lognormal:600:0.9:4:4096"

    @Option(help: "Output lengths, as --prompt-tokens.")
    var outputTokens: String = "lognormal:180:0.8:1:1024"

    @Option(
        help:
            "A trace to resample (prompt, output) pairs from, keeping their joint distribution; replaces --prompt-tokens and --output-tokens."
    )
    var lengthsFrom: String?

    @OptionGroup var adapterOptions: AdapterOptions

    func run() throws {
        try TraceCommandError.reporting {
            let generator = try makeSpec()
            let trace = generator.generate(seed: adapterOptions.seed)
            try TraceFiles.write(trace, to: out)
            print(
                "wrote \(out) (\(trace.requests.count) requests), \(TraceFiles.cataloguePath(forTrace: out)) (\(trace.catalogue.count) adapters)"
            )
        }
    }

    private func makeSpec() throws -> GeneratorSpec {
        if let spec {
            let text: String
            do { text = try String(contentsOfFile: spec, encoding: .utf8) } catch {
                throw TraceCommandError("\(spec): cannot read the generator spec (\(error.localizedDescription))")
            }
            return try GeneratorSpec.parse(try YAMLReader.parse(text, file: spec))
        }
        guard requests >= 1 else { throw ValidationError("--requests: expected at least 1") }
        guard rate > 0, rate.isFinite else { throw ValidationError("--rate: expected requests per second > 0") }
        let process: ArrivalProcess
        switch arrival {
        case "poisson": process = .poisson(rate: rate)
        case "constant": process = .constant(rate: rate)
        case "gamma":
            guard cv > 0, cv.isFinite else { throw ValidationError("--cv: expected a number > 0") }
            process = .gamma(rate: rate, cv: cv)
        default: throw ValidationError("--arrival: '\(arrival)'; expected poisson, gamma or constant")
        }
        var generator = GeneratorSpec(
            requests: requests, arrival: process, popularity: try adapterOptions.parsedPopularity(),
            promptTokens: try parseLengths(promptTokens, output: false, option: "--prompt-tokens"),
            outputTokens: try parseLengths(outputTokens, output: true, option: "--output-tokens"),
            catalogue: try adapterOptions.catalogue(count: adapterOptions.adapters ?? 8))
        if let lengthsFrom { generator.jointLengths = try JointLengths.load(lengthsFrom) }
        return generator
    }
}
