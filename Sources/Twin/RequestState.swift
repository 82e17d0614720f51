/// Where a request is in its life.
public enum RequestStatus: UInt8, Sendable {
    /// Not arrived yet.
    case pending
    /// In a replica's waiting queue.
    case waiting
    /// Admitted to a replica's running set.
    case running
    /// Generated all its output tokens.
    case finished
    /// Refused on arrival (too long for the model or the KV cache).
    case rejected
}

/// The simulator's state of one request (docs/engine-model.md, "Request state").
/// Compact, because a run holds millions of them.
public struct RequestState: Sendable {
    /// Arrival time, seconds.
    public var arrivalSeconds: Double
    /// First-scheduled time, seconds (NaN until scheduled).
    public var firstScheduledSeconds = Double.nan
    /// Time of the first output token, seconds (NaN until then).
    public var firstTokenSeconds = Double.nan
    /// Finish time, seconds (NaN until finished).
    public var finishSeconds = Double.nan
    /// Trace identifier.
    public var requestID: Int
    /// Catalogue index of the adapter, or -1 for the base model.
    public var adapter: Int32
    /// Prompt tokens.
    public var promptTokens: Int32
    /// Output tokens to generate.
    public var outputTokens: Int32
    /// Output tokens sampled so far.
    public var generated: Int32 = 0
    /// Tokens whose KV is in the cache.
    public var computed: Int32 = 0
    /// KV blocks held.
    public var blocks: Int32 = 0
    /// Times preempted.
    public var preemptions: Int32 = 0
    /// Replica serving it (-1 until routed).
    public var replica: Int32 = -1
    /// Life-cycle status.
    public var status = RequestStatus.pending

    /// Tokens whose values exist: the prompt and what has been generated.
    @inline(__always) public var known: Int32 { promptTokens + generated }
}
