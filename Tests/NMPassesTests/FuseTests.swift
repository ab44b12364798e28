import Testing
import NMIR
@testable import NMPasses

// fuse-dequant-matmul. That the fused module computes what the unfused one does is checked
// through the interpreter in Tests/NMDriverTests/QuantizeInterpreterTests.swift.

@Suite struct FuseDequantMatmulTests {
    static let weights = """
      weights {
        @a.q : quant.packed<2x8xi4, group = 4, scale = f16, zero_point = false, nm = 2:4> = dense<"0xE315427FCDE8">
        @a.scales : tensor<2x2xf16> = dense<[0.5, 1.0, 0.25, 2.0]>
        @b.q : quant.packed<2x4xi4, group = 2, scale = f32, zero_point = true> = dense<"0x370F2258">
        @b.scales : tensor<2x2xf32> = dense<[0.5, 0.25, 1.0, 0.125]>
        @b.zeros : tensor<2x2xi8> = dense<[1, 0, 0, -8]>
      }
    """

    @Test func fusesDenseSparseAndZeroPointWeights() throws {
        let (m, stats) = try apply(FuseDequantMatmulPass.self, """
        module {
        \(Self.weights)
          func @f(%x: tensor<?x8xf32>, %v: tensor<3x4xf32>) -> (tensor<?x2xf32>, tensor<3x2xf32>) {
            %aq = nn.weight {name = @a.q} : quant.packed<2x8xi4, group = 4, scale = f16, zero_point = false, nm = 2:4>
            %as = nn.weight {name = @a.scales} : tensor<2x2xf16>
            %a = quant.dequant %aq, %as : tensor<2x8xf32, nm = 2:4>
            %bq = nn.weight {name = @b.q} : quant.packed<2x4xi4, group = 2, scale = f32, zero_point = true>
            %bs = nn.weight {name = @b.scales} : tensor<2x2xf32>
            %bz = nn.weight {name = @b.zeros} : tensor<2x2xi8>
            %b = quant.dequant %bq, %bs, %bz : tensor<2x4xf32>
            %y = nn.linear %x, %a : tensor<?x2xf32>
            %z = nn.linear %v, %b : tensor<3x2xf32>
            return %y, %z
          }
        }
        """)
        #expect(bodyLines(m) == [
            "%aq = nn.weight {name = @a.q} : quant.packed<2x8xi4, group = 4, scale = f16, zero_point = false, nm = 2:4>",
            "%as = nn.weight {name = @a.scales} : tensor<2x2xf16>",
            "%bq = nn.weight {name = @b.q} : quant.packed<2x4xi4, group = 2, scale = f32, zero_point = true>",
            "%bs = nn.weight {name = @b.scales} : tensor<2x2xf32>",
            "%bz = nn.weight {name = @b.zeros} : tensor<2x2xi8>",
            "%y = quant.linear %x, %aq, %as {bits = 4, group = 4, nm = 2:4} : tensor<?x2xf32>",
            "%z = quant.linear %v, %bq, %bs, %bz {bits = 4, group = 2} : tensor<3x2xf32>",
            "return %y, %z",
        ])
        #expect(stats == ["fused": 2])
    }

    /// One dequant feeding two linears: both fused, the dequant gone.
    @Test func fusesEveryLinearOfASharedDequant() throws {
        let (m, stats) = try apply(FuseDequantMatmulPass.self, """
        module {
        \(Self.weights)
          func @f(%x: tensor<?x8xf32>) -> (tensor<?x2xf32>, tensor<?x2xf32>) {
            %aq = nn.weight {name = @a.q} : quant.packed<2x8xi4, group = 4, scale = f16, zero_point = false, nm = 2:4>
            %as = nn.weight {name = @a.scales} : tensor<2x2xf16>
            %a = quant.dequant %aq, %as : tensor<2x8xf32, nm = 2:4>
            %y1 = nn.linear %x, %a : tensor<?x2xf32>
            %y2 = nn.linear %x, %a : tensor<?x2xf32>
            return %y1, %y2
          }
        }
        """)
        #expect(bodyLines(m).filter { $0.contains("quant.dequant") }.isEmpty)
        #expect(bodyLines(m).filter { $0.contains("quant.linear") }.count == 2)
        #expect(stats == ["fused": 2])
    }

    /// Not fused: a dequant read by nn.matmul, by a linear as its input, or returned, and a
    /// linear whose result is not f32. A dequant with a linear use and another use keeps the
    /// other use and fuses the linear.
    @Test func leavesOtherUsesAlone() throws {
        let text = """
        module {
        \(Self.weights)
          func @f(%x: tensor<?x8xf32>, %h: tensor<?x8xf16>, %m: tensor<4x2xf32>) -> (tensor<?x2xf32>, tensor<2x2xf32>, tensor<2x4xf32>, tensor<?x2xf16>, tensor<8x2xf32>) {
            %aq = nn.weight {name = @a.q} : quant.packed<2x8xi4, group = 4, scale = f16, zero_point = false, nm = 2:4>
            %as = nn.weight {name = @a.scales} : tensor<2x2xf16>
            %a = quant.dequant %aq, %as : tensor<2x8xf32, nm = 2:4>
            %bq = nn.weight {name = @b.q} : quant.packed<2x4xi4, group = 2, scale = f32, zero_point = true>
            %bs = nn.weight {name = @b.scales} : tensor<2x2xf32>
            %bz = nn.weight {name = @b.zeros} : tensor<2x2xi8>
            %b = quant.dequant %bq, %bs, %bz : tensor<2x4xf32>
            %y = nn.linear %x, %a : tensor<?x2xf32>
            %p = nn.matmul %b, %m : tensor<2x2xf32>
            %half = nn.linear %h, %a : tensor<?x2xf16>
            %t = tensor.transpose %a {perm = [1, 0]} : tensor<8x2xf32>
            return %y, %p, %b, %half, %t
          }
        }
        """
        let (m, stats) = try apply(FuseDequantMatmulPass.self, text)
        #expect(bodyLines(m) == [
            "%aq = nn.weight {name = @a.q} : quant.packed<2x8xi4, group = 4, scale = f16, zero_point = false, nm = 2:4>",
            "%as = nn.weight {name = @a.scales} : tensor<2x2xf16>",
            "%a = quant.dequant %aq, %as : tensor<2x8xf32, nm = 2:4>",
            "%bq = nn.weight {name = @b.q} : quant.packed<2x4xi4, group = 2, scale = f32, zero_point = true>",
            "%bs = nn.weight {name = @b.scales} : tensor<2x2xf32>",
            "%bz = nn.weight {name = @b.zeros} : tensor<2x2xi8>",
            "%b = quant.dequant %bq, %bs, %bz : tensor<2x4xf32>",
            "%y = quant.linear %x, %aq, %as {bits = 4, group = 4, nm = 2:4} : tensor<?x2xf32>",
            "%p = nn.matmul %b, %m : tensor<2x2xf32>",
            "%half = nn.linear %h, %a : tensor<?x2xf16>",
            "%t = tensor.transpose %a {perm = [1, 0]} : tensor<8x2xf32>",
            "return %y, %p, %b, %half, %t",
        ])
        #expect(stats == ["fused": 1, "not-fused": 2])
    }

    /// A module without dequants is unchanged; the pass runs twice without effect.
    @Test func isIdempotent() throws {
        var m = try module("""
        module {
        \(Self.weights)
          func @f(%x: tensor<?x8xf32>) -> tensor<?x2xf32> {
            %aq = nn.weight {name = @a.q} : quant.packed<2x8xi4, group = 4, scale = f16, zero_point = false, nm = 2:4>
            %as = nn.weight {name = @a.scales} : tensor<2x2xf16>
            %a = quant.dequant %aq, %as : tensor<2x8xf32, nm = 2:4>
            %y = nn.linear %x, %a : tensor<?x2xf32>
            return %y
          }
        }
        """)
        try runPipeline("fuse-dequant-matmul", on: &m)
        let once = m
        let recorder = StatisticsRecorder()
        try runPipeline("fuse-dequant-matmul", on: &m, instruments: [recorder])
        #expect(m == once)
        #expect(recorder.rows.first?.statistics.values.allSatisfy { $0 == 0 } ?? true)
    }

    /// quantize-int4 then fuse-dequant-matmul: only quant.linear remains, over the new weights.
    @Test func afterQuantizeOnlyQuantLinearRemains() throws {
        var m = try module("""
        module {
          weights {
            @w : tensor<2x8xf32> = dense<[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, -1.0, -2.0, -3.0, -4.0, -5.0, -6.0, -7.0, -8.0]>
          }
          func @f(%x: tensor<?x8xf32>) -> tensor<?x2xf32> {
            %w = nn.weight {name = @w} : tensor<2x8xf32>
            %y = nn.linear %x, %w : tensor<?x2xf32>
            return %y
          }
        }
        """)
        try runPipeline("quantize-int4{group=8 symmetric=false},fuse-dequant-matmul", on: &m)
        #expect(bodyLines(m) == [
            "%w.q = nn.weight {name = @w.q} : quant.packed<2x8xi4, group = 8, scale = f16, zero_point = true>",
            "%w.scales = nn.weight {name = @w.scales} : tensor<2x1xf16>",
            "%w.zeros = nn.weight {name = @w.zeros} : tensor<2x1xi8>",
            "%y = quant.linear %x, %w.q, %w.scales, %w.zeros {bits = 4, group = 8} : tensor<?x2xf32>",
            "return %y",
        ])
    }
}
