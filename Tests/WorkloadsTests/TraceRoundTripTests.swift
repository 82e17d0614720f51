import Foundation
import TestSupport
import Testing
import Workloads

@Suite("Trace files round trip")
struct TraceRoundTripTests {
    @Test("write then read gives the same trace, bit for bit", arguments: TraceFormat.allCases)
    func roundTrip(format: TraceFormat) throws {
        let folder = TemporaryFolder()
        let trace = WorkloadFixtures.randomTrace(requests: 5000, seed: 7)
        let path = folder.file("t.\(format.rawValue)")
        try TraceFiles.write(trace, to: path)
        let back = try TraceFiles.read(trace: path, catalogue: nil)
        #expect(back.requests == trace.requests)
        #expect(back.requests.map(\.arrivalSeconds.bitPattern) == trace.requests.map(\.arrivalSeconds.bitPattern))
        #expect(back.catalogue == trace.catalogue)
        #expect(back.provenance == trace.provenance)
    }

    @Test("CSV -> JSONL -> CSV row by row gives the same bytes")
    func convertBothWays() throws {
        let folder = TemporaryFolder()
        let trace = WorkloadFixtures.randomTrace(requests: 3000, seed: 11)
        let csv = folder.file("a.csv")
        try TraceFiles.write(trace, to: csv)
        for (from, to) in [(csv, folder.file("b.jsonl")), (folder.file("b.jsonl"), folder.file("c.csv"))] {
            let reader = try TraceFiles.openReader(from)
            let writer = try TraceWriter(path: to)
            while let row = try reader.next() { try writer.write(row) }
            try writer.commit()
        }
        let a = try #require(FileManager.default.contents(atPath: csv))
        let c = try #require(FileManager.default.contents(atPath: folder.file("c.csv")))
        #expect(a == c)
    }

    @Test("the catalogue file round trips, with and without base_model")
    func catalogue() throws {
        let folder = TemporaryFolder()
        for cat in [WorkloadFixtures.catalogue, AdapterCatalogue(Array(WorkloadFixtures.catalogue.adapters.prefix(2)))] {
            let p = folder.file("cat.csv")
            try CatalogueFile.write(cat, to: p)
            #expect(try CatalogueFile.read(p) == cat)
            let header = try String(contentsOfFile: p, encoding: .utf8).split(separator: "\n").first
            #expect(header == (cat.count == 3 ? "adapter,rank,alpha,target_modules,base_model" : "adapter,rank,alpha,target_modules"))
        }
    }

    @Test("the written CSV has the contract's exact header and an empty adapter for the base model")
    func csvShape() throws {
        let folder = TemporaryFolder()
        let trace = Trace(
            requests: [
                TraceRequest(requestID: 0, arrivalSeconds: 0.1, adapter: -1, promptTokens: 3, outputTokens: 4),
                TraceRequest(requestID: 1, arrivalSeconds: 1e-5, adapter: 0, promptTokens: 5, outputTokens: 6),
            ], catalogue: WorkloadFixtures.catalogue)
        let p = folder.file("x.csv")
        try TraceFiles.write(trace, to: p)
        let text = try String(contentsOfFile: p, encoding: .utf8)
        #expect(text == "request_id,arrival_s,adapter,prompt_tokens,output_tokens\n0,0.1,,3,4\n1,1e-05,a0,5,6\n")
    }

    @Test("a valid hand-written file reads as expected")
    func validFile() throws {
        let folder = TemporaryFolder()
        let t = folder.write("v.csv", WorkloadFixtures.validTraceCSV)
        let c = folder.write("v.catalogue.csv", WorkloadFixtures.validCatalogueCSV)
        let trace = try TraceFiles.read(trace: t, catalogue: c)
        #expect(trace.requests.map(\.adapter) == [0, -1, 1, 0, 1])
        #expect(trace.requests.map(\.arrivalSeconds) == [0, 0.25, 0.25, 15, 100.125])
        #expect(trace.requests.map(\.promptTokens) == [128, 512, 1000, 7, 42])
        #expect(trace.catalogue.count == 2)
    }

    @Test("nothing is half-written: a failed write leaves the old file in place and no temporary file")
    func atomicWrite() throws {
        let folder = TemporaryFolder()
        let p = folder.write("keep.csv", "old contents\n")
        let bad = Trace(
            requests: [TraceRequest(requestID: 0, arrivalSeconds: 0, adapter: 99, promptTokens: 1, outputTokens: 1)],
            catalogue: WorkloadFixtures.catalogue)
        #expect(throws: WorkloadError.self) { try TraceFiles.write(bad, to: p) }
        #expect(try String(contentsOfFile: p, encoding: .utf8) == "old contents\n")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["keep.csv"])
    }
}
