/// A kernel argument as `cuLaunchKernel` takes it: a device pointer, an integer, or an opaque
/// by-value block (a tensor map: 128 bytes, 64-byte aligned).
public enum CUDAKernelArgument {
    case pointer(CUDevicePointer)
    case u32(UInt32)
    case u64(UInt64)
    case bytes([UInt8], alignment: Int)
}

/// One GPU, its primary context made current on the calling thread, and the operations NMC's
/// PTX backend needs: memory, modules from PTX text, launches, a stream, events and graphs.
/// Device memory is plain `cuMemAlloc` (never managed memory).
public final class CUDADevice: @unchecked Sendable {
    public let driver: CUDADriver
    public let ordinal: Int32
    public let name: String
    public let multiprocessors: Int
    public let computeCapability: (major: Int, minor: Int)
    public let driverVersion: Int
    public let stream: CUHandle?
    private let context: CUHandle?

    /// Opens GPU `ordinal`; throws `CUDAUnavailable` when there is no driver or no GPU.
    public init(ordinal: Int32 = 0) throws {
        let d = try CUDADriver.load()
        driver = d
        self.ordinal = ordinal
        let initResult = d.cuInit(0)
        if initResult == 100 { throw CUDAUnavailable(reason: "the driver found no CUDA device (cuInit: CUDA_ERROR_NO_DEVICE)") }
        try d.check(initResult, "cuInit")
        var count: Int32 = 0
        try d.check(d.cuDeviceGetCount(&count), "cuDeviceGetCount")
        guard ordinal < count else { throw CUDAUnavailable(reason: "no CUDA device \(ordinal) (\(count) found)") }
        var dev: Int32 = 0
        try d.check(d.cuDeviceGet(&dev, ordinal), "cuDeviceGet")
        var nameBytes = [CChar](repeating: 0, count: 256)
        try d.check(d.cuDeviceGetName(&nameBytes, 256, dev), "cuDeviceGetName")
        name = String(decoding: nameBytes.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        func attribute(_ a: Int32) throws -> Int {
            var v: Int32 = 0
            try d.check(d.cuDeviceGetAttribute(&v, a, dev), "cuDeviceGetAttribute(\(a))")
            return Int(v)
        }
        // CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT = 16, COMPUTE_CAPABILITY_MAJOR = 75, MINOR = 76.
        multiprocessors = try attribute(16)
        computeCapability = (try attribute(75), try attribute(76))
        var version: Int32 = 0
        try d.check(d.cuDriverGetVersion(&version), "cuDriverGetVersion")
        driverVersion = Int(version)
        var ctx: CUHandle? = nil
        try d.check(d.cuDevicePrimaryCtxRetain(&ctx, dev), "cuDevicePrimaryCtxRetain")
        try d.check(d.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")
        context = ctx
        var s: CUHandle? = nil
        // A blocking stream (flags 0): ordered with the synchronous copies, which use the legacy stream.
        try d.check(d.cuStreamCreate(&s, 0), "cuStreamCreate")
        stream = s
    }

    /// "NVIDIA H100 80GB HBM3, sm_90, 132 SMs, driver 13.0".
    public var summary: String {
        "\(name), sm_\(computeCapability.major)\(computeCapability.minor), \(multiprocessors) SMs, driver \(driverVersion / 1000).\(driverVersion % 1000 / 10)"
    }

    // MARK: memory

    public func allocate(_ bytes: Int) throws -> CUDevicePointer {
        var p: CUDevicePointer = 0
        try driver.check(driver.cuMemAlloc(&p, max(bytes, 1)), "cuMemAlloc(\(bytes) bytes)")
        return p
    }

    public func free(_ p: CUDevicePointer) {
        _ = driver.cuMemFree(p)
    }

    public func upload<T>(_ values: [T], to p: CUDevicePointer) throws {
        try values.withUnsafeBytes { raw in
            try driver.check(driver.cuMemcpyHtoD(p, raw.baseAddress!, raw.count), "cuMemcpyHtoD(\(raw.count) bytes)")
        }
    }

    /// A new device buffer holding `values`.
    public func buffer<T>(_ values: [T]) throws -> CUDevicePointer {
        let p = try allocate(values.count * MemoryLayout<T>.stride)
        try upload(values, to: p)
        return p
    }

    public func download<T>(_ p: CUDevicePointer, count: Int, as: T.Type) throws -> [T] {
        try synchronize()
        return try [T](unsafeUninitializedCapacity: count) { out, n in
            try driver.check(driver.cuMemcpyDtoH(UnsafeMutableRawPointer(out.baseAddress!), p, count * MemoryLayout<T>.stride),
                             "cuMemcpyDtoH(\(count * MemoryLayout<T>.stride) bytes)")
            n = count
        }
    }

    public func copy(from src: CUDevicePointer, to dst: CUDevicePointer, bytes: Int) throws {
        try driver.check(driver.cuMemcpyDtoDAsync(dst, src, bytes, stream), "cuMemcpyDtoDAsync(\(bytes) bytes)")
    }

    /// Fills a buffer with one byte value, in stream order (to poison outputs before a check, or
    /// as the filler that keeps the GPU busy while timed launches are queued).
    public func fill(_ p: CUDevicePointer, byte: UInt8, bytes: Int) throws {
        try driver.check(driver.cuMemsetD8Async(p, byte, bytes, stream), "cuMemsetD8Async")
    }

    public func synchronize() throws {
        try driver.check(driver.cuStreamSynchronize(stream), "cuStreamSynchronize")
        try driver.check(driver.cuCtxSynchronize(), "cuCtxSynchronize")
    }

    // MARK: modules and launches

    /// Loads PTX text (the driver compiles it for this GPU); a rejected module's error names the
    /// JIT's own log.
    public func loadModule(ptx: String, label: String) throws -> CUDAModule {
        var module: CUHandle? = nil
        var log = [CChar](repeating: 0, count: 16384)
        // CU_JIT_ERROR_LOG_BUFFER = 5, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6.
        var options: [Int32] = [5, 6]
        let result: Int32 = log.withUnsafeMutableBytes { logBytes in
            var values: [UnsafeMutableRawPointer?] = [logBytes.baseAddress, UnsafeMutableRawPointer(bitPattern: logBytes.count)]
            return ptx.withCString { text in driver.cuModuleLoadDataEx(&module, text, 2, &options, &values) }
        }
        if result != 0 {
            let jitLog = String(decoding: log.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            do { try driver.check(result, "cuModuleLoadDataEx(\(label))") } catch let e as CUDAError {
                throw CUDAError(call: e.call, code: e.code, message: e.message + (jitLog.isEmpty ? "" : "\n" + jitLog))
            }
        }
        return CUDAModule(device: self, handle: module)
    }

    /// Whether launches can overlap the kernel before them (programmatic dependent launch:
    /// sm_90 and a driver with `cuLaunchKernelEx`).
    public var supportsDependentLaunch: Bool { computeCapability.major >= 9 && driver.cuLaunchKernelEx != nil }

    /// Launches `function` on the device's stream; the launch error, if any, names the kernel.
    ///
    /// `dependent`: a programmatic dependent launch (`CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION`):
    /// the grid may start before the kernel ahead of it in the stream has finished, as soon as
    /// every block of that kernel has run `griddepcontrol.launch_dependents`. The function must
    /// run `griddepcontrol.wait` in every thread before it reads what earlier work wrote or
    /// writes anything (it waits for the kernel ahead to finish and its writes to be visible);
    /// only NMC kernels built for it do (`LinearKernel.dependentLaunch`). Captured into a graph,
    /// the launch becomes a programmatic edge. Needs `supportsDependentLaunch`.
    ///
    /// `cluster`: the thread-block cluster shape (sm_90; `CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION`),
    /// for kernels whose PTX does not fix it; each dimension must divide the grid's.
    public func launch(_ function: CUDAFunction, grid: (Int, Int, Int), block: (Int, Int, Int),
                       sharedBytes: Int = 0, arguments: [CUDAKernelArgument], dependent: Bool = false,
                       cluster: (Int, Int, Int)? = nil) throws {
        var offsets: [Int] = [], end = 0
        for a in arguments {
            var size = 8, alignment = 8
            if case .bytes(let b, let align) = a { size = b.count; alignment = max(align, 8) }
            let offset = (end + alignment - 1) / alignment * alignment
            offsets.append(offset)
            end = offset + size
        }
        let storage = UnsafeMutableRawPointer.allocate(byteCount: max(end, 8), alignment: 128)
        defer { storage.deallocate() }
        var params: [UnsafeMutableRawPointer?] = []
        for (a, offset) in zip(arguments, offsets) {
            let slot = storage + offset
            switch a {
            case .pointer(let p): slot.storeBytes(of: p, as: UInt64.self)
            case .u32(let v): slot.storeBytes(of: v, as: UInt32.self)
            case .u64(let v): slot.storeBytes(of: v, as: UInt64.self)
            case .bytes(let b, _): b.withUnsafeBytes { slot.copyMemory(from: $0.baseAddress!, byteCount: b.count) }
            }
            params.append(slot)
        }
        guard dependent || cluster != nil else {
            try driver.check(driver.cuLaunchKernel(function.handle, UInt32(grid.0), UInt32(grid.1), UInt32(grid.2),
                                                   UInt32(block.0), UInt32(block.1), UInt32(block.2),
                                                   UInt32(sharedBytes), stream, &params, nil),
                             "cuLaunchKernel(\(function.name))")
            return
        }
        if dependent && !supportsDependentLaunch {
            throw CUDAUnavailable(reason: "programmatic dependent launch needs sm_90 and cuLaunchKernelEx (\(summary))")
        }
        guard computeCapability.major >= 9, let launchEx = driver.cuLaunchKernelEx else {
            throw CUDAUnavailable(reason: "thread-block clusters at launch need sm_90 and cuLaunchKernelEx (\(summary))")
        }
        // CUlaunchAttribute (72 bytes): the id (u32) padded to 8 bytes, then a 64-byte value
        // union (programmaticStreamSerializationAllowed: an int; clusterDim: three u32).
        // CUlaunchConfig: grid and block dimensions and sharedMemBytes (7 × u32), the stream at
        // 32, attrs at 40, numAttrs at 48.
        var attributes: [(id: UInt32, values: [UInt32])] = []
        if dependent { attributes.append((6, [1])) }  // CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION
        if let c = cluster { attributes.append((4, [UInt32(c.0), UInt32(c.1), UInt32(c.2)])) }  // CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION
        let attribute = UnsafeMutableRawPointer.allocate(byteCount: 72 * attributes.count, alignment: 8)
        let config = UnsafeMutableRawPointer.allocate(byteCount: 56, alignment: 8)
        defer { attribute.deallocate(); config.deallocate() }
        attribute.initializeMemory(as: UInt8.self, repeating: 0, count: 72 * attributes.count)
        config.initializeMemory(as: UInt8.self, repeating: 0, count: 56)
        for (i, a) in attributes.enumerated() {
            attribute.storeBytes(of: a.id, toByteOffset: 72 * i, as: UInt32.self)
            for (j, v) in a.values.enumerated() { attribute.storeBytes(of: v, toByteOffset: 72 * i + 8 + 4 * j, as: UInt32.self) }
        }
        for (i, v) in [grid.0, grid.1, grid.2, block.0, block.1, block.2, sharedBytes].enumerated() {
            config.storeBytes(of: UInt32(v), toByteOffset: 4 * i, as: UInt32.self)
        }
        config.storeBytes(of: stream, toByteOffset: 32, as: CUHandle?.self)
        config.storeBytes(of: UnsafeRawPointer(attribute), toByteOffset: 40, as: UnsafeRawPointer.self)
        config.storeBytes(of: UInt32(attributes.count), toByteOffset: 48, as: UInt32.self)
        let how = [dependent ? "dependent" : nil, cluster.map { "cluster \($0.0)x\($0.1)x\($0.2)" }].compactMap { $0 }.joined(separator: ", ")
        try driver.check(launchEx(config, function.handle, &params, nil), "cuLaunchKernelEx(\(function.name), \(how))")
    }

    /// A tensor map (`CUtensorMap`, 128 bytes) for the bulk tensor copy engine: a row-major f16
    /// matrix of `rows` × `columns` at `address`, copied in boxes of `boxRows` × `boxColumns`
    /// with the 128-byte swizzle (boxColumns · 2 must be 128); rows past the end read as zeros.
    public func tensorMapF16(_ address: CUDevicePointer, rows: Int, columns: Int, boxRows: Int, boxColumns: Int) throws -> [UInt8] {
        var map = [UInt8](repeating: 0, count: 128)
        let dims: [UInt64] = [UInt64(columns), UInt64(rows)], strides: [UInt64] = [UInt64(columns * 2)]
        let box: [UInt32] = [UInt32(boxColumns), UInt32(boxRows)], elementStrides: [UInt32] = [1, 1]
        // CU_TENSOR_MAP_DATA_TYPE_FLOAT16 = 6, INTERLEAVE_NONE = 0, SWIZZLE_128B = 3,
        // L2_PROMOTION_L2_128B = 2, FLOAT_OOB_FILL_NONE = 0 (zeros).
        guard let encode = driver.cuTensorMapEncodeTiled else {
            throw CUDAUnavailable(reason: "cuTensorMapEncodeTiled: this driver has no tensor maps (CUDA 12 or later needed)")
        }
        let result = map.withUnsafeMutableBytes { m in
            encode(m.baseAddress!, 6, 2, UnsafeMutableRawPointer(bitPattern: UInt(address)), dims, strides, box,
                                          elementStrides, 0, 3, 2, 0)
        }
        try driver.check(result, "cuTensorMapEncodeTiled(\(rows)x\(columns) f16, box \(boxRows)x\(boxColumns))")
        return map
    }

    // MARK: events and graphs

    public func makeEvent() throws -> CUHandle? {
        var e: CUHandle? = nil
        try driver.check(driver.cuEventCreate(&e, 0), "cuEventCreate")
        return e
    }

    public func record(_ event: CUHandle?) throws {
        try driver.check(driver.cuEventRecord(event, stream), "cuEventRecord")
    }

    /// Milliseconds between two recorded events (waits for the later one).
    public func elapsedMilliseconds(from start: CUHandle?, to end: CUHandle?) throws -> Double {
        try driver.check(driver.cuEventSynchronize(end), "cuEventSynchronize")
        var ms: Float = 0
        try driver.check(driver.cuEventElapsedTime(&ms, start, end), "cuEventElapsedTime")
        return Double(ms)
    }

    public func destroyEvent(_ e: CUHandle?) { _ = driver.cuEventDestroy(e) }

    /// Records what `body` enqueues on the stream into a CUDA graph and instantiates it, so that
    /// a decode step's many launches replay as one.
    public func captureGraph(_ body: () throws -> Void) throws -> CUDAGraph {
        // CU_STREAM_CAPTURE_MODE_THREAD_LOCAL = 1: other threads' CUDA calls stay legal meanwhile.
        try driver.check(driver.cuStreamBeginCapture(stream, 1), "cuStreamBeginCapture")
        var graph: CUHandle? = nil
        do { try body() } catch {
            _ = driver.cuStreamEndCapture(stream, &graph)
            if graph != nil { _ = driver.cuGraphDestroy(graph) }
            throw error
        }
        try driver.check(driver.cuStreamEndCapture(stream, &graph), "cuStreamEndCapture")
        var exec: CUHandle? = nil
        try driver.check(driver.cuGraphInstantiateWithFlags(&exec, graph, 0), "cuGraphInstantiateWithFlags")
        return CUDAGraph(device: self, graph: graph, exec: exec)
    }
}

/// A loaded module; functions are looked up by their PTX entry names.
public final class CUDAModule {
    let device: CUDADevice
    let handle: CUHandle?
    init(device: CUDADevice, handle: CUHandle?) { self.device = device; self.handle = handle }
    deinit { _ = device.driver.cuModuleUnload(handle) }

    public func function(_ name: String) throws -> CUDAFunction {
        var f: CUHandle? = nil
        try device.driver.check(name.withCString { device.driver.cuModuleGetFunction(&f, handle, $0) }, "cuModuleGetFunction(\(name))")
        return CUDAFunction(name: name, handle: f, module: self)
    }
}

public struct CUDAFunction {
    public let name: String
    let handle: CUHandle?
    let module: CUDAModule  // keeps the module loaded while the function is in use

    /// Registers per thread as the driver compiled it (CU_FUNC_ATTRIBUTE_NUM_REGS = 4), and the
    /// spill-revealing local bytes per thread (CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES = 3).
    public func resources() throws -> (registers: Int, localBytes: Int) {
        let d = module.device.driver
        var regs: Int32 = 0, local: Int32 = 0
        try d.check(d.cuFuncGetAttribute(&regs, 4, handle), "cuFuncGetAttribute")
        try d.check(d.cuFuncGetAttribute(&local, 3, handle), "cuFuncGetAttribute")
        return (Int(regs), Int(local))
    }

    /// Lets launches of this function take `bytes` of dynamic shared memory (past the default
    /// 48 KB: CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8).
    public func allowDynamicSharedBytes(_ bytes: Int) throws {
        let d = module.device.driver
        try d.check(d.cuFuncSetAttribute(handle, 8, Int32(bytes)), "cuFuncSetAttribute(\(name), dynamic shared memory \(bytes) bytes)")
    }
}

/// An instantiated CUDA graph, replayed on the device's stream.
public final class CUDAGraph {
    let device: CUDADevice
    let graph: CUHandle?
    let exec: CUHandle?
    init(device: CUDADevice, graph: CUHandle?, exec: CUHandle?) { self.device = device; self.graph = graph; self.exec = exec }
    deinit { _ = device.driver.cuGraphExecDestroy(exec); _ = device.driver.cuGraphDestroy(graph) }

    public func launch() throws {
        try device.driver.check(device.driver.cuGraphLaunch(exec, device.stream), "cuGraphLaunch")
    }

    /// Median microseconds of `runs` replays (a CUDA event pair around each), after 3 warm-ups.
    public func medianReplayMicroseconds(runs: Int) throws -> Double {
        for _ in 0..<3 { try launch() }
        let start = try device.makeEvent(), end = try device.makeEvent()
        defer { device.destroyEvent(start); device.destroyEvent(end) }
        var times: [Double] = []
        for _ in 0..<max(runs, 1) {
            try device.record(start)
            try launch()
            try device.record(end)
            times.append(try device.elapsedMilliseconds(from: start, to: end) * 1000)
        }
        return times.sorted()[times.count / 2]
    }
}
