import Foundation

/// A CSV table of a profile, held by column. Profile tables are small (hundreds of rows), so a
/// plain line split is enough here; the trace readers (Workloads) are the fast path.
public struct ProfileTable: Sendable {
    /// The file it was read from.
    public let file: String
    /// Column names in file order.
    public let columns: [String]
    /// Rows as raw fields.
    public let rows: [[String]]
    /// 1-based file line of each row.
    public let lines: [Int]

    /// Reads `path`; every row must have as many fields as the header, and `required` columns must
    /// be present.
    public init(path: String, required: [String] = []) throws(ProfileError) {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw ProfileError(file: path, "cannot read: \(error.localizedDescription)")
        }
        try self.init(text: text, file: path, required: required)
    }

    /// Parses CSV text (no quoting: profile fields are numbers and identifiers).
    public init(text: String, file: String, required: [String] = []) throws(ProfileError) {
        self.file = file
        var lineNumber = 0
        var header: [String]? = nil
        var rows: [[String]] = []
        var lines: [Int] = []
        // By `isNewline`: Swift reads "\r\n" as one Character, so splitting on "\n" alone would
        // take a whole CRLF file (Python's csv module writes one by default) for a single line.
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            lineNumber += 1
            if line.trimmingCharacters(in: .whitespaces).isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            if header == nil {
                var seen = Set<String>()
                for c in fields where !seen.insert(c).inserted {
                    throw ProfileError(file: file, line: lineNumber, column: c, "column named twice in the header")
                }
                header = fields
                continue
            }
            guard fields.count == header!.count else {
                throw ProfileError(
                    file: file, line: lineNumber, "expected \(header!.count) fields as in the header, found \(fields.count)")
            }
            rows.append(fields)
            lines.append(lineNumber)
        }
        guard let header else { throw ProfileError(file: file, line: 1, "empty table; expected a header line") }
        for c in required where !header.contains(c) {
            throw ProfileError(file: file, line: 1, column: c, "missing column; the header has \(header.joined(separator: ", "))")
        }
        columns = header
        self.rows = rows
        self.lines = lines
    }

    /// Number of rows.
    public var count: Int { rows.count }

    /// The string in `column` of row `i`.
    public func string(_ i: Int, _ column: String) -> String {
        rows[i][columns.firstIndex(of: column)!]
    }

    /// A finite number in `column` of row `i`, with an optional lower bound.
    public func double(_ i: Int, _ column: String, min lower: Double? = nil) throws(ProfileError) -> Double {
        guard let k = columns.firstIndex(of: column) else {
            throw ProfileError(file: file, line: 1, column: column, "missing column")
        }
        let s = rows[i][k]
        guard let v = Double(s), v.isFinite else {
            throw ProfileError(file: file, line: lines[i], column: column, "expected a number, found '\(s)'")
        }
        if let lower, v < lower {
            throw ProfileError(file: file, line: lines[i], column: column, "must be at least \(lower), found \(s)")
        }
        return v
    }

    /// The whole column as numbers.
    public func doubles(_ column: String, min lower: Double? = nil) throws(ProfileError) -> [Double] {
        var out: [Double] = []
        out.reserveCapacity(count)
        for i in 0..<count { out.append(try double(i, column, min: lower)) }
        return out
    }

    /// Indices of rows whose `column` equals `value`.
    public func rows(where column: String, is value: String) -> [Int] {
        guard let k = columns.firstIndex(of: column) else { return [] }
        return rows.indices.filter { rows[$0][k] == value }
    }
}
