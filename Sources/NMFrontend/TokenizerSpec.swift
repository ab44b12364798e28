import Foundation
import NMIR

/// Everything a `BPETokenizer` is built from, in a form that can be saved beside an imported
/// model (`tokenizer.nmc.json`) and read back without the original GGUF file.
public struct TokenizerSpec: Codable, Sendable, Equatable {
    public var tokens: [String]
    public var tokenTypes: [Int32]?
    public var merges: [String]
    public var preTokenizer: String
    public var bos: Int32?
    public var eos: Int32?
    public var unknown: Int32?
    public var addBOS: Bool

    public static let fileName = "tokenizer.nmc.json"

    /// The `tokenizer.ggml.*` metadata of a GGUF file.
    public init(gguf: GGUFFile) throws {
        guard let tokens = gguf.stringArray("tokenizer.ggml.tokens") else {
            throw gguf.metadataError("tokenizer.ggml.tokens", expected: "an array of strings")
        }
        self.tokens = tokens
        tokenTypes = gguf.int32Array("tokenizer.ggml.token_type")
        merges = gguf.stringArray("tokenizer.ggml.merges") ?? []
        let model = gguf.string("tokenizer.ggml.model") ?? "gpt2"
        guard model == "gpt2" else {
            throw GGUFError(file: gguf.path, reason: "tokenizer.ggml.model '\(model)' is not supported (only byte-level BPE, 'gpt2')")
        }
        preTokenizer = gguf.string("tokenizer.ggml.pre") ?? "gpt2"
        bos = try Self.tokenID(gguf, "tokenizer.ggml.bos_token_id")
        eos = try Self.tokenID(gguf, "tokenizer.ggml.eos_token_id")
        unknown = try Self.tokenID(gguf, "tokenizer.ggml.unknown_token_id")
        addBOS = gguf.bool("tokenizer.ggml.add_bos_token") ?? false
    }

    /// An integer id from the metadata, or nil when the key is missing or not an integer. An
    /// integer outside Int32 is an error (ids are 32-bit), not a trap.
    private static func tokenID(_ gguf: GGUFFile, _ key: String) throws -> Int32? {
        guard let integer = gguf.value(key)?.integer else { return nil }
        guard let id = integer.signed.flatMap({ Int32(exactly: $0) }) else {
            throw gguf.metadataError(key, expected: "a token id that fits 32 bits")
        }
        return id
    }

    public func makeTokenizer() throws -> BPETokenizer {
        try BPETokenizer(tokens: tokens, tokenTypes: tokenTypes, merges: merges, preTokenizer: preTokenizer,
                         bos: bos, eos: eos, unknown: unknown, addBOS: addBOS)
    }

    public func write(to path: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]  // the same model gives the same bytes
        let data = try encoder.encode(self)
        try AtomicFile.write(data, to: path)
    }

    public static func read(path: String) throws -> TokenizerSpec {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ModelConfigError(file: path, reason: "cannot read the tokenizer file")
        }
        do { return try JSONDecoder().decode(TokenizerSpec.self, from: data) } catch {
            throw ModelConfigError(file: path, reason: "not a valid tokenizer file (\(error))")
        }
    }
}

