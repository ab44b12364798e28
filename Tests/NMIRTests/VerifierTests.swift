import Testing
@testable import NMIR

/// Every diagnostic `parseAndVerify` reports for `text` (named `v.nmir`).
func diagnostics(of text: String, name: String = "v.nmir") -> [Diagnostic] {
    do {
        _ = try Parser.parseAndVerify(SourceText(name: name, text: text))
        return []
    } catch let d as Diagnostic {
        return [d]
    } catch let list as DiagnosticList {
        return list.diagnostics
    } catch {
        Issue.record("unexpected error type \(type(of: error)): \(error)")
        return []
    }
}

/// Asserts that the first diagnostic is at `line:column` and its message contains `message`,
/// and that there are `count` diagnostics in all.
func expectDiagnostic(_ found: [Diagnostic], at line: Int, _ column: Int, _ message: String, count: Int = 1,
                      file: String = "v.nmir", sourceLocation: Testing.SourceLocation = #_sourceLocation) {
    #expect(found.count == count, "diagnostics: \(found.map(\.description))", sourceLocation: sourceLocation)
    guard let d = found.first else {
        Issue.record("expected a diagnostic containing \"\(message)\"", sourceLocation: sourceLocation)
        return
    }
    #expect(d.severity == .error, sourceLocation: sourceLocation)
    #expect(d.location.file == file && d.location.line == line && d.location.column == column,
            "at \(d.location), expected \(file):\(line):\(column): \(d.message)", sourceLocation: sourceLocation)
    #expect(d.message.contains(message), "\(d.message)", sourceLocation: sourceLocation)
    #expect(d.description.hasPrefix("\(file):\(line):\(column): error: "), "\(d.description)", sourceLocation: sourceLocation)
}

func expectDiagnostic(_ text: String, at line: Int, _ column: Int, _ message: String, count: Int = 1,
                      sourceLocation: Testing.SourceLocation = #_sourceLocation) {
    expectDiagnostic(diagnostics(of: text), at: line, column, message, count: count, sourceLocation: sourceLocation)
}

@Suite struct VerifierTests {
    static func t(_ dims: [Int?], _ dtype: DType = .f32) -> NMType { .tensor(TensorType(dims, dtype)) }
    static func loc(_ line: Int, _ column: Int) -> NMIR.SourceLocation { NMIR.SourceLocation(file: "b.nmir", line: line, column: column) }

    @Test func wrongOperandElementType() {
        expectDiagnostic("""
            func @f(%x: tensor<?x8xi32>, %w: tensor<4x8xf32>) -> tensor<?x4xi32> {
              %y = nn.linear %x, %w : tensor<?x4xi32>
              return %y
            }
            """, at: 2, 3, "'nn.linear': x must have a float element type, got tensor<?x8xi32>")
    }

    @Test func wrongOperandKind() {
        expectDiagnostic("""
            func @f(%x: tensor<?x8xf32>, %w: quant.packed<4x8xi4, group = 8, scale = f16>) -> tensor<?x4xf32> {
              %y = nn.linear %x, %w : tensor<?x4xf32>
              return %y
            }
            """, at: 2, 3,
            "'nn.linear': operand 'w' (%w) must be a tensor, got quant.packed<4x8xi4, group = 8, scale = f16, zero_point = false>")
        expectDiagnostic("""
            func @f(%c: tensor<16x2x4xf32>, %x: tensor<1x2x4xf32>, %p: tensor<i32>) {
                %c1, %k = kv.append %c, %x, %p : tensor<16x2x4xf32>, tensor<?x2x4xf32>
              return
            }
            """, at: 2, 5, "'kv.append': operand 'cache' (%c) must be a kv.cache, got tensor<16x2x4xf32>")
    }

    @Test func shapeMismatch() {
        expectDiagnostic("""
            func @f(%x: tensor<?x8xf32>, %w: tensor<4x6xf32>) -> tensor<?x4xf32> {
              %y = nn.linear %x, %w : tensor<?x4xf32>
              return %y
            }
            """, at: 2, 3, "'nn.linear': input features of x against w: 8 does not match 6")
        expectDiagnostic("""
            func @f(%a: tensor<2x3xf32>, %b: tensor<4x3xf32>) -> tensor<2x3xf32> {
              %s = nn.add %a, %b : tensor<2x3xf32>
              return %s
            }
            """, at: 2, 3, "'nn.add': shapes 2x3 and 4x3 cannot be broadcast together")
    }

    @Test func wrongOperandCount() {
        expectDiagnostic("""
            func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
              %y = nn.silu %x, %x : tensor<4xf32>
              return %y
            }
            """, at: 2, 3, "'nn.silu': expected 1 operand(s), got 2")
        expectDiagnostic("""
            func @f(%q: quant.packed<2x8xi4, group = 4, scale = f16>) -> tensor<2x8xf32> {
              %d = quant.dequant %q : tensor<2x8xf32>
              return %d
            }
            """, at: 2, 3, "'quant.dequant': expected 2 to 3 operand(s), got 1")
        expectDiagnostic("""
            func @f() -> tensor<4xf32> {
              %y = tensor.concat {axis = 0} : tensor<4xf32>
              return %y
            }
            """, at: 2, 3, "'tensor.concat': expected at least 1 operand(s), got 0")
    }

    @Test func unknownAttribute() {
        expectDiagnostic("""
            func @f(%x: tensor<?x8xf32>, %w: tensor<8xf32>) -> tensor<?x8xf32> {
              %y = nn.rms_norm %x, %w {epsilon = 1.0e-05} : tensor<?x8xf32>
              return %y
            }
            """, at: 2, 3, "'nn.rms_norm': unknown attribute 'epsilon' (expected one of: eps)")
        expectDiagnostic("""
            func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
              %y = nn.silu %x {fast = true} : tensor<4xf32>
              return %y
            }
            """, at: 2, 3, "'nn.silu': unknown attribute 'fast' (the op takes none)")
    }

    @Test func missingRequiredAttribute() {
        expectDiagnostic("""
            func @f(%x: tensor<4x8xf32>) -> tensor<32xf32> {
              %y = tensor.reshape %x : tensor<32xf32>
              return %y
            }
            """, at: 2, 3, "'tensor.reshape': missing required attribute 'shape'")
        expectDiagnostic("""
            func @f(%x: tensor<8xf32>) -> tensor<2xf32> {
              %y = tensor.slice %x {axis = 0, size = 2} : tensor<2xf32>
              return %y
            }
            """, at: 2, 3, "'tensor.slice': missing required attribute 'start'")
    }

    @Test func attributeOfTheWrongKind() {
        expectDiagnostic("""
            func @f(%x: tensor<?x8xf32>, %w: tensor<8xf32>) -> tensor<?x8xf32> {
              %y = nn.rms_norm %x, %w {eps = "small"} : tensor<?x8xf32>
              return %y
            }
            """, at: 2, 3, "'nn.rms_norm': attribute 'eps' must be a float, got \"small\"")
        expectDiagnostic("""
            func @f(%x: tensor<2x3xf32>) -> tensor<3x2xf32> {
              %y = tensor.transpose %x {perm = [1, 0.5]} : tensor<3x2xf32>
              return %y
            }
            """, at: 2, 3, "'tensor.transpose': attribute 'perm' must be an int array, got [1, 0.5]")
        expectDiagnostic("""
            func @f(%x: tensor<2x3xf32>) -> tensor<2x3xf16> {
              %y = tensor.cast %x {to = "f16"} : tensor<2x3xf16>
              return %y
            }
            """, at: 2, 3, "'tensor.cast': attribute 'to' must be a dtype, got \"f16\"")
    }

    @Test func resultTypeDoesNotMatchTheInferredType() {
        expectDiagnostic("""
            func @f(%x: tensor<4xf32>) -> tensor<4xf16> {
              %y = nn.silu %x : tensor<4xf16>
              return %y
            }
            """, at: 2, 3, "'nn.silu': result type tensor<4xf16> does not match the inferred tensor<4xf32>")
        expectDiagnostic("""
            func @f(%c: kv.cache<16x2x4xf32>, %x: tensor<1x2x4xf32>, %p: tensor<i32>) {
              %c1, %k = kv.append %c, %x, %p : kv.cache<16x2x4xf32>, tensor<?x2x8xf32>
              return
            }
            """, at: 2, 3, "'kv.append': result 'contents' type tensor<?x2x8xf32> does not match the inferred tensor<?x2x4xf32>")
    }

    @Test func unknownWeight() {
        expectDiagnostic("""
            module {
              weights {
                @w : tensor<4xf32> = dense<[1, 2, 3, 4]>
              }
              func @f() -> tensor<4xf32> {
                %w = nn.weight {name = @nope} : tensor<4xf32>
                return %w
              }
            }
            """, at: 6, 5, "'nn.weight': unknown weight @nope")
        // Names that need quotes are quoted in messages too.
        expectDiagnostic("""
            module {
              weights {
                @"my w" : tensor<4xf32> = dense<[1, 2, 3, 4]>
              }
              func @f() -> tensor<4xf32> {
                %w = nn.weight {name = @"my x"} : tensor<4xf32>
                return %w
              }
            }
            """, at: 6, 5, "'nn.weight': unknown weight @\"my x\"")
        expectDiagnostic("""
            module {
              weights {
                @"a b" : tensor<1xf32> = dense<[1]>
                @"a b" : tensor<1xf32> = dense<[2]>
              }
            }
            """, at: 4, 5, "weight @\"a b\" is declared twice")
        expectDiagnostic("func @\"f g\"() {\n  return\n}\nfunc @\"f g\"() {\n  return\n}\n", at: 4, 1,
                         "redefinition of function @\"f g\"")
        // A weight whose text gives neither data nor a file.
        expectDiagnostic("""
            module {
              weights {
                @w : tensor<4xf32>
              }
            }
            """, at: 3, 5, "weight @w has no data: give '= dense<…>' or name a weights file")
    }

    @Test func useBeforeDefinitionInABuiltModule() {
        let x = Value(name: "x", type: Self.t([4])), y = Value(name: "y", type: Self.t([4])), z = Value(name: "z", type: Self.t([4]))
        let f = Function(name: "f", arguments: [x], body: [
            Operation(name: "nn.add", operands: [x, y], results: [z], location: Self.loc(3, 5)),
            Operation(name: "nn.silu", operands: [x], results: [y], location: Self.loc(4, 5)),
        ], returnValues: [z], returnLocation: Self.loc(5, 5))
        let found = Verifier().diagnose(Module(functions: [f]))
        expectDiagnostic(found, at: 3, 5, "use of %y before its definition (or it is never defined)", file: "b.nmir")
        #expect(found.first?.description == "b.nmir:3:5: error: use of %y before its definition (or it is never defined)")
        // Returning a value that is never defined.
        let g = Function(name: "g", arguments: [x], returnValues: [z], returnLocation: Self.loc(7, 3))
        expectDiagnostic(Verifier().diagnose(Module(functions: [g])), at: 7, 3,
                         "use of %z before its definition (or it is never defined)", file: "b.nmir")
    }

    @Test func valueUsedWithADifferentTypeThanItsDefinition() {
        let x = Value(name: "x", type: Self.t([4]))
        let xAsF16 = Value(name: "x", type: Self.t([4], .f16))
        let y = Value(name: "y", type: Self.t([4], .f16))
        let f = Function(name: "f", arguments: [x], body: [
            Operation(name: "nn.silu", operands: [xAsF16], results: [y], location: Self.loc(2, 3)),
        ], returnValues: [y], returnLocation: Self.loc(3, 3))
        expectDiagnostic(Verifier().diagnose(Module(functions: [f])), at: 2, 3,
                         "%x is used as tensor<4xf16> but defined as tensor<4xf32>", file: "b.nmir")
    }

    @Test func returnTypeMismatch() {
        let found = diagnostics(of: """
            func @f(%x: tensor<4xf32>) -> tensor<4xf16> {
              %y = nn.silu %x : tensor<4xf32>
              return %y
            }
            """)
        expectDiagnostic(found, at: 3, 3, "returned types (tensor<4xf32>) do not match the signature (tensor<4xf16>)")
        #expect(found.first?.notes.map(\.description) == ["v.nmir:1:28: note: signature declared here"])
        // A built module whose return names a value with another type than its definition.
        let x = Value(name: "x", type: Self.t([4]))
        let f = Function(name: "f", arguments: [x], returnValues: [Value(name: "x", type: Self.t([8]))],
                         returnLocation: Self.loc(9, 3))
        expectDiagnostic(Verifier().diagnose(Module(functions: [f])), at: 9, 3,
                         "%x is used as tensor<8xf32> but defined as tensor<4xf32>", file: "b.nmir")
    }

    static func quantLinear(_ attributes: String) -> String {
        """
        func @f(%x: tensor<?x16xf32>, %q: quant.packed<4x16xi4, group = 8, scale = f32, nm = 2:4>, %s: tensor<4x2xf32>) -> tensor<?x4xf32> {
          %y = quant.linear %x, %q, %s \(attributes) : tensor<?x4xf32>
          return %y
        }
        """
    }

    @Test func quantLinearAttributesMustMatchThePackedType() {
        let packed = "quant.packed<4x16xi4, group = 8, scale = f32, zero_point = false, nm = 2:4>"
        #expect(diagnostics(of: Self.quantLinear("{bits = 4, group = 8, nm = 2:4}")).isEmpty)
        expectDiagnostic(Self.quantLinear("{bits = 8, group = 8, nm = 2:4}"), at: 2, 3,
                         "'quant.linear': bits = 8 does not match \(packed)")
        expectDiagnostic(Self.quantLinear("{bits = 4, group = 16, nm = 2:4}"), at: 2, 3,
                         "'quant.linear': group = 16 does not match \(packed)")
        expectDiagnostic(Self.quantLinear("{bits = 4, group = 8}"), at: 2, 3,
                         "'quant.linear': nm = none does not match \(packed)")
        expectDiagnostic(Self.quantLinear("{bits = 4, group = 8, nm = 1:4}"), at: 2, 3,
                         "'quant.linear': nm = 1:4 does not match \(packed)")
        expectDiagnostic(Self.quantLinear("{group = 8, nm = 2:4}"), at: 2, 3,
                         "'quant.linear': missing required attribute 'bits'")
    }

    @Test func quantScalesAndZeroPoints() {
        expectDiagnostic("""
            func @f(%q: quant.packed<2x8xi4, group = 4, scale = f16>, %s: tensor<2x4xf16>) -> tensor<2x8xf32> {
              %d = quant.dequant %q, %s : tensor<2x8xf32>
              return %d
            }
            """, at: 2, 3, "'quant.dequant': scales must be tensor<2x2xf16> for quant.packed<2x8xi4, group = 4, scale = f16, zero_point = false>, got tensor<2x4xf16>")
        expectDiagnostic("""
            func @f(%q: quant.packed<2x8xi4, group = 4, scale = f16, zero_point = true>, %s: tensor<2x2xf16>) -> tensor<2x8xf32> {
              %d = quant.dequant %q, %s : tensor<2x8xf32>
              return %d
            }
            """, at: 2, 3, "'quant.dequant': quant.packed<2x8xi4, group = 4, scale = f16, zero_point = true> needs a zero_points operand")
    }

    @Test func kvAppendHeadMismatch() {
        expectDiagnostic("""
            func @f(%c: kv.cache<16x3x4xf32>, %x: tensor<?x2x4xf32>, %p: tensor<i32>) -> tensor<?x3x4xf32> {
              %c1, %k = kv.append %c, %x, %p : kv.cache<16x3x4xf32>, tensor<?x3x4xf32>
              return %k
            }
            """, at: 2, 3, "'kv.append': heads of x against the cache: 2 does not match 3")
    }

    @Test func reshapeElementCountMismatch() {
        expectDiagnostic("""
            func @f(%x: tensor<4x8xf32>) -> tensor<3x10xf32> {
              %y = tensor.reshape %x {shape = [3, 10]} : tensor<3x10xf32>
              return %y
            }
            """, at: 2, 3, "'tensor.reshape': cannot reshape 32 elements into [3, 10]")
        expectDiagnostic("""
            func @f(%x: tensor<4x8xf32>) -> tensor<?x5xf32> {
              %y = tensor.reshape %x {shape = [-1, 5]} : tensor<?x5xf32>
              return %y
            }
            """, at: 2, 3, "'tensor.reshape': cannot reshape 32 elements into [-1, 5]")
    }

    @Test func transposeWithABadPermutation() {
        expectDiagnostic("""
            func @f(%x: tensor<2x3xf32>) -> tensor<2x2xf32> {
              %y = tensor.transpose %x {perm = [0, 0]} : tensor<2x2xf32>
              return %y
            }
            """, at: 2, 3, "'tensor.transpose': perm [0, 0] is not a permutation of 0..<2")
        expectDiagnostic("""
            func @f(%x: tensor<2x3xf32>) -> tensor<3x2xf32> {
              %y = tensor.transpose %x {perm = [1, 0, 2]} : tensor<3x2xf32>
              return %y
            }
            """, at: 2, 3, "'tensor.transpose': perm [1, 0, 2] is not a permutation of 0..<2")
    }

    @Test func concatMismatch() {
        expectDiagnostic("""
            func @f(%a: tensor<2x3xf32>, %b: tensor<2x4xf32>) -> tensor<4x3xf32> {
              %y = tensor.concat %a, %b {axis = 0} : tensor<4x3xf32>
              return %y
            }
            """, at: 2, 3, "'tensor.concat': dim 1 of input 1: 3 does not match 4")
        expectDiagnostic("""
            func @f(%a: tensor<2x3xf32>, %b: tensor<2x3xf16>) -> tensor<4x3xf32> {
              %y = tensor.concat %a, %b {axis = 0} : tensor<4x3xf32>
              return %y
            }
            """, at: 2, 3, "'tensor.concat': input 1 (tensor<2x3xf16>) does not match input 0 (tensor<2x3xf32>) in rank and element type")
        expectDiagnostic("""
            func @f(%a: tensor<2x3xf32>) -> tensor<4x3xf32> {
              %y = tensor.concat %a, %a {axis = 2} : tensor<4x3xf32>
              return %y
            }
            """, at: 2, 3, "'tensor.concat': axis 2 is out of range for rank 2")
    }

    @Test func sliceOutOfBounds() {
        expectDiagnostic("""
            func @f(%x: tensor<8x4xf32>) -> tensor<4x4xf32> {
              %y = tensor.slice %x {axis = 0, start = 6, size = 4} : tensor<4x4xf32>
              return %y
            }
            """, at: 2, 3, "'tensor.slice': slice [6, 6+4) is out of bounds for dim of size 8")
        expectDiagnostic("""
            func @f(%x: tensor<8x4xf32>) -> tensor<8x2xf32> {
              %y = tensor.slice %x {axis = -1, start = -5, size = 2} : tensor<8x2xf32>
              return %y
            }
            """, at: 2, 3, "'tensor.slice': slice [-5, -5+2) is out of bounds for dim of size 4")
    }

    @Test func constantWithTheWrongElementCount() {
        expectDiagnostic("""
            func @f() -> tensor<2x2xf32> {
              %c = arith.constant {value = [1.0, 2.0, 3.0]} : tensor<2x2xf32>
              return %c
            }
            """, at: 2, 3, "'arith.constant': value has 3 elements but tensor<2x2xf32> holds 4")
        expectDiagnostic("""
            func @f() -> tensor<2xi32> {
              %c = arith.constant {value = [1, 2.5]} : tensor<2xi32>
              return %c
            }
            """, at: 2, 3, "'arith.constant': an integer constant needs integer values")
    }

    @Test(arguments: [("4:4", 34), ("0:4", 34), ("2:17", 34), ("17:18", 34), ("-1:4", 34)])
    func invalidNMPatternsInText(_ pattern: String, _ column: Int) {
        // In a type …
        let message = "invalid N:M pattern \(pattern): need 1 ≤ N < M ≤ 16"
        expectDiagnostic("func @f(%x: tensor<4x8xf32, nm = \(pattern)>) {\n  return\n}\n", at: 1, column, message)
        // … and in an attribute.
        expectDiagnostic(Self.quantLinear("{bits = 4, group = 8, nm = \(pattern)}"), at: 2, 59, message)
    }

    @Test func redefinitionOfAValue() {
        let found = diagnostics(of: """
            func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
              %y = nn.silu %x : tensor<4xf32>
              %y = nn.silu %y : tensor<4xf32>
              return %y
            }
            """)
        expectDiagnostic(found, at: 3, 3, "redefinition of value %y")
        #expect(found.first?.notes.map(\.description) == ["v.nmir:2:3: note: previously defined here"])
        expectDiagnostic("func @f(%x: tensor<4xf32>, %x: tensor<4xf32>) {\n  return\n}\n", at: 1, 28, "redefinition of value %x")
        // A built module, which the parser cannot produce.
        let x = Value(name: "x", type: Self.t([4])), y = Value(name: "y", type: Self.t([4]))
        let f = Function(name: "f", arguments: [x], body: [
            Operation(name: "nn.silu", operands: [x], results: [y], location: Self.loc(2, 3)),
            Operation(name: "nn.silu", operands: [y], results: [y], location: Self.loc(3, 3)),
        ], returnValues: [y])
        expectDiagnostic(Verifier().diagnose(Module(functions: [f])), at: 3, 3, "redefinition of value %y", file: "b.nmir")
        let g = Function(name: "g", arguments: [x, x], location: Self.loc(1, 1))
        expectDiagnostic(Verifier().diagnose(Module(functions: [g])), at: 1, 1, "argument %x is declared twice", file: "b.nmir")
    }

    @Test func otherOpRules() {
        expectDiagnostic("""
            func @f(%x: tensor<?x2x5xf32>, %p: tensor<i32>) -> tensor<?x2x5xf32> {
              %r = nn.rope %x, %p : tensor<?x2x5xf32>
              return %r
            }
            """, at: 2, 3, "'nn.rope': head_dim must be even, got 5")
        expectDiagnostic("""
            func @f(%x: tensor<?x2x4xf32>, %p: tensor<i32>) -> tensor<?x2x4xf32> {
              %r = nn.rope %x, %p {style = "full"} : tensor<?x2x4xf32>
              return %r
            }
            """, at: 2, 3, "'nn.rope': style must be \"half\" or \"interleaved\"")
        expectDiagnostic("""
            func @f(%q: tensor<?x3x8xf32>, %k: tensor<?x2x8xf32>) -> tensor<?x3x8xf32> {
              %a = nn.attention %q, %k, %k : tensor<?x3x8xf32>
              return %a
            }
            """, at: 2, 3, "'nn.attention': q_heads (3) must be a multiple of kv_heads (2)")
        expectDiagnostic("""
            func @f(%x: tensor<4xi4>) -> tensor<4xf32> {
              %y = tensor.cast %x {to = f32} : tensor<4xf32>
              return %y
            }
            """, at: 2, 3, "'tensor.cast': casts from or to i4 are not defined; use quant ops")
        expectDiagnostic("""
            func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
              %y = nn.gelu %x : tensor<4xf32>
              return %y
            }
            """, at: 2, 8, "unknown operation 'nn.gelu'")
    }

    @Test func theVerifierReportsEveryProblemInOrder() {
        let found = diagnostics(of: """
            func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
              %a = nn.silu %x : tensor<4xf16>
              %b = nn.softmax %x {axis = 1} : tensor<4xf32>
              %c = nn.silu %x : tensor<4xf32>
              return %c
            }
            """)
        #expect(found.map(\.description) == [
            "v.nmir:2:3: error: 'nn.silu': result type tensor<4xf16> does not match the inferred tensor<4xf32>",
            "v.nmir:3:3: error: 'nn.softmax': axis 1 is out of range for rank 1",
        ])
        // Weights are checked too, and a location-less problem prints without line and column.
        let m = Module(weights: WeightStore(entries: [
            WeightEntry(name: "w", type: Self.t([2, 2]), data: .values([1, 2, 3]), location: Self.loc(3, 5)),
            WeightEntry(name: "b", type: Self.t([3], .i8), data: .bytes([1, 2])),
        ]))
        #expect(Verifier().diagnose(m).map(\.description) == [
            "b.nmir:3:5: error: weight @w has 3 values but type tensor<2x2xf32>",
            "<unknown>: error: weight @b has 2 bytes but type tensor<3xi8>",
        ])
        do {
            try Verifier().verify(m)
            Issue.record("expected a DiagnosticList")
        } catch let list as DiagnosticList {
            #expect(list.diagnostics.count == 2)
            #expect(list.description == "b.nmir:3:5: error: weight @w has 3 values but type tensor<2x2xf32>\n<unknown>: error: weight @b has 2 bytes but type tensor<3xi8>")
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}
