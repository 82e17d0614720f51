/// Mean and percentiles of one latency metric, seconds (docs/metrics.md).
public struct Distribution: Sendable, Equatable {
    /// Number of values.
    public var count: Int
    /// Mean.
    public var mean: Double
    /// Median.
    public var p50: Double
    /// 90th percentile.
    public var p90: Double
    /// 99th percentile.
    public var p99: Double
    /// Largest value.
    public var max: Double

    /// Summarises `values` (NaN for every field when empty). Percentiles interpolate linearly
    /// between order statistics (numpy's default), so the Python side computes the same.
    public init(_ values: [Double]) {
        count = values.count
        guard !values.isEmpty else {
            mean = .nan; p50 = .nan; p90 = .nan; p99 = .nan; max = .nan
            return
        }
        let v = values.sorted()
        mean = v.reduce(0, +) / Double(v.count)
        p50 = Self.percentile(v, 0.50)
        p90 = Self.percentile(v, 0.90)
        p99 = Self.percentile(v, 0.99)
        max = v[v.count - 1]
    }

    /// The q-quantile of sorted values by linear interpolation.
    public static func percentile(_ sorted: [Double], _ q: Double) -> Double {
        let pos = q * Double(sorted.count - 1)
        let lo = Int(pos.rounded(.down))
        let hi = Swift.min(lo + 1, sorted.count - 1)
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - Double(lo))
    }
}

/// Per-run metrics (definitions in docs/metrics.md).
public struct RunSummary: Sendable {
    /// Requests in the trace.
    public var requests: Int
    /// Requests that finished.
    public var completed: Int
    /// Requests refused on arrival.
    public var rejected: Int
    /// First arrival to last finish, seconds.
    public var makespanSeconds: Double
    /// Completed requests per second of makespan.
    public var requestsPerSecond: Double
    /// Output tokens of completed requests per second of makespan.
    public var outputTokensPerSecond: Double
    /// Prompt + output tokens of completed requests per second of makespan.
    public var totalTokensPerSecond: Double
    /// Time to first token.
    public var ttft: Distribution
    /// Time per output token after the first.
    public var tpot: Distribution
    /// End-to-end latency.
    public var e2e: Distribution
    /// Queue wait: arrival to first scheduled.
    public var queueWait: Distribution
    /// Longest queue wait of each adapter (by catalogue index; NaN for adapters with no request).
    public var longestWaitByAdapter: [Double]
    /// Preemptions, all requests.
    public var preemptions: Int
    /// Iterations, all replicas.
    public var iterations: Int
    /// Iteration time over replicas x makespan.
    public var gpuBusyFraction: Double
    /// Changes of serving mode between consecutive iterations, all replicas (dLoRA's switches).
    public var modeChanges: Int
    /// Mean seconds of a decode-only iteration (no prefill token): the CUDA-graph path.
    public var decodeStepMeanSeconds: Double
    /// Mean seconds of an iteration with prefill tokens: the eager path.
    public var mixedStepMeanSeconds: Double

    /// Computes the metrics of a finished run.
    public init(requests reqs: [RequestState], replicas: [Replica], adapterCount: Int) {
        requests = reqs.count
        var done = 0
        var rejectedCount = 0
        var preempt = 0
        var firstArrival = Double.infinity
        var lastFinish = -Double.infinity
        var outTokens = 0
        var allTokens = 0
        var ttfts: [Double] = []
        var tpots: [Double] = []
        var e2es: [Double] = []
        var waits: [Double] = []
        ttfts.reserveCapacity(reqs.count)
        e2es.reserveCapacity(reqs.count)
        waits.reserveCapacity(reqs.count)
        tpots.reserveCapacity(reqs.count)
        var longest = Array(repeating: Double.nan, count: adapterCount)
        for r in reqs {
            firstArrival = Swift.min(firstArrival, r.arrivalSeconds)
            preempt += Int(r.preemptions)
            if r.status == .rejected { rejectedCount += 1 }
            guard r.status == .finished else { continue }
            done += 1
            lastFinish = Swift.max(lastFinish, r.finishSeconds)
            outTokens += Int(r.outputTokens)
            allTokens += Int(r.outputTokens + r.promptTokens)
            ttfts.append(r.firstTokenSeconds - r.arrivalSeconds)
            e2es.append(r.finishSeconds - r.arrivalSeconds)
            let wait = r.firstScheduledSeconds - r.arrivalSeconds
            waits.append(wait)
            if r.outputTokens > 1 { tpots.append((r.finishSeconds - r.firstTokenSeconds) / Double(r.outputTokens - 1)) }
            if r.adapter >= 0 {
                let a = Int(r.adapter)
                longest[a] = longest[a].isNaN ? wait : Swift.max(longest[a], wait)
            }
        }
        completed = done
        rejected = rejectedCount
        preemptions = preempt
        makespanSeconds = done > 0 ? lastFinish - firstArrival : 0
        let span = makespanSeconds > 0 ? makespanSeconds : Double.nan
        requestsPerSecond = Double(done) / span
        outputTokensPerSecond = Double(outTokens) / span
        totalTokensPerSecond = Double(allTokens) / span
        ttft = Distribution(ttfts)
        tpot = Distribution(tpots)
        e2e = Distribution(e2es)
        queueWait = Distribution(waits)
        longestWaitByAdapter = longest
        iterations = replicas.reduce(0) { $0 + $1.iterations }
        let busy = replicas.reduce(0.0) { $0 + $1.busySeconds }
        gpuBusyFraction = busy / (Double(replicas.count) * span)
        modeChanges = replicas.reduce(0) { $0 + $1.modeChanges }
        let decodeCount = replicas.reduce(0) { $0 + $1.decodeOnlyIterations }
        let decodeSeconds = replicas.reduce(0.0) { $0 + $1.decodeOnlySeconds }
        decodeStepMeanSeconds = decodeSeconds / Double(decodeCount)
        mixedStepMeanSeconds = (busy - decodeSeconds) / Double(iterations - decodeCount)
    }
}
