import ArgumentParser
import Foundation
import KernelProfiles
import Twin
import Workloads

/// Which steps `--sensitivity` scales: all, the decode-only ones, or those with prefill tokens.
enum SensitivityKind: String, CaseIterable {
    case all, decode, eager

    /// The CSV column and JSON key of this kind's elasticity.
    var key: String { self == .all ? "elasticity" : "elasticity_\(rawValue)" }
}

/// One run's elasticities, by the steps scaled and the metric.
typealias Elasticities = [SensitivityKind: [ValidationMetric: Double]]

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Simulate every recorded live run and compare the twin with it by SMAPE.",
        discussion:
            "Each run folder holds scenario.yaml (with its trace), requests.csv, iterations.csv and run.json (docs/live-run-format.md). Method: docs/validation.md."
    )

    @Argument(help: "Folder of run folders, or one run folder.")
    var runs = "traces/live"

    @Option(help: "Cost every run with this measured profile (overrides the scenarios' cost_model).")
    var profile: String?

    @OptionGroup var closedLoop: ClosedLoopOptions
    @OptionGroup var loadStep: LoadStepOptions

    @Option(help: "LoRA kernel table of the profile to use with --profile.")
    var kernel = "sgmv"

    @Option(help: "Write the comparison (one row per run and metric) as CSV, or JSON if the name ends in .json.")
    var output: String?

    @Option(help: "YAML of metric: largest allowed mean SMAPE in percent; exit 1 if any is exceeded.")
    var check: String?

    @Option(help: "Only the runs whose scenario names this GPU (e.g. h200; matches the GPU's name or its prefix).")
    var gpu: String?

    @Option(
        help:
            "Also run N replicas with step costs drawn from the profile's spread, and report p5-p95 bands and how often the live value falls inside."
    )
    var intervals: Int?

    @Flag(
        help:
            "With --intervals: draw only the spread of repeated timings, without the per-replica model error (the calibration tables' leave-one-out error)."
    )
    var timingSpreadOnly = false

    @OptionGroup var step: SensitivityOption

    var sensitivity: Double? { step.sensitivity }

    func run() throws {
        let folders = try runFolders()
        guard !folders.isEmpty else { throw CLIError("\(runs): no run folders (a folder with scenario.yaml and requests.csv)") }
        var rows: [ValidationRow] = []
        var bands: [[ValidationMetric: PredictionBand]] = []
        var elasticities: [Elasticities] = []
        for dir in folders {
            do {
                guard let (row, band, elast) = try validate(dir) else { continue }
                rows.append(row)
                if let band { bands.append(band) }
                if let elast { elasticities.append(elast) }
            } catch let e as WorkloadError { throw CLIError(e.description) } catch let e as ProfileError {
                throw CLIError(e.description)
            }
        }
        guard !rows.isEmpty else { throw CLIError("\(runs): no run on GPU '\(gpu ?? "")'") }
        print(render(rows))
        if intervals != nil { print(renderCoverage(rows, bands)) }
        if sensitivity != nil { print(renderSensitivity(rows, elasticities)) }
        if let output {
            try write(rows, intervals != nil ? bands : nil, sensitivity != nil ? elasticities : nil, to: output)
        }
        if let check { try enforce(rows, thresholds: check) }
    }

    private func runFolders() throws -> [String] {
        let fm = FileManager.default
        if fm.fileExists(atPath: runs + "/scenario.yaml") { return [runs] }
        guard let names = try? fm.contentsOfDirectory(atPath: runs) else { throw CLIError("\(runs): cannot list the folder") }
        return names.sorted().map { runs + "/" + $0 }.filter {
            fm.fileExists(atPath: $0 + "/scenario.yaml") && fm.fileExists(atPath: $0 + "/requests.csv")
        }
    }

    /// The run's row, bands (`--intervals`) and elasticities (`--sensitivity`); nil when `--gpu`
    /// leaves it out.
    private func validate(_ dir: String) throws -> (ValidationRow, [ValidationMetric: PredictionBand]?, Elasticities?)? {
        let path = dir + "/scenario.yaml"
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch { throw CLIError("\(path): cannot read") }
        var s = try Scenario.parse(text, file: path, baseDirectory: dir)
        if let gpu, s.gpu.name != gpu, !s.gpu.name.hasPrefix(gpu) { return nil }
        if let profile {
            s.costModel = .measured(profile: resolvedPathFromWorkingDirectory(profile), kernel: kernel)
        }
        s = loadStep.apply(closedLoop.apply(s))
        let trace = try ScenarioRunner.makeTrace(s)
        let liveRun = try LiveRun(directory: dir, catalogue: trace.catalogue)
        // A replay stopped early is compared with a simulation stopped at the same time.
        let predicted = try ScenarioRunner.run(s, trace: trace, horizon: liveRun.stoppedAtSeconds ?? .infinity)
        let live = liveRun.summary(adapterCount: trace.catalogue.count, replicas: s.replicas)
        let arrivals = trace.requests.map(\.arrivalSeconds)
        let span = (arrivals.max() ?? 0) - (arrivals.min() ?? 0)
        let offered = span > 0 ? Double(trace.requests.count) / span : .infinity
        var row = ValidationRow(
            scenario: s.name, directory: dir, costModel: predicted.costModelLabel, offeredRequestsPerSecond: offered,
            live: live, predicted: predicted.summary)
        row.gpu = s.gpu.name
        let horizon = liveRun.stoppedAtSeconds ?? .infinity
        var band: [ValidationMetric: PredictionBand]? = nil
        if let n = intervals {
            let replicas = try ScenarioRunner.sampledRuns(s, trace: trace, count: n, horizon: horizon, modelError: !timingSpreadOnly)
            band = Dictionary(uniqueKeysWithValues: ValidationMetric.allCases.map { ($0, PredictionBand($0, replicas)) })
        }
        var elast: Elasticities? = nil
        if let pct = sensitivity {
            let delta = pct / 100
            var e: Elasticities = [:]
            // All steps, then decode-only steps alone, then steps with prefill tokens alone.
            let kinds: [(SensitivityKind, (Double) -> StepScale)] = [
                (.all, StepScale.all), (.decode, { StepScale(decode: $0, eager: 1) }), (.eager, { StepScale(decode: 1, eager: $0) }),
            ]
            for (kind, scale) in kinds {
                let (cheaper, dearer) = try ScenarioRunner.bracket(s, trace: trace, delta: delta, horizon: horizon, scale: scale)
                for m in ValidationMetric.allCases {
                    e[kind, default: [:]][m] = elasticity(m, point: predicted.summary, cheaper: cheaper, dearer: dearer, delta: delta)
                }
            }
            elast = e
        }
        return (row, band, elast)
    }

    private static let sensitivityShown: [ValidationMetric] = [
        .outputTokensPerSecond, .ttftMean, .ttftP50, .ttftP99, .e2eMean, .e2eP99, .longestWait, .modeChanges,
    ]

    /// Per run the elasticity of the main metrics to all steps, the TTFT mean's to the decode-only
    /// steps and to the steps with prefill tokens apart, and for TTFT and E2E means the step-cost
    /// error that alone would explain the run's SMAPE (SMAPE / |elasticity|).
    private func renderSensitivity(_ rows: [ValidationRow], _ els: [Elasticities]) -> String {
        func f(_ x: Double?) -> String { x.map { $0.isNaN ? "-" : String(format: "%.2f", $0) } ?? "-" }
        func explaining(_ r: ValidationRow, _ e: Elasticities, _ m: ValidationMetric) -> Double {
            guard let el = e[.all]?[m], !el.isNaN, abs(el) > 1e-9 else { return .nan }
            return r.error(m) / abs(el)
        }
        let nameWidth = max(30, (rows.map { $0.scenario.count }.max() ?? 0) + 2)
        let heads = ["tok/s", "TTFTm", "TTFT50", "TTFT99", "E2Em", "E2E99", "wait", "modes", "TTFTm:d", "TTFTm:e", "stepTTFT", "stepE2E"]
        var out = [
            "",
            String(
                format:
                    "Sensitivity to the step costs (steps %.1f %% cheaper and dearer): elasticity = %% change of the prediction per %% of step cost, all steps scaled; TTFTm:d, TTFTm:e = TTFT mean's with only the decode-only steps or only the steps with prefill tokens scaled; stepTTFT, stepE2E = the step-cost error (%%) that alone would explain the TTFT and E2E mean SMAPE",
                sensitivity ?? 0),
            "scenario".padding(toLength: nameWidth, withPad: " ", startingAt: 0) + heads.map { $0.leftPad(9) }.joined(),
        ]
        var sums = [Double](repeating: 0, count: heads.count)
        var counts = [Int](repeating: 0, count: heads.count)
        for (r, e) in zip(rows, els) {
            let values =
                Self.sensitivityShown.map { e[.all]?[$0] ?? .nan } + [e[.decode]?[.ttftMean] ?? .nan, e[.eager]?[.ttftMean] ?? .nan]
                + [explaining(r, e, .ttftMean), explaining(r, e, .e2eMean)]
            for (i, v) in values.enumerated() where !v.isNaN {
                sums[i] += v
                counts[i] += 1
            }
            out.append(r.scenario.padding(toLength: nameWidth, withPad: " ", startingAt: 0) + values.map { f($0).leftPad(9) }.joined())
        }
        let means = zip(sums, counts).map { $1 > 0 ? $0 / Double($1) : .nan }
        out.append(
            "mean (\(rows.count))".padding(toLength: nameWidth, withPad: " ", startingAt: 0) + means.map { f($0).leftPad(9) }.joined())
        return out.joined(separator: "\n")
    }

    private func renderCoverage(_ rows: [ValidationRow], _ bands: [[ValidationMetric: PredictionBand]]) -> String {
        let source = timingSpreadOnly ? "timing spread" : "timing spread and model error"
        var out = ["", "p5-p95 prediction bands (\(intervals ?? 0) sampled replicas per run; \(source)): live value inside?"]
        var byMetric: [ValidationMetric: (inside: Int, total: Int)] = [:]
        for (r, b) in zip(rows, bands) {
            var cells: [String] = []
            for m in Self.shown {
                guard let band = b[m], !band.low.isNaN, let live = r.live[m], !live.isNaN else { continue }
                let hit = band.contains(live)
                byMetric[m, default: (0, 0)].total += 1
                if hit { byMetric[m, default: (0, 0)].inside += 1 }
                cells.append("\(m.rawValue) \(hit ? "in" : "out")")
            }
            out.append("  \(r.scenario): " + cells.joined(separator: ", "))
        }
        // Per metric too: a band can be right on average and wrong for one metric every time.
        out.append(
            "by metric: "
                + Self.shown.compactMap { m in byMetric[m].map { "\(m.rawValue) \($0.inside)/\($0.total)" } }.joined(
                    separator: ", "))
        let inside = byMetric.values.reduce(0) { $0 + $1.inside }
        let total = byMetric.values.reduce(0) { $0 + $1.total }
        out.append(
            String(
                format: "live inside the band: %d of %d (run, metric) pairs, %.0f %%", inside, total,
                total > 0 ? 100 * Double(inside) / Double(total) : 0))
        return out.joined(separator: "\n")
    }

    private static let shown: [ValidationMetric] = [
        .requestsPerSecond, .outputTokensPerSecond, .ttftMean, .ttftP50, .ttftP99, .tpotMean, .tpotP50, .tpotP99,
        .e2eMean, .e2eP50, .e2eP99, .longestWait, .preemptions, .modeChanges, .iterations, .decodeStepMean, .mixedStepMean,
    ]

    private func render(_ rows: [ValidationRow]) -> String {
        let headers = [
            "req/s", "tok/s", "TTFTm", "TTFT50", "TTFT99", "TPOTm", "TPOT50", "TPOT99", "E2Em", "E2E50", "E2E99", "wait", "preempt",
            "modes", "iters", "decStep", "mixStep",
        ]
        func pct(_ x: Double) -> String { x.isNaN ? "-" : String(format: "%.1f", x) }
        let nameWidth = max(30, (rows.map { $0.scenario.count }.max() ?? 0) + 2)
        var out = ["SMAPE % by metric (twin vs live); * = saturated run"]
        out.append(
            "scenario".padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "cost     " + headers.map { $0.leftPad(8) }.joined())
        for r in rows {
            let name = (r.scenario + (r.saturated ? " *" : "")).padding(toLength: nameWidth, withPad: " ", startingAt: 0)
            out.append(
                name + r.costModel.padding(toLength: 9, withPad: " ", startingAt: 0)
                    + Self.shown.map { pct(r.error($0)).leftPad(8) }.joined())
        }
        var groups = [
            ("all runs", rows), ("saturated", rows.filter(\.saturated)), ("below saturation", rows.filter { !$0.saturated }),
        ]
        let gpus = Array(Set(rows.map(\.gpu))).sorted()
        if gpus.count > 1 {
            for g in gpus {
                let on = rows.filter { $0.gpu == g }
                groups += [("\(g)", on), ("\(g), saturated", on.filter(\.saturated)), ("\(g), below sat.", on.filter { !$0.saturated })]
            }
        }
        for (label, group) in groups where !group.isEmpty {
            out.append(
                "mean, \(label) (\(group.count))".padding(toLength: nameWidth, withPad: " ", startingAt: 0) + "         "
                    + Self.shown.map { pct(meanError(group, $0)).leftPad(8) }.joined())
        }
        return out.joined(separator: "\n")
    }

    /// Writes the rows, with `--intervals` each metric's p5-p95 band of the sampled replicas and
    /// its median (CSV columns `band_p5`, `band_p50`, `band_p95`; JSON `p5`, `p50`, `p95`), and with
    /// `--sensitivity` its elasticities (CSV columns and JSON keys `elasticity`, all steps scaled;
    /// `elasticity_decode` and `elasticity_eager`, one kind of step), whole or not at all.
    private func write(
        _ rows: [ValidationRow], _ bands: [[ValidationMetric: PredictionBand]]?, _ els: [Elasticities]?, to path: String
    ) throws {
        let text = path.hasSuffix(".json") ? Self.json(rows, bands, els) : Self.csv(rows, bands, els)
        do {
            let w = try AtomicFileWriter(path: path)
            try w.write(text)
            try w.commit()
        } catch { throw CLIError(error.description) }
    }

    private static func num(_ x: Double?) -> String { x.map { $0.isNaN ? "" : "\($0)" } ?? "" }
    private static func jsonNum(_ x: Double?) -> String { x.map { $0.isNaN ? "null" : "\($0)" } ?? "null" }

    private static func csv(
        _ rows: [ValidationRow], _ bands: [[ValidationMetric: PredictionBand]]?, _ els: [Elasticities]?
    ) -> String {
        var out =
            "scenario,saturated,cost_model,metric,live,predicted,smape_percent" + (bands != nil ? ",band_p5,band_p50,band_p95" : "")
            + (els != nil ? "," + SensitivityKind.allCases.map(\.key).joined(separator: ",") : "") + "\n"
        for (i, r) in rows.enumerated() {
            for m in ValidationMetric.allCases {
                out +=
                    "\(r.scenario),\(r.saturated),\(r.costModel),\(m.rawValue),\(num(r.live[m])),\(num(r.predicted[m])),\(num(r.error(m)))"
                if let b = bands?[i][m] {
                    out += ",\(num(b.low)),\(num(b.median)),\(num(b.high))"
                } else if bands != nil {
                    out += ",,,"
                }
                if let els { out += SensitivityKind.allCases.map { ",\(num(els[i][$0]?[m]))" }.joined() }
                out += "\n"
            }
        }
        return out
    }

    private static func json(
        _ rows: [ValidationRow], _ bands: [[ValidationMetric: PredictionBand]]?, _ els: [Elasticities]?
    ) -> String {
        var items: [String] = []
        for (i, r) in rows.enumerated() {
            let metrics = ValidationMetric.allCases.map { m -> String in
                let band =
                    bands.map { b in
                        ", \"p5\": \(jsonNum(b[i][m]?.low)), \"p50\": \(jsonNum(b[i][m]?.median)), \"p95\": \(jsonNum(b[i][m]?.high))"
                    } ?? ""
                let el = els.map { e in SensitivityKind.allCases.map { ", \"\($0.key)\": \(jsonNum(e[i][$0]?[m]))" }.joined() } ?? ""
                return
                    "\"\(m.rawValue)\": {\"live\": \(jsonNum(r.live[m])), \"predicted\": \(jsonNum(r.predicted[m])), \"smape\": \(jsonNum(r.error(m)))\(band)\(el)}"
            }
            items.append(
                "  {\"scenario\": \"\(r.scenario)\", \"saturated\": \(r.saturated), \"cost_model\": \"\(r.costModel)\", \"metrics\": {\(metrics.joined(separator: ", "))}}"
            )
        }
        return "[\n" + items.joined(separator: ",\n") + "\n]\n"
    }

    private func enforce(_ rows: [ValidationRow], thresholds path: String) throws {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch { throw CLIError("\(path): cannot read") }
        var failures: [String] = []
        do {
            let y = try YAMLReader.parse(text, file: path)
            try y.checkKeys(Set(ValidationMetric.allCases.map(\.rawValue)))
            for m in ValidationMetric.allCases {
                guard let limit = try y.double(m.rawValue, min: 0) else { continue }
                let e = meanError(rows, m)
                if !e.isNaN && e > limit {
                    failures.append(String(format: "%@: mean SMAPE %.2f %% over the threshold %.2f %%", m.rawValue, e, limit))
                }
            }
        } catch { throw CLIError(error.description) }
        if !failures.isEmpty {
            print("check failed (\(path)):\n  " + failures.joined(separator: "\n  "))
            throw ExitCode(1)
        }
        print("check passed (\(path))")
    }
}
