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
    /// How the profiled engine splits decode attention (`decode_attention`), when recorded.
    public var decodeAttention: DecodeAttentionSplits?
    /// Batch sizes of the profiled engine's decode CUDA graphs (`graph_sizes`), when recorded: a
    /// decode batch runs as the graph of the next size up.
    public var graphSizes: [Int]?
    /// Token counts of the profiled engine's eager-step CUDA graphs (`token_graph_sizes`), when
    /// recorded, sorted: a step with prefill tokens whose total tokens (prefill tokens plus decode
    /// sequences) are at most the largest runs as the graph of the next size up, rows padded.
    /// Absent in profiles of engines without token graphs, whose eager steps run at their own size.
    public var tokenGraphSizes: [Int]?

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
        graphSizes = try Self.sizes(dict, "graph_sizes", path)
        tokenGraphSizes = try Self.sizes(dict, "token_graph_sizes", path)
        if let d = dict["decode_attention"] as? [String: Any] {
            guard let target = d["target_programs"] as? Int, let maxSplits = d["max_splits"] as? Int, let heads = d["heads"] as? Int,
                target > 0, maxSplits > 0, heads > 0
            else {
                throw ProfileError(
                    file: path, column: "decode_attention", "needs positive integers target_programs, max_splits and heads")
            }
            decodeAttention = DecodeAttentionSplits(targetPrograms: target, maxSplits: maxSplits, heads: heads)
        }
    }

    /// The optional list of CUDA-graph sizes `field`, sorted; nil when absent.
    private static func sizes(_ dict: [String: Any], _ field: String, _ path: String) throws(ProfileError) -> [Int]? {
        guard let value = dict[field] else { return nil }
        guard let sizes = value as? [Int], !sizes.isEmpty, sizes.allSatisfy({ $0 > 0 }) else {
            throw ProfileError(file: path, column: field, "needs a non-empty list of positive integers")
        }
        return sizes.sorted()
    }
}

/// The engine's rule for splitting each (sequence, head)'s context over several programs in
/// decode attention (gpu/engine/attention.py, `decode_splits`): the smallest power of two that
/// gives at least `targetPrograms` programs, at most `maxSplits`. Fixed per batch size, so that a
/// captured CUDA graph keeps one choice.
public struct DecodeAttentionSplits: Sendable, Equatable {
    public var targetPrograms: Int
    public var maxSplits: Int
    public var heads: Int

    public init(targetPrograms: Int, maxSplits: Int, heads: Int) {
        self.targetPrograms = targetPrograms
        self.maxSplits = maxSplits
        self.heads = heads
    }

    /// Splits for a batch of `seqs` sequences.
    public func splits(seqs: Int) -> Int {
        var s = 1
        while max(seqs, 1) * heads * s < targetPrograms && s < maxSplits { s *= 2 }
        return s
    }
}
