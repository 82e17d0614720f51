import Foundation
import TestSupport
import Testing

@testable import Workloads

/// A real trace and what it must read as (percentiles computed independently with Python's csv
/// module, nearest rank).
struct AzureCase: Sendable, CustomTestStringConvertible {
    let kind: String
    let requests: Int
    let durationSeconds: Double
    let prompt: [Int]
    let output: [Int]
    var testDescription: String { kind }
}

@Suite("Azure LLM inference trace 2023")
struct AzureTraceReaderTests {
    // Neither file ends with a newline, so `wc -l` minus the header undercounts each by one.
    static let cases = [
        AzureCase(
            kind: "code", requests: 8819, durationSeconds: 3435.948056,
            prompt: [3, 147, 578, 1469, 2745, 5194, 7436, 7437], output: [6, 7, 9, 13, 24, 55, 252, 1899]),
        AzureCase(
            kind: "conv", requests: 19366, durationSeconds: 3501.721937,
            prompt: [2, 207, 396, 1020, 1189, 2735, 4142, 14050], output: [7, 54, 85, 129, 395, 424, 601, 1000]),
    ]

    @Test("the code and conversation traces read without error, with their counts and percentiles", arguments: cases)
    func realTrace(_ c: AzureCase) throws {
        let reader = try AzureTraceReader(path: WorkloadFixtures.azureTrace(c.kind))
        let trace = try TraceImporter(reader, options: ImportOptions()).readTrace()
        let s = TraceSummary(trace)
        #expect(s.requests == c.requests)
        #expect(abs(s.durationSeconds - c.durationSeconds) < 1e-6)
        #expect(s.promptPercentiles == c.prompt)
        #expect(s.outputPercentiles == c.output)
        #expect(trace.requests.first?.arrivalSeconds == 0)
        #expect(trace.requests.map(\.requestID) == Array(0..<c.requests))
        #expect(trace.requests.allSatisfy { $0.adapter == TraceRequest.baseModel })
        #expect(reader.skipped.isEmpty)
        #expect(try TraceSource.detect(WorkloadFixtures.azureTrace(c.kind)) == .azure)
    }

    @Test(
        "timestamps become exact 100 ns ticks since 1970",
        arguments: [
            ("1970-01-01 00:00:00", 0),
            ("1970-01-01 00:00:00.0000001", 1),
            ("2000-03-01 00:00:00", 951_868_800 * 10_000_000),
            ("2023-11-16 18:17:03.9799600", 1_700_158_623 * 10_000_000 + 9_799_600),
            ("2024-02-29T23:59:59.5", 1_709_251_199 * 10_000_000 + 5_000_000),
        ])
    func ticks(_ text: String, _ expected: Int) {
        var b = Array(text.utf8)
        #expect(b.withUnsafeMutableBufferPointer { AzureTraceReader.ticks(UnsafeBufferPointer($0)) } == expected)
    }

    @Test(
        "bad timestamps are rejected",
        arguments: ["2023-11-16", "2023-13-01 00:00:00", "2023-11-16 18:17:03.12345678", "2023/11/16 18:17:03", "x"])
    func badTicks(_ text: String) {
        var b = Array(text.utf8)
        #expect(b.withUnsafeMutableBufferPointer { AzureTraceReader.ticks(UnsafeBufferPointer($0)) } == nil)
    }

    @Test("a bad row names its line and column")
    func badRow() throws {
        let folder = TemporaryFolder()
        let p = folder.write(
            "a.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.9799600,10,3\n2023-11-16 18:17:04.0,ten,3\n")
        let reader = try AzureTraceReader(path: p)
        let e = try #require(throws: WorkloadError.self) { try TraceImporter(reader, options: ImportOptions()).readTrace() }
        #expect(e.line == 3 && e.field == "ContextTokens")
        let missing = folder.write("b.csv", "TIMESTAMP,ContextTokens\n")
        let e2 = try #require(throws: WorkloadError.self) { try AzureTraceReader(path: missing) }
        #expect(e2.line == 1 && e2.field == "GeneratedTokens")
    }
}
