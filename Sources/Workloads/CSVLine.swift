import Foundation

/// Splits one CSV line into fields, as slices of the line itself.
///
/// Fields are separated by commas; surrounding spaces and tabs are trimmed (as Python's reader of
/// the same files does after `strip()`). A field in double quotes may hold commas, and `""` for a
/// quote; it is unescaped in place, which only ever shortens it. Quoted fields cannot span lines.
enum CSVLine {
    /// Splits `line` into `fields` (cleared first). Returns nil, or what is wrong with the line.
    static func split(_ line: UnsafeMutableBufferPointer<UInt8>, into fields: inout [UnsafeBufferPointer<UInt8>]) -> String? {
        fields.removeAll(keepingCapacity: true)
        guard let base = line.baseAddress else {
            fields.append(UnsafeBufferPointer(start: nil, count: 0))
            return nil
        }
        let n = line.count
        var i = 0
        while true {
            while i < n && (line[i] == 32 || line[i] == 9) { i += 1 }
            if i < n && line[i] == 34 {
                // Quoted: copy the content down over itself, turning "" into ".
                var r = i + 1
                var w = i
                var closed = false
                while r < n {
                    if line[r] == 34 {
                        if r + 1 < n && line[r + 1] == 34 {
                            line[w] = 34
                            w += 1
                            r += 2
                            continue
                        }
                        closed = true
                        r += 1
                        break
                    }
                    line[w] = line[r]
                    w += 1
                    r += 1
                }
                guard closed else { return "a quoted field is not closed on this line" }
                fields.append(UnsafeBufferPointer(start: base + i, count: w - i))
                while r < n && (line[r] == 32 || line[r] == 9) { r += 1 }
                if r == n { return nil }
                guard line[r] == 44 else { return "unexpected text after a quoted field" }
                i = r + 1
                continue
            }
            var j = i
            while j < n && line[j] != 44 { j += 1 }
            var e = j
            while e > i && (line[e - 1] == 32 || line[e - 1] == 9) { e -= 1 }
            fields.append(UnsafeBufferPointer(start: base + i, count: e - i))
            if j == n { return nil }
            i = j + 1
        }
    }

    /// Whether every byte of `line` is a space or tab (a blank line is skipped).
    static func isBlank(_ line: UnsafeMutableBufferPointer<UInt8>) -> Bool {
        // Most lines start with a digit: decide on the first byte before scanning.
        guard let first = line.first else { return true }
        guard first == 32 || first == 9 else { return false }
        return line.allSatisfy { $0 == 32 || $0 == 9 }
    }

    /// The text of a field, shortened for messages.
    static func text(_ field: UnsafeBufferPointer<UInt8>, limit: Int = 40) -> String {
        let s = String(decoding: field.prefix(limit), as: UTF8.self)
        return field.count > limit ? s + "..." : s
    }

    /// A field as written in a CSV file: quoted when it holds a comma, quote, newline or edge space.
    static func escape(_ s: String) -> String {
        let needs =
            s.utf8.contains { $0 == 44 || $0 == 34 || $0 == 10 || $0 == 13 }
            || s.first == " " || s.last == " "
        guard needs else { return s }
        return "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}
