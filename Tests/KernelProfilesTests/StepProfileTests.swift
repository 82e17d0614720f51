import Foundation
import KernelProfiles
import TestSupport
import Testing
import Twin
import Workloads

@Suite("Measured step profiles")
struct StepProfileTests {
    @Test("exact at grid points, multilinear between them, fitted beyond them")
    func decodeTable() throws {
        let p = try StepProfile(directory: try ProfileFixture.write())
        #expect(abs(p.decodeMicroseconds(seqs: 8, contextTokens: 8 * 1024) - ProfileFixture.decode(8, 1024)) < 1e-9)
        // Between grid points the table is bilinear; the formula is bilinear in (seqs, context), so exact.
        #expect(abs(p.decodeMicroseconds(seqs: 20, contextTokens: 20 * 2000) - ProfileFixture.decode(20, 2000)) < 1e-6)
        // Beyond the grid (256 sequences) the fit takes over; the formula is linear in its features.
        #expect(abs(p.decodeMicroseconds(seqs: 256, contextTokens: 256 * 512) - ProfileFixture.decode(256, 512)) < 1e-6)
        #expect(p.decodeFit.leaveOneOutPercent < 1e-6)
    }

    @Test("the eager token curve and the attention fit reproduce the formulas")
    func eagerSteps() throws {
        let p = try StepProfile(directory: try ProfileFixture.write())
        #expect(
            abs(
                p.eagerMicroseconds(tokens: 2048, prefillPairs: 0, decodeSequences: 0, decodeContextTokens: 0, prefillMaxKeys: 0)
                    - ProfileFixture.tokens(2048)
            ) < 1e-9)
        #expect(abs(p.attentionFit.coefficients[0] - 1e-4) < 1e-12)
        #expect(abs(p.attentionFit.coefficients[1] - 0.01) < 1e-9)
        #expect(abs(p.attentionFit.coefficients[2] - 0.5) < 1e-6)
        // Beyond 4096 tokens the upper-half fit (500 + 12 T) extrapolates exactly.
        #expect(
            abs(
                p.eagerMicroseconds(tokens: 8192, prefillPairs: 0, decodeSequences: 0, decodeContextTokens: 0, prefillMaxKeys: 0)
                    - ProfileFixture.tokens(8192)
            ) < 1e-6)
    }

    @Test("LoRA per kernel, loads, merges and host overhead")
    func otherTables() throws {
        let p = try StepProfile(directory: try ProfileFixture.write())
        #expect(abs(p.loraMicroseconds(kernel: "sgmv", tokens: 16, segments: 4, rank: 16)! - ProfileFixture.lora(16, 4, 16)) < 1e-9)
        #expect(abs(p.loraMicroseconds(kernel: "torch", tokens: 128, segments: 8, rank: 64)! - 2 * ProfileFixture.lora(128, 8, 64)) < 1e-9)
        #expect(p.loraMicroseconds(kernel: "dop", tokens: 16, segments: 4, rank: 16) == nil)
        #expect(abs(p.hostToGPUFit([1, 5e7]) - (50 + 5e7 / 25e3)) < 1e-6)
        #expect(abs(p.diskToHostFit([1, 5e7]) - (200 + 5e7 / 2e3)) < 1e-6)
        #expect(abs(p.mergeFits["unmerge"]!([1, 32]) - 1220) < 1e-6)
        #expect(abs(p.hostOverheadFit([1, 10]) - 350) < 1e-9)
    }

    @Test("the measured cost model adds the parts as documented")
    func measuredModel() throws {
        let p = try StepProfile(directory: try ProfileFixture.write())
        let cat = AdapterCatalogue([
            AdapterSpec(name: "a", rank: 16, alpha: 16, targetModules: ["q_proj"]),
            AdapterSpec(name: "b", rank: 64, alpha: 16, targetModules: ["q_proj"]),
        ])
        let m = try MeasuredCostModel(profile: p, kernel: "sgmv", model: .llama2_7b, catalogue: cat)
        var b = StepBatch()
        b.decodeSequences = 8
        b.decodeContextTokens = 8 * 1024
        b.samplingSequences = 8
        b.segments = [LoraSegment(adapter: 0, tokens: 4), LoraSegment(adapter: 1, tokens: 4)]
        let expected = ProfileFixture.decode(8, 1024) + ProfileFixture.lora(8, 2, 64) + (300 + 5 * 8)
        #expect(abs(m.stepSeconds(b) - expected * 1e-6) < 1e-12)
        let bytes = Double(ModelSpec.llama2_7b.adapterBytes(rank: 64, modules: ["q_proj"]))
        #expect(abs(m.loadSeconds(adapter: 1, fromDisk: true) - (50 + bytes / 25e3 + 200 + bytes / 2e3) * 1e-6) < 1e-12)
    }

    @Test("loads are priced from the busy rows where the profile has them; one busy row alone is refused")
    func busyLoads() throws {
        let dir = try ProfileFixture.write()
        let path = dir + "/adapter_load.csv"
        let idle = try String(contentsOfFile: path, encoding: .utf8)
        var busy = idle
        for b in [1e6, 1e8] {
            busy += "host_busy,\(Int(b)),\(3000 + b / 10e3),0,0,6\n"
            busy += "disk_busy,\(Int(b)),\(9000 + b / 1e3),0,0,6\n"
        }
        try busy.write(toFile: path, atomically: true, encoding: .utf8)
        let cat = AdapterCatalogue([AdapterSpec(name: "b", rank: 64, alpha: 16, targetModules: ["q_proj"])])
        let m = try MeasuredCostModel(profile: try StepProfile(directory: dir), kernel: "sgmv", model: .llama2_7b, catalogue: cat)
        let bytes = Double(ModelSpec.llama2_7b.adapterBytes(rank: 64, modules: ["q_proj"]))
        #expect(abs(m.loadSeconds(adapter: 0, fromDisk: false) - (3000 + bytes / 10e3) * 1e-6) < 1e-9)
        #expect(abs(m.loadSeconds(adapter: 0, fromDisk: true) - (9000 + bytes / 1e3) * 1e-6) < 1e-9)

        try (idle + "host_busy,1000000,3100,0,0,6\n").write(toFile: path, atomically: true, encoding: .utf8)
        do {
            _ = try StepProfile(directory: dir)
            Issue.record("one host_busy row was accepted")
        } catch {
            #expect(error.description.contains("adapter_load.csv"))
            #expect(error.description.contains("source") && error.description.contains("host_busy"))
        }
    }

    @Test("a load's excess on the step that orders it comes from the step rows, negative ones too, floored at 0")
    func loadStepRows() throws {
        let dir = try ProfileFixture.write()
        let path = dir + "/adapter_load.csv"
        let idle = try String(contentsOfFile: path, encoding: .utf8)
        let cat = AdapterCatalogue([AdapterSpec(name: "b", rank: 64, alpha: 16, targetModules: ["q_proj"])])
        let plain = try MeasuredCostModel(profile: try StepProfile(directory: dir), kernel: "sgmv", model: .llama2_7b, catalogue: cat)
        #expect(plain.loadStepSeconds(adapter: 0, fromDisk: false) == 0)  // no step rows: no excess
        var rows = idle
        for b in [1e6, 1e8] {
            rows += "host_step,\(Int(b)),\(1000 + b / 50e3),0,0,6\n"
            rows += "disk_step,\(Int(b)),\(b == 1e6 ? -300 : -100),0,0,6\n"  // noise around 0
        }
        try rows.write(toFile: path, atomically: true, encoding: .utf8)
        let p = try StepProfile(directory: dir)
        #expect(p.loadStepFits != nil && p.busyLoadFits == nil)
        let m = try MeasuredCostModel(profile: p, kernel: "sgmv", model: .llama2_7b, catalogue: cat)
        let bytes = Double(ModelSpec.llama2_7b.adapterBytes(rank: 64, modules: ["q_proj"]))
        #expect(abs(m.loadStepSeconds(adapter: 0, fromDisk: false) - (1000 + bytes / 50e3) * 1e-6) < 1e-9)
        #expect(m.loadStepSeconds(adapter: 0, fromDisk: true) == 0)  // a negative fit is no excess
        // Loads themselves stay priced from the idle rows.
        #expect(abs(m.loadSeconds(adapter: 0, fromDisk: false) - plain.loadSeconds(adapter: 0, fromDisk: false)) < 1e-15)

        try (idle + "disk_step,1000000,100,0,0,6\n").write(toFile: path, atomically: true, encoding: .utf8)
        do {
            _ = try StepProfile(directory: dir)
            Issue.record("one disk_step row was accepted")
        } catch {
            #expect(error.description.contains("adapter_load.csv") && error.description.contains("host_step"))
        }
    }

    @Test("the breakdown's parts add up to the step, decode and eager")
    func breakdownAddsUp() throws {
        let p = try StepProfile(directory: try ProfileFixture.write())
        let m = try Fixtures.oneAdapterModel(p, rank: 16)
        var d = StepBatch()
        d.decodeSequences = 8
        d.decodeContextTokens = 8 * 1024
        d.decodeMaxContext = 2048  // longer than the mean: the tail part is priced
        d.samplingSequences = 8
        d.segments = [LoraSegment(adapter: 0, tokens: 8)]
        let bd = m.breakdown(d)
        #expect(bd.eager == 0 && bd.decodeFloor > 0 && bd.lora > 0 && bd.host > 0)
        #expect(abs(bd.decodeFloor + max(bd.decodeWork, bd.decodeTail) + bd.lora + bd.host - bd.total) < 1e-9)
        #expect(abs(bd.total * 1e-6 - m.stepSeconds(d)) < 1e-15)
        let parts = p.decodeParts(seqs: 8, contextTokens: 8 * 1024, maxContext: 2048)
        #expect(
            abs(parts.floor + max(parts.work, parts.tail) - p.decodeMicroseconds(seqs: 8, contextTokens: 8 * 1024, maxContext: 2048)) < 1e-9
        )
        var e = StepBatch()
        e.prefillTokens = 300
        e.prefillSequences = 1
        e.prefillAttentionPairs = 300 * 151
        e.decodeSequences = 4
        e.decodeContextTokens = 4 * 512
        e.segments = [LoraSegment(adapter: 0, tokens: 304)]
        let be = m.breakdown(e)
        #expect(be.decodeFloor == 0 && be.decodeWork == 0 && be.eager > 0 && be.lora > 0)
        #expect(abs(be.total * 1e-6 - m.stepSeconds(e)) < 1e-15)
        e.mode = .merged  // no LoRA part in a merged step
        #expect(m.breakdown(e).lora == 0)
    }

    @Test(
        "bad profiles are refused with file, line and column",
        arguments: [
            ("step_decode.csv", "\n1,128,", "\n1,128,abc", "step_decode.csv", "median_us"),
            ("step_tokens.csv", "tokens,", "count,", "step_tokens.csv", "tokens"),
            ("meta.json", "\"schema_version\": 2", "\"schema_version\": 99", "meta.json", "schema_version"),
        ])
    func badProfiles(file: String, find: String, replace: String, expectFile: String, column: String) throws {
        let dir = try ProfileFixture.write(mutate: [file: { $0.replacingOccurrences(of: find, with: replace) }])
        do {
            _ = try StepProfile(directory: dir)
            Issue.record("expected an error")
        } catch {
            #expect(error.file.hasSuffix(expectFile))
            #expect(error.column == column, "\(error)")
            if file != "meta.json" { #expect(error.line != nil) }
        }
    }

    @Test("CRLF tables (Python's csv module writes them) read as their LF copies, line numbers included")
    func crlfTables() throws {
        let lf = try StepProfile(directory: try ProfileFixture.write())
        let crlf = try StepProfile(
            directory: try ProfileFixture.write(mutate: [
                "step_decode.csv": { $0.replacingOccurrences(of: "\n", with: "\r\n") },
                "lora_step.csv": { $0.replacingOccurrences(of: "\n", with: "\r\n") },
            ]))
        #expect(crlf.decodeMicroseconds(seqs: 20, contextTokens: 20 * 2000) == lf.decodeMicroseconds(seqs: 20, contextTokens: 20 * 2000))
        #expect(
            crlf.loraMicroseconds(kernel: "sgmv", tokens: 8, segments: 2, rank: 16)
                == lf.loraMicroseconds(kernel: "sgmv", tokens: 8, segments: 2, rank: 16))
        let table = try ProfileTable(text: "a,b\r\n1,2\r\n\r\n3,4\r\n", file: "t.csv")
        #expect(table.count == 2 && table.lines == [2, 4])
        #expect(throws: ProfileError.self) { try ProfileTable(text: "a,b\r\n1,2,3\r\n", file: "t.csv") }
    }

    @Test("a header that names a column twice is refused, naming the line and column")
    func duplicateColumn() {
        #expect {
            try ProfileTable(text: "# note\nseqs,median_us,seqs\n1,2,3\n", file: "t.csv")
        } throws: { isProfileError($0, file: "t.csv", line: 2, column: "seqs") }
    }

    @Test("a table with a hole in its grid is refused")
    func incompleteGrid() throws {
        let dir = try ProfileFixture.write(mutate: [
            "step_decode.csv": { text in
                text.split(separator: "\n").filter { !$0.hasPrefix("32,1024,") }.joined(separator: "\n") + "\n"
            }
        ])
        #expect(throws: ProfileError.self) { try StepProfile(directory: dir) }
    }

    @Test("leave-one-out error is large when the model is wrong")
    func leaveOneOutDetectsMisfit() {
        // y = x^2 fitted by a line: the held-out ends are badly predicted.
        let xs = (1...8).map(Double.init)
        let fit = LinearFit(features: ["1", "x"], x: xs.map { [1, $0] }, y: xs.map { $0 * $0 })!
        #expect(fit.leaveOneOutPercent > 20)
        let exact = LinearFit(features: ["1", "x"], x: xs.map { [1, $0] }, y: xs.map { 3 + 2 * $0 })!
        #expect(exact.leaveOneOutPercent < 1e-9)
    }
}

@Suite("Decode steps with unequal contexts")
struct DecodeTailTests {
    @Test("a batch takes the longer of its total work and its longest sequence")
    func tail() throws {
        let p = try StepProfile(directory: try ProfileFixture.write())
        // Equal contexts: the table itself.
        #expect(abs(p.decodeMicroseconds(seqs: 8, contextTokens: 8 * 1024, maxContext: 1024) - ProfileFixture.decode(8, 1024)) < 1e-6)
        // 8 sequences, mean 512, one of 4096: work = decode(8, 512) - decode(8, 128) = 0.01*8*384 = 30.72;
        // tail = decode(1, 4096) - decode(1, 128) = 0.01*3968 = 39.68 > work.
        let expected = ProfileFixture.decode(8, 128) + 0.01 * 3968
        #expect(abs(p.decodeMicroseconds(seqs: 8, contextTokens: 8 * 512, maxContext: 4096) - expected) < 1e-6)
        // With many sequences the total work dominates again.
        let many = p.decodeMicroseconds(seqs: 128, contextTokens: 128 * 2048, maxContext: 4096)
        #expect(abs(many - ProfileFixture.decode(128, 2048)) < 1e-6)
    }

    @Test("with a split rule, the longest sequence's programs walk maxContext / splits(batch)")
    func splitTail() throws {
        let rule = #"{"target_programs": 256, "max_splits": 8, "heads": 32}"#
        let p = try StepProfile(directory: try ProfileFixture.write(decodeAttention: rule))
        let r = try #require(p.meta.decodeAttention)
        #expect(r.splits(seqs: 1) == 8 && r.splits(seqs: 2) == 4 && r.splits(seqs: 8) == 1 && r.splits(seqs: 64) == 1)
        // 8 sequences (1 split), mean 512, one of 4096: its programs walk 4096 tokens, what a lone
        // sequence of 8 x 4096 tokens costs at 8 splits; beyond the grid on the one-sequence line
        // (0.01 us per token): tail = 0.01 x (32768 - 128) = 326.4 > work 30.72.
        let expected = ProfileFixture.decode(8, 128) + 0.01 * (32768 - 128)
        #expect(abs(p.decodeMicroseconds(seqs: 8, contextTokens: 8 * 512, maxContext: 4096) - expected) < 1e-6)
        // One sequence: 8 splits either way, the table itself.
        #expect(abs(p.decodeMicroseconds(seqs: 1, contextTokens: 1024, maxContext: 1024) - ProfileFixture.decode(1, 1024)) < 1e-6)
        // Graph sizes: 5 sequences run as the graph of 8, whose weights' part they pay; attention
        // work is that of the 5 real rows.
        let withSizes: (String) -> String = { $0.replacingOccurrences(of: "}", with: #", "graph_sizes": [1, 8, 32]}"#) }
        let graphs = try StepProfile(directory: try ProfileFixture.write(mutate: ["meta.json": withSizes]))
        #expect(graphs.graphSize(5) == 8 && graphs.graphSize(8) == 8 && graphs.graphSize(33) == 33)
        let five = ProfileFixture.decode(8, 128) + (ProfileFixture.decode(5, 1024) - ProfileFixture.decode(5, 128))
        #expect(abs(graphs.decodeMicroseconds(seqs: 5, contextTokens: 5 * 1024) - five) < 1e-6)
        // A profile that measured every graph size (gpu/profile_steps.py after 3270652): the graph
        // of 12 is priced from its own rows, not interpolated between 8 and 32.
        let twelve: (String) -> String = { csv in
            csv
                + [128.0, 1024, 4096].map { c in
                    let v = 1.1 * ProfileFixture.decode(12, c)
                    return "12,\(Int(c)),\(v),\(v),\(v),20\n"
                }.joined()
        }
        let sizes12: (String) -> String = { $0.replacingOccurrences(of: "}", with: #", "graph_sizes": [1, 8, 12, 32]}"#) }
        let measured = try StepProfile(
            directory: try ProfileFixture.write(mutate: ["step_decode.csv": twelve, "meta.json": sizes12]))
        #expect(measured.decodeGrid.axes[0] == [1, 8, 12, 32, 128])
        let ten = measured.decodeParts(seqs: 10, contextTokens: 10 * 128)
        #expect(abs(ten.floor - 1.1 * ProfileFixture.decode(12, 128)) < 1e-6)
        #expect(abs(measured.decodeMicroseconds(seqs: 12, contextTokens: 12 * 1024) - 1.1 * ProfileFixture.decode(12, 1024)) < 1e-6)
        let badSizes: (String) -> String = { $0.replacingOccurrences(of: "}", with: #", "graph_sizes": [8, 0]}"#) }
        let refused = try ProfileFixture.write(mutate: ["meta.json": badSizes])
        #expect {
            try StepProfile(directory: refused)
        } throws: { isProfileError($0, column: "graph_sizes") }
        let bad = try ProfileFixture.write(decodeAttention: #"{"target_programs": 0, "max_splits": 8, "heads": 32}"#)
        #expect(throws: ProfileError.self) { try StepProfile(directory: bad) }
    }
}

@Suite("Decode checks")
struct DecodeCheckTests {
    @Test("step_decode_varied, when present, is read (two skewed rows are too few to fit the tail), and bad rows are refused")
    func variedRows() throws {
        let plain = try StepProfile(directory: try ProfileFixture.write())
        #expect(plain.decodeChecks.isEmpty)
        let dir = try ProfileFixture.write()
        let csv = """
            seqs,layout,context_tokens,max_context,median_us,p10_us,p90_us,reps
            32,spread,32800,1793,5000,4900,5100,12
            32,one_long,12000,4097,4500,4400,4600,12

            """
        try csv.write(toFile: dir + "/step_decode_varied.csv", atomically: true, encoding: .utf8)
        let p = try StepProfile(directory: dir)
        #expect(p.decodeChecks.count == 2)
        #expect(p.decodeChecks[1] == .init(layout: "one_long", seqs: 32, contextTokens: 12000, maxContext: 4097, microseconds: 4500))
        // the pricing model is the grid's, unchanged by too few rows to fit
        #expect(p.decodeTailFit == nil)
        #expect(p.decodeMicroseconds(seqs: 32, contextTokens: 32 * 1024) == plain.decodeMicroseconds(seqs: 32, contextTokens: 32 * 1024))
        try csv.replacingOccurrences(of: "32800", with: "many").write(
            toFile: dir + "/step_decode_varied.csv", atomically: true, encoding: .utf8)
        #expect {
            try StepProfile(directory: dir)
        } throws: { isProfileError($0, file: "step_decode_varied.csv", line: 2, column: "context_tokens") }
    }
}

@Suite("Mixed eager steps")
struct MixedStepTests {
    @Test("step_mixed, when present, prices LoRA in eager steps for its kernel, over the eager model")
    func mixedTable() throws {
        let p = try StepProfile(directory: try ProfileFixture.write(withMixed: true))
        // The fixture's LoRA rows cost the eager model plus 2000 + 3 x tokens: recovered exactly.
        let f = p.eagerLoraFits["sgmv"]!
        #expect(abs(f.coefficients[0] - 2000) < 1e-6 && abs(f.coefficients[1] - 3) < 1e-9)
        #expect(f.leaveOneOutPercent < 1e-6)
        #expect(f.points == 20)  // the 4 rows without LoRA (segments 0) are left out
        #expect(p.eagerLoraMicroseconds(kernel: "torch", tokens: 100) == nil)
        let m = try Fixtures.oneAdapterModel(p, rank: 16)
        var b = StepBatch()
        b.prefillTokens = 1000
        b.prefillSequences = 2
        b.prefillContinuations = 1
        b.prefillAttentionPairs = 500_000
        b.decodeSequences = 8
        b.decodeContextTokens = 4000
        b.decodeMaxContext = 900
        b.segments = [LoraSegment(adapter: 0, tokens: 10), LoraSegment(adapter: 0, tokens: 5), LoraSegment(adapter: 0, tokens: 1)]
        let eager = p.eagerMicroseconds(
            tokens: 1008, prefillPairs: 500_000, decodeSequences: 8, decodeContextTokens: 4000, prefillMaxKeys: 0)
        let expected = eager + 2000 + 3 * 1008 + 300 + 5 * 10
        #expect(abs(m.stepSeconds(b) - expected * 1e-6) < 1e-9)
        // Merged: no LoRA term.
        b.mode = .merged
        #expect(abs(m.stepSeconds(b) - (eager + 300 + 5 * 10) * 1e-6) < 1e-9)
        // Decode-only steps keep the graph path's LoRA table.
        var d = StepBatch()
        d.decodeSequences = 8
        d.decodeContextTokens = 8 * 1024
        d.decodeMaxContext = 1024
        d.segments = [LoraSegment(adapter: 0, tokens: 8)]
        let graph = ProfileFixture.decode(8, 1024) + ProfileFixture.lora(8, 1, 16) + 300 + 5 * 8
        #expect(abs(m.stepSeconds(d) - graph * 1e-6) < 1e-9)
    }

    @Test("step_mixed with base_us: its rows join the attention fit, and the LoRA is read over the base")
    func mixedBase() throws {
        // Compositions that cost 500 us more without LoRA than the attention rows' formula says.
        let p = try StepProfile(directory: try ProfileFixture.write(withMixed: true, mixedBaseExtra: 500))
        #expect(p.attentionFit.points == 6 + 24)  // step_attention's rows and every step_mixed row
        // The LoRA is the step over the same step without LoRA: 2000 + 3 x tokens, exactly, however
        // far the base is from the eager model.
        let f = try #require(p.eagerLoraFits["sgmv"])
        #expect(abs(f.coefficients[0] - 2000) < 1e-6 && abs(f.coefficients[1] - 3) < 1e-9)
        #expect(f.leaveOneOutPercent < 1e-6)
        // The attention fit has no intercept, so the extra cost spreads over its coefficients and
        // leaves an error; the table without base_us fits its own rows exactly.
        #expect(p.attentionFit.leaveOneOutPercent > 1e-3)
        let plain = try StepProfile(directory: try ProfileFixture.write(withMixed: true))
        #expect(plain.attentionFit.points == 6 && plain.attentionFit.leaveOneOutPercent < 1e-6)
        // Read over the eager model instead (as before base_us), the same rows would carry the 500 us.
        let over = try StepProfile(
            directory: try ProfileFixture.write(
                mutate: ["step_mixed.csv": { $0.replacingOccurrences(of: "base_us", with: "unused") }], withMixed: true,
                mixedBaseExtra: 500))
        #expect(over.attentionFit.points == 6)
        #expect(abs(try #require(over.eagerLoraFits["sgmv"]).coefficients[0] - 2500) < 1e-6)
        // A bad base_us is refused, naming the file, the line and the column.
        let negative = ProfileFixture.setField(line: 4, column: "base_us", to: "-5")
        let bad = try ProfileFixture.write(mutate: ["step_mixed.csv": negative], withMixed: true, mixedBaseExtra: 500)
        #expect {
            try StepProfile(directory: bad)
        } throws: { isProfileError($0, file: "step_mixed.csv", line: 4, column: "base_us") }
    }

    @Test("prefill_max_keys: the attention fit gains the longest chunk's keys only when every attention row has them")
    func maxKeys() throws {
        // Rows that cost 1.5 us per key of their longest chunk on top of the attention formula.
        let p = try StepProfile(directory: try ProfileFixture.write(withMixed: true, mixedBaseExtra: 0, maxKeys: 1.5))
        #expect(p.attentionUsesMaxKeys)
        #expect(p.attentionFit.features.last == "prefill_max_keys" && p.attentionFit.points == 6 + 24)
        #expect(abs(p.attentionFit.coefficients[3] - 1.5) < 1e-6 && p.attentionFit.leaveOneOutPercent < 1e-6)
        func eager(_ prof: StepProfile, keys: Int) -> Double {
            prof.eagerMicroseconds(
                tokens: 1024, prefillPairs: 3e5, decodeSequences: 16, decodeContextTokens: 8000, prefillMaxKeys: keys)
        }
        #expect(abs(eager(p, keys: 2048) - eager(p, keys: 1024) - 1.5 * 1024) < 1e-6)
        // The same rows without the column: three features, and the keys change nothing.
        let none = try StepProfile(directory: try ProfileFixture.write(withMixed: true, mixedBaseExtra: 0))
        #expect(!none.attentionUsesMaxKeys && none.attentionFit.features.count == 3)
        #expect(eager(none, keys: 2048) == eager(none, keys: 1024))
        // step_attention has them but step_mixed (whose rows join the fit) does not: not used.
        let half = try StepProfile(
            directory: try ProfileFixture.write(withMixed: true, mixedBaseExtra: 0, maxKeys: 1.5, mixedKeys: false))
        #expect(!half.attentionUsesMaxKeys && half.attentionFit.features.count == 3)
        // Without step_mixed, step_attention's column is enough.
        let alone = try StepProfile(directory: try ProfileFixture.write(maxKeys: 1.5))
        #expect(alone.attentionUsesMaxKeys && abs(alone.attentionFit.coefficients[3] - 1.5) < 1e-6)
        // A negative coefficient (time falling with the keys) keeps the three-feature fit.
        let falling = try StepProfile(directory: try ProfileFixture.write(withMixed: true, mixedBaseExtra: 0, maxKeys: -1.5))
        #expect(!falling.attentionUsesMaxKeys && falling.attentionFit.features.count == 3)
        // A bad value is refused, naming the file, the line and the column.
        let negative = ProfileFixture.setField(line: 3, column: "prefill_max_keys", to: "-3")
        #expect {
            try StepProfile(directory: try ProfileFixture.write(mutate: ["step_attention.csv": negative], maxKeys: 1.5))
        } throws: { isProfileError($0, file: "step_attention.csv", line: 3, column: "prefill_max_keys") }
    }

    @Test("lora_token prices LoRA in token graphs with a prefill chunk; decode steps and larger graphs keep lora_step")
    func loraToken() throws {
        func us(_ t: Double, _ s: Double, _ r: Double) -> Double { 500 + 3 * t + 100 * s + 2 * r }
        var table = "kernel,tokens,segments,rank,median_us,p10_us,p90_us,reps\n"
        for t in [16.0, 64, 128] {
            for s in [1.0, 8] { for r in [16.0, 64] { table += "sgmv,\(Int(t)),\(Int(s)),\(Int(r)),\(us(t, s, r)),0,0,8\n" } }
        }
        let sizes = [16, 32, 64, 128, 256]
        let p = try StepProfile(directory: try ProfileFixture.write(extra: ["lora_token.csv": table], tokenGraphSizes: sizes))
        #expect(p.loraTokenGrids.keys.sorted() == ["sgmv"])
        #expect(p.loraTokenMicroseconds(kernel: "sgmv", graphTokens: 64, segments: 8, rank: 64) == us(64, 8, 64))
        // held to the grid: rank 8 reads rank 16, 12 segments read 8; beyond 128 tokens, none
        #expect(p.loraTokenMicroseconds(kernel: "sgmv", graphTokens: 64, segments: 12, rank: 8) == us(64, 8, 16))
        #expect(p.loraTokenMicroseconds(kernel: "sgmv", graphTokens: 256, segments: 2, rank: 16) == nil)
        #expect(p.loraTokenMicroseconds(kernel: "torch", graphTokens: 64, segments: 2, rank: 16) == nil)
        let m = try Fixtures.oneAdapterModel(p, rank: 64)
        var b = StepBatch()  // 50 prompt tokens and 10 decode rows: the token graph of 64
        b.prefillTokens = 50
        b.prefillSequences = 1
        b.prefillAttentionPairs = 1275
        b.prefillMaxKeys = 50
        b.decodeSequences = 10
        b.decodeContextTokens = 2000
        b.decodeMaxContext = 200
        b.segments = [LoraSegment(adapter: 0, tokens: 60)]
        #expect(abs(m.breakdown(b).lora - us(64, 1, 64)) < 1e-9)
        b.prefillTokens = 190  // the graph of 256: past the table, lora_step at 256 tokens
        #expect(abs(m.breakdown(b).lora - p.loraMicroseconds(kernel: "sgmv", tokens: 256, segments: 1, rank: 64)!) < 1e-9)
        var d = StepBatch()  // decode-only: lora_step, as before
        d.decodeSequences = 8
        d.decodeContextTokens = 8 * 1024
        d.decodeMaxContext = 1024
        d.segments = [LoraSegment(adapter: 0, tokens: 8)]
        #expect(abs(m.breakdown(d).lora - ProfileFixture.lora(8, 1, 64)) < 1e-9)
        // a hole in the grid is refused, naming the file
        let holed = table.split(separator: "\n").dropLast().joined(separator: "\n") + "\n"
        #expect {
            try StepProfile(directory: try ProfileFixture.write(extra: ["lora_token.csv": holed], tokenGraphSizes: sizes))
        } throws: { ($0 as? ProfileError)?.file.hasSuffix("lora_token.csv") == true }
    }

    @Test("a profile without step_mixed keeps the token curve and attention model")
    func withoutMixed() throws {
        let p = try StepProfile(directory: try ProfileFixture.write())
        #expect(p.eagerLoraFits.isEmpty)
    }
}

@Suite("Model error for prediction intervals")
struct ModelErrorTests {
    @Test("the decode grid's leave-one-out error is zero where the grid is exact and grows when a point is off")
    func gridLeaveOneOut() throws {
        // The fixture's decode formula is bilinear in (seqs, seqs x context): linear along each
        // axis, so interpolating any interior point from its neighbours is exact.
        let exact = try StepProfile(directory: try ProfileFixture.write())
        #expect(exact.decodeModelLogSigma < 1e-9)
        // One interior point 20 % high: its own prediction is 1/1.2 off, and its neighbours'.
        let bumped = try StepProfile(
            directory: try ProfileFixture.write(mutate: [
                "step_decode.csv": ProfileFixture.scaleDecodeRow(seqs: 8, context: 1024, by: 1.2)
            ]))
        #expect(bumped.decodeModelLogSigma > 0.02)
        // The eager model's error is its step_mixed fit's (exact in the fixture), 0 without one.
        let mixed = try StepProfile(directory: try ProfileFixture.write(withMixed: true))
        #expect(mixed.eagerModelLogSigma(kernel: "sgmv") < 1e-9)
        #expect(mixed.eagerModelLogSigma(kernel: "torch") == 0)
    }
}
