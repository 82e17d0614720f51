/// Reading and writing traces in the project's format (docs/trace-format.md).
public enum TraceFiles {
    /// Reads a trace file and its catalogue.
    public static func read(trace: String, catalogue: String?) throws(WorkloadError) -> Trace {
        throw WorkloadError(file: trace, "trace files are not readable yet (issue 4 in progress)")
    }
}
