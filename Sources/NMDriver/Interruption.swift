import Dispatch
import Foundation
import NMIR

/// SIGINT and SIGTERM: remove the outputs still being written (`TemporaryPaths`), say so, and
/// exit with 130 (or 143). Earlier outputs stay as they were, because outputs are renamed into
/// place only when complete.
public enum Interruption {
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []
    private static let installed = Mutex(false)

    public static func install(tool: String) {
        let first = installed.withLock { done -> Bool in
            defer { done = true }
            return !done
        }
        guard first else { return }
        for (signalNumber, status) in [(SIGINT, Int32(130)), (SIGTERM, Int32(143))] {
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler {
                TemporaryPaths.shared.removeAll()
                FileHandle.standardError.write(Data("\n\(tool): interrupted; no partial output was left\n".utf8))
                exit(status)
            }
            source.resume()
            sources.append(source)
        }
    }
}

import Synchronization
