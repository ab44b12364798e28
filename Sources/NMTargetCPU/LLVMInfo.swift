import CLLVM

/// Facts about the LLVM this build links, for `nmc --version` and the set-up check.
public enum LLVMInfo {
    public static var version: (major: Int, minor: Int, patch: Int) {
        var major: UInt32 = 0, minor: UInt32 = 0, patch: UInt32 = 0
        LLVMGetVersion(&major, &minor, &patch)
        return (Int(major), Int(minor), Int(patch))
    }

    /// The host CPU's name as LLVM sees it (`sapphirerapids`, `znver4`, …).
    public static var hostCPUName: String {
        guard let raw = LLVMGetHostCPUName() else { return "unknown" }
        defer { LLVMDisposeMessage(raw) }
        return String(cString: raw)
    }
}
