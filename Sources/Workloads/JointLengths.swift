/// Prompt and output lengths resampled together from a real trace, so that their correlation
/// (long prompts with short outputs in a code-completion service, say) survives, which two
/// independent empirical distributions would lose.
public struct JointLengths: Sendable, Equatable, CustomStringConvertible {
    /// Prompt lengths of the source's requests.
    public let prompts: [Int]
    /// Output lengths of the same requests, in the same order.
    public let outputs: [Int]
    /// The trace the lengths came from, for provenance.
    public let source: String

    /// Pairs `prompts[i]` with `outputs[i]`; nil unless both have the same, non-zero, count.
    public init?(prompts: [Int], outputs: [Int], source: String) {
        guard !prompts.isEmpty, prompts.count == outputs.count else { return nil }
        self.prompts = prompts
        self.outputs = outputs
        self.source = source
    }

    /// Reads every request's lengths from the trace at `path` (format detected when `kind` is nil).
    public static func load(_ path: String, kind: TraceSourceKind? = nil) throws(WorkloadError) -> JointLengths {
        let reader = try TraceSource.open(path, kind: kind)
        var p: [Int] = []
        var o: [Int] = []
        while let row = try reader.next() {
            p.append(row.promptTokens)
            o.append(row.outputTokens)
        }
        guard let j = JointLengths(prompts: p, outputs: o, source: path) else {
            throw WorkloadError(file: path, "the trace has no requests to take lengths from")
        }
        return j
    }

    /// Draws one request's (prompt, output) lengths: a uniformly chosen source request's.
    public func draw(_ rng: RandomSource) -> (prompt: Int, output: Int) {
        let i = rng.uniformInt(prompts.count)
        return (prompts[i], outputs[i])
    }

    /// `empirical pairs from FILE (N requests)`.
    public var description: String { "empirical pairs from \(source) (\(prompts.count) requests)" }
}
