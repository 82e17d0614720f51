import Foundation

/// A measured model of one engine iteration on one GPU and model, built from the step tables of
/// a profile (schema 2, docs/profile-format.md): interpolation inside the measured grids, fitted
/// linear models outside them, each fit with its leave-one-out error.
public struct StepProfile: Sendable {
    /// The profile directory.
    public let directory: String
    /// Its metadata.
    public let meta: ProfileMeta
    /// Decode-only steps (CUDA-graph path): microseconds over (sequences, context per sequence).
    public let decodeGrid: GridInterpolator
    /// Decode-only steps outside the grid: us ~ 1 + seqs + context tokens.
    public let decodeFit: LinearFit
    /// Eager steps of `tokens` new tokens with negligible attention: microseconds. Read at a step's
    /// token-graph size (`tokenGraphSize`), not its own token count.
    public let tokenCurve: Interpolator1D
    /// Eager steps beyond the token grid: us ~ 1 + tokens, fitted on the upper half of the points.
    public let tokenFit: LinearFit
    /// Attention and decode rows in eager steps: (us - token part) ~ prefill pairs + decode
    /// context tokens + decode sequences, the token part being the token curve at the row's
    /// token-graph size (`eagerMicroseconds`); over the rows of `step_attention.csv` and, when
    /// `step_mixed.csv` has `base_us`, those compositions timed without LoRA. With the column
    /// `prefill_max_keys` (`attentionUsesMaxKeys`) a fourth feature: the most keys one prefill
    /// chunk attends to. Its leave-one-out error is that of the whole eager step (token part plus
    /// attention) against the measured one.
    public let attentionFit: LinearFit
    /// The attention fit has the feature `prefill_max_keys`: the profile's attention rows carry
    /// the column (`step_attention.csv`, and `step_mixed.csv` when the profile has it), its
    /// coefficient came out positive and none of the others negative (else the three-feature fit
    /// stays). In the token graphs' tiled attention kernel each program (128 query rows of one
    /// head) walks every key up to its tile's end, so a short chunk over a long context is a few
    /// long programs that no term in the pairs alone holds. Decided once.
    public let attentionUsesMaxKeys: Bool
    /// Extra microseconds of unmerged LoRA per kernel over (tokens, segments, rank).
    public let loraGrids: [String: GridInterpolator]
    /// LoRA outside the grid, per kernel: us ~ 1 + tokens + segments + tokens x rank.
    public let loraFits: [String: LinearFit]
    /// Unmerged LoRA in steps with a prefill chunk that run as token graphs with the kernel's own
    /// launches (`lora_token.csv`, profiles after f96690e; empty without it): per kernel, over
    /// (token-graph size, segments, rank), the step with adapters minus the same step without.
    /// `lora_step` measures 1-128 tokens through the decode graphs and larger counts through token
    /// graphs that may apply LoRA densely, neither of them this path.
    public let loraTokenGrids: [String: GridInterpolator]
    /// Host-to-GPU adapter copy: us ~ 1 + bytes.
    public let hostToGPUFit: LinearFit
    /// Disk-to-host adapter read: us ~ 1 + bytes.
    public let diskToHostFit: LinearFit
    /// A whole load, order to completion, while decode steps run (`adapter_load.csv` rows
    /// `host_busy` and `disk_busy`, profiles after e82f051; nil without them): us ~ 1 + bytes, from
    /// the host cache and from the file. Live loads overlap steps, and those from the host cache
    /// took two to three times the idle `host` time in the runs of lease e82f051-1
    /// (docs/validation.md).
    public let busyLoadFits: (host: LinearFit, disk: LinearFit)?
    /// How much longer the decode step that orders a load runs than the steps before it
    /// (`adapter_load.csv` rows `host_step` and `disk_step`, profiles after d6fff0f; nil without
    /// them): us ~ 1 + bytes, from the host cache and from the file. In the d6fff0f recordings such
    /// a step ran 1.2-3.4 ms longer for a load from the host cache (docs/validation.md).
    public let loadStepFits: (host: LinearFit, disk: LinearFit)?
    /// Merge and unmerge: us ~ 1 + rank, by operation.
    public let mergeFits: [String: LinearFit]
    /// Host time per iteration outside the GPU step: us ~ 1 + sequences.
    public let hostOverheadFit: LinearFit
    /// Unmerged LoRA in eager steps, per kernel (`step_mixed.csv`, when the profile has it): over
    /// the rows with LoRA, the measured step minus the same step timed without LoRA (`base_us`,
    /// profiles after 9e806b3) or, without that column, minus the eager model without LoRA
    /// (`eagerMicroseconds`: token curve at the token-graph size, and attention), fitted as
    /// us ~ 1 + tokens (the real token count). Its leave-one-out error is that of the whole eager
    /// step with LoRA. The twin uses it for steps beyond the token graphs only: in the eager path
    /// the LoRA kernels are launched per layer and module from Python, so their cost is mostly
    /// host time that the lora_step table (measured through the graphs) does not see.
    public let eagerLoraFits: [String: LinearFit]
    /// Decode steps unlike the grid's rows (`step_decode_varied.csv`, when the profile has it):
    /// mixed contexts and scattered KV blocks. The rows whose longest context exceeds the mean
    /// calibrate `decodeTailFit`; `loratwin profile check` prices every row with the decode model
    /// and prints its error (the uniform-context rows are a check the fit does not see).
    public let decodeChecks: [DecodeCheck]
    /// The longest-program tail of a skewed decode batch, fitted on the rows of `decodeChecks`
    /// whose longest context exceeds the mean: microseconds over the graph-size floor and the
    /// work ~ tau x (maxContext - mean) / splits(g) (feature `excess/splits`, coefficient tau in
    /// us per token). Its leave-one-out error is that of floor + tail against the
    /// measured step. Nil when the profile lacks the table, it has fewer than 3 such rows or a
    /// coefficient comes out negative: the tail is then read off the one-sequence rows
    /// (`decodeParts`).
    public let decodeTailFit: LinearFit?
    /// `decodeTailFit` has the earlier form, `tau x maxContext / splits + w x work`, decided once
    /// here rather than by comparing feature names at every decode step.
    public let decodeTailIsLongestProgram: Bool
    /// Spread of repeated timings of decode-only steps: the median over the table's rows of
    /// ln(p90 / p10) / 2.563, i.e. the sigma of a log-normal with the same 10-90 % range.
    public let decodeLogSigma: Double
    /// The same for eager steps (`step_tokens` and `step_attention`).
    public let eagerLogSigma: Double
    /// The decode model's own error, as a log-normal sigma: ln(1 + RMS) of the decode grid's
    /// leave-one-out interpolation error (`GridInterpolator.leaveOneOutPercent2D`).
    public var decodeModelLogSigma: Double {
        let e = decodeGrid.leaveOneOutPercent2D()
        return e.isNaN ? 0 : log1p(e / 100)
    }

    /// The eager model's own error with LoRA on `kernel`, as a log-normal sigma: ln(1 + RMS) of
    /// the whole-step leave-one-out error of the kernel's `step_mixed` fit (0 without one).
    public func eagerModelLogSigma(kernel: String) -> Double {
        guard let f = eagerLoraFits[kernel], !f.leaveOneOutPercent.isNaN else { return 0 }
        return log1p(f.leaveOneOutPercent / 100)
    }

    /// Loads the step tables of the profile in `directory`.
    public init(directory: String) throws(ProfileError) {
        self.directory = directory
        meta = try ProfileMeta(path: directory + "/meta.json")
        guard meta.schemaVersion >= 2 else {
            throw ProfileError(file: directory + "/meta.json", column: "schema_version", "step tables need schema 2 or later")
        }
        let timing = ["median_us"]

        let decode = try ProfileTable(path: directory + "/step_decode.csv", required: ["seqs", "context_tokens"] + timing)
        let seqs = try decode.doubles("seqs", min: 1)
        let ctx = try decode.doubles("context_tokens", min: 0)
        let decodeUs = try decode.doubles("median_us", min: 0)
        let (grid, missing) = GridInterpolator.fromRows(points: zip(seqs, ctx).map { [$0, $1] }, values: decodeUs)
        guard let grid else {
            throw ProfileError(file: decode.file, "not a full grid: no row for seqs, context_tokens = \(missing ?? [])")
        }
        decodeGrid = grid
        decodeFit = try Self.fit(decode, ["1", "seqs", "context_tokens"], zip(seqs, ctx).map { [1, $0, $0 * $1] }, decodeUs)

        let tokens = try ProfileTable(path: directory + "/step_tokens.csv", required: ["tokens"] + timing)
        let t = try tokens.doubles("tokens", min: 1)
        let tUs = try tokens.doubles("median_us", min: 0)
        let order = t.indices.sorted { t[$0] < t[$1] }
        guard let curve = Interpolator1D(xs: order.map { t[$0] }, ys: order.map { tUs[$0] }) else {
            throw ProfileError(file: tokens.file, column: "tokens", "needs at least two distinct, increasing token counts")
        }
        tokenCurve = curve
        let upper = Array(order.suffix(max(2, order.count / 2)))
        let beyond = try Self.fit(tokens, ["1", "tokens"], upper.map { [1, t[$0]] }, upper.map { tUs[$0] })
        tokenFit = beyond

        let attention = try ProfileTable(
            path: directory + "/step_attention.csv",
            required: ["tokens", "prefill_pairs", "decode_seqs", "decode_context_tokens"] + timing)
        let at = try attention.doubles("tokens", min: 1)
        let pairs = try attention.doubles("prefill_pairs", min: 0)
        let dctx = try attention.doubles("decode_context_tokens", min: 0)
        let dseqs = try attention.doubles("decode_seqs", min: 0)
        let aUs = try attention.doubles("median_us", min: 0)
        let graphs = meta.tokenGraphSizes
        var attX = at.indices.map { [pairs[$0], dctx[$0], dseqs[$0]] }
        var attY = aUs
        var attBase = at.indices.map { Self.tokenPart(at[$0], curve, beyond, graphs) }
        let keysColumn = "prefill_max_keys"
        var attKeys: [Double]? = attention.columns.contains(keysColumn) ? try attention.doubles(keysColumn, min: 0) : nil
        // step_mixed rows timed without LoRA too (`base_us`, profiles measured after 9e806b3): live-like
        // compositions of chunks and decode rows, calibration rows of the same attention fit.
        let mixedPath = directory + "/step_mixed.csv"
        let mixed: ProfileTable? =
            FileManager.default.fileExists(atPath: mixedPath)
            ? try ProfileTable(
                path: mixedPath,
                required: ["kernel", "tokens", "prefill_pairs", "decode_seqs", "decode_context_tokens", "segments"] + timing)
            : nil
        let mixedBase = mixed?.columns.contains("base_us") == true
        // step_mixed's keys: needed wherever the attention fit prices its rows (the residual LoRA
        // fit below evaluates it on every row), so the feature is used only when both have them
        var mixedKeys: [Double]? = nil
        if let m = mixed, m.columns.contains(keysColumn) { mixedKeys = try m.doubles(keysColumn, min: 0) }
        if mixed != nil && mixedKeys == nil { attKeys = nil }
        if let m = mixed, mixedBase {
            for i in 0..<m.count {
                let t = try m.double(i, "tokens", min: 1)
                attX.append([
                    try m.double(i, "prefill_pairs", min: 0), try m.double(i, "decode_context_tokens", min: 0),
                    try m.double(i, "decode_seqs", min: 0),
                ])
                attY.append(try m.double(i, "base_us", min: 0))
                attBase.append(Self.tokenPart(t, curve, beyond, graphs))
                if attKeys != nil, let mk = mixedKeys { attKeys!.append(mk[i]) }
            }
        }
        let attNames = ["prefill_pairs", "decode_context_tokens", "decode_seqs"]
        var attFit = try Self.fit(attention, attNames, attX, attY, offset: attBase)
        var usesKeys = false
        if let keys = attKeys, keys.count == attX.count,
            let withKeys = LinearFit(
                features: attNames + [keysColumn], x: zip(attX, keys).map { $0 + [$1] }, y: attY, offset: attBase),
            withKeys.coefficients[3] > 0, withKeys.coefficients.allSatisfy({ $0 >= 0 })
        {
            attFit = withKeys
            usesKeys = true
        }
        attentionFit = attFit
        attentionUsesMaxKeys = usesKeys

        let lora = try ProfileTable(path: directory + "/lora_step.csv", required: ["kernel", "tokens", "segments", "rank"] + timing)
        var grids: [String: GridInterpolator] = [:]
        var fits: [String: LinearFit] = [:]
        for (kernel, g, points, us) in try Self.kernelGrids(lora) {
            grids[kernel] = g
            fits[kernel] = try Self.fit(
                lora, ["1", "tokens", "segments", "tokens*rank"], points.map { [1, $0[0], $0[1], $0[0] * $0[2]] }, us)
        }
        loraGrids = grids
        loraFits = fits

        var tokenGrids: [String: GridInterpolator] = [:]
        let loraTokenPath = directory + "/lora_token.csv"
        if FileManager.default.fileExists(atPath: loraTokenPath) {
            let lt = try ProfileTable(path: loraTokenPath, required: ["kernel", "tokens", "segments", "rank"] + timing)
            for (kernel, g, _, _) in try Self.kernelGrids(lt) { tokenGrids[kernel] = g }
        }
        loraTokenGrids = tokenGrids

        let loads = try ProfileTable(path: directory + "/adapter_load.csv", required: ["source", "bytes"] + timing)
        for source in ["host", "disk"] where loads.rows(where: "source", is: source).count < 2 {
            throw ProfileError(file: loads.file, column: "source", "needs at least two '\(source)' rows")
        }
        hostToGPUFit = try Self.lineFit(loads, where: "source", is: "host", x: "bytes", min: 0)
        diskToHostFit = try Self.lineFit(loads, where: "source", is: "disk", x: "bytes", min: 0)
        busyLoadFits = try Self.optionalPair(loads, "host_busy", "disk_busy", what: "busy", negativeAllowed: false)
        loadStepFits = try Self.optionalPair(loads, "host_step", "disk_step", what: "step", negativeAllowed: true)

        let merge = try ProfileTable(path: directory + "/merge.csv", required: ["op", "rank"] + timing)
        var mf: [String: LinearFit] = [:]
        for op in ["merge", "unmerge"] where merge.rows(where: "op", is: op).count >= 2 {
            mf[op] = try Self.lineFit(merge, where: "op", is: op, x: "rank", min: 1)
        }
        mergeFits = mf

        var eagerLora: [String: LinearFit] = [:]
        if let m = mixed {
            let eager = { (t: Double, pairs: Double, ds: Double, dc: Double, keys: Double) -> Double in
                Self.tokenPart(t, curve, beyond, graphs)
                    + (usesKeys ? attFit.value(pairs, dc, ds, keys) : attFit.value(pairs, dc, ds))
            }
            for kernel in Set((0..<m.count).map { m.string($0, "kernel") }).sorted() {
                var x: [[Double]] = []
                var y: [Double] = []
                var base: [Double] = []
                for i in m.rows(where: "kernel", is: kernel) where try m.double(i, "segments", min: 0) > 0 {
                    let t = try m.double(i, "tokens", min: 1)
                    x.append([1, t])
                    y.append(try m.double(i, "median_us", min: 0))
                    // With `base_us` the LoRA is the step with adapters over the same step without;
                    // before it, over the eager model (which carries that model's error).
                    base.append(
                        mixedBase
                            ? try m.double(i, "base_us", min: 0)
                            : eager(
                                t, try m.double(i, "prefill_pairs", min: 0), try m.double(i, "decode_seqs", min: 0),
                                try m.double(i, "decode_context_tokens", min: 0), mixedKeys?[i] ?? 0))
                }
                guard let f = LinearFit(features: ["1", "tokens"], x: x, y: y, offset: base) else {
                    throw ProfileError(file: m.file, column: "kernel", "\(kernel): too few rows with LoRA (segments > 0) to fit")
                }
                eagerLora[kernel] = f
            }
        }
        eagerLoraFits = eagerLora
        var checks: [DecodeCheck] = []
        let variedPath = directory + "/step_decode_varied.csv"
        if FileManager.default.fileExists(atPath: variedPath) {
            let v = try ProfileTable(path: variedPath, required: ["seqs", "layout", "context_tokens", "max_context"] + timing)
            for i in 0..<v.count {
                checks.append(
                    DecodeCheck(
                        layout: v.string(i, "layout"), seqs: Int(try v.double(i, "seqs", min: 1)),
                        contextTokens: Int(try v.double(i, "context_tokens", min: 0)),
                        maxContext: Int(try v.double(i, "max_context", min: 0)), microseconds: try v.double(i, "median_us", min: 0)))
            }
        }
        decodeChecks = checks
        decodeTailFit = Self.fitDecodeTail(checks, grid: grid, fit: decodeFit, meta: meta)
        decodeTailIsLongestProgram = decodeTailFit?.features == Self.longestProgramFeatures
        decodeLogSigma = try Self.logSigma([decode])
        eagerLogSigma = try Self.logSigma([tokens, attention])

        let host = try ProfileTable(path: directory + "/host_overhead.csv", required: ["seqs"] + timing)
        hostOverheadFit = try Self.fit(
            host, ["1", "seqs"], try host.doubles("seqs", min: 0).map { [1, $0] }, try host.doubles("median_us", min: 0))
    }

    /// Median of ln(p90 / p10) / (2 x 1.2816) over the rows of `tables` that have both (0 if none).
    private static func logSigma(_ tables: [ProfileTable]) throws(ProfileError) -> Double {
        var values: [Double] = []
        for t in tables where t.columns.contains("p10_us") && t.columns.contains("p90_us") {
            for i in 0..<t.count {
                let lo = try t.double(i, "p10_us")
                let hi = try t.double(i, "p90_us")
                if lo > 0 && hi >= lo { values.append(log(hi / lo) / 2.5631) }
            }
        }
        guard !values.isEmpty else { return 0 }
        values.sort()
        return values[values.count / 2]
    }

    /// us ~ 1 + `x` over the rows of `table` whose `column` is `value`.
    private static func lineFit(
        _ table: ProfileTable, where column: String, is value: String, x: String, min: Double, minValue: Double? = 0
    ) throws(ProfileError) -> LinearFit {
        var xs: [[Double]] = []
        var ys: [Double] = []
        for i in table.rows(where: column, is: value) {
            xs.append([1, try table.double(i, x, min: min)])
            ys.append(try table.double(i, "median_us", min: minValue))
        }
        return try fit(table, ["1", x], xs, ys)
    }

    /// Fits of an optional pair of `adapter_load.csv` sources (`host_busy` / `disk_busy`, `host_step`
    /// / `disk_step`) over the bytes: nil when the profile has neither, an error naming the file and
    /// column when one has fewer than two rows. `negativeAllowed`: a step's excess (`*_step`) may be
    /// negative by noise; a time may not.
    private static func optionalPair(
        _ loads: ProfileTable, _ host: String, _ disk: String, what: String, negativeAllowed: Bool
    ) throws(ProfileError) -> (host: LinearFit, disk: LinearFit)? {
        let counts = [host, disk].map { loads.rows(where: "source", is: $0).count }
        if counts == [0, 0] { return nil }
        for (source, n) in zip([host, disk], counts) where n < 2 {
            throw ProfileError(file: loads.file, column: "source", "needs at least two '\(source)' rows, or no \(what) rows")
        }
        let minValue: Double? = negativeAllowed ? nil : 0
        return (
            try lineFit(loads, where: "source", is: host, x: "bytes", min: 0, minValue: minValue),
            try lineFit(loads, where: "source", is: disk, x: "bytes", min: 0, minValue: minValue)
        )
    }

    /// Per kernel (sorted), the full grid over (tokens, segments, rank) of a LoRA table's
    /// `median_us`, with its points and values; a missing grid point is refused, naming the file.
    private static func kernelGrids(
        _ table: ProfileTable
    ) throws(ProfileError) -> [(kernel: String, grid: GridInterpolator, points: [[Double]], us: [Double])] {
        var out: [(kernel: String, grid: GridInterpolator, points: [[Double]], us: [Double])] = []
        for kernel in Set((0..<table.count).map { table.string($0, "kernel") }).sorted() {
            var points: [[Double]] = []
            var us: [Double] = []
            for i in table.rows(where: "kernel", is: kernel) {
                points.append([
                    try table.double(i, "tokens", min: 1), try table.double(i, "segments", min: 1),
                    try table.double(i, "rank", min: 1),
                ])
                us.append(try table.double(i, "median_us", min: -1e9))
            }
            let (g, hole) = GridInterpolator.fromRows(points: points, values: us)
            guard let g else {
                throw ProfileError(
                    file: table.file, column: "kernel", "\(kernel): not a full grid, missing tokens/segments/rank \(hole ?? [])")
            }
            out.append((kernel, g, points, us))
        }
        return out
    }

    private static func fit(
        _ table: ProfileTable, _ names: [String], _ x: [[Double]], _ y: [Double], offset: [Double]? = nil
    ) throws(ProfileError) -> LinearFit {
        guard let f = LinearFit(features: names, x: x, y: y, offset: offset) else {
            throw ProfileError(file: table.file, "cannot fit \(names.joined(separator: " + ")) to \(y.count) rows (too few or degenerate)")
        }
        return f
    }

    /// The token-graph size an eager step of `tokens` tokens (prefill tokens plus decode
    /// sequences) runs as: the smallest of the profile's `token_graph_sizes` at least `tokens`;
    /// `tokens` itself beyond the largest, or when the profile records none.
    public func tokenGraphSize(_ tokens: Int) -> Int {
        Self.graphSize(tokens, meta.tokenGraphSizes)
    }

    /// True when a step of `tokens` tokens with prefill runs as one of the profiled engine's
    /// token graphs (false for profiles without them, and beyond the largest).
    public func runsAsTokenGraph(_ tokens: Int) -> Bool {
        guard let sizes = meta.tokenGraphSizes, let last = sizes.last else { return false }
        return tokens <= last
    }

    /// The token graph a step with prefill tokens of `tokens` tokens runs as, 0 beyond them (or
    /// without them): the key of the closed loop's eager factors (`DecodeCorrection.eagerFactor`).
    public func tokenGraphKey(_ tokens: Int) -> Int {
        runsAsTokenGraph(tokens) ? tokenGraphSize(tokens) : 0
    }

    /// The token part of an eager step of `tokens` tokens: the token curve (beyond its grid, the
    /// larger of its last point and the fit) at the step's token-graph size. The one function
    /// that pricing and the load-time residual fits (`attentionFit`, `eagerLoraFits`) evaluate.
    private static func tokenPart(_ tokens: Double, _ curve: Interpolator1D, _ fit: LinearFit, _ sizes: [Int]?) -> Double {
        let t = Double(graphSize(Int(tokens), sizes))  // token counts are whole numbers
        return curve.covers(t) ? curve(t) : max(curve(t), fit.value(1, t))
    }

    /// Microseconds of an eager step of `tokens` tokens (prefill tokens plus decode sequences)
    /// with the given attention work: the token curve at the step's token-graph size
    /// (`tokenGraphSize`: a step that runs as a token graph costs its padded size), plus the
    /// attention fit at the real prefill pairs, decode context and decode sequences (and, where
    /// `attentionUsesMaxKeys`, the most keys one prefill chunk attends to).
    public func eagerMicroseconds(
        tokens: Int, prefillPairs: Double, decodeSequences: Int, decodeContextTokens: Int, prefillMaxKeys: Int
    ) -> Double {
        let token = Self.tokenPart(Double(tokens), tokenCurve, tokenFit, meta.tokenGraphSizes)
        if attentionUsesMaxKeys {
            return token
                + attentionFit.value(prefillPairs, Double(decodeContextTokens), Double(decodeSequences), Double(prefillMaxKeys))
        }
        return token + attentionFit.value(prefillPairs, Double(decodeContextTokens), Double(decodeSequences))
    }

    /// Extra microseconds of unmerged LoRA in an eager step of `tokens` tokens with `kernel`, from
    /// `step_mixed` (nil when the profile has no rows for the kernel).
    public func eagerLoraMicroseconds(kernel: String, tokens: Int) -> Double? {
        guard let f = eagerLoraFits[kernel] else { return nil }
        return max(0, f.value(1, Double(tokens)))
    }

    /// Extra microseconds of unmerged LoRA with `kernel` in a step with prefill that runs as the
    /// token graph of `graphTokens` tokens, from `lora_token` (segments and rank held to the grid's
    /// range); nil without the table or its kernel, or for a graph larger than its largest size.
    public func loraTokenMicroseconds(kernel: String, graphTokens: Int, segments: Int, rank: Int) -> Double? {
        guard let g = loraTokenGrids[kernel], let top = g.axes[0].last, Double(graphTokens) <= top else { return nil }
        func clamp(_ v: Double, _ axis: [Double]) -> Double { min(max(v, axis[0]), axis[axis.count - 1]) }
        return max(0, g.value(clamp(Double(graphTokens), g.axes[0]), clamp(Double(segments), g.axes[1]), clamp(Double(rank), g.axes[2])))
    }

    /// Extra microseconds of unmerged LoRA with `kernel` (nil if the profile lacks the kernel).
    public func loraMicroseconds(kernel: String, tokens: Int, segments: Int, rank: Int) -> Double? {
        guard let g = loraGrids[kernel], let f = loraFits[kernel] else { return nil }
        let (t, s, r) = (Double(tokens), Double(segments), Double(rank))
        return g.covers(t, s, r) ? g.value(t, s, r) : max(0, f.value(1, t, s, t * r))
    }
}
