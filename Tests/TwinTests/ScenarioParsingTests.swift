import Testing
import Twin
import Workloads

@Suite("Scenario files")
struct ScenarioParsingTests {
    func parseError(_ yaml: String) -> WorkloadError? {
        do {
            _ = try Scenario.parse(yaml, file: "s.yaml", baseDirectory: ".")
            return nil
        } catch { return error }
    }

    @Test("the default scenario parses and runs")
    func defaultScenario() throws {
        let s = try DefaultScenario.scenario()
        #expect(s.engine.maxLoras == 8 && s.replicas == 1 && s.costModel == .automatic)
    }

    @Test("a misspelt key is named with its line")
    func unknownKey() {
        let e = parseError("name: x\nengine:\n  max_num_seq: 4\nworkload: {requests: 3, arrival: {kind: poisson, rate: 1}}\n")
        #expect(e?.file == "s.yaml")
        #expect(e?.field == "engine.max_num_seq")
        #expect(e?.line == 3)
        #expect(e?.description.contains("unknown key") == true)
    }

    @Test(
        "a value of the wrong type says what was expected",
        arguments: [
            ("engine:\n  max_loras: many\n", "engine.max_loras", "integer"),
            ("engine:\n  chunked_prefill: maybe\n", "engine.chunked_prefill", "true or false"),
            ("engine:\n  max_loras: 8\n  max_cpu_loras: 4\n", "engine.max_cpu_loras", "at least max_loras"),
            ("replicas: 0\n", "replicas", "at least 1"),
            ("model: gpt-5\n", "model", "unknown model"),
            ("cost_model: {kind: linear}\n", "cost_model.base_s", "missing"),
            ("cost_model: {kind: measured, profile: p, closed_loop: sometimes}\n", "cost_model.closed_loop", "true or false"),
        ])
    func wrongValues(yaml: String, field: String, message: String) {
        let e = parseError(yaml + "workload: {requests: 3, arrival: {kind: poisson, rate: 1}}\n")
        #expect(e?.field == field)
        #expect(e?.message.contains(message) == true, "\(String(describing: e))")
        #expect(e?.line != nil)
    }

    @Test("a missing workload is an error")
    func missingWorkload() {
        #expect(parseError("name: x\n")?.field == "workload")
    }

    @Test("a YAML syntax error names the line")
    func syntaxError() {
        let e = parseError("name: x\nengine: [1, 2\n")
        #expect(e?.line != nil)
    }
}

@Suite("KV-cache sizing")
struct KVSizingTests {
    @Test("derived KV blocks follow the page's formula and agree with the engine on the H100")
    func h100Blocks() {
        // (85,017,493,504 x 0.9 - 13,476,831,232 weight bytes (6,738,415,616 parameters) - 8 x 134,217,728 slot bytes
        //  - 2 GiB) / (16 x 524,288) = 7130.8 -> 7130, the count the live engine derived on the
        // H100 (docs/engine.md).
        let blocks = EngineConfig().derivedBlocks(
            model: .llama2_7b, gpu: .h100, slotModules: ["q_proj", "k_proj", "v_proj", "o_proj"])
        #expect(ModelSpec.llama2_7b.weightBytes == 13_476_831_232)
        #expect(ModelSpec.llama2_7b.kvBytesPerToken == 524_288)
        #expect(ModelSpec.llama2_7b.adapterBytes(rank: 64, modules: ["q_proj", "k_proj", "v_proj", "o_proj"]) == 134_217_728)
        #expect(blocks == 7130)
    }
}
