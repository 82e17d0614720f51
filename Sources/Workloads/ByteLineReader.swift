import Foundation

/// Reads a file line by line through one reusable buffer, never holding the whole file.
///
/// Lines are handed out as slices of the buffer (valid until the next call), without their
/// `\n` or `\r\n` terminator. Written on `read(2)` rather than `FileHandle` or `String` lines:
/// a 10-million-row trace must not become a whole-file `String` or an array of lines.
final class ByteLineReader {
    /// The file being read (for errors).
    let file: String
    /// The 1-based number of the line last returned.
    private(set) var lineNumber = 0
    /// A line longer than this is an error (a binary file, or a file with no newlines).
    static let maxLineBytes = 16 << 20

    private let fd: Int32
    private var buffer: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    private var start = 0
    private var end = 0
    private var scanned = 0
    private var atEOF = false

    /// Opens `path` for reading.
    init(path: String, bufferBytes: Int = 1 << 20) throws(WorkloadError) {
        file = path
        fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw WorkloadError(file: path, "cannot open: \(String(cString: strerror(errno)))") }
        capacity = max(bufferBytes, 64)
        buffer = .allocate(capacity: capacity)
    }

    deinit {
        close(fd)
        buffer.deallocate()
    }

    /// The next line, or nil at the end of the file. A UTF-8 byte-order mark on line 1 is dropped.
    func nextLine() throws(WorkloadError) -> UnsafeMutableBufferPointer<UInt8>? {
        while true {
            if scanned < end, let p = memchr(buffer + scanned, 10, end - scanned) {
                let newline = buffer.distance(to: p.assumingMemoryBound(to: UInt8.self))
                return take(upTo: newline, next: newline + 1)
            }
            scanned = end
            if atEOF { return start < end ? take(upTo: end, next: end) : nil }
            try fill()
        }
    }

    private func take(upTo lineEnd: Int, next: Int) -> UnsafeMutableBufferPointer<UInt8> {
        var s = start
        var e = lineEnd
        if e > s && buffer[e - 1] == 13 { e -= 1 }
        lineNumber += 1
        if lineNumber == 1 && e - s >= 3 && buffer[s] == 0xEF && buffer[s + 1] == 0xBB && buffer[s + 2] == 0xBF { s += 3 }
        start = next
        scanned = next
        return UnsafeMutableBufferPointer(start: buffer + s, count: e - s)
    }

    private func fill() throws(WorkloadError) {
        if start > 0 {
            let live = end - start
            if live > 0 { memmove(buffer, buffer + start, live) }
            scanned -= start
            end = live
            start = 0
        }
        if end == capacity {
            guard capacity < Self.maxLineBytes else {
                throw WorkloadError(
                    file: file, line: lineNumber + 1, "line longer than \(Self.maxLineBytes) bytes; is this a text trace file?")
            }
            let bigger = UnsafeMutablePointer<UInt8>.allocate(capacity: capacity * 2)
            bigger.update(from: buffer, count: end)
            buffer.deallocate()
            buffer = bigger
            capacity *= 2
        }
        while true {
            let n = read(fd, buffer + end, capacity - end)
            if n > 0 {
                end += n
                return
            }
            if n == 0 {
                atEOF = true
                return
            }
            if errno == EINTR { continue }
            throw WorkloadError(file: file, line: lineNumber + 1, "cannot read: \(String(cString: strerror(errno)))")
        }
    }
}
