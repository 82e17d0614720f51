import ArgumentParser
import Foundation
import Workloads

/// Options that say which adapters a trace's requests use, for `trace generate` and `trace convert`.
struct AdapterOptions: ParsableArguments {
    @Option(help: "Number of adapters in the generated catalogue (0: every request on the base model).")
    var adapters: Int?

    @Option(help: "Adapter popularity: distinct, uniform, identical, zipf:EXPONENT or top:COUNT:SHARE.")
    var popularity: String = "uniform"

    @Option(help: "Ranks with optional weights, e.g. 8,16,32,64 or 8:4,16:2,64:1.")
    var ranks: String = "8,16,32,64"

    @Option(help: "LoRA alpha of every adapter.")
    var alpha: Double = 16

    @Option(help: "Target modules, ;-separated.")
    var targetModules: String = "q_proj;k_proj;v_proj;o_proj"

    @Option(help: "Seed for every random draw.")
    var seed: UInt64 = 0

    /// The catalogue spec of `count` adapters.
    func catalogue(count: Int) throws -> CatalogueSpec {
        guard let ranked = CatalogueSpec.ranks(shortForm: ranks) else {
            throw ValidationError("--ranks: '\(ranks)'; expected e.g. 8,16,32,64 or 8:4,16:2,64:1")
        }
        let modules = targetModules.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
        guard !modules.isEmpty, !modules.contains(where: { $0.isEmpty || $0.contains(",") }) else {
            throw ValidationError("--target-modules: needs at least one module")
        }
        guard count >= 0 else { throw ValidationError("--adapters: expected a count >= 0") }
        return CatalogueSpec(count: count, ranks: ranked, alpha: alpha, targetModules: modules)
    }

    /// The popularity named by `--popularity`.
    func parsedPopularity() throws -> Popularity {
        guard let p = Popularity(shortForm: popularity) else {
            throw ValidationError("--popularity: '\(popularity)'; expected distinct, uniform, identical, zipf:1.1 or top:4:0.8")
        }
        return p
    }
}

/// The length distribution of an option's short text (`LengthDistribution.parse(shortForm:output:)`).
func parseLengths(_ text: String, output: Bool, option: String) throws -> LengthDistribution {
    guard let d = try LengthDistribution.parse(shortForm: text, output: output) else {
        throw ValidationError(
            "\(option): '\(text)'; expected N, fixed:N, uniform:LO:HI, normal:MEAN:SD[:LO:HI], lognormal:MEAN:SIGMA[:LO:HI] or empirical:TRACE"
        )
    }
    return d
}

/// The trace kind named by `--from`, or detected from the file at `path` when not given.
func sourceKind(from: String?, path: String) throws -> TraceSourceKind {
    guard let from else { return try TraceSource.detect(path) }
    guard let k = TraceSourceKind(rawValue: from) else { throw ValidationError("--from: expected loratwin, azure or burstgpt") }
    return k
}
