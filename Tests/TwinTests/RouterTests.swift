import TestSupport
import Testing
import Twin
import Workloads

@Suite("Router and placement")
struct RouterTests {
    @Test("requests go to the least-loaded hosting replica, ties to the lowest index")
    func leastLoaded() {
        let trace = Fixtures.trace([(0, 0, 10, 2), (0, 0, 10, 2), (0, 0, 10, 2), (0, 1, 10, 2)], adapters: 2)
        let sim = Fixtures.simulate(
            trace, engine: Fixtures.engine(), cost: LinearCostModel(baseSeconds: 0.01), replicas: 3,
            placement: .explicit(["a0": [0, 1], "a1": [2]]))
        #expect(sim.requests.map(\.replica) == [0, 1, 0, 2])
    }

    @Test("round-robin placement spreads copies over consecutive replicas")
    func roundRobin() {
        let cat = Fixtures.catalogue(4)
        #expect(PlacementSpec.roundRobin(copies: 2).resolve(catalogue: cat, replicas: 3) == [[0, 1], [1, 2], [0, 2], [0, 1]])
    }
}
