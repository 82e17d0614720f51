import Foundation
import TestSupport
import Testing
import Twin
import Workloads

@Suite("Determinism")
struct DeterminismTests {
    func runToDirectory(seed: UInt64) throws -> [String: Data] {
        var s = try DefaultScenario.scenario()
        s.seed = seed
        if case .generated(var g) = s.workload {
            g.requests = 400
            s.workload = .generated(g)
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loratwin-det-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        _ = try ScenarioRunner.run(
            s, trace: try ScenarioRunner.makeTrace(s), outputs: .init(directory: dir, batchLog: dir + "/batches.jsonl"))
        var out: [String: Data] = [:]
        for f in ["requests.csv", "iterations.csv", "summary.json", "batches.jsonl"] {
            out[f] = try Data(contentsOf: URL(fileURLWithPath: dir + "/" + f))
        }
        return out
    }

    @Test("two runs with the same seed write byte-identical files")
    func sameSeedSameBytes() throws {
        let a = try runToDirectory(seed: 3)
        let b = try runToDirectory(seed: 3)
        #expect(a.keys.sorted() == b.keys.sorted())
        for (k, v) in a { #expect(v == b[k], "\(k) differs") }
        #expect(a["iterations.csv"]!.count > 1000)
    }

    @Test("a different seed gives a different run")
    func differentSeed() throws {
        #expect(try runToDirectory(seed: 3)["requests.csv"] != runToDirectory(seed: 4)["requests.csv"])
    }

    @Test("a failed output leaves no file behind")
    func noHalfWrittenOutput() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loratwin-atomic-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let w = try AtomicFileWriter(path: dir + "/x.csv")
            try w.write("partial")
        }  // dropped without commit
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
        // A run whose output cannot be written fails before anything appears.
        var s = try DefaultScenario.scenario()
        if case .generated(var g) = s.workload {
            g.requests = 50
            s.workload = .generated(g)
        }
        // The batch log's folder cannot exist: a regular file stands where it should be.
        try "x".write(toFile: dir + "/blocker", atomically: true, encoding: .utf8)
        #expect(throws: (any Error).self) {
            try ScenarioRunner.run(
                s, trace: try ScenarioRunner.makeTrace(s),
                outputs: .init(directory: dir + "/out", batchLog: dir + "/blocker/b.jsonl"))
        }
        let left = try FileManager.default.subpathsOfDirectory(atPath: dir).filter { $0 != "blocker" && $0 != "out" }
        #expect(left.isEmpty, "\(left)")
    }
}
