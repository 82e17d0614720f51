import Foundation
import KernelProfiles
import TestSupport
import Testing
import Twin
import Workloads

/// The closed-loop correction of decode-only steps (`DecodeCorrection`): a profile's
/// `closed_loop/<variant>/steps.csv`, measured against the uncorrected price, gives one factor per
/// CUDA graph that then scales the decode-only steps of that graph.
@Suite("Closed-loop correction of decode steps")
struct ClosedLoopCorrectionTests {
    static let header =
        "iteration,start_s,live_s,mode,prefill_tokens,prefill_sequences,prefill_continuations,prefill_attention_pairs,"
        + "prefill_max_keys,decode_sequences,decode_context_tokens,decode_max_context,sampling_sequences,segments,concurrency,execute_s"

    static func decode(_ seqs: Int, context: Int, adapters: Bool) -> StepBatch {
        var b = StepBatch()
        b.decodeSequences = seqs
        b.decodeContextTokens = seqs * context
        b.decodeMaxContext = context + 200
        b.samplingSequences = seqs
        if adapters {
            let a = seqs / 2
            b.segments = [LoraSegment(adapter: 0, tokens: seqs - a)] + (a > 0 ? [LoraSegment(adapter: 1, tokens: a)] : [])
        }
        return b
    }

    /// A small scenario on the measured profile `profile`, its cost model's keys extended by `extra`.
    static func scenario(profile: String, _ extra: String, adapters: Int = 2) throws -> Scenario {
        try Scenario.parse(
            """
            name: cl
            cost_model: {kind: measured, profile: \(profile)\(extra)}
            engine: {max_num_seqs: 8, max_loras: 2, max_cpu_loras: 2}
            workload: {requests: 40, arrival: {kind: poisson, rate: 20}, popularity: uniform, adapters: {count: \(adapters)}}
            """, file: "cl.yaml", baseDirectory: "/")
    }

    static func row(_ i: Int, _ b: StepBatch, measuredUs: Double) -> String {
        let seg = b.segments.map { "a\($0.adapter):\($0.tokens)" }.joined(separator: ";")
        return
            "\(i),0,\(measuredUs * 1e-6),unmerged,\(b.prefillTokens),\(b.prefillSequences),0,\(b.prefillAttentionPairs),"
            + "\(b.prefillTokens),\(b.decodeSequences),\(b.decodeContextTokens),\(b.decodeMaxContext),\(b.samplingSequences),\(seg),8,0"
    }

    /// A fixture profile with closed-loop steps for `variant`: `count[g]` decode-only steps at
    /// graph g (the fixture records no graph sizes: a batch is its own graph), each measured at
    /// `factor[g]` times its uncorrected price; two steps with prefill tokens at 5x (not decode).
    /// A profile whose SGMV closed loop has decode steps only, 25 on each graph 1-8, each 1.5x its
    /// uncorrected price (the scenario switch tests).
    static func decodeLoopProfile() throws -> String {
        let graphs = Array(1...8)
        return try profile(
            variant: "sgmv", factor: Dictionary(uniqueKeysWithValues: graphs.map { ($0, 1.5) }),
            count: Dictionary(uniqueKeysWithValues: graphs.map { ($0, 25) }), adapters: true)
    }

    static func profile(variant: String, factor: [Int: Double], count: [Int: Int], adapters: Bool) throws -> String {
        let dir = try ProfileFixture.write()
        let cat = Fixtures.catalogue(2)
        let plain = try MeasuredCostModel(
            profile: try StepProfile(directory: dir), kernel: "sgmv", model: .llama2_7b, catalogue: cat, closedLoop: false)
        var lines = [header]
        var i = 0
        for g in factor.keys.sorted() {
            for k in 0..<count[g]! {
                let b = decode(g, context: 300 + 37 * k, adapters: adapters)
                lines.append(row(i, b, measuredUs: plain.breakdown(b).total * factor[g]!))
                i += 1
            }
        }
        for _ in 0..<2 {
            var m = decode(4, context: 500, adapters: adapters)
            m.prefillTokens = 256
            m.prefillSequences = 1
            m.prefillAttentionPairs = 256 * 257 / 2
            m.samplingSequences = 5
            if adapters { m.segments[0].tokens += 256 }
            lines.append(row(i, m, measuredUs: plain.breakdown(m).total * 5))
            i += 1
        }
        let cl = DecodeCorrection.directory(profile: dir, variant: variant)
        try FileManager.default.createDirectory(atPath: cl, withIntermediateDirectories: true)
        try (lines.joined(separator: "\n") + "\n").write(toFile: cl + "/steps.csv", atomically: true, encoding: .utf8)
        try (["adapter,rank,alpha,target_modules"] + (0..<2).map { "a\($0),16,32.0,q_proj;k_proj;v_proj;o_proj" })
            .joined(separator: "\n").appending("\n").write(toFile: cl + "/catalogue.csv", atomically: true, encoding: .utf8)
        return dir
    }

    @Test("one factor per graph: the median of measured over priced; below them the factors' median, else 1")
    func factorsPerGraph() throws {
        let dir = try Self.profile(variant: "sgmv", factor: [8: 1.10, 32: 0.95, 1: 2.0], count: [8: 30, 32: 25, 1: 5], adapters: true)
        let p = try StepProfile(directory: dir)
        let m = try MeasuredCostModel(profile: p, kernel: "sgmv", model: .llama2_7b, catalogue: Fixtures.catalogue(2))
        let c = try #require(m.decodeCorrections["sgmv"])
        #expect(abs(c.factor(graph: 8) - 1.10) < 1e-6)
        #expect(abs(c.factor(graph: 32) - 0.95) < 1e-6)
        #expect(c.factors[1] == nil && c.steps[1] == 5)  // under minimumSteps: no factor of its own
        #expect(abs(c.belowFactor - (1.10 + 0.95) / 2) < 1e-6)  // the median of two
        #expect(c.factor(graph: 1) == c.belowFactor && c.factor(graph: 4) == c.belowFactor)  // below graph 8
        #expect(c.factor(graph: 16) == 1 && c.steps[16] == nil)  // no data, between measured graphs
        #expect(c.factor(graph: 64) == 1)  // above them
        #expect(c.steps[4] == nil)  // the steps with prefill tokens are not decode steps
        #expect(m.decodeCorrections["none"] == nil)

        let plain = try MeasuredCostModel(
            profile: p, kernel: "sgmv", model: .llama2_7b, catalogue: Fixtures.catalogue(2), closedLoop: false)
        let withLoRA = Self.decode(8, context: 700, adapters: true)
        #expect(abs(m.breakdown(withLoRA).total - 1.10 * plain.breakdown(withLoRA).total) < 1e-6)
        #expect(m.breakdown(withLoRA).factor == c.factor(graph: 8))
        // a decode step without adapters takes the `none` variant's factor: none here
        let base = Self.decode(8, context: 700, adapters: false)
        #expect(m.breakdown(base).total == plain.breakdown(base).total)
        // a step with prefill tokens is never scaled
        var mixed = Self.decode(8, context: 700, adapters: true)
        mixed.prefillTokens = 64
        mixed.prefillSequences = 1
        mixed.prefillAttentionPairs = 64 * 65 / 2
        mixed.segments[0].tokens += 64
        #expect(m.breakdown(mixed).total == plain.breakdown(mixed).total)
        // another kernel's model does not read sgmv's closed loop
        let torch = try MeasuredCostModel(profile: p, kernel: "torch", model: .llama2_7b, catalogue: Fixtures.catalogue(2))
        #expect(torch.decodeCorrections.isEmpty)
    }

    @Test("steps with prefill tokens: a factor per token graph; between them the nearest smaller one's, below the smallest's, above 1")
    func eagerFactors() {
        // token graphs 128 and 512 with 25 steps each (1.05 and 0.97 as long as priced), 256 with 5
        func eager(_ tokens: Int) -> StepBatch {
            var b = StepBatch()
            b.prefillTokens = tokens
            b.prefillSequences = 1
            return b
        }
        var batches: [StepBatch] = []
        var measured: [Double] = []
        for (tokens, ratio, n) in [(100, 1.05, 25), (500, 0.97, 25), (200, 1.5, 5), (3000, 1.02, 25)] {
            for _ in 0..<n {
                batches.append(eager(tokens))
                measured.append(Double(tokens) * ratio)
            }
        }
        batches.append(Self.decode(8, context: 100, adapters: false))  // a decode step: not an eager factor
        measured.append(16)
        let graphs = [128, 256, 512, 1024]
        let c = DecodeCorrection(
            file: "x", batches: batches, measuredUs: measured, price: { Double($0.prefillTokens + $0.decodeSequences) },
            graph: { _ in 8 }, tokenGraph: { t in graphs.first { $0 >= t } ?? 0 })
        #expect(c.eagerSteps == [128: 25, 256: 5, 512: 25, 0: 25])
        #expect(abs(c.eagerFactor(tokenGraph: 128) - 1.05) < 1e-12)
        #expect(abs(c.eagerFactor(tokenGraph: 512) - 0.97) < 1e-12)
        #expect(abs(c.eagerFactor(tokenGraph: 0) - 1.02) < 1e-12)  // beyond the token graphs: its own
        #expect(abs(c.eagerFactor(tokenGraph: 256) - 1.05) < 1e-12)  // too few steps: the nearest smaller graph's
        #expect(abs(c.eagerFactor(tokenGraph: 64) - 1.05) < 1e-12)  // below every graph with one: the smallest's
        #expect(c.eagerFactor(tokenGraph: 1024) == 1)  // above every graph with one: none
        #expect(c.steps == [8: 1] && c.factor(graph: 8) == 1)  // the decode step counts as decode (too few for a factor)
        let none = DecodeCorrection(
            file: "x", batches: batches, measuredUs: measured, price: { Double($0.prefillTokens + $0.decodeSequences) },
            graph: { _ in 8 })
        #expect(none.eagerFactors.isEmpty && none.eagerFactor(tokenGraph: 128) == 1)  // no token graphs given
    }

    @Test("a closed loop of several seeds: one fit over all, and each seed's alone")
    func seeds() throws {
        let dir = try Self.profile(variant: "sgmv", factor: [8: 1.10], count: [8: 40], adapters: true)
        let p = try StepProfile(directory: dir)
        #expect(try MeasuredCostModel.closedLoopSeeds(profile: p, variant: "sgmv") == [])  // no seed column
        #expect(try MeasuredCostModel.closedLoopSeedLogSigma(profile: p, kernel: "sgmv", model: .llama2_7b, variant: "sgmv") == 0)
        // the last 20 graph-8 rows (and the two prefill rows) become seed 1, measured at 0.90x
        let file = DecodeCorrection.directory(profile: dir, variant: "sgmv") + "/steps.csv"
        var lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").map(String.init)
        lines[0] += ",seed"
        for i in 1..<lines.count {
            var f = lines[i].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            let second = i > 20
            if second && Int(f[4]) == 0 { f[2] = String(Double(f[2])! * 0.90 / 1.10) }
            lines[i] = f.joined(separator: ",") + (second ? ",1" : ",0")
        }
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try MeasuredCostModel.closedLoopSeeds(profile: p, variant: "sgmv") == [0, 1])
        let fit = { (seed: Int?) throws -> Double in
            try MeasuredCostModel.fitCorrection(profile: p, kernel: "sgmv", model: .llama2_7b, variant: "sgmv", seed: seed)
                .factor(graph: 8)
        }
        #expect(abs(try fit(0) - 1.10) < 1e-6)
        #expect(abs(try fit(1) - 0.90) < 1e-6)
        let all = try fit(nil)  // the median of 20 at 1.10 and 20 at 0.90
        #expect(all > 0.90 - 1e-6 && all < 1.10 + 1e-6)
        #expect(try MeasuredCostModel.fitCorrection(profile: p, kernel: "sgmv", model: .llama2_7b, variant: "sgmv", seed: 7).steps.isEmpty)
        // the seeds' spread around the pooled factor, as a log-normal sigma (RMS of the log ratios)
        let sigma = try MeasuredCostModel.closedLoopSeedLogSigma(profile: p, kernel: "sgmv", model: .llama2_7b, variant: "sgmv")
        let expected = ((pow(log(1.10 / all), 2) + pow(log(0.90 / all), 2)) / 2).squareRoot()
        #expect(abs(sigma - expected) < 1e-6 && sigma > 0.09)
        let pooled = try MeasuredCostModel.fitCorrection(profile: p, kernel: "sgmv", model: .llama2_7b, variant: "sgmv")
        #expect(
            try MeasuredCostModel.closedLoopSeedLogSigma(
                profile: p, kernel: "sgmv", model: .llama2_7b, variant: "sgmv", pooled: pooled) == sigma)  // given, not refitted
        // a replica's decode factor carries it with the model's own error, in quadrature
        let m = try MeasuredCostModel(profile: p, kernel: "sgmv", model: .llama2_7b, catalogue: Fixtures.catalogue(2))
        let model = p.decodeModelLogSigma
        let wide = SampledCostModel(base: m, seed: 1, modelError: true, biasZ: (1, 0), loopLogSigma: sigma)
        let narrow = SampledCostModel(base: m, seed: 1, modelError: true, biasZ: (1, 0))
        #expect(abs(wide.decodeBias - exp((model * model + sigma * sigma).squareRoot())) < 1e-9)
        #expect(abs(narrow.decodeBias - exp(model)) < 1e-9 && wide.decodeBias > narrow.decodeBias)
    }

    @Test("the none variant scales steps without adapters and merged ones")
    func noneVariant() throws {
        let dir = try Self.profile(variant: "none", factor: [8: 1.2], count: [8: 21], adapters: false)
        let m = try MeasuredCostModel(
            profile: try StepProfile(directory: dir), kernel: "sgmv", model: .llama2_7b, catalogue: Fixtures.catalogue(2))
        let plain = try MeasuredCostModel(
            profile: try StepProfile(directory: dir), kernel: "sgmv", model: .llama2_7b, catalogue: Fixtures.catalogue(2),
            closedLoop: false)
        let base = Self.decode(8, context: 400, adapters: false)
        #expect(abs(m.breakdown(base).total - 1.2 * plain.breakdown(base).total) < 1e-6)
        var merged = Self.decode(8, context: 400, adapters: true)
        merged.mode = .merged
        #expect(abs(m.breakdown(merged).total - 1.2 * plain.breakdown(merged).total) < 1e-6)
        let lora = Self.decode(8, context: 400, adapters: true)
        #expect(m.breakdown(lora).total == plain.breakdown(lora).total)  // no sgmv closed loop
    }

    @Test("a scenario runs with the correction, and without it by its cost_model key or the CLI's")
    func scenarioSwitch() throws {
        let dir = try Self.decodeLoopProfile()
        func scenario(_ extra: String) throws -> Scenario { try Self.scenario(profile: dir, extra) }
        let with = try scenario("")
        let off = try scenario(", closed_loop: false")
        #expect(off.costModel == .measured(profile: dir, kernel: "sgmv", closedLoop: false, eagerCorrection: false))
        #expect(ScenarioRunner.withoutClosedLoop(with).costModel == off.costModel)
        let trace = try ScenarioRunner.makeTrace(with)
        let a = try ScenarioRunner.run(with, trace: trace).summary
        let b = try ScenarioRunner.run(off, trace: trace).summary
        let c = try ScenarioRunner.run(ScenarioRunner.withoutClosedLoop(with), trace: trace).summary
        #expect(a.makespanSeconds > b.makespanSeconds)  // every decode step half as dear again
        #expect(b.makespanSeconds == c.makespanSeconds)
    }

    @Test("load_step: false and --no-load-step leave a load's step excess out (on by default); the other keys stay")
    func loadStepSwitch() throws {
        let dir = try ProfileFixture.write()
        let path = dir + "/adapter_load.csv"
        var rows = try String(contentsOfFile: path, encoding: .utf8)
        for b in [1e6, 1e8] { rows += "host_step,\(Int(b)),20000,0,0,6\ndisk_step,\(Int(b)),20000,0,0,6\n" }
        try rows.write(toFile: path, atomically: true, encoding: .utf8)
        func scenario(_ extra: String) throws -> Scenario { try Self.scenario(profile: dir, ", closed_loop: false" + extra, adapters: 6) }
        let with = try scenario("")
        let off = try scenario(", load_step: false")
        #expect(with.costModel == .measured(profile: dir, kernel: "sgmv", closedLoop: false, loadStep: true, eagerCorrection: false))
        #expect(off.costModel == .measured(profile: dir, kernel: "sgmv", closedLoop: false, loadStep: false, eagerCorrection: false))
        #expect(try scenario(", load_step: true").costModel == with.costModel)
        #expect(ScenarioRunner.withLoadStep(with, false).costModel == off.costModel)
        #expect(ScenarioRunner.withLoadStep(off, true).costModel == with.costModel)
        let trace = try ScenarioRunner.makeTrace(with)
        let a = try ScenarioRunner.run(with, trace: trace).summary
        let b = try ScenarioRunner.run(off, trace: trace).summary
        #expect(a.makespanSeconds > b.makespanSeconds)  // 20 ms more on every step that orders a load
        #expect(a.completed == b.completed)
    }

    @Test("closed_loop_eager (off by default) corrects steps with prefill tokens too; refused with closed_loop: false")
    func eagerSwitch() throws {
        let dir = try Self.decodeLoopProfile()
        func scenario(_ extra: String) throws -> Scenario { try Self.scenario(profile: dir, extra) }
        let on = try scenario(", closed_loop_eager: true")
        #expect(on.costModel == .measured(profile: dir, kernel: "sgmv", eagerCorrection: true))
        let off = try scenario(", closed_loop_eager: false")
        #expect(off.costModel == .measured(profile: dir, kernel: "sgmv", eagerCorrection: false))
        #expect(try scenario("").costModel == off.costModel)  // the default since lease 9da212b-1's Rule 4
        #expect(ScenarioRunner.withEagerCorrection(off, true).costModel == on.costModel)
        #expect(ScenarioRunner.withEagerCorrection(on, false).costModel == off.costModel)
        // closed_loop: false turns the eager correction off with it; asking for both is refused
        let noLoop = CostModelSpec.measured(profile: dir, kernel: "sgmv", closedLoop: false, eagerCorrection: false)
        #expect(try scenario(", closed_loop: false").costModel == noLoop)
        do {
            _ = try scenario(", closed_loop: false, closed_loop_eager: true")
            Issue.record("closed_loop_eager with closed_loop: false was accepted")
        } catch {
            #expect("\(error)".contains("closed_loop_eager"))
        }
        // This loop has decode steps only: no eager factor, so the runs agree.
        let trace = try ScenarioRunner.makeTrace(on)
        let a = try ScenarioRunner.run(on, trace: trace).summary
        let b = try ScenarioRunner.run(off, trace: trace).summary
        #expect(a.makespanSeconds == b.makespanSeconds)
    }

    @Test("a profile without a closed loop borrows another's: its steps priced with the borrower's tables")
    func borrowed() throws {
        let lender = try Self.profile(variant: "sgmv", factor: [8: 1.2], count: [8: 30], adapters: true)
        let borrower = try ProfileFixture.write()  // the same tables, no closed loop
        let cat = Fixtures.catalogue(2)
        let p = try StepProfile(directory: borrower)
        let own = try MeasuredCostModel(profile: p, kernel: "sgmv", model: .llama2_7b, catalogue: cat)
        #expect(own.decodeCorrections.isEmpty)
        let lent = try MeasuredCostModel(profile: p, kernel: "sgmv", model: .llama2_7b, catalogue: cat, closedLoopFrom: lender)
        #expect(abs(try #require(lent.decodeCorrections["sgmv"]).factor(graph: 8) - 1.2) < 1e-6)
        let b = Self.decode(8, context: 600, adapters: true)
        #expect(abs(lent.breakdown(b).total - 1.2 * own.breakdown(b).total) < 1e-6)
        // a closed loop measured on another GPU: refused, naming the lender's meta.json field
        let meta = lender + "/meta.json"
        let text0 = try String(contentsOfFile: meta, encoding: .utf8)
        try text0.replacingOccurrences(of: "Synthetic GPU", with: "Other GPU").write(toFile: meta, atomically: true, encoding: .utf8)
        #expect {
            _ = try MeasuredCostModel(profile: p, kernel: "sgmv", model: .llama2_7b, catalogue: cat, closedLoopFrom: lender)
        } throws: { e in
            guard let e = e as? WorkloadError else { return false }
            return e.file.hasSuffix("meta.json") && e.field == "gpu_name"
        }
        try text0.write(toFile: meta, atomically: true, encoding: .utf8)
        // a directory without a closed loop for the kernel or `none`: an error naming the key
        #expect {
            _ = try MeasuredCostModel(profile: p, kernel: "sgmv", model: .llama2_7b, catalogue: cat, closedLoopFrom: borrower)
        } throws: { e in (e as? WorkloadError)?.field == "closed_loop_from" }
        // the scenario key and the CLI's override give the same model
        let text = """
            name: cl
            cost_model: {kind: measured, profile: \(borrower), closed_loop_from: \(lender)}
            engine: {max_num_seqs: 8, max_loras: 2, max_cpu_loras: 2}
            workload: {requests: 40, arrival: {kind: poisson, rate: 20}, popularity: uniform, adapters: {count: 2}}
            """
        let s = try Scenario.parse(text, file: "cl.yaml", baseDirectory: "/")
        #expect(s.costModel == .measured(profile: borrower, kernel: "sgmv", closedLoop: true, closedLoopFrom: lender))
        let plain = try Scenario.parse(
            text.replacingOccurrences(of: ", closed_loop_from: \(lender)", with: ""), file: "cl.yaml", baseDirectory: "/")
        #expect(ScenarioRunner.withClosedLoop(plain, from: lender).costModel == s.costModel)
        #expect(ScenarioRunner.closedLoopSource(s) == .borrowed(lender))
        #expect(ScenarioRunner.closedLoopSource(plain) == .absent)  // the borrower has none of its own
        #expect(ScenarioRunner.closedLoopSource(ScenarioRunner.withoutClosedLoop(s)) == .off)
        let trace = try ScenarioRunner.makeTrace(s)
        #expect(
            try ScenarioRunner.run(s, trace: trace).summary.makespanSeconds
                > ScenarioRunner.run(plain, trace: trace).summary.makespanSeconds)
        // both keys, one saying no correction and one naming whose: refused, naming the key
        #expect {
            _ = try Scenario.parse(
                text.replacingOccurrences(of: "closed_loop_from:", with: "closed_loop: false, closed_loop_from:"),
                file: "cl.yaml", baseDirectory: "/")
        } throws: { e in
            guard let e = e as? WorkloadError else { return false }
            return e.file == "cl.yaml" && (e.field ?? "").hasSuffix("closed_loop_from")
        }
    }

    @Test("a summary names the profile folder it read, through the default link")
    func profileThroughLink() throws {
        let target = try ProfileFixture.write()
        let link = target + "-link"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        let text = """
            name: linked
            cost_model: {kind: measured, profile: \(link)}
            engine: {max_num_seqs: 8, max_loras: 2, max_cpu_loras: 2}
            workload: {requests: 20, arrival: {kind: poisson, rate: 20}, popularity: uniform, adapters: {count: 2}}
            """
        let s = try Scenario.parse(text, file: "linked.yaml", baseDirectory: "/")
        let resolved = URL(fileURLWithPath: target).resolvingSymlinksInPath().path
        #expect(ScenarioRunner.profileTarget(s) == resolved)
        let trace = try ScenarioRunner.makeTrace(s)
        let summary = ScenarioRunner.summaryJSON(try ScenarioRunner.run(s, trace: trace))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(summary.utf8)) as? [String: Any])
        #expect(json["profile"] as? String == link)
        #expect(json["profile_resolved"] as? String == resolved)
        let analytic = try Scenario.parse(
            text.replacingOccurrences(of: "{kind: measured, profile: \(link)}", with: "{kind: analytic}"), file: "a.yaml",
            baseDirectory: "/")
        #expect(ScenarioRunner.profileTarget(analytic) == nil)
    }

    @Test("bad closed-loop files fail with the file, line and column")
    func errors() throws {
        let dir = try Self.profile(variant: "none", factor: [8: 1.0], count: [8: 3], adapters: true)
        let cat = Fixtures.catalogue(2)
        #expect {
            _ = try MeasuredCostModel(profile: try StepProfile(directory: dir), kernel: "sgmv", model: .llama2_7b, catalogue: cat)
        } throws: { e in
            guard let e = e as? WorkloadError else { return false }
            return e.file.hasSuffix("closed_loop/none/steps.csv") && e.line == 2 && e.field == "segments"
        }
        let clean = try Self.profile(variant: "none", factor: [8: 1.0], count: [8: 3], adapters: false)
        let steps = DecodeCorrection.directory(profile: clean, variant: "none") + "/steps.csv"
        var rows = try String(contentsOfFile: steps, encoding: .utf8).split(separator: "\n").map(String.init)
        var f = rows[3].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        f[2] = "-1"  // live_s
        rows[3] = f.joined(separator: ",")
        try (rows.joined(separator: "\n") + "\n").write(toFile: steps, atomically: true, encoding: .utf8)
        #expect {
            _ = try MeasuredCostModel(profile: try StepProfile(directory: clean), kernel: "sgmv", model: .llama2_7b, catalogue: cat)
        } throws: { e in
            guard let e = e as? WorkloadError else { return false }
            return e.line == 4 && e.field == "live_s"
        }
    }
}
