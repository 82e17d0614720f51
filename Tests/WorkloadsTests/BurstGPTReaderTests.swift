import Foundation
import TestSupport
import Testing
import Workloads

@Suite("BurstGPT reader")
struct BurstGPTReaderTests {
    static let v1 = """
        Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type
        5,ChatGPT,472,18,490,Conversation log
        45,ChatGPT,1087,0,1087,Conversation log
        118,GPT-4,417,276,693,Conversation log
        131,ChatGPT,1360,0,1360,API log
        160,ChatGPT,150,30,180,API log
        """

    static let v2 = """
        Timestamp,Session ID,Elapsed time,Model,Request tokens,Response tokens,Total tokens,Log Type
        0.5,s1,1.25,ChatGPT,100,10,110,Conversation log
        2.5,s1,0.75,GPT-4,200,0,200,Conversation log
        4.0,s2,2.0,ChatGPT,300,30,330,API log

        """

    @Test("failed rows (zero response tokens) are skipped and counted")
    func failures() throws {
        let folder = TemporaryFolder()
        let reader = try BurstGPTReader(path: folder.write("b.csv", Self.v1))
        let trace = try TraceImporter(reader, options: ImportOptions()).readTrace()
        #expect(trace.requests.map(\.arrivalSeconds) == [0, 113, 155])
        #expect(trace.requests.map(\.promptTokens) == [472, 417, 150])
        #expect(trace.requests.map(\.outputTokens) == [18, 276, 30])
        #expect(trace.requests.map(\.requestID) == [0, 1, 2])
        #expect(reader.skipped == ["zero Response tokens (failed)": 2])
        #expect(trace.provenance["skipped: zero Response tokens (failed)"] == "2")
    }

    @Test("the newer release's columns are accepted, and model and log type filter rows")
    func newerColumnsAndFilters() throws {
        let folder = TemporaryFolder()
        let p = folder.write("b2.csv", Self.v2)
        #expect(try TraceSource.detect(p) == .burstgpt)
        let all = try TraceImporter(try BurstGPTReader(path: p), options: ImportOptions()).readTrace()
        #expect(all.requests.map(\.arrivalSeconds) == [0, 3.5])
        let reader = try BurstGPTReader(path: folder.write("b1.csv", Self.v1), model: "ChatGPT", logType: "API log")
        let api = try TraceImporter(reader, options: ImportOptions()).readTrace()
        #expect(api.requests.map(\.promptTokens) == [150])
        #expect(api.requests.first?.arrivalSeconds == 155)
        #expect(reader.skipped == ["other log type": 2, "other model": 1, "zero Response tokens (failed)": 1])
    }

    @Test("a negative token count names its line and column")
    func negative() throws {
        let folder = TemporaryFolder()
        let p = folder.write("b.csv", "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\n1,ChatGPT,-5,3,8,API log\n")
        let e = try #require(throws: WorkloadError.self) {
            try TraceImporter(try BurstGPTReader(path: p), options: ImportOptions()).readTrace()
        }
        #expect(e.line == 2 && e.field == "Request tokens")
    }
}
