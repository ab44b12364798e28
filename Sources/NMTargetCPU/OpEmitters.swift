import CLLVM
import NMIR
import NMRuntime

/// The code of each op in the generated function: result shapes, memory, and the kernel call.
extension FunctionCodegen {
    func emit(_ op: Operation) throws {
        let operands = try op.operands.map { try value($0, in: op) }
        switch op.name {
        case "nn.weight": try emitWeight(op)
        case "arith.constant": try emitConstant(op)
        case "nn.embedding": try emitEmbedding(op, operands)
        case "nn.rms_norm":
            let x = operands[0], dim = try staticLast(x, op)
            let out = allocate(op.results[0], dtype: x.dtype, dims: x.dims)
            let kernel = kernels.rmsNorm(dim: dim, eps: op.attributes["eps"]?.floatValue ?? 1e-5)
            run(kernel, slots: [out.pointer, x.pointer, operands[1].pointer], work: rows(x), grain: 16)
        case "nn.linear":
            let x = operands[0], w = operands[1]
            guard w.dims.count == 2, let n = w.dims[0].constant, let k = w.dims[1].constant else {
                throw CodegenError(at: op.location, "nn.linear needs a weight of static shape")
            }
            let out = allocate(op.results[0], dtype: x.dtype, dims: Array(x.dims.dropLast()) + [constant(n)])
            run(kernels.linearF32(n: n, k: k), slots: [out.pointer, x.pointer, w.pointer, rows(x)], work: g.int(n), grain: 8)
        case "quant.linear": try emitQuantLinear(op, operands)
        case "quant.dequant":
            guard case .packed(let type) = operands[0].kind else { throw CodegenError(at: op.location, "quant.dequant needs a packed weight") }
            let out = allocate(op.results[0], dtype: .f32, dims: [constant(type.rows), constant(type.columns)])
            let zeros = operands.count > 2 ? operands[2].pointer : LLVMConstPointerNull(g.ptr)!
            run(kernels.dequantize(type), slots: [out.pointer, operands[0].pointer, operands[1].pointer, zeros], work: g.int(type.rows), grain: 8)
        case "nn.matmul": try emitMatmul(op, operands)
        case "nn.add", "nn.sub", "nn.mul", "nn.div": try emitBinary(op, operands)
        case "nn.silu":
            let x = operands[0]
            let out = allocate(op.results[0], dtype: x.dtype, dims: x.dims)
            run(kernels.silu(), slots: [out.pointer, x.pointer], work: elementCount(x.dims).value, grain: 1 << 14)
        case "nn.softmax": try emitSoftmax(op, operands)
        case "nn.rope": try emitRope(op, operands)
        case "nn.attention": try emitAttention(op, operands)
        case "tensor.reshape": try emitReshape(op, operands)
        case "tensor.transpose": try emitTranspose(op, operands)
        case "tensor.concat": try emitConcat(op, operands)
        case "tensor.slice": try emitSlice(op, operands)
        case "tensor.cast":
            let x = operands[0], target = op.attributes["to"]?.dtypeValue ?? .f32
            let out = allocate(op.results[0], dtype: target, dims: x.dims)
            run(kernels.cast(from: x.dtype, to: target), slots: [out.pointer, x.pointer, statusPointer], work: elementCount(x.dims).value, grain: 1 << 14)
            checkStatus()
        case "kv.append": try emitAppend(op, operands)
        default:
            throw CodegenError(at: op.location, "no CPU code for '\(op.name)'")
        }
    }

    private func staticLast(_ x: CValue, _ op: Operation) throws -> Int {
        guard let d = x.dims.last?.constant else { throw CodegenError(at: op.location, "'\(op.name)' needs a static last dim") }
        return d
    }

    /// The number of rows of a tensor seen as [rows, last dim].
    private func rows(_ x: CValue) -> LLVMValueRef { elementCount(Array(x.dims.dropLast())).value }

    private func emitWeight(_ op: Operation) throws {
        guard let name = op.attributes["name"]?.symbolValue, let result = op.results.first else {
            throw CodegenError(at: op.location, "nn.weight without a name")
        }
        let pointer = try weightPointer(name, at: op.location)
        switch result.type {
        case .tensor(let t):
            guard t.isStatic else { throw CodegenError(at: op.location, "weight @\(name) has a dynamic shape") }
            bind(result, CValue(kind: .tensor(t.dtype, t.shape.map { constant($0.value ?? 0) }), pointer: pointer))
        case .packed(let p):
            bind(result, CValue(kind: .packed(p), pointer: pointer))
        case .kvCache:
            throw CodegenError(at: op.location, "weight @\(name) cannot be a kv.cache")
        }
    }

    private func emitConstant(_ op: Operation) throws {
        guard let result = op.results.first, let type = result.type.tensor, let count = type.elementCount,
              let attribute = op.attributes["value"] else { throw CodegenError(at: op.location, "malformed arith.constant") }
        let numbers = attribute.floatArrayValue ?? Array(repeating: attribute.floatValue ?? 0, count: count)
        let element = type.dtype.isFloat ? g.f32 : g.i32
        var constants: [LLVMValueRef?] = numbers.map { type.dtype.isFloat ? g.float($0) : g.i32(Int($0)) }
        let global = LLVMAddGlobal(g.module, LLVMArrayType(element, UInt32(max(count, 1))), "nmc_const")!
        if constants.isEmpty { constants = [type.dtype.isFloat ? g.float(0) : g.i32(0)] }
        LLVMSetInitializer(global, LLVMConstArray(element, &constants, UInt32(constants.count)))
        LLVMSetGlobalConstant(global, 1)
        LLVMSetLinkage(global, LLVMInternalLinkage)
        LLVMSetAlignment(global, 64)
        bind(result, CValue(kind: .tensor(type.dtype, type.shape.map { constant($0.value ?? 0) }), pointer: global))
    }

    private func emitEmbedding(_ op: Operation, _ operands: [CValue]) throws {
        let table = operands[0], ids = operands[1]
        guard table.dims.count == 2, let vocab = table.dims[0].constant, let dim = table.dims[1].constant else {
            throw CodegenError(at: op.location, "nn.embedding needs a table of static shape")
        }
        let out = allocate(op.results[0], dtype: table.dtype, dims: ids.dims + [constant(dim)])
        run(kernels.embedding(vocab: vocab, dim: dim), slots: [out.pointer, table.pointer, ids.pointer, statusPointer],
            work: elementCount(ids.dims).value, grain: 64)
        checkStatus()
    }

    private func emitQuantLinear(_ op: Operation, _ operands: [CValue]) throws {
        let x = operands[0]
        guard case .packed(let type) = operands[1].kind else { throw CodegenError(at: op.location, "quant.linear needs a packed weight") }
        if op.attributes["act_bits"] != nil {
            throw CodegenError(at: op.location, "quant.linear with act_bits (integer activations) has no CPU kernel yet; compile for --target hls or leave --act-bits out")
        }
        let out = allocate(op.results[0], dtype: .f32, dims: Array(x.dims.dropLast()) + [constant(type.rows)])
        let zeros = operands.count > 3 ? operands[3].pointer : LLVMConstPointerNull(g.ptr)!
        run(kernels.quantLinear(type), slots: [out.pointer, x.pointer, operands[1].pointer, operands[2].pointer, zeros, rows(x)],
            work: g.int(type.rows), grain: 8)
    }

    private func emitMatmul(_ op: Operation, _ operands: [CValue]) throws {
        let a = operands[0], b = operands[1]
        let rank = a.dims.count
        let batch = elementCount(Array(a.dims.dropLast(2)))
        let m = a.dims[rank - 2], k = a.dims[rank - 1], n = b.dims[rank - 1]
        let out = allocate(op.results[0], dtype: a.dtype, dims: Array(a.dims.dropLast(2)) + [m, n])
        run(kernels.matmul(), slots: [out.pointer, a.pointer, b.pointer, batch.value, m.value, k.value, n.value],
            work: mul(batch, m).value, grain: 4)
    }

    private func same(_ a: DimValue, _ b: DimValue) -> Bool {
        if let x = a.constant, let y = b.constant { return x == y }
        return a.value == b.value
    }

    private func emitBinary(_ op: Operation, _ operands: [CValue]) throws {
        let a = operands[0], b = operands[1]
        let rank = max(a.dims.count, b.dims.count)
        let one = constant(1)
        let da = Array(repeating: one, count: rank - a.dims.count) + a.dims
        let db = Array(repeating: one, count: rank - b.dims.count) + b.dims
        let dims = zip(da, db).map { x, y -> DimValue in
            if same(x, y) || y.constant == 1 { return x }
            if x.constant == 1 { return y }
            if let p = x.constant, let q = y.constant, p != q {
                return constant(max(p, q))  // The verifier has rejected incompatible static dims.
            }
            return DimValue(value: g.select(g.icmp(LLVMIntEQ, x.value, g.int(1)), y.value, x.value), constant: nil, bound: max(x.bound, y.bound))
        }
        let out = allocate(op.results[0], dtype: a.dtype, dims: dims)
        let isSuffix = { (operand: [DimValue]) in operand.count <= rank && zip(operand.reversed(), dims.reversed()).allSatisfy { self.same($0, $1) } }
        let mode: BroadcastMode
        var extra: [LLVMValueRef] = []
        if a.dims.count == rank && b.dims.count == rank && zip(a.dims, dims).allSatisfy({ same($0, $1) }) && zip(b.dims, dims).allSatisfy({ same($0, $1) }) {
            mode = .same
        } else if a.dims.count == rank && zip(a.dims, dims).allSatisfy({ same($0, $1) }) && isSuffix(b.dims) {
            mode = .bRepeats
            extra = [elementCount(b.dims).value]
        } else if b.dims.count == rank && zip(b.dims, dims).allSatisfy({ same($0, $1) }) && isSuffix(a.dims) {
            mode = .aRepeats
            extra = [elementCount(a.dims).value]
        } else {
            guard rank <= 8 else { throw CodegenError(at: op.location, "broadcasting over more than 8 dims is not supported") }
            mode = .general(rank: rank)
            extra = dims.map(\.value) + broadcastStrides(da, dims) + broadcastStrides(db, dims)
        }
        let binary = BinaryOp(rawValue: String(op.name.dropFirst(3)))!
        run(kernels.binary(binary, float: a.isFloat, mode: mode), slots: [out.pointer, a.pointer, b.pointer, statusPointer] + extra,
            work: elementCount(dims).value, grain: 1 << 14)
        if binary == .div && !a.isFloat { checkStatus() }
    }

    /// Row-major strides of `operand` (padded to the result's rank), 0 along broadcast dims.
    private func broadcastStrides(_ operand: [DimValue], _ result: [DimValue]) -> [LLVMValueRef] {
        var strides: [LLVMValueRef] = []
        var running = g.int(1)
        for (d, r) in zip(operand, result).reversed() {
            let broadcast = d.constant == 1 && r.constant != 1
            strides.append(broadcast ? g.int(0) : g.select(g.icmp(LLVMIntEQ, d.value, g.int(1)), g.int(0), running))
            running = g.mul(running, d.value)
        }
        return strides.reversed()
    }

    private func emitSoftmax(_ op: Operation, _ operands: [CValue]) throws {
        let x = operands[0], rank = x.dims.count
        var axis = op.attributes["axis"]?.intValue ?? -1
        if axis < 0 { axis += rank }
        guard axis >= 0, axis < rank else { throw CodegenError(at: op.location, "softmax axis out of range") }
        let out = allocate(op.results[0], dtype: x.dtype, dims: x.dims)
        let outer = elementCount(Array(x.dims[..<axis])), inner = elementCount(Array(x.dims[(axis + 1)...]))
        run(kernels.softmax(), slots: [out.pointer, x.pointer, x.dims[axis].value, inner.value], work: mul(outer, inner).value, grain: 16)
    }

    private func emitRope(_ op: Operation, _ operands: [CValue]) throws {
        let x = operands[0]
        guard x.dims.count == 3, let heads = x.dims[1].constant, let d = x.dims[2].constant else {
            throw CodegenError(at: op.location, "nn.rope needs static heads and head dims")
        }
        let theta = op.attributes["theta"]?.floatValue ?? 10000
        let interleaved = (op.attributes["style"]?.stringValue ?? "half") == "interleaved"
        // Every rope of a function with the same start, head dim and theta shares one cos/sin table.
        let key = "\(op.operands[1].name)|\(d)|\(theta)|\(x.dims[0].constant.map(String.init) ?? "\(x.dims[0].value)")"
        let table: CValue
        if let shared = sharedTables[key] {
            table = shared
        } else {
            let (pointer, buffer) = longLivedScratch(bytes: x.dims[0].bound * d * 4)
            table = CValue(kind: .tensor(.f32, [x.dims[0], constant(d)]), pointer: pointer, buffer: buffer)
            run(kernels.ropeTable(headDim: d, theta: theta), slots: [pointer, operands[1].pointer], work: x.dims[0].value, grain: 64)
            sharedTables[key] = table
        }
        let out = allocate(op.results[0], dtype: x.dtype, dims: x.dims)
        run(kernels.rope(heads: heads, headDim: d, interleaved: interleaved), slots: [out.pointer, x.pointer, table.pointer],
            work: x.dims[0].value, grain: 16)
    }

    private func emitAttention(_ op: Operation, _ operands: [CValue]) throws {
        let q = operands[0], k = operands[1], v = operands[2]
        guard q.dims.count == 3, k.dims.count == 3, let hq = q.dims[1].constant, let d = q.dims[2].constant, let hkv = k.dims[1].constant,
              hkv > 0, hq % hkv == 0 else {
            throw CodegenError(at: op.location, "nn.attention needs static heads (a multiple of the kv heads) and head dims")
        }
        let scale = op.attributes["scale"]?.floatValue ?? 1 / Double(d).squareRoot()
        let causal = op.attributes["causal"]?.boolValue ?? true
        let out = allocate(op.results[0], dtype: q.dtype, dims: q.dims)
        let kernel = kernels.attention(queryHeads: hq, kvHeads: hkv, headDim: d, causal: causal, scale: scale, maxKeys: k.dims[0].bound)
        run(kernel, slots: [out.pointer, q.pointer, k.pointer, v.pointer, k.dims[0].value, q.dims[0].value],
            work: KernelLibrary.attentionItems(queries: q.dims[0].value, heads: hq, g), grain: 1)
    }

    private func emitReshape(_ op: Operation, _ operands: [CValue]) throws {
        let x = operands[0], total = elementCount(x.dims)
        guard let type = op.results[0].type.tensor else { throw CodegenError(at: op.location, "reshape without a result type") }
        let requested = op.attributes["shape"]?.intArrayValue ?? type.shape.map { $0.value ?? -1 }
        var dims = requested.map { $0 == -1 ? nil : constant($0) }
        if let inferred = dims.firstIndex(where: { $0 == nil }) {
            let known = dims.compactMap { $0 }.reduce(1) { $0 * ($1.constant ?? 1) }
            let value = total.constant.map { constant($0 / max(known, 1)) }
                ?? DimValue(value: g.sdiv(total.value, g.int(max(known, 1))), constant: nil, bound: max(total.bound / max(known, 1), 1))
            dims[inferred] = value
        }
        bind(op.results[0], CValue(kind: .tensor(x.dtype, dims.map { $0! }), pointer: x.pointer, buffer: x.buffer))
    }

    private func emitTranspose(_ op: Operation, _ operands: [CValue]) throws {
        let x = operands[0], rank = x.dims.count
        let perm = op.attributes["perm"]?.intArrayValue ?? Array((0..<rank).reversed())
        guard perm.count == rank, rank <= 8 else { throw CodegenError(at: op.location, "tensor.transpose of rank \(rank) is not supported") }
        var sourceStrides = [LLVMValueRef](repeating: g.int(1), count: rank)
        var running = g.int(1)
        for d in stride(from: rank - 1, through: 0, by: -1) {
            sourceStrides[d] = running
            running = g.mul(running, x.dims[d].value)
        }
        let dims = perm.map { x.dims[$0] }
        let out = allocate(op.results[0], dtype: x.dtype, dims: dims)
        run(kernels.transpose(rank: rank), slots: [out.pointer, x.pointer] + dims.map(\.value) + perm.map { sourceStrides[$0] },
            work: elementCount(dims).value, grain: 1 << 14)
    }

    private func emitConcat(_ op: Operation, _ operands: [CValue]) throws {
        let first = operands[0], rank = first.dims.count
        var axis = op.attributes["axis"]?.intValue ?? 0
        if axis < 0 { axis += rank }
        let along = operands.dropFirst().reduce(first.dims[axis]) { add($0, $1.dims[axis]) }
        var dims = first.dims
        dims[axis] = along
        let out = allocate(op.results[0], dtype: first.dtype, dims: dims)
        let outer = elementCount(Array(first.dims[..<axis]))
        let outInner = elementCount(Array(dims[axis...]))
        var offset = constant(0)
        for x in operands {
            let inner = elementCount(Array(x.dims[axis...]))
            run(kernels.stridedCopy(), slots: [out.pointer, x.pointer, outer.value, inner.value, inner.value, g.int(0), outInner.value, offset.value],
                work: outer.value, grain: 64)
            offset = add(offset, inner)
        }
    }

    private func emitSlice(_ op: Operation, _ operands: [CValue]) throws {
        let x = operands[0], rank = x.dims.count
        var axis = op.attributes["axis"]?.intValue ?? 0
        if axis < 0 { axis += rank }
        let start = op.attributes["start"]?.intValue ?? 0, size = op.attributes["size"]?.intValue ?? 1
        let n = x.dims[axis]
        if let known = n.constant, start < 0 || start + size > known {
            throw CodegenError(at: op.location, "slice \(start)..<\(start + size) is outside the axis of \(known)")
        }
        fail(when: g.icmp(LLVMIntSGT, g.int(start + size), n.value), .sliceOutOfRange, detail: n.value)
        var dims = x.dims
        dims[axis] = constant(size)
        let out = allocate(op.results[0], dtype: x.dtype, dims: dims)
        let outer = elementCount(Array(x.dims[..<axis])), inner = elementCount(Array(x.dims[(axis + 1)...]))
        let run = mul(constant(size), inner)
        self.run(kernels.stridedCopy(), slots: [out.pointer, x.pointer, outer.value, run.value, mul(n, inner).value,
                                                 mul(constant(start), inner).value, run.value, g.int(0)],
                 work: outer.value, grain: 64)
    }

    private func emitAppend(_ op: Operation, _ operands: [CValue]) throws {
        guard case .cache(let type) = operands[0].kind else { throw CodegenError(at: op.location, "kv.append needs a cache") }
        let x = operands[1]
        let start = g.sext(g.load(g.i32, operands[2].pointer), g.i64)
        let tokens = x.dims[0]
        let end = g.add(start, tokens.value)
        fail(when: g.or(g.icmp(LLVMIntSLT, start, g.int(0)), g.icmp(LLVMIntSGT, end, g.int(type.capacity))), .cacheOverflow, detail: end)
        let row = type.heads * type.headDim
        copy(elements: mul(tokens, constant(row)), from: x.pointer, to: g.gep(g.f32, operands[0].pointer, g.mul(start, g.int(row))))
        bind(op.results[0], CValue(kind: .cache(type), pointer: operands[0].pointer))
        markCache(op.results[0].name, argumentOf: op.operands[0].name)
        let contents = DimValue(value: end, constant: nil, bound: type.capacity)
        bind(op.results[1], CValue(kind: .tensor(type.dtype, [contents, constant(type.heads), constant(type.headDim)]), pointer: operands[0].pointer))
    }
}
