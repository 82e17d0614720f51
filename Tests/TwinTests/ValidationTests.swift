import Foundation
import KernelProfiles
import TestSupport
import Testing
import Twin
import Workloads

@Suite("Validation against live runs")
struct ValidationTests {
    @Test("SMAPE: the published formula, 0 when both are 0, undefined when either is missing")
    func smapeDefinition() {
        #expect(abs(smape(forecast: 110, actual: 100) - 100 * 10 / 105) < 1e-12)
        #expect(smape(forecast: 0, actual: 0) == 0)
        #expect(smape(forecast: 5, actual: 0) == 200)
        #expect(smape(forecast: .nan, actual: 1).isNaN)
    }

    /// Runs a small scenario, writes its outputs, and returns the folder (a run in the live format).
    func recordedRun(horizon: Double = .infinity) throws -> (Scenario, Trace, String, RunResult) {
        var s = try DefaultScenario.scenario()
        if case .generated(var g) = s.workload {
            g.requests = 300
            s.workload = .generated(g)
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loratwin-live-\(UUID().uuidString)").path
        let trace = try ScenarioRunner.makeTrace(s)
        let result = try ScenarioRunner.run(s, trace: trace, outputs: .init(directory: dir), horizon: horizon)
        return (s, trace, dir, result)
    }

    @Test("the twin read back as a live run agrees with itself on every metric")
    func selfValidation() throws {
        let (s, trace, dir, result) = try recordedRun()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let live = try LiveRun(directory: dir, catalogue: trace.catalogue)
        let row = ValidationRow(
            scenario: s.name, directory: dir, costModel: "analytic", offeredRequestsPerSecond: 1,
            live: live.summary(adapterCount: trace.catalogue.count, replicas: 1), predicted: result.summary)
        for m in ValidationMetric.allCases {
            #expect(row.error(m) < 1e-9, "\(m.rawValue): \(row.error(m))")
        }
        #expect(result.summary.completed == 300)
    }

    @Test("a horizon stops the simulation: requests unfinished then are not counted")
    func horizon() throws {
        let (_, _, dir, full) = try recordedRun()
        let (_, _, dir2, cut) = try recordedRun(horizon: full.summary.makespanSeconds / 2)
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            try? FileManager.default.removeItem(atPath: dir2)
        }
        #expect(cut.summary.completed > 0 && cut.summary.completed < full.summary.completed)
        let rows = try String(contentsOfFile: dir2 + "/requests.csv", encoding: .utf8).split(separator: "\n")
        #expect(rows.contains { $0.contains(",unfinished,") })
    }

    @Test("a live run naming an adapter missing from the catalogue is refused with its line")
    func unknownAdapter() throws {
        let (_, trace, dir, _) = try recordedRun()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var text = try String(contentsOfFile: dir + "/requests.csv", encoding: .utf8)
        let name = trace.catalogue[0].name
        text = text.replacingOccurrences(of: ",\(name),", with: ",nosuch,")
        try text.write(toFile: dir + "/requests.csv", atomically: true, encoding: .utf8)
        #expect(throws: ProfileError.self) { try LiveRun(directory: dir, catalogue: trace.catalogue) }
        do { _ = try LiveRun(directory: dir, catalogue: trace.catalogue) } catch { #expect(error.line != nil && error.column == "adapter") }
    }
}

@Suite("Prediction intervals")
struct PredictionIntervalTests {
    func scenario(profile: String) throws -> Scenario {
        var s = try DefaultScenario.scenario()
        s.costModel = .measured(profile: profile, kernel: "sgmv")
        if case .generated(var g) = s.workload {
            g.requests = 200
            s.workload = .generated(g)
        }
        return s
    }

    @Test("the spread comes from the profile's p10/p90, and sampled replicas are seeded")
    func sampledReplicas() throws {
        let dir = try ProfileFixture.write()
        let profile = try StepProfile(directory: dir)
        #expect(abs(profile.decodeLogSigma - log(1.1 / 0.9) / 2.5631) < 1e-9)
        #expect(profile.eagerLogSigma == 0)
        let s = try scenario(profile: dir)
        let trace = try ScenarioRunner.makeTrace(s)
        let a = try ScenarioRunner.sampledRuns(s, trace: trace, count: 4)
        let b = try ScenarioRunner.sampledRuns(s, trace: trace, count: 4)
        #expect(a.map(\.e2e.mean) == b.map(\.e2e.mean))
        #expect(Set(a.map(\.e2e.mean)).count == 4)
        let band = PredictionBand(.e2eMean, a)
        #expect(band.low < band.high)
        #expect(band.low <= band.median && band.median <= band.high)
        #expect(band.contains(a[0].e2e.mean) || a[0].e2e.mean == a.map(\.e2e.mean).min() || a[0].e2e.mean == a.map(\.e2e.mean).max())
        #expect(!band.contains(.nan))
    }

    @Test("intervals need a measured profile")
    func needsProfile() throws {
        var s = try scenario(profile: "/nonexistent")
        s.costModel = .analytic
        #expect(throws: WorkloadError.self) { try ScenarioRunner.sampledRuns(s, trace: try ScenarioRunner.makeTrace(s), count: 2) }
    }
}

@Suite("Mode changes")
struct ModeChangeTests {
    @Test("a dLoRA run read back as a live run agrees on its mode changes, and has some")
    func modeChangesRoundTrip() throws {
        let yaml = """
            name: modes
            seed: 3
            scheduler: {kind: dlora, merge_ratio: 1.0, stay_ratio: 0.5}
            cost_model: {kind: linear, base_s: 0.01, per_prefill_token_s: 0.00005, per_decode_seq_s: 0.0005, host_to_gpu_s: 0.003, disk_to_host_s: 0.02, switch_s: 0.03}
            engine: {max_num_seqs: 8, max_num_batched_tokens: 512, num_gpu_blocks: 512, max_loras: 2, max_cpu_loras: 4}
            workload:
              requests: 300
              arrival: {kind: poisson, rate: 60}
              popularity: {kind: zipf, exponent: 2.5}
              prompt_tokens: {kind: uniform, min: 16, max: 128}
              output_tokens: {kind: uniform, min: 4, max: 32}
              adapters: {count: 4, ranks: [16]}
            """
        let s = try Scenario.parse(yaml, file: "modes.yaml", baseDirectory: ".")
        let trace = try ScenarioRunner.makeTrace(s)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loratwin-modes-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try ScenarioRunner.run(s, trace: trace, outputs: .init(directory: dir))
        let live = try LiveRun(directory: dir, catalogue: trace.catalogue)
        #expect(result.summary.modeChanges > 0)
        #expect(live.modeChanges == result.summary.modeChanges)
        #expect(result.summary.completed == 300)
    }
}
