import Foundation
import KernelProfiles
import TestSupport
import Testing

@Suite("Decode tail fitted on step_decode_varied")
struct DecodeTailFitTests {
    /// Chosen so that one_long batches take the tail and wide spread ones the work.
    static let (tau, w) = (0.2, 0.5)
    /// The engine's rule of the H200 profiles: splits(2) = 8, splits(4) = 4, splits(8) = 2, 1 from 16.
    static let rule = #"{"target_programs": 512, "max_splits": 8, "heads": 32}"#
    static func graphs(_ meta: String) -> String {
        meta.replacingOccurrences(of: "}", with: #", "graph_sizes": [1, 2, 4, 8, 16, 32, 64, 128]}"#)
    }
    static func graph(_ n: Int) -> Int { [1, 2, 4, 8, 16, 32, 64, 128].first { $0 >= n }! }
    static func splits(_ g: Int) -> Int { g >= 16 ? 1 : 16 / g }

    /// The fixture with the split rule and graph sizes, and, when `varied` is given, that table.
    static func profile(_ varied: String?) throws -> StepProfile {
        try StepProfile(
            directory: try ProfileFixture.write(mutate: ["meta.json": graphs(_:)], decodeAttention: rule, decodeVaried: varied))
    }

    @Test(
        "a varied table made from known tau and w gives them back",
        arguments: [false, true])
    func recovers(withRule: Bool) throws {
        let p: StepProfile
        if withRule {
            // Rows at 12 and 40 sequences run as the graphs of 16 and 64; 4 and 8 split in 4 and 2.
            let v = ProfileFixture.variedDecode(
                tau: Self.tau, w: Self.w, sizes: [4, 8, 12, 40, 64, 128], graph: Self.graph, splits: Self.splits)
            p = try Self.profile(v)
        } else {
            p = try StepProfile(directory: try ProfileFixture.write(decodeVaried: ProfileFixture.variedDecode(tau: Self.tau, w: Self.w)))
        }
        let f = try #require(p.decodeTailFit)
        #expect(f.features == ["max/splits", "work"])
        #expect(abs(f.coefficients[0] / Self.tau - 1) < 1e-6, "tau \(f.coefficients[0])")
        #expect(abs(f.coefficients[1] / Self.w - 1) < 1e-6, "w \(f.coefficients[1])")
        #expect(f.points == 12)  // spread and one_long at 6 sizes; scattered (uniform) rows are left out
        #expect(f.leaveOneOutPercent < 1e-6)
        // Every row of the table, skewed or uniform, is priced as it was made: floor + max(work,
        // tail), so a skewed row whose generated tail is below its work costs the work.
        for c in p.decodeChecks {
            let (n, mean) = (Double(c.seqs), Double(c.contextTokens) / Double(c.seqs))
            let floorAndWork =
                ProfileFixture.decode(Double(withRule ? Self.graph(c.seqs) : c.seqs), 128) + ProfileFixture.decode(n, mean)
                - ProfileFixture.decode(n, 128)
            let expected = max(c.microseconds, floorAndWork)
            let model = p.decodeMicroseconds(seqs: c.seqs, contextTokens: c.contextTokens, maxContext: c.maxContext)
            #expect(abs(model - expected) < 1e-6 * expected, "\(c.layout) \(c.seqs)")
        }
    }

    @Test("a skewed batch is priced floor + max(work, tau x max / splits + w x work)")
    func pricesSkewedBatch() throws {
        let p = try Self.profile(
            ProfileFixture.variedDecode(tau: Self.tau, w: Self.w, graph: Self.graph, splits: Self.splits))
        // 3 sequences run as the graph of 4 (4 splits): contexts summing 3000, the longest 2000.
        // work = 0.01 x 3 x (1000 - 128) = 26.16; tail = 0.2 x 2000 / 4 + 0.5 x 26.16 = 113.08.
        let parts = p.decodeParts(seqs: 3, contextTokens: 3000, maxContext: 2000)
        #expect(abs(parts.floor - ProfileFixture.decode(4, 128)) < 1e-9)
        #expect(abs(parts.work - 26.16) < 1e-9)
        #expect(abs(parts.tail - 113.08) < 1e-6)
        #expect(abs(p.decodeMicroseconds(seqs: 3, contextTokens: 3000, maxContext: 2000) - (ProfileFixture.decode(4, 128) + 113.08)) < 1e-6)
        // 20 sequences (graph 32, 1 split), mean 600, one of 3000: tail = 600 + 0.5 x 94.4.
        let twenty = p.decodeParts(seqs: 20, contextTokens: 12000, maxContext: 3000)
        #expect(abs(twenty.tail - (600 + 0.5 * 94.4)) < 1e-6)
        // Equal contexts keep the grid exactly (no tail), as does maxContext 0.
        for maxContext in [0, 1024] {
            let uniform = p.decodeMicroseconds(seqs: 32, contextTokens: 32 * 1024, maxContext: maxContext)
            #expect(abs(uniform - ProfileFixture.decode(32, 1024)) < 1e-9)
        }
        // A barely skewed batch of many long sequences: the tail (0.2 x 4097 + 0.5 x work = 3359)
        // is below the work (0.01 x 128 x 3968 = 5079), so the step is the work.
        let wide = p.decodeParts(seqs: 128, contextTokens: 128 * 4096, maxContext: 4097)
        #expect(wide.tail < wide.work)
        #expect(abs(p.decodeMicroseconds(seqs: 128, contextTokens: 128 * 4096, maxContext: 4097) - ProfileFixture.decode(128, 4096)) < 1e-6)
    }

    @Test(
        "without a usable varied table the tail is the one-sequence rows', exactly as before",
        arguments: [
            "none", "uniform rows only", "two skewed rows", "negative tau", "negative w",
        ])
    func fallsBack(varied: String) throws {
        let table: String? =
            switch varied {
            case "none": nil
            case "uniform rows only":
                ProfileFixture.variedDecode(tau: Self.tau, w: Self.w, graph: Self.graph, splits: Self.splits)
                    .split(separator: "\n").filter { !$0.contains("spread") && !$0.contains("one_long") }.joined(separator: "\n")
            case "two skewed rows":
                ProfileFixture.variedDecode(tau: Self.tau, w: Self.w, sizes: [16], graph: Self.graph, splits: Self.splits)
            case "negative tau": ProfileFixture.variedDecode(tau: -0.5, w: Self.w, graph: Self.graph, splits: Self.splits)
            default: ProfileFixture.variedDecode(tau: Self.tau, w: -0.5, graph: Self.graph, splits: Self.splits)
            }
        let p = try Self.profile(table)
        #expect(p.decodeTailFit == nil)
        // 3 sequences (graph 4: splits(1) / splits(4) = 8 / 4), mean 1000, the longest 2000: a lone
        // sequence of 4000 tokens, 0.01 x (4000 - 128) = 38.72 over the shortest context.
        let parts = p.decodeParts(seqs: 3, contextTokens: 3000, maxContext: 2000)
        #expect(abs(parts.tail - 38.72) < 1e-9)
        // And bit for bit what a profile without the table prices, over a spread of batches.
        let plain = try Self.profile(nil)
        for (n, mean, longest) in [(2, 300, 4000), (3, 1000, 2000), (12, 800, 4096), (40, 500, 3000), (128, 2000, 4096), (64, 1024, 1024)] {
            let a = p.decodeParts(seqs: n, contextTokens: n * mean, maxContext: longest)
            let b = plain.decodeParts(seqs: n, contextTokens: n * mean, maxContext: longest)
            #expect(a == b, "\(n) \(mean) \(longest)")
        }
    }
}
