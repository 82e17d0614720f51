import Workloads

/// Formats a number for the CSV outputs: shortest round-trip text, empty for NaN.
@inline(__always) func csvNumber(_ x: Double) -> String { x.isNaN ? "" : "\(x)" }

/// Streams `iterations.csv` and the batch log while a run goes (docs/engine-model.md, "Batch log";
/// docs/metrics.md, "Outputs").
public struct RunRecorder: IterationObserver {
    let iterations: AtomicFileWriter?
    let batchLog: AtomicFileWriter?
    let catalogue: AdapterCatalogue
    /// The first write error; observers cannot throw, so `commit()` reports it.
    private(set) var failure: WorkloadError?

    /// Creates a recorder writing to the given files (either may be nil).
    public init(iterationsPath: String?, batchLogPath: String?, catalogue: AdapterCatalogue) throws(WorkloadError) {
        iterations = try iterationsPath.map { p throws(WorkloadError) in try AtomicFileWriter(path: p) }
        batchLog = try batchLogPath.map { p throws(WorkloadError) in try AtomicFileWriter(path: p) }
        self.catalogue = catalogue
        write(
            iterations,
            "replica,iteration,start_s,duration_s,prefill_tokens,decode_seqs,num_seqs,distinct_adapters,mode,adapter_loads,preemptions\n"
        )
    }

    public mutating func observe(_ r: IterationRecord, replica: Replica, requests: [RequestState]) {
        let b = r.batch
        write(
            iterations,
            "\(r.replica),\(r.iteration),\(csvNumber(r.startSeconds)),\(csvNumber(r.durationSeconds)),\(b.prefillTokens),\(b.decodeSequences),\(b.sequences),\(r.distinctAdapters),\(b.mode.rawValue),\(replica.loadsStarted.count),\(replica.preemptedInPass.count)\n"
        )
        logPass(replica: replica, iteration: r.iteration, at: r.startSeconds, requests: requests)
    }

    public mutating func observeIdlePass(replica: Replica, at time: Double, requests: [RequestState]) {
        logPass(replica: replica, iteration: -1, at: time, requests: requests)
    }

    private mutating func logPass(replica: Replica, iteration: Int, at time: Double, requests: [RequestState]) {
        guard let batchLog else { return }
        var line = "{\"replica\": \(replica.index), \"iteration\": \(iteration), \"start_s\": \(formatFixed9(time)), \"batch\": ["
        for (k, e) in replica.batch.enumerated() {
            if k > 0 { line += ", " }
            line += "[\(requests[Int(e.request)].requestID), \(e.tokens)]"
        }
        line += "], \"loads\": ["
        for (k, l) in replica.loadsStarted.enumerated() {
            if k > 0 { line += ", " }
            line += "\"\(catalogue[Int(l.adapter)].name)\""
        }
        line += "], \"preempted\": ["
        for (k, p) in replica.preemptedInPass.enumerated() {
            if k > 0 { line += ", " }
            line += "\(requests[Int(p)].requestID)"
        }
        line += "]"
        if let sw = replica.switchStartedInPass {
            line += ", \"switch\": \"\(sw.merging ? "merge" : "unmerge") \(catalogue[Int(sw.adapter)].name)\""
        }
        write(batchLog, line + "}\n")
    }

    private mutating func write(_ w: AtomicFileWriter?, _ text: String) {
        guard let w, failure == nil else { return }
        do { try w.write(text) } catch { failure = error }
    }

    /// Renames the files into place.
    public func commit() throws(WorkloadError) {
        if let failure { throw failure }
        try iterations?.commit()
        try batchLog?.commit()
    }
}

/// Formats seconds with exactly 9 decimals (the batch log's `start_s`).
func formatFixed9(_ x: Double) -> String {
    let scaled = (x * 1e9).rounded()
    let whole = Int64(scaled) / 1_000_000_000
    var frac = String(Int64(scaled) % 1_000_000_000)
    frac = String(repeating: "0", count: 9 - frac.count) + frac
    return "\(whole).\(frac)"
}

/// Writes `requests.csv` (uncommitted): the live-run columns first (docs/live-run-format.md),
/// then the twin's derived ones.
func requestsCSV(path: String, requests: [RequestState], catalogue: AdapterCatalogue) throws(WorkloadError) -> AtomicFileWriter {
    let w = try AtomicFileWriter(path: path)
    try w.write(
        "request_id,adapter,arrival_s,first_scheduled_s,first_token_s,finish_s,prompt_tokens,output_tokens,preemptions,status,replica,queue_wait_s,ttft_s,tpot_s,e2e_s\n"
    )
    for r in requests {
        let adapter = r.adapter >= 0 ? catalogue[Int(r.adapter)].name : ""
        let tpot = r.outputTokens > 1 ? (r.finishSeconds - r.firstTokenSeconds) / Double(r.outputTokens - 1) : .nan
        let status: String
        switch r.status {
        case .finished: status = "finished"
        case .rejected: status = "rejected"
        default: status = "unfinished"
        }
        try w.write(
            "\(r.requestID),\(adapter),\(csvNumber(r.arrivalSeconds)),\(csvNumber(r.firstScheduledSeconds)),\(csvNumber(r.firstTokenSeconds)),\(csvNumber(r.finishSeconds)),\(r.promptTokens),\(r.outputTokens),\(r.preemptions),\(status),\(r.replica),\(csvNumber(r.firstScheduledSeconds - r.arrivalSeconds)),\(csvNumber(r.firstTokenSeconds - r.arrivalSeconds)),\(csvNumber(tpot)),\(csvNumber(r.finishSeconds - r.arrivalSeconds))\n"
        )
    }
    return w
}
