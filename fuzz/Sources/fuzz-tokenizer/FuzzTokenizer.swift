import FuzzSupport
import NMFrontend

/// The tokenizers on untrusted text and ids. A fixed small byte-level BPE vocabulary (the 256
/// byte tokens, a few merges, control and user-defined tokens) is built once for each of the
/// four pre-tokenizer grammars (gpt2, smollm, llama-bpe, qwen2). The first input byte picks the
/// grammar and the flags; the rest is
///   - text: `String(decoding:)` → `encode` → `decode`, which must give the text back (every
///     byte has a token, so byte-level BPE loses nothing);
///   - ids: read as little-endian Int32 → `decode` / `decodeBytes` (ids are never trusted).
let tokenizers: [BPETokenizer] = {
    let special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<user>"]
    var tokens = (0..<256).map { byteLevelText(UInt8($0)) }
    let merges = ["Ġ t", "h e", "Ġt he", "i n", "Ġ a", "e r", "o n", "Ġ s", "r e", "a t", "Ġ o", "1 2", "Ġ Ġ", "ĠĠ ĠĠ"]
    for merge in merges {
        let parts = merge.split(separator: " ")
        tokens.append(String(parts[0]) + String(parts[1]))
    }
    var types = [Int32](repeating: BPETokenizer.TokenType.normal, count: tokens.count)
    for (i, text) in special.enumerated() {
        tokens.append(text)
        types.append(i == 3 ? BPETokenizer.TokenType.userDefined : BPETokenizer.TokenType.control)
    }
    let bos = Int32(tokens.count - 3)
    let eos = Int32(tokens.count - 2)
    return ["gpt2", "smollm", "llama-bpe", "qwen2"].map { pre in
        do {
            return try BPETokenizer(tokens: tokens, tokenTypes: types, merges: merges, preTokenizer: pre,
                                    bos: bos, eos: eos, unknown: nil, addBOS: true)
        } catch {
            fatalError("fuzz-tokenizer: the fixed vocabulary does not build: \(error)")
        }
    }
}()

/// GPT-2's byte → printable character table (the byte-level alphabet).
func byteLevelText(_ b: UInt8) -> String {
    let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
    if printable { return String(Unicode.Scalar(b)) }
    var n = 0
    for c in 0..<Int(b) where !((33...126).contains(c) || (161...172).contains(c) || (174...255).contains(c)) { n += 1 }
    return String(Unicode.Scalar(UInt32(256 + n))!)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTokenizer(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = fuzzBytes(data, size)
    guard let mode = bytes.first else { return 0 }
    let tokenizer = tokenizers[Int(mode & 3)]
    let parseSpecial = mode & 4 != 0
    let addSpecial = mode & 8 != 0
    let skipSpecial = mode & 16 != 0
    let rest = Array(bytes.dropFirst())
    if mode & 32 == 0 {
        let text = String(decoding: rest, as: UTF8.self)
        let ids = tokenizer.encode(text, addSpecial: addSpecial, parseSpecial: parseSpecial)
        for id in ids where tokenizer.tokenText(id) == nil {
            fatalError("encode gave id \(id), outside the vocabulary of \(tokenizer.vocabularySize)")
        }
        let decoded = tokenizer.decode(ids)
        let expected = addSpecial && tokenizer.addBOS ? "<|im_start|>" + text : text
        if decoded != expected {
            fatalError("decode(encode(text)) differs (pre-tokenizer \(tokenizer.preTokenizer)): \(Array(text.utf8)) → \(ids) → \(Array(decoded.utf8))")
        }
        _ = tokenizer.decode(ids, skipSpecial: skipSpecial)
    } else {
        var ids: [Int32] = []
        ids.reserveCapacity(rest.count / 4)
        var i = 0
        while i + 4 <= rest.count {
            ids.append(Int32(bitPattern: UInt32(rest[i]) | UInt32(rest[i + 1]) << 8 | UInt32(rest[i + 2]) << 16 | UInt32(rest[i + 3]) << 24))
            i += 4
        }
        _ = tokenizer.decode(ids, skipSpecial: skipSpecial)
        _ = tokenizer.decodeBytes(ids, skipSpecial: !skipSpecial)
        for id in ids.prefix(16) {
            _ = tokenizer.tokenText(id)
            _ = tokenizer.tokenBytes(id)
            _ = tokenizer.tokenType(id)
            _ = tokenizer.isEndOfGeneration(id)
        }
    }
    return 0
}
