/// The serving engine's limits; the keys and defaults of docs/engine-model.md.
public struct EngineConfig: Sendable, Equatable {
    /// Most sequences in one iteration.
    public var maxNumSeqs = 128
    /// Most tokens computed in one iteration.
    public var maxNumBatchedTokens = 4096
    /// Whether prompts may be split over iterations.
    public var chunkedPrefill = true
    /// Tokens per KV-cache block.
    public var blockSize = 16
    /// KV-cache blocks; nil derives them from memory (`derivedBlocks`).
    public var numGPUBlocks: Int?
    /// Share of GPU memory the engine may use.
    public var gpuMemoryUtilization = 0.90
    /// GiB kept for activations, graphs and the allocator.
    public var activationReserveGiB = 2.0
    /// Longest prompt + output, tokens.
    public var maxModelLen = 4096
    /// GPU adapter slots (most distinct adapters in a batch).
    public var maxLoras = 8
    /// Rank each slot is sized for.
    public var maxLoraRank = 64
    /// Adapters kept in host memory.
    public var maxCPULoras = 32
    /// Most waiting requests examined per scheduling pass.
    public var schedulerLookahead = 256

    /// The defaults.
    public init() {}

    /// KV-cache blocks that fit in the memory left after weights, adapter slots and the reserve.
    /// - Parameter slotModules: target modules each slot is sized for.
    public func derivedBlocks(model: ModelSpec, gpu: GPUSpec, slotModules: [String]) -> Int {
        let slotBytes = Double(model.adapterBytes(rank: maxLoraRank, modules: slotModules))
        let free =
            gpu.memoryBytes * gpuMemoryUtilization - Double(model.weightBytes) - Double(maxLoras) * slotBytes
            - activationReserveGiB * 1_073_741_824
        let perBlock = Double(blockSize * model.kvBytesPerToken)
        return max(0, Int((free / perBlock).rounded(.down)))
    }
}
