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
        #expect(try TraceFiles.convert(csv, to: folder.file("b.jsonl")) == 3000)
        #expect(try TraceFiles.convert(folder.file("b.jsonl"), to: folder.file("c.csv")) == 3000)
        #expect(try CatalogueFile.read(folder.file("c.catalogue.csv")) == trace.catalogue)
        #expect(TraceFiles.readMeta(folder.file("c.csv"))["converted_from"] == folder.file("b.jsonl"))
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
                TraceRequest(requestID: 0, arrivalSeconds: 1e-5, adapter: -1, promptTokens: 3, outputTokens: 4),
                TraceRequest(requestID: 1, arrivalSeconds: 0.1, adapter: 0, promptTokens: 5, outputTokens: 6),
            ], catalogue: WorkloadFixtures.catalogue)
        let p = folder.file("x.csv")
        try TraceFiles.write(trace, to: p)
        let text = try String(contentsOfFile: p, encoding: .utf8)
        #expect(text == "request_id,arrival_s,adapter,prompt_tokens,output_tokens\n0,1e-05,,3,4\n1,0.1,a0,5,6\n")
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

    @Test("converting checks adapters against the catalogue beside the input")
    func convertChecksAdapters() throws {
        let folder = TemporaryFolder()
        folder.write("t.csv", WorkloadFixtures.validTraceCSV.replacingOccurrences(of: "3,1.5e1,a0", with: "3,1.5e1,zz"))
        folder.write("t.catalogue.csv", WorkloadFixtures.validCatalogueCSV)
        let e = try #require(throws: WorkloadError.self) { try TraceFiles.convert(folder.file("t.csv"), to: folder.file("u.jsonl")) }
        #expect(e.line == 5 && e.field == "adapter")
        #expect(!FileManager.default.fileExists(atPath: folder.file("u.jsonl")))
    }

    @Test("an imported trace written to a file reads back the same, with its catalogue and provenance")
    func importedToFile() throws {
        let folder = TemporaryFolder()
        let options = ImportOptions(
            limit: 300,
            adapters: AdapterAssignment(
                catalogue: CatalogueSpec(count: 5, ranks: [(8, 1)], alpha: 8, targetModules: ["q_proj"]), popularity: .uniform, seed: 2))
        let direct = try TraceImporter(try AzureTraceReader(path: WorkloadFixtures.azureTrace("conv")), options: options).readTrace()
        let importer = try TraceImporter(try AzureTraceReader(path: WorkloadFixtures.azureTrace("conv")), options: options)
        #expect(try TraceFiles.write(importer, to: folder.file("conv.csv")) == 300)
        let back = try TraceFiles.read(trace: folder.file("conv.csv"), catalogue: nil)
        #expect(back.requests == direct.requests)
        #expect(back.catalogue == direct.catalogue)
        #expect(back.provenance == direct.provenance)
    }

    @Test(
        "the writer refuses rows the readers would reject, naming the output line, and writes nothing",
        arguments: [
            (TraceRow(requestID: 1, arrivalSeconds: 0.5, adapterName: nil, promptTokens: 1, outputTokens: 1), "arrival_s"),
            (TraceRow(requestID: 0, arrivalSeconds: 2, adapterName: nil, promptTokens: 1, outputTokens: 1), "request_id"),
            (TraceRow(requestID: 1, arrivalSeconds: 2, adapterName: nil, promptTokens: 0, outputTokens: 1), "prompt_tokens"),
            (TraceRow(requestID: 1, arrivalSeconds: .nan, adapterName: nil, promptTokens: 1, outputTokens: 1), "arrival_s"),
            (TraceRow(requestID: 1, arrivalSeconds: 2, adapterName: " a0", promptTokens: 1, outputTokens: 1), "adapter"),
        ])
    func writerValidates(_ row: TraceRow, _ field: String) throws {
        let folder = TemporaryFolder()
        for format in TraceFormat.allCases {
            let path = folder.file("w.\(format.rawValue)")
            let w = try TraceWriter(path: path)
            try w.write(TraceRow(requestID: 0, arrivalSeconds: 1, adapterName: "a0", promptTokens: 3, outputTokens: 4))
            let e = try #require(throws: WorkloadError.self) { try w.write(row) }
            #expect(e.file == path && e.field == field)
            #expect(e.line == (format == .csv ? 3 : 2))
            #expect(!FileManager.default.fileExists(atPath: path))
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)
    }

    @Test("writing into a folder that does not exist yet makes it")
    func makesFolder() throws {
        let folder = TemporaryFolder()
        let path = folder.file("out/deeper/t.jsonl")
        try TraceFiles.write(WorkloadFixtures.randomTrace(requests: 3, seed: 1), to: path)
        #expect(try TraceFiles.read(trace: path, catalogue: nil).requests.count == 3)
    }
}
