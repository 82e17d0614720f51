import Foundation
import TestSupport
import Testing
import Workloads

@Suite("Prompt and output lengths resampled together")
struct JointLengthsTests {
    private func logCorrelation(_ p: [Int], _ o: [Int]) -> Double {
        let x = p.map { log(Double($0)) }
        let y = o.map { log(Double($0)) }
        let mx = x.reduce(0, +) / Double(x.count)
        let my = y.reduce(0, +) / Double(y.count)
        var sxy = 0.0
        var sxx = 0.0
        var syy = 0.0
        for (a, b) in zip(x, y) {
            sxy += (a - mx) * (b - my)
            sxx += (a - mx) * (a - mx)
            syy += (b - my) * (b - my)
        }
        return sxy / (sxx * syy).squareRoot()
    }

    @Test("pairs come from the source's requests and reproduce its joint distribution", arguments: ["code", "conv"])
    func keepsCorrelation(_ kind: String) throws {
        let joint = try JointLengths.load(WorkloadFixtures.azureTrace(kind))
        var spec = GeneratorSpec(
            requests: 50_000, arrival: .poisson(rate: 10), popularity: .uniform, promptTokens: .fixed(1), outputTokens: .fixed(1),
            catalogue: CatalogueSpec(count: 4, ranks: [(16, 1)], alpha: 16, targetModules: ["q_proj"]))
        spec.jointLengths = joint
        let r = spec.generate(seed: 21).requests
        struct Pair: Hashable {
            let p: Int
            let o: Int
        }
        let source = Set(zip(joint.prompts, joint.outputs).map { Pair(p: $0, o: $1) })
        #expect(r.allSatisfy { source.contains(Pair(p: $0.promptTokens, o: $0.outputTokens)) })
        // The joint distribution over 4 x 4 cells (source quartiles of each length) passes a
        // chi-square test against the source's cell shares.
        func cells(_ p: [Int], _ o: [Int]) -> [Int] {
            let qp = TraceSummary.percentiles(joint.prompts)
            let qo = TraceSummary.percentiles(joint.outputs)
            func bin(_ v: Int, _ q: [Int]) -> Int { v <= q[2] ? 0 : v <= q[3] ? 1 : v <= q[4] ? 2 : 3 }
            var c = Array(repeating: 0, count: 16)
            for (a, b) in zip(p, o) { c[bin(a, qp) * 4 + bin(b, qo)] += 1 }
            return c
        }
        let sourceCells = cells(joint.prompts, joint.outputs)
        let shares = sourceCells.map { Double($0) / Double(joint.prompts.count) }
        let x = Statistics.chiSquare(observed: cells(r.map(\.promptTokens), r.map(\.outputTokens)), probabilities: shares)
        #expect(Statistics.chiSquareUpperTail(x, degreesOfFreedom: Double(shares.filter { $0 > 0 }.count - 1)) > 0.001, "chi2 \(x)")
    }

    @Test("the conversation trace's (weak) length correlation survives; independent draws would lose it")
    func correlation() throws {
        let joint = try JointLengths.load(WorkloadFixtures.azureTrace("conv"))
        let rng = RandomSource(seed: 22)
        var p: [Int] = []
        var o: [Int] = []
        var pi: [Int] = []
        var oi: [Int] = []
        for _ in 0..<50_000 {
            let d = joint.draw(rng)
            p.append(d.prompt)
            o.append(d.output)
            pi.append(joint.prompts[rng.uniformInt(joint.prompts.count)])
            oi.append(joint.outputs[rng.uniformInt(joint.outputs.count)])
        }
        let expected = logCorrelation(joint.prompts, joint.outputs)
        // Fisher's z: the sample correlation of n pairs has sd about 1/sqrt(n - 3) on the z scale.
        let tolerance = 3.29 / (50_000.0 - 3).squareRoot()
        #expect(abs(atanh(logCorrelation(p, o)) - atanh(expected)) < tolerance)
        #expect(abs(atanh(logCorrelation(pi, oi)) - atanh(expected)) > tolerance)
    }

    @Test("the YAML key, and its conflict with separate lengths")
    func yaml() throws {
        let folder = TemporaryFolder()
        let ok = "arrival: {kind: poisson, rate: 1}\nlengths: {kind: empirical, trace: \(WorkloadFixtures.azureTrace("code"))}\n"
        let spec = try GeneratorSpec.parse(try YAMLReader.parse(ok, file: folder.write("a.yaml", ok)))
        #expect(spec.jointLengths?.prompts.count == 8819)
        let bad = ok + "prompt_tokens: 12\n"
        let e = try #require(throws: WorkloadError.self) {
            try GeneratorSpec.parse(try YAMLReader.parse(bad, file: folder.write("b.yaml", bad)))
        }
        #expect(e.field == "lengths")
    }
}
