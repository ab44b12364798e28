import Foundation

extension BPETokenizer {
    /// Reads a Hugging Face `tokenizer.json` with a byte-level BPE model.
    ///
    /// Uses `model.vocab`, `model.merges` (`"a b"` strings or `["a", "b"]` pairs),
    /// `model.unk_token`, `model.ignore_merges`, and `added_tokens` (`special: true` → control
    /// token, matched only when parsing special tokens; `special: false` → user-defined, always
    /// matched). The pre-tokenizer must be one llama.cpp knows: `ByteLevel` (gpt2),
    /// `Sequence[Digits(individual_digits), ByteLevel]` (smollm), or
    /// `Sequence[Split(llama3 or qwen2 regex), ByteLevel(use_regex: false)]`.
    /// bos / eos and `add_bos_token` come from a `tokenizer_config.json` beside the file when
    /// there is one (they are not in tokenizer.json).
    ///
    /// - Throws: `TokenizerError.cannotReadFile`, `.invalidTokenizerJSON` (not JSON, a field
    ///   missing or of the wrong type, ids with holes), `.unsupportedTokenizerJSON` (another model
    ///   type, a normalizer, an unknown pre-tokenizer), or the errors of `init`.
    public static func fromTokenizerJSON(path: String) throws -> BPETokenizer {
        func invalid(_ reason: String) -> TokenizerError { .invalidTokenizerJSON(path: path, reason: reason) }
        func unsupported(_ reason: String) -> TokenizerError {
            .unsupportedTokenizerJSON(path: path, reason: reason)
        }

        let root = try readJSONObject(path: path)
        guard let model = root["model"] as? [String: Any] else {
            throw invalid("missing object 'model'")
        }
        if let type = model["type"], !(type is NSNull) {
            guard let name = type as? String else { throw invalid("'model.type' is not a string") }
            guard name == "BPE" else { throw unsupported("model.type is '\(name)'; only BPE is supported") }
        }
        if let normalizer = root["normalizer"], !(normalizer is NSNull) {
            let name = (normalizer as? [String: Any])?["type"] as? String ?? "?"
            throw unsupported("normalizer '\(name)' is not supported (byte-level BPE takes the text as is)")
        }
        if jsonBool(model["byte_fallback"]) == true {
            throw unsupported("model.byte_fallback is set; that is SentencePiece-style BPE, not byte-level")
        }
        for field in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let value = model[field], !(value is NSNull), (value as? String) != "" {
                throw unsupported("model.\(field) is set; byte-level BPE has none")
            }
        }

        // Vocabulary.
        guard let vocabulary = model["vocab"] as? [String: Any] else {
            throw invalid("missing object 'model.vocab' (token → id)")
        }
        var textForID: [Int: String] = [:]
        var typeForID: [Int: Int32] = [:]
        for (text, value) in vocabulary {
            guard let id = jsonInt(value), id >= 0, id < Int(Int32.max) else {
                throw invalid("model.vocab['\(text)'] is not a token id")
            }
            if let other = textForID[id], other != text {
                throw invalid("model.vocab gives id \(id) to both '\(other)' and '\(text)'")
            }
            textForID[id] = text
            typeForID[id] = TokenType.normal
        }
        if let added = root["added_tokens"], !(added is NSNull) {
            guard let list = added as? [Any] else { throw invalid("'added_tokens' is not an array") }
            for (index, item) in list.enumerated() {
                guard let entry = item as? [String: Any] else {
                    throw invalid("added_tokens[\(index)] is not an object")
                }
                guard let id = jsonInt(entry["id"]), id >= 0, id < Int(Int32.max) else {
                    throw invalid("added_tokens[\(index)].id is missing or not a token id")
                }
                guard let content = entry["content"] as? String else {
                    throw invalid("added_tokens[\(index)].content is missing or not a string")
                }
                if let other = textForID[id], other != content {
                    throw invalid("added_tokens[\(index)] gives id \(id) to '\(content)', "
                                  + "but model.vocab has '\(other)' there")
                }
                textForID[id] = content
                typeForID[id] = jsonBool(entry["special"]) == true ? TokenType.control : TokenType.userDefined
            }
        }
        guard let maxID = textForID.keys.max() else { throw invalid("model.vocab is empty") }
        // A hole is found before anything is sized by the largest id (one id near Int32.max must
        // not reserve gigabytes): with fewer ids than maxID + 1, one of 0...count is missing.
        if textForID.count <= maxID, let missing = (0...textForID.count).first(where: { textForID[$0] == nil }) {
            throw invalid("token ids are not contiguous: no token has id \(missing) (largest id \(maxID))")
        }
        var tokens: [String] = []
        var types: [Int32] = []
        tokens.reserveCapacity(maxID + 1)
        types.reserveCapacity(maxID + 1)
        for id in 0...maxID {
            guard let text = textForID[id] else {
                throw invalid("token ids are not contiguous: no token has id \(id) (largest id \(maxID))")
            }
            tokens.append(text)
            types.append(typeForID[id] ?? TokenType.normal)
        }

        // Merges.
        guard let mergeList = model["merges"] as? [Any] else {
            throw invalid("missing array 'model.merges'")
        }
        var pairs: [(String, String)] = []
        pairs.reserveCapacity(mergeList.count)
        for (index, item) in mergeList.enumerated() {
            if let text = item as? String {
                let utf8 = text.utf8
                guard let space = utf8.dropFirst().firstIndex(of: 0x20) else {
                    throw invalid("model.merges[\(index)] '\(text)' has no space between its two parts")
                }
                pairs.append((String(text[..<space]), String(text[utf8.index(after: space)...])))
            } else if let pair = item as? [Any], pair.count == 2,
                      let left = pair[0] as? String, let right = pair[1] as? String {
                pairs.append((left, right))
            } else {
                throw invalid("model.merges[\(index)] is neither \"a b\" nor [\"a\", \"b\"]")
            }
        }

        // Pre-tokenizer.
        let preName = try preTokenizerName(root["pre_tokenizer"], path: path)
        var pre = try BPEPreTokenizer(name: preName)
        if let ignore = model["ignore_merges"], !(ignore is NSNull) {
            guard let flag = jsonBool(ignore) else { throw invalid("model.ignore_merges is not a boolean") }
            pre = BPEPreTokenizer(name: pre.name, grammar: pre.grammar, ignoresMerges: flag)
        }

        // Special ids.
        var idForText: [String: Int32] = [:]
        for (id, text) in tokens.enumerated() { idForText[text] = Int32(id) }
        var unknown: Int32?
        if let unk = model["unk_token"], !(unk is NSNull) {
            guard let text = unk as? String else { throw invalid("model.unk_token is not a string") }
            guard let id = idForText[text] else { throw invalid("model.unk_token '\(text)' is not a token") }
            unknown = id
        }
        var bos: Int32?
        var eos: Int32?
        var addBOS = false
        let configPath = (path as NSString).deletingLastPathComponent + "/tokenizer_config.json"
        if FileManager.default.fileExists(atPath: configPath) {
            let config = try readJSONObject(path: configPath)
            func special(_ key: String) throws -> Int32? {
                guard let value = config[key], !(value is NSNull) else { return nil }
                let text = (value as? String) ?? ((value as? [String: Any])?["content"] as? String)
                guard let text else {
                    throw TokenizerError.invalidTokenizerJSON(
                        path: configPath, reason: "'\(key)' is neither a string nor {\"content\": …}")
                }
                guard let id = idForText[text] else {
                    throw TokenizerError.invalidTokenizerJSON(
                        path: configPath, reason: "\(key) '\(text)' is not a token of \(path)")
                }
                return id
            }
            bos = try special("bos_token")
            eos = try special("eos_token")
            addBOS = jsonBool(config["add_bos_token"]) ?? false
        }

        return try BPETokenizer(tokens: tokens, tokenTypes: types, mergePairs: pairs, preTokenizer: pre,
                                bos: bos, eos: eos, unknown: unknown, addBOS: addBOS)
    }

    private static func readJSONObject(path: String) throws -> [String: Any] {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw TokenizerError.cannotReadFile(path: path, reason: error.localizedDescription)
        }
        let root: Any
        do {
            root = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw TokenizerError.invalidTokenizerJSON(path: path, reason: "not valid JSON (\(error.localizedDescription))")
        }
        guard let object = root as? [String: Any] else {
            throw TokenizerError.invalidTokenizerJSON(path: path, reason: "the top level is not an object")
        }
        return object
    }

    /// The llama.cpp pre-tokenizer name that a tokenizer.json `pre_tokenizer` amounts to.
    static func preTokenizerName(_ value: Any?, path: String) throws -> String {
        func unsupported(_ reason: String) -> TokenizerError {
            .unsupportedTokenizerJSON(path: path, reason: reason)
        }
        guard let value, !(value is NSNull) else {
            throw unsupported("'pre_tokenizer' is missing; byte-level BPE needs one")
        }
        guard let object = value as? [String: Any], let type = object["type"] as? String else {
            throw TokenizerError.invalidTokenizerJSON(path: path, reason: "'pre_tokenizer' has no 'type'")
        }
        func byteLevel(_ step: [String: Any], usesRegex: Bool) throws -> Bool {
            guard step["type"] as? String == "ByteLevel" else { return false }
            if jsonBool(step["add_prefix_space"]) == true {
                throw unsupported("ByteLevel add_prefix_space is not supported")
            }
            return (jsonBool(step["use_regex"]) ?? true) == usesRegex
        }
        if type == "ByteLevel" {
            if try byteLevel(object, usesRegex: true) { return "gpt2" }
            throw unsupported("ByteLevel with use_regex false and no Split before it")
        }
        let description: String
        if type == "Sequence", let steps = object["pretokenizers"] as? [[String: Any]] {
            description = "Sequence[" + steps.map { ($0["type"] as? String) ?? "?" }.joined(separator: ", ") + "]"
            if steps.count == 2, steps[0]["type"] as? String == "Digits",
               jsonBool(steps[0]["individual_digits"]) == true, try byteLevel(steps[1], usesRegex: true) {
                return "smollm"
            }
            if steps.count == 2, steps[0]["type"] as? String == "Split",
               let pattern = (steps[0]["pattern"] as? [String: Any])?["Regex"] as? String,
               (steps[0]["behavior"] as? String) == "Isolated", jsonBool(steps[0]["invert"]) != true,
               try byteLevel(steps[1], usesRegex: false) {
                if llama3Patterns.contains(pattern) { return "llama-bpe" }
                if qwen2Patterns.contains(pattern) { return "qwen2" }
                throw unsupported("Split pattern \(pattern) is not one of the known pre-tokenizers")
            }
        } else {
            description = type
        }
        throw unsupported("pre_tokenizer \(description) is not one of the known pre-tokenizers "
                          + "(ByteLevel, Sequence[Digits, ByteLevel], Sequence[Split, ByteLevel])")
    }

    static let llama3Patterns: Set<String> = [
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
        #"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
    ]
    static let qwen2Patterns: Set<String> = [
        #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#,
    ]

    private static func jsonInt(_ value: Any?) -> Int? {
        if let int = value as? Int { return int }
        if let number = value as? NSNumber {
            let double = number.doubleValue
            return double.rounded() == double && abs(double) < 1e15 ? Int(double) : nil
        }
        return nil
    }

    private static func jsonBool(_ value: Any?) -> Bool? {
        if let bool = value as? Bool { return bool }
        return nil
    }
}
