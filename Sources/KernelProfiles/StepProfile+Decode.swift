/// Decode-only steps (the engine's CUDA-graph path): the grid's floor and attention work, and the
/// tail of batches whose longest sequence is longer than the mean.
extension StepProfile {
    /// One row of `step_decode_varied.csv`.
    public struct DecodeCheck: Sendable, Equatable {
        /// The batch's layout (`spread`, `one_long`, `scattered`).
        public var layout: String
        /// Sequences, their summed context (the StepBatch's `decodeContextTokens`) and the longest.
        public var seqs: Int, contextTokens: Int, maxContext: Int
        /// The measured median.
        public var microseconds: Double

        /// Creates a row.
        public init(layout: String, seqs: Int, contextTokens: Int, maxContext: Int, microseconds: Double) {
            (self.layout, self.seqs, self.contextTokens, self.maxContext) = (layout, seqs, contextTokens, maxContext)
            self.microseconds = microseconds
        }

        /// True when the longest context exceeds the mean: a row that calibrates `decodeTailFit`.
        public var isSkewed: Bool { Double(maxContext) > Double(contextTokens) / Double(max(seqs, 1)) }
    }

    /// Microseconds of a decode-only step of `seqs` sequences whose contexts sum to
    /// `contextTokens`, the longest being `maxContext` (0: all equal): `floor + max(work, tail)`
    /// of `decodeParts`.
    ///
    /// The table holds batches of equal contexts. The engine's decode attention gives each
    /// (sequence, head) `splits(g)` programs (g: the batch's CUDA-graph size) that each walk a
    /// share of that sequence's context, so a batch takes at least its total attention work, read
    /// off the table at the mean context, and, when one sequence is longer than the mean, its
    /// programs keep walking after the mean one's would have ended: the excess,
    /// `(maxContext - mean) / splits(g)` tokens, at the pace of a program running alone. The
    /// rest of the step is the table's shortest-context row at the batch's CUDA-graph size.
    /// Without a recorded split rule (profiles of engines with one program per sequence and
    /// head), splits are 1; without recorded graph sizes, the batch is its own size.
    public func decodeMicroseconds(seqs: Int, contextTokens: Int, maxContext: Int = 0) -> Double {
        let p = decodeParts(seqs: seqs, contextTokens: contextTokens, maxContext: maxContext)
        return p.floor + max(p.work, p.tail)
    }

    /// The parts `decodeMicroseconds` adds up, in microseconds: `floor`, the shortest-context row
    /// at the batch's graph size g; `work`, the attention work at the mean context over the
    /// shortest; `tail`, the longest program's time (equal to `work` when no sequence is longer
    /// than the mean). The step is `floor + max(work, tail)`.
    ///
    /// With `decodeTailFit` (calibrated on the profile's `step_decode_varied` micro-benchmark),
    /// `tail = work + tau x (maxContext - mean) / splits(g)`, with a tau of its own for graphs
    /// whose sequences split (splits(g) > 1); when the table has no rows at such graphs, the
    /// earlier form `tail = tau x maxContext / splits(g) + w x work` (`fitDecodeTail`). Without it, the tail is what a lone
    /// sequence of `maxContext x splits(1) / splits(g)` tokens costs over the shortest context
    /// (its programs walk as far; beyond the grid, on the line through the last two one-sequence
    /// rows).
    public func decodeParts(seqs: Int, contextTokens: Int, maxContext: Int = 0) -> (floor: Double, work: Double, tail: Double) {
        let mean = Double(contextTokens) / Double(max(seqs, 1))
        let graph = graphSize(seqs)
        let (floor, work) = Self.decodeFloorAndWork(
            seqs: seqs, graph: graph, mean: mean, grid: decodeGrid, fit: decodeFit, splits: meta.decodeAttention)
        guard Double(maxContext) > mean else { return (floor, work, work) }
        if let f = decodeTailFit {
            let splits = Double(Self.splits(meta, graph: graph))
            if decodeTailIsLongestProgram {
                return (floor, work, f.value(Double(maxContext) / splits, work))
            }
            let tau = f.coefficients.count == 2 && splits > 1 ? f.coefficients[1] : f.coefficients[0]
            return (floor, work, work + max(0, tau * (Double(maxContext) - mean) / splits))
        }
        var lone = Double(maxContext)
        if let rule = meta.decodeAttention {
            lone *= Double(rule.splits(seqs: 1)) / Double(rule.splits(seqs: graph))
        }
        let tail = oneSequence(lone) - oneSequence(decodeGrid.axes[1][0])
        return (floor, work, tail)
    }

    /// The decode CUDA-graph size a batch of `seqs` runs as (`seqs` itself without recorded
    /// sizes, or beyond the largest).
    public func graphSize(_ seqs: Int) -> Int {
        Self.graphSize(seqs, meta.graphSizes)
    }

    /// The smallest of the sorted CUDA-graph `sizes` (decode sequences or eager tokens) at least
    /// `n`; `n` itself beyond the largest or without sizes.
    static func graphSize(_ n: Int, _ sizes: [Int]?) -> Int {
        guard let sizes else { return n }
        return sizes.first { $0 >= n } ?? n
    }

    /// Programs per (sequence, head) at graph size `graph` (1 without a recorded rule).
    static func splits(_ meta: ProfileMeta, graph: Int) -> Int {
        meta.decodeAttention?.splits(seqs: graph) ?? 1
    }

    /// The floor and work of `decodeParts`: the one function that pricing and the tail fit
    /// evaluate. The batch runs as the graph of the next size up: its padding rows (context 1)
    /// cost the weights' part of a step, not attention, so the floor is read at `graph` and the
    /// work at the real `seqs`. Outside the grid, the table's fit.
    ///
    /// `rule` (programs per sequence and head at a graph size, the engine's `decode_attention`; nil:
    /// not recorded): the work of a batch between two grid rows is read between them, unless the two
    /// rows ran with different splits, while the batch runs with its graph's: then the grid row of
    /// its graph and the nearest row of the same splits carry the line it is read on (above or
    /// below), or, with no such row, the graph's row scaled by seqs / graph. Reading 13-15
    /// sequences (graph 16, one program) between the rows of 12 (two programs) and 16 priced them
    /// short: in the closed loop of `h200-llama2-7b-61ed086`, measured / priced at concurrency 14
    /// went from 1.046 to 1.023 with this (0.968 at 16), at 6 (graph 8, between the rows of 4 and
    /// 8) from 1.032 to 1.019 (1.013 at 8); `scripts/step_errors.py --by-concurrency`.
    static func decodeFloorAndWork(
        seqs: Int, graph: Int, mean: Double, grid: GridInterpolator, fit: LinearFit, splits rule: DecodeAttentionSplits? = nil
    ) -> (floor: Double, work: Double) {
        func table(_ n: Double, _ c: Double) -> Double {
            grid.covers(n, c) ? grid.value(n, c) : fit.value(1, n, n * c)
        }
        let s = Double(seqs)
        let shortest = grid.axes[1][0]
        func work(_ n: Double) -> Double { table(n, mean) - table(n, shortest) }
        let floor = table(Double(graph), shortest)
        let rows = grid.axes[0]
        guard let rule, grid.covers(s, mean), let hi = rows.firstIndex(where: { $0 >= s }), rows[hi] != s, hi > 0,
            rule.splits(seqs: Int(rows[hi - 1])) != rule.splits(seqs: Int(rows[hi])), rows.contains(Double(graph))
        else { return (floor, work(s)) }
        let own = rule.splits(seqs: graph)
        let g = Double(graph)
        let other =
            rows.first { $0 > g && rule.splits(seqs: Int($0)) == own } ?? rows.last { $0 < g && rule.splits(seqs: Int($0)) == own }
        guard let other else { return (floor, work(g) * s / g) }
        let (r1, r2) = (min(g, other), max(g, other))
        let (w1, w2) = (work(r1), work(r2))
        return (floor, w1 + (s - r1) * (w2 - w1) / (r2 - r1))
    }

    /// Features of the earlier tail form, `tau x maxContext / splits(g) + w x work` over the floor.
    static let longestProgramFeatures = ["max/splits", "work"]

    /// Least squares of the skewed rows of `rows` (`isSkewed`): measured - floor - work ~ tau x
    /// (maxContext - mean) / splits(g), with floor, work and g as `decodeParts` computes them (no
    /// intercept). Rows at graphs whose sequences split (splits(g) > 1) get a tau of their own
    /// (feature `excess/splits (split)`) when there are at least 2 of them among at least 4 rows;
    /// with one such row, one tau serves all graphs; with none, the earlier form over the floor,
    /// `tau x maxContext / splits(g) + w x work` (`longestProgramFeatures`). Nil with fewer than 3 rows, a degenerate system or a
    /// negative tau.
    ///
    /// This form replaced `tau x maxContext / splits(g) + w x work` after 9e806b3: on that
    /// profile's own 12 skewed rows (graphs 4 and 12 split in 4 and 2) its leave-one-out error is
    /// 2.5 % against 8.1 %, every row within 4.4 % (the old form missed one_long at 12 sequences by
    /// 17.5 % and spread at 16 by 12.7 %), and a batch of equal contexts is the table's row by
    /// construction (docs/step-cost.md). The fitted taus say a split sequence's programs do not
    /// shorten its excess walk in proportion (2.8 against 1.6 us per token).
    static func fitDecodeTail(_ rows: [DecodeCheck], grid: GridInterpolator, fit: LinearFit, meta: ProfileMeta) -> LinearFit? {
        var excess: [(Double, Bool)] = []
        var longest: [[Double]] = []
        var y: [Double] = []
        var offsets: [Double] = []
        var floors: [Double] = []
        for r in rows where r.isSkewed {
            let graph = graphSize(r.seqs, meta.graphSizes)
            let mean = Double(r.contextTokens) / Double(max(r.seqs, 1))
            let (floor, work) = decodeFloorAndWork(
                seqs: r.seqs, graph: graph, mean: mean, grid: grid, fit: fit, splits: meta.decodeAttention)
            let splits = splits(meta, graph: graph)
            excess.append(((Double(r.maxContext) - mean) / Double(splits), splits > 1))
            longest.append([Double(r.maxContext) / Double(splits), work])
            y.append(r.microseconds)
            offsets.append(floor + work)
            floors.append(floor)
        }
        guard excess.count >= 3 else { return nil }
        let split = excess.filter(\.1).count
        let f: LinearFit?
        if split >= 2 && excess.count - split >= 2 {
            f = LinearFit(
                features: ["excess/splits", "excess/splits (split)"], x: excess.map { $0.1 ? [0, $0.0] : [$0.0, 0] }, y: y,
                offset: offsets)
        } else if split == 0 {
            // No row at a split graph: nothing calibrates how a split sequence's excess walk
            // shortens, and one tau fitted at 1 split underprices the split graphs (the 32bd308
            // profile's runs: decode steps at graphs 4-12 10-15 % short). The earlier form, whose
            // w x work term carries part of the tail at every graph, is kept for such tables.
            f = LinearFit(features: Self.longestProgramFeatures, x: longest, y: y, offset: floors)
        } else {
            f = LinearFit(features: ["excess/splits"], x: excess.map { [$0.0] }, y: y, offset: offsets)
        }
        guard let f, f.coefficients.allSatisfy({ $0 >= 0 }) else { return nil }
        return f
    }

    /// The one-sequence decode rows at `context`, extended beyond the grid on the line through
    /// its last two points.
    private func oneSequence(_ context: Double) -> Double {
        let contexts = decodeGrid.axes[1]
        let last = contexts[contexts.count - 1]
        if context <= last { return decodeGrid.value(1, max(context, contexts[0])) }
        let before = contexts[max(0, contexts.count - 2)]
        let slope = last > before ? (decodeGrid.value(1, last) - decodeGrid.value(1, before)) / (last - before) : 0
        return decodeGrid.value(1, last) + slope * (context - last)
    }
}
