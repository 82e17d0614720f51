/// The hardware figures the analytic step-cost model uses.
public struct GPUSpec: Sendable, Equatable {
    /// Name, e.g. `h100-sxm-80gb`.
    public var name: String
    /// Device memory in bytes.
    public var memoryBytes: Double
    /// Dense fp16 tensor-core rate, FLOP/s.
    public var peakFlopsPerSecond: Double
    /// HBM bandwidth, bytes/s (read + write).
    public var memoryBytesPerSecond: Double
    /// Host-to-device copy bandwidth from pinned memory, bytes/s.
    public var hostToDeviceBytesPerSecond: Double
    /// Disk-to-host read bandwidth for adapter files, bytes/s.
    public var diskToHostBytesPerSecond: Double
    /// Fixed cost of one adapter transfer (setup, synchronisation), seconds.
    public var loadLatencySeconds: Double
    /// Fixed host overhead of one iteration (scheduling, launch, sampling), seconds.
    public var iterationOverheadSeconds: Double
    /// Host overhead per sequence in the batch, seconds.
    public var perSequenceOverheadSeconds: Double
    /// Cost of one LoRA kernel launch inside the step, seconds.
    public var loraLaunchSeconds: Double
    /// Share of the peak FLOP rate large matrix products reach.
    public var matmulEfficiency: Double
    /// Share of the HBM bandwidth streaming kernels reach.
    public var bandwidthEfficiency: Double

    /// Creates a GPU spec.
    public init(
        name: String, memoryBytes: Double, peakFlopsPerSecond: Double, memoryBytesPerSecond: Double,
        hostToDeviceBytesPerSecond: Double, diskToHostBytesPerSecond: Double, loadLatencySeconds: Double,
        iterationOverheadSeconds: Double, perSequenceOverheadSeconds: Double, loraLaunchSeconds: Double,
        matmulEfficiency: Double, bandwidthEfficiency: Double
    ) {
        self.name = name
        self.memoryBytes = memoryBytes
        self.peakFlopsPerSecond = peakFlopsPerSecond
        self.memoryBytesPerSecond = memoryBytesPerSecond
        self.hostToDeviceBytesPerSecond = hostToDeviceBytesPerSecond
        self.diskToHostBytesPerSecond = diskToHostBytesPerSecond
        self.loadLatencySeconds = loadLatencySeconds
        self.iterationOverheadSeconds = iterationOverheadSeconds
        self.perSequenceOverheadSeconds = perSequenceOverheadSeconds
        self.loraLaunchSeconds = loraLaunchSeconds
        self.matmulEfficiency = matmulEfficiency
        self.bandwidthEfficiency = bandwidthEfficiency
    }

    /// H100 SXM 80GB. Memory, peak fp16 rate and HBM bandwidth are the figures measured on the
    /// project's GPU machine (profiles/h100-llama2-7b/meta.json: 85,017,493,504 bytes as PyTorch
    /// reports them, 752 TFLOP/s matmul, 3.0 TB/s device copy); host-device and disk figures are
    /// PCIe Gen5 x16 and NVMe datasheet orders of magnitude (assumptions, analytic).
    public static let h100 = GPUSpec(
        name: "h100-sxm-80gb", memoryBytes: 85_017_493_504, peakFlopsPerSecond: 755e12, memoryBytesPerSecond: 3.0e12,
        hostToDeviceBytesPerSecond: 25e9, diskToHostBytesPerSecond: 2e9, loadLatencySeconds: 200e-6,
        iterationOverheadSeconds: 1.5e-3, perSequenceOverheadSeconds: 10e-6, loraLaunchSeconds: 1.5e-6,
        matmulEfficiency: 0.75, bandwidthEfficiency: 0.85)
    /// H200 141GB (datasheet ratios over the H100 figures).
    public static let h200 = GPUSpec(
        name: "h200-141gb", memoryBytes: 141e9, peakFlopsPerSecond: 790e12, memoryBytesPerSecond: 4.3e12,
        hostToDeviceBytesPerSecond: 25e9, diskToHostBytesPerSecond: 2e9, loadLatencySeconds: 200e-6,
        iterationOverheadSeconds: 1.5e-3, perSequenceOverheadSeconds: 10e-6, loraLaunchSeconds: 1.5e-6,
        matmulEfficiency: 0.75, bandwidthEfficiency: 0.85)
    /// The built-in GPUs by name.
    public static let builtIn: [String: GPUSpec] = [h100.name: h100, "h100": h100, h200.name: h200, "h200": h200]
}
