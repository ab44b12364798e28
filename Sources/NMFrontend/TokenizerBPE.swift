/// A byte-level BPE tokenizer (GPT-2 style, as llama.cpp runs it for GGUF vocabularies whose
/// `tokenizer.ggml.model` is `gpt2`), such as SmolLM2's.
///
/// Encoding: special tokens are cut out of the text first (see `encode`); the rest is split into
/// pre-tokens by the vocabulary's pre-tokenizer (`BPEPreTokenizer`), each pre-token's UTF-8
/// bytes become byte tokens, and adjacent tokens are merged, lowest merge rank first (leftmost
/// first among equal ranks), until no listed merge applies.
///
/// Built from plain data, so that it does not depend on any file reader; `fromTokenizerJSON`
/// reads a Hugging Face tokenizer.json.
public struct BPETokenizer: Sendable {
    /// GGUF `tokenizer.ggml.token_type` values (llama.cpp's `llama_token_type`).
    public enum TokenType {
        public static let undefined: Int32 = 0
        public static let normal: Int32 = 1
        public static let unknown: Int32 = 2
        public static let control: Int32 = 3
        public static let userDefined: Int32 = 4
        public static let unused: Int32 = 5
        public static let byte: Int32 = 6
    }

    /// Number of tokens; valid ids are `0..<vocabularySize`.
    public var vocabularySize: Int { tokens.count }
    public let bosID: Int32?
    public let eosID: Int32?
    public let unknownID: Int32?
    /// Whether `encode(_:addSpecial: true)` puts `bosID` first.
    public let addBOS: Bool
    /// The pre-tokenizer's name, as given (`smollm`, `gpt2`, `llama-bpe`, …).
    public var preTokenizer: String { pre.name }

    let tokens: [String]
    let types: [Int32]
    /// What each token decodes to: the bytes its byte-level text stands for, or, for control,
    /// user-defined and unknown tokens (and text outside the byte alphabet), its UTF-8 text.
    let tokenBytes: [[UInt8]]
    let idForText: [String: Int32]
    /// The token of each single byte, or -1.
    let byteTokens: [Int32]
    /// Merge table: key `left << 32 | right` (token ids), value `rank << 32 | merged id`.
    let mergeTable: [UInt64: UInt64]
    let pre: BPEPreTokenizer
    /// Tokens matched as a whole in the input, longest first.
    let specialTokens: [BPESpecialToken]
    /// Byte spelling → id of every token, only when the pre-tokenizer ignores merges.
    let wholeWordIDs: [[UInt8]: Int32]
    let endOfGenerationIDs: Set<Int32>

    /// Texts of the tokens that end a turn or a document (llama.cpp's end-of-generation list).
    static let endOfGenerationTexts: Set<String> = [
        "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|eom_id|>", "<|end|>", "<end_of_turn>",
        "<|end_of_text|>", "<EOT>", "<|end▁of▁sentence|>",
    ]

    /// Builds a tokenizer from a vocabulary in GGUF form.
    ///
    /// - Parameters:
    ///   - tokens: token texts in id order, in the byte-level alphabet (`Ġ` for a space …),
    ///     except control / user-defined tokens, which are plain text.
    ///   - tokenTypes: GGUF token types, one per token; nil makes every token normal.
    ///     Types 2 (unknown), 3 (control) and 4 (user-defined) are matched as whole tokens in
    ///     the input (types 2 and 3 only when `parseSpecial`).
    ///   - merges: `"left right"` pairs, highest priority first; the two parts are split at the
    ///     first space after the first byte, as llama.cpp does.
    ///   - preTokenizer: GGUF `tokenizer.ggml.pre` (`smollm`, `gpt2`, `llama-bpe`, …).
    /// - Throws: `TokenizerError` naming the problem: an unknown pre-tokenizer, token types that
    ///   do not match the tokens, a special id out of range, a merge whose parts or result are not
    ///   tokens, a byte without a token when there is no unknown token.
    public init(tokens: [String], tokenTypes: [Int32]?, merges: [String], preTokenizer: String,
                bos: Int32?, eos: Int32?, unknown: Int32?, addBOS: Bool) throws {
        var pairs: [(String, String)] = []
        pairs.reserveCapacity(merges.count)
        for (index, merge) in merges.enumerated() {
            let utf8 = merge.utf8
            guard let spaceIndex = utf8.dropFirst().firstIndex(of: 0x20) else {
                throw TokenizerError.invalidMerge(index: index, merge: merge,
                                                  reason: "no space separates its two parts")
            }
            let left = String(merge[..<spaceIndex])
            let right = String(merge[utf8.index(after: spaceIndex)...])
            pairs.append((left, right))
        }
        try self.init(tokens: tokens, tokenTypes: tokenTypes, mergePairs: pairs,
                      preTokenizer: BPEPreTokenizer(name: preTokenizer),
                      bos: bos, eos: eos, unknown: unknown, addBOS: addBOS)
    }

    init(tokens: [String], tokenTypes: [Int32]?, mergePairs: [(String, String)],
         preTokenizer: BPEPreTokenizer, bos: Int32?, eos: Int32?, unknown: Int32?,
         addBOS: Bool) throws {
        guard !tokens.isEmpty else { throw TokenizerError.invalidVocabulary("the token list is empty") }
        guard tokens.count <= Int(Int32.max) else {
            throw TokenizerError.invalidVocabulary("\(tokens.count) tokens do not fit 32-bit ids")
        }
        let types = tokenTypes ?? [Int32](repeating: TokenType.normal, count: tokens.count)
        guard types.count == tokens.count else {
            throw TokenizerError.invalidVocabulary(
                "\(types.count) token types for \(tokens.count) tokens")
        }
        for (role, id) in [("bos", bos), ("eos", eos), ("unknown", unknown)] {
            if let id, id < 0 || Int(id) >= tokens.count {
                throw TokenizerError.invalidVocabulary(
                    "\(role) token id \(id) is outside the vocabulary 0..<\(tokens.count)")
            }
        }

        var idForText: [String: Int32] = [:]
        idForText.reserveCapacity(tokens.count)
        var tokenBytes: [[UInt8]] = []
        tokenBytes.reserveCapacity(tokens.count)
        var specials: [BPESpecialToken] = []
        for (index, text) in tokens.enumerated() {
            let id = Int32(index)
            idForText[text] = id  // a repeated text resolves to its last id, as in llama.cpp
            let type = types[index]
            let isSpecial = type == TokenType.unknown || type == TokenType.control
                || type == TokenType.userDefined
            if isSpecial {
                tokenBytes.append(Array(text.utf8))
                if !text.isEmpty {
                    specials.append(BPESpecialToken(id: id, bytes: Array(text.utf8),
                                                    needsParseSpecial: type != TokenType.userDefined))
                }
            } else {
                tokenBytes.append(BPEByteLevel.decode(text) ?? Array(text.utf8))
            }
        }
        specials.sort { $0.bytes.count != $1.bytes.count ? $0.bytes.count > $1.bytes.count : $0.id < $1.id }

        var byteTokens = [Int32](repeating: -1, count: 256)
        for byte in 0..<256 {
            let text = BPEByteLevel.encode([UInt8(byte)])
            if let id = idForText[text] {
                byteTokens[byte] = id
            } else if unknown == nil && !(byte == 0xC0 || byte == 0xC1 || byte >= 0xF5) {
                // 0xC0, 0xC1 and 0xF5…0xFF never occur in valid UTF-8, so a String cannot hold them.
                throw TokenizerError.missingByteToken(byte: UInt8(byte))
            }
        }

        var mergeTable: [UInt64: UInt64] = [:]
        mergeTable.reserveCapacity(mergePairs.count)
        for (rank, (left, right)) in mergePairs.enumerated() {
            func fail(_ reason: String) -> TokenizerError {
                .invalidMerge(index: rank, merge: "\(left) \(right)", reason: reason)
            }
            guard let leftID = idForText[left] else { throw fail("'\(left)' is not a token") }
            guard let rightID = idForText[right] else { throw fail("'\(right)' is not a token") }
            guard let mergedID = idForText[left + right] else {
                throw fail("the merged text '\(left + right)' is not a token")
            }
            guard rank <= Int(Int32.max) else { throw fail("too many merges for 32-bit ranks") }
            let key = UInt64(UInt32(bitPattern: leftID)) << 32 | UInt64(UInt32(bitPattern: rightID))
            if mergeTable[key] == nil {  // a repeated pair keeps its first (highest) priority
                mergeTable[key] = UInt64(rank) << 32 | UInt64(UInt32(bitPattern: mergedID))
            }
        }

        var wholeWordIDs: [[UInt8]: Int32] = [:]
        if preTokenizer.ignoresMerges {
            // llama.cpp looks the pre-token's byte-level spelling up among all token texts.
            for (index, text) in tokens.enumerated() {
                if let bytes = BPEByteLevel.decode(text), !bytes.isEmpty {
                    wholeWordIDs[bytes] = Int32(index)
                }
            }
        }

        var endOfGeneration = Set<Int32>()
        if let eos { endOfGeneration.insert(eos) }
        for text in Self.endOfGenerationTexts {
            if let id = idForText[text], types[Int(id)] == TokenType.control
                || types[Int(id)] == TokenType.userDefined {
                endOfGeneration.insert(id)
            }
        }

        self.tokens = tokens
        self.types = types
        self.tokenBytes = tokenBytes
        self.idForText = idForText
        self.byteTokens = byteTokens
        self.mergeTable = mergeTable
        self.pre = preTokenizer
        self.specialTokens = specials
        self.wholeWordIDs = wholeWordIDs
        self.endOfGenerationIDs = endOfGeneration
        self.bosID = bos
        self.eosID = eos
        self.unknownID = unknown
        self.addBOS = addBOS
    }

    // MARK: Looking up tokens

    /// The token's text as the vocabulary stores it (byte-level spelling for normal tokens),
    /// or nil for an id outside `0..<vocabularySize`.
    public func tokenText(_ id: Int32) -> String? {
        id >= 0 && Int(id) < tokens.count ? tokens[Int(id)] : nil
    }

    /// The bytes the token decodes to, or nil for an id outside the vocabulary.
    public func tokenBytes(_ id: Int32) -> [UInt8]? {
        id >= 0 && Int(id) < tokenBytes.count ? tokenBytes[Int(id)] : nil
    }

    /// The GGUF token type of the token, or nil for an id outside the vocabulary.
    public func tokenType(_ id: Int32) -> Int32? {
        id >= 0 && Int(id) < types.count ? types[Int(id)] : nil
    }

    /// The id of the token whose vocabulary text is exactly `text` (`"<|im_start|>"`, `"Ġthe"`).
    public func tokenID(_ text: String) -> Int32? { idForText[text] }

    /// Whether the token ends generation: the eos token, and the control tokens that end a turn
    /// or a document (`<|im_end|>`, `<|endoftext|>`, `<|eot_id|>`, …).
    public func isEndOfGeneration(_ id: Int32) -> Bool { endOfGenerationIDs.contains(id) }

    // MARK: Decoding

    /// The UTF-8 bytes of the replacement character U+FFFD, which `decodeBytes` writes for an id
    /// outside `0..<vocabularySize` (ids are never trusted: negative and huge ids are fine).
    public static let replacementBytes: [UInt8] = [0xEF, 0xBF, 0xBD]

    /// The bytes the ids stand for. Normal tokens give the bytes of their byte-level text;
    /// control, user-defined and unknown tokens give their text (control and unknown ones
    /// nothing when `skipSpecial`); an out-of-range id gives `replacementBytes`.
    public func decodeBytes(_ ids: [Int32], skipSpecial: Bool = false) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ids.count * 4)
        for id in ids {
            guard id >= 0, Int(id) < tokenBytes.count else {
                bytes.append(contentsOf: Self.replacementBytes)
                continue
            }
            if skipSpecial, types[Int(id)] == TokenType.control || types[Int(id)] == TokenType.unknown {
                continue
            }
            bytes.append(contentsOf: tokenBytes[Int(id)])
        }
        return bytes
    }

    /// `decodeBytes` read as UTF-8; byte sequences that are not valid UTF-8 (a multi-byte
    /// character cut between tokens, say) become U+FFFD.
    public func decode(_ ids: [Int32], skipSpecial: Bool = false) -> String {
        String(decoding: decodeBytes(ids, skipSpecial: skipSpecial), as: UTF8.self)
    }
}

/// A token matched as a whole in the input before pre-tokenization.
struct BPESpecialToken: Sendable {
    let id: Int32
    let bytes: [UInt8]
    /// Control and unknown tokens are matched only when the caller asks to parse special tokens;
    /// user-defined tokens always are (llama.cpp's `tokenizer_st_partition`).
    let needsParseSpecial: Bool
}
