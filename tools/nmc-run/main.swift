import ArgumentParser
#if canImport(FoundationEssentials)
import FoundationEssentials
#endif
import Foundation

/// Runs a compiled NMC artifact. It links no LLVM so a static build can be copied to a GPU machine.
@main
struct NMCRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nmc-run",
        abstract: "Run a compiled NMC artifact directory (model.so or model.ptx with its weights).",
        discussion: "Artifacts come from `nmc compile`; running them arrives with the CPU and PTX backends.")

    @Argument(help: "The artifact directory written by `nmc compile`.")
    var artifact: String

    func run() throws {
        FileHandle.standardError.write(Data("nmc-run: running artifacts is not implemented yet (it arrives with the CPU and PTX backends)\n".utf8))
        throw ExitCode(2)
    }
}
