/// The `wgmma` kernel's epilogue: the block's output tile (its rows × N tokens, f32 accumulators
/// in the `m64nN` layout) written to y (tokens × rows, f16) through shared memory.
///
/// A thread's accumulators hold rows g and g + 8 of its warp's 16 at token pairs (2t, 2t + 1),
/// while y is contiguous along rows: stored straight from registers that is a 2-byte store per
/// value (128 a thread with 256 tokens, each with its own address and token check). Here each
/// warp instead transposes pairs of n8 tiles into shared memory with one
/// `stmatrix.m8n8.x4.trans` (four 8×8 f16 matrices: a row of the stored matrix is one token's 8
/// rows, 16 bytes), and then every thread copies 16-byte pieces of token rows to y, so a warp
/// writes whole 128-byte lines. The tile sits in the (then free) activation buffers (and past
/// them, below the mbarriers, where it is larger), token rows `tileRowStride` bytes apart: 16
/// bytes more than the rows take, so the 8 rows of a stored matrix fall in different banks.
extension WarpgroupLinearKernel {
    /// Bytes between two tokens' rows in the staged tile.
    var tileRowStride: Int { 2 * blockRows + 16 }
    /// Bytes the staged tile takes (below the mbarriers: `bytesBelowBarriers`).
    var stagedTileBytes: Int { blockTokens * tileRowStride }

    /// Emits the epilogue for the tile of row block `rowBlock` (nil: %ctaid.x) and tokens from
    /// `tokenBase` on. `acc`: the n8 tiles of every row tile, row tile by row tile (row tile r
    /// is the block's rows 64W·r on). `smem`: the dynamic shared memory's start; `owned`: per
    /// chunk of a warpgroup's accumulators (`reductionChunks` token ranges), the predicate "this
    /// block stores it" (split K in a cluster), or nil for every chunk. Every thread of the block
    /// runs it.
    func storeTile(_ b: inout PTXBuilder, acc: [[String]], tid: String, warp: String, lane: String, smem: String,
                   rowBlock: String?, tokenBase: String, m: String, yPtr: String, owned: [String]? = nil) {
        let R = tileRowStride, tilesPerRowTile = acc.count / rowTiles, tilesPerChunk = max(1, tilesPerRowTile / Self.reductionChunks)
        precondition(stagedTileBytes <= bytesBelowBarriers && acc.count % 2 == 0 && (owned == nil || tilesPerChunk % 2 == 0),
                     "the staged tile fits below the mbarriers; n8 tiles come in pairs, and so do a chunk's")
        let rowTileBytes = 128 * warpgroups   // 64W rows of f16, in a token row of the staged tile and of y
        b.emit("bar.sync 0;")  // every thread is done with the buffers (wgmma reads, reduction slots, the split flag)
        // Lane l gives the address of row l % 8 of matrix l / 8 (matrix i: n8 tile 2p + i / 2,
        // rows 8 · (i % 2) on of the warp's 16): token 8 · (i / 2) + l % 8, at the warp's rows.
        let matrix = b.reg("r"), token = b.reg("r"), row = b.reg("r"), at = b.reg("r")
        b.emit("shr.u32 \(matrix), \(lane), 3;")
        b.emit("and.b32 \(token), \(lane), 7;")
        let pairHalf = b.reg("r")
        b.emit("shr.u32 \(pairHalf), \(matrix), 1;")
        b.emit("mad.lo.u32 \(token), \(pairHalf), 8, \(token);")
        b.emit("and.b32 \(row), \(matrix), 1;")
        b.emit("shl.b32 \(row), \(row), 3;")
        b.emit("mad.lo.u32 \(row), \(warp), 16, \(row);")
        b.emit("mad.lo.u32 \(at), \(token), \(R), \(smem);")
        b.emit("mad.lo.u32 \(at), \(row), 2, \(at);")
        for p in 0..<(acc.count / 2) {
            let r = 2 * p / tilesPerRowTile, q = p - r * tilesPerRowTile / 2   // row tile r, its pair q
            let chunk = 2 * q / tilesPerChunk, skip = b.label("tile_staged")
            if let owned { b.emit("@!\(owned[chunk]) bra \(skip);") }  // uniform in the warpgroup
            let packed = b.regs("r", 4)
            for (i, r) in packed.enumerated() {
                let a = acc[2 * p + i / 2], half = i % 2
                b.emit("cvt.rn.f16x2.f32 \(r), \(a[2 * half + 1]), \(a[2 * half]);")  // low half: the even token
            }
            b.emit("stmatrix.sync.aligned.m8n8.x4.trans.shared.b16 [\(at)+\(16 * q * R + r * rowTileBytes)], {\(packed.joined(separator: ", "))};")
            if owned != nil { b.place(skip) }
        }
        b.emit("bar.sync 0;")
        // Thread l of warpgroup w copies rows 64w + 8 · (l % 8) … + 7 of token 16q + ⌊l / 8⌋ in
        // pass q, and the same rows of each further row tile (64W rows on): a warp writes four
        // tokens' 128 bytes each.
        let wg = b.reg("r"), l = b.reg("r"), rowPiece = b.reg("r"), tok = b.reg("r"), from = b.reg("r")
        b.emit("shr.u32 \(wg), \(tid), 7;")
        b.emit("and.b32 \(l), \(tid), 127;")
        b.emit("and.b32 \(rowPiece), \(l), 7;")
        b.emit("mad.lo.u32 \(rowPiece), \(wg), 8, \(rowPiece);")  // the thread's 8 rows, in 16-byte pieces
        b.emit("shr.u32 \(tok), \(l), 3;")
        b.emit("mad.lo.u32 \(from), \(tok), \(R), \(smem);")
        b.emit("mad.lo.u32 \(from), \(rowPiece), 16, \(from);")
        let tokensLeft = b.reg("r"), element = b.reg("r"), to = b.reg("rd")
        b.emit("sub.u32 \(tokensLeft), \(m), \(tokenBase);")
        b.emit("add.u32 \(element), \(tokenBase), \(tok);")
        if let rowBlock {
            b.emit("mul.lo.u32 \(row), \(rowBlock), \(blockRows);")
        } else {
            b.emit("mov.u32 \(row), %ctaid.x;")
            b.emit("mul.lo.u32 \(row), \(row), \(blockRows);")
        }
        b.emit("mad.lo.u32 \(row), \(rowPiece), 8, \(row);")
        b.emit("mad.lo.u32 \(element), \(element), \(rows), \(row);")
        b.emit("mul.wide.u32 \(to), \(element), 2;")
        b.emit("add.s64 \(to), \(to), \(yPtr);")
        for q in 0..<(blockTokens / 16) {
            let chunk = 16 * q / (8 * tilesPerChunk), valid = b.reg("p"), t = b.reg("r")
            b.emit("add.u32 \(t), \(tok), \(16 * q);")
            b.emit("setp.lt.u32 \(valid), \(t), \(tokensLeft);")
            if let owned { b.emit("and.pred \(valid), \(valid), \(owned[chunk]);") }
            for r in 0..<rowTiles {
                // Stream-K's loads are not predicated: a predicated load leaves its registers' old
                // values live where it is off, and in the loop over segments ptxas then kept all 64
                // of them across the loop, through local memory (WarpgroupStreamK.swift). The
                // staged tile is always there to read.
                let v = b.regs("r", 4)
                b.emit("\(streamK ? "" : "@\(valid) ")ld.shared.v4.b32 {\(v.joined(separator: ", "))}, [\(from)+\(16 * q * R + r * rowTileBytes)];")
                b.emit("@\(valid) st.global.v4.b32 [\(to)+\(16 * q * rows * 2 + r * rowTileBytes)], {\(v.joined(separator: ", "))};")
            }
        }
    }
}
