import Foundation
import Testing
import Workloads

@testable import Workloads

@Suite("Field parsing from bytes")
struct FieldParserTests {
    private func double(_ s: String) -> Double? {
        var bytes = Array(s.utf8)
        return bytes.withUnsafeMutableBufferPointer { FieldParser.double(UnsafeBufferPointer($0)) }
    }

    private func int(_ s: String) -> Int? {
        var bytes = Array(s.utf8)
        return bytes.withUnsafeMutableBufferPointer { FieldParser.int(UnsafeBufferPointer($0)) }
    }

    @Test("doubles parse exactly as strtod, over 200,000 seeded random texts")
    func matchesStrtod() {
        let rng = RandomSource(seed: 2024)
        var mismatches: [String] = []
        for i in 0..<200_000 {
            let text: String
            switch i % 5 {
            case 0: text = String(rng.uniform() * pow(10, Double(rng.uniformInt(30)) - 15))
            case 1: text = "\(rng.uniformInt(1_000_000)).\(rng.uniformInt(10_000_000))"
            case 2: text = "\(rng.uniformInt(100_000_000))\(rng.uniformInt(100_000_000)).\(rng.uniformInt(1000))e-\(rng.uniformInt(30))"
            case 3:
                let bits = UInt64(rng.uniformInt(1 << 31)) << 32 | UInt64(rng.uniformInt(1 << 32))
                text = String(Double(bitPattern: bits & 0x7FEF_FFFF_FFFF_FFFF))
            default: text = "0.\(String(repeating: "0", count: rng.uniformInt(25)))\(rng.uniformInt(Int(Int32.max)))"
            }
            let expected = strtod(text, nil)
            if double(text)?.bitPattern != expected.bitPattern { mismatches.append(text) }
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(5))")
    }

    @Test(
        "what is not a decimal number is rejected",
        arguments: ["", "-", ".", "e5", "1e", "1e+", "inf", "nan", "0x10", "1.2.3", "1,5", " 1", "1 "])
    func rejects(_ text: String) {
        #expect(double(text) == nil)
    }

    @Test("integers: signs, limits and overflow")
    func integers() {
        #expect(int("0") == 0)
        #expect(int("+17") == 17)
        #expect(int("-17") == -17)
        #expect(int(String(Int.max)) == Int.max)
        #expect(int(String(Int.min)) == Int.min)
        #expect(int("9223372036854775808") == nil)
        #expect(int("1.0") == nil)
        #expect(int("") == nil)
        #expect(int("-") == nil)
    }
}
