import Testing
@testable import NMTargetPTX

/// The CPU side of the seeded weights: values, their exactness in f16, the packed weight they
/// make and its padding. (`nmc-run --gpu-check` compares the GPU generators with these.)
@Suite struct SyntheticWeightsTests {
    let keys = SyntheticWeights.keys(seed: 7, name: "blk.0.attn_q.weight")

    @Test func keysDependOnSeedAndName() {
        #expect(SyntheticWeights.keys(seed: 7, name: "blk.0.attn_q.weight") == keys)
        #expect(SyntheticWeights.keys(seed: 8, name: "blk.0.attn_q.weight") != keys)
        #expect(SyntheticWeights.keys(seed: 7, name: "blk.0.attn_k.weight") != keys)
        #expect(SyntheticWeights.keys(seed: 1 << 40, name: "x") != SyntheticWeights.keys(seed: 0, name: "x"))
        #expect(SyntheticWeights.mix(0) == 0 && SyntheticWeights.mix(1) == 0x514E_28B7)  // murmur3's fmix32
    }

    @Test func exponentsScaleWithTheInputDim() {
        #expect(SyntheticWeights.denseExponent(columns: 4096) == 6)   // 1/64 = 1/√4096
        #expect(SyntheticWeights.denseExponent(columns: 576) == 5)    // √576 = 24 ≈ 2^4.58
        #expect(SyntheticWeights.scaleExponent(columns: 4096) == 13)  // 24 · 4.6 · 64 ≈ 2^12.8
        #expect(SyntheticWeights.scaleExponent(columns: 576) == 11)  // 24 · 4.6 · 24 ≈ 2^11.4
    }

    @Test func denseValuesAreExactInF16AndCentred() {
        var sum = 0.0
        for c in 0..<4096 {
            let v = SyntheticWeights.denseValue(keys, row: 3, column: c, columns: 4096, exponent: 6)
            #expect(Float(Float16(v)) == v, "column \(c): \(v) is not exact in f16")
            #expect(abs(v) <= 1023.0 / 1024 / 64)
            sum += Double(v)
        }
        #expect(abs(sum / 4096) < 0.02 / 64)
        #expect(SyntheticWeights.denseValue(keys, row: 0, column: 600, columns: 576, exponent: 5) == 0)  // padding
    }

    @Test func int4ValuesPairsAndScales() {
        var sum = 0
        var codes = Set<UInt32>()
        for c in 0..<8192 {
            let q = SyntheticWeights.int4Value(keys, row: 1, column: c, columns: 8192)
            #expect((-7...7).contains(q))
            sum += Int(q)
            if c % 4 == 0 { codes.insert(SyntheticWeights.pairCode(keys, row: 1, group4: c / 4, columns: 8192)) }
        }
        #expect(abs(Double(sum) / 8192) < 0.15)
        #expect(codes == [0x4, 0x8, 0xC, 0x9, 0xD, 0xE])  // the six pairs (first | second << 2)
        #expect(SyntheticWeights.pairCode(keys, row: 0, group4: 200, columns: 576) == 0x4)  // padding: (0, 1)
        let bits = SyntheticWeights.scaleBits(keys, row: 0, group: 0, groups: 5, exponent: 10)  // any p
        let scale = Float(Float16(bitPattern: bits))
        #expect(scale >= 16.0 / 1024 && scale < 32.0 / 1024)  // m · 2^−10, m ∈ 16…31
    }

    @Test func packedWeightHoldsTheFunctionsValues() throws {
        for sparse in [false, true] {
            let w = try SyntheticWeights.packed(keys, rows: 16, columns: 320, sparse24: sparse)
            #expect(w.groups == 3 && w.keptPerRow == (sparse ? 160 : 320))
            for r in [0, 7, 15] {
                let row = w.dequantizedRow(r)
                for c in 0..<320 {
                    let q = Double(SyntheticWeights.int4Value(keys, row: r, column: c, columns: 320))
                    let scale = Double(Float(Float16(bitPattern: SyntheticWeights.scaleBits(keys, row: r, group: c / 128, groups: 3,
                                                                                             exponent: SyntheticWeights.scaleExponent(columns: 320)))))
                    let code = SyntheticWeights.pairCode(keys, row: r, group4: c / 4, columns: 320)
                    let kept = !sparse || c % 4 == Int(code & 3) || c % 4 == Int(code >> 2)
                    #expect(row[c] == (kept ? q * scale : 0), "sparse \(sparse), row \(r), column \(c)")
                }
            }
            // Storage round trip (the NMIR quant.packed bytes the CPU backend reads).
            let back = try PackedINT4Weight(storage: w.storage, rows: 16, columns: 320, group: 128, sparse24: sparse, scaleBits: w.scaleBits)
            #expect(back.values == w.values && back.indices == w.indices)
        }
    }

    @Test func paddingAddsZeroColumnsAndRows() throws {
        let w = try SyntheticWeights.packed(keys, rows: 10, columns: 64, sparse24: true)
        let p = try w.padded(to: 128, rows: 16)
        #expect(p.rows == 16 && p.columns == 128 && p.groups == 1)
        for r in 0..<16 {
            let row = p.dequantizedRow(r)
            if r < 10 {
                #expect(Array(row[0..<64]) == w.dequantizedRow(r))
            } else {
                #expect(row[0..<64].allSatisfy { $0 == 0 })
            }
            #expect(row[64...].allSatisfy { $0 == 0 })
        }
        // The padded synthetic weight is the one the GPU generators lay out (columns past 64: 0).
        let direct = try SyntheticWeights.packed(keys, rows: 16, columns: 64, sparse24: true, paddedColumns: 128)
        #expect(try KernelWeightLayout.int4Sparse24Values(direct).count == 16 * 128 / 16)
        #expect(throws: PTXError.self) { try w.padded(to: 384) }  // 1 group of 128 would become 3
    }
}
