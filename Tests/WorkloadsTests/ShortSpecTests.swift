import Foundation
import TestSupport
import Testing
import Workloads

@Suite("Short command-line forms of popularities, lengths and ranks")
struct ShortSpecTests {
    @Test(
        "popularities",
        arguments: [
            ("distinct", Popularity.distinct), ("uniform", .uniform), ("identical", .identical), ("zipf:1.1", .zipf(exponent: 1.1)),
            ("top:4:0.8", .topShare(adapters: 4, share: 0.8)),
        ])
    func popularity(_ text: String, _ expected: Popularity) {
        #expect(Popularity(shortForm: text) == expected)
    }

    @Test("bad popularities", arguments: ["", "zipf", "zipf:", "zipf:-1", "top:0:0.5", "top:2:1.5", "top:2", "uniform:1", ":", "Zipf:1"])
    func badPopularity(_ text: String) {
        #expect(Popularity(shortForm: text) == nil)
    }

    @Test(
        "lengths",
        arguments: [
            ("12", LengthDistribution.fixed(12)), ("fixed:3", .fixed(3)), ("uniform:1:9", .uniform(low: 1, high: 9)),
            ("normal:100:20", .normal(mean: 100, sd: 20, min: 1, max: 1_000_000)),
            ("lognormal:600:0.9:4:4096", .logNormal(mean: 600, sigma: 0.9, min: 4, max: 4096)),
        ])
    func lengths(_ text: String, _ expected: LengthDistribution) throws {
        #expect(try LengthDistribution.parse(shortForm: text, output: false) == expected)
    }

    @Test(
        "bad lengths",
        arguments: ["0", "-3", "fixed", "uniform:9:1", "normal:100", "lognormal:600:0:1:2", "normal:1:1:5", "x:1", "empirical:", ":::"])
    func badLengths(_ text: String) throws {
        #expect(try LengthDistribution.parse(shortForm: text, output: false) == nil)
    }

    @Test("empirical lengths come from the trace named")
    func empirical() throws {
        let d = try LengthDistribution.parse(shortForm: "empirical:" + WorkloadFixtures.azureTrace("code"), output: true)
        guard case .empirical(let v) = d else {
            Issue.record("expected empirical")
            return
        }
        #expect(v.count == 8819)
        #expect(throws: WorkloadError.self) { try LengthDistribution.parse(shortForm: "empirical:/nonexistent.csv", output: true) }
    }

    @Test("ranks with weights")
    func ranks() {
        #expect(CatalogueSpec.ranks(shortForm: "8,16")?.map(\.rank) == [8, 16])
        #expect(CatalogueSpec.ranks(shortForm: "8:4,64:1")?.map(\.weight) == [4, 1])
        for bad in ["", ",", ":", "8,:,16", "0", "8:-1", "8:0", "8:1:2", "x"] {
            #expect(CatalogueSpec.ranks(shortForm: bad) == nil, "\(bad)")
        }
    }
}
