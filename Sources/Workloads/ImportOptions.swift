/// What every reader of another project's trace can do to it on the way in.
public struct ImportOptions: Sendable, Equatable {
    /// Keep requests from this many seconds after the source's first request (default 0).
    public var windowStartSeconds: Double
    /// Keep requests before this many seconds after the source's first request (nil: to the end).
    public var windowEndSeconds: Double?
    /// Divides inter-arrival times: 2 doubles the request rate, 0.5 halves it.
    public var rateScale: Double
    /// Keep at most this many requests (nil: all).
    public var limit: Int?
    /// How adapters are assigned where the source names none (nil: every request uses the base model).
    public var adapters: AdapterAssignment?

    /// Creates options; the defaults keep the whole trace as it is, with no adapters.
    public init(
        windowStartSeconds: Double = 0, windowEndSeconds: Double? = nil, rateScale: Double = 1, limit: Int? = nil,
        adapters: AdapterAssignment? = nil
    ) {
        self.windowStartSeconds = windowStartSeconds
        self.windowEndSeconds = windowEndSeconds
        self.rateScale = rateScale
        self.limit = limit
        self.adapters = adapters
    }

    /// Throws if an option is out of range (`source` names the caller in the error).
    public func validate(source: String) throws(WorkloadError) {
        guard windowStartSeconds.isFinite && windowStartSeconds >= 0 else {
            throw WorkloadError(file: source, field: "window start", "\(windowStartSeconds); expected seconds >= 0")
        }
        if let end = windowEndSeconds, !(end > windowStartSeconds) {
            throw WorkloadError(file: source, field: "window end", "\(end); expected more than the window start \(windowStartSeconds)")
        }
        guard rateScale.isFinite && rateScale > 0 else {
            throw WorkloadError(file: source, field: "rate scale", "\(rateScale); expected a number > 0")
        }
        if let limit, limit < 0 { throw WorkloadError(file: source, field: "limit", "\(limit); expected a count >= 0") }
    }
}

/// Adapters assigned to a trace that names none: a generated catalogue and a popularity, seeded.
public struct AdapterAssignment: Sendable, Equatable {
    /// The catalogue to generate.
    public var catalogue: CatalogueSpec
    /// Which adapter each request uses.
    public var popularity: Popularity
    /// Shifts of popularity over (output) time.
    public var shifts: [PopularityPhase]
    /// The seed of the catalogue's ranks and of the draws.
    public var seed: UInt64

    /// Creates an assignment.
    public init(catalogue: CatalogueSpec, popularity: Popularity, shifts: [PopularityPhase] = [], seed: UInt64) {
        self.catalogue = catalogue
        self.popularity = popularity
        self.shifts = shifts
        self.seed = seed
    }
}
