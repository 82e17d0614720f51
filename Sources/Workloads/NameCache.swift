/// Turns the bytes of an adapter name into a `String`, reusing the one made last time the same
/// bytes were seen: a trace names a few hundred adapters over millions of rows, and building a
/// `String` (and an array of its bytes) per row was a third of the CSV reader's time.
///
/// A direct-mapped cache on a hash of the bytes: a collision only costs a new `String`.
struct NameCache {
    private static let slots = 1024
    private var bytes: [[UInt8]] = Array(repeating: [], count: slots)
    private var strings: [String?] = Array(repeating: nil, count: slots)

    /// The name whose UTF-8 bytes are `f`.
    mutating func name(_ f: UnsafeBufferPointer<UInt8>) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in f { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        let slot = Int(truncatingIfNeeded: h ^ (h >> 29)) & (Self.slots - 1)
        if let s = strings[slot], bytes[slot].elementsEqual(f) { return s }
        let s = String(decoding: f, as: UTF8.self)
        bytes[slot] = Array(f)
        strings[slot] = s
        return s
    }
}
