import Testing
@testable import NMIR

/// One small, valid module per registered op. Some are written as text, some are built with the
/// `Builder` (whose inferred result types and fresh names are checked while building).
/// The fuzz tests use the printed form of these modules as their corpus.
struct OpExample: Sendable {
    var fromBuilder: Bool
    var make: @Sendable () throws -> Module
}

enum OpExamples {
    static func text(_ source: String) -> OpExample {
        OpExample(fromBuilder: false) { try Parser.parse(SourceText(name: "example.nmir", text: source)) }
    }

    static func built(_ make: @escaping @Sendable () throws -> Module) -> OpExample {
        OpExample(fromBuilder: true, make: make)
    }

    static func t(_ dims: [Int?], _ dtype: DType = .f32, nm: NMPattern? = nil) -> NMType {
        .tensor(TensorType(dims, dtype, nm: nm))
    }

    static func values(_ count: Int, scale: Double = 0.25) -> String {
        (0..<count).map { formatFloat(Double($0 % 7 - 3) * scale) }.joined(separator: ", ")
    }

    /// Every registered op must have an entry (checked by `everyRegisteredOpHasAnExample`).
    static let table: [String: OpExample] = [
        "nn.weight": built {
            let store = WeightStore(entries: [
                WeightEntry(name: "blk.0.w", type: t([2, 3]), data: .values([1, -2, 0.5, 1e-05, -0.0, 3])),
            ])
            var b = Builder(name: "weight", arguments: [], weights: store)
            let w = try b.add("nn.weight", attributes: ["name": .symbol("blk.0.w")])
            #expect(w == Value(name: "0", type: t([2, 3])))
            b.ret([w])
            return Module(name: "weight", weights: store, functions: [b.function])
        },
        "nn.embedding": text("""
            module @embedding {
              weights {
                @tok : tensor<5x4xf32> = dense<[\(values(20))]>
              }
              func @embed(%ids: tensor<?xi32>) -> tensor<?x4xf32> {
                %t = nn.weight {name = @tok} : tensor<5x4xf32>
                %e = nn.embedding %t, %ids : tensor<?x4xf32>
                return %e
              }
            }
            """),
        "nn.rms_norm": text("""
            func @norm(%x: tensor<?x8xf32>, %w: tensor<8xf32>) -> tensor<?x8xf32> {
              %0 = nn.rms_norm %x, %w {eps = 1.0e-06} : tensor<?x8xf32>
              return %0
            }
            """),
        "nn.linear": built {
            var b = Builder(name: "linear", arguments: [("x", t([nil, 8])), ("w", t([4, 8], nm: NMPattern(n: 2, m: 4)))])
            let y = try b.add("nn.linear", [b.arguments[0], b.arguments[1]])
            #expect(y == Value(name: "0", type: t([nil, 4])))
            b.ret([y])
            return Module(functions: [b.function])
        },
        "nn.matmul": built {
            var b = Builder(name: "matmul", arguments: [("a", t([2, 3, 4])), ("b", t([2, 4, 5]))])
            let c = try b.add("nn.matmul", b.arguments)
            #expect(c.type == t([2, 3, 5]))
            b.ret([c])
            return Module(functions: [b.function])
        },
        "nn.add": built {
            var b = Builder(name: "add", arguments: [("a", t([nil, 1, 4])), ("b", t([3, 1]))])
            let s = try b.add("nn.add", b.arguments)
            #expect(s.type == t([nil, 3, 4]))
            let s2 = try b.add("nn.add", [s, s])
            #expect(s2 == Value(name: "1", type: t([nil, 3, 4])))
            b.ret([s2])
            return Module(functions: [b.function])
        },
        "nn.sub": text("""
            func @sub(%a: tensor<4xi32>, %b: tensor<i32>) -> tensor<4xi32> {
              %d = nn.sub %a, %b : tensor<4xi32>
              return %d
            }
            """),
        "nn.mul": built {
            var b = Builder(name: "mul", arguments: [("a", t([2, 1], .f16)), ("b", t([1, 5], .f16))])
            let p = try b.add("nn.mul", b.arguments, resultName: "product")
            #expect(p == Value(name: "product", type: t([2, 5], .f16)))
            b.ret([p])
            return Module(functions: [b.function])
        },
        "nn.div": text("""
            func @div(%a: tensor<?x4xbf16>, %b: tensor<4xbf16>) -> tensor<?x4xbf16> {
              %q = nn.div %a, %b : tensor<?x4xbf16>
              return %q
            }
            """),
        "nn.silu": built {
            var b = Builder(name: "silu", arguments: [("x", t([]))])
            let y = try b.add("nn.silu", [b.arguments[0]])
            #expect(y.type == t([]))
            b.ret([y])
            return Module(functions: [b.function])
        },
        "nn.softmax": text("""
            func @softmax(%x: tensor<2x?x6xf32>) -> tensor<2x?x6xf32> {
              %0 = nn.softmax %x {axis = -2} : tensor<2x?x6xf32>
              return %0
            }
            """),
        "nn.rope": text("""
            func @rope(%x: tensor<?x2x4xf32>, %pos: tensor<i32>) -> tensor<?x2x4xf32> {
              %r = nn.rope %x, %pos {theta = 500000.0, style = "half"} : tensor<?x2x4xf32>
              return %r
            }
            """),
        "nn.attention": text("""
            func @attention(%q: tensor<?x4x8xf32>, %k: tensor<?x2x8xf32>, %v: tensor<?x2x8xf32>) -> tensor<?x4x8xf32> {
              %a = nn.attention %q, %k, %v {causal = false, scale = 0.35355339059327373} : tensor<?x4x8xf32>
              return %a
            }
            """),
        "tensor.reshape": text("""
            func @reshape(%x: tensor<?x8xf32>) -> tensor<?x2x4xf32> {
              %0 = tensor.reshape %x {shape = [-1, 2, 4]} : tensor<?x2x4xf32>
              return %0
            }
            """),
        "tensor.transpose": built {
            var b = Builder(name: "transpose", arguments: [("x", t([2, 3, 4]))])
            let y = try b.add("tensor.transpose", [b.arguments[0]], attributes: ["perm": .array([.int(2), .int(0), .int(1)])])
            #expect(y.type == t([4, 2, 3]))
            b.ret([y])
            return Module(functions: [b.function])
        },
        "tensor.concat": built {
            var b = Builder(name: "concat", arguments: [("a", t([2, 3])), ("b", t([4, 3])), ("c", t([1, 3]))])
            let y = try b.add("tensor.concat", b.arguments, attributes: ["axis": .int(0)])
            #expect(y.type == t([7, 3]))
            let z = try b.add("tensor.concat", [y, b.arguments[0]], attributes: ["axis": .int(-2)])
            #expect(z == Value(name: "1", type: t([9, 3])))
            b.ret([z])
            return Module(functions: [b.function])
        },
        "tensor.slice": text("""
            func @slice(%x: tensor<8x?xf32>) -> tensor<2x?xf32> {
              %s = tensor.slice %x {axis = 0, start = -4, size = 2} : tensor<2x?xf32>
              return %s
            }
            """),
        "tensor.cast": built {
            var b = Builder(name: "cast", arguments: [("x", t([nil, 4]))])
            let y = try b.add("tensor.cast", [b.arguments[0]], attributes: ["to": .dtype(.bf16)])
            #expect(y.type == t([nil, 4], .bf16))
            b.ret([y])
            return Module(functions: [b.function])
        },
        "arith.constant": built {
            var b = Builder(name: "constants", arguments: [])
            // arith.constant's type is what is written: the builder cannot infer it.
            #expect(throws: Diagnostic.self) { try b.add("arith.constant", attributes: ["value": .int(1)]) }
            let c = try b.add("arith.constant", attributes: ["value": .array([.float(1), .float(-2.5), .float(1e-05), .int(3)])],
                              resultType: t([2, 2]))
            let s = try b.add("arith.constant", attributes: ["value": .int(-7)], resultType: t([3], .i32))
            #expect(c.name == "0" && s.name == "1")
            b.ret([c, s])
            return Module(functions: [b.function])
        },
        "quant.dequant": text("""
            module @dequant {
              weights {
                @q : quant.packed<2x8xi4, group = 4, scale = f16, zero_point = true> = dense<"0x0123456789ABCDEF">
                @s : tensor<2x2xf16> = dense<[0.5, 0.25, 1.0, 2.0]>
                @z : tensor<2x2xi8> = dense<[0, -1, 3, 8]>
              }
              func @dequant() -> tensor<2x8xf32> {
                %q = nn.weight {name = @q} : quant.packed<2x8xi4, group = 4, scale = f16, zero_point = true>
                %s = nn.weight {name = @s} : tensor<2x2xf16>
                %z = nn.weight {name = @z} : tensor<2x2xi8>
                %d = quant.dequant %q, %s, %z : tensor<2x8xf32>
                return %d
              }
            }
            """),
        "quant.linear": text("""
            module @qlinear {
              weights "blk.safetensors" {
                @q : quant.packed<4x16xi4, group = 8, scale = f32, zero_point = false, nm = 2:4>
                @s : tensor<4x2xf32> = elided
              }
              func @qlinear(%x: tensor<?x16xf32>) -> tensor<?x4xf32> {
                %q = nn.weight {name = @q} : quant.packed<4x16xi4, group = 8, scale = f32, zero_point = false, nm = 2:4>
                %s = nn.weight {name = @s} : tensor<4x2xf32>
                %y = quant.linear %x, %q, %s {bits = 4, group = 8, nm = 2:4} : tensor<?x4xf32>
                return %y
              }
            }
            """),
        "kv.append": built {
            let cache = NMType.kvCache(KVCacheType(capacity: 16, heads: 2, headDim: 4))
            var b = Builder(name: "append", arguments: [("cache", cache), ("x", t([nil, 2, 4])), ("start", t([], .i32))])
            let results = try b.create("kv.append", b.arguments)
            #expect(results == [Value(name: "0", type: cache), Value(name: "1", type: t([nil, 2, 4]))])
            b.ret(results)
            return Module(functions: [b.function])
        },
    ]

    /// Every example, made and printed (for corpora).
    static func printedCorpus() throws -> [String] {
        try table.keys.sorted().map { Printer().print(try table[$0]!.make()) } + [ParserSmokeTests.sample]
    }
}

/// `parse(print(m)) == m`, deterministic printing, and the module verifies (before and after).
func checkRoundTrip(_ m: Module, _ comment: String = "", sourceLocation: Testing.SourceLocation = #_sourceLocation) throws {
    #expect(throws: Never.self, "\(comment): the module verifies", sourceLocation: sourceLocation) { try Verifier().verify(m) }
    let printed = Printer().print(m)
    let parsed = try Parser.parseAndVerify(SourceText(name: "printed.nmir", text: printed))
    #expect(parsed == m, "\(comment): reads back equal from\n\(printed)", sourceLocation: sourceLocation)
    #expect(Printer().print(parsed) == printed, "\(comment): printing is deterministic", sourceLocation: sourceLocation)
    #expect(Printer().print(m) == printed, "\(comment): printing twice gives the same text", sourceLocation: sourceLocation)
}

@Suite struct RoundTripTests {
    static let opNames = OpRegistry.standard.definitions.map(\.name)

    @Test func everyRegisteredOpHasAnExample() {
        #expect(Self.opNames.count == 22)
        let missing = Self.opNames.filter { OpExamples.table[$0] == nil }
        #expect(missing.isEmpty, "ops without a round-trip example: \(missing)")
        let stale = OpExamples.table.keys.filter { OpRegistry.standard[$0] == nil }.sorted()
        #expect(stale.isEmpty, "examples of unregistered ops: \(stale)")
        // Both ways of making modules are exercised.
        #expect(OpExamples.table.values.filter(\.fromBuilder).count >= 8)
        #expect(OpExamples.table.values.filter { !$0.fromBuilder }.count >= 8)
    }

    @Test(arguments: opNames) func roundTripsEveryOp(_ name: String) throws {
        let example = try #require(OpExamples.table[name], "no round-trip example for \(name)")
        let m = try example.make()
        let uses = m.functions.flatMap(\.body).filter { $0.name == name }
        #expect(!uses.isEmpty, "the example of \(name) does not use it")
        try checkRoundTrip(m, name)
        // The printed text names the op with the results written first.
        let printed = Printer().print(m)
        #expect(printed.contains(" = \(name)"), "\(printed)")
    }

    @Test func builderNumbersPastExistingNamesAndPrintsThem() throws {
        let f = Function(name: "f", arguments: [Value(name: "0", type: OpExamples.t([4])), Value(name: "2", type: OpExamples.t([4]))])
        var b = Builder(function: f)
        let a = try b.add("nn.silu", [b.arguments[0]])
        #expect(a.name == "3")
        #expect(b.freshName() == "4")
        let c = try b.add("nn.add", [a, b.arguments[1]])
        #expect(c.name == "5")
        b.ret([c])
        let m = Module(functions: [b.function])
        #expect(Printer().print(m) == """
            module {
              func @f(%0: tensor<4xf32>, %2: tensor<4xf32>) -> tensor<4xf32> {
                %3 = nn.silu %0 : tensor<4xf32>
                %5 = nn.add %3, %2 : tensor<4xf32>
                return %5
              }
            }

            """)
        try checkRoundTrip(m, "builder numbering")
        // A builder reports a type rule's error with the op's name.
        do {
            _ = try b.add("nn.linear", [a, a])
            Issue.record("expected nn.linear on a 1-D w to fail")
        } catch let d as Diagnostic {
            #expect(d.message == "'nn.linear': w must have rank 2, got tensor<4xf32>")
        }
        #expect(throws: Diagnostic.self) { try b.add("nn.nope", []) }
    }

    // MARK: - Types

    static let typeTexts: [(String, NMType)] = [
        ("tensor<?x576xf32>", OpExamples.t([nil, 576])),
        ("tensor<f32>", OpExamples.t([])),
        ("tensor<i32>", OpExamples.t([], .i32)),
        ("tensor<0x4xf16>", OpExamples.t([0, 4], .f16)),
        ("tensor<?x?x?xbf16>", OpExamples.t([nil, nil, nil], .bf16)),
        ("tensor<3xindex>", OpExamples.t([3], .index)),
        ("tensor<7xi4>", OpExamples.t([7], .i4)),
        ("tensor<2x8xi8>", OpExamples.t([2, 8], .i8)),
        ("tensor<576x1536xf32, nm = 2:4>", OpExamples.t([576, 1536], nm: NMPattern(n: 2, m: 4))),
        ("tensor<?x16xf16, nm = 1:16>", OpExamples.t([nil, 16], .f16, nm: NMPattern(n: 1, m: 16))),
        ("quant.packed<1536x576xi4, group = 128, scale = f16, zero_point = false>",
         .packed(PackedWeightType(rows: 1536, columns: 576, group: 128))),
        ("quant.packed<8x32xi8, group = 32, scale = bf16, zero_point = true, nm = 15:16>",
         .packed(PackedWeightType(rows: 8, columns: 32, storage: .i8, group: 32, scale: .bf16, zeroPoint: true,
                                  nm: NMPattern(n: 15, m: 16)))),
        ("quant.packed<4x12xi4, group = 4, scale = f32, zero_point = true, nm = 2:3>",
         .packed(PackedWeightType(rows: 4, columns: 12, group: 4, scale: .f32, zeroPoint: true, nm: NMPattern(n: 2, m: 3)))),
        ("quant.packed<4x12xi4, group = 4, scale = f16, zero_point = false, nm = 1:2>",
         .packed(PackedWeightType(rows: 4, columns: 12, group: 4, nm: NMPattern(n: 1, m: 2)))),
        ("kv.cache<2048x3x64xf32>", .kvCache(KVCacheType(capacity: 2048, heads: 3, headDim: 64))),
        ("kv.cache<1x1x1xf16>", .kvCache(KVCacheType(capacity: 1, heads: 1, headDim: 1, dtype: .f16))),
    ]

    static func parseType(_ text: String) throws -> NMType {
        var p = Parser(SourceText(name: "type", text: text))
        return try p.parseType()
    }

    @Test func everyKindOfTypeRoundTrips() throws {
        for (text, type) in Self.typeTexts {
            #expect(type.description == text)
            #expect(try Self.parseType(text) == type, "\(text)")
        }
        // Non-canonical spellings read to the same types and print canonically.
        #expect(try Self.parseType("quant.packed<4x8xi4, scale = f16, group = 4>").description
            == "quant.packed<4x8xi4, group = 4, scale = f16, zero_point = false>")
        #expect(try Self.parseType("tensor< ?x4xf32 ,  nm =  2:4 >") == OpExamples.t([nil, 4], nm: NMPattern(n: 2, m: 4)))
        // Every type as a function argument, returned as is.
        let args = Self.typeTexts.enumerated().map { Value(name: "a\($0.offset)", type: $0.element.1) }
        let m = Module(name: "types", functions: [Function(name: "types", arguments: args, returnValues: args)])
        try checkRoundTrip(m, "types")
        let printed = Printer().print(m)
        #expect(printed.contains("%a4: tensor<?x?x?xbf16>, "))
        #expect(printed.contains(") -> (tensor<?x576xf32>, tensor<f32>, "))
        // A single result prints without parentheses, no result without an arrow.
        let single = Module(functions: [Function(name: "one", arguments: [args[1]], returnValues: [args[1]]),
                                        Function(name: "none", arguments: [args[1]])])
        try checkRoundTrip(single, "single and no result")
        #expect(Printer().print(single).contains("func @one(%a1: tensor<f32>) -> tensor<f32> {\n"))
        #expect(Printer().print(single).contains("func @none(%a1: tensor<f32>) {\n    return\n  }"))
    }

    // MARK: - Attributes

    static let attributeTexts: [(Attribute, String)] = [
        (.int(0), "0"), (.int(-42), "-42"), (.int(Int.max), "9223372036854775807"),
        (.int(Int.min), "-9223372036854775808"),
        (.float(1e-05), "1e-05"), (.float(1.0e+30), "1e+30"), (.float(0.5), "0.5"), (.float(-2), "-2.0"),
        (.float(100), "100.0"), (.float(.infinity), "inf"), (.float(-.infinity), "-inf"),
        (.float(5e-324), "5e-324"), (.float(1.7976931348623157e308), "1.7976931348623157e+308"),
        (.float(0.1), "0.1"), (.float(-0.0), "-0.0"),
        (.string("plain"), "\"plain\""), (.string(""), "\"\""),
        (.string("q\" b\\ n\n t\t c\u{1} d\u{7f} r\r é 日本 🙂"), #""q\" b\\ n\n t\t c\u{1} d\u{7f} r\u{d} é 日本 🙂""#),
        (.bool(true), "true"), (.bool(false), "false"),
        (.array([]), "[]"),
        (.array([.int(1), .array([.array([.float(2.5)]), .string("x")]), .pattern(NMPattern(n: 2, m: 4)!), .array([])]),
         "[1, [[2.5], \"x\"], 2:4, []]"),
        (.pattern(NMPattern(n: 1, m: 2)!), "1:2"), (.pattern(NMPattern(n: 15, m: 16)!), "15:16"),
        (.dtype(.f32), "f32"), (.dtype(.bf16), "bf16"), (.dtype(.i4), "i4"), (.dtype(.index), "index"),
        (.symbol("blk.0.attn_q.weight"), "@blk.0.attn_q.weight"), (.symbol("a b"), "@\"a b\""),
        (.symbol(""), "@\"\""), (.symbol("0abc"), "@0abc"), (.symbol("a-b$c"), "@a-b$c"),
        (.symbol("ünï"), "@\"ünï\""), (.symbol("q\"x"), #"@"q\"x""#),
    ]

    static func parseAttribute(_ text: String) throws -> Attribute {
        var p = Parser(SourceText(name: "attr", text: text))
        return try p.parseAttributeValue()
    }

    @Test func everyKindOfAttributeRoundTrips() throws {
        for (attribute, text) in Self.attributeTexts {
            #expect(attribute.description == text)
            #expect(try Self.parseAttribute(text) == attribute, "\(text)")
        }
        // nan != nan, so compare the text.
        #expect(Attribute.float(.nan).description == "nan")
        let nan = try Self.parseAttribute("nan")
        #expect(nan.floatValue?.isNaN == true)
        #expect(nan.description == "nan")
        // Other spellings of the same values.
        #expect(try Self.parseAttribute("1.0e-05") == .float(1e-05))
        #expect(try Self.parseAttribute("1.0e+30") == .float(1e30))
        #expect(try Self.parseAttribute("1E3") == .float(1000))
        #expect(try Self.parseAttribute("007") == .int(7))
        #expect(try Self.parseAttribute("[ 1 ,2 ]") == .array([.int(1), .int(2)]))
        #expect(try Self.parseAttribute(#""\u{1F642}\u{E9}""#) == .string("🙂é"))
        #expect(try Self.parseAttribute("-inf") == .float(-.infinity))
    }

    @Test func moduleAttributesAndNamesRoundTrip() throws {
        var attributes: [String: Attribute] = [:]
        for (i, (attribute, _)) in Self.attributeTexts.enumerated() { attributes["k\(i)"] = attribute }
        attributes["a b"] = .int(1)
        attributes["a-b"] = .int(2)
        attributes["9lives"] = .int(3)
        attributes[".dot"] = .int(4)
        attributes["_x.y$"] = .symbol("q r")
        attributes[""] = .string("empty key")
        for name in [nil, "tiny", "my model", "blk.0", "ünï"] as [String?] {
            let m = Module(name: name, attributes: attributes,
                           functions: [Function(name: name ?? "main", arguments: [Value(name: "x", type: OpExamples.t([2]))])])
            try checkRoundTrip(m, "module \(name ?? "nil")")
        }
        let printed = Printer().print(Module(name: "my model", attributes: ["version": .string("1.0"), "a b": .int(1), "a-b": .int(2)]))
        #expect(printed == "module @\"my model\" attributes {\"a b\" = 1, \"a-b\" = 2, version = \"1.0\"} {\n}\n")
        // nan in a module attribute: compare text.
        let withNaN = Module(attributes: ["x": .array([.float(.nan), .float(-.infinity)])])
        let text = Printer().print(withNaN)
        #expect(text == "module attributes {x = [nan, -inf]} {\n}\n")
        #expect(Printer().print(try Parser.parse(text)) == text)
        // Bare top-level items read as an unnamed module.
        let bare = try Parser.parse("func @f(%x: tensor<f32>) -> tensor<f32> {\n  return %x\n}\n")
        #expect(bare.name == nil && bare.attributes.isEmpty && bare.functions.count == 1)
        try checkRoundTrip(bare, "bare items")
    }

    // MARK: - Weights

    @Test func weightsRoundTrip() throws {
        let packedNM = PackedWeightType(rows: 2, columns: 8, group: 4, nm: NMPattern(n: 2, m: 4))
        #expect(WeightStore.storageByteCount(of: .packed(packedNM)) == 6)
        let store = WeightStore(file: "dir/\"w\" 1.safetensors", entries: [
            WeightEntry(name: "ext", type: OpExamples.t([576, 1536], nm: NMPattern(n: 2, m: 4))),
            WeightEntry(name: "gone", type: OpExamples.t([3, 3]), data: .elided),
            WeightEntry(name: "f", type: OpExamples.t([2, 3]), data: .values([1e-05, -2.5, 1e30, 0, -0.25, 3])),
            WeightEntry(name: "i", type: OpExamples.t([3], .i32), data: .values([-3, 0, 7])),
            WeightEntry(name: "my weight", type: OpExamples.t([2], .f16), data: .bytes([0x00, 0x3C, 0x00, 0xBC])),
            WeightEntry(name: "packed", type: .packed(packedNM), data: .bytes([0xDE, 0xAD, 0xBE, 0xEF, 0x01, 0xa0])),
            WeightEntry(name: "packed.ext", type: .packed(PackedWeightType(rows: 8, columns: 32, group: 32, zeroPoint: true))),
            WeightEntry(name: "empty", type: OpExamples.t([0], .i8), data: .values([])),
        ])
        let m = Module(name: "w", weights: store, functions: [])
        try checkRoundTrip(m, "weights")
        let printed = Printer().print(m)
        #expect(printed == """
            module @w {
              weights "dir/\\"w\\" 1.safetensors" {
                @ext : tensor<576x1536xf32, nm = 2:4>
                @gone : tensor<3x3xf32> = elided
                @f : tensor<2x3xf32> = dense<[1e-05, -2.5, 1e+30, 0.0, -0.25, 3.0]>
                @i : tensor<3xi32> = dense<[-3, 0, 7]>
                @"my weight" : tensor<2xf16> = dense<"0x003C00BC">
                @packed : quant.packed<2x8xi4, group = 4, scale = f16, zero_point = false, nm = 2:4> = dense<"0xDEADBEEF01A0">
                @packed.ext : quant.packed<8x32xi4, group = 32, scale = f16, zero_point = true>
                @empty : tensor<0xi8> = dense<[]>
              }
            }

            """)
        let parsed = try Parser.parse(printed)
        #expect(parsed.weights.file == "dir/\"w\" 1.safetensors")
        #expect(parsed.weights.names == ["ext", "gone", "f", "i", "my weight", "packed", "packed.ext", "empty"])
        #expect(parsed.weights["packed"]?.data == .bytes([0xDE, 0xAD, 0xBE, 0xEF, 0x01, 0xA0]))
        #expect(parsed.weights["ext"]?.data == .external)
        #expect(parsed.weights["ext"]?.location == NMIR.SourceLocation(file: "<string>", line: 3, column: 5))
        // Lower-case hex reads the same.
        let lower = try Parser.parse("weights { @b : tensor<2xi8> = dense<\"0xab0f\"> }")
        #expect(lower.weights["b"]?.data == .bytes([0xAB, 0x0F]))

        // Eliding large weights on request: what is elided reads back as elided.
        let small = Printer(elideWeightsLargerThan: 8).print(m)
        #expect(small.contains("@f : tensor<2x3xf32> = elided\n"))
        #expect(small.contains("@i : tensor<3xi32> = elided\n"))  // 3 values count as 12 bytes
        #expect(small.contains("@\"my weight\" : tensor<2xf16> = dense<\"0x003C00BC\">\n"))
        #expect(small.contains("@packed : quant.packed<2x8xi4, group = 4, scale = f16, zero_point = false, nm = 2:4> = dense<\"0xDEADBEEF01A0\">\n"))
        let reread = try Parser.parseAndVerify(SourceText(name: "small.nmir", text: small))
        #expect(reread.weights["f"]?.data == .elided)
        #expect(reread.weights["my weight"]?.data == .bytes([0x00, 0x3C, 0x00, 0xBC]))

        // A weights block with a file but no entries survives too.
        try checkRoundTrip(Module(weights: WeightStore(file: "only.safetensors")), "file only")
        #expect(Printer().print(Module(weights: WeightStore(file: "only.safetensors")))
            == "module {\n  weights \"only.safetensors\" {\n  }\n}\n")
    }

    @Test func weightValuesWithNaNPrintTheSameAfterReading() throws {
        let text = "module {\n  weights {\n    @n : tensor<3xf32> = dense<[nan, inf, -inf]>\n  }\n}\n"
        let m = try Parser.parseAndVerify(SourceText(name: "nan.nmir", text: text))
        guard case .values(let v) = m.weights["n"]?.data else { Issue.record("expected values"); return }
        #expect(v[0].isNaN && v[1] == .infinity && v[2] == -.infinity)
        #expect(Printer().print(m) == text)
    }

    @Test func smokeSampleAndDecoderBlockRoundTrip() throws {
        let m = try Parser.parseAndVerify(SourceText(name: "t.nmir", text: ParserSmokeTests.sample))
        try checkRoundTrip(m, "smoke sample")
        let names = Set(m.functions.flatMap(\.body).map(\.name))
        #expect(names == ["nn.weight", "nn.rms_norm", "nn.linear", "tensor.reshape", "nn.rope", "kv.append", "nn.attention"])
    }
}
