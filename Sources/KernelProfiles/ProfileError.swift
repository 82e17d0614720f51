/// An error in a profile: the file, line and column, and what was wrong.
public struct ProfileError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file.
    public var file: String
    /// 1-based line, when known.
    public var line: Int?
    /// The column or key concerned.
    public var column: String?
    /// What was wrong and what was expected.
    public var message: String

    /// Creates an error.
    public init(file: String, line: Int? = nil, column: String? = nil, _ message: String) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
    }

    public var description: String {
        var s = file
        if let line { s += ":\(line)" }
        if let column { s += ": column '\(column)'" }
        return s + ": " + message
    }
}
