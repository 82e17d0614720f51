import ArgumentParser
import Foundation
import Workloads

/// `loratwin trace`: make, look at and convert request traces (docs/trace-format.md).
struct TraceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Generate, inspect and convert request traces.",
        discussion: "Trace format: docs/trace-format.md.",
        subcommands: [TraceGenerateCommand.self, TraceInspectCommand.self, TraceConvertCommand.self]
    )
}

/// An error of a trace subcommand, printed as one line before exiting non-zero.
struct TraceCommandError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

extension TraceCommandError {
    /// Runs `body`, turning a `WorkloadError` into a one-line CLI error.
    static func reporting(_ body: () throws -> Void) throws {
        do { try body() } catch let e as WorkloadError { throw TraceCommandError(e.description) }
    }
}
