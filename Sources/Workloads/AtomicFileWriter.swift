import Foundation

/// Writes a file through a temporary file beside it, renamed over the target only when complete:
/// a reader never sees a half-written file, and a failed write leaves the old file as it was.
/// The target's folder is created when missing.
public final class AtomicFileWriter {
    /// The file that `commit()` creates or replaces.
    public let path: String
    private let temporaryPath: String
    private var fd: Int32
    private var pending: [UInt8] = []
    private var committed = false
    private static let flushBytes = 1 << 20

    /// Opens a temporary file in the target's folder.
    public init(path: String) throws(WorkloadError) {
        self.path = path
        let url = URL(fileURLWithPath: path)
        let folder = url.deletingLastPathComponent().path
        // A missing output folder is made, as `mkdir -p` would; failing that, mkstemp says why below.
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var template = Array((folder + "/." + url.lastPathComponent + ".tmp-XXXXXX").utf8CString)
        fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else {
            throw WorkloadError(file: path, "cannot create a temporary file in \(folder): \(String(cString: strerror(errno)))")
        }
        temporaryPath = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        pending.reserveCapacity(Self.flushBytes + 4096)
    }

    deinit {
        if !committed {
            close(fd)
            unlink(temporaryPath)
        }
    }

    /// Appends text.
    public func write(_ s: String) throws(WorkloadError) {
        pending.append(contentsOf: s.utf8)
        if pending.count >= Self.flushBytes { try flush() }
    }

    /// Appends bytes.
    func write(bytes: some Sequence<UInt8>) throws(WorkloadError) {
        pending.append(contentsOf: bytes)
        if pending.count >= Self.flushBytes { try flush() }
    }

    private func flush() throws(WorkloadError) {
        var offset = 0
        while offset < pending.count {
            let n = pending.withUnsafeBytes { systemWrite(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw WorkloadError(file: path, "cannot write: \(String(cString: strerror(errno)))")
            }
            offset += n
        }
        pending.removeAll(keepingCapacity: true)
    }

    /// Writes what is left and renames the temporary file over `path`.
    public func commit() throws(WorkloadError) {
        precondition(!committed, "AtomicFileWriter committed twice")
        try flush()
        guard fsync(fd) == 0, close(fd) == 0 else {
            throw WorkloadError(file: path, "cannot finish writing: \(String(cString: strerror(errno)))")
        }
        // mkstemp creates the file 0600; a trace is shared data.
        chmod(temporaryPath, 0o644)
        committed = true
        guard rename(temporaryPath, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporaryPath)
            throw WorkloadError(file: path, "cannot rename the finished file into place: \(reason)")
        }
    }
}

private func systemWrite(_ fd: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int { write(fd, bytes, count) }
