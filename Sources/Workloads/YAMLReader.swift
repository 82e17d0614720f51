import Yams

/// Reads a YAML mapping with errors that name the file, the line and the key path.
///
/// Written here rather than decoding with `Codable`: decoding errors from `YAMLDecoder` name the
/// coding path but not the line, and say nothing about unknown (misspelt) keys, which a scenario
/// file must reject.
public struct YAMLReader {
    /// The file being read (for errors).
    public let file: String
    /// Dotted key path of this mapping (`engine`, `workload.arrival`), empty at the root.
    public let path: String
    private let node: Node
    private let mapping: Node.Mapping

    /// Parses `text` and returns a reader of its root mapping.
    public static func parse(_ text: String, file: String) throws(WorkloadError) -> YAMLReader {
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch let e as YamlError {
            throw WorkloadError(file: file, line: Self.line(of: e), "not valid YAML: \(e)")
        } catch { throw WorkloadError(file: file, "not valid YAML: \(error)") }
        guard let root else { throw WorkloadError(file: file, line: 1, "the file is empty; expected a mapping") }
        return try YAMLReader(node: root, file: file, path: "")
    }

    private static func line(of e: YamlError) -> Int? {
        switch e {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): return mark.line
        default: return nil
        }
    }

    init(node: Node, file: String, path: String) throws(WorkloadError) {
        guard let m = node.mapping else {
            throw WorkloadError(file: file, line: node.mark?.line, field: path.isEmpty ? nil : path, "expected a mapping of keys")
        }
        self.node = node
        self.mapping = m
        self.file = file
        self.path = path
    }

    /// The line of this mapping in the file.
    public var line: Int? { node.mark?.line }

    private func key(_ k: String) -> String { path.isEmpty ? k : path + "." + k }

    /// The error for `key` with `message`, located at the key's value (or this mapping).
    public func error(_ k: String, _ message: String) -> WorkloadError {
        WorkloadError(file: file, line: mapping[k]?.mark?.line ?? line, field: key(k), message)
    }

    /// Rejects keys not in `allowed` (a misspelt key must not be silently ignored).
    public func checkKeys(_ allowed: Set<String>) throws(WorkloadError) {
        for (k, v) in mapping {
            guard let name = k.string else {
                throw WorkloadError(file: file, line: k.mark?.line, field: path, "keys must be strings")
            }
            if !allowed.contains(name) {
                throw WorkloadError(
                    file: file, line: v.mark?.line ?? k.mark?.line, field: key(name),
                    "unknown key; expected one of: \(allowed.sorted().joined(separator: ", "))")
            }
        }
    }

    /// Whether `k` is present (and not null).
    public func has(_ k: String) -> Bool {
        guard let v = mapping[k] else { return false }
        return !(v.scalar.map { $0.string == "null" || $0.string == "~" } ?? false)
    }

    /// The raw node at `k`.
    public func node(_ k: String) -> Node? { has(k) ? mapping[k] : nil }

    /// All keys, in file order.
    public var keys: [String] { mapping.keys.compactMap(\.string) }

    /// A scalar string.
    public func string(_ k: String) throws(WorkloadError) -> String? {
        guard let v = node(k) else { return nil }
        guard let s = v.scalar?.string else { throw error(k, "expected a single value, found a \(v.mapping != nil ? "mapping" : "list")") }
        return s
    }

    /// A required scalar string.
    public func requiredString(_ k: String) throws(WorkloadError) -> String {
        guard let s = try string(k) else { throw error(k, "missing; this key is required") }
        return s
    }

    /// An integer, with an optional lower bound.
    public func int(_ k: String, min lower: Int? = nil) throws(WorkloadError) -> Int? {
        guard let s = try string(k) else { return nil }
        guard let v = Int(s.replacingOccurrences(of: "_", with: "")) else { throw error(k, "expected an integer, found '\(s)'") }
        if let lower, v < lower { throw error(k, "must be at least \(lower), found \(v)") }
        return v
    }

    /// A finite number, with optional bounds (`positive` excludes zero).
    public func double(_ k: String, min lower: Double? = nil, positive: Bool = false) throws(WorkloadError) -> Double? {
        guard let s = try string(k) else { return nil }
        guard let v = Double(s.replacingOccurrences(of: "_", with: "")), v.isFinite else {
            throw error(k, "expected a number, found '\(s)'")
        }
        if positive && v <= 0 { throw error(k, "must be greater than 0, found \(s)") }
        if let lower, v < lower { throw error(k, "must be at least \(lower), found \(s)") }
        return v
    }

    /// A boolean (`true`/`false`, `yes`/`no`, `on`/`off`).
    public func bool(_ k: String) throws(WorkloadError) -> Bool? {
        guard let s = try string(k) else { return nil }
        switch s.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: throw error(k, "expected true or false, found '\(s)'")
        }
    }

    /// A nested mapping.
    public func mapping(_ k: String) throws(WorkloadError) -> YAMLReader? {
        guard let v = node(k) else { return nil }
        return try YAMLReader(node: v, file: file, path: key(k))
    }

    /// A sequence of scalar strings.
    public func strings(_ k: String) throws(WorkloadError) -> [String]? {
        guard let v = node(k) else { return nil }
        if let s = v.scalar?.string { return [s] }
        guard let seq = v.sequence else { throw error(k, "expected a list") }
        var out: [String] = []
        for item in seq {
            guard let s = item.scalar?.string else { throw error(k, "expected a list of single values") }
            out.append(s)
        }
        return out
    }

    /// A sequence of mappings (`phases: [{...}, {...}]`), each a reader with path `key[i]`.
    public func mappings(_ k: String) throws(WorkloadError) -> [YAMLReader]? {
        guard let v = node(k) else { return nil }
        guard let seq = v.sequence else { throw error(k, "expected a list of mappings") }
        var out: [YAMLReader] = []
        for (i, item) in seq.enumerated() { out.append(try YAMLReader(node: item, file: file, path: key(k) + "[\(i)]")) }
        return out
    }

    /// A path named at `k`, resolved against the folder of the file being read when relative.
    public func path(_ k: String) throws(WorkloadError) -> String? {
        guard let p = try string(k) else { return nil }
        if p.hasPrefix("/") { return p }
        guard let slash = file.lastIndex(of: "/") else { return p }
        return String(file[..<slash]) + "/" + p
    }

    /// A nested value that is either a bare scalar (`kind`) or a mapping with a `kind` key.
    /// Returns the kind and the mapping (nil for a bare scalar).
    public func kinded(_ k: String) throws(WorkloadError) -> (kind: String, body: YAMLReader?)? {
        guard let v = node(k) else { return nil }
        if let s = v.scalar?.string { return (s, nil) }
        let body = try YAMLReader(node: v, file: file, path: key(k))
        return (try body.requiredString("kind"), body)
    }
}
