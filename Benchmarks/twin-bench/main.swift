// Simulates a saturated multi-adapter scenario and reports simulated requests and events per
// wall-clock second (docs/performance.md). Usage: twin-bench [requests] [replicas] [analytic]
// (the cost model is the measured H100 profile when profiles/h100-llama2-7b is found from the
// working directory, else analytic; a third argument `analytic` forces the analytic model)
import Foundation
import Twin
import Workloads

let args = CommandLine.arguments
let requests = args.count > 1 ? Int(args[1]) ?? 1_000_000 : 1_000_000
let replicas = args.count > 2 ? Int(args[2]) ?? 1 : 1
let forceAnalytic = args.count > 3 && args[3] == "analytic"

// Llama-2-7B on H100s, 64 adapters of ranks 8-64 (Zipf 1.0), Azure-conversation-like lengths,
// Poisson arrivals at 1.5x what the replicas sustain (~10 req/s each under the analytic model).
let yaml = """
    name: bench-saturated
    seed: 1
    model: llama-2-7b
    gpu: h100-sxm-80gb
    replicas: \(replicas)
    engine: {max_num_seqs: 128, max_num_batched_tokens: 4096, max_loras: 8, max_cpu_loras: 32}
    workload:
      requests: \(requests)
      arrival: {kind: poisson, rate: \(15 * replicas)}
      popularity: {kind: zipf, exponent: 1.0}
      prompt_tokens: {kind: lognormal, mean: 1155, sigma: 0.99, min: 4, max: 3000}
      output_tokens: {kind: lognormal, mean: 211, sigma: 0.86, min: 1, max: 1000}
      adapters: {count: 64, ranks: {8: 1, 16: 1, 32: 1, 64: 1}}
    """
var scenario = try Scenario.parse(yaml, file: "<bench>", baseDirectory: ".")
if forceAnalytic { scenario.costModel = .analytic }
let t0 = Date()
let trace = try ScenarioRunner.makeTrace(scenario)
let t1 = Date()
let result = try ScenarioRunner.run(scenario, trace: trace)
let t2 = Date()
let sim = t2.timeIntervalSince(t1)
let s = result.summary
print("generated \(requests) requests in \(String(format: "%.2f", t1.timeIntervalSince(t0))) s")
print("cost model: \(result.costModelLabel)")
print(
    "simulated \(s.completed) completed requests, \(s.iterations) iterations, \(result.events) events in \(String(format: "%.2f", sim)) s wall"
)
print(
    String(
        format: "%.0f simulated requests/s, %.0f events/s, %.0f iterations/s", Double(requests) / sim, Double(result.events) / sim,
        Double(s.iterations) / sim))
print(
    String(
        format: "simulated makespan %.0f s (%.0fx faster than real time); %.2f req/s, GPU busy %.1f %%", s.makespanSeconds,
        s.makespanSeconds / sim, s.requestsPerSecond, s.gpuBusyFraction * 100))
let w = result.walks
print(
    "waiting-queue walks: \(w.run + w.skipped), \(w.skipped) skipped as fruitless; \(w.examined) entries examined by the \(w.run) run"
)
