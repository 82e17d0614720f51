// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "LoraTwin",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "loratwin", targets: ["loratwin"]),
        .library(name: "Twin", targets: ["Twin"]),
        .library(name: "Workloads", targets: ["Workloads"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        // GSL behind a header of our own: GSL's gsl_cblas.h clashes with OpenBLAS's cblas.h when
        // both are imported into one Swift module, so only this C target includes GSL.
        .target(
            name: "LoraTwinGSL",
            linkerSettings: [.linkedLibrary("gsl"), .linkedLibrary("openblas"), .linkedLibrary("m")]
        ),
        .target(
            name: "Workloads",
            dependencies: ["LoraTwinGSL", .product(name: "Yams", package: "Yams")]
        ),
        .target(
            name: "KernelProfiles",
            dependencies: ["LoraTwinGSL"]
        ),
        .target(
            name: "Twin",
            dependencies: [
                "Workloads", "KernelProfiles",
                .product(name: "Collections", package: "swift-collections"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        .target(
            name: "Placement",
            dependencies: ["Twin", "Workloads"]
        ),
        .executableTarget(
            name: "loratwin",
            dependencies: [
                "Twin", "Workloads", "KernelProfiles", "Placement",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "twin-bench",
            dependencies: ["Twin", "Workloads"],
            path: "Benchmarks/twin-bench"
        ),
        .executableTarget(
            name: "trace-bench",
            dependencies: ["Workloads"],
            path: "Benchmarks/trace-bench"
        ),
        .target(
            name: "TestSupport",
            dependencies: ["KernelProfiles", "Twin", "Workloads"],
            path: "Tests/TestSupport"
        ),
        .testTarget(name: "TwinTests", dependencies: ["Twin", "Workloads", "TestSupport"]),
        .testTarget(name: "WorkloadsTests", dependencies: ["Workloads", "TestSupport"]),
        .testTarget(name: "KernelProfilesTests", dependencies: ["KernelProfiles", "TestSupport", "Twin", "Workloads"]),
        .testTarget(name: "PlacementTests", dependencies: ["Placement", "TestSupport"]),
    ],
    swiftLanguageModes: [.v6]
)
