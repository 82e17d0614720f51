import Foundation
import TestSupport
import Testing
import Workloads

@Suite("Trace readers under mutated input")
struct TraceFuzzTests {
    /// A seeded mutation of `bytes`: cut lines, swapped columns, garbage bytes, huge numbers,
    /// duplicated or deleted lines, or an empty file.
    static func mutate(_ bytes: [UInt8], _ rng: RandomSource) -> [UInt8] {
        var b = bytes
        for _ in 0..<(1 + rng.uniformInt(3)) {
            guard !b.isEmpty else { return b }
            let at = rng.uniformInt(b.count)
            switch rng.uniformInt(9) {
            case 0: b.removeSubrange(at..<min(b.count, at + 1 + rng.uniformInt(40)))
            case 1: for k in at..<min(b.count, at + 1 + rng.uniformInt(8)) { b[k] = UInt8(rng.uniformInt(256)) }
            case 2: b.insert(contentsOf: Array(String(repeating: "9", count: 5 + rng.uniformInt(400)).utf8), at: at)
            case 3:
                b.insert(contentsOf: Array([",", "\"", "\n", "\r", "-", ".", "e", "{", "}", ":", "\\"][rng.uniformInt(11)].utf8), at: at)
            case 4: b = Array(b.prefix(at))
            case 5:
                var lines = b.split(separator: 10, omittingEmptySubsequences: false).map(Array.init)
                let i = rng.uniformInt(lines.count)
                let j = rng.uniformInt(lines.count)
                lines.swapAt(i, j)
                b = Array(lines.joined(separator: [10]))
            case 6:
                var lines = b.split(separator: 10, omittingEmptySubsequences: false).map(Array.init)
                var cols = lines[rng.uniformInt(lines.count)].split(separator: 44, omittingEmptySubsequences: false).map(Array.init)
                if cols.count > 1 { cols.swapAt(rng.uniformInt(cols.count), rng.uniformInt(cols.count)) }
                let i = rng.uniformInt(lines.count)
                lines[i] = Array(cols.joined(separator: [44]))
                b = Array(lines.joined(separator: [10]))
            case 7: b.insert(contentsOf: Array("1e308".utf8), at: at)
            default: if rng.uniformInt(20) == 0 { b = [] }
            }
        }
        return b
    }

    @Test("1,500 mutated files per format give an error naming a line, or a valid trace", arguments: TraceFormat.allCases)
    func fuzz(format: TraceFormat) throws {
        let folder = TemporaryFolder()
        let valid = WorkloadFixtures.randomTrace(requests: 40, seed: 3)
        let source = folder.file("valid.\(format.rawValue)")
        try TraceFiles.write(valid, to: source)
        let bytes = Array(try #require(FileManager.default.contents(atPath: source)))
        let cataloguePath = TraceFiles.cataloguePath(forTrace: source)
        let rng = RandomSource(seed: 99)
        var errors = 0
        var traces = 0
        for i in 0..<1500 {
            let path = folder.write("m\(i % 10).\(format.rawValue)", bytes: Self.mutate(bytes, rng))
            do {
                let t = try TraceFiles.read(trace: path, catalogue: cataloguePath)
                traces += 1
                // A trace that reads is valid: order, lengths and adapters hold.
                #expect(zip(t.requests, t.requests.dropFirst()).allSatisfy { $0.arrivalSeconds <= $1.arrivalSeconds })
                #expect(t.requests.allSatisfy { $0.promptTokens >= 1 && $0.outputTokens >= 1 && $0.requestID >= 0 })
                #expect(t.requests.allSatisfy { $0.adapter >= -1 && $0.adapter < t.catalogue.count })
                #expect(Set(t.requests.map(\.requestID)).count == t.requests.count)
            } catch {
                errors += 1
                #expect(error.line != nil, "\(error)")
                #expect(error.file == path)
            }
        }
        #expect(errors + traces == 1500)
        #expect(errors > 500)
    }

    /// Another file kind the fuzzer feeds: its valid text and how to read it.
    enum Source: String, CaseIterable, Sendable {
        case azure, burstgpt, catalogue
    }

    @Test("400 mutated files per other reader give an error naming a line, or rows", arguments: Source.allCases)
    func fuzzOthers(_ source: Source) throws {
        let folder = TemporaryFolder()
        let valid: String
        switch source {
        case .azure:
            let text = try String(contentsOfFile: WorkloadFixtures.azureTrace("code"), encoding: .utf8)
            valid = text.split(separator: "\n").prefix(40).joined(separator: "\n") + "\n"
        case .burstgpt:
            valid = BurstGPTReaderTests.v1 + "\n" + BurstGPTReaderTests.v2.split(separator: "\n").dropFirst().joined(separator: "\n")
        case .catalogue:
            let p = folder.file("c.csv")
            try CatalogueFile.write(WorkloadFixtures.catalogue, to: p)
            valid = try String(contentsOfFile: p, encoding: .utf8)
        }
        let rng = RandomSource(seed: 1234)
        var errors = 0
        for i in 0..<400 {
            let path = folder.write("m\(i % 10).csv", bytes: Self.mutate(Array(valid.utf8), rng))
            do {
                switch source {
                case .azure:
                    let t = try TraceImporter(try AzureTraceReader(path: path), options: ImportOptions()).readTrace()
                    #expect(t.requests.allSatisfy { $0.arrivalSeconds >= 0 && $0.promptTokens >= 1 && $0.outputTokens >= 1 })
                case .burstgpt:
                    let t = try TraceImporter(try BurstGPTReader(path: path), options: ImportOptions()).readTrace()
                    #expect(t.requests.allSatisfy { $0.arrivalSeconds >= 0 && $0.promptTokens >= 1 && $0.outputTokens >= 1 })
                case .catalogue:
                    let c = try CatalogueFile.read(path)
                    #expect(c.adapters.allSatisfy { $0.rank >= 1 && !$0.name.isEmpty && !$0.targetModules.isEmpty })
                }
            } catch {
                errors += 1
                #expect(error.line != nil, "\(error)")
            }
        }
        #expect(errors > 120)
    }
}
