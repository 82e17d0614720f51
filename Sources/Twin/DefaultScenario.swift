/// The built-in scenario `loratwin simulate` runs with no argument: Llama-2-7B on one H200 (the
/// project's GPU machine), 32 adapters of mixed ranks with Zipf popularity, bursty (Gamma, CV 2)
/// arrivals at 5 requests/s (about what the measured H200 profile sustains for these lengths, so
/// bursts queue), and
/// prompt/output lengths log-normal with the means and
/// log-spreads of the Azure LLM inference conversation trace 2023 (prompt 1155 tokens, sigma
/// 0.99; output 211 tokens, sigma 0.86).
public enum DefaultScenario {
    /// The scenario as YAML (what `loratwin simulate --print-default` prints). No `cost_model`:
    /// the measured profile `profiles/h200-llama2-7b` when found, else the analytic model.
    public static let yaml = """
        # LoRA Twin default scenario: a multi-tenant adapter fleet on one H200.
        name: default-h200-llama2-7b
        seed: 42
        model: llama-2-7b
        gpu: h200
        replicas: 1
        placement: all
        engine:
          max_num_seqs: 128
          max_num_batched_tokens: 4096
          chunked_prefill: true
          block_size: 16
          max_model_len: 4096
          max_loras: 8
          max_lora_rank: 64
          max_cpu_loras: 16
        workload:
          requests: 3000
          arrival: {kind: gamma, rate: 5, cv: 2}
          popularity: {kind: zipf, exponent: 1.0}
          prompt_tokens: {kind: lognormal, mean: 1155, sigma: 0.99, min: 4, max: 3000}
          output_tokens: {kind: lognormal, mean: 211, sigma: 0.86, min: 1, max: 1000}
          adapters:
            count: 32
            ranks: {8: 1, 16: 1, 32: 1, 64: 1}
            alpha: 16
            target_modules: [q_proj, k_proj, v_proj, o_proj]

        """

    /// The parsed default scenario.
    public static func scenario() throws -> Scenario {
        try Scenario.parse(yaml, file: "<default scenario>", baseDirectory: ".")
    }
}
