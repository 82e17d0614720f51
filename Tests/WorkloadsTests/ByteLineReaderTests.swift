import Foundation
import TestSupport
import Testing

@testable import Workloads

@Suite("Line reading and CSV splitting")
struct ByteLineReaderTests {
    @Test("lines across buffer refills, long lines, CRLF, a BOM and no final newline", arguments: [64, 100, 4096])
    func lines(bufferBytes: Int) throws {
        let folder = TemporaryFolder()
        let rng = RandomSource(seed: UInt64(bufferBytes))
        var expected: [String] = []
        var text = "\u{FEFF}"
        for i in 0..<300 {
            let line = String(repeating: "x", count: rng.uniformInt(i % 50 == 0 ? 700 : 90)) + "\(i)"
            expected.append(line)
            text += line + (i % 3 == 0 ? "\r\n" : "\n")
        }
        text += "last"
        expected.append("last")
        let reader = try ByteLineReader(path: folder.write("l.txt", text), bufferBytes: bufferBytes)
        var got: [String] = []
        while let l = try reader.nextLine() { got.append(String(decoding: l, as: UTF8.self)) }
        #expect(got == expected)
        #expect(reader.lineNumber == expected.count)
    }

    @Test(
        "CSV fields: trimming, quotes, escaped quotes and empty fields",
        arguments: [
            ("a,b,c", ["a", "b", "c"]),
            (" a , b ,c ", ["a", "b", "c"]),
            ("a,,", ["a", "", ""]),
            ("", [""]),
            ("\"x,y\",2", ["x,y", "2"]),
            ("\"say \"\"hi\"\"\", 3", ["say \"hi\"", "3"]),
            ("  \"q\"  ,z", ["q", "z"]),
        ])
    func split(_ line: String, _ fields: [String]) {
        var bytes = Array(line.utf8)
        var out: [UnsafeBufferPointer<UInt8>] = []
        let result: [String]? = bytes.withUnsafeMutableBufferPointer { b in
            guard CSVLine.split(b, into: &out) == nil else { return nil }
            return out.map { String(decoding: $0, as: UTF8.self) }
        }
        #expect(result == fields)
    }

    @Test("bad quoting is reported", arguments: ["\"open", "\"a\"b,c"])
    func badQuotes(_ line: String) {
        var bytes = Array(line.utf8)
        var out: [UnsafeBufferPointer<UInt8>] = []
        #expect(bytes.withUnsafeMutableBufferPointer { CSVLine.split($0, into: &out) } != nil)
    }

    @Test("escape then split gives the name back", arguments: ["plain", "with,comma", "with \"quote\"", " edge ", "a;b"])
    func escape(_ name: String) {
        var bytes = Array(CSVLine.escape(name).utf8)
        var out: [UnsafeBufferPointer<UInt8>] = []
        let back: String? = bytes.withUnsafeMutableBufferPointer { b in
            guard CSVLine.split(b, into: &out) == nil, out.count == 1 else { return nil }
            return String(decoding: out[0], as: UTF8.self)
        }
        #expect(back == name)
    }
}
