import Foundation
import KernelProfiles
import TestSupport
import Testing
import Workloads

@testable import Twin

@Suite("Sampled step costs with model error")
struct SampledModelErrorTests {
    @Test("model error is one factor per replica and step kind, drawn once; without it, factors are 1")
    func biasPerReplica() throws {
        // A decode grid with one point off gives a non-zero model sigma.
        let dir = try ProfileFixture.write(mutate: [
            "step_decode.csv": ProfileFixture.scaleDecodeRow(seqs: 8, context: 1024, by: 1.3)
        ])
        let p = try StepProfile(directory: dir)
        let base = try Fixtures.oneAdapterModel(p, rank: 16)
        let plain = SampledCostModel(base: base, seed: 3)
        #expect(plain.decodeBias == 1 && plain.eagerBias == 1)
        let biases = (1...40).map { SampledCostModel(base: base, seed: UInt64($0), modelError: true).decodeBias }
        #expect(Set(biases).count == 40)  // one draw per replica
        let logs: [Double] = biases.map { Foundation.log($0) }
        let mean: Double = logs.reduce(0, +) / Double(logs.count)
        let squares: Double = logs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +)
        let sd: Double = (squares / Double(logs.count - 1)).squareRoot()
        // Their spread is the model's sigma, within sampling error for 40 draws.
        #expect(abs(sd - p.decodeModelLogSigma) < 0.35 * p.decodeModelLogSigma)
        // The same seed gives the same replica.
        #expect(SampledCostModel(base: base, seed: 7, modelError: true).decodeBias == biases[6])
    }

    @Test("a Latin hypercube puts one replica in each stratum of every factor, in a seeded order")
    func latinHypercube() throws {
        let n = 10
        let points = Statistics.latinHypercubeNormal(count: n, dimensions: 2, seed: 9)
        let strata = (0..<n).map { Statistics.normalQuantile((Double($0) + 0.5) / Double(n)) }
        #expect(points.count == n && points.allSatisfy { $0.count == 2 })
        #expect(points.map { $0[0] } == strata)  // the first factor in order
        #expect(points.map { $0[1] }.sorted() == strata)  // the second: each stratum once
        #expect(points.map { $0[1] } != strata)  // shuffled (fixed seed), not tied to the first
        #expect(Statistics.latinHypercubeNormal(count: n, dimensions: 2, seed: 9) == points)
        #expect(abs(Statistics.normalQuantile(0.975) - 1.959964) < 1e-5 && Statistics.normalQuantile(0.5) == 0)
        // Given draws set the factors: the middle stratum of an odd count is the point model.
        let dir = try ProfileFixture.write(mutate: [
            "step_decode.csv": ProfileFixture.scaleDecodeRow(seqs: 8, context: 1024, by: 1.3)
        ])
        let base = try Fixtures.oneAdapterModel(try StepProfile(directory: dir), rank: 16)
        let z = Statistics.latinHypercubeNormal(count: 5, dimensions: 2, seed: 1)
        let biases = z.map { SampledCostModel(base: base, seed: 1, modelError: true, biasZ: ($0[0], $0[1])).decodeBias }
        #expect(biases[2] == 1 && biases == biases.sorted() && biases[0] < 1 && biases[4] > 1)
    }
}
