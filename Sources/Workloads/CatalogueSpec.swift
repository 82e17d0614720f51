/// A generated adapter catalogue: `count` adapters with ranks drawn from a weighted list.
public struct CatalogueSpec: Sendable, Equatable {
    /// Number of adapters.
    public var count: Int
    /// Ranks to draw from, with their weights.
    public var ranks: [(rank: Int, weight: Double)]
    /// LoRA alpha of every adapter.
    public var alpha: Double
    /// Target modules of every adapter.
    public var targetModules: [String]
    /// The base model every adapter is for, if given.
    public var baseModel: String?

    /// Creates a catalogue spec.
    public init(count: Int, ranks: [(rank: Int, weight: Double)], alpha: Double, targetModules: [String], baseModel: String? = nil) {
        self.count = count
        self.ranks = ranks
        self.alpha = alpha
        self.targetModules = targetModules
        self.baseModel = baseModel
    }

    /// Compares field by field (tuples are not `Equatable`).
    public static func == (a: Self, b: Self) -> Bool {
        a.count == b.count && a.alpha == b.alpha && a.targetModules == b.targetModules && a.baseModel == b.baseModel
            && a.ranks.map(\.rank) == b.ranks.map(\.rank) && a.ranks.map(\.weight) == b.ranks.map(\.weight)
    }

    /// Draws the catalogue: adapters `a0`, `a1`, ... with seeded ranks.
    public func generate(_ rng: RandomSource) -> AdapterCatalogue {
        guard let table = DiscreteDistribution(weights: ranks.map(\.weight)) else { return AdapterCatalogue([]) }
        return AdapterCatalogue(
            (0..<count).map { i in
                AdapterSpec(
                    name: "a\(i)", rank: ranks[rng.draw(table)].rank, alpha: alpha, targetModules: targetModules, baseModel: baseModel)
            })
    }

    /// A short description for provenance: `32 adapters, ranks 8:1 16:1, alpha 16, q_proj;v_proj`.
    public var summary: String {
        "\(count) adapters, ranks " + ranks.map { "\($0.rank):\($0.weight)" }.joined(separator: " ") + ", alpha \(alpha), "
            + targetModules.joined(separator: ";")
    }
}
