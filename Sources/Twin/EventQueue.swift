import HeapModule

/// What can happen in simulated time. The raw value orders events that share a time
/// (docs/engine-model.md, "Events and their order").
public enum EventKind: UInt8, Sendable, Comparable {
    /// A request arrives at the router.
    case arrival = 0
    /// An adapter load into a GPU slot finishes.
    case loadDone = 1
    /// A replica finishes switching between merged and unmerged mode.
    case modeSwitchDone = 2
    /// A replica's iteration ends.
    case iterationEnd = 3
    /// A replica runs a scheduling pass.
    case schedule = 4

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// One timed event. `subject` is the request index for arrivals and the adapter index for loads.
public struct Event: Sendable, Equatable {
    /// Simulated time, seconds.
    public var time: Double
    /// What happens.
    public var kind: EventKind
    /// The replica concerned (-1 for arrivals, which are not routed yet).
    public var replica: Int32
    /// The request or adapter concerned.
    public var subject: Int32
    /// Creation order: the last tie-break, which makes the order total and runs reproducible.
    public var sequence: UInt64
}

extension Event: Comparable {
    public static func < (a: Event, b: Event) -> Bool {
        if a.time != b.time { return a.time < b.time }
        if a.kind != b.kind { return a.kind < b.kind }
        // Passes of different replicas at one time are independent; running them in replica
        // order makes the batch log sorted by (start, replica), as the engine writes it.
        if a.kind == .schedule && a.replica != b.replica { return a.replica < b.replica }
        return a.sequence < b.sequence
    }
}

/// The simulator's one priority queue: a min-heap of events with a total order.
public struct EventQueue {
    private var heap = Heap<Event>()
    private var nextSequence: UInt64 = 0

    /// An empty queue.
    public init() {}

    /// Adds an event at `time`.
    public mutating func push(_ time: Double, _ kind: EventKind, replica: Int = -1, subject: Int = -1) {
        precondition(time.isFinite, "event time must be finite")
        heap.insert(Event(time: time, kind: kind, replica: Int32(replica), subject: Int32(subject), sequence: nextSequence))
        nextSequence &+= 1
    }

    /// Removes and returns the earliest event.
    public mutating func pop() -> Event? { heap.popMin() }

    /// The earliest event's time.
    public var nextTime: Double? { heap.min?.time }

    /// Number of pending events.
    public var count: Int { heap.count }
}
