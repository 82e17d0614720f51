import ArgumentParser
import Foundation
import Twin
import Workloads

struct SimulateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Simulate a scenario and print its metrics.",
        discussion: "With no scenario file, runs the built-in default (see --print-default). Format: docs/scenario.md."
    )

    @Argument(help: "Scenario YAML file (default: the built-in scenario).")
    var scenario: String?

    @Option(help: "Seed for every random choice (overrides the scenario's).")
    var seed: UInt64?

    @Option(name: .shortAndLong, help: "Directory for requests.csv, iterations.csv and summary.json.")
    var output: String?

    @Option(help: "Write the per-iteration batch log (JSONL, docs/engine-model.md) to this file.")
    var batchLog: String?

    @Flag(help: "Print the built-in default scenario and exit.")
    var printDefault = false

    @Flag(help: "Print the summary as JSON instead of a table.")
    var json = false

    @OptionGroup var step: SensitivityOption

    @OptionGroup var closedLoop: ClosedLoopOptions
    @OptionGroup var loadStep: LoadStepOptions

    var sensitivity: Double? { step.sensitivity }

    func validate() throws {
        if sensitivity != nil && json { throw ValidationError("--sensitivity prints a table; leave out --json") }
    }

    func run() throws {
        if printDefault {
            print(DefaultScenario.yaml, terminator: "")
            return
        }
        do {
            var s = try loadScenario()
            if let seed { s.seed = seed }
            s = loadStep.apply(closedLoop.apply(s))
            let trace = try ScenarioRunner.makeTrace(s)
            let bar = ProgressBar()
            let result = try ScenarioRunner.run(
                s, trace: trace, outputs: .init(directory: output, batchLog: batchLog), progress: bar.update)
            bar.finish()
            if json {
                print(ScenarioRunner.summaryJSON(result), terminator: "")
            } else {
                print(SummaryTable.render(result))
                if let output { print("wrote \(output)/requests.csv, iterations.csv, summary.json") }
                if let pct = sensitivity {
                    let (cheaper, dearer) = try ScenarioRunner.bracket(s, trace: trace, delta: pct / 100)
                    print(SummaryTable.renderSensitivity(point: result.summary, cheaper: cheaper, dearer: dearer, percent: pct))
                }
            }
        } catch let e as WorkloadError {
            throw CLIError(e.description)
        }
    }

    private func loadScenario() throws -> Scenario {
        guard let path = scenario else { return try DefaultScenario.scenario() }
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw CLIError("\(path): cannot read the scenario file (\(error.localizedDescription))")
        }
        let dir = (path as NSString).deletingLastPathComponent
        return try Scenario.parse(text, file: path, baseDirectory: dir.isEmpty ? "." : dir)
    }
}

/// An error the CLI prints as one line before exiting non-zero.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// `--sensitivity PCT` of `simulate` and `validate`: also simulate with every step PCT percent
/// cheaper and dearer (`ScaledCostModel`) and report each metric's elasticity.
struct SensitivityOption: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Also simulate with every step PCT percent cheaper and dearer, and report how far each metric moves (its elasticity: percent change per percent of step cost), that is how much a step-cost calibration off by PCT percent would move the prediction; validate also gives the step-cost error that alone would explain each miss.",
            valueName: "PCT"))
    var sensitivity: Double?

    func validate() throws {
        if let sensitivity, !(sensitivity > 0 && sensitivity < 50) {
            throw ValidationError("--sensitivity: a percentage above 0 and below 50, got \(sensitivity)")
        }
    }
}
