import NMTargetCPU

/// The version line the tools print.
public enum NMCVersion {
    public static let number = "0.1.0"
    public static var line: String {
        let v = LLVMInfo.version
        return "nmc \(number) (LLVM \(v.major).\(v.minor).\(v.patch), host CPU \(LLVMInfo.hostCPUName))"
    }
}
