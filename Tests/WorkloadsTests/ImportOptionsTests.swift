import Foundation
import TestSupport
import Testing
import Workloads

@Suite("Options shared by the real-trace readers")
struct ImportOptionsTests {
    static let conv = WorkloadFixtures.azureTrace("conv")

    private func read(_ o: ImportOptions) throws -> Trace {
        try TraceImporter(try AzureTraceReader(path: Self.conv), options: o).readTrace()
    }

    @Test("a time window keeps the requests inside it, timed from the window's start")
    func window() throws {
        let all = try read(ImportOptions())
        let w = try read(ImportOptions(windowStartSeconds: 600, windowEndSeconds: 1200))
        let expected = all.requests.filter { $0.arrivalSeconds >= 600 && $0.arrivalSeconds < 1200 }
        #expect(w.requests.count == expected.count)
        #expect(w.requests.map(\.promptTokens) == expected.map(\.promptTokens))
        #expect(zip(w.requests, expected).allSatisfy { abs($0.arrivalSeconds - ($1.arrivalSeconds - 600)) < 1e-9 })
        #expect(w.requests.map(\.requestID) == Array(0..<expected.count))
    }

    @Test("a rate scale divides the times", arguments: [0.5, 2.0, 10.0])
    func rateScale(_ scale: Double) throws {
        let all = try read(ImportOptions(limit: 500))
        let s = try read(ImportOptions(rateScale: scale, limit: 500))
        #expect(zip(s.requests, all.requests).allSatisfy { $0.arrivalSeconds == $1.arrivalSeconds / scale })
        let rate = TraceSummary(s).meanRatePerSecond / TraceSummary(all).meanRatePerSecond
        #expect(abs(rate - scale) < 1e-9 * scale)
    }

    @Test("a limit stops after that many requests", arguments: [0, 1, 1000])
    func limit(_ n: Int) throws {
        #expect(try read(ImportOptions(limit: n)).requests.count == n)
    }

    @Test("adapters are assigned from a seeded popularity, the same for the same seed, and recorded")
    func assignment() throws {
        let spec = CatalogueSpec(count: 16, ranks: [(8, 1), (16, 1), (32, 1), (64, 1)], alpha: 16, targetModules: ["q_proj", "v_proj"])
        let a = AdapterAssignment(catalogue: spec, popularity: .zipf(exponent: 1.2), seed: 5)
        let t1 = try read(ImportOptions(adapters: a))
        let t2 = try read(ImportOptions(adapters: a))
        var b = a
        b.seed = 6
        let t3 = try read(ImportOptions(adapters: b))
        #expect(t1.requests == t2.requests)
        #expect(t1.requests.map(\.adapter) != t3.requests.map(\.adapter))
        #expect(t1.catalogue.count == 16)
        let s = TraceSummary(t1)
        #expect(s.topAdapters.first?.name == "a0")
        #expect(s.baseModelRequests == 0)
        #expect(t1.provenance["adapters"]?.contains("seed 5") == true)
        #expect(t1.provenance["source_format"] == "azure-llm-2023")
    }

    @Test(
        "out-of-range options are errors",
        arguments: [
            ImportOptions(windowStartSeconds: -1), ImportOptions(windowStartSeconds: 5, windowEndSeconds: 5),
            ImportOptions(rateScale: 0), ImportOptions(limit: -2),
        ])
    func invalid(_ o: ImportOptions) {
        #expect(throws: WorkloadError.self) { try read(o) }
    }
}
