import Foundation
import Workloads

/// A fresh temporary folder for one test, removed when the value is released.
public final class TemporaryFolder {
    /// The folder's path.
    public let path: String

    /// Creates the folder under the system's temporary directory.
    public init() {
        let base = FileManager.default.temporaryDirectory.path
        path = base + "/loratwin-test-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// The path of `name` inside the folder.
    public func file(_ name: String) -> String { path + "/" + name }

    /// Writes `text` to `name` and returns its path.
    @discardableResult
    public func write(_ name: String, _ text: String) -> String {
        let p = file(name)
        _ = FileManager.default.createFile(atPath: p, contents: Data(text.utf8))
        return p
    }

    /// Writes raw bytes to `name` and returns its path.
    @discardableResult
    public func write(_ name: String, bytes: [UInt8]) -> String {
        let p = file(name)
        _ = FileManager.default.createFile(atPath: p, contents: Data(bytes))
        return p
    }
}

/// Shared workload fixtures.
public enum WorkloadFixtures {
    /// The repository's root folder (found from this source file's path).
    public static var repositoryRoot: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    }

    /// The Azure LLM inference trace 2023 file of `kind` ("code" or "conv") in traces/azure-llm-2023.
    public static func azureTrace(_ kind: String) -> String {
        repositoryRoot + "/traces/azure-llm-2023/AzureLLMInferenceTrace_\(kind).csv"
    }

    /// A small catalogue of three adapters of ranks 8, 16 and 64.
    public static let catalogue = AdapterCatalogue([
        AdapterSpec(name: "a0", rank: 8, alpha: 16, targetModules: ["q_proj", "v_proj"]),
        AdapterSpec(name: "a1", rank: 16, alpha: 32, targetModules: ["q_proj", "k_proj", "v_proj", "o_proj"]),
        AdapterSpec(name: "a,odd \"name\"", rank: 64, alpha: 8.5, targetModules: ["o_proj"], baseModel: "llama-2-7b"),
    ])

    /// A seeded random trace over `catalogue` with awkward arrival times (sub-microsecond gaps,
    /// repeated times, large values) to test exact round trips.
    public static func randomTrace(requests: Int, seed: UInt64) -> Trace {
        let rng = RandomSource(seed: seed)
        var t = 0.0
        var out: [TraceRequest] = []
        for i in 0..<requests {
            switch rng.uniformInt(4) {
            case 0: break
            case 1: t += rng.uniform() * 1e-7
            case 2: t += rng.exponential(mean: 0.3)
            default: t += rng.uniform() * 1e4
            }
            out.append(
                TraceRequest(
                    requestID: i * 3 + rng.uniformInt(3), arrivalSeconds: t, adapter: rng.uniformInt(catalogue.count + 1) - 1,
                    promptTokens: 1 + rng.uniformInt(100_000), outputTokens: 1 + rng.uniformInt(4000)))
        }
        return Trace(requests: out, catalogue: catalogue, provenance: ["source": "WorkloadFixtures.randomTrace", "seed": "\(seed)"])
    }

    /// A valid trace CSV (five rows over the catalogue `validCatalogueCSV`).
    public static let validTraceCSV = """
        request_id,arrival_s,adapter,prompt_tokens,output_tokens
        0,0.0,a0,128,16
        1,0.25,,512,64
        2,0.25,a1,1000,1
        3,1.5e1,a0,7,300
        4,100.125,a1,42,42

        """

    /// The catalogue that goes with `validTraceCSV`.
    public static let validCatalogueCSV = """
        adapter,rank,alpha,target_modules
        a0,8,16,q_proj;v_proj
        a1,16,32,q_proj;k_proj;v_proj;o_proj

        """
}
