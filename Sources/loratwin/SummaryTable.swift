import Foundation
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
        if case .measured(let dir, let kernel) = ScenarioRunner.resolvedCostModel(r.scenario) {
            costs += " (profile \(dir), LoRA kernel \(kernel))"
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

extension String {
    func leftPad(_ n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}
