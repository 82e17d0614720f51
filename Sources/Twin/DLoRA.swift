/// The replica scheduler a scenario picks (`scheduler:`, docs/schedulers.md).
public enum SchedulerSpec: Sendable, Equatable {
    /// FCFS continuous batching (docs/engine-model.md).
    case fcfs
    /// dLoRA's dynamic merge/unmerge with starvation credits.
    case dlora(DLoRAConfig)
}

/// dLoRA's parameters (docs/schedulers.md, "Parameters").
public struct DLoRAConfig: Sendable, Equatable {
    /// One unit of credit.
    public var creditUnit = 10_000.0
    /// Merge onto an adapter whose waiting queue is at least this times `max_num_seqs` (R).
    public var mergeRatio = 1.5
    /// Stay merged while the merged adapter's queue is at least this times `max_num_seqs` (L).
    public var stayRatio = 0.5
    /// Nudge R and L at each mode change.
    public var adaptive = true
    /// Starvation credits on (off: the "dLoRA without credits" baseline).
    public var credits = true
    /// Seconds of a merge or unmerge; nil: the cost model's `switchSeconds`.
    public var switchSeconds: Double?
    /// Which iterations measure each mode's speed (`speed`): all of them, in scheduled tokens per
    /// second (false: `tokens`, dLoRA's artifact), or only decode-only ones (true: `decode`), so
    /// that prefill-heavy iterations do not inflate one mode's speed against the other's.
    public var speedFromDecodeOnly = false
    /// Whether a drain pass (admitting only the merge target while other adapters' requests run)
    /// pays credit to the candidates it displaces, as a credit-prioritised pass does
    /// (`drain_credit`; true since lease 67078bf-1, docs/schedulers.md; false: draft 2, as every
    /// d-run recorded before that lease ran, and as their scenarios now say).
    public var drainCredit = true
    /// The aging guard (`max_wait_s`, step 2a): once the request at the front of the waiting queue
    /// has waited this many seconds since its arrival, its adapter is prioritised whatever the
    /// credits say (a base-model request: the pass runs unmerged). Nil: off (dLoRA's policy).
    public var maxWaitSeconds: Double?

    /// The defaults.
    public init() {}
}

/// dLoRA's state in one replica (docs/schedulers.md, "State").
struct DLoRAState {
    let config: DLoRAConfig
    /// Credit per adapter.
    var credit: [Double]
    /// The adapter prioritised in the previous pass, or -1.
    var prioritised: Int32 = -1
    /// Thresholds R and L.
    var mergeRatio: Double
    var stayRatio: Double
    /// Tokens per second in each mode (NaN until the mode has run an iteration).
    var speedUnmerged = Double.nan
    var speedMerged = Double.nan
    /// When the current mode began.
    var modeSince = 0.0
    /// Per adapter: whether it has a request in the candidate batch (reused between passes).
    var inCandidates: [Bool]
    /// The candidate batch of the current pass.
    var candidates: [WaitingEntry] = []
    /// The switch in progress: its target (-1: unmerged) and start, and its seconds.
    var switchTarget: Int32 = -1
    var switchStart = 0.0
    var switchDuration = 0.0

    init(config: DLoRAConfig, adapters: Int) {
        self.config = config
        credit = Array(repeating: Double(max(adapters - 1, 0)) * config.creditUnit, count: adapters)
        mergeRatio = config.mergeRatio
        stayRatio = config.stayRatio
        inCandidates = Array(repeating: false, count: adapters)
    }

    /// Updates the speed of `merged` or unmerged mode with one iteration (with `speed: decode`,
    /// only a decode-only one: `prefillTokens` 0).
    mutating func record(tokens: Int, prefillTokens: Int, seconds: Double, merged: Bool) {
        if config.speedFromDecodeOnly && prefillTokens > 0 { return }
        let v = Double(tokens) / seconds
        if merged {
            speedMerged = speedMerged.isNaN ? v : 0.8 * speedMerged + 0.2 * v
        } else {
            speedUnmerged = speedUnmerged.isNaN ? v : 0.8 * speedUnmerged + 0.2 * v
        }
    }
}
