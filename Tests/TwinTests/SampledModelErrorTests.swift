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
}
