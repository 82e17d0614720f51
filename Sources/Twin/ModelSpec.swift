/// The shape of a decoder-only transformer (Llama architecture), enough to cost a step.
public struct ModelSpec: Sendable, Equatable {
    /// Name, e.g. `llama-2-7b`.
    public var name: String
    /// Decoder layers.
    public var layers: Int
    /// Hidden size h.
    public var hiddenSize: Int
    /// MLP intermediate size.
    public var intermediateSize: Int
    /// Attention heads.
    public var heads: Int
    /// Key/value heads (equal to `heads` without grouped-query attention).
    public var kvHeads: Int
    /// Vocabulary size.
    public var vocabularySize: Int
    /// Bytes per weight and per KV element (2 for fp16/bf16).
    public var dtypeBytes: Int

    /// Creates a model spec.
    public init(
        name: String, layers: Int, hiddenSize: Int, intermediateSize: Int, heads: Int, kvHeads: Int,
        vocabularySize: Int, dtypeBytes: Int = 2
    ) {
        self.name = name
        self.layers = layers
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.heads = heads
        self.kvHeads = kvHeads
        self.vocabularySize = vocabularySize
        self.dtypeBytes = dtypeBytes
    }

    /// Llama-2-7B.
    public static let llama2_7b = ModelSpec(
        name: "llama-2-7b", layers: 32, hiddenSize: 4096, intermediateSize: 11008, heads: 32, kvHeads: 32,
        vocabularySize: 32000)
    /// Llama-2-13B.
    public static let llama2_13b = ModelSpec(
        name: "llama-2-13b", layers: 40, hiddenSize: 5120, intermediateSize: 13824, heads: 40, kvHeads: 40,
        vocabularySize: 32000)
    /// The built-in models by name.
    public static let builtIn: [String: ModelSpec] = [llama2_7b.name: llama2_7b, llama2_13b.name: llama2_13b]

    /// Dimension of one attention head.
    public var headDim: Int { hiddenSize / heads }

    /// Input and output sizes of a projection module (`q_proj` ... `down_proj`), nil if unknown.
    public func moduleShape(_ module: String) -> (inputs: Int, outputs: Int)? {
        let kv = kvHeads * headDim
        switch module {
        case "q_proj", "o_proj": return (hiddenSize, hiddenSize)
        case "k_proj", "v_proj": return (hiddenSize, kv)
        case "gate_proj", "up_proj": return (hiddenSize, intermediateSize)
        case "down_proj": return (intermediateSize, hiddenSize)
        default: return nil
        }
    }

    /// Names of every projection module of a layer.
    public static let projectionModules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

    /// Parameters of the projection matrices of one layer.
    public var linearParametersPerLayer: Int {
        Self.projectionModules.reduce(0) { s, m in
            let (i, o) = moduleShape(m)!
            return s + i * o
        }
    }

    /// All parameters: layers, embeddings, LM head and norms.
    public var parameters: Int {
        layers * (linearParametersPerLayer + 2 * hiddenSize) + 2 * vocabularySize * hiddenSize + hiddenSize
    }

    /// Bytes of all weights.
    public var weightBytes: Int { parameters * dtypeBytes }

    /// Bytes of KV cache per token: keys and values, every layer.
    public var kvBytesPerToken: Int { 2 * layers * kvHeads * headDim * dtypeBytes }

    /// Bytes of a LoRA adapter of `rank` on `modules` (A and B of every layer).
    public func adapterBytes(rank: Int, modules: [String]) -> Int {
        modules.reduce(0) { s, m in
            guard let (i, o) = moduleShape(m) else { return s }
            return s + layers * rank * (i + o) * dtypeBytes
        }
    }
}
