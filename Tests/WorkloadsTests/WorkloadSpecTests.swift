import Foundation
import TestSupport
import Testing
import Workloads

@Suite("The scenario's workload section")
struct WorkloadSpecTests {
    private func parse(_ yaml: String, in folder: TemporaryFolder) throws -> WorkloadSpec {
        let path = folder.write("scenario.yaml", yaml)
        return try WorkloadSpec.parse(try YAMLReader.parse(yaml, file: path))
    }

    @Test("a trace file with its catalogue, relative to the scenario")
    func traceFile() throws {
        let folder = TemporaryFolder()
        folder.write("t.csv", WorkloadFixtures.validTraceCSV)
        folder.write("t.catalogue.csv", WorkloadFixtures.validCatalogueCSV)
        let spec = try parse("trace: t.csv\ncatalogue: t.catalogue.csv\n", in: folder)
        #expect(spec == .file(trace: "t.csv", catalogue: "t.catalogue.csv"))
        let trace = try spec.makeTrace(baseDirectory: folder.path, seed: 1)
        #expect(trace.requests.count == 5)
        // Without a catalogue key, the one beside the trace is used.
        #expect(try parse("trace: t.csv\n", in: folder).makeTrace(baseDirectory: folder.path, seed: 1).catalogue.count == 2)
    }

    @Test("an imported Azure trace with options takes the scenario's seed for its adapters")
    func imported() throws {
        let folder = TemporaryFolder()
        let yaml = """
            trace: \(WorkloadFixtures.azureTrace("code"))
            format: azure
            window_s: [60, 660]
            rate_scale: 2
            limit: 1000
            popularity: {kind: skewed, top: 2, share: 0.9}
            adapters: {count: 8, ranks: [8, 16]}
            """
        let spec = try parse(yaml, in: folder)
        let a = try spec.makeTrace(baseDirectory: folder.path, seed: 3)
        let b = try spec.makeTrace(baseDirectory: folder.path, seed: 4)
        #expect(a.requests.count == 1000)
        #expect(a.catalogue.count == 8)
        #expect(a.requests.map(\.adapter) != b.requests.map(\.adapter))
        #expect(a.requests.last.map { $0.arrivalSeconds <= 300 } == true)
    }

    @Test("a generator section with every new kind parses")
    func generator() throws {
        let folder = TemporaryFolder()
        let yaml = """
            requests: 500
            arrival:
              kind: piecewise
              phases:
                - {duration_s: 30, kind: poisson, rate: 2}
                - {duration_s: 10, kind: constant, rate: 0}
                - {kind: gamma, rate: 20, cv: 3}
            popularity: {kind: skewed, top: 4, share: 0.8}
            popularity_shifts: [{start_s: 60, kind: zipf, exponent: 1.1, rotation: 16}]
            prompt_tokens: {kind: empirical, trace: \(WorkloadFixtures.azureTrace("conv"))}
            output_tokens: {kind: normal, mean: 100, sd: 30, min: 1, max: 400}
            adapters: {count: 32, ranks: {8: 1, 64: 3}, alpha: 32, target_modules: [q_proj, v_proj], base_model: llama-2-7b}
            """
        guard case .generated(let g) = try parse(yaml, in: folder) else {
            Issue.record("expected a generator")
            return
        }
        #expect(g.requests == 500)
        guard case .piecewise(let phases) = g.arrival else {
            Issue.record("expected a piecewise arrival")
            return
        }
        #expect(phases.map(\.durationSeconds) == [30, 10, .infinity])
        #expect(g.popularity == .topShare(adapters: 4, share: 0.8))
        #expect(g.popularityShifts == [PopularityPhase(startSeconds: 60, popularity: .zipf(exponent: 1.1), rotation: 16)])
        guard case .empirical(let values) = g.promptTokens else {
            Issue.record("expected empirical prompts")
            return
        }
        #expect(values.count == 19366)
        #expect(g.catalogue.baseModel == "llama-2-7b")
        #expect(g.generate(seed: 1).requests.count == 500)
    }

    @Test(
        "mistakes name the key",
        arguments: [
            ("arrival: {kind: poisson, rate: 1}\npopularity: {kind: zipf, exponant: 1}\n", "popularity.exponant"),
            ("arrival: {kind: piecewise, phases: [{kind: poisson, rate: 1}, {kind: poisson, rate: 2}]}\n", "arrival.phases[0].duration_s"),
            ("arrival: {kind: poisson, rate: 1}\nprompt_tokens: {kind: empirical, trace: nowhere.csv}\n", nil),
            ("trace: x.csv\nformat: azur\n", "format"),
        ] as [(String, String?)])
    func mistakes(_ yaml: String, _ field: String?) throws {
        let folder = TemporaryFolder()
        let e = try #require(throws: WorkloadError.self) { try parse(yaml, in: folder) }
        #expect(e.field == field, "\(e)")
    }
}
