import Foundation
import KernelProfiles

/// A synthetic profile whose tables follow exact formulas, so that every interpolation and fit
/// has a value computable by hand (microseconds):
/// - decode: 4000 + 20 seqs + 0.01 seqs x context/seq
/// - tokens: 4500 for T <= 333, else 500 + 12 T (a weight-bound floor, then compute-bound);
///   `write(tokenFormula:)` replaces it, and with `tokenGraphSizes` every eager table is measured
///   at the token-graph size of its rows (the next size up, as the engine pads them)
/// - attention: tokens-curve + 1e-4 pairs + 0.01 decode context + 0.5 decode seqs
/// - lora (sgmv): 100 + 2 tokens + 50 segments + 0.05 tokens x rank; `torch` twice that
/// - loads: host 50 + bytes / 25e3; disk 200 + bytes / 2e3
/// - merge: 1000 + 10 rank; unmerge 900 + 10 rank; host overhead: 300 + 5 seqs
/// - decode varied (optional, `write(decodeVaried:)`): skewed batches at a given tail, work +
///   tau x (max - mean) / splits over the decode floor (`variedDecode`)
public enum ProfileFixture {
    /// Decode formula.
    public static func decode(_ s: Double, _ c: Double) -> Double { 4000 + 20 * s + 0.01 * s * c }
    /// Token-curve formula.
    public static func tokens(_ t: Double) -> Double { max(4500, 500 + 12 * t) }
    /// A token curve that rises everywhere (linear, so the profile's curve is exactly it wherever
    /// its grid points are): for tests whose result must change with a step's token count.
    public static func risingTokens(_ t: Double) -> Double { 3000 + 12 * t }
    /// The engine's token-graph size for `t` tokens: the smallest of `sizes` at least `t`, else `t`.
    public static func tokenGraphSize(_ t: Double, _ sizes: [Int]?) -> Double {
        sizes?.sorted().first { Double($0) >= t }.map(Double.init) ?? t
    }
    /// The `prefill_max_keys` of the fixture's `i`-th eager row (step_attention's rows, then
    /// step_mixed's from 6) with `prefill` prefill tokens: the chunk plus a context that varies
    /// by row, so that the feature is not a combination of the others.
    public static func fixtureMaxKeys(_ i: Int, prefill: Double) -> Double { prefill + Double((i * 379) % 2048) }
    /// LoRA formula for sgmv.
    public static func lora(_ t: Double, _ s: Double, _ r: Double) -> Double { 100 + 2 * t + 50 * s + 0.05 * t * r }

    /// A `mutate` transform that sets the field of `column` (named in the header) on file line
    /// `line` (1-based; line 1 is the header) to `value`: for tests of bad input.
    public static func setField(line: Int, column: String, to value: String) -> (String) -> String {
        { text in
            var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            guard let k = lines[0].split(separator: ",").firstIndex(where: { $0 == column }) else { return text }
            var fields = lines[line - 1].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            fields[k] = value
            lines[line - 1] = fields.joined(separator: ",")
            return lines.joined(separator: "\n")
        }
    }

    /// A `mutate` transform of `step_decode.csv` that multiplies the row at (`seqs`, `context`)
    /// by `factor` (median, p10 and p90 alike).
    public static func scaleDecodeRow(seqs: Int, context: Int, by factor: Double) -> (String) -> String {
        { text in
            text.split(separator: "\n").map { line -> String in
                guard line.hasPrefix("\(seqs),\(context),") else { return String(line) }
                let v = decode(Double(seqs), Double(context)) * factor
                return "\(seqs),\(context),\(v),\(v),\(v),20"
            }.joined(separator: "\n") + "\n"
        }
    }

    /// A `step_decode_varied.csv` over the decode formula, one batch per layout and size in
    /// `sizes`: `spread` (contexts evenly from 256 to 1792) and `one_long` (all 256 but one of
    /// 4096) cost floor + work + tau x (max - mean) / splits(graph), `scattered` (all 1024) the
    /// formula at its mean; floor = decode(graph(seqs), 128), work = decode(seqs, mean) - decode(seqs,
    /// 128), contexts + 1 as the StepBatch counts them; `tauSplit` (default `tau`) at graphs
    /// whose sequences split. With `longestProgram: w`, skewed rows follow the earlier form
    /// instead: floor + tau x max / splits(graph) + w x work. `graph` and `splits` are the profile's
    /// graph size and split rule (identity and 1 by default).
    public static func variedDecode(
        tau: Double, tauSplit: Double? = nil, longestProgram w: Double? = nil, sizes: [Int] = [4, 8, 16, 32, 64, 128],
        graph: (Int) -> Int = { $0 },
        splits: (Int) -> Int = { _ in 1 }
    ) -> String {
        var v = "seqs,layout,context_tokens,max_context,median_us,p10_us,p90_us,reps\n"
        for n in sizes {
            let layouts: [(String, [Int])] = [
                ("spread", (0..<n).map { 256 + 1536 * $0 / max(n - 1, 1) + 1 }),
                ("one_long", (0..<n).map { $0 == 0 ? 4097 : 257 }),
                ("scattered", Array(repeating: 1025, count: n)),
            ]
            for (layout, contexts) in layouts {
                let (total, longest) = (contexts.reduce(0, +), contexts.max()!)
                let (s, mean) = (Double(n), Double(total) / Double(n))
                let floor = decode(Double(graph(n)), 128)
                let work = decode(s, mean) - decode(s, 128)
                let k = splits(graph(n))
                var us = floor + work + (k > 1 ? tauSplit ?? tau : tau) * (Double(longest) - mean) / Double(k)
                if let w {  // the earlier form: floor + tau x max / splits + w x work when skewed
                    us = floor + (Double(longest) > mean ? tau * Double(longest) / Double(k) + w * work : work)
                }
                v += "\(n),\(layout),\(total),\(longest),\(us),\(us),\(us),12\n"
            }
        }
        return v
    }

    /// Writes the profile into a new temporary directory and returns its path. `schema` and
    /// `mutate` (file name -> text transform) let tests break it. `tokenFormula` is the eager
    /// token curve; `tokenGraphSizes`, when given, goes into meta.json, and the token part of each
    /// row of step_tokens, step_attention and step_mixed is then the formula at the row's
    /// token-graph size. `decodeVaried`, when given, is written as `step_decode_varied.csv`
    /// (`variedDecode`). `maxKeys`, when given, adds the column `prefill_max_keys` to
    /// step_attention (and, with `mixedKeys`, to step_mixed) and that many microseconds per key to
    /// every row's eager part (`fixtureMaxKeys` gives each row's keys). `extra` adds files (name ->
    /// text), `mutate` applying to them too.
    public static func write(
        schema: Int = 2, mutate: [String: (String) -> String] = [:], withMixed: Bool = false, mixedBaseExtra: Double? = nil,
        maxKeys: Double? = nil, mixedKeys: Bool = true, extra: [String: String] = [:],
        decodeAttention: String? = nil,
        tokenFormula: (Double) -> Double = tokens, tokenGraphSizes: [Int]? = nil, decodeVaried: String? = nil
    ) throws -> String {
        func tokens(_ t: Double) -> Double { tokenFormula(tokenGraphSize(t, tokenGraphSizes)) }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("loratwin-profile-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        var files: [String: String] = [:]
        files["meta.json"] = """
            {"schema_version": \(schema), "gpu_name": "Synthetic GPU", "dtype": "float16", "model": "llama-2-7b",
             "driver": "0", "torch": "0", "triton": "0", "date": "2026-11-23", "commit": "fixture", "command": "ProfileFixture"\(
                decodeAttention.map { ", \"decode_attention\": \($0)" } ?? "")\(
                tokenGraphSizes.map { ", \"token_graph_sizes\": \($0)" } ?? "")}
            """
        var d = "seqs,context_tokens,median_us,p10_us,p90_us,reps\n"
        // Repeated timings spread 0.9x-1.1x around the median: log-sigma ln(1.1/0.9)/2.5631.
        for s in [1.0, 8, 32, 128] {
            for c in [128.0, 1024, 4096] { d += "\(Int(s)),\(Int(c)),\(decode(s, c)),\(0.9 * decode(s, c)),\(1.1 * decode(s, c)),20\n" }
        }
        files["step_decode.csv"] = d
        var t = "tokens,median_us,p10_us,p90_us,reps\n"
        for x in [1.0, 16, 64, 256, 1024, 2048, 4096] { t += "\(Int(x)),\(tokens(x)),0,0,20\n" }
        files["step_tokens.csv"] = t
        var a = "tokens,prefill_pairs,decode_seqs,decode_context_tokens," + (maxKeys != nil ? "prefill_max_keys," : "")
        a += "median_us,p10_us,p90_us,reps\n"
        for (i, (tok, pairs, ds, dc)) in [
            (1024.0, 524800.0, 0.0, 0.0), (2048, 2098176, 0, 0), (1024, 508536, 16, 16384), (64, 0, 64, 16384), (2048, 1e6, 32, 32768),
            (40, 528, 8, 4096),
        ].enumerated() {
            let keys = fixtureMaxKeys(i, prefill: tok - ds)
            let k = maxKeys.map { _ in "\(Int(keys))," } ?? ""
            let us = tokens(tok) + 1e-4 * pairs + 0.01 * dc + 0.5 * ds + (maxKeys ?? 0) * keys
            a += "\(Int(tok)),\(pairs),\(Int(ds)),\(Int(dc)),\(k)\(us),0,0,20\n"
        }
        files["step_attention.csv"] = a
        var l = "kernel,tokens,segments,rank,median_us,p10_us,p90_us,reps\n"
        for k in ["sgmv", "torch"] {
            for tok in [1.0, 16, 128, 1024] {
                for s in [1.0, 4, 8] {
                    for r in [8.0, 16, 64] {
                        l += "\(k),\(Int(tok)),\(Int(s)),\(Int(r)),\(lora(tok, s, r) * (k == "torch" ? 2 : 1)),0,0,20\n"
                    }
                }
            }
        }
        files["lora_step.csv"] = l
        var ld = "source,bytes,median_us,p10_us,p90_us,reps\n"
        for b in [1e6, 1e7, 1e8] {
            ld += "host,\(Int(b)),\(50 + b / 25e3),0,0,20\n"
            ld += "disk,\(Int(b)),\(200 + b / 2e3),0,0,20\n"
        }
        files["adapter_load.csv"] = ld
        var m = "op,rank,median_us,p10_us,p90_us,reps\n"
        for r in [8.0, 16, 64] { m += "merge,\(Int(r)),\(1000 + 10 * r),0,0,20\nunmerge,\(Int(r)),\(900 + 10 * r),0,0,20\n" }
        files["merge.csv"] = m
        var h = "seqs,median_us,p10_us,p90_us,reps\n"
        for s in [1.0, 16, 64, 128] { h += "\(Int(s)),\(300 + 5 * s),0,0,20\n" }
        files["host_overhead.csv"] = h
        if withMixed {
            // step_mixed: the eager model (token curve + attention) plus, on rows with LoRA
            // (segments > 0), 2000 + 3 tokens of eager LoRA; every 6th row has no LoRA.
            // With `mixedBaseExtra`, a `base_us` column: the step without LoRA, the eager model plus
            // that many microseconds (compositions the attention rows do not cover), and the
            // LoRA on top of it.
            var mx = "kernel,tokens,prefill_tokens,prefill_chunks,continuation_chunks,prefill_pairs,decode_seqs,"
            let withKeys = maxKeys != nil && mixedKeys
            mx += "decode_context_tokens,decode_max_context," + (withKeys ? "prefill_max_keys," : "") + "segments,max_rank,first_us,"
            mx += (mixedBaseExtra != nil ? "base_us," : "") + "median_us,p10_us,p90_us,reps\n"
            for i in 0..<24 {
                // Step sizes where the profile's token curve is the formula: on the token grid, or
                // (40) in the default formula's flat floor or, with token graphs, padded to a size.
                let total = [40.0, 1024, 2048, 4096][i % 4]
                let (ch, co, d) = (Double(1 + i % 3), Double(i % 2), Double(4 * (i % 5)))
                let p = total - d
                let pairs = p * p / 2 + Double(i * 1000)
                let dc = d * Double(300 + 11 * i)
                let dm = d > 0 ? Double(300 + 37 * i) : 0
                let seg = i % 6 == 0 ? 0.0 : Double(1 + (i * 5) % 8)
                let keys = fixtureMaxKeys(6 + i, prefill: p)
                let eager = tokens(p + d) + 1e-4 * pairs + 0.01 * dc + 0.5 * d + (mixedBaseExtra ?? 0) + (maxKeys ?? 0) * keys
                let k = withKeys ? "\(Int(keys))," : ""
                let us = eager + (seg > 0 ? 2000 + 3 * (p + d) : 0)
                let base = mixedBaseExtra != nil ? "\(eager)," : ""
                mx +=
                    "sgmv,\(Int(p + d)),\(Int(p)),\(Int(ch)),\(Int(co)),\(pairs),\(Int(d)),\(Int(dc)),\(Int(dm)),\(k)\(Int(seg)),64,\(us),\(base)\(us),\(us),\(us),4\n"
            }
            files["step_mixed.csv"] = mx
        }
        if let decodeVaried { files["step_decode_varied.csv"] = decodeVaried }
        for (name, text) in extra { files[name] = text }
        for (name, text) in files {
            let final = mutate[name].map { $0(text) } ?? text
            try final.write(toFile: dir + "/" + name, atomically: true, encoding: .utf8)
        }
        return dir
    }
}

/// Whether `error` is a `ProfileError` naming `column`, and, where given, a file whose path ends
/// in `file` and the line `line`: what a test of a refused profile checks.
public func isProfileError(_ error: any Error, file: String? = nil, line: Int? = nil, column: String) -> Bool {
    guard let e = error as? ProfileError, e.column == column else { return false }
    if let file, !e.file.hasSuffix(file) { return false }
    if let line, e.line != line { return false }
    return true
}
