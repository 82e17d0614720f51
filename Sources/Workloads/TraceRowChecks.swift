/// The checks every reader of the project's format applies across rows: arrival times
/// non-decreasing and request IDs unique.
struct TraceRowChecks {
    private var lastArrival = -Double.infinity
    private var lastLine = 0
    // Seen IDs: a bit set for the usual small IDs (cheap at ten million rows), a set for the rest.
    private var bits: [UInt64] = []
    private var largeIDs: Set<Int> = []
    private static let bitSetLimit = 1 << 24  // 2 MiB of bits at most

    /// Throws if `row` arrives before the previous row or repeats a request ID.
    mutating func check(_ row: TraceRow, file: String) throws(WorkloadError) {
        guard row.arrivalSeconds >= lastArrival else {
            throw WorkloadError(
                file: file, line: row.line, field: "arrival_s",
                "\(row.arrivalSeconds) is before \(lastArrival) on line \(lastLine); arrival times must not decrease")
        }
        lastArrival = row.arrivalSeconds
        lastLine = row.line
        let id = row.requestID
        let duplicate: Bool
        if id < Self.bitSetLimit {
            let word = id >> 6
            if word >= bits.count { bits.append(contentsOf: repeatElement(0, count: max(word + 1 - bits.count, bits.count))) }
            let mask: UInt64 = 1 << UInt64(id & 63)
            duplicate = bits[word] & mask != 0
            bits[word] |= mask
        } else {
            duplicate = !largeIDs.insert(id).inserted
        }
        if duplicate {
            throw WorkloadError(file: file, line: row.line, field: "request_id", "duplicate request_id \(id)")
        }
    }
}
