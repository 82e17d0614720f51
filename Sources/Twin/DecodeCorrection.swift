import Foundation
import KernelProfiles
import Workloads

/// How much longer decode-only steps take in the engine's own loop than the profile's tables price
/// them, per CUDA-graph size: calibration from `gpu/closed_loop.py` (a seeded synthetic workload
/// kept at N requests in the real scheduler and executor, every iteration timed as the replay
/// times it; never a validation run), stored in the profile as `closed_loop/<variant>/steps.csv`
/// with its `catalogue.csv` (docs/profile-format.md). `variant` is a LoRA kernel (`sgmv`, ...)
/// for steps that carry adapters, or `none` for steps without (and merged steps).
///
/// The factor of a graph is the median, over the closed loop's decode-only steps that ran as that
/// graph, of the measured iteration over the uncorrected price. A graph with fewer than
/// `minimumSteps` such steps (one the loop did not reach) takes `belowFactor`, the median of the
/// measured graphs' factors, when it is smaller than every measured graph, and 1 otherwise. Why:
/// in the four profiles whose loop reached every graph (1-64), the factors of graphs 8-32 alone
/// predict those of graphs 1-4 with a mean absolute error of 0.024 by their median (0.028 by their
/// mean, 0.053 by graph 8's, 0.060 by 1: small graphs run 4-9 % dearer in the loop than priced in
/// every one of them), and those of graphs 40-64 best by 1 (0.020; 0.022 by the mean, 0.027 by the
/// median) (`python3 scripts/closed_loop_extrapolation.py`, calibration loops only).
///
/// Why a factor per graph: every live run of four leases priced with its own lease's profile has
/// its decode steps of graphs 12-24 6-9 % dearer than priced and those of graphs 8 and 32 within
/// about 2 % (docs/validation.md, "Lease a70f021-1"), a pattern by graph size that no term of the
/// decode model (floor, work, tail, LoRA) follows.
///
/// Steps with prefill tokens take a factor per token graph the same way (`eagerFactors`, since lease
/// d6fff0f-1): the median of the loop's measured over uncorrected price of its steps that ran as
/// that token graph (key 0: steps beyond the token graphs, launched eagerly). In every loop of seven
/// leases the small token graphs (128-384 tokens) ran 1-9 % dearer than priced and those of 512-1280
/// tokens 1-4 % cheaper, and each lease's runs showed the same pattern within about 3 % (docs/validation.md,
/// "After lease d6fff0f-1"). A token graph with fewer than `minimumSteps` steps takes the factor of
/// the nearest smaller graph with one between graphs with one, the smallest's below them, and none
/// (1) above them: in the loops the few steps of the largest token graphs (1408-2048) ran within
/// about 1 % of their price.
public struct DecodeCorrection: Sendable, Equatable {
    /// Fewer decode-only steps of a graph than this: factor 1.
    public static let minimumSteps = 20
    /// The steps file it was fitted on.
    public let file: String
    /// Graph size -> factor (only graphs with at least `minimumSteps` steps).
    public let factors: [Int: Double]
    /// Graph size -> decode-only steps of that graph in the file (all graphs).
    public let steps: [Int: Int]
    /// The factor of a graph smaller than every graph with a factor: the median of `factors` (1
    /// when there is none).
    public let belowFactor: Double
    /// Token-graph size (0: beyond the token graphs) -> factor of steps with prefill tokens (only
    /// graphs with at least `minimumSteps` steps).
    public let eagerFactors: [Int: Double]
    /// Token-graph size -> steps with prefill tokens of that graph in the file (all graphs).
    public let eagerSteps: [Int: Int]
    /// Token-graph size -> the median ratio of its steps (all graphs, for reports).
    public let eagerMedians: [Int: Double]

    /// The factor for a decode-only step that runs as CUDA graph `graph`: its own, else
    /// `belowFactor` below the smallest graph with one, else 1.
    public func factor(graph: Int) -> Double {
        if let f = factors[graph] { return f }
        guard let smallest = smallestGraph, graph < smallest else { return 1 }
        return belowFactor
    }
    /// The smallest graph with a factor (nil without any), kept so that pricing a step stays a lookup.
    private let smallestGraph: Int?
    /// The token graphs with a factor, ascending (without key 0).
    private let eagerGraphs: [Int]

    /// The factor for a step with prefill tokens that runs as token graph `tokenGraph` (0: beyond
    /// the token graphs): its own; else, between graphs with one, the nearest smaller one's; below
    /// every graph with one, the smallest's; above every one, 1 (as for key 0 without its own).
    public func eagerFactor(tokenGraph: Int) -> Double {
        if let f = eagerFactors[tokenGraph] { return f }
        guard tokenGraph > 0, let smallest = eagerGraphs.first, let largest = eagerGraphs.last, tokenGraph < largest else {
            return 1
        }
        return eagerFactors[eagerGraphs.last { $0 < tokenGraph } ?? smallest]!
    }

    /// Fits the factors: `measuredUs[i]` is row i's measured step, `price` the uncorrected
    /// price (us) of a batch, `graph` the CUDA graph a batch of n decode sequences runs as, and
    /// `tokenGraph` the token graph a step with prefill tokens runs as (0 beyond them; nil: no
    /// eager factors).
    public init(
        file: String, batches: [StepBatch], measuredUs: [Double], price: (StepBatch) -> Double, graph: (Int) -> Int,
        tokenGraph: ((Int) -> Int)? = nil, minimumSteps: Int = DecodeCorrection.minimumSteps
    ) {
        var ratios: [Int: [Double]] = [:]
        var eager: [Int: [Double]] = [:]
        for (b, m) in zip(batches, measuredUs) {
            let p = price(b)
            guard p > 0 else { continue }
            if b.prefillTokens == 0 && b.decodeSequences > 0 {
                ratios[graph(b.decodeSequences), default: []].append(m / p)
            } else if b.prefillTokens > 0, let tokenGraph {
                eager[tokenGraph(b.tokens), default: []].append(m / p)
            }
        }
        self.file = file
        steps = ratios.mapValues(\.count)
        let fitted = ratios.filter { $0.value.count >= minimumSteps }.mapValues { Distribution.percentile($0.sorted(), 0.5) }
        factors = fitted
        belowFactor = fitted.isEmpty ? 1 : Distribution.percentile(fitted.values.sorted(), 0.5)
        smallestGraph = fitted.keys.min()
        eagerSteps = eager.mapValues(\.count)
        eagerMedians = eager.mapValues { Distribution.percentile($0.sorted(), 0.5) }
        eagerFactors = eager.filter { $0.value.count >= minimumSteps }.mapValues { Distribution.percentile($0.sorted(), 0.5) }
        eagerGraphs = eagerFactors.keys.filter { $0 > 0 }.sorted()
    }

    /// The closed-loop folder of `variant` in a profile directory.
    public static func directory(profile: String, variant: String) -> String {
        profile + "/closed_loop/" + variant
    }

    /// Whether a profile directory has closed-loop steps for `variant`.
    public static func exists(profile: String, variant: String) -> Bool {
        FileManager.default.fileExists(atPath: directory(profile: profile, variant: variant) + "/steps.csv")
    }
}
