#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NMRuntime
import Testing

/// The runtime's thread pool: every index of every job is run exactly once, across spinning and
/// sleeping workers, more threads than cores, and pools made and dropped. `make sanitize` runs
/// these under ThreadSanitizer, which would report a job's fields or counters read while another
/// thread writes them.
@Suite struct ThreadPoolTests {
    /// Adds 1 to `counters[i]` for every `i` of the share (plain, non-atomic writes: two threads
    /// given the same index would race, and the count would show it).
    static let increment: KernelPointer = { arguments, begin, end in
        let counters = arguments!.assumingMemoryBound(to: Int32.self)
        for i in Int(begin)..<Int(end) { counters[i] += 1 }
    }

    @Test(arguments: [1, 2, 3, 5])
    func everyIndexRunsOnceAcrossManyJobs(threads: Int) {
        let pool = ThreadPool(threads: threads)
        var rng = SplitMix64(seed: UInt64(threads))
        let capacity = 512
        let counters = UnsafeMutablePointer<Int32>.allocate(capacity: capacity)
        defer { counters.deallocate() }
        for job in 0..<3000 {
            let n = Int.random(in: 0...capacity, using: &rng)
            let grain = Int.random(in: 1...64, using: &rng)
            counters.initialize(repeating: 0, count: capacity)
            pool.parallelFor(Self.increment, UnsafeMutableRawPointer(counters), Int64(n), grain: Int64(grain))
            let wrong = (0..<capacity).first { counters[$0] != ($0 < n ? 1 : 0) }
            #expect(wrong == nil, "threads \(threads), job \(job): n \(n) grain \(grain): index \(wrong ?? -1) ran \(counters[wrong ?? 0]) times")
            if wrong != nil { return }
            // Now and then let the workers fall asleep (they spin for about 100 µs) so that the
            // next job must wake them.
            if job % 500 == 499 { usleep(3000) }
        }
    }

    @Test func poolsCanBeMadeAndDroppedWhileWorkersSpinOrSleep() {
        let counters = UnsafeMutablePointer<Int32>.allocate(capacity: 64)
        defer { counters.deallocate() }
        for round in 0..<40 {
            let pool = ThreadPool(threads: 3)
            counters.initialize(repeating: 0, count: 64)
            pool.parallelFor(Self.increment, UnsafeMutableRawPointer(counters), 64, grain: 1)
            #expect((0..<64).allSatisfy { counters[$0] == 1 }, "round \(round)")
            if round % 2 == 0 { usleep(2000) }
        }
    }
}
