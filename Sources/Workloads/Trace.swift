/// One request of a trace: when it arrives, which adapter it uses, and its forced lengths.
public struct TraceRequest: Sendable, Hashable {
    /// Identifier, unique within a trace (a non-negative integer in every file format).
    public var requestID: Int
    /// Arrival time in seconds from the start of the trace.
    public var arrivalSeconds: Double
    /// Index of the adapter in the trace's catalogue, or `TraceRequest.baseModel` for none.
    public var adapter: Int
    /// Prompt length in tokens (at least 1).
    public var promptTokens: Int
    /// Output length in tokens (at least 1); the engine generates exactly this many.
    public var outputTokens: Int

    /// The `adapter` value of a request served by the base model alone.
    public static let baseModel = -1

    /// Creates a request.
    public init(requestID: Int, arrivalSeconds: Double, adapter: Int, promptTokens: Int, outputTokens: Int) {
        self.requestID = requestID
        self.arrivalSeconds = arrivalSeconds
        self.adapter = adapter
        self.promptTokens = promptTokens
        self.outputTokens = outputTokens
    }
}

/// A LoRA adapter as the catalogue describes it.
public struct AdapterSpec: Sendable, Hashable {
    /// Name, unique within a catalogue.
    public var name: String
    /// LoRA rank r.
    public var rank: Int
    /// LoRA alpha; the update is scaled by alpha / rank.
    public var alpha: Double
    /// Modules the adapter targets, e.g. `q_proj`, `k_proj`, `v_proj`, `o_proj`.
    public var targetModules: [String]
    /// The base model the adapter was trained for, when the catalogue says.
    public var baseModel: String?

    /// Creates an adapter description.
    public init(name: String, rank: Int, alpha: Double, targetModules: [String], baseModel: String? = nil) {
        self.name = name
        self.rank = rank
        self.alpha = alpha
        self.targetModules = targetModules
        self.baseModel = baseModel
    }
}

/// The adapters a trace refers to, in a fixed order; requests refer to them by index.
public struct AdapterCatalogue: Sendable, Hashable {
    /// The adapters, in catalogue order.
    public private(set) var adapters: [AdapterSpec]
    private var indexByName: [String: Int]

    /// Creates a catalogue; names must be unique (the caller validates input files).
    public init(_ adapters: [AdapterSpec]) {
        self.adapters = adapters
        var index: [String: Int] = [:]
        for (i, a) in adapters.enumerated() where index[a.name] == nil { index[a.name] = i }
        self.indexByName = index
    }

    /// The index of the adapter named `name`, if the catalogue has it.
    public func index(of name: String) -> Int? { indexByName[name] }

    /// Number of adapters.
    public var count: Int { adapters.count }

    /// The adapter at `index`.
    public subscript(index: Int) -> AdapterSpec { adapters[index] }
}

/// A request trace with its adapter catalogue; requests are sorted by arrival time.
public struct Trace: Sendable {
    /// Requests in arrival order.
    public var requests: [TraceRequest]
    /// Adapters the requests refer to.
    public var catalogue: AdapterCatalogue
    /// How the trace was made (source file, reader, options, seed...), written beside it in
    /// `<name>.meta.json`; empty when unknown.
    public var provenance: [String: String]

    /// Creates a trace.
    public init(requests: [TraceRequest], catalogue: AdapterCatalogue, provenance: [String: String] = [:]) {
        self.requests = requests
        self.catalogue = catalogue
        self.provenance = provenance
    }
}
