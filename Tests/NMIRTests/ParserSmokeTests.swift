import Testing
@testable import NMIR

@Suite struct ParserSmokeTests {
    static let sample = """
    // a small decoder block
    module @tiny {
      weights {
        @w : tensor<4x8xf32, nm = 2:4> = dense<[1.0, 0.0, 2.0, 0.0, 0.0, 3.0, 0.0, 4.0, 1.0, 0.0, 2.0, 0.0, 0.0, 3.0, 0.0, 4.0, 1.0, 0.0, 2.0, 0.0, 0.0, 3.0, 0.0, 4.0, 1.0, 0.0, 2.0, 0.0, 0.0, 3.0, 0.0, 4.0]>
        @norm : tensor<8xf32> = dense<[1, 1, 1, 1, 1, 1, 1, 1]>
      }
      func @f(%x: tensor<?x8xf32>, %pos: tensor<i32>, %c: kv.cache<16x2x2xf32>) -> (tensor<?x4xf32>, kv.cache<16x2x2xf32>) {
        %w = nn.weight {name = @w} : tensor<4x8xf32, nm = 2:4>
        %n = nn.weight {name = @norm} : tensor<8xf32>
        %0 = nn.rms_norm %x, %n {eps = 1.0e-05} : tensor<?x8xf32>
        %1 = nn.linear %0, %w : tensor<?x4xf32>
        %2 = tensor.reshape %1 {shape = [-1, 2, 2]} : tensor<?x2x2xf32>
        %3 = nn.rope %2, %pos {theta = 10000.0, style = "interleaved"} : tensor<?x2x2xf32>
        %c1, %k = kv.append %c, %3, %pos : kv.cache<16x2x2xf32>, tensor<?x2x2xf32>
        %4 = nn.attention %3, %k, %k {causal = true} : tensor<?x2x2xf32>
        %5 = tensor.reshape %4 {shape = [-1, 4]} : tensor<?x4xf32>
        return %5, %c1
      }
    }
    """

    @Test func parsesVerifiesAndRoundTrips() throws {
        let m = try Parser.parseAndVerify(SourceText(name: "t.nmir", text: Self.sample))
        let printed = Printer().print(m)
        let again = try Parser.parseAndVerify(SourceText(name: "p.nmir", text: printed))
        #expect(again == m)
        #expect(Printer().print(again) == printed)
        #expect(m.functions[0].body.count == 9)
    }

    @Test func undefinedValueIsReported() {
        do {
            _ = try Parser.parse("func @f() {\n  %0 = nn.silu %nope : tensor<f32>\n  return\n}", name: "u.nmir")
            Issue.record("expected an error")
        } catch let d as Diagnostic {
            #expect(d.description == "u.nmir:2:16: error: use of undefined value %nope")
        } catch { Issue.record("\(error)") }
    }
}
