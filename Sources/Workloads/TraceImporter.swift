/// Applies `ImportOptions` to the rows of another project's trace, row by row: the time window,
/// the rate scale, the request limit and the adapter assignment. Request IDs are renumbered from 0
/// and arrival times start at 0 at the window's start.
public final class TraceImporter: TraceRowReader {
    /// The source file.
    public var file: String { source.file }
    /// The catalogue that the assigned adapter names refer to (empty without an assignment).
    public let catalogue: AdapterCatalogue
    private let source: any ExternalTraceReader
    private let options: ImportOptions
    private let rng: RandomSource?
    private var sampler: AdapterSampler?
    private var produced = 0
    private var outsideWindow = 0
    private var done = false

    /// Wraps `source` with `options` (validated here).
    public init(_ source: any ExternalTraceReader, options: ImportOptions) throws(WorkloadError) {
        try options.validate(source: source.file)
        self.source = source
        self.options = options
        if let a = options.adapters {
            let rng = RandomSource(seed: a.seed)
            let cat = a.catalogue.generate(rng)
            self.rng = rng
            catalogue = cat
            sampler = AdapterSampler(popularity: a.popularity, shifts: a.shifts, adapterCount: cat.count)
        } else {
            rng = nil
            catalogue = AdapterCatalogue([])
        }
    }

    /// The next row, or nil once the source, the window or the limit ends.
    public func next() throws(WorkloadError) -> TraceRow? {
        if done { return nil }
        if let limit = options.limit, produced >= limit {
            done = true
            return nil
        }
        while let row = try source.next() {
            if row.arrivalSeconds < options.windowStartSeconds {
                outsideWindow += 1
                continue
            }
            if let end = options.windowEndSeconds, row.arrivalSeconds >= end {
                done = true
                return nil
            }
            var out = row
            out.requestID = produced
            out.arrivalSeconds = (row.arrivalSeconds - options.windowStartSeconds) / options.rateScale
            if let rng, var s = sampler {
                let i = s.next(arrivalSeconds: out.arrivalSeconds, rng)
                sampler = s
                out.adapterName = i == TraceRequest.baseModel ? nil : catalogue[i].name
            }
            produced += 1
            return out
        }
        done = true
        return nil
    }

    /// Rows left out so far, by reason: the source's skips and those before the window.
    public var skipped: [String: Int] {
        var s = source.skipped
        if outsideWindow > 0 { s["before the window", default: 0] += outsideWindow }
        return s
    }

    /// How the trace was made, for `<name>.meta.json`.
    public var provenance: [String: String] {
        var p: [String: String] = [
            "source": source.file, "source_format": source.sourceKind,
            "window_s": "\(options.windowStartSeconds)..<\(options.windowEndSeconds.map { "\($0)" } ?? "end")",
            "rate_scale": "\(options.rateScale)", "limit": options.limit.map(String.init) ?? "none",
            "requests": String(produced),
        ]
        for (reason, count) in skipped { p["skipped: " + reason] = String(count) }
        if let a = options.adapters {
            p["adapters"] = "assigned: \(a.popularity), catalogue \(a.catalogue.summary), seed \(a.seed)"
            if !a.shifts.isEmpty { p["popularity_shifts"] = "\(a.shifts)" }
        } else {
            p["adapters"] = "none (base model)"
        }
        return p
    }

    /// Reads all remaining rows into a trace with the assigned catalogue.
    public func readTrace() throws(WorkloadError) -> Trace {
        var requests: [TraceRequest] = []
        while let r = try next() {
            requests.append(
                TraceRequest(
                    requestID: r.requestID, arrivalSeconds: r.arrivalSeconds,
                    adapter: r.adapterName.flatMap { catalogue.index(of: $0) } ?? TraceRequest.baseModel,
                    promptTokens: r.promptTokens, outputTokens: r.outputTokens))
        }
        return Trace(requests: requests, catalogue: catalogue, provenance: provenance)
    }
}
