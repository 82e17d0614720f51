/// Symmetric mean absolute percentage error of one forecast F against one actual A, in percent:
/// 100 |F - A| / ((|A| + |F|) / 2). Defined as 0 when both are 0, and NaN when either is NaN
/// (the metric does not exist for that run, e.g. TPOT with one-token outputs).
public func smape(forecast f: Double, actual a: Double) -> Double {
    if f.isNaN || a.isNaN { return .nan }
    let denominator = (abs(a) + abs(f)) / 2
    return denominator == 0 ? 0 : 100 * abs(f - a) / denominator
}

/// The metrics `loratwin validate` compares, by name (docs/validation.md).
public enum ValidationMetric: String, CaseIterable, Sendable {
    case requestsPerSecond = "requests_per_s"
    case outputTokensPerSecond = "output_tokens_per_s"
    case ttftMean = "ttft_mean"
    case ttftP50 = "ttft_p50"
    case ttftP99 = "ttft_p99"
    case tpotMean = "tpot_mean"
    case tpotP50 = "tpot_p50"
    case tpotP99 = "tpot_p99"
    case e2eMean = "e2e_mean"
    case e2eP50 = "e2e_p50"
    case e2eP99 = "e2e_p99"
    case longestWait = "longest_wait"
    case preemptions = "preemptions"
    case iterations = "iterations"
    /// Changes of serving mode (dLoRA's merges and unmerges).
    case modeChanges = "mode_changes"
    /// Diagnostic: mean decode-only (graph) step.
    case decodeStepMean = "decode_step_mean"
    /// Diagnostic: mean step with prefill tokens (eager).
    case mixedStepMean = "mixed_step_mean"

    /// The value of this metric in a run summary.
    public func value(_ s: RunSummary) -> Double {
        switch self {
        case .requestsPerSecond: return s.requestsPerSecond
        case .outputTokensPerSecond: return s.outputTokensPerSecond
        case .ttftMean: return s.ttft.mean
        case .ttftP50: return s.ttft.p50
        case .ttftP99: return s.ttft.p99
        case .tpotMean: return s.tpot.mean
        case .tpotP50: return s.tpot.p50
        case .tpotP99: return s.tpot.p99
        case .e2eMean: return s.e2e.mean
        case .e2eP50: return s.e2e.p50
        case .e2eP99: return s.e2e.p99
        case .longestWait: return s.queueWait.max
        case .preemptions: return Double(s.preemptions)
        case .iterations: return Double(s.iterations)
        case .modeChanges: return Double(s.modeChanges)
        case .decodeStepMean: return s.decodeStepMeanSeconds
        case .mixedStepMean: return s.mixedStepMeanSeconds
        }
    }
}

/// One validated run: prediction and live value per metric.
public struct ValidationRow: Sendable {
    /// Scenario name.
    public var scenario: String
    /// The run folder.
    public var directory: String
    /// Whether the live engine fell behind the offered load (completions under 90 % of the
    /// arrival rate): only then does throughput say anything about the twin.
    public var saturated: Bool
    /// Label of the twin's cost model.
    public var costModel: String
    /// The GPU the scenario names (`GPUSpec.name`; empty when not set).
    public var gpu = ""
    /// Live values by metric.
    public var live: [ValidationMetric: Double]
    /// Predicted values by metric.
    public var predicted: [ValidationMetric: Double]

    /// SMAPE of `metric`, percent.
    public func error(_ metric: ValidationMetric) -> Double {
        smape(forecast: predicted[metric] ?? .nan, actual: live[metric] ?? .nan)
    }

    /// Builds the row from both summaries.
    public init(
        scenario: String, directory: String, costModel: String, offeredRequestsPerSecond: Double, live l: RunSummary,
        predicted p: RunSummary
    ) {
        self.scenario = scenario
        self.directory = directory
        self.costModel = costModel
        saturated = l.requestsPerSecond < 0.9 * offeredRequestsPerSecond
        var lv: [ValidationMetric: Double] = [:]
        var pv: [ValidationMetric: Double] = [:]
        for m in ValidationMetric.allCases {
            lv[m] = m.value(l)
            pv[m] = m.value(p)
        }
        live = lv
        predicted = pv
    }
}

/// Mean SMAPE of a metric over rows, skipping rows where it is undefined (NaN).
public func meanError(_ rows: [ValidationRow], _ metric: ValidationMetric) -> Double {
    let values = rows.map { $0.error(metric) }.filter { !$0.isNaN }
    return values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count)
}

/// How much a predicted metric moves with the step costs: the percent change of the metric per
/// percent change of every step's time, from two runs with all steps `1 - delta` and `1 + delta`
/// times as long (a central difference around the point prediction). About 0 for a throughput that
/// only follows the offered load, about 1 for a latency made of steps alone, and far above 1 where
/// requests queue at the knee: there a calibration `delta` off moves the metric by about
/// `elasticity x delta`. NaN when the point value is 0 or undefined.
public func elasticity(_ metric: ValidationMetric, point: RunSummary, cheaper: RunSummary, dearer: RunSummary, delta: Double)
    -> Double
{
    let v = metric.value(point)
    guard v.isFinite, v != 0, delta > 0 else { return .nan }
    return (metric.value(dearer) - metric.value(cheaper)) / (2 * delta * v)
}

/// A prediction interval: the 5th and 95th percentiles of a metric over sampled replicas.
public struct PredictionBand: Sendable, Equatable {
    /// 5th percentile.
    public var low: Double
    /// 95th percentile.
    public var high: Double
    /// Median of the replicas.
    public var median: Double

    /// The band of `metric` over `summaries` (NaN-valued replicas left out).
    public init(_ metric: ValidationMetric, _ summaries: [RunSummary]) {
        let v = summaries.map { metric.value($0) }.filter { !$0.isNaN }.sorted()
        if v.isEmpty {
            low = .nan
            high = .nan
            median = .nan
        } else {
            low = Distribution.percentile(v, 0.05)
            high = Distribution.percentile(v, 0.95)
            median = Distribution.percentile(v, 0.5)
        }
    }

    /// Whether `x` lies in the band (false when either is undefined).
    public func contains(_ x: Double) -> Bool { !x.isNaN && !low.isNaN && x >= low && x <= high }
}
