import NMIR

/// Kernels of the `tensor` ops.
enum ShapeKernels {
    /// The dims a reshape produces, with its -1 resolved; checked against the element count.
    static func reshapeDims(_ dims: [Int], count: Int, declared: TensorType) throws -> [Int] {
        let known = dims.filter { $0 >= 0 }.reduce(1, *)
        var out = dims
        if let i = dims.firstIndex(of: -1) {
            guard known > 0, count % known == 0 else { throw InterpreterError("cannot reshape \(count) elements into \(dims)") }
            out[i] = count / known
        }
        guard out.reduce(1, *) == count else { throw InterpreterError("cannot reshape \(count) elements into \(dims)") }
        return out
    }

    static func strides(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        for i in stride(from: shape.count - 2, through: 0, by: -1) { s[i] = s[i + 1] * shape[i + 1] }
        return s
    }

    static func transpose(_ x: Tensor, perm: [Int]) -> Tensor {
        let shape = perm.map { x.shape[$0] }
        let inStrides = strides(x.shape)
        let permuted = perm.map { inStrides[$0] }
        var offsets: [Int] = []
        offsets.reserveCapacity(x.count)
        Elementwise.forEachOffset(shape, permuted, permuted) { _, ia, _ in offsets.append(ia) }
        if x.isFloat { return Tensor(shape: shape, floats: offsets.map { x.floats[$0] }, dtype: x.dtype) }
        return Tensor(shape: shape, ints: offsets.map { x.ints[$0] }, dtype: x.dtype)
    }

    static func concat(_ inputs: [Tensor], axis rawAxis: Int) -> Tensor {
        let first = inputs[0]
        let axis = rawAxis < 0 ? rawAxis + first.shape.count : rawAxis
        let outer = first.shape[..<axis].reduce(1, *)
        var shape = first.shape
        shape[axis] = inputs.reduce(0) { $0 + $1.shape[axis] }
        var floats: [Float] = [], ints: [Int32] = []
        for o in 0..<outer {
            for t in inputs {
                let chunk = t.shape[axis...].reduce(1, *)
                if first.isFloat { floats += t.floats[(o * chunk)..<((o + 1) * chunk)] } else { ints += t.ints[(o * chunk)..<((o + 1) * chunk)] }
            }
        }
        return first.isFloat ? Tensor(shape: shape, floats: floats, dtype: first.dtype) : Tensor(shape: shape, ints: ints, dtype: first.dtype)
    }

    static func slice(_ x: Tensor, axis rawAxis: Int, start rawStart: Int, size: Int) throws -> Tensor {
        let axis = rawAxis < 0 ? rawAxis + x.shape.count : rawAxis
        let n = x.shape[axis]
        let start = rawStart < 0 ? rawStart + n : rawStart
        guard start >= 0, start + size <= n else {
            throw InterpreterError("slice [\(rawStart), +\(size)) is out of bounds for a dim of \(n)")
        }
        let outer = x.shape[..<axis].reduce(1, *)
        let inner = x.shape[(axis + 1)...].reduce(1, *)
        var shape = x.shape
        shape[axis] = size
        var floats: [Float] = [], ints: [Int32] = []
        for o in 0..<outer {
            let lo = (o * n + start) * inner, hi = (o * n + start + size) * inner
            if x.isFloat { floats += x.floats[lo..<hi] } else { ints += x.ints[lo..<hi] }
        }
        return x.isFloat ? Tensor(shape: shape, floats: floats, dtype: x.dtype) : Tensor(shape: shape, ints: ints, dtype: x.dtype)
    }

    /// Float → float rounds to the target's precision (nearest even); float → integer truncates
    /// toward zero and fails outside the target's range; integer → float is exact up to 2^24.
    static func cast(_ x: Tensor, to dtype: DType) throws -> Tensor {
        switch (x.isFloat, dtype.isFloat) {
        case (true, true):
            let rounded: [Float]
            switch dtype {
            case .f16: rounded = x.floats.map { Float(Float16($0)) }
            case .bf16: rounded = x.floats.map { Float(bitPattern: UInt32(WeightEncoding.bfloat16Bits($0)) << 16) }
            default: rounded = x.floats
            }
            return Tensor(shape: x.shape, floats: rounded, dtype: dtype)
        case (true, false):
            let bound = dtype == .index ? Float(Int32.max) : Float(1 << (dtype.bitWidth - 1))
            var out: [Int32] = []
            out.reserveCapacity(x.count)
            for v in x.floats {
                let t = v.rounded(.towardZero)
                guard t.isFinite, t >= -bound, t < bound else { throw InterpreterError("\(v) does not fit in \(dtype)") }
                out.append(Int32(t))
            }
            return Tensor(shape: x.shape, ints: out, dtype: dtype)
        case (false, true):
            return Tensor(shape: x.shape, floats: x.ints.map(Float.init), dtype: dtype)
        case (false, false):
            let bound = dtype == .index || dtype == .i32 ? Int(Int32.max) + 1 : 1 << (dtype.bitWidth - 1)
            guard x.ints.allSatisfy({ Int($0) >= -bound && Int($0) < bound }) else {
                throw InterpreterError("a value does not fit in \(dtype)")
            }
            return Tensor(shape: x.shape, ints: x.ints, dtype: dtype)
        }
    }
}

/// Kernels of the `kv` ops.
enum KVKernels {
    /// Writes x [T, H, D] at positions start ..< start+T and returns positions 0 ..< start+T.
    static func append(_ cache: KVCache, _ x: Tensor, start: Int) throws -> Tensor {
        let t = x.shape[0], row = cache.type.heads * cache.type.headDim
        guard start >= 0, start + t <= cache.type.capacity else {
            throw InterpreterError("positions \(start)..<\(start + t) do not fit the cache's \(cache.type.capacity)")
        }
        cache.storage.replaceSubrange((start * row)..<((start + t) * row), with: x.floats)
        return Tensor(shape: [start + t, cache.type.heads, cache.type.headDim], floats: Array(cache.storage[0..<((start + t) * row)]),
                      dtype: cache.type.dtype)
    }
}
