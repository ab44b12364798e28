import Testing
import NMIR
import NMInterpreter
@testable import NMTargetHLS

/// The worked example of ir-specs/quant.md: quant.linear {act_bits = 8} in the interpreter, and
/// the same weight read by the HLS backend.
@Suite struct IntegerArithmeticTests {
    static let type = PackedWeightType(rows: 2, columns: 8, group: 4, nm: NMPattern(n: 2, m: 4))
    static let bytes: [UInt8] = [0xE3, 0x15, 0x42, 0x7F, 0xCD, 0xE8]

    func run(_ x: [Float], tokens: Int, actBits: Int?) throws -> [Float] {
        let scales = WeightEntry(name: "s", floats: [0.5, 1.0, 0.25, 2.0], type: TensorType([2, 2], .f32))
        let w = WeightEntry(name: "w", type: .packed(Self.type), data: .bytes(Self.bytes))
        var b = Builder(name: "f", arguments: [("x", .tensor(TensorType([tokens, 8], .f32)))])
        let q = try b.add("nn.weight", attributes: ["name": .symbol("w")], resultType: .packed(Self.type))
        let s = try b.add("nn.weight", attributes: ["name": .symbol("s")], resultType: .tensor(TensorType([2, 2], .f32)))
        var attributes: [String: Attribute] = ["bits": .int(4), "group": .int(4), "nm": .pattern(NMPattern(n: 2, m: 4)!)]
        if let actBits { attributes["act_bits"] = .int(actBits) }
        let y = try b.add("quant.linear", [b.arguments[0], q, s], attributes: attributes,
                          resultType: .tensor(TensorType([tokens, 2], .f32)))
        b.ret([y])
        let module = Module(weights: WeightStore(entries: [w, scales]), functions: [b.function])
        let out = try Interpreter(module: module).run("f", [.tensor(Tensor(shape: [tokens, 8], floats: x))])
        return try #require(out.first?.tensor).floats
    }

    @Test func interpreterComputesTheIntegerForm() throws {
        let token: [Float] = [127, 0, -63.5, 1, 0, 2, 0, -127]
        let zeros = [Float](repeating: 0, count: 8)
        var nan = token
        nan[3] = .nan
        let y = try run(token + zeros + nan, tokens: 3, actBits: 8)
        #expect(Array(y[0..<4]) == [-128, -1778.5, 0, 0])
        #expect(y[4].isNaN && y[5].isNaN)
        // f32 activations: -63.5 is not rounded.
        #expect(try run(token, tokens: 1, actBits: nil) == [-128, -1778])
        // 4-bit activations: max |x| = 7 = Q, so sx = 1 and xq = x; acc = [[-2, -7], [2, -49]].
        let expected: [Float] = [-8, -97.5]
        #expect(try run([7, 0, -3, 1, 0, 2, 0, -7], tokens: 1, actBits: 4) == expected)
    }

    @Test func quantizeRoundsHalfAwayFromZeroAndClamps() {
        let (q, s) = QuantizedActivations.quantize([254, -127, 63, -0.5, 1], bits: 8)
        #expect(s == 2)
        #expect(q == [127, -64, 32, 0, 1])  // 63/2 = 31.5 → 32, -0.5/2 = -0.25 → 0
    }

    @Test func backendReadsThePackedWeight() throws {
        let w = try IntegerWeights(packed: Self.type, bytes: Self.bytes, denseLanes: 2)
        #expect(w.values == [3, -2, 5, 1, 2, 4, -1, 7])
        #expect(w.indices == [1, 3, 0, 3, 0, 2, 2, 3])
        #expect((0..<8).map { w.value(row: 1, column: $0) } == [2, 0, 4, 0, 0, 0, -1, 7])
        let asymmetric = PackedWeightType(rows: 2, columns: 8, group: 4, zeroPoint: true)
        #expect(throws: HLSError.self) { try IntegerWeights(packed: asymmetric, bytes: [UInt8](repeating: 0, count: 8), denseLanes: 2) }
    }

    @Test func arrayLayoutPacksSlotsLowestBitsFirst() throws {
        // A 2x2 array of 2:4 PEs: slot = 2 values (4 bits) + 2 indices (2 bits) = 12 bits; a beat
        // (2 slots, 24 bits) takes one 64-bit word. Group 4 = one N:M group per weight group, so
        // S = 1 and each fold holds 2 segments: fold 0 = groups 0 and 1 (all 8 columns).
        let w = try IntegerWeights(packed: Self.type, bytes: Self.bytes, denseLanes: 2)
        let model = try SystolicArrayModel(array: ArrayShape(rows: 2, cols: 2), pattern: PEPattern(n: 2, m: 4), bytesPerCycle: 8)
        let layout = try ArrayWeightLayout(weights: w, scales: [0.5, 1.0, 0.25, 2.0], group: 4, model: model)
        // Row 0: slot 0 = values 3, -2 (0x3, 0xE), indices 1, 3 → 0x3 | 0xE<<4 | 1<<8 | 3<<10 = 0xDE3;
        // slot 1 = values 5, 1, indices 0, 3 → 0x5 | 0x1<<4 | 0<<8 | 3<<10 = 0xC15.
        #expect(layout.words == [0xC15 << 12 | 0xDE3, 0xE7F << 12 | 0x842])
        #expect(layout.scales == [0.5, 1.0, 0.25, 2.0])
    }
}
