/// The header of a CSV file from another project, with its columns found by name.
///
/// Names are compared without case, spaces or underscores (`Session ID`, `SessionID` and
/// `session_id` are one column), since public traces change their spelling between releases.
struct ExternalCSVHeader {
    /// The header's column names as written.
    let names: [String]
    private let positions: [String: Int]

    /// Reads the first line of `lines` as a header.
    init(_ lines: ByteLineReader) throws(WorkloadError) {
        var fields: [UnsafeBufferPointer<UInt8>] = []
        guard let first = try lines.nextLine() else { throw WorkloadError(file: lines.file, line: 1, "empty file; expected a header") }
        if let problem = CSVLine.split(first, into: &fields) { throw WorkloadError(file: lines.file, line: 1, problem) }
        names = fields.map { String(decoding: $0, as: UTF8.self) }
        var p: [String: Int] = [:]
        for (i, n) in names.enumerated() where p[Self.key(n)] == nil { p[Self.key(n)] = i }
        positions = p
    }

    private static func key(_ name: String) -> String {
        String(name.lowercased().filter { $0 != " " && $0 != "_" })
    }

    /// The position of column `name`, if the header has it.
    func position(_ name: String) -> Int? { positions[Self.key(name)] }

    /// The position of column `name`, or an error naming the columns found.
    func require(_ name: String, file: String) throws(WorkloadError) -> Int {
        guard let p = position(name) else {
            throw WorkloadError(file: file, line: 1, field: name, "missing column; the header has: \(names.joined(separator: ","))")
        }
        return p
    }
}

/// Field parsing shared by the readers of other projects' traces.
struct ExternalRowFields {
    let file: String
    let line: Int
    let fields: [UnsafeBufferPointer<UInt8>]
    let names: [String]

    /// The integer in column `i`, at least `min`.
    func int(_ i: Int, min: Int = 0) throws(WorkloadError) -> Int {
        guard let v = FieldParser.int(fields[i]) else {
            throw WorkloadError(file: file, line: line, field: names[i], "'\(CSVLine.text(fields[i]))' is not an integer")
        }
        guard v >= min else { throw WorkloadError(file: file, line: line, field: names[i], "\(v); expected at least \(min)") }
        return v
    }

    /// The finite number in column `i`.
    func double(_ i: Int) throws(WorkloadError) -> Double {
        guard let v = FieldParser.double(fields[i]), v.isFinite else {
            throw WorkloadError(file: file, line: line, field: names[i], "'\(CSVLine.text(fields[i]))' is not a finite number")
        }
        return v
    }

    /// The text of column `i`.
    func text(_ i: Int) -> String { String(decoding: fields[i], as: UTF8.self) }

    /// The next non-blank row of `lines`, split into `fields` (reused) and checked to have one
    /// field per column; nil at the end of the file.
    static func next(
        _ lines: ByteLineReader, into fields: inout [UnsafeBufferPointer<UInt8>], names: [String], file: String
    ) throws(WorkloadError) -> ExternalRowFields? {
        while let line = try lines.nextLine() {
            if CSVLine.isBlank(line) { continue }
            let n = lines.lineNumber
            if let problem = CSVLine.split(line, into: &fields) { throw WorkloadError(file: file, line: n, problem) }
            guard fields.count == names.count else {
                throw WorkloadError(
                    file: file, line: n, "\(fields.count) fields; expected \(names.count) (\(names.joined(separator: ",")))")
            }
            return ExternalRowFields(file: file, line: n, fields: fields, names: names)
        }
        return nil
    }
}
