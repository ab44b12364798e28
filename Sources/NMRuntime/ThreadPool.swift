#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// The signature of a generated kernel: `void kernel(void *slots, int64_t begin, int64_t end)`.
public typealias KernelPointer = @convention(c) (UnsafeMutableRawPointer?, Int64, Int64) -> Void
/// The signature of `parallelFor` as generated code calls it (`CPUABI.Slot.parallelFor`).
public typealias ParallelForPointer = @convention(c) (UnsafeMutableRawPointer?, KernelPointer?, UnsafeMutableRawPointer?, Int64, Int64) -> Void

/// Splits a kernel's work over a fixed set of threads: the caller takes the first share, each
/// worker one of the others. Decoding one token calls it a few hundred times, so workers spin
/// briefly between calls (a wake-up through the kernel would cost more than most kernels) and
/// sleep on a condition variable when no work has come for a while.
public final class ThreadPool: @unchecked Sendable {
    private let core: PoolCore
    public var threads: Int { core.threads }

    /// `threads`: total threads including the caller's (at least 1).
    public init(threads: Int) { core = PoolCore(threads: threads) }

    deinit { core.stop() }

    /// Runs `kernel(arguments, begin, end)` over `0 ..< n`, inline when `n <= grain`.
    public func parallelFor(_ kernel: KernelPointer, _ arguments: UnsafeMutableRawPointer?, _ n: Int64, grain: Int64) {
        core.parallelFor(kernel, arguments, n, grain: grain)
    }

    /// The C entry point handed to generated code: `pool` is this object, unretained.
    public static let parallelForEntry: ParallelForPointer = { pool, kernel, arguments, n, grain in
        guard let pool, let kernel else { return }
        Unmanaged<ThreadPool>.fromOpaque(pool).takeUnretainedValue().parallelFor(kernel, arguments, n, grain: grain)
    }
}

/// The pool's state, shared with its worker threads (which keep it alive until they stop).
final class PoolCore: @unchecked Sendable {
    let threads: Int
    private let generation = Atomic<Int>(0)
    private let pending = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    // The current job, written by the caller before `generation` is bumped (release) and read by
    // workers after they see the new generation (acquire).
    private var kernel: KernelPointer?
    private var arguments: UnsafeMutableRawPointer?
    private var work: Int64 = 0
    private var parts = 0
    private var mutex = pthread_mutex_t()
    private var condition = pthread_cond_t()
    private var sleepers = 0
    private var workers: [pthread_t] = []
    /// Spin iterations before a worker sleeps (about 50–100 µs).
    private static let spinLimit = 20_000

    init(threads: Int) {
        self.threads = max(1, threads)
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&condition, nil)
        for index in 1..<self.threads {
            var attributes = pthread_attr_t()
            pthread_attr_init(&attributes)
            pthread_attr_setstacksize(&attributes, 8 << 20)
            let box = Unmanaged.passRetained(WorkerStart(pool: self, index: index))
            var thread = pthread_t()
            let started = pthread_create(&thread, &attributes, { raw in
                let start = Unmanaged<WorkerStart>.fromOpaque(raw!).takeRetainedValue()
                start.pool.workerLoop(index: start.index)
                return nil
            }, box.toOpaque())
            pthread_attr_destroy(&attributes)
            if started == 0 { workers.append(thread) } else { box.release() }
        }
    }

    func stop() {
        stopping.store(true, ordering: .releasing)
        pthread_mutex_lock(&mutex)
        _ = generation.add(1, ordering: .releasing)
        pthread_cond_broadcast(&condition)
        pthread_mutex_unlock(&mutex)
        for t in workers { pthread_join(t, nil) }
    }

    deinit {
        pthread_cond_destroy(&condition)
        pthread_mutex_destroy(&mutex)
    }

    private final class WorkerStart {
        let pool: PoolCore
        let index: Int
        init(pool: PoolCore, index: Int) { self.pool = pool; self.index = index }
    }

    /// The share `part` of `parts` of `0 ..< n`.
    private static func range(_ part: Int, of parts: Int, _ n: Int64) -> (Int64, Int64) {
        (n * Int64(part) / Int64(parts), n * Int64(part + 1) / Int64(parts))
    }

    func parallelFor(_ kernel: KernelPointer, _ arguments: UnsafeMutableRawPointer?, _ n: Int64, grain: Int64) {
        let parts = min(workers.count + 1, Int(max(1, (n + max(grain, 1) - 1) / max(grain, 1))))
        if parts <= 1 {
            kernel(arguments, 0, n)
            return
        }
        self.kernel = kernel
        self.arguments = arguments
        self.work = n
        self.parts = parts
        // Every worker acknowledges every job, taking part or not, so that none can read the
        // fields of the next job while it still works on this one.
        pending.store(workers.count, ordering: .relaxed)
        _ = generation.add(1, ordering: .releasing)
        pthread_mutex_lock(&mutex)
        if sleepers > 0 { pthread_cond_broadcast(&condition) }
        pthread_mutex_unlock(&mutex)
        let (begin, end) = Self.range(0, of: parts, n)
        kernel(arguments, begin, end)
        while pending.load(ordering: .acquiring) > 0 {}
    }

    private func workerLoop(index: Int) {
        // Generation 0 is the pool's state before any job; a job posted before this thread first
        // runs must still be seen as new.
        var seen = 0
        while true {
            var spins = 0
            var current = generation.load(ordering: .acquiring)
            while current == seen {
                spins += 1
                if spins >= Self.spinLimit {
                    pthread_mutex_lock(&mutex)
                    sleepers += 1
                    while generation.load(ordering: .acquiring) == seen { pthread_cond_wait(&condition, &mutex) }
                    sleepers -= 1
                    pthread_mutex_unlock(&mutex)
                    spins = 0
                }
                current = generation.load(ordering: .acquiring)
            }
            seen = current
            if stopping.load(ordering: .acquiring) { return }
            if index < parts, let kernel {
                let (begin, end) = Self.range(index, of: parts, work)
                kernel(arguments, begin, end)
            }
            _ = pending.subtract(1, ordering: .releasing)
        }
    }
}
