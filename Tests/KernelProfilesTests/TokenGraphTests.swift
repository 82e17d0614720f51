import Foundation
import KernelProfiles
import TestSupport
import Testing
import Twin
import Workloads

@Suite("Eager token graphs")
struct TokenGraphTests {
    static let sizes = [16, 64, 256]

    @Test("token_graph_sizes parses sorted, and is nil when absent")
    func parses() throws {
        let p = try StepProfile(directory: try ProfileFixture.write(tokenGraphSizes: [256, 16, 64]))
        #expect(p.meta.tokenGraphSizes == [16, 64, 256])
        let plain = try StepProfile(directory: try ProfileFixture.write())
        #expect(plain.meta.tokenGraphSizes == nil)
        #expect(plain.tokenGraphSize(40) == 40)
    }

    @Test(
        "a bad token_graph_sizes is refused, naming the file and the field",
        arguments: ["[]", "[16, \"a\"]", "[16, 32.5]", "[16, -64]", "[0]", "\"16\""])
    func refused(value: String) throws {
        let meta: (String) -> String = { $0.replacingOccurrences(of: "}", with: ", \"token_graph_sizes\": \(value)}") }
        let dir = try ProfileFixture.write(mutate: ["meta.json": meta])
        #expect {
            try StepProfile(directory: dir)
        } throws: { isProfileError($0, file: "meta.json", column: "token_graph_sizes") }
    }

    @Test("a step up to the largest size is priced at the next size up; beyond it, at its own size")
    func pricing() throws {
        let p = try StepProfile(
            directory: try ProfileFixture.write(tokenFormula: ProfileFixture.risingTokens, tokenGraphSizes: Self.sizes))
        #expect(p.tokenGraphSize(1) == 16 && p.tokenGraphSize(16) == 16 && p.tokenGraphSize(17) == 64)
        #expect(p.tokenGraphSize(65) == 256 && p.tokenGraphSize(256) == 256 && p.tokenGraphSize(300) == 300)
        func tokenPart(_ t: Int) -> Double {
            p.eagerMicroseconds(tokens: t, prefillPairs: 0, decodeSequences: 0, decodeContextTokens: 0, prefillMaxKeys: 0)
        }
        for t in 17...64 {
            #expect(abs(tokenPart(t) - ProfileFixture.risingTokens(64)) < 1e-9, "\(t) tokens")
        }
        #expect(abs(tokenPart(300) - ProfileFixture.risingTokens(300)) < 1e-6)
        // Only the token curve is padded: attention is that of the real pairs, context and sequences.
        let mixed = p.eagerMicroseconds(tokens: 40, prefillPairs: 528, decodeSequences: 8, decodeContextTokens: 4096, prefillMaxKeys: 0)
        #expect(abs(mixed - (ProfileFixture.risingTokens(64) + 1e-4 * 528 + 0.01 * 4096 + 0.5 * 8)) < 1e-6)
    }

    @Test("without token_graph_sizes, a step is priced at its own token count")
    func unchangedWithoutSizes() throws {
        let p = try StepProfile(directory: try ProfileFixture.write(tokenFormula: ProfileFixture.risingTokens))
        for t in [1, 17, 40, 64, 65, 300] {
            let us = p.eagerMicroseconds(tokens: t, prefillPairs: 0, decodeSequences: 0, decodeContextTokens: 0, prefillMaxKeys: 0)
            #expect(abs(us - p.tokenCurve(Double(t))) < 1e-9, "\(t) tokens")
            #expect(abs(us - ProfileFixture.risingTokens(Double(t))) < 1e-6, "\(t) tokens")
        }
    }

    @Test("the load-time residual fits read the token curve at the token-graph size, as pricing does")
    func residualFits() throws {
        // Tables measured by an engine with token graphs: the attention row of 40 tokens and the
        // step_mixed rows of 40 cost the graph of 64.
        let dir = try ProfileFixture.write(withMixed: true, tokenFormula: ProfileFixture.risingTokens, tokenGraphSizes: Self.sizes)
        let p = try StepProfile(directory: dir)
        let a = p.attentionFit
        #expect(abs(a.coefficients[0] - 1e-4) < 1e-12 && abs(a.coefficients[1] - 0.01) < 1e-9 && abs(a.coefficients[2] - 0.5) < 1e-6)
        #expect(a.leaveOneOutPercent < 1e-6)
        let f = try #require(p.eagerLoraFits["sgmv"])
        #expect(abs(f.coefficients[0] - 2000) < 1e-6 && abs(f.coefficients[1] - 3) < 1e-9)
        #expect(f.leaveOneOutPercent < 1e-6)
        // The same tables read at the real token counts misfit: the test above can tell.
        let unpadded = try ProfileFixture.write(
            mutate: ["meta.json": { $0.replacingOccurrences(of: "token_graph_sizes", with: "unused") }], withMixed: true,
            tokenFormula: ProfileFixture.risingTokens, tokenGraphSizes: Self.sizes)
        let q = try StepProfile(directory: unpadded)
        #expect(q.meta.tokenGraphSizes == nil)
        #expect(q.attentionFit.leaveOneOutPercent > 1)
        #expect(abs(q.eagerLoraFits["sgmv"]!.coefficients[0] - 2000) > 1)
    }

    @Test("the measured cost model's eager part is the padded token curve; LoRA in a token graph is the table's at the graph size")
    func breakdown() throws {
        let dir = try ProfileFixture.write(withMixed: true, tokenFormula: ProfileFixture.risingTokens, tokenGraphSizes: Self.sizes)
        let p = try StepProfile(directory: dir)
        let m = try Fixtures.oneAdapterModel(p, rank: 16)
        var b = StepBatch()
        b.prefillTokens = 32
        b.prefillSequences = 1
        b.prefillAttentionPairs = 528
        b.decodeSequences = 8
        b.decodeContextTokens = 4096
        b.decodeMaxContext = 512
        b.samplingSequences = 9
        b.segments = [LoraSegment(adapter: 0, tokens: 40)]
        let parts = m.breakdown(b)
        #expect(abs(parts.eager - (ProfileFixture.risingTokens(64) + 1e-4 * 528 + 0.01 * 4096 + 0.5 * 8)) < 1e-6)
        // A step that runs as a token graph pays the LoRA table's cost at its graph size (64
        // tokens, 1 segment, rank 16: 100 + 2 x 64 + 50 + 0.05 x 64 x 16), not the step_mixed fit.
        #expect(p.runsAsTokenGraph(40) && p.runsAsTokenGraph(256) && !p.runsAsTokenGraph(257))
        let table = try #require(p.loraMicroseconds(kernel: "sgmv", tokens: 64, segments: 1, rank: 16))
        #expect(abs(table - (100 + 2 * 64 + 50 + 0.05 * 64 * 16)) < 1e-6)
        #expect(abs(parts.lora - table) < 1e-9)
        // Beyond the largest graph the step runs eagerly and takes the step_mixed fit.
        b.prefillTokens = 292
        b.segments = [LoraSegment(adapter: 0, tokens: 300)]
        #expect(abs(m.breakdown(b).lora - (2000 + 3 * 300)) < 1e-6)
        // Decode-only steps keep the table at their own row count.
        var d = StepBatch()
        d.decodeSequences = 8
        d.decodeContextTokens = 4096
        d.samplingSequences = 8
        d.segments = [LoraSegment(adapter: 0, tokens: 8)]
        #expect(abs(m.breakdown(d).lora - (100 + 2 * 8 + 50 + 0.05 * 8 * 16)) < 1e-6)
    }
}
