/// An error in workload input: which file, line and field, what was found and what was expected.
public struct WorkloadError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file the error is in, or a description of the source (`<scenario>`).
    public var file: String
    /// 1-based line number, when the error has one.
    public var line: Int?
    /// The column, key or field concerned.
    public var field: String?
    /// What was wrong and what was expected.
    public var message: String

    /// Creates an error.
    public init(file: String, line: Int? = nil, field: String? = nil, _ message: String) {
        self.file = file
        self.line = line
        self.field = field
        self.message = message
    }

    /// One line: `file:line: field 'name': message`.
    public var description: String {
        var s = file
        if let line { s += ":\(line)" }
        if let field { s += ": field '\(field)'" }
        return s + ": " + message
    }
}
