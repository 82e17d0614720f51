import Foundation
import TestSupport
import Testing
import Workloads

@Suite("The example trace")
struct ExampleTraceTests {
    static let folder = WorkloadFixtures.repositoryRoot + "/traces/examples"

    @Test("regenerating traces/examples/small.csv from its generator section gives the same bytes")
    func regenerates() throws {
        let specPath = Self.folder + "/small.generator.yaml"
        let text = try String(contentsOfFile: specPath, encoding: .utf8)
        let spec = try GeneratorSpec.parse(try YAMLReader.parse(text, file: specPath))
        let tmp = TemporaryFolder()
        try TraceFiles.write(spec.generate(seed: 1), to: tmp.file("small.csv"))
        for name in ["small.csv", "small.catalogue.csv"] {
            let committed = FileManager.default.contents(atPath: Self.folder + "/" + name)
            #expect(committed != nil && committed == FileManager.default.contents(atPath: tmp.file(name)), "\(name)")
        }
    }

    @Test("it reads with its catalogue and provenance")
    func reads() throws {
        let t = try TraceFiles.read(trace: Self.folder + "/small.csv", catalogue: nil)
        #expect(t.requests.count == 200)
        #expect(t.catalogue.count == 8)
        #expect(t.provenance["seed"] == "1")
    }
}
