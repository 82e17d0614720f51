extension Replica {
    /// One dLoRA pass (docs/schedulers.md, "One pass", draft 2): candidate batch, credit priority,
    /// target mode, switching (or loading or draining towards a merge), admission in the mode,
    /// credit transfer.
    mutating func dloraPass<Cost: StepCostModel>(now: Double, requests: inout [RequestState], cost: Cost) {
        var d = dlora!
        let maxSeqs = config.maxNumSeqs
        // 1. The candidate batch: the first max_num_seqs waiting requests.
        d.candidates.removeAll(keepingCapacity: true)
        for k in 0..<min(maxSeqs, waiting.count) {
            let e = waiting[k]
            d.candidates.append(e)
            if e.adapter >= 0 { d.inCandidates[Int(e.adapter)] = true }
        }
        defer { dlora = d }
        // 2a. The aging guard: the front request has waited max_wait_s or more.
        var p: Int32 = -1
        var aged = false
        if let w = d.config.maxWaitSeconds, let f = waiting.first, now - requests[Int(f.request)].arrivalSeconds >= w {
            aged = true
            p = f.adapter  // -1 for a base-model request: the pass runs unmerged
        }
        // 2. Credit priority: among adapters with a request in C; ties to the lowest index.
        if d.config.credits && !aged {
            let full = Double(d.credit.count) * d.config.creditUnit
            var best = -Double.infinity
            for a in d.inCandidates.indices where d.inCandidates[a] {
                let threshold = Int32(a) == d.prioritised ? full - d.config.creditUnit / 2 : full
                if d.credit[a] >= threshold && d.credit[a] > best {
                    best = d.credit[a]
                    p = Int32(a)
                }
            }
        }
        for e in d.candidates where e.adapter >= 0 { d.inCandidates[Int(e.adapter)] = false }
        d.prioritised = p
        // 3. The target mode (-1: unmerged).
        let current: Int32 = mode == .merged ? mergedAdapter : -1
        var target: Int32 = -1
        if p >= 0 {
            target = current == p ? p : -1
        } else if aged {
            target = -1
        } else if current >= 0 {
            target = Double(waitingByAdapter[Int(current)]) >= d.stayRatio * Double(maxSeqs) ? current : -1
        } else {
            var b = -1
            for a in waitingByAdapter.indices where waitingByAdapter[a] > 0 && (b < 0 || waitingByAdapter[a] > waitingByAdapter[b]) {
                b = a
            }
            if b >= 0 && Double(waitingByAdapter[b]) >= d.mergeRatio * Double(maxSeqs) { target = Int32(b) }
        }
        // 4. Switching (or loading, or draining, on the way to a merge).
        var draining: Int32 = -1
        if target != current {
            if current < 0 && !isResident(target) {
                if adapterSlot[Int(target)] < 0 { startLoad(Int(target), now: now, cost: cost) }
            } else if current < 0 && running.count > Int(runningUsers[Int(target)]) {
                draining = target
            } else {
                let merging = current < 0
                startSwitch(merging: merging, adapter: merging ? target : current, now: now, cost: cost, state: &d)
                summarise(requests: requests)
                return
            }
        }
        // 5. Admission in the current mode.
        var budget = Int32(config.maxNumBatchedTokens)
        if mode == .merged {
            scheduleRunning(budget: &budget, only: nil, requests: &requests)  // only m's requests run
            if preemptedInPass.isEmpty {
                admitWaiting(budget: &budget, now: now, requests: &requests, cost: cost, only: mergedAdapter, merged: true)
            }
            if batch.isEmpty {
                // The guard: nothing of the merged adapter runs, and nothing else would wake the replica.
                startSwitch(merging: false, adapter: mergedAdapter, now: now, cost: cost, state: &d)
                summarise(requests: requests)
                return
            }
        } else {
            scheduleRunning(budget: &budget, only: nil, requests: &requests)
            if preemptedInPass.isEmpty {
                if draining >= 0 {
                    admitWaiting(budget: &budget, now: now, requests: &requests, cost: cost, only: draining)
                } else {
                    if p >= 0 { admitWaiting(budget: &budget, now: now, requests: &requests, cost: cost, only: p) }
                    admitWaiting(budget: &budget, now: now, requests: &requests, cost: cost)
                }
            }
        }
        summarise(requests: requests)
        // 6. Credit transfer.
        guard d.config.credits && !batch.isEmpty else { return }
        let u = d.config.creditUnit / Double(maxSeqs)
        if mode == .merged {
            let m = Int(mergedAdapter)
            let s = d.speedMerged.isNaN || d.speedUnmerged.isNaN ? 1 : d.speedMerged / d.speedUnmerged
            let amount = u / (2 * s)
            for e in d.candidates where e.adapter >= 0 && Int(e.adapter) != m {
                d.credit[m] -= amount
                d.credit[Int(e.adapter)] += amount
            }
        } else if p >= 0 || (d.config.drainCredit && draining >= 0) {
            // A prioritised (or, with drain_credit, draining) adapter pays each candidate it displaced.
            let src = p >= 0 ? p : draining
            guard let last = d.candidates.lastIndex(where: { $0.adapter == src && requests[Int($0.request)].status == .running })
            else { return }
            for e in d.candidates[..<last] where e.adapter >= 0 && e.adapter != src && requests[Int(e.request)].status != .running {
                d.credit[Int(src)] -= u
                d.credit[Int(e.adapter)] += u
            }
        }
    }

    /// Starts merging `adapter` into the base weights, or unmerging it (docs/schedulers.md, step 4).
    private mutating func startSwitch<Cost: StepCostModel>(
        merging: Bool, adapter: Int32, now: Double, cost: Cost, state d: inout DLoRAState
    ) {
        switching = true
        switchStartedInPass = (merging, adapter)
        d.switchTarget = merging ? adapter : -1
        d.switchStart = now
        d.switchDuration = d.config.switchSeconds ?? cost.switchSeconds(adapter: Int(adapter), merging: merging)
    }

    /// Ends the merge or unmerge in progress at `now` (docs/schedulers.md, steps 4 and 7).
    mutating func finishSwitch(now: Double) {
        guard var d = dlora, switching else { preconditionFailure("no switch in progress") }
        let merging = d.switchTarget >= 0
        if d.config.adaptive && !d.speedMerged.isNaN && !d.speedUnmerged.isNaN {
            let t = d.switchStart - d.modeSince
            let mergedTokens = d.speedMerged * (t - d.switchDuration)
            let unmergedTokens = d.speedUnmerged * t
            // L <= R is kept, or the replica would merge and unmerge at once, forever.
            if merging {
                if mergedTokens > unmergedTokens { d.stayRatio /= 1.1 } else { d.stayRatio += 0.05 }
                d.stayRatio = min(d.stayRatio, d.mergeRatio)
            } else {
                if mergedTokens > unmergedTokens { d.mergeRatio = max(0.1, d.mergeRatio - 0.05) } else { d.mergeRatio *= 1.1 }
                d.mergeRatio = max(d.mergeRatio, d.stayRatio)
            }
        }
        mode = merging ? .merged : .unmerged
        mergedAdapter = merging ? d.switchTarget : -1
        d.modeSince = now
        switching = false
        dlora = d
    }

    /// The switch duration of the switch in progress, seconds.
    var switchDuration: Double { dlora?.switchDuration ?? 0 }

    /// dLoRA's credits (for tests and reports).
    public var credits: [Double] { dlora?.credit ?? [] }
    /// dLoRA's thresholds R and L (for tests and reports).
    public var thresholds: (merge: Double, stay: Double)? { dlora.map { ($0.mergeRatio, $0.stayRatio) } }
}
