import Foundation
import TestSupport
import Testing
import Workloads

/// One bad input and where its error must point.
struct BadTrace: CustomTestStringConvertible, Sendable {
    let name: String
    let text: String
    let line: Int
    let field: String?
    let mentions: String
    var testDescription: String { name }
}

@Suite("Trace readers: bad input names the file, line and field")
struct TraceReaderErrorTests {
    static let header = "request_id,arrival_s,adapter,prompt_tokens,output_tokens\n"

    static let csvCases: [BadTrace] = [
        BadTrace(name: "empty file", text: "", line: 1, field: nil, mentions: "empty"),
        BadTrace(
            name: "missing column", text: "request_id,arrival_s,adapter,prompt_tokens\n", line: 1, field: "output_tokens",
            mentions: "expected"),
        BadTrace(
            name: "swapped columns", text: "arrival_s,request_id,adapter,prompt_tokens,output_tokens\n", line: 1, field: "request_id",
            mentions: "header"),
        BadTrace(name: "short row", text: header + "0,0.5,a0,12,3\n1,0.6,a0,12\n", line: 3, field: "output_tokens", mentions: "4 fields"),
        BadTrace(name: "number that does not parse", text: header + "0,0.5,a0,12x,3\n", line: 2, field: "prompt_tokens", mentions: "12x"),
        BadTrace(name: "bad time", text: header + "0,soon,a0,12,3\n", line: 2, field: "arrival_s", mentions: "soon"),
        BadTrace(name: "negative tokens", text: header + "0,0.5,a0,-4,3\n", line: 2, field: "prompt_tokens", mentions: "-4"),
        BadTrace(name: "zero output tokens", text: header + "0,0.5,a0,4,0\n", line: 2, field: "output_tokens", mentions: "at least 1"),
        BadTrace(
            name: "huge number", text: header + "0,0.5,a0,99999999999999999999999,3\n", line: 2, field: "prompt_tokens",
            mentions: "not an integer"),
        BadTrace(name: "infinite time", text: header + "0,1e999,a0,4,3\n", line: 2, field: "arrival_s", mentions: "finite"),
        BadTrace(name: "negative request id", text: header + "-1,0.5,a0,4,3\n", line: 2, field: "request_id", mentions: "at least 0"),
        BadTrace(
            name: "out of order", text: header + "0,2.0,a0,4,3\n1,1.0,a0,4,3\n", line: 3, field: "arrival_s", mentions: "must not decrease"),
        BadTrace(name: "duplicate id", text: header + "0,1.0,a0,4,3\n0,1.0,a0,4,3\n", line: 3, field: "request_id", mentions: "duplicate"),
        BadTrace(
            name: "adapter not in catalogue", text: header + "0,1.0,a0,4,3\n1,1.0,zz,4,3\n", line: 3, field: "adapter", mentions: "zz"),
        BadTrace(name: "unclosed quote", text: header + "0,1.0,\"a0,4,3\n", line: 2, field: nil, mentions: "quoted"),
    ]

    @Test("CSV trace errors", arguments: csvCases)
    func csv(_ c: BadTrace) throws {
        let folder = TemporaryFolder()
        let path = folder.write("bad.csv", c.text)
        let cat = folder.write("cat.csv", WorkloadFixtures.validCatalogueCSV)
        let error = try #require(throws: WorkloadError.self) { try TraceFiles.read(trace: path, catalogue: cat) }
        #expect(error.file == path)
        #expect(error.line == c.line)
        #expect(error.field == c.field)
        #expect(error.message.contains(c.mentions), "\(error)")
    }

    static let jsonlCases: [BadTrace] = [
        BadTrace(name: "not an object", text: "[1,2]\n", line: 1, field: nil, mentions: "object"),
        BadTrace(
            name: "missing key", text: #"{"request_id":0,"arrival_s":0,"adapter":null,"prompt_tokens":3}"# + "\n", line: 1,
            field: "output_tokens", mentions: "missing"),
        BadTrace(
            name: "string for a number", text: #"{"request_id":0,"arrival_s":"0","prompt_tokens":3,"output_tokens":3}"# + "\n", line: 1,
            field: "arrival_s", mentions: "number"),
        BadTrace(
            name: "unknown key", text: #"{"request_id":0,"arrival":0,"prompt_tokens":3,"output_tokens":3}"# + "\n", line: 1,
            field: "arrival", mentions: "unknown"),
        BadTrace(
            name: "negative tokens on line 2",
            text: #"{"request_id":0,"arrival_s":0,"prompt_tokens":3,"output_tokens":3}"# + "\n"
                + #"{"request_id":1,"arrival_s":0,"prompt_tokens":-3,"output_tokens":3}"# + "\n", line: 2, field: "prompt_tokens",
            mentions: "-3"),
        BadTrace(
            name: "truncated line", text: #"{"request_id":0,"arrival_s":0,"prompt_tok"# + "\n", line: 1, field: nil, mentions: "not closed"),
    ]

    @Test("JSONL trace errors", arguments: jsonlCases)
    func jsonl(_ c: BadTrace) throws {
        let folder = TemporaryFolder()
        let path = folder.write("bad.jsonl", c.text)
        let error = try #require(throws: WorkloadError.self) { try TraceFiles.read(trace: path, catalogue: nil) }
        #expect(error.file == path)
        #expect(error.line == c.line)
        #expect(error.field == c.field)
        #expect(error.message.contains(c.mentions), "\(error)")
    }

    static let catalogueCases: [BadTrace] = [
        BadTrace(name: "bad header", text: "name,rank,alpha,target_modules\n", line: 1, field: nil, mentions: "header"),
        BadTrace(name: "rank zero", text: "adapter,rank,alpha,target_modules\na0,0,16,q_proj\n", line: 2, field: "rank", mentions: ">= 1"),
        BadTrace(
            name: "duplicate", text: "adapter,rank,alpha,target_modules\na0,8,16,q_proj\na0,8,16,q_proj\n", line: 3, field: "adapter",
            mentions: "duplicate"),
        BadTrace(
            name: "empty module", text: "adapter,rank,alpha,target_modules\na0,8,16,q_proj;;v_proj\n", line: 2, field: "target_modules",
            mentions: "q_proj"),
        BadTrace(
            name: "alpha not a number", text: "adapter,rank,alpha,target_modules\na0,8,x,q_proj\n", line: 2, field: "alpha", mentions: "'x'"
        ),
    ]

    @Test("catalogue errors", arguments: catalogueCases)
    func catalogue(_ c: BadTrace) throws {
        let folder = TemporaryFolder()
        let path = folder.write("cat.csv", c.text)
        let error = try #require(throws: WorkloadError.self) { try CatalogueFile.read(path) }
        #expect(error.line == c.line)
        #expect(error.field == c.field)
        #expect(error.message.contains(c.mentions), "\(error)")
    }

    @Test("a missing file is an error naming it")
    func missingFile() throws {
        let error = try #require(throws: WorkloadError.self) { try TraceFiles.read(trace: "/nonexistent/x.csv", catalogue: nil) }
        #expect(error.file == "/nonexistent/x.csv")
        #expect(error.message.contains("cannot open"))
    }

    @Test("adapters named without any catalogue are an error unless collected")
    func noCatalogue() throws {
        let folder = TemporaryFolder()
        let path = folder.write("t.csv", WorkloadFixtures.validTraceCSV)
        let error = try #require(throws: WorkloadError.self) { try TraceFiles.read(trace: path, catalogue: nil) }
        #expect(error.line == 2 && error.field == "adapter")
        let trace = try TraceFiles.read(trace: path, catalogue: nil, collectUnknownAdapters: true)
        #expect(trace.catalogue.adapters.map(\.name) == ["a0", "a1"])
        #expect(trace.catalogue[0].rank == 0)
    }
}
