#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Writes a file through a temporary file beside it and renames it into place on `commit()`,
/// so that a run killed half-way leaves no half-written output. Buffered by C stdio.
///
/// Written here rather than with Foundation's `Data.write(options: .atomic)` because the outputs
/// (per-iteration rows of million-request runs) are streamed and never held whole in memory.
public final class AtomicFileWriter {
    /// Final path.
    public let path: String
    private let temporaryPath: String
    private var handle: UnsafeMutablePointer<FILE>?

    /// Opens a temporary file next to `path`. Throws `OutputError` if it cannot be created.
    public init(path: String) throws(OutputError) {
        self.path = path
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { String(path[..<$0]) } ?? "."
        let base = slash.map { String(path[path.index(after: $0)...]) } ?? path
        temporaryPath = "\(dir)/.\(base).tmp-\(getpid())"
        guard let h = fopen(temporaryPath, "w") else {
            throw OutputError(path: path, "cannot create a file there: \(String(cString: strerror(errno)))")
        }
        handle = h
    }

    /// Appends text.
    public func write(_ s: String) {
        var s = s
        s.withUTF8 { buf in _ = fwrite(buf.baseAddress, 1, buf.count, handle) }
    }

    /// Flushes, closes and renames the file into place.
    public func commit() throws(OutputError) {
        guard let h = handle else { return }
        handle = nil
        let failed = fflush(h) != 0 || ferror(h) != 0
        fclose(h)
        if failed || rename(temporaryPath, path) != 0 {
            let reason = String(cString: strerror(errno))
            unlink(temporaryPath)
            throw OutputError(path: path, "could not write: \(reason)")
        }
    }

    /// Closes and deletes the temporary file (nothing appears at `path`).
    public func abort() {
        if let h = handle {
            fclose(h)
            handle = nil
            unlink(temporaryPath)
        }
    }

    deinit { abort() }
}

/// A failure to write an output file.
public struct OutputError: Error, CustomStringConvertible, Sendable {
    /// The file.
    public var path: String
    /// What went wrong.
    public var message: String
    /// Creates an error.
    public init(path: String, _ message: String) {
        self.path = path
        self.message = message
    }
    public var description: String { "\(path): \(message)" }
}
