import ArgumentParser
import Foundation
import KernelProfiles
import Twin
import Workloads

struct ProfileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile",
        abstract: "Inspect measured GPU profiles.",
        subcommands: [Check.self, Price.self]
    )

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load a profile and print, per table, its grid, its fit and the fit's leave-one-out error.")

        @Argument(help: "Profile directory (meta.json and the CSV tables, docs/profile-format.md).")
        var directory: String

        func run() throws {
            let p: StepProfile
            do { p = try StepProfile(directory: directory) } catch { throw CLIError(error.description) }
            let m = p.meta
            print("profile \(directory): schema \(m.schemaVersion), \(m.gpu), \(m.dtype), model \(m.model ?? "-")")
            print(
                "kernel table measured \(m.fields["date"] ?? "-") at commit \(m.fields["commit"] ?? "-"); torch \(m.fields["torch"] ?? "-"), triton \(m.fields["triton"] ?? "-"), driver \(m.fields["driver"] ?? "-")"
            )
            if m.schemaVersion >= 2, let data = FileManager.default.contents(atPath: directory + "/meta.json"),
                let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                let step = obj["step_profile"] as? [String: Any]
            {
                print("step tables measured \(step["date"] ?? "-") at commit \(step["commit"] ?? "-") by: \(step["command"] ?? "-")")
            }
            if let sizes = m.graphSizes { print("decode CUDA graphs (sequences): " + sizes.map(String.init).joined(separator: ",")) }
            if let sizes = m.tokenGraphSizes {
                let list = sizes.map(String.init).joined(separator: ",")
                print("eager token graphs (tokens; a step up to the largest is priced at the next size up): " + list)
            }
            print("")
            func axes(_ g: GridInterpolator, _ names: [String]) -> String {
                zip(names, g.axes).map { "\($0) \($1.map { fmt($0) }.joined(separator: ","))" }.joined(separator: "; ")
            }
            func line(_ table: String, _ grid: String, _ f: LinearFit) {
                let model = zip(f.features, f.coefficients).map { "\(fmtCoef($1))*\($0)" }.joined(separator: " + ")
                print(table)
                if !grid.isEmpty { print("  grid   \(grid)") }
                print("  fit    us = \(model)   (\(f.points) points)")
                print("  error  leave-one-out RMS \(fmtPct(f.leaveOneOutPercent)), max \(fmtPct(f.leaveOneOutMaxPercent))")
            }
            line("step_decode.csv (decode-only, graph)", axes(p.decodeGrid, ["seqs", "context/seq"]), p.decodeFit)
            if !p.decodeChecks.isEmpty {
                printDecodeVaried(p)
            }
            line(
                "step_tokens.csv (eager, by tokens; fit above the grid)",
                "tokens " + p.tokenCurve.xs.map { fmt($0) }.joined(separator: ","), p.tokenFit)
            line("step_attention.csv (eager attention over the token curve; error of the whole eager step)", "", p.attentionFit)
            for (k, g) in p.loraGrids.sorted(by: { $0.key < $1.key }) {
                line("lora_step.csv kernel \(k)", axes(g, ["tokens", "segments", "rank"]), p.loraFits[k]!)
            }
            for (k, g) in p.loraTokenGrids.sorted(by: { $0.key < $1.key }) {
                print("lora_token.csv kernel \(k) (LoRA in token graphs with a prefill chunk; read on the grid)")
                print("  grid   " + axes(g, ["tokens", "segments", "rank"]))
            }
            for (k, f) in p.eagerLoraFits.sorted(by: { $0.key < $1.key }) {
                line("step_mixed.csv kernel \(k) (LoRA in eager steps over the eager model; error of the whole step)", "", f)
            }
            line("adapter_load.csv host->GPU", "", p.hostToGPUFit)
            line("adapter_load.csv disk->host", "", p.diskToHostFit)
            if let busy = p.busyLoadFits {
                line("adapter_load.csv host->GPU while steps run (the twin's load time)", "", busy.host)
                line("adapter_load.csv disk->GPU while steps run (the twin's load time)", "", busy.disk)
            }
            if let step = p.loadStepFits {
                line("adapter_load.csv host load's excess on the step that orders it", "", step.host)
                line("adapter_load.csv disk load's excess on the step that orders it", "", step.disk)
            }
            for (op, f) in p.mergeFits.sorted(by: { $0.key < $1.key }) { line("merge.csv \(op)", "", f) }
            line("host_overhead.csv", "", p.hostOverheadFit)
            try printClosedLoop(p)
            print("")
            print("spread of repeated timings (log-normal sigma): decode \(fmtCoef(p.decodeLogSigma)), eager \(fmtCoef(p.eagerLogSigma))")
            let eager = p.eagerLoraFits.keys.sorted().map { "eager+LoRA \($0) \(fmtCoef(p.eagerModelLogSigma(kernel: $0)))" }
            print(
                "model error (sigma, from leave-one-out): decode grid \(fmtCoef(p.decodeModelLogSigma))"
                    + (eager.isEmpty ? "" : ", " + eager.joined(separator: ", ")))
        }
    }
}

/// The `closed_loop/<variant>/` blocks of `profile check`: per CUDA graph, the closed loop's
/// decode-only steps and the factor the twin applies to them, with the factors of the even and the
/// odd rows apart (how stable the factor is within one measurement) and, for a closed loop of
/// several workload seeds (`--seeds`), each seed's (how much it depends on the batches drawn).
private func printClosedLoop(_ p: StepProfile) throws {
    let root = p.directory + "/closed_loop"
    guard let variants = try? FileManager.default.contentsOfDirectory(atPath: root) else { return }
    let model = ModelSpec.builtIn[p.meta.model ?? ""] ?? .llama2_7b
    for variant in variants.sorted() where DecodeCorrection.exists(profile: p.directory, variant: variant) {
        // steps without adapters are priced alike under any kernel: take the first for `none`
        let kernel = variant == "none" ? (p.loraGrids.keys.sorted().first ?? "sgmv") : variant
        let full: DecodeCorrection
        let halves: [DecodeCorrection]
        var bySeed: [(Int, DecodeCorrection)] = []
        do {
            full = try MeasuredCostModel.fitCorrection(profile: p, kernel: kernel, model: model, variant: variant)
            halves = try [0, 1].map { half throws(WorkloadError) in
                try MeasuredCostModel.fitCorrection(profile: p, kernel: kernel, model: model, variant: variant, half: half)
            }
            let seeds = try MeasuredCostModel.closedLoopSeeds(profile: p, variant: variant)
            if seeds.count > 1 {
                bySeed = try seeds.map { seed throws(WorkloadError) in
                    (seed, try MeasuredCostModel.fitCorrection(profile: p, kernel: kernel, model: model, variant: variant, seed: seed))
                }
            }
        } catch { throw CLIError(error.description) }
        print(
            "closed_loop/\(variant)/steps.csv (decode-only steps of gpu/closed_loop.py: measured / priced by graph; the factor scales them)"
        )
        for g in full.steps.keys.sorted() {
            let f =
                full.factors[g].map { "factor " + fmtCoef($0) }
                ?? "no factor (under \(DecodeCorrection.minimumSteps) steps: \(fmtCoef(full.factor(graph: g))))"
            let h = halves.map { $0.factors[g].map { fmtCoef($0) } ?? "-" }.joined(separator: " / ")
            let seeds =
                bySeed.isEmpty
                ? ""
                : "; seeds " + bySeed.map { String($0.0) }.joined(separator: " / ") + ": "
                    + bySeed.map { $0.1.factors[g].map { fmtCoef($0) } ?? "-" }.joined(separator: " / ")
            print("  graph \(g): \(full.steps[g]!) steps, \(f); even / odd rows \(h)\(seeds)")
        }
        print(
            "  graphs without a factor: \(fmtCoef(full.belowFactor)) below the smallest graph with one (the median of"
                + " the factors), 1 otherwise")
        if !full.eagerSteps.isEmpty {
            print(
                "  steps with prefill tokens, by token graph (0: beyond them), used by default "
                    + "(closed_loop_eager: false / --no-closed-loop-eager leaves them out):")
            for g in full.eagerSteps.keys.sorted() {
                let f =
                    full.eagerFactors[g].map { "factor " + fmtCoef($0) }
                    ?? "no factor (under \(DecodeCorrection.minimumSteps) steps, median \(fmtCoef(full.eagerMedians[g]!)): "
                    + "\(fmtCoef(full.eagerFactor(tokenGraph: g))))"
                let h = halves.map { $0.eagerFactors[g].map { fmtCoef($0) } ?? "-" }.joined(separator: " / ")
                print("  token graph \(g): \(full.eagerSteps[g]!) steps, \(f); even / odd rows \(h)")
            }
        }
    }
}

/// The `step_decode_varied` block of `profile check`: the fitted tail model, then every row's
/// measured and modelled step, the skewed rows (fitted) and the uniform ones (a check) apart.
private func printDecodeVaried(_ p: StepProfile) {
    let skewed = p.decodeChecks.filter(\.isSkewed).count
    if let f = p.decodeTailFit {
        print("step_decode_varied.csv (fitted: tail of skewed batches; rows with uniform contexts are a check)")
        print(
            (p.decodeTailIsLongestProgram
                ? "  tail   us = \(fmtCoef(f.coefficients[0]))*max/splits + \(fmtCoef(f.coefficients[1]))*work (no row at a split graph)"
                : "  tail   us = work + \(fmtCoef(f.coefficients[0]))*(max-mean)/splits"
                    + (f.coefficients.count == 2 ? " (\(fmtCoef(f.coefficients[1])) where splits > 1)" : ""))
                + "   (\(f.points) rows with max > mean)"
        )
        print("  error  leave-one-out RMS \(fmtPct(f.leaveOneOutPercent)), max \(fmtPct(f.leaveOneOutMaxPercent)) (floor + tail)")
    } else {
        print(
            "step_decode_varied.csv (not fitted: \(skewed) rows with max > mean (3 needed) or a negative coefficient; "
                + "tail from the one-sequence rows)")
    }
    var squares = (fitted: 0.0, check: 0.0)
    for c in p.decodeChecks {
        let model = p.decodeMicroseconds(seqs: c.seqs, contextTokens: c.contextTokens, maxContext: c.maxContext)
        let err = 100 * (model - c.microseconds) / c.microseconds
        if c.isSkewed { squares.fitted += err * err } else { squares.check += err * err }
        let role = c.isSkewed && p.decodeTailFit != nil ? "fitted" : "check"
        print(
            "  \(c.layout.padding(toLength: 9, withPad: " ", startingAt: 0)) seqs \(c.seqs) max \(c.maxContext): measured "
                + "\(String(format: "%.0f", c.microseconds)) us, model \(String(format: "%.0f", model)) us (\(fmtPct(err)), \(role))")
    }
    let uniform = p.decodeChecks.count - skewed
    let rms = { (sum: Double, n: Int) in n > 0 ? fmtPct((sum / Double(n)).squareRoot()) : "-" }
    print(
        "  error  RMS \(rms(squares.fitted + squares.check, p.decodeChecks.count)): max > mean \(rms(squares.fitted, skewed)), "
            + "uniform \(rms(squares.check, uniform))")
}

private func fmt(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e15 ? String(Int(x)) : String(format: "%g", x) }
private func fmtCoef(_ x: Double) -> String { String(format: "%.4g", x) }
private func fmtPct(_ x: Double) -> String { x.isNaN ? "-" : String(format: "%.2f %%", x) }
