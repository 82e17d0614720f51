import Workloads

/// What a run reports for each iteration, for `iterations.csv` and the batch log.
public struct IterationRecord: Sendable {
    /// Replica index.
    public var replica: Int
    /// Iteration number within the replica, from 0.
    public var iteration: Int
    /// Start, seconds.
    public var startSeconds: Double
    /// Predicted duration, seconds.
    public var durationSeconds: Double
    /// The batch's aggregates.
    public var batch: StepBatch
    /// Distinct adapters in the batch.
    public var distinctAdapters: Int { batch.segments.count }
}

/// Receives every iteration as it starts (only when a run asks for per-iteration output).
public protocol IterationObserver {
    /// Called once per iteration with the replica that runs it (its `batch`, `loadsStarted` and
    /// `preemptedInPass` describe the pass) and the simulation's requests.
    mutating func observe(_ record: IterationRecord, replica: Replica, requests: [RequestState])
    /// Called for a scheduling pass that started loads but formed no batch.
    mutating func observeIdlePass(replica: Replica, at time: Double, requests: [RequestState])
}

/// The discrete-event simulation of one scenario: a router over replicas, one event queue, one
/// simulated clock. Generic over the step-cost model so the hot loop is statically dispatched.
public struct Simulation<Cost: StepCostModel> {
    /// Step and load costs.
    public let cost: Cost
    /// Adapter -> replicas that host it.
    public let placement: [[Int]]
    /// The trace's adapters.
    public let catalogue: AdapterCatalogue
    /// Per-request state, in trace order.
    public private(set) var requests: [RequestState]
    /// The replicas.
    public internal(set) var replicas: [Replica]
    /// Current simulated time, seconds.
    public private(set) var now = 0.0
    /// Events handled.
    public private(set) var eventsHandled = 0
    private var queue = EventQueue()
    private var nextArrival = 0
    private let maxModelLen: Int32
    private let totalBlocks: Int

    /// Sets up a run of `trace` on `replicaCount` replicas.
    /// - Parameters:
    ///   - placement: for each adapter in the catalogue, the replicas that host it (non-empty).
    ///   - totalBlocks: KV-cache blocks per replica.
    public init(
        trace: Trace, config: EngineConfig, totalBlocks: Int, replicaCount: Int, placement: [[Int]], cost: Cost,
        scheduler: SchedulerSpec = .fcfs
    ) {
        precondition(replicaCount >= 1 && placement.count == trace.catalogue.count)
        self.cost = cost
        self.placement = placement
        self.catalogue = trace.catalogue
        self.maxModelLen = Int32(config.maxModelLen)
        self.totalBlocks = totalBlocks
        requests = trace.requests.map {
            RequestState(
                arrivalSeconds: $0.arrivalSeconds, requestID: $0.requestID, adapter: Int32($0.adapter),
                promptTokens: Int32($0.promptTokens), outputTokens: Int32($0.outputTokens))
        }
        replicas = (0..<replicaCount).map {
            Replica(
                index: $0, config: config, totalBlocks: totalBlocks, adapterCount: trace.catalogue.count, scheduler: scheduler)
        }
        if let first = requests.first { queue.push(first.arrivalSeconds, .arrival, subject: 0) }
    }

    /// Runs to the end with no observer.
    public mutating func run(progress: ((Double) -> Void)? = nil, horizon: Double = .infinity) {
        var none: NoObserver? = nil
        run(observer: &none, progress: progress, horizon: horizon)
    }

    /// Runs to the end (or until the first event after `horizon` seconds), reporting each
    /// iteration to `observer` and the share of arrivals handled to `progress` every 2^16 events.
    public mutating func run<O: IterationObserver>(
        observer: inout O?, progress: ((Double) -> Void)? = nil, horizon: Double = .infinity
    ) {
        let total = Double(max(1, requests.count))
        while let e = queue.pop() {
            if e.time > horizon { break }
            precondition(e.time >= now, "the clock went back")
            now = e.time
            eventsHandled += 1
            if let progress, eventsHandled & 0xFFFF == 0 { progress(Double(nextArrival) / total) }
            let r = Int(e.replica)
            switch e.kind {
            case .arrival: arrive(Int(e.subject))
            case .loadDone:
                replicas[r].loadDone(Int(e.subject))
                requestPass(r)
            case .modeSwitchDone:
                replicas[r].finishSwitch(now: now)
                requestPass(r)
            case .iterationEnd:
                _ = replicas[r].finishIteration(end: now, requests: &requests)
                replicas[r].busy = false
                requestPass(r)
            case .schedule:
                replicas[r].passPending = false
                pass(r, observer: &observer)
            }
        }
        progress?(1)
    }

    private mutating func arrive(_ i: Int) {
        nextArrival = i + 1
        if nextArrival < requests.count { queue.push(requests[nextArrival].arrivalSeconds, .arrival, subject: nextArrival) }
        let req = requests[i]
        let total = req.promptTokens + req.outputTokens
        let bs = Int32(replicas[0].config.blockSize)
        if total > maxModelLen || Int((total + bs - 1) / bs) > totalBlocks {
            requests[i].status = .rejected
            return
        }
        let r = route(adapter: Int(req.adapter))
        requests[i].replica = Int32(r)
        requests[i].status = .waiting
        replicas[r].enqueue(Int32(i), adapter: req.adapter)
        requestPass(r)
    }

    /// The hosting replica with the fewest running + waiting requests; ties go to the lowest index.
    private func route(adapter: Int) -> Int {
        if replicas.count == 1 { return 0 }
        let hosts = adapter >= 0 ? placement[adapter] : Array(replicas.indices)
        var best = hosts[0]
        for h in hosts.dropFirst() where replicas[h].load < replicas[best].load || (replicas[h].load == replicas[best].load && h < best) {
            best = h
        }
        return best
    }

    private mutating func requestPass(_ r: Int) {
        if !replicas[r].busy && !replicas[r].passPending && !replicas[r].switching {
            replicas[r].passPending = true
            queue.push(now, .schedule, replica: r)
        }
    }

    private mutating func pass<O: IterationObserver>(_ r: Int, observer: inout O?) {
        guard !replicas[r].busy && !replicas[r].switching else { return }
        replicas[r].schedulePass(now: now, requests: &requests, cost: cost)
        for load in replicas[r].loadsStarted {
            queue.push(load.finish, .loadDone, replica: r, subject: Int(load.adapter))
        }
        if replicas[r].switching {
            queue.push(now + replicas[r].switchDuration, .modeSwitchDone, replica: r)
            observer?.observeIdlePass(replica: replicas[r], at: now, requests: requests)
            return
        }
        if replicas[r].batch.isEmpty {
            if !replicas[r].loadsStarted.isEmpty || !replicas[r].preemptedInPass.isEmpty {
                observer?.observeIdlePass(replica: replicas[r], at: now, requests: requests)
            }
            return
        }
        let duration = cost.stepSeconds(replicas[r].stepBatch) + replicas[r].loadStepSeconds
        precondition(duration > 0 && duration.isFinite, "a step must take a positive, finite time")
        if observer != nil {
            let record = IterationRecord(
                replica: r, iteration: replicas[r].iterations, startSeconds: now, durationSeconds: duration,
                batch: replicas[r].stepBatch)
            observer!.observe(record, replica: replicas[r], requests: requests)
        }
        replicas[r].beginIteration(seconds: duration)
        queue.push(now + duration, .iterationEnd, replica: r)
    }
}

/// An observer that is never called (the type of a run without per-iteration output).
public struct NoObserver: IterationObserver {
    public mutating func observe(_ record: IterationRecord, replica: Replica, requests: [RequestState]) {}
    public mutating func observeIdlePass(replica: Replica, at time: Double, requests: [RequestState]) {}
}
