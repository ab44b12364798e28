#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only into memory (`mmap` with `PROT_READ`, `MAP_PRIVATE`), so that model
/// readers hand out tensor bytes without copying the file. The mapping lives as long as this
/// object; `deinit` unmaps it.
///
/// A pointer from `bytes` is valid only while the object is alive: keep it alive across every use
/// (`withExtendedLifetime`, or the readers' `withRawBytes`). Shrinking the file on disk while it is
/// mapped makes reads past the new end fault (SIGBUS); the readers never write to it.
public final class MappedFile: @unchecked Sendable {
    public let path: String
    /// The file's bytes; empty (with a nil base address) for an empty file.
    public let bytes: UnsafeRawBufferPointer
    public var count: Int { bytes.count }

    /// Maps `path`; `makeError` turns a reason ("cannot open file (No such file or directory)")
    /// into the caller's error type, which names the file.
    public init(path: String, makeError: (String) -> any Error) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw makeError("cannot open file (\(Self.errnoText()))") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw makeError("cannot stat file (\(Self.errnoText()))") }
        guard (info.st_mode & S_IFMT) == S_IFREG else { throw makeError("not a regular file") }
        let size = Int(info.st_size)
        guard size > 0 else {
            bytes = UnsafeRawBufferPointer(start: nil, count: 0)
            return
        }
        guard let base = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), base != MAP_FAILED else {
            throw makeError("cannot map file (\(Self.errnoText()))")
        }
        bytes = UnsafeRawBufferPointer(start: base, count: size)
    }

    deinit {
        if let base = bytes.baseAddress, bytes.count > 0 {
            munmap(UnsafeMutableRawPointer(mutating: base), bytes.count)
        }
    }

    /// `body` with the bytes of `range`, keeping the mapping alive meanwhile. The range must lie
    /// inside the file (the readers check every range when they open a file).
    public func withBytes<R>(in range: Range<Int>, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try withExtendedLifetime(self) {
            try body(UnsafeRawBufferPointer(rebasing: bytes[range]))
        }
    }

    static func errnoText() -> String {
        guard let text = strerror(errno) else { return "errno \(errno)" }
        return String(cString: text)
    }
}
