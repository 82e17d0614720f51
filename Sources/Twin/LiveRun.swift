import Foundation
import KernelProfiles
import Workloads

/// A recorded live-engine run (docs/live-run-format.md), read back as the twin's request states
/// so that both sides' metrics come from the same code (`RunSummary`).
public struct LiveRun: Sendable {
    /// The run folder.
    public let directory: String
    /// Requests in trace order.
    public let requests: [RequestState]
    /// Iterations recorded.
    public let iterations: Int
    /// Seconds of iterations recorded, summed.
    public let busySeconds: Double
    /// Decode-only iterations recorded, and their seconds.
    public let decodeOnly: (count: Int, seconds: Double)
    /// Changes of `mode` between consecutive iterations of a replica.
    public let modeChanges: Int
    /// When the replay was stopped before every request finished (`run.json`), seconds.
    public let stoppedAtSeconds: Double?

    /// Reads `requests.csv` and `iterations.csv` of `directory`; adapters are resolved against
    /// `catalogue`.
    public init(directory: String, catalogue: AdapterCatalogue) throws(ProfileError) {
        self.directory = directory
        let t = try ProfileTable(
            path: directory + "/requests.csv",
            required: [
                "request_id", "adapter", "arrival_s", "first_scheduled_s", "first_token_s", "finish_s",
                "prompt_tokens", "output_tokens", "preemptions", "status",
            ])
        var out: [RequestState] = []
        out.reserveCapacity(t.count)
        func time(_ i: Int, _ c: String) throws(ProfileError) -> Double {
            t.string(i, c).isEmpty ? .nan : try t.double(i, c)
        }
        for i in 0..<t.count {
            let name = t.string(i, "adapter")
            var adapter = -1
            if !name.isEmpty {
                guard let a = catalogue.index(of: name) else {
                    throw ProfileError(file: t.file, line: t.lines[i], column: "adapter", "'\(name)' is not in the catalogue")
                }
                adapter = a
            }
            var r = RequestState(
                arrivalSeconds: try t.double(i, "arrival_s"), requestID: Int(try t.double(i, "request_id", min: 0)),
                adapter: Int32(adapter), promptTokens: Int32(try t.double(i, "prompt_tokens", min: 1)),
                outputTokens: Int32(try t.double(i, "output_tokens", min: 1)))
            r.firstScheduledSeconds = try time(i, "first_scheduled_s")
            r.firstTokenSeconds = try time(i, "first_token_s")
            r.finishSeconds = try time(i, "finish_s")
            r.preemptions = Int32(try t.double(i, "preemptions", min: 0))
            switch t.string(i, "status") {
            case "finished":
                r.status = .finished
                r.generated = r.outputTokens
                if r.finishSeconds.isNaN || r.firstTokenSeconds.isNaN || r.firstScheduledSeconds.isNaN {
                    throw ProfileError(file: t.file, line: t.lines[i], column: "finish_s", "a finished request needs all its times")
                }
            case "rejected": r.status = .rejected
            case "unfinished": r.status = .running
            case let s:
                throw ProfileError(
                    file: t.file, line: t.lines[i], column: "status", "expected finished, rejected or unfinished, found '\(s)'")
            }
            out.append(r)
        }
        requests = out
        let it = try ProfileTable(path: directory + "/iterations.csv", required: ["duration_s", "prefill_tokens"])
        iterations = it.count
        let durations = try it.doubles("duration_s", min: 0)
        let prefill = try it.doubles("prefill_tokens", min: 0)
        busySeconds = durations.reduce(0, +)
        let decodeRows = durations.indices.filter { prefill[$0] == 0 }
        decodeOnly = (decodeRows.count, decodeRows.reduce(0.0) { $0 + durations[$1] })
        var changes = 0
        if it.columns.contains("mode") && it.columns.contains("replica") {
            var last: [String: String] = [:]
            for i in 0..<it.count {
                let replica = it.string(i, "replica")
                let mode = it.string(i, "mode")
                if mode != (last[replica] ?? "unmerged") { changes += 1 }
                last[replica] = mode
            }
        }
        modeChanges = changes
        var stopped: Double? = nil
        if let data = FileManager.default.contents(atPath: directory + "/run.json"),
            let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
            let summary = obj["summary"] as? [String: Any], summary["stopped_early"] as? Bool == true,
            let wall = summary["wall_s"] as? Double
        {
            stopped = wall
        }
        stoppedAtSeconds = stopped
    }

    /// The run's metrics, computed as the twin computes its own.
    public func summary(adapterCount: Int, replicas: Int) -> RunSummary {
        var s = RunSummary(requests: requests, replicas: [], adapterCount: adapterCount)
        s.iterations = iterations
        s.gpuBusyFraction = busySeconds / (Double(replicas) * s.makespanSeconds)
        s.modeChanges = modeChanges
        s.decodeStepMeanSeconds = decodeOnly.seconds / Double(decodeOnly.count)
        s.mixedStepMeanSeconds = (busySeconds - decodeOnly.seconds) / Double(iterations - decodeOnly.count)
        return s
    }
}
