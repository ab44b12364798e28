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

    @Test func rejectsBadInput() {
        #expect(throws: PTXError.self) {
            try PackedINT4Weight(storage: [0, 0, 0], rows: 2, columns: 8, group: 4, sparse24: true, scaleBits: [0, 0, 0, 0])
        }
        #expect(throws: PTXError.self) {  // a group of 4 with its two indices equal
            try PackedINT4Weight(rows: 1, columns: 4, group: 4, sparse24: true, values: [1, 2], indices: [1, 1], scaleBits: [0])
        }
    }
}
