import Foundation

/// A profile's `meta.json`: how and where it was measured (docs/profile-format.md).
public struct ProfileMeta: Sendable, Equatable {
    /// The schema versions this build reads.
    public static let supportedSchemas: ClosedRange<Int> = 1...2
    /// Schema version of the profile.
    public var schemaVersion: Int
    /// GPU name as the driver reports it (`gpu_name`).
    public var gpu: String
    /// Data type of the measurements (`float16`, `bfloat16`).
    public var dtype: String
    /// Model the step tables were measured on, when they exist.
    public var model: String?
    /// Every other string field (driver, cuda, torch, triton, date, commit, command, ...).
    public var fields: [String: String]

    /// Reads `path`, checking the schema version.
    public init(path: String) throws(ProfileError) {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw ProfileError(file: path, "cannot read: \(error.localizedDescription)")
        }
        let object: Any
        do { object = try JSONSerialization.jsonObject(with: data) } catch {
            throw ProfileError(file: path, "not valid JSON: \(error.localizedDescription)")
        }
        guard let dict = object as? [String: Any] else { throw ProfileError(file: path, line: 1, "expected a JSON object") }
        guard let version = dict["schema_version"] as? Int else {
            throw ProfileError(file: path, column: "schema_version", "missing or not an integer")
        }
        guard Self.supportedSchemas.contains(version) else {
            throw ProfileError(
                file: path, column: "schema_version",
                "version \(version) is not supported; this build reads \(Self.supportedSchemas.lowerBound)-\(Self.supportedSchemas.upperBound)"
            )
        }
        schemaVersion = version
        var strings: [String: String] = [:]
        for (k, v) in dict {
            if let s = v as? String { strings[k] = s } else if let n = v as? NSNumber { strings[k] = n.stringValue }
        }
        guard let gpu = strings["gpu_name"] ?? strings["gpu"] else { throw ProfileError(file: path, column: "gpu_name", "missing") }
        self.gpu = gpu
        dtype = strings["dtype"] ?? "float16"
        model = strings["model"]
        strings["date"] = strings["date"] ?? strings["date_utc"]
        strings["commit"] = strings["commit"] ?? strings["git_commit"]
        fields = strings
    }
}
