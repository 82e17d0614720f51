extension Replica {
    /// Increments the recency counter and stamps adapter `a` with it.
    @inline(__always) mutating func touch(_ a: Int) {
        recencyCounter += 1
        recency[a] = recencyCounter
    }

    /// Starts loading adapter `a` into a GPU slot if one is free or can be freed
    /// (docs/engine-model.md, "Adapters"). Records the load in `loadsStarted`. Returns false when
    /// no slot could be had.
    @discardableResult
    mutating func startLoad<Cost: StepCostModel>(_ a: Int, now: Double, cost: Cost) -> Bool {
        var slot = slotAdapter.firstIndex(of: -1) ?? -1
        if slot < 0 {
            var best = -1
            var bestRecency = Int.max
            for s in slotAdapter.indices {
                let b = Int(slotAdapter[s])
                if !adapterLoading[b] && runningUsers[b] == 0 && recency[b] < bestRecency {
                    best = s
                    bestRecency = recency[b]
                }
            }
            guard best >= 0 else { return false }
            adapterSlot[Int(slotAdapter[best])] = -1
            slot = best
        }
        slotAdapter[slot] = Int32(a)
        adapterSlot[a] = Int32(slot)
        adapterLoading[a] = true
        walkGeneration &+= 1
        touch(a)
        let fromDisk = !inHost[a]
        if fromDisk {
            if hostCount == config.maxCPULoras {
                var victim = -1
                var victimRecency = Int.max
                for b in inHost.indices where inHost[b] && adapterSlot[b] < 0 && recency[b] < victimRecency {
                    victim = b
                    victimRecency = recency[b]
                }
                precondition(victim >= 0, "host cache has no evictable adapter (max_cpu_loras < max_loras?)")
                inHost[victim] = false
                hostCount -= 1
            }
            inHost[a] = true
            hostCount += 1
        }
        let finish = max(now, loaderFreeAt) + cost.loadSeconds(adapter: a, fromDisk: fromDisk)
        loaderFreeAt = finish
        loadsStarted.append((Int32(a), finish))
        loadStepSeconds += cost.loadStepSeconds(adapter: a, fromDisk: fromDisk)
        return true
    }

    /// Marks adapter `a`'s load finished: it is resident from now on.
    mutating func loadDone(_ a: Int) {
        precondition(adapterLoading[a], "load finished twice")
        adapterLoading[a] = false
        walkGeneration &+= 1
    }

    /// Adapters resident in GPU slots (for tests and reports).
    public var residentAdapters: [Int] {
        slotAdapter.compactMap { $0 >= 0 && !adapterLoading[Int($0)] ? Int($0) : nil }
    }

    /// Adapters held in host memory.
    public var hostAdapters: [Int] { inHost.indices.filter { inHost[$0] } }
}
