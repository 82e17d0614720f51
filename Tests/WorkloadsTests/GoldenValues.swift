/// Recorded output of `GeneratorDeterminismTests.spec` with seed 42 (x86-64 Linux, GSL 2.7).
enum GoldenValues {
    static let arrivalBits: [UInt64] = [0, 4_579_936_138_313_759_732, 4_579_938_295_900_073_886, 4_601_233_394_950_597_120]
    static let adapters = [0, 0, 0, 12]
    static let prompts = [3000, 1742, 100, 404]
    static let ranks = [16, 64, 64, 8, 32, 64]
}
