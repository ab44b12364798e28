// swift-tools-version:6.0
import PackageDescription

// LLVM 19 comes from Debian's llvm-19-dev; its headers and library live under
// /usr/lib/llvm-19 (what `llvm-config-19 --includedir/--libdir` print). Every
// target that imports CLLVM, directly or through another module, needs the
// include path, so the flags are shared.
let llvmPrefix = "/usr/lib/llvm-19"
let llvmSwiftFlags: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-I\(llvmPrefix)/include"])]
let llvmLinkFlags: [LinkerSetting] = [.unsafeFlags(["-L\(llvmPrefix)/lib"])]

let package = Package(
    name: "NMC",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "nmc", targets: ["nmc"]),
        .executable(name: "nmc-opt", targets: ["nmc-opt"]),
        .executable(name: "nmc-run", targets: ["nmc-run"]),
        // Libraries for packages that build on NMC by path (the fuzz targets in fuzz/).
        .library(name: "NMIR", targets: ["NMIR"]),
        .library(name: "NMPasses", targets: ["NMPasses"]),
        .library(name: "NMFrontend", targets: ["NMFrontend"]),
        .library(name: "NMDriver", targets: ["NMDriver"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .systemLibrary(name: "CLLVM", path: "Sources/CLLVM"),
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS"),

        .target(name: "NMIR"),
        .target(name: "NMPasses", dependencies: ["NMIR"]),
        .target(name: "NMFrontend", dependencies: ["NMIR"]),
        .target(name: "NMInterpreter", dependencies: ["NMIR", "COpenBLAS"]),
        .target(name: "NMTargetCPU", dependencies: ["NMIR", "NMRuntime", "CLLVM"],
                swiftSettings: llvmSwiftFlags, linkerSettings: llvmLinkFlags),
        .target(name: "NMTargetPTX", dependencies: ["NMIR"]),
        .target(name: "NMTargetHLS", dependencies: ["NMIR", "NMInterpreter"]),
        .target(name: "NMRuntime", dependencies: ["NMIR"]),
        .target(name: "NMDriver",
                dependencies: ["NMIR", "NMPasses", "NMFrontend", "NMInterpreter", "NMTargetCPU", "COpenBLAS",
                               "NMTargetPTX", "NMTargetHLS", "NMRuntime"],
                swiftSettings: llvmSwiftFlags, linkerSettings: llvmLinkFlags),

        .executableTarget(name: "nmc",
                          dependencies: ["NMDriver", "NMRuntime", .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          path: "tools/nmc", swiftSettings: llvmSwiftFlags, linkerSettings: llvmLinkFlags),
        .executableTarget(name: "nmc-opt",
                          dependencies: ["NMDriver", .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          path: "tools/nmc-opt", swiftSettings: llvmSwiftFlags, linkerSettings: llvmLinkFlags),
        // nmc-run links no LLVM so that a static build stays small enough to copy to a GPU machine.
        .executableTarget(name: "nmc-run",
                          dependencies: ["NMRuntime", "NMIR", "NMFrontend", "NMTargetPTX", .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          path: "tools/nmc-run"),

        .testTarget(name: "NMIRTests", dependencies: ["NMIR", "NMRuntime"]),
        .testTarget(name: "NMPassesTests", dependencies: ["NMPasses", "NMIR", "NMRuntime"]),
        .testTarget(name: "NMFrontendTests", dependencies: ["NMFrontend", "NMIR", "NMRuntime"]),
        .testTarget(name: "NMDriverTests", dependencies: ["NMDriver"],
                    swiftSettings: llvmSwiftFlags, linkerSettings: llvmLinkFlags),
        .testTarget(name: "NMTargetHLSTests", dependencies: ["NMTargetHLS", "NMIR", "NMInterpreter"]),
        .testTarget(name: "NMTargetPTXTests", dependencies: ["NMTargetPTX", "NMRuntime", "NMInterpreter", "NMIR"]),
        .testTarget(name: "NMBackendLibraryTests", dependencies: ["NMTargetCPU", "NMInterpreter", "NMRuntime", "NMPasses"],
                    swiftSettings: llvmSwiftFlags, linkerSettings: llvmLinkFlags),
    ]
)
