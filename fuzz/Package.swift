// swift-tools-version:6.0
import PackageDescription

// libFuzzer targets for every reader of outside input (docs/reliability.md). `make fuzz` builds
// them with
//   swift build --package-path fuzz --sanitize fuzzer -Xswiftc -sanitize=fuzzer,address
// `--sanitize fuzzer` makes SwiftPM link libFuzzer's main; `-Xswiftc -sanitize=fuzzer,address`
// comes last on every compile line, so that NMC's own modules get both the coverage
// instrumentation and ASan (SwiftPM passes only one of two `--sanitize` values to the compiler).
let llvmLinkFlags: [LinkerSetting] = [.unsafeFlags(["-L/usr/lib/llvm-19/lib"])]

func fuzzTarget(_ name: String, _ products: [String]) -> Target {
    .executableTarget(name: name,
                      dependencies: ["FuzzSupport"] + products.map { .product(name: $0, package: "NMC") },
                      swiftSettings: [.unsafeFlags(["-parse-as-library"])],
                      linkerSettings: llvmLinkFlags)
}

let package = Package(
    name: "NMCFuzz",
    dependencies: [.package(name: "NMC", path: "..")],
    targets: [
        .target(name: "FuzzSupport"),
        fuzzTarget("fuzz-nmir", ["NMIR"]),
        fuzzTarget("fuzz-pipeline", ["NMIR", "NMPasses", "NMDriver"]),
        fuzzTarget("fuzz-gguf", ["NMFrontend"]),
        fuzzTarget("fuzz-safetensors", ["NMIR", "NMFrontend"]),
        fuzzTarget("fuzz-tokenizer", ["NMFrontend"]),
        fuzzTarget("fuzz-tokenizer-json", ["NMFrontend"]),
    ]
)
