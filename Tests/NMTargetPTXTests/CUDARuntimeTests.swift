import NMRuntime
import Testing
@testable import NMTargetPTX

/// Whether this machine has a CUDA driver and GPU; the GPU tests skip with this message when not.
enum CUDAAvailability {
    static let device: CUDADevice? = try? CUDADevice()
    static var found: Bool { device != nil }
    static var skipMessage: Comment {
        do { _ = try CUDADevice(); return "GPU found" } catch { return Comment(rawValue: "skipping the GPU test: \(error)") }
    }
}

@Suite struct CUDARuntimeTests {
    /// Without a driver the runtime reports it (never traps), naming libcuda.so.1.
    @Test(.enabled(if: !CUDAAvailability.found, "a CUDA driver is present"))
    func missingDriverIsAnError() {
        do {
            _ = try CUDADevice()
            Issue.record("CUDADevice() succeeded without a driver")
        } catch let e as CUDAUnavailable {
            #expect(e.description.hasPrefix("no CUDA driver:"))
        } catch {
            Issue.record("unexpected error \(error)")
        }
    }

    /// On a GPU: a module from PTX, a launch, a copy back, and a graph replay of the same launch.
    @Test(.enabled(if: CUDAAvailability.found, CUDAAvailability.skipMessage))
    func addOneRunsDirectlyAndThroughAGraph() throws {
        let device = try #require(CUDAAvailability.device)
        let module = try device.loadModule(ptx: PTXModule.text(entries: [UtilityKernels.addOne]), label: "add_one")
        let f = try module.function("nm_add_one")
        let input = (0..<300).map { Float($0) * 0.5 }
        let p = try device.buffer(input)
        defer { device.free(p) }
        try device.launch(f, grid: (2, 1, 1), block: (256, 1, 1), arguments: [.pointer(p), .u32(300)])
        let graph = try device.captureGraph {
            try device.launch(f, grid: (2, 1, 1), block: (256, 1, 1), arguments: [.pointer(p), .u32(300)])
        }
        try graph.launch()
        #expect(try device.download(p, count: 300, as: Float.self) == input.map { $0 + 2 })
    }
}
