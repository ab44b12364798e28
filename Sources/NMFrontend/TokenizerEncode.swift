extension BPETokenizer {
    /// The token ids of `text`.
    ///
    /// - Parameters:
    ///   - addSpecial: put `bosID` first when the vocabulary asks for it (`addBOS`).
    ///   - parseSpecial: match control tokens (`<|im_start|>`, `<|im_end|>`, `<|endoftext|>`, …)
    ///     as single tokens wherever their text occurs; when false they are ordinary text.
    ///     User-defined tokens (GGUF type 4, tokenizer.json `special: false`) are always matched,
    ///     as llama.cpp does. Longer special tokens are cut out first, each one leftmost first.
    public func encode(_ text: String, addSpecial: Bool = false, parseSpecial: Bool = true) -> [Int32] {
        var ids: [Int32] = []
        if addSpecial, addBOS, let bosID { ids.append(bosID) }
        let bytes = Array(text.utf8)
        if bytes.isEmpty { return ids }
        ids.reserveCapacity(ids.count + bytes.count / 3)
        var session = BPEEncodingSession()
        for fragment in splitSpecialTokens(bytes, parseSpecial: parseSpecial) {
            switch fragment {
            case let .token(id):
                ids.append(id)
            case let .text(range):
                encodeText(bytes, range: range, session: &session, into: &ids)
            }
        }
        return ids
    }

    /// The pre-tokens of `text` (no special-token matching), as the scanner cuts them.
    func preTokenize(_ text: String) -> [String] {
        let bytes = Array(text.utf8)
        var session = BPEEncodingSession()
        var pieces: [String] = []
        forEachPreToken(bytes, range: 0..<bytes.count, session: &session) { range in
            pieces.append(String(decoding: bytes[range], as: UTF8.self))
        }
        return pieces
    }

    // MARK: Special tokens

    /// Cuts special tokens out of `bytes` the way llama.cpp's `tokenizer_st_partition` does:
    /// for each special token, longest first, every leftmost occurrence in what is still text.
    func splitSpecialTokens(_ bytes: [UInt8], parseSpecial: Bool) -> [BPEFragment] {
        var fragments: [BPEFragment] = [.text(0..<bytes.count)]
        bytes.withUnsafeBufferPointer { text in
            for special in specialTokens where parseSpecial || !special.needsParseSpecial {
                let pattern = special.bytes
                guard let first = pattern.first else { continue }
                var next: [BPEFragment] = []
                var changed = false
                for fragment in fragments {
                    guard case let .text(range) = fragment, range.count >= pattern.count else {
                        next.append(fragment)
                        continue
                    }
                    var start = range.lowerBound
                    var pos = range.lowerBound
                    let last = range.upperBound - pattern.count
                    while pos <= last {
                        if text[pos] == first && Self.matches(pattern, in: text, at: pos) {
                            if start < pos { next.append(.text(start..<pos)) }
                            next.append(.token(special.id))
                            pos += pattern.count
                            start = pos
                            changed = true
                        } else {
                            pos += 1
                        }
                    }
                    if start < range.upperBound { next.append(.text(start..<range.upperBound)) }
                }
                if changed { fragments = next }
            }
        }
        return fragments
    }

    @inline(__always)
    private static func matches(_ pattern: [UInt8], in text: UnsafeBufferPointer<UInt8>, at pos: Int) -> Bool {
        guard pos + pattern.count <= text.count else { return false }
        for index in 1..<max(1, pattern.count) where text[pos + index] != pattern[index] {
            return false
        }
        return true
    }

    // MARK: Text

    /// Decodes `bytes[range]` (valid UTF-8, being cut from a String at special-token
    /// boundaries) into scalars and classes, and calls `body` with each pre-token's byte range.
    func forEachPreToken(_ bytes: [UInt8], range: Range<Int>, session: inout BPEEncodingSession,
                         _ body: (Range<Int>) -> Void) {
        session.scalars.removeAll(keepingCapacity: true)
        session.classes.removeAll(keepingCapacity: true)
        session.offsets.removeAll(keepingCapacity: true)
        bytes.withUnsafeBufferPointer { text in
            var pos = range.lowerBound
            let end = min(range.upperBound, text.count)
            while pos < end {
                let (value, length) = Self.decodeScalar(text, at: pos, end: end)
                session.scalars.append(value)
                session.classes.append(BPEPreTokenizer.classify(value))
                session.offsets.append(pos)
                pos += length
            }
            session.offsets.append(end)
        }
        session.ends.removeAll(keepingCapacity: true)
        let count = session.scalars.count
        session.scalars.withUnsafeBufferPointer { scalars in
            session.classes.withUnsafeBufferPointer { classes in
                pre.split(scalars: scalars, classes: classes, count: count, ends: &session.ends)
            }
        }
        var start = 0
        for end in session.ends where end > start && end <= count {
            body(session.offsets[start]..<session.offsets[end])
            start = end
        }
    }

    func encodeText(_ bytes: [UInt8], range: Range<Int>, session: inout BPEEncodingSession,
                    into ids: inout [Int32]) {
        var words: [Range<Int>] = []
        forEachPreToken(bytes, range: range, session: &session) { words.append($0) }
        for word in words {
            let key = bytes[word]
            if let cached = session.cache[key] {
                ids.append(contentsOf: cached)
                continue
            }
            let start = ids.count
            mergeWord(key, session: &session, into: &ids)
            session.cache[key] = Array(ids[start...])
        }
    }

    /// One scalar of well-formed UTF-8; a malformed byte (which a String cannot hold) reads as
    /// U+FFFD of length 1 rather than trapping.
    @inline(__always)
    static func decodeScalar(_ text: UnsafeBufferPointer<UInt8>, at pos: Int, end: Int) -> (UInt32, Int) {
        let b0 = UInt32(text[pos])
        if b0 < 0x80 { return (b0, 1) }
        @inline(__always) func continuation(_ offset: Int) -> UInt32? {
            guard pos + offset < end else { return nil }
            let byte = UInt32(text[pos + offset])
            return byte & 0xC0 == 0x80 ? byte & 0x3F : nil
        }
        if b0 & 0xE0 == 0xC0, let b1 = continuation(1) {
            return ((b0 & 0x1F) << 6 | b1, 2)
        }
        if b0 & 0xF0 == 0xE0, let b1 = continuation(1), let b2 = continuation(2) {
            return ((b0 & 0x0F) << 12 | b1 << 6 | b2, 3)
        }
        if b0 & 0xF8 == 0xF0, let b1 = continuation(1), let b2 = continuation(2), let b3 = continuation(3) {
            return ((b0 & 0x07) << 18 | b1 << 12 | b2 << 6 | b3, 4)
        }
        return (0xFFFD, 1)
    }

    // MARK: Merging

    /// BPE over one pre-token: start from its byte tokens and apply the lowest-ranked merge
    /// (leftmost among equals) until none applies, with a binary heap of candidate pairs over
    /// a linked list of symbols (llama.cpp's `llm_tokenizer_bpe_session`), O(n log n).
    func mergeWord(_ word: ArraySlice<UInt8>, session: inout BPEEncodingSession, into ids: inout [Int32]) {
        if pre.ignoresMerges, let whole = wholeWordIDs[Array(word)] {
            ids.append(whole)
            return
        }
        let unknown = unknownID ?? -1
        if word.count == 1, let byte = word.first {
            let id = byteTokens[Int(byte)]
            if id >= 0 { ids.append(id) } else if unknown >= 0 { ids.append(unknown) }
            return
        }
        // Symbol ids: -1 a byte without a token (never merges), -2 a symbol merged away.
        session.symbols.removeAll(keepingCapacity: true)
        session.next.removeAll(keepingCapacity: true)
        session.previous.removeAll(keepingCapacity: true)
        session.heap.removeAll(keepingCapacity: true)
        for byte in word { session.symbols.append(byteTokens[Int(byte)]) }
        let count = session.symbols.count
        for index in 0..<count {
            session.previous.append(index - 1)
            session.next.append(index + 1 < count ? index + 1 : -1)
        }
        for index in 0..<(count - 1) {
            if let rank = mergeRank(session.symbols[index], session.symbols[index + 1])?.rank {
                session.pushCandidate(rank: rank, left: index)
            }
        }
        while let candidate = session.popCandidate() {
            let left = candidate.left
            let right = session.next[left]
            guard right >= 0, session.symbols[left] >= 0, session.symbols[right] >= 0,
                  let merge = mergeRank(session.symbols[left], session.symbols[right]),
                  merge.rank == candidate.rank
            else { continue }  // stale: one side was merged since the pair was queued
            session.symbols[left] = merge.merged
            session.symbols[right] = -2
            let after = session.next[right]
            session.next[left] = after
            if after >= 0 { session.previous[after] = left }
            let before = session.previous[left]
            if before >= 0, let rank = mergeRank(session.symbols[before], merge.merged)?.rank {
                session.pushCandidate(rank: rank, left: before)
            }
            if after >= 0, let rank = mergeRank(merge.merged, session.symbols[after])?.rank {
                session.pushCandidate(rank: rank, left: left)
            }
        }
        var index = 0  // the first symbol only ever absorbs others
        while index >= 0 {
            let id = session.symbols[index]
            if id >= 0 { ids.append(id) } else if unknown >= 0 { ids.append(unknown) }
            index = session.next[index]
        }
    }

    @inline(__always)
    func mergeRank(_ left: Int32, _ right: Int32) -> (rank: UInt32, merged: Int32)? {
        guard left >= 0, right >= 0 else { return nil }
        let key = UInt64(UInt32(bitPattern: left)) << 32 | UInt64(UInt32(bitPattern: right))
        guard let value = mergeTable[key] else { return nil }
        return (UInt32(truncatingIfNeeded: value >> 32), Int32(truncatingIfNeeded: value))
    }
}

/// A piece of the input after special tokens are cut out.
enum BPEFragment: Equatable {
    case text(Range<Int>)
    case token(Int32)
}

/// Scratch buffers and the per-call cache of pre-token → ids, reused across one `encode`.
struct BPEEncodingSession {
    var scalars: [UInt32] = []
    var classes: [UInt8] = []
    var offsets: [Int] = []
    var ends: [Int] = []
    var symbols: [Int32] = []
    var next: [Int] = []
    var previous: [Int] = []
    /// Min-heap of `rank << 32 | left symbol index`.
    var heap: [UInt64] = []
    var cache: [ArraySlice<UInt8>: [Int32]] = [:]

    mutating func pushCandidate(rank: UInt32, left: Int) {
        heap.append(UInt64(rank) << 32 | UInt64(UInt32(truncatingIfNeeded: left)))
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard heap[child] < heap[parent] else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func popCandidate() -> (rank: UInt32, left: Int)? {
        guard let top = heap.first else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                guard left < heap.count else { break }
                let right = left + 1
                let smaller = right < heap.count && heap[right] < heap[left] ? right : left
                guard heap[smaller] < heap[parent] else { break }
                heap.swapAt(smaller, parent)
                parent = smaller
            }
        }
        return (UInt32(truncatingIfNeeded: top >> 32), Int(UInt32(truncatingIfNeeded: top)))
    }
}
