#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the fuzz targets share: the input as bytes, splitting one input into several files, and
/// a scratch folder for the readers that take a path.

/// The bytes libFuzzer hands to `LLVMFuzzerTestOneInput`.
public func fuzzBytes(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
    guard let data, size > 0 else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: size))
}

/// Separates the files of a multi-file input (`config.json`, then `model.safetensors` …). Seed
/// files are written with it (fuzz/make_corpus.py); a mutation that breaks it simply leaves
/// fewer files.
public let fileSeparator: [UInt8] = Array("\n%%NMC-FUZZ-NEXT-FILE%%\n".utf8)

/// The parts of `bytes` between separators, at most `limit` of them (the last keeps the rest).
public func splitFiles(_ bytes: [UInt8], limit: Int) -> [[UInt8]] {
    var parts: [[UInt8]] = []
    var start = 0
    var i = 0
    let sep = fileSeparator
    while i + sep.count <= bytes.count, parts.count + 1 < limit {
        if bytes[i] == sep[0], Array(bytes[i..<(i + sep.count)]) == sep {
            parts.append(Array(bytes[start..<i]))
            i += sep.count
            start = i
        } else {
            i += 1
        }
    }
    parts.append(Array(bytes[start...]))
    return parts
}

/// A folder of this process's own (under $NMC_FUZZ_SCRATCH, else /dev/shm when there is one, so
/// writing an input per run costs no disk), removed at a normal exit. Readers that map or open a path get the input from here.
public final class ScratchFolder: @unchecked Sendable {
    public let path: String

    public init(_ name: String) {
        var info = stat()
        let base: String
        if let given = getenv("NMC_FUZZ_SCRATCH") {
            base = String(cString: given)  // fuzz/run.sh's, removed after the run even after a crash
        } else if stat("/dev/shm", &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR, access("/dev/shm", W_OK) == 0 {
            base = "/dev/shm"
        } else if let tmp = getenv("TMPDIR") {
            base = String(cString: tmp)
        } else {
            base = "/tmp"
        }
        path = "\(base)/nmc-\(name)-\(getpid())"
        mkdir(path, 0o700)
        scratchFoldersToRemove.append(path)
        if scratchFoldersToRemove.count == 1 {
            atexit { for p in scratchFoldersToRemove { removeFolder(p) } }
        }
    }

    /// Writes `bytes` to `name` in the folder (replacing what was there); returns its path.
    @discardableResult
    public func write(_ name: String, _ bytes: [UInt8]) -> String {
        let file = path + "/" + name
        let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else { fatalError("fuzz harness: cannot write \(file)") }
        var done = 0
        bytes.withUnsafeBytes { raw in
            while done < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
                guard n > 0 else { fatalError("fuzz harness: cannot write \(file)") }
                done += n
            }
        }
        close(fd)
        return file
    }

    /// Removes `name` from the folder if it is there.
    public func remove(_ name: String) { unlink(path + "/" + name) }
}

nonisolated(unsafe) private var scratchFoldersToRemove: [String] = []

private func removeFolder(_ path: String) {
    guard let dir = opendir(path) else { return }
    while let entry = readdir(dir) {
        let name = withUnsafePointer(to: entry.pointee.d_name) {
            $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
        }
        if name != "." && name != ".." { unlink(path + "/" + name) }
    }
    closedir(dir)
    rmdir(path)
}

/// With NMC_FUZZ_VERBOSE=1 in the environment, the targets say what each input came to (the
/// value, or the error a reader threw): run a target on one file to see why it is rejected.
public let fuzzVerbose: Bool = getenv("NMC_FUZZ_VERBOSE").map { String(cString: $0) != "0" } ?? false

/// `message` is built on every run (error texts are part of what is fuzzed), printed only when verbose.
public func report(_ message: String) {
    guard fuzzVerbose else { return }
    let line = Array((message + "\n").utf8)
    line.withUnsafeBytes { _ = Glibc.write(2, $0.baseAddress, $0.count) }
}
