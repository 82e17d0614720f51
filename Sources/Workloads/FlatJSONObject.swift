/// Parses one line holding a flat JSON object (`{"key": value, ...}`) whose values are strings,
/// numbers, booleans or null, straight from the line's bytes.
///
/// Hand-written for the same reason as `FieldParser`: a trace line is five keys, and going through
/// `JSONSerialization` or `JSONDecoder` per line costs an order of magnitude more than the parse.
struct FlatJSONObject {
    /// A value of the object.
    enum Value: Equatable {
        case string(String)
        case number(UnsafeBufferPointer<UInt8>)
        case bool(Bool)
        case null

        static func == (a: Value, b: Value) -> Bool {
            switch (a, b) {
            case (.string(let x), .string(let y)): return x == y
            case (.number(let x), .number(let y)): return x.elementsEqual(y)
            case (.bool(let x), .bool(let y)): return x == y
            case (.null, .null): return true
            default: return false
            }
        }
    }

    /// The keys and values, in line order.
    private(set) var members: [(key: String, value: Value)] = []

    /// Parses `line`; returns nil, or what is wrong with it. Number slices point into `line`.
    mutating func parse(_ line: UnsafeBufferPointer<UInt8>) -> String? {
        members.removeAll(keepingCapacity: true)
        var i = 0
        let n = line.count
        func skipSpace() { while i < n && (line[i] == 32 || line[i] == 9 || line[i] == 13 || line[i] == 10) { i += 1 } }
        skipSpace()
        guard i < n && line[i] == 123 else { return "expected a JSON object starting with '{'" }
        i += 1
        skipSpace()
        if i < n && line[i] == 125 {
            i += 1
            skipSpace()
            return i == n ? nil : "unexpected text after the object"
        }
        while true {
            skipSpace()
            guard i < n && line[i] == 34 else { return "expected a key in double quotes" }
            guard let key = string(line, &i) else { return "a key string is not closed or has a bad escape" }
            skipSpace()
            guard i < n && line[i] == 58 else { return "expected ':' after key \"\(key)\"" }
            i += 1
            skipSpace()
            guard i < n else { return "missing the value of \"\(key)\"" }
            let value: Value
            switch line[i] {
            case 34:
                guard let s = string(line, &i) else { return "the string value of \"\(key)\" is not closed or has a bad escape" }
                value = .string(s)
            case 110:
                guard literal("null", line, &i) else { return "bad value for \"\(key)\"" }
                value = .null
            case 116:
                guard literal("true", line, &i) else { return "bad value for \"\(key)\"" }
                value = .bool(true)
            case 102:
                guard literal("false", line, &i) else { return "bad value for \"\(key)\"" }
                value = .bool(false)
            case 123, 91: return "the value of \"\(key)\" is nested; expected a string, number or null"
            default:
                let s = i
                while i < n, let c = Optional(line[i]), c != 44 && c != 125 && c != 32 && c != 9 { i += 1 }
                guard i > s else { return "missing the value of \"\(key)\"" }
                value = .number(UnsafeBufferPointer(rebasing: line[s..<i]))
            }
            members.append((key, value))
            skipSpace()
            guard i < n else { return "the object is not closed with '}'" }
            if line[i] == 44 {
                i += 1
                continue
            }
            guard line[i] == 125 else { return "expected ',' or '}'" }
            i += 1
            skipSpace()
            return i == n ? nil : "unexpected text after the object"
        }
    }

    private func literal(_ word: StaticString, _ line: UnsafeBufferPointer<UInt8>, _ i: inout Int) -> Bool {
        let w = UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        guard i + w.count <= line.count, line[i..<(i + w.count)].elementsEqual(w) else { return false }
        i += w.count
        return true
    }

    /// Reads a JSON string starting at the quote at `i`; leaves `i` after the closing quote.
    private func string(_ line: UnsafeBufferPointer<UInt8>, _ i: inout Int) -> String? {
        let n = line.count
        var j = i + 1
        let start = j
        var plain = true
        while j < n && line[j] != 34 {
            if line[j] == 92 {
                plain = false
                j += 1
            } else if line[j] < 32 {
                return nil
            }
            j += 1
        }
        guard j < n else { return nil }
        defer { i = j + 1 }
        if plain { return String(decoding: line[start..<j], as: UTF8.self) }
        var out: [UInt8] = []
        var k = start
        while k < j {
            let c = line[k]
            guard c == 92 else {
                out.append(c)
                k += 1
                continue
            }
            k += 1
            guard k < j else { return nil }
            switch line[k] {
            case 34: out.append(34)
            case 92: out.append(92)
            case 47: out.append(47)
            case 98: out.append(8)
            case 102: out.append(12)
            case 110: out.append(10)
            case 114: out.append(13)
            case 116: out.append(9)
            case 117:
                guard k + 4 < j, let u = UInt32(String(decoding: line[(k + 1)...(k + 4)], as: UTF8.self), radix: 16) else {
                    return nil
                }
                // Surrogate halves are written as U+FFFD: adapter names have no business holding them.
                let scalar = Unicode.Scalar(u) ?? "\u{FFFD}"
                out.append(contentsOf: Array(String(Character(scalar)).utf8))
                k += 4
            default: return nil
            }
            k += 1
        }
        return String(decoding: out, as: UTF8.self)
    }
}
