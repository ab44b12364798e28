/// What went wrong building or loading a tokenizer. Every case names the offending input, so
/// the message alone tells a user what to fix.
public enum TokenizerError: Error, Equatable, CustomStringConvertible {
    /// The pre-tokenizer name (GGUF `tokenizer.ggml.pre`) is not one this tokenizer implements.
    case unknownPreTokenizer(String, supported: [String])
    /// The token list, the token types or a special-token id do not fit together.
    case invalidVocabulary(String)
    /// Merge number `index` (0-based, its rank) cannot be used.
    case invalidMerge(index: Int, merge: String, reason: String)
    /// A byte that valid UTF-8 can contain has no token and there is no unknown token to use.
    case missingByteToken(byte: UInt8)
    /// A file could not be read.
    case cannotReadFile(path: String, reason: String)
    /// A tokenizer.json is malformed: not JSON, or a required field is missing or mistyped.
    case invalidTokenizerJSON(path: String, reason: String)
    /// A tokenizer.json is well formed but asks for something this tokenizer does not implement.
    case unsupportedTokenizerJSON(path: String, reason: String)

    public var description: String {
        switch self {
        case let .unknownPreTokenizer(name, supported):
            return "unknown pre-tokenizer '\(name)'; supported: \(supported.joined(separator: ", "))"
        case let .invalidVocabulary(reason):
            return "invalid tokenizer vocabulary: \(reason)"
        case let .invalidMerge(index, merge, reason):
            return "invalid BPE merge #\(index) '\(merge)': \(reason)"
        case let .missingByteToken(byte):
            let hex = String(byte, radix: 16, uppercase: true)
            return "the vocabulary has no token for byte 0x\(hex.count == 1 ? "0" + hex : hex) "
                + "and no unknown token to stand in for it"
        case let .cannotReadFile(path, reason):
            return "\(path): cannot read: \(reason)"
        case let .invalidTokenizerJSON(path, reason):
            return "\(path): invalid tokenizer.json: \(reason)"
        case let .unsupportedTokenizerJSON(path, reason):
            return "\(path): unsupported tokenizer.json: \(reason)"
        }
    }
}
