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

    @Test("a value of the wrong type says what was expected", arguments: [
        ("engine:\n  max_loras: many\n", "engine.max_loras", "integer"),
        ("engine:\n  chunked_prefill: maybe\n", "engine.chunked_prefill", "true or false"),
        ("engine:\n  max_loras: 8\n  max_cpu_loras: 4\n", "engine.max_cpu_loras", "at least max_loras"),
        ("replicas: 0\n", "replicas", "at least 1"),
        ("model: gpt-5\n", "model", "unknown model"),
        ("cost_model: {kind: linear}\n", "cost_model.base_s", "missing"),
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
