import NMRuntime
import Testing
@testable import NMTargetPTX

@Suite struct PackedINT4WeightTests {
    /// ir-specs/quant.md's worked 2:4 example, read from its storage bytes.
    @Test func readsTheSpecExample() throws {
        let scales: [UInt16] = [0.5, 1.0, 0.25, 2.0].map { Float16($0).bitPattern }
        let w = try PackedINT4Weight(storage: [0xE3, 0x15, 0x42, 0x7F, 0xCD, 0xE8], rows: 2, columns: 8, group: 4,
                                     sparse24: true, scaleBits: scales)
        #expect(w.values == [3, -2, 5, 1, 2, 4, -1, 7])
        #expect(w.indices == [1, 3, 0, 3, 0, 2, 2, 3])
        #expect(w.dequantizedRow(0) == [0, 1.5, 0, -1, 5, 0, 0, 1])
        #expect(w.dequantizedRow(1) == [0.5, 0, 1, 0, 0, 0, -2, 14])
        #expect(w.storage == [0xE3, 0x15, 0x42, 0x7F, 0xCD, 0xE8])
    }

    @Test func denseExampleRoundTrips() throws {
        let scales: [UInt16] = [0.5, 1.0, 0.25, 2.0].map { Float16($0).bitPattern }
        let w = try PackedINT4Weight(storage: [0xE1, 0xC3, 0xA5, 0x87, 0x10, 0x32, 0x54, 0x76], rows: 2, columns: 8,
                                     group: 4, sparse24: false, scaleBits: scales)
        #expect(w.values == [1, -2, 3, -4, 5, -6, 7, -8, 0, 1, 2, 3, 4, 5, 6, 7])
        #expect(w.dequantizedRow(1) == [0, 0.25, 0.5, 0.75, 8, 10, 12, 14])
        // y = x · wᵀ with x = ones: the row sums.
        let ones = [UInt16](repeating: Float16(1).bitPattern, count: 8)
        #expect(w.referenceLinear(x: ones, tokens: [0]) == [[-3, 45.5]])
    }

    /// The bench's random weights: every value of −8…7 and every 2:4 pair about equally often,
    /// the same weight from the same seed, scales in range.
    @Test func randomWeightsCoverTheirRanges() throws {
        var rng = SplitMix64(seed: 21), again = SplitMix64(seed: 21)
        let w = try PackedINT4Weight.random(rows: 64, columns: 1024, group: 128, sparse24: true, using: &rng)
        #expect(w.values == (try PackedINT4Weight.random(rows: 64, columns: 1024, group: 128, sparse24: true, using: &again)).values)
        var valueCounts = [Int](repeating: 0, count: 16), pairCounts: [Int: Int] = [:]
        for v in w.values { valueCounts[Int(v) + 8] += 1 }
        for j in stride(from: 0, to: w.indices.count, by: 2) { pairCounts[4 * Int(w.indices[j]) + Int(w.indices[j + 1]), default: 0] += 1 }
        let perValue = w.values.count / 16, perPair = w.indices.count / 2 / 6  // 2048 and 2730
        #expect(valueCounts.allSatisfy { abs($0 - perValue) < perValue / 8 }, "\(valueCounts)")
        #expect(pairCounts.count == 6 && pairCounts.values.allSatisfy { abs($0 - perPair) < perPair / 8 }, "\(pairCounts)")
        #expect((0..<w.rows).allSatisfy { r in (0..<w.groups).allSatisfy { (0.0019...0.0201).contains(w.scale(row: r, group: $0)) } })
        let dense = try PackedINT4Weight.random(rows: 3, columns: 40, group: 32, sparse24: false, using: &rng)
        #expect(dense.values.count == 120 && dense.indices.isEmpty && Set(dense.values).count > 12)
    }

    @Test func rejectsBadInput() {
        #expect(throws: PTXError.self) {
            try PackedINT4Weight(storage: [0, 0, 0], rows: 2, columns: 8, group: 4, sparse24: true, scaleBits: [0, 0, 0, 0])
        }
        #expect(throws: PTXError.self) {  // a group of 4 with its two indices equal
            try PackedINT4Weight(rows: 1, columns: 4, group: 4, sparse24: true, values: [1, 2], indices: [1, 1], scaleBits: [0])
        }
    }
}
