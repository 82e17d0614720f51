import Foundation

/// Parses integers and decimal numbers straight from the bytes of a field.
///
/// Hand-written because the trace readers must parse tens of millions of fields in seconds:
/// making a `String` per field and going through `Int(_:)`/`Double(_:)` or Foundation's `Scanner`
/// is about ten times slower, and the CSV packages on the machine are not in the project's
/// dependency set. Doubles give exactly what `strtod` gives: short decimals take Clinger's exact
/// fast path (an integer mantissa of at most 2^53 and one multiplication or division by an exact power
/// of ten is correctly rounded), everything else goes to `strtod` itself.
enum FieldParser {
    /// A decimal integer with an optional sign, or nil (not an integer, or beyond `Int`).
    static func int(_ f: UnsafeBufferPointer<UInt8>) -> Int? {
        let n = f.count
        guard n > 0 else { return nil }
        var i = 0
        var negative = false
        if f[0] == 45 || f[0] == 43 {
            negative = f[0] == 45
            i = 1
        }
        guard i < n else { return nil }
        var v = 0
        while i < n {
            let d = Int(f[i]) &- 48
            guard d >= 0 && d <= 9 else { return nil }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = negative ? m.subtractingReportingOverflow(d) : m.addingReportingOverflow(d)
            guard !o1 && !o2 else { return nil }
            v = a
            i += 1
        }
        return v
    }

    private static let powersOfTen: [Double] = (0...22).map { pow(10, Double($0)) }

    /// A decimal number (`12`, `-0.5`, `1.25e-3`), parsed as `strtod` would; nil for anything else
    /// (including `inf`, `nan`, hexadecimal floats and empty fields).
    static func double(_ f: UnsafeBufferPointer<UInt8>) -> Double? {
        let n = f.count
        guard n > 0 else { return nil }
        var i = 0
        var negative = false
        if f[0] == 45 || f[0] == 43 {
            negative = f[0] == 45
            i = 1
        }
        var mantissa: UInt64 = 0
        var digits = 0
        var fractionDigits = 0
        var sawDigit = false
        while i < n, f[i] &- 48 < 10 {
            sawDigit = true
            if mantissa != 0 || f[i] != 48 { digits += 1 }
            if digits <= 19 { mantissa = mantissa &* 10 &+ UInt64(f[i] &- 48) }
            i += 1
        }
        if i < n && f[i] == 46 {
            i += 1
            while i < n, f[i] &- 48 < 10 {
                sawDigit = true
                if mantissa != 0 || f[i] != 48 { digits += 1 }
                if digits <= 19 { mantissa = mantissa &* 10 &+ UInt64(f[i] &- 48) }
                fractionDigits += 1
                i += 1
            }
        }
        guard sawDigit else { return nil }
        var exponent = 0
        if i < n && (f[i] == 101 || f[i] == 69) {
            i += 1
            var expNegative = false
            if i < n && (f[i] == 45 || f[i] == 43) {
                expNegative = f[i] == 45
                i += 1
            }
            guard i < n else { return nil }
            while i < n, f[i] &- 48 < 10 {
                if exponent < 100_000 { exponent = exponent * 10 + Int(f[i] &- 48) }
                i += 1
            }
            if expNegative { exponent = -exponent }
        }
        guard i == n else { return nil }
        let e10 = exponent - fractionDigits
        if digits <= 19 && mantissa <= 1 << 53 && e10 >= -22 && e10 <= 22 {
            let m = Double(mantissa)
            let v = e10 < 0 ? m / powersOfTen[-e10] : m * powersOfTen[e10]
            return negative ? -v : v
        }
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: n + 1) { buf -> Double? in
            guard let p = buf.baseAddress else { return nil }
            for k in 0..<n { p[k] = CChar(bitPattern: f[k]) }
            p[n] = 0
            var endPointer: UnsafeMutablePointer<CChar>? = nil
            let v = strtod(p, &endPointer)
            guard let endPointer, endPointer == p + n else { return nil }
            return v
        }
    }
}
