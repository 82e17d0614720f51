import Foundation

/// A progress bar on stderr, shown only when stderr is a terminal and the run has lasted a second.
/// The wall clock lives here, in the CLI; the twin itself only knows simulated time.
final class ProgressBar: @unchecked Sendable {
    private let start = Date()
    private let enabled = isatty(STDERR_FILENO) != 0
    private var shown = false

    func update(_ fraction: Double) {
        guard enabled, Date().timeIntervalSince(start) > 1 else { return }
        shown = true
        let width = 40
        let filled = Int((fraction * Double(width)).rounded(.down))
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
        FileHandle.standardError.write("\r[\(bar)] \(Int(fraction * 100))%".data(using: .utf8)!)
    }

    func finish() {
        if shown { FileHandle.standardError.write("\r\u{1B}[K".data(using: .utf8)!) }
    }
}
