// trace-bench: how fast the trace readers and writers are, on a generated trace.
//
//   swift run -c release trace-bench [ROWS] [FOLDER]
//
// Writes a ROWS-row trace (default 10,000,000) as CSV and JSONL into FOLDER (default a temporary
// folder, removed afterwards), then times: writing, reading rows only (the parser), and reading
// into a `Trace` with its catalogue (what the twin does). Each read is run three times; the best
// is reported, as the others mostly measure the page cache warming up. Figures go to
// docs/performance.md.

import Foundation
import Workloads

let arguments = CommandLine.arguments
let rows = arguments.count > 1 ? Int(arguments[1]) ?? 10_000_000 : 10_000_000
let keep = arguments.count > 2
let folder = keep ? arguments[2] : NSTemporaryDirectory() + "trace-bench-\(getpid())"
try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
defer { if !keep { try? FileManager.default.removeItem(atPath: folder) } }

func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18 }

func report(_ what: String, _ d: Duration, _ count: Int, bytes: Int? = nil) {
    let s = seconds(d)
    var line =
        what.padding(toLength: 34, withPad: " ", startingAt: 0)
        + String(format: "%8.3f s  %10.2f M rows/s", s, Double(count) / s / 1e6)
    if let bytes { line += String(format: "  %7.1f MB/s", Double(bytes) / s / 1e6) }
    print(line)
}

func fileSize(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
}

func best(_ runs: Int = 3, _ body: () throws -> Int) rethrows -> (Duration, Int) {
    var bestTime = Duration.seconds(1e9)
    var n = 0
    for _ in 0..<runs {
        let clock = ContinuousClock()
        let start = clock.now
        n = try body()
        bestTime = min(bestTime, clock.now - start)
    }
    return (bestTime, n)
}

do {
    let csv = folder + "/bench.csv"
    let jsonl = folder + "/bench.jsonl"
    let spec = GeneratorSpec(
        requests: 1, arrival: .gamma(rate: 50, cv: 2), popularity: .zipf(exponent: 1.1),
        promptTokens: .logNormal(mean: 600, sigma: 0.9, min: 4, max: 8192),
        outputTokens: .logNormal(mean: 180, sigma: 0.8, min: 1, max: 2048),
        catalogue: CatalogueSpec(count: 100, ranks: [(8, 1), (16, 1), (32, 1), (64, 1)], alpha: 16, targetModules: ["q_proj", "v_proj"]))
    let rng = RandomSource(seed: 1)
    let catalogue = spec.catalogue.generate(rng)
    try CatalogueFile.write(catalogue, to: TraceFiles.cataloguePath(forTrace: csv))
    let table = DiscreteDistribution(weights: Popularity.zipf(exponent: 1.1).probabilities(adapterCount: catalogue.count) ?? [1])

    // Rows are drawn once into a compact form, so the write timing measures the writer.
    var t = 0.0
    var draws: [(Double, Int32, Int32, Int32)] = []
    draws.reserveCapacity(rows)
    for _ in 0..<rows {
        t = spec.arrival.nextArrival(after: t, rng)
        let a = Int32(table.map { rng.draw($0) } ?? 0)
        draws.append((t, a, Int32(spec.promptTokens.draw(rng)), Int32(spec.outputTokens.draw(rng))))
    }
    let names = catalogue.adapters.map(\.name)
    print("trace-bench: \(rows) rows, \(ProcessInfo.processInfo.activeProcessorCount) cores, folder \(folder)")
    for (path, label) in [(csv, "write CSV"), (jsonl, "write JSONL")] {
        let (d, _) = try best(1) {
            let w = try TraceWriter(path: path)
            for (i, r) in draws.enumerated() {
                try w.write(
                    TraceRow(
                        requestID: i, arrivalSeconds: r.0, adapterName: r.1 % 10 == 9 ? nil : names[Int(r.1)],
                        promptTokens: Int(r.2), outputTokens: Int(r.3)))
            }
            try w.commit()
            return rows
        }
        report(label, d, rows, bytes: fileSize(path))
    }
    draws = []
    try CatalogueFile.write(catalogue, to: TraceFiles.cataloguePath(forTrace: jsonl))

    for (path, label) in [(csv, "CSV"), (jsonl, "JSONL")] {
        let (rowsOnly, n1) = try best {
            let r = try TraceFiles.openReader(path)
            var n = 0
            while try r.next() != nil { n += 1 }
            return n
        }
        report("read \(label) rows (parser only)", rowsOnly, n1, bytes: fileSize(path))
        let (full, n2) = try best {
            try TraceFiles.read(trace: path, catalogue: nil).requests.count
        }
        report("read \(label) into a Trace", full, n2, bytes: fileSize(path))
        precondition(n1 == rows && n2 == rows, "read \(n1) and \(n2) rows of \(rows)")
    }
} catch {
    print("trace-bench: \(error)")
    exit(1)
}
