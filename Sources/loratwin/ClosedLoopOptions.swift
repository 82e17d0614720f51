import ArgumentParser
import Twin
import Workloads

/// `--no-closed-loop` and `--closed-loop-from` of `simulate`, `validate` and `profile price`: which
/// closed loop corrects the decode-only steps of a measured cost model (docs/step-cost.md).
struct ClosedLoopOptions: ParsableArguments {
    @Flag(help: "Leave out the measured profile's closed-loop correction of decode-only steps (docs/step-cost.md).")
    var noClosedLoop = false

    @Option(
        help: "Correct decode-only steps with the closed loop of this profile directory instead of the profile's own (docs/step-cost.md).")
    var closedLoopFrom: String?

    @Flag(
        inversion: .prefixedNo,
        help: ArgumentHelp(
            "Scale the steps with prefill tokens by the closed loop's factor per token graph as well, or not "
                + "(default: the scenario's closed_loop_eager, itself off by default since lease 9da212b-1; docs/step-cost.md)."))
    var closedLoopEager: Bool?

    func validate() throws {
        if noClosedLoop && closedLoopFrom != nil { throw ValidationError("--no-closed-loop and --closed-loop-from exclude each other") }
        if noClosedLoop && closedLoopEager == true { throw ValidationError("--no-closed-loop and --closed-loop-eager exclude each other") }
    }

    /// `--closed-loop-from`, resolved against the working directory.
    var lender: String? { closedLoopFrom.map(resolvedPathFromWorkingDirectory) }

    /// The scenario with its measured cost model as the options ask (unchanged without them).
    func apply(_ s: Scenario) -> Scenario {
        if noClosedLoop { return ScenarioRunner.withoutClosedLoop(s) }
        let out = closedLoopEager.map { ScenarioRunner.withEagerCorrection(s, $0) } ?? s
        if let lender { return ScenarioRunner.withClosedLoop(out, from: lender) }
        return out
    }
}

/// `--load-step` / `--no-load-step` of `simulate` and `validate` (not of `profile price`, whose
/// steps order no load): add a load's excess to the step that orders it, or leave it out (the
/// scenario's `load_step` without either; docs/step-cost.md).
struct LoadStepOptions: ParsableArguments {
    @Flag(
        inversion: .prefixedNo,
        help: ArgumentHelp(
            "Add a load's excess to the step that orders it, or not (the profile's host_step / disk_step rows; "
                + "default: the scenario's load_step, itself on by default; docs/step-cost.md)."))
    var loadStep: Bool?

    /// The scenario with its measured cost model as the option asks (unchanged without it).
    func apply(_ s: Scenario) -> Scenario { loadStep.map { ScenarioRunner.withLoadStep(s, $0) } ?? s }
}
