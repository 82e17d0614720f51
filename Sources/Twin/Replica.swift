import DequeModule

/// One request's share of an iteration.
public struct BatchEntry: Sendable, Equatable {
    /// Index of the request in the simulation.
    public var request: Int32
    /// Tokens computed for it in the iteration.
    public var tokens: Int32
}

/// A request in a waiting queue, with its adapter (-1 for the base model).
public struct WaitingEntry: Sendable, Equatable {
    /// Index of the request in the simulation.
    public var request: Int32
    /// Catalogue index of its adapter.
    public var adapter: Int32
}

/// A serving replica: its queues, KV cache, adapter slots, host cache and loader, and the
/// scheduling pass of docs/engine-model.md. The event loop (`Simulation`) owns it and calls it.
public struct Replica {
    /// Index of the replica.
    public let index: Int
    /// Engine limits.
    public let config: EngineConfig
    /// KV-cache blocks in all.
    public let totalBlocks: Int
    /// KV-cache blocks free.
    public internal(set) var freeBlocks: Int

    /// Admitted requests, in order of admission.
    public internal(set) var running: [Int32] = []
    /// Waiting requests, FCFS; preempted requests go back to the front. Each entry carries its
    /// adapter so the walk of step 2 reads the queue sequentially, not the request table.
    public internal(set) var waiting = Deque<WaitingEntry>()

    // Adapters, indexed by catalogue index.
    var adapterSlot: [Int32]
    var adapterLoading: [Bool]
    var runningUsers: [Int32]
    var inHost: [Bool]
    var recency: [Int]
    var touchedInPass: [Int]
    var hostCount = 0
    var recencyCounter = 0
    var slotAdapter: [Int32]
    /// Waiting requests per adapter, and of the base model.
    var waitingByAdapter: [Int]
    var waitingBase = 0
    /// Bumped by every change that can alter what an unrestricted walk of `waiting` finds: the
    /// walk's window (the first `scheduler_lookahead` entries) changing, an adapter becoming
    /// resident or taking a slot, and a slotted adapter's last running request leaving (its slot
    /// becomes evictable, so a load can start).
    var walkGeneration: UInt64 = 0
    /// `walkGeneration` when an unrestricted walk last examined its whole window and admitted
    /// nothing and started no load: until the generation moves, the same walk would do the same,
    /// so it is skipped. Most passes of a saturated replica would be such walks (twin-bench
    /// prints the counts below), and the skip leaves every outcome as the page defines it.
    var fruitlessWalkGeneration: UInt64 = .max
    /// Whether fruitless walks are skipped (tests turn it off to compare).
    var skipsFruitlessWalks = true
    /// Walks of `waiting` run and skipped, and the entries the run ones examined.
    public internal(set) var walkCounts = WalkCounts()
    var slotTokens: [Int32]
    /// When the loader is free to start the next transfer, seconds.
    public internal(set) var loaderFreeAt = 0.0

    /// Whether an iteration is in flight.
    public internal(set) var busy = false
    /// Whether a scheduling pass is queued.
    var passPending = false
    /// Serving mode.
    public internal(set) var mode = ServingMode.unmerged
    /// The adapter merged into the base weights (-1 when unmerged).
    public internal(set) var mergedAdapter: Int32 = -1
    /// dLoRA's state, when the replica runs the dLoRA scheduler.
    var dlora: DLoRAState?
    /// Whether a merge or unmerge is in progress.
    public internal(set) var switching = false
    /// The switch the last pass started, for the batch log (`merge a3`, `unmerge a3`).
    public internal(set) var switchStartedInPass: (merging: Bool, adapter: Int32)?
    /// The current iteration's duration as the cost model gave it, seconds.
    var iterationSeconds = 0.0

    // The iteration being built or run.
    /// Batch of the current iteration, in scheduling order.
    public internal(set) var batch: [BatchEntry] = []
    /// Aggregates of the current iteration for the cost model.
    public internal(set) var stepBatch = StepBatch()
    /// Loads started by the last pass: adapter and finish time.
    public internal(set) var loadsStarted: [(adapter: Int32, finish: Double)] = []
    /// Seconds the loads started by the last pass add to its step (`StepCostModel.loadStepSeconds`).
    public internal(set) var loadStepSeconds = 0.0
    /// Requests preempted by the last pass.
    public internal(set) var preemptedInPass: [Int32] = []
    /// Iterations run.
    public internal(set) var iterations = 0
    /// Seconds spent in iterations.
    public internal(set) var busySeconds = 0.0
    /// Decode-only iterations (no prefill token) and their seconds.
    public internal(set) var decodeOnlyIterations = 0
    /// Seconds of decode-only iterations.
    public internal(set) var decodeOnlySeconds = 0.0
    /// Times `mode` differed from the previous iteration's (merges and unmerges that took effect).
    public internal(set) var modeChanges = 0
    var lastIterationMode = ServingMode.unmerged
    var passNumber = 0

    /// Creates an idle replica with an empty cache and every adapter on disk.
    public init(index: Int, config: EngineConfig, totalBlocks: Int, adapterCount: Int, scheduler: SchedulerSpec = .fcfs) {
        if case .dlora(let c) = scheduler { dlora = DLoRAState(config: c, adapters: adapterCount) }
        self.index = index
        self.config = config
        self.totalBlocks = totalBlocks
        self.freeBlocks = totalBlocks
        adapterSlot = Array(repeating: -1, count: adapterCount)
        adapterLoading = Array(repeating: false, count: adapterCount)
        runningUsers = Array(repeating: 0, count: adapterCount)
        inHost = Array(repeating: false, count: adapterCount)
        recency = Array(repeating: 0, count: adapterCount)
        touchedInPass = Array(repeating: -1, count: adapterCount)
        waitingByAdapter = Array(repeating: 0, count: adapterCount)
        slotAdapter = Array(repeating: -1, count: config.maxLoras)
        slotTokens = Array(repeating: 0, count: config.maxLoras)
    }

    /// Puts request `r` (of adapter `a`, -1 for the base model) in `waiting`, at the back or front.
    mutating func enqueue(_ r: Int32, adapter a: Int32, atFront: Bool = false) {
        let e = WaitingEntry(request: r, adapter: a)
        if atFront { waiting.prepend(e) } else { waiting.append(e) }
        if atFront || waiting.count <= config.schedulerLookahead { walkGeneration &+= 1 }
        if a >= 0 { waitingByAdapter[Int(a)] += 1 } else { waitingBase += 1 }
    }

    /// One running request of adapter `a` left `running`; its slot may become evictable.
    @inline(__always) mutating func leaveRunning(_ a: Int) {
        runningUsers[a] -= 1
        if runningUsers[a] == 0 { walkGeneration &+= 1 }
    }

    @inline(__always) mutating func noteLeftWaiting(_ a: Int32) {
        if a >= 0 { waitingByAdapter[Int(a)] -= 1 } else { waitingBase -= 1 }
    }

    /// Requests in `running` and `waiting`: the router's measure of load.
    public var load: Int { running.count + waiting.count }

    /// Whether adapter `a` is in a GPU slot and ready.
    @inline(__always) func isResident(_ a: Int32) -> Bool {
        a < 0 || (adapterSlot[Int(a)] >= 0 && !adapterLoading[Int(a)])
    }

    @inline(__always) func blocksFor(_ tokens: Int32) -> Int32 {
        let bs = Int32(config.blockSize)
        return (tokens + bs - 1) / bs
    }

    /// Runs the scheduling pass at `now` (docs/engine-model.md, "One iteration").
    /// Fills `batch`, `stepBatch`, `loadsStarted` and `preemptedInPass`.
    mutating func schedulePass<Cost: StepCostModel>(now: Double, requests: inout [RequestState], cost: Cost) {
        batch.removeAll(keepingCapacity: true)
        loadsStarted.removeAll(keepingCapacity: true)
        loadStepSeconds = 0
        preemptedInPass.removeAll(keepingCapacity: true)
        switchStartedInPass = nil
        passNumber += 1
        if dlora != nil {
            dloraPass(now: now, requests: &requests, cost: cost)
            return
        }
        var budget = Int32(config.maxNumBatchedTokens)
        scheduleRunning(budget: &budget, only: nil, requests: &requests)
        if preemptedInPass.isEmpty { admitWaiting(budget: &budget, now: now, requests: &requests, cost: cost) }
        summarise(requests: requests)
    }

    /// Step 1 of the pass: running requests in admission order. With `only`, requests of other
    /// adapters are parked (left in `running`, not scheduled).
    @inline(__always) mutating func scheduleRunning(budget: inout Int32, only: Int32?, requests: inout [RequestState]) {
        let chunked = config.chunkedPrefill
        var i = 0
        runningLoop: while i < running.count && budget > 0 {
            let r = running[i]
            let req = requests[Int(r)]
            if let only, req.adapter != only {
                i += 1
                continue
            }
            var n = req.known - req.computed
            if chunked {
                n = min(n, budget)
            } else if n > budget {
                i += 1
                continue
            }
            // Most steps of a running request fit in its last block: skip the division then.
            let after = req.computed + n
            let need = after <= req.blocks * Int32(config.blockSize) ? 0 : Int(blocksFor(after) - req.blocks)
            while need > freeBlocks {
                let victim = running.removeLast()
                preempt(victim, requests: &requests)
                if victim == r { break runningLoop }
            }
            allocate(r, blocks: need, tokens: n, requests: &requests)
            budget -= n
            i += 1
        }
    }

    /// Step 2 of the pass: walk `waiting` from the front, FCFS with adapter skips.
    /// - Parameters:
    ///   - only: a restricted walk: admit only this adapter's requests; others are passed over,
    ///     not counted against the lookahead, and start no load.
    ///   - merged: `only` is merged into the base weights: its requests need no slot, and no load
    ///     starts.
    @inline(__always) mutating func admitWaiting<Cost: StepCostModel>(
        budget: inout Int32, now: Double, requests: inout [RequestState], cost: Cost, only: Int32? = nil,
        merged: Bool = false
    ) {
        let chunked = config.chunkedPrefill
        // Within a pass slots only get scarcer (admissions add users, loads claim slots), so after
        // one load fails to find a slot none can succeed; and once, besides, no waiting request
        // that could be admitted has a resident adapter, the rest of the walk would only skip.
        // Both cuts leave the pass's outcome exactly as the page defines it.
        let memo = skipsFruitlessWalks && only == nil && !merged
        if memo && fruitlessWalkGeneration == walkGeneration {
            walkCounts.skipped += 1
            return
        }
        var loadsPossible = !merged
        var admissible = 0
        if let only {
            if merged || isResident(only) {
                admissible = only >= 0 ? waitingByAdapter[Int(only)] : waitingBase
            }
            if merged || isResident(only) || (only >= 0 && adapterSlot[Int(only)] >= 0) { loadsPossible = false }
        } else {
            admissible = waitingBase
            for a in slotAdapter where a >= 0 && !adapterLoading[Int(a)] { admissible += waitingByAdapter[Int(a)] }
        }
        var position = 0
        var examined = 0
        var changed = false  // an admission, a load started, or a stop on the budget or the blocks
        defer {
            walkCounts.run += 1
            walkCounts.examined += examined
            let windowDone =
                position >= waiting.count || examined >= config.schedulerLookahead || !(loadsPossible || admissible > 0)
            if memo && !changed && windowDone { fruitlessWalkGeneration = walkGeneration }
        }
        while position < waiting.count && examined < config.schedulerLookahead
            && running.count < config.maxNumSeqs && budget > 0 && (loadsPossible || admissible > 0)
        {
            let entry = waiting[position]
            let a = entry.adapter
            if let only, a != only {
                position += 1  // a restricted walk passes over other adapters without counting them
                continue
            }
            examined += 1
            if !merged && !isResident(a) {
                if loadsPossible && adapterSlot[Int(a)] < 0 {
                    loadsPossible = startLoad(Int(a), now: now, cost: cost)
                    changed = changed || loadsPossible
                }
                position += 1
                continue
            }
            let r = entry.request
            let req = requests[Int(r)]
            var n = req.known - req.computed
            changed = true
            if chunked {
                n = min(n, budget)
            } else if n > budget {
                break
            }
            let need = Int(blocksFor(n))
            if need > freeBlocks { break }
            waiting.remove(at: position)
            walkGeneration &+= 1
            admissible -= 1
            noteLeftWaiting(a)
            running.append(r)
            if a >= 0 { runningUsers[Int(a)] += 1 }
            requests[Int(r)].status = .running
            if requests[Int(r)].firstScheduledSeconds.isNaN { requests[Int(r)].firstScheduledSeconds = now }
            allocate(r, blocks: need, tokens: n, requests: &requests)
            budget -= n
        }
    }

    @inline(__always) mutating func allocate(_ r: Int32, blocks need: Int, tokens n: Int32, requests: inout [RequestState]) {
        precondition(need <= freeBlocks, "KV cache over-allocated")
        freeBlocks -= need
        requests[Int(r)].blocks += Int32(need)
        batch.append(BatchEntry(request: r, tokens: n))
    }

    /// Preempts `r` by recompute: frees its blocks and puts it at the front of `waiting`.
    mutating func preempt(_ r: Int32, requests: inout [RequestState]) {
        freeBlocks += Int(requests[Int(r)].blocks)
        precondition(freeBlocks <= totalBlocks, "KV block freed twice")
        requests[Int(r)].blocks = 0
        requests[Int(r)].computed = 0
        requests[Int(r)].preemptions += 1
        requests[Int(r)].status = .waiting
        let a = requests[Int(r)].adapter
        if a >= 0 { leaveRunning(Int(a)) }
        enqueue(r, adapter: a, atFront: true)
        preemptedInPass.append(r)
    }

    /// Builds `stepBatch` from `batch` and touches the batch's adapters in order of first appearance.
    mutating func summarise(requests: [RequestState]) {
        var s = StepBatch()
        s.mode = mode
        // take the last batch's segment buffer rather than share it: a shared buffer is not
        // unique, and removeAll(keepingCapacity:) would then allocate a new one every iteration
        swap(&s.segments, &stepBatch.segments)
        s.segments.removeAll(keepingCapacity: true)
        for e in batch {
            let req = requests[Int(e.request)]
            let n = Int(e.tokens)
            let c = Int(req.computed)
            if req.generated > 0 && n == 1 && c == Int(req.known) - 1 {
                s.decodeSequences += 1
                s.decodeContextTokens += c + 1
                s.decodeMaxContext = max(s.decodeMaxContext, c + 1)
            } else {
                s.prefillTokens += n
                s.prefillSequences += 1
                if c > 0 { s.prefillContinuations += 1 }
                s.prefillAttentionPairs += Double(n) * (Double(c) + Double(n + 1) / 2)
                s.prefillMaxKeys = max(s.prefillMaxKeys, c + n)
            }
            if c + n == Int(req.known) { s.samplingSequences += 1 }
            let a = Int(req.adapter)
            if a >= 0 {
                let slot = Int(adapterSlot[a])
                if touchedInPass[a] != passNumber {
                    touchedInPass[a] = passNumber
                    touch(a)
                    slotTokens[slot] = 0
                    s.segments.append(LoraSegment(adapter: a, tokens: 0))
                }
                slotTokens[slot] += Int32(n)
            }
        }
        for k in s.segments.indices {
            s.segments[k].tokens = Int(slotTokens[Int(adapterSlot[s.segments[k].adapter])])
        }
        stepBatch = s
    }

    /// Starts the iteration of `stepBatch`, `seconds` long: the replica is busy, and its counters
    /// (iterations, busy and decode-only time, mode changes) take it in. One call, so that the
    /// simulation's hot path mutates its replica array once per iteration rather than per field.
    mutating func beginIteration(seconds: Double) {
        if stepBatch.mode != lastIterationMode {
            modeChanges += 1
            lastIterationMode = stepBatch.mode
        }
        iterations += 1
        iterationSeconds = seconds
        busySeconds += seconds
        if stepBatch.prefillTokens == 0 {
            decodeOnlyIterations += 1
            decodeOnlySeconds += seconds
        }
        busy = true
    }

    /// Applies the token accounting at the end of the iteration (`end`, seconds) and frees the
    /// blocks of finished requests. Returns how many finished.
    mutating func finishIteration(end: Double, requests: inout [RequestState]) -> Int {
        if dlora != nil {
            var tokens = 0
            for e in batch { tokens += Int(e.tokens) }
            dlora!.record(
                tokens: tokens, prefillTokens: stepBatch.prefillTokens, seconds: iterationSeconds, merged: stepBatch.mode == .merged)
        }
        var finished = 0
        for e in batch {
            let r = Int(e.request)
            requests[r].computed += e.tokens
            if requests[r].computed == requests[r].known {
                requests[r].generated += 1
                if requests[r].generated == 1 { requests[r].firstTokenSeconds = end }
                if requests[r].generated == requests[r].outputTokens {
                    requests[r].finishSeconds = end
                    requests[r].status = .finished
                    freeBlocks += Int(requests[r].blocks)
                    requests[r].blocks = 0
                    let a = requests[r].adapter
                    if a >= 0 { leaveRunning(Int(a)) }
                    finished += 1
                }
            }
        }
        if finished > 0 {
            running.removeAll { requests[Int($0)].status == .finished }
        }
        batch.removeAll(keepingCapacity: true)
        return finished
    }
}

/// How many walks of the waiting queue a replica ran and skipped (`Replica.fruitlessWalkGeneration`),
/// and how many entries the run ones examined.
public struct WalkCounts: Sendable, Equatable {
    public var run = 0, skipped = 0, examined = 0
    public init() {}
    public static func + (a: WalkCounts, b: WalkCounts) -> WalkCounts {
        var c = a
        c.run += b.run
        c.skipped += b.skipped
        c.examined += b.examined
        return c
    }
}
