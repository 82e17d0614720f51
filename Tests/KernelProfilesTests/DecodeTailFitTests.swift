import Foundation
import KernelProfiles
import TestSupport
import Testing

@Suite("Decode tail fitted on step_decode_varied")
struct DecodeTailFitTests {
    /// Microseconds per token of a program's excess walk.
    static let tau = 0.2
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

    @Test("a varied table made from a known tau gives it back, split graphs with a tau of their own")
    func recovers() throws {
        // Rows at 12 and 40 sequences run as the graphs of 16 and 64; 4 and 8 split in 4 and 2.
        let v = ProfileFixture.variedDecode(tau: Self.tau, sizes: [4, 8, 12, 40, 64, 128], graph: Self.graph, splits: Self.splits)
        let p = try Self.profile(v)
        let f = try #require(p.decodeTailFit)
        #expect(f.features == ["excess/splits", "excess/splits (split)"])
        for c in f.coefficients { #expect(abs(c / Self.tau - 1) < 1e-6, "tau \(c)") }
        #expect(f.points == 12)  // spread and one_long at 6 sizes; scattered (uniform) rows are left out
        #expect(f.leaveOneOutPercent < 1e-6)
        // Every row of the table, skewed or uniform, is priced as it was made: floor + work + the
        // excess walk (none for uniform rows).
        for c in p.decodeChecks {
            let (n, mean) = (Double(c.seqs), Double(c.contextTokens) / Double(c.seqs))
            let floorAndWork =
                ProfileFixture.decode(Double(Self.graph(c.seqs)), 128) + ProfileFixture.decode(n, mean) - ProfileFixture.decode(n, 128)
            #expect(c.isSkewed ? c.microseconds > floorAndWork : abs(c.microseconds - floorAndWork) < 1e-6 * c.microseconds)
            let model = p.decodeMicroseconds(seqs: c.seqs, contextTokens: c.contextTokens, maxContext: c.maxContext)
            #expect(abs(model - c.microseconds) < 1e-6 * c.microseconds, "\(c.layout) \(c.seqs)")
        }
    }

    @Test("a table with no row at a split graph keeps the earlier form, tau x max / splits + w x work", arguments: [false, true])
    func earlierForm(withRule: Bool) throws {
        let (tau, w) = (0.2, 0.5)
        let p: StepProfile
        if withRule {
            // Only graphs of 16 and more: 1 split each.
            p = try Self.profile(
                ProfileFixture.variedDecode(
                    tau: tau, longestProgram: w, sizes: [12, 16, 40, 64, 128], graph: Self.graph, splits: Self.splits))
        } else {
            p = try StepProfile(directory: try ProfileFixture.write(decodeVaried: ProfileFixture.variedDecode(tau: tau, longestProgram: w)))
        }
        let f = try #require(p.decodeTailFit)
        #expect(f.features == ["max/splits", "work"])
        #expect(abs(f.coefficients[0] / tau - 1) < 1e-6 && abs(f.coefficients[1] / w - 1) < 1e-6)
        // 20 sequences, mean 600, one of 3000, 1 split: tail = 0.2 x 3000 + 0.5 x work.
        let twenty = p.decodeParts(seqs: 20, contextTokens: 12000, maxContext: 3000)
        #expect(abs(twenty.tail - (0.2 * 3000 + 0.5 * twenty.work)) < 1e-6)
        // The step takes the longer of the work and the tail.
        let wide = p.decodeParts(seqs: 128, contextTokens: 128 * 4096, maxContext: 4097)
        #expect(wide.tail < wide.work)
        #expect(abs(p.decodeMicroseconds(seqs: 128, contextTokens: 128 * 4096, maxContext: 4097) - wide.floor - wide.work) < 1e-6)
    }

    @Test("split graphs get their own tau when the table has rows there, and are priced with it")
    func splitTau() throws {
        let p = try Self.profile(
            ProfileFixture.variedDecode(
                tau: Self.tau, tauSplit: 0.5, sizes: [4, 8, 12, 40, 64, 128], graph: Self.graph, splits: Self.splits))
        let f = try #require(p.decodeTailFit)
        #expect(abs(f.coefficients[0] - Self.tau) < 1e-9 && abs(f.coefficients[1] - 0.5) < 1e-9)
        // 3 sequences (graph 4, 4 splits), mean 1000, the longest 2000: 26.16 + 0.5 x 1000 / 4.
        #expect(abs(p.decodeParts(seqs: 3, contextTokens: 3000, maxContext: 2000).tail - (26.16 + 125)) < 1e-6)
        // 20 sequences (graph 32, 1 split) keep tau: 94.4 + 0.2 x 2400.
        #expect(abs(p.decodeParts(seqs: 20, contextTokens: 12000, maxContext: 3000).tail - (94.4 + 0.2 * 2400)) < 1e-6)
        // Only one split row: one tau for all graphs, fitted over every row.
        let one = try Self.profile(
            ProfileFixture.variedDecode(tau: Self.tau, sizes: [4, 40, 64, 128], graph: Self.graph, splits: Self.splits)
                .split(separator: "\n").filter { !($0.hasPrefix("4,one_long")) }.joined(separator: "\n"))
        #expect(try #require(one.decodeTailFit).features == ["excess/splits"])
    }

    @Test("a skewed batch is priced floor + work + tau x (max - mean) / splits")
    func pricesSkewedBatch() throws {
        let p = try Self.profile(
            ProfileFixture.variedDecode(tau: Self.tau, graph: Self.graph, splits: Self.splits))
        // 3 sequences run as the graph of 4 (4 splits): contexts summing 3000, the longest 2000.
        // work = 0.01 x 3 x (1000 - 128) = 26.16; tail = 26.16 + 0.2 x (2000 - 1000) / 4 = 76.16.
        let parts = p.decodeParts(seqs: 3, contextTokens: 3000, maxContext: 2000)
        #expect(abs(parts.floor - ProfileFixture.decode(4, 128)) < 1e-9)
        #expect(abs(parts.work - 26.16) < 1e-9)
        #expect(abs(parts.tail - 76.16) < 1e-6)
        #expect(abs(p.decodeMicroseconds(seqs: 3, contextTokens: 3000, maxContext: 2000) - (ProfileFixture.decode(4, 128) + 76.16)) < 1e-6)
        // 20 sequences (graph 32, 1 split), mean 600, one of 3000: tail = 94.4 + 0.2 x 2400.
        let twenty = p.decodeParts(seqs: 20, contextTokens: 12000, maxContext: 3000)
        #expect(abs(twenty.tail - (94.4 + 0.2 * 2400)) < 1e-6)
        // Equal contexts keep the grid exactly (no tail), as does maxContext 0.
        for maxContext in [0, 1024] {
            let uniform = p.decodeMicroseconds(seqs: 32, contextTokens: 32 * 1024, maxContext: maxContext)
            #expect(abs(uniform - ProfileFixture.decode(32, 1024)) < 1e-9)
        }
        // A barely skewed batch of many long sequences costs its work and a token's excess.
        let wide = p.decodeParts(seqs: 128, contextTokens: 128 * 4096, maxContext: 4097)
        #expect(abs(wide.tail - wide.work - 0.2) < 1e-6)
    }

    @Test(
        "without a usable varied table the tail is the one-sequence rows', exactly as before",
        arguments: [
            "none", "uniform rows only", "two skewed rows", "negative tau",
        ])
    func fallsBack(varied: String) throws {
        let table: String? =
            switch varied {
            case "none": nil
            case "uniform rows only":
                ProfileFixture.variedDecode(tau: Self.tau, graph: Self.graph, splits: Self.splits)
                    .split(separator: "\n").filter { !$0.contains("spread") && !$0.contains("one_long") }.joined(separator: "\n")
            case "two skewed rows":
                ProfileFixture.variedDecode(tau: Self.tau, sizes: [16], graph: Self.graph, splits: Self.splits)
            default: ProfileFixture.variedDecode(tau: -0.5, graph: Self.graph, splits: Self.splits)
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

/// The work of a batch between two grid rows whose decode attention splits differently
/// (`decodeFloorAndWork`'s `splits`).
@Suite("Decode work across a change of splits")
struct DecodeWorkSplitsTests {
    /// Per-sequence attention work at 1,024 tokens over 128, by the splits of the row's graph: a
    /// split sequence finishes sooner (the rule of `DecodeTailFitTests`: 8 at 2, 4 at 4, 2 at 8 and
    /// 12, 1 from 16).
    static func perSequence(_ n: Int) -> Double { [2: 20.0, 4: 40, 8: 10, 12: 10, 16: 20, 24: 20][n]! }

    static func profile(rule: Bool) throws -> StepProfile {
        var d = "seqs,context_tokens,median_us,p10_us,p90_us,reps\n"
        for n in [2, 4, 8, 12, 16, 24] {
            d += "\(n),128,1000,900,1100,20\n"
            let v = 1000 + Double(n) * perSequence(n)
            d += "\(n),1024,\(v),\(0.9 * v),\(1.1 * v),20\n"
        }
        let graphs = #", "graph_sizes": [1, 2, 4, 8, 12, 16, 24]}"#
        return try StepProfile(
            directory: try ProfileFixture.write(
                mutate: ["step_decode.csv": { _ in d }, "meta.json": { $0.replacingOccurrences(of: "}", with: graphs) }],
                decodeAttention: rule ? DecodeTailFitTests.rule : nil))
    }

    @Test("read on its own graph's splits: extrapolated from the rows above, scaled with no other row")
    func acrossSplits() throws {
        let p = try Self.profile(rule: true)
        func work(_ n: Int) -> Double { p.decodeParts(seqs: n, contextTokens: n * 1024).work }
        // 14 sequences run as the graph of 16 (one program): on the line through 16 (320) and 24
        // (480), not between 12 (two programs, 120) and 16.
        #expect(abs(work(14) - 280) < 1e-6)
        // 10 run as the graph of 12, whose neighbour 8 splits alike: between them, as before.
        #expect(abs(work(10) - 100) < 1e-6)
        // 3 run as the graph of 4, the only row of four programs: its row scaled, 160 x 3 / 4.
        #expect(abs(work(3) - 120) < 1e-6)
        // a grid row is its own value
        #expect(abs(work(16) - 320) < 1e-6 && abs(work(12) - 120) < 1e-6)
        // without a recorded rule, the grid is read between its rows
        let plain = try Self.profile(rule: false)
        #expect(abs(plain.decodeParts(seqs: 14, contextTokens: 14 * 1024).work - 220) < 1e-6)
    }
}
