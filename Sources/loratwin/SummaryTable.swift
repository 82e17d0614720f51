import Foundation
import KernelProfiles
import Twin

/// The readable summary `loratwin simulate` prints.
enum SummaryTable {
    static func render(_ r: RunResult) -> String {
        let s = r.summary
        func ms(_ x: Double) -> String { x.isNaN ? "-" : String(format: "%.1f", x * 1000) }
        func f(_ x: Double, _ digits: Int = 2) -> String { x.isNaN ? "-" : String(format: "%.\(digits)f", x) }
        var lines: [String] = []
        lines.append(
            "scenario \(r.scenario.name): \(r.scenario.model.name) on \(r.scenario.replicas) x \(r.scenario.gpu.name), seed \(r.scenario.seed)"
        )
        var costs = r.costModelLabel
        if r.costModelLabel == "analytic" { costs += " (roofline from specs; not a measured profile)" }
        if case .measured(let dir, let kernel, _, _, let loadStep, let eager) = ScenarioRunner.resolvedCostModel(r.scenario) {
            var correction: String
            switch ScenarioRunner.closedLoopSource(r.scenario) {
            case .off: correction = ", without its closed-loop correction"
            case .borrowed(let path): correction = ", closed-loop correction from \(path)"
            case .own: correction = ", \(eager ? "decode and eager" : "decode") steps corrected by its closed loop"
            case .absent, nil: correction = ""
            }
            var profile = dir
            if let target = ScenarioRunner.profileTarget(r.scenario) {
                let name = URL(fileURLWithPath: target).lastPathComponent
                if name != URL(fileURLWithPath: dir).lastPathComponent { profile += " -> \(name)" }
                // a load's step excess, where the profile measures one (its host_step / disk_step rows)
                if (try? StepProfile(directory: target))?.loadStepFits != nil {
                    correction += loadStep ? ", loads' step excess from its step rows" : ", without a load's step excess"
                }
            }
            costs += " (profile \(profile), LoRA kernel \(kernel)\(correction))"
        }
        lines.append("step costs: \(costs)")
        lines.append(
            "KV cache: \(r.blocksPerReplica) blocks of \(r.scenario.engine.blockSize) tokens per replica; \(r.catalogue.count) adapters, max_loras \(r.scenario.engine.maxLoras), max_cpu_loras \(r.scenario.engine.maxCPULoras)"
        )
        lines.append("")
        lines.append("requests      \(s.requests) (\(s.completed) completed, \(s.rejected) rejected)")
        lines.append("makespan      \(f(s.makespanSeconds)) s, \(s.iterations) iterations, GPU busy \(f(s.gpuBusyFraction * 100, 1)) %")
        lines.append(
            "throughput    \(f(s.requestsPerSecond)) req/s, \(f(s.outputTokensPerSecond, 0)) output tok/s, \(f(s.totalTokensPerSecond, 0)) total tok/s"
        )
        lines.append("preemptions   \(s.preemptions)")
        lines.append("")
        lines.append("latency (ms)        mean      p50      p90      p99      max")
        for (name, d) in [("TTFT", s.ttft), ("TPOT", s.tpot), ("E2E", s.e2e), ("queue wait", s.queueWait)] {
            let cols = [d.mean, d.p50, d.p90, d.p99, d.max].map { ms($0).leftPad(9) }.joined()
            lines.append(name.padding(toLength: 15, withPad: " ", startingAt: 0) + cols)
        }
        let starving = s.longestWaitByAdapter.enumerated().filter { !$0.element.isNaN }.sorted { $0.element > $1.element }.prefix(3)
        if !starving.isEmpty {
            lines.append("")
            lines.append("longest wait: " + starving.map { "\(r.catalogue[$0.offset].name) \(ms($0.element)) ms" }.joined(separator: ", "))
        }
        return lines.joined(separator: "\n")
    }
}

extension SummaryTable {
    /// `simulate --sensitivity`: each main metric with every step `percent` % cheaper, as
    /// predicted, and `percent` % dearer, and its elasticity (percent change per percent of step
    /// cost; `elasticity` in Validation.swift).
    static func renderSensitivity(point: RunSummary, cheaper: RunSummary, dearer: RunSummary, percent: Double) -> String {
        let metrics: [(ValidationMetric, String, Double)] = [
            (.requestsPerSecond, "req/s", 1), (.outputTokensPerSecond, "output tok/s", 1), (.ttftMean, "TTFT mean ms", 1000),
            (.ttftP50, "TTFT p50 ms", 1000), (.ttftP99, "TTFT p99 ms", 1000), (.tpotMean, "TPOT mean ms", 1000),
            (.e2eMean, "E2E mean ms", 1000), (.e2eP99, "E2E p99 ms", 1000), (.longestWait, "longest wait ms", 1000),
            (.modeChanges, "mode changes", 1),
        ]
        func f(_ x: Double) -> String { x.isNaN ? "-" : String(format: "%.2f", x) }
        let pct = String(format: "%.1f", percent)
        var lines = [
            "",
            "sensitivity to the step costs (every step \(pct) % cheaper / dearer; elasticity = % change per % of step cost)",
            "metric".padding(toLength: 18, withPad: " ", startingAt: 0)
                + ["-\(pct) %", "predicted", "+\(pct) %", "elasticity"].map { $0.leftPad(12) }.joined(),
        ]
        for (m, name, unit) in metrics {
            let cols = [m.value(cheaper) * unit, m.value(point) * unit, m.value(dearer) * unit].map { f($0).leftPad(12) }
            let e = elasticity(m, point: point, cheaper: cheaper, dearer: dearer, delta: percent / 100)
            lines.append(name.padding(toLength: 18, withPad: " ", startingAt: 0) + cols.joined() + f(e).leftPad(12))
        }
        return lines.joined(separator: "\n")
    }
}

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}
