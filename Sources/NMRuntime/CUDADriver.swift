#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed CUDA driver call: which call, its `CUresult` code and the driver's own words for it.
public struct CUDAError: Error, CustomStringConvertible {
    public let call: String
    public let code: Int32
    public let message: String
    public var description: String { "\(call) failed: \(message) (CUresult \(code))" }
}

/// The CUDA driver library could not be loaded, or lacks a function NMC needs.
public struct CUDAUnavailable: Error, CustomStringConvertible {
    public let reason: String
    public var description: String { "no CUDA driver: \(reason)" }
}

/// Opaque driver handles (`CUcontext`, `CUmodule`, `CUfunction`, `CUstream`, `CUevent`, `CUgraph`,
/// `CUgraphExec`) are pointers; device memory (`CUdeviceptr`) is a 64-bit integer.
public typealias CUHandle = OpaquePointer
public typealias CUDevicePointer = UInt64

/// The CUDA driver API, loaded at run time with `dlopen("libcuda.so.1")` so that NMC builds and
/// runs without the CUDA SDK; only the driver that ships with the GPU is needed. Function names
/// are the versioned symbols the SDK's headers map to (`cuMemAlloc` → `cuMemAlloc_v2`, …).
public final class CUDADriver: @unchecked Sendable {
    let cuInit: @convention(c) (UInt32) -> Int32
    let cuDeviceGetCount: @convention(c) (UnsafeMutablePointer<Int32>) -> Int32
    let cuDeviceGet: @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32
    let cuDeviceGetName: @convention(c) (UnsafeMutablePointer<CChar>, Int32, Int32) -> Int32
    let cuDeviceGetAttribute: @convention(c) (UnsafeMutablePointer<Int32>, Int32, Int32) -> Int32
    let cuDriverGetVersion: @convention(c) (UnsafeMutablePointer<Int32>) -> Int32
    let cuDevicePrimaryCtxRetain: @convention(c) (UnsafeMutablePointer<CUHandle?>, Int32) -> Int32
    let cuCtxSetCurrent: @convention(c) (CUHandle?) -> Int32
    let cuCtxSynchronize: @convention(c) () -> Int32
    let cuModuleLoadDataEx: @convention(c) (UnsafeMutablePointer<CUHandle?>, UnsafeRawPointer, UInt32,
                                            UnsafeMutablePointer<Int32>?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Int32
    let cuModuleGetFunction: @convention(c) (UnsafeMutablePointer<CUHandle?>, CUHandle?, UnsafePointer<CChar>) -> Int32
    let cuModuleUnload: @convention(c) (CUHandle?) -> Int32
    let cuFuncGetAttribute: @convention(c) (UnsafeMutablePointer<Int32>, Int32, CUHandle?) -> Int32
    let cuFuncSetAttribute: @convention(c) (CUHandle?, Int32, Int32) -> Int32
    /// Nil with drivers older than CUDA 12 (no bulk tensor copies).
    let cuTensorMapEncodeTiled: (@convention(c) (UnsafeMutableRawPointer, Int32, UInt32, UnsafeMutableRawPointer?, UnsafePointer<UInt64>,
                                                UnsafePointer<UInt64>, UnsafePointer<UInt32>, UnsafePointer<UInt32>, Int32, Int32, Int32, Int32) -> Int32)?
    let cuMemAlloc: @convention(c) (UnsafeMutablePointer<CUDevicePointer>, Int) -> Int32
    let cuMemFree: @convention(c) (CUDevicePointer) -> Int32
    let cuMemcpyHtoD: @convention(c) (CUDevicePointer, UnsafeRawPointer, Int) -> Int32
    let cuMemcpyDtoH: @convention(c) (UnsafeMutableRawPointer, CUDevicePointer, Int) -> Int32
    let cuMemsetD8Async: @convention(c) (CUDevicePointer, UInt8, Int, CUHandle?) -> Int32
    let cuMemcpyDtoDAsync: @convention(c) (CUDevicePointer, CUDevicePointer, Int, CUHandle?) -> Int32
    let cuLaunchKernel: @convention(c) (CUHandle?, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, CUHandle?,
                                        UnsafeMutablePointer<UnsafeMutableRawPointer?>?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Int32
    /// Nil with drivers older than CUDA 11.8 (launch attributes, programmatic dependent launch).
    let cuLaunchKernelEx: (@convention(c) (UnsafeRawPointer, CUHandle?, UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
                                           UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> Int32)?
    let cuStreamCreate: @convention(c) (UnsafeMutablePointer<CUHandle?>, UInt32) -> Int32
    let cuStreamSynchronize: @convention(c) (CUHandle?) -> Int32
    let cuStreamDestroy: @convention(c) (CUHandle?) -> Int32
    let cuEventCreate: @convention(c) (UnsafeMutablePointer<CUHandle?>, UInt32) -> Int32
    let cuEventRecord: @convention(c) (CUHandle?, CUHandle?) -> Int32
    let cuEventSynchronize: @convention(c) (CUHandle?) -> Int32
    let cuEventElapsedTime: @convention(c) (UnsafeMutablePointer<Float>, CUHandle?, CUHandle?) -> Int32
    let cuEventDestroy: @convention(c) (CUHandle?) -> Int32
    let cuStreamBeginCapture: @convention(c) (CUHandle?, Int32) -> Int32
    let cuStreamEndCapture: @convention(c) (CUHandle?, UnsafeMutablePointer<CUHandle?>) -> Int32
    let cuGraphInstantiateWithFlags: @convention(c) (UnsafeMutablePointer<CUHandle?>, CUHandle?, UInt64) -> Int32
    let cuGraphLaunch: @convention(c) (CUHandle?, CUHandle?) -> Int32
    let cuGraphExecDestroy: @convention(c) (CUHandle?) -> Int32
    let cuGraphDestroy: @convention(c) (CUHandle?) -> Int32
    let cuGetErrorString: @convention(c) (Int32, UnsafeMutablePointer<UnsafePointer<CChar>?>) -> Int32

    /// Loads the driver; throws `CUDAUnavailable` (never traps) where there is none.
    public static func load(path: String = "libcuda.so.1") throws -> CUDADriver {
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            let why = dlerror().map { String(cString: $0) } ?? "dlopen failed"
            throw CUDAUnavailable(reason: "dlopen(\"\(path)\"): \(why)")
        }
        return try CUDADriver(handle: handle)
    }

    private init(handle: UnsafeMutableRawPointer) throws {
        func sym<T>(_ names: String...) throws -> T {
            for name in names {
                if let p = dlsym(handle, name) { return unsafeBitCast(p, to: T.self) }
            }
            throw CUDAUnavailable(reason: "the driver has no \(names[0])")
        }
        cuInit = try sym("cuInit")
        cuDeviceGetCount = try sym("cuDeviceGetCount")
        cuDeviceGet = try sym("cuDeviceGet")
        cuDeviceGetName = try sym("cuDeviceGetName")
        cuDeviceGetAttribute = try sym("cuDeviceGetAttribute")
        cuDriverGetVersion = try sym("cuDriverGetVersion")
        cuDevicePrimaryCtxRetain = try sym("cuDevicePrimaryCtxRetain")
        cuCtxSetCurrent = try sym("cuCtxSetCurrent")
        cuCtxSynchronize = try sym("cuCtxSynchronize")
        cuModuleLoadDataEx = try sym("cuModuleLoadDataEx")
        cuModuleGetFunction = try sym("cuModuleGetFunction")
        cuModuleUnload = try sym("cuModuleUnload")
        cuFuncGetAttribute = try sym("cuFuncGetAttribute")
        cuFuncSetAttribute = try sym("cuFuncSetAttribute")
        cuTensorMapEncodeTiled = try? sym("cuTensorMapEncodeTiled")
        cuMemAlloc = try sym("cuMemAlloc_v2")
        cuMemFree = try sym("cuMemFree_v2")
        cuMemcpyHtoD = try sym("cuMemcpyHtoD_v2")
        cuMemcpyDtoH = try sym("cuMemcpyDtoH_v2")
        cuMemcpyDtoDAsync = try sym("cuMemcpyDtoDAsync_v2")
        cuMemsetD8Async = try sym("cuMemsetD8Async")
        cuLaunchKernel = try sym("cuLaunchKernel")
        cuLaunchKernelEx = try? sym("cuLaunchKernelEx")
        cuStreamCreate = try sym("cuStreamCreate")
        cuStreamSynchronize = try sym("cuStreamSynchronize")
        cuStreamDestroy = try sym("cuStreamDestroy_v2")
        cuEventCreate = try sym("cuEventCreate")
        cuEventRecord = try sym("cuEventRecord")
        cuEventSynchronize = try sym("cuEventSynchronize")
        cuEventElapsedTime = try sym("cuEventElapsedTime_v2", "cuEventElapsedTime")
        cuEventDestroy = try sym("cuEventDestroy_v2")
        cuStreamBeginCapture = try sym("cuStreamBeginCapture_v2")
        cuStreamEndCapture = try sym("cuStreamEndCapture")
        cuGraphInstantiateWithFlags = try sym("cuGraphInstantiateWithFlags")
        cuGraphLaunch = try sym("cuGraphLaunch")
        cuGraphExecDestroy = try sym("cuGraphExecDestroy")
        cuGraphDestroy = try sym("cuGraphDestroy")
        cuGetErrorString = try sym("cuGetErrorString")
    }

    /// Turns a `CUresult` into a thrown `CUDAError` naming the call.
    func check(_ result: Int32, _ call: @autoclosure () -> String) throws {
        guard result != 0 else { return }
        var text: UnsafePointer<CChar>? = nil
        _ = cuGetErrorString(result, &text)
        throw CUDAError(call: call(), code: result, message: text.map { String(cString: $0) } ?? "unknown error")
    }
}
