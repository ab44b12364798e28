import Foundation
import NMRuntime
import Testing
@testable import NMFrontend

// The real SmolLM2 vocabulary comes out of the GGUF through Python's `gguf` package (this test
// does not depend on NMC's own GGUF reader), and the reference token ids come from a small,
// independent Python BPE: the `regex` package with llama.cpp's pre-tokenizer expressions, GPT-2's
// bytes_to_unicode and the classic merge loop of OpenAI's encoder.py.

// MARK: - Fixture

private enum TokenizerFixtureError: Error, CustomStringConvertible {
    case setup(String)
    var description: String {
        switch self { case let .setup(message): return message }
    }
}

/// A text to encode and the options the reference used.
private struct ReferenceInput: Sendable {
    let name: String
    let text: String
    let parseSpecial: Bool
}

private struct ReferenceOutput: Sendable {
    let ids: [Int32]
    let pieces: [String]
}

private struct SmolLMFixture: Sendable {
    let tokenizer: BPETokenizer
    let tokens: [String]
    let types: [Int32]
    let merges: [String]
    let bos: Int32?
    let eos: Int32?
    /// Reference outputs per pre-tokenizer name, in the order of `inputs`.
    let reference: [String: [ReferenceOutput]]
    let inputs: [ReferenceInput]
}

private enum Paths {
    /// The repository root: the nearest folder above this file holding Package.swift.
    static func repositoryRoot(from file: String = #filePath) throws -> URL {
        var url = URL(fileURLWithPath: file).deletingLastPathComponent()
        while url.path != "/" {
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) {
                return url
            }
            url = url.deletingLastPathComponent()
        }
        throw TokenizerFixtureError.setup("no Package.swift above \(file)")
    }

    static func sharedData(_ name: String) throws -> URL {
        try repositoryRoot().appendingPathComponent("../shared/data/\(name)").standardizedFileURL
    }
}

@discardableResult
private func runProcess(_ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let output = Pipe()
    process.standardOutput = output
    process.standardError = output
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let text = String(decoding: data, as: UTF8.self)
    guard process.terminationStatus == 0 else {
        throw TokenizerFixtureError.setup(
            "`\(arguments.joined(separator: " "))` exited with \(process.terminationStatus):\n\(text)")
    }
    return text
}

private let referenceScript = #"""
import json, sys
model_path, inputs_path, out_dir = sys.argv[1:4]
import gguf, regex

reader = gguf.GGUFReader(model_path)
fields = reader.fields

def strings(name):
    f = fields[name]
    return [bytes(f.parts[i]).decode('utf-8') for i in f.data]

def ints(name):
    f = fields[name]
    return [int(f.parts[i][0]) for i in f.data]

def scalar(name):
    f = fields.get(name)
    if f is None:
        return None
    v = f.parts[f.data[0]]
    if f.types[0] == gguf.GGUFValueType.STRING:
        return bytes(v).decode('utf-8')
    return v[0].item()

tokens = strings('tokenizer.ggml.tokens')
types = ints('tokenizer.ggml.token_type')
merges = strings('tokenizer.ggml.merges')
vocab = {
    'tokens': tokens, 'types': types, 'merges': merges,
    'pre': scalar('tokenizer.ggml.pre'),
    'bos': scalar('tokenizer.ggml.bos_token_id'),
    'eos': scalar('tokenizer.ggml.eos_token_id'),
    'unk': scalar('tokenizer.ggml.unknown_token_id'),
    'add_bos': bool(scalar('tokenizer.ggml.add_bos_token') or False),
}
with open(out_dir + '/vocab.json', 'w') as f:
    json.dump(vocab, f)

# --- independent reference BPE ---------------------------------------------------------
def bytes_to_unicode():
    bs = list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) + list(range(ord('®'), ord('ÿ') + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))

B2U = bytes_to_unicode()
ranks = {}
for i, m in enumerate(merges):
    a, b = m.split(' ', 1)
    ranks.setdefault((a, b), i)
token_id = {}
for i, t in enumerate(tokens):
    token_id[t] = i

GPT2 = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
LLAMA3 = r"(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
# llama.cpp (src/llama-vocab.cpp) applies the expressions one after the other, each to the
# pieces the previous one left, keeping unmatched text as pieces of their own.
STAGES = {'smollm': [r'\p{N}', GPT2], 'gpt2': [GPT2], 'llama-bpe': [LLAMA3]}
IGNORE_MERGES = {'llama-bpe'}

def split_isolated(pattern, pieces):
    out = []
    for piece in pieces:
        pos = 0
        for m in regex.finditer(pattern, piece):
            if m.start() > pos:
                out.append(piece[pos:m.start()])
            if m.end() > m.start():
                out.append(m.group())
            pos = m.end()
        if pos < len(piece):
            out.append(piece[pos:])
    return out

cache = {}
def bpe(word):
    if word in cache:
        return cache[word]
    parts = list(word)
    while len(parts) > 1:
        best = min(((ranks.get((parts[i], parts[i + 1]), float('inf')), i) for i in range(len(parts) - 1)))
        if best[0] == float('inf'):
            break
        a, b = parts[best[1]], parts[best[1] + 1]
        merged, i = [], 0
        while i < len(parts):
            if i + 1 < len(parts) and parts[i] == a and parts[i + 1] == b:
                merged.append(a + b)
                i += 2
            else:
                merged.append(parts[i])
                i += 1
        parts = merged
    cache[word] = parts
    return parts

specials = sorted([(t, i) for i, t in enumerate(tokens) if types[i] in (2, 3, 4) and t],
                  key=lambda p: (-len(p[0].encode('utf-8')), p[1]))

def encode(text, pre, parse_special):
    segments = []
    allowed = [(t, i) for (t, i) in specials if parse_special or types[i] == 4]
    if allowed:
        pattern = regex.compile('|'.join(regex.escape(t) for t, _ in allowed))
        pos = 0
        for m in pattern.finditer(text):
            if m.start() > pos:
                segments.append((False, text[pos:m.start()]))
            segments.append((True, m.group()))
            pos = m.end()
        if pos < len(text):
            segments.append((False, text[pos:]))
    elif text:
        segments.append((False, text))
    ids, pieces = [], []
    for is_special, segment in segments:
        if is_special:
            ids.append(token_id[segment])
            continue
        words = [segment]
        for stage in STAGES[pre]:
            words = split_isolated(stage, words)
        for w in words:
            pieces.append(w)
            spelled = ''.join(B2U[b] for b in w.encode('utf-8'))
            if pre in IGNORE_MERGES and spelled in token_id:
                ids.append(token_id[spelled])
                continue
            ids.extend(token_id[t] for t in bpe(spelled))
    return {'ids': ids, 'pieces': pieces}

with open(inputs_path) as f:
    inputs = json.load(f)
reference = {}
for pre in STAGES:
    cache.clear()
    reference[pre] = [encode(item['text'], pre, item['parse_special']) for item in inputs]
with open(out_dir + '/reference.json', 'w') as f:
    json.dump(reference, f)
"""#

/// Characters the random strings are drawn from: every class the scanners tell apart.
private let fuzzAlphabet: [String] = [
    "a", "b", "Z", "s", "t", "m", "d", "r", "e", "v", "l", "S", "T", "'", "'", "0", "7", "9",
    " ", " ", " ", "\n", "\n", "\t", "\r", ".", ",", "!", "?", "-", "(", ")", "<", ">", "|", "@",
    "é", "ß", "Ω", "ж", "東", "京", "ا", "ー", "\u{301}", "\u{A0}", "\u{3000}", "\u{2028}",
    "½", "²", "Ⅻ", "٣", "🚀", "😀", "—", "’", "…", "\u{1F}", "\u{0B}",
]


private func makeInputs() throws -> [ReferenceInput] {
    var inputs: [ReferenceInput] = [
        .init(name: "capital", text: "The capital of France is", parseSpecial: true),
        .init(name: "hello", text: "Hello, world!", parseSpecial: true),
        .init(name: "numbers", text: "12345 3.14159", parseSpecial: true),
        .init(name: "whitespace", text: "a  \n\n  b\t\tc   ", parseSpecial: true),
        .init(name: "contractions", text: "I'm don't we'll", parseSpecial: true),
        .init(name: "unicode", text: "naïve café — 東京 🚀", parseSpecial: true),
        .init(name: "edges", text: "  lead\n\n\nx 'S 'tis ''s ()\r\n\ttab  ½²Ⅻ٣ e\u{301} a\u{A0}b trail   ",
              parseSpecial: true),
        .init(name: "chat", text: "<|im_start|>user\nhi<|im_end|>", parseSpecial: true),
        .init(name: "chat-as-text", text: "<|im_start|>user\nhi<|im_end|>", parseSpecial: false),
    ]
    var generator = SplitMix64(seed: 0x5EED)
    for index in 0..<8 {
        var text = ""
        for _ in 0..<400 {
            text += fuzzAlphabet[Int(generator.next() % UInt64(fuzzAlphabet.count))]
        }
        inputs.append(.init(name: "random-\(index)", text: text, parseSpecial: true))
    }
    let wikitext = try String(contentsOf: Paths.sharedData("wikitext2-test.txt"), encoding: .utf8)
    let prefix = String(String.UnicodeScalarView(wikitext.unicodeScalars.prefix(20_000)))
    inputs.append(.init(name: "wikitext-20000", text: prefix, parseSpecial: true))
    return inputs
}

private func loadFixture() throws -> SmolLMFixture {
    let root = try Paths.repositoryRoot()
    let model = root.appendingPathComponent("models/SmolLM2-135M-Instruct.Q4_1.gguf")
    guard FileManager.default.fileExists(atPath: model.path) else {
        throw TokenizerFixtureError.setup("\(model.path) is missing: run `make model` first")
    }
    if (try? runProcess(["python3", "-c", "import gguf, regex"])) == nil {
        try runProcess(["python3", "-m", "pip", "install", "-q", "gguf", "numpy", "regex"])
    }
    let directory = FileManager.default.temporaryDirectory
        .appendingPathComponent("nmc-tokenizer-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }

    let inputs = try makeInputs()
    let inputJSON = inputs.map { ["text": $0.text, "parse_special": $0.parseSpecial] as [String: Any] }
    try JSONSerialization.data(withJSONObject: inputJSON)
        .write(to: directory.appendingPathComponent("inputs.json"))
    let script = directory.appendingPathComponent("reference.py")
    try referenceScript.write(to: script, atomically: true, encoding: .utf8)
    try runProcess(["python3", script.path, model.path,
                    directory.appendingPathComponent("inputs.json").path, directory.path])

    func object(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: directory.appendingPathComponent(name))
        guard let value = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw TokenizerFixtureError.setup("\(name) is not a JSON object")
        }
        return value
    }
    func int32(_ value: Any?) -> Int32? { (value as? Int).map { Int32($0) } }
    let vocab = try object("vocab.json")
    guard let tokens = vocab["tokens"] as? [String], let types = vocab["types"] as? [Int],
          let merges = vocab["merges"] as? [String], let pre = vocab["pre"] as? String else {
        throw TokenizerFixtureError.setup("vocab.json lacks tokens, types, merges or pre")
    }
    let tokenizer = try BPETokenizer(
        tokens: tokens, tokenTypes: types.map { Int32($0) }, merges: merges, preTokenizer: pre,
        bos: int32(vocab["bos"]), eos: int32(vocab["eos"]), unknown: int32(vocab["unk"]),
        addBOS: vocab["add_bos"] as? Bool ?? false)

    var reference: [String: [ReferenceOutput]] = [:]
    for (name, value) in try object("reference.json") {
        guard let list = value as? [[String: Any]] else { throw TokenizerFixtureError.setup("bad reference.json") }
        reference[name] = list.map { entry in
            ReferenceOutput(ids: ((entry["ids"] as? [Int]) ?? []).map { Int32($0) },
                            pieces: (entry["pieces"] as? [String]) ?? [])
        }
    }
    return SmolLMFixture(tokenizer: tokenizer, tokens: tokens, types: types.map { Int32($0) },
                         merges: merges, bos: int32(vocab["bos"]), eos: int32(vocab["eos"]),
                         reference: reference, inputs: inputs)
}

private let sharedFixture: Result<SmolLMFixture, any Error> = Result { try loadFixture() }

private func fixture() throws -> SmolLMFixture { try sharedFixture.get() }

/// The first place two id lists differ, for a readable failure.
private func firstDifference(_ a: [Int32], _ b: [Int32]) -> String {
    let index = zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(a.count, b.count)
    let lower = max(0, index - 3)
    return "at \(index): \(Array(a[lower..<min(a.count, index + 4)])) vs \(Array(b[lower..<min(b.count, index + 4)])) "
        + "(lengths \(a.count), \(b.count))"
}

// MARK: - SmolLM2 vocabulary

/// `swift test --filter TokenizerTests` runs both nested suites.
@Suite struct TokenizerTests {
    @Suite("SmolLM2 vocabulary from the GGUF")
    struct SmolLM2Vocabulary {
        @Test func vocabularyFacts() throws {
            let fixture = try fixture()
            let tokenizer = fixture.tokenizer
            #expect(tokenizer.vocabularySize == 49152)
            #expect(tokenizer.preTokenizer == "smollm")
            #expect(tokenizer.bosID == 1)
            #expect(tokenizer.eosID == 2)
            #expect(tokenizer.tokenText(1) == "<|im_start|>")
            #expect(tokenizer.tokenText(2) == "<|im_end|>")
            #expect(tokenizer.tokenID("<|endoftext|>") == 0)
            #expect(tokenizer.isEndOfGeneration(2))
            #expect(tokenizer.isEndOfGeneration(0))  // <|endoftext|>
            #expect(!tokenizer.isEndOfGeneration(1))
            #expect(!tokenizer.isEndOfGeneration(504))
            #expect(!tokenizer.isEndOfGeneration(-1))
            #expect(tokenizer.encode("") == [])
            #expect(tokenizer.encode("", addSpecial: true) == (tokenizer.addBOS ? [1] : []))
        }

        @Test("round trip of wikitext2 test and valid, byte for byte",
              arguments: ["wikitext2-test.txt", "wikitext2-valid.txt"])
        func roundTrip(file: String) throws {
            let tokenizer = try fixture().tokenizer
            let data = try Data(contentsOf: Paths.sharedData(file))
            let text = String(decoding: data, as: UTF8.self)
            #expect(Array(text.utf8) == [UInt8](data), "\(file) is not valid UTF-8")
            let start = Date()
            let ids = tokenizer.encode(text)
            let seconds = Date().timeIntervalSince(start)
            print("TokenizerTests: \(file): \(data.count) bytes → \(ids.count) tokens in "
                  + String(format: "%.3f s (%.2f MB/s, this build's optimization level)",
                           seconds, Double(data.count) / seconds / 1e6))
            #expect(ids.allSatisfy { $0 >= 0 && Int($0) < tokenizer.vocabularySize })
            let bytes = tokenizer.decodeBytes(ids)
            #expect(bytes == [UInt8](data), "decodeBytes(encode(\(file))) differs from the file")
            #expect(tokenizer.decode(ids) == text)
        }

        @Test("ids match the Python reference (smollm, and gpt2 / llama-bpe scanners on the same vocab)",
              arguments: ["smollm", "gpt2", "llama-bpe"])
        func matchesReference(pre: String) throws {
            let fixture = try fixture()
            let tokenizer = pre == "smollm" ? fixture.tokenizer
                : try BPETokenizer(tokens: fixture.tokens, tokenTypes: fixture.types, merges: fixture.merges,
                                   preTokenizer: pre, bos: fixture.bos, eos: fixture.eos, unknown: 0,
                                   addBOS: false)
            let reference = try #require(fixture.reference[pre])
            try #require(reference.count == fixture.inputs.count)
            for (input, expected) in zip(fixture.inputs, reference) {
                let ids = tokenizer.encode(input.text, parseSpecial: input.parseSpecial)
                let sameIDs = ids == expected.ids
                #expect(sameIDs, "\(pre) \(input.name): ids differ \(firstDifference(ids, expected.ids))")
                if !input.text.contains("<|") {
                    let pieces = tokenizer.preTokenize(input.text)
                    let firstDifferent = zip(pieces, expected.pieces).enumerated()
                        .first { $0.element.0.unicodeScalars.elementsEqual($0.element.1.unicodeScalars) == false }
                    let samePieces = pieces.count == expected.pieces.count && firstDifferent == nil
                    let where_ = firstDifferent.map { "\($0.offset): \($0.element.0.debugDescription) vs \($0.element.1.debugDescription)" }
                        ?? "the end (\(pieces.count) vs \(expected.pieces.count) pieces)"
                    #expect(samePieces, "\(pre) \(input.name): pre-tokens differ at \(where_)")
                }
                #expect(tokenizer.decode(ids) == input.text)
            }
        }

        @Test func knownIDs() throws {
            let tokenizer = try fixture().tokenizer
            // Digits are single tokens, never joined to a space or to each other (smollm's `\p{N}`).
            let numbers = tokenizer.encode("12345 3.14159")
            #expect(numbers.count == 13)
            #expect(numbers.map { tokenizer.tokenText($0) ?? "?" }
                    == ["1", "2", "3", "4", "5", "Ġ", "3", ".", "1", "4", "1", "5", "9"])
            #expect(tokenizer.encode("The capital of France is").map { tokenizer.tokenText($0) ?? "?" }
                    == ["The", "Ġcapital", "Ġof", "ĠFrance", "Ġis"])
        }

        @Test func specialTokens() throws {
            let tokenizer = try fixture().tokenizer
            let text = "<|im_start|>user\nhi<|im_end|>"
            let ids = tokenizer.encode(text)
            #expect(ids.first == 1)
            #expect(ids.last == 2)
            #expect(ids == [1] + tokenizer.encode("user\nhi") + [2])
            #expect(tokenizer.decode(ids) == text)
            #expect(tokenizer.decode(ids, skipSpecial: true) == "user\nhi")

            let plain = tokenizer.encode(text, parseSpecial: false)
            #expect(!plain.contains(1) && !plain.contains(2))
            #expect(plain.count > 6)
            #expect(plain.allSatisfy { tokenizer.tokenType($0) == BPETokenizer.TokenType.normal })
            #expect(tokenizer.decode(plain) == text)

            // Adjacent and repeated special tokens, and all control tokens.
            #expect(tokenizer.encode("<|im_end|><|im_end|><|endoftext|>") == [2, 2, 0])
            #expect(tokenizer.encode("<|im_start|>assistant\n") == [1] + tokenizer.encode("assistant\n"))
            for id in Int32(0)..<17 {
                let text = try #require(tokenizer.tokenText(id))
                #expect(tokenizer.encode("x" + text + "y") == tokenizer.encode("x") + [id] + tokenizer.encode("y"))
            }
            // A partial special token is text.
            #expect(!tokenizer.encode("<|im_start").contains(1))
        }

        @Test func decodeNeverTraps() throws {
            let tokenizer = try fixture().tokenizer
            let size = Int32(tokenizer.vocabularySize)
            var generator = SplitMix64(seed: 42)
            let edge: [Int32] = [-1, Int32.min, Int32.max, size, size + 1, -size, 0, size - 1]
            #expect(tokenizer.decodeBytes([-1]) == BPETokenizer.replacementBytes)
            #expect(tokenizer.decode([size, Int32.min]) == "\u{FFFD}\u{FFFD}")
            #expect(tokenizer.tokenText(size) == nil && tokenizer.tokenText(-5) == nil)
            #expect(tokenizer.tokenBytes(Int32.max) == nil && tokenizer.tokenType(-1) == nil)
            for _ in 0..<200 {
                var ids = edge
                for _ in 0..<50 {
                    let raw = Int32(truncatingIfNeeded: generator.next())
                    ids.append(generator.next() % 2 == 0 ? raw : raw % size)
                }
                ids.shuffle(using: &generator)
                let bytes = tokenizer.decodeBytes(ids)
                var expected: [UInt8] = []
                for id in ids {
                    expected += tokenizer.tokenBytes(id) ?? BPETokenizer.replacementBytes
                }
                #expect(bytes == expected)
                _ = tokenizer.decode(ids)
            }
        }
    }

    // MARK: - Data-built and tokenizer.json tokenizers

    @Suite("construction and tokenizer.json")
    struct Construction {
        /// The 256 byte tokens, then `extra`.
        static func byteVocabulary(extra: [String]) -> [String] {
            (0..<256).map { BPEByteLevel.encode([UInt8($0)]) } + extra
        }

        @Test func byteLevelAlphabet() {
            #expect(BPEByteLevel.encode(Array(" \n".utf8)) == "ĠĊ")
            #expect(BPEByteLevel.encode([0, 0x7F, 0xAD, 0xFF]) == "ĀġŃÿ")
            #expect(Set(BPEByteLevel.scalarForByte).count == 256)
            #expect(BPEByteLevel.decode("Ġhello") == Array(" hello".utf8))
            #expect(BPEByteLevel.decode("東") == nil)
        }

        @Test func errorsNameTheProblem() {
            let tokens = Self.byteVocabulary(extra: ["ab"])
            func build(tokens: [String] = tokens, types: [Int32]? = nil, merges: [String] = ["a b"],
                       pre: String = "smollm", bos: Int32? = nil, unknown: Int32? = nil) throws -> BPETokenizer {
                try BPETokenizer(tokens: tokens, tokenTypes: types, merges: merges, preTokenizer: pre,
                                 bos: bos, eos: nil, unknown: unknown, addBOS: false)
            }
            #expect(throws: TokenizerError.unknownPreTokenizer("nonsense", supported: BPEPreTokenizer.supportedNames)) {
                try build(pre: "nonsense")
            }
            #expect("\(TokenizerError.unknownPreTokenizer("nonsense", supported: ["smollm"]))".contains("'nonsense'"))
            #expect(throws: TokenizerError.invalidVocabulary("3 token types for 257 tokens")) {
                try build(types: [1, 1, 1])
            }
            #expect(throws: TokenizerError.invalidVocabulary("bos token id 400 is outside the vocabulary 0..<257")) {
                try build(bos: 400)
            }
            #expect(throws: TokenizerError.invalidMerge(index: 1, merge: "a c", reason: "the merged text 'ac' is not a token")) {
                try build(merges: ["a b", "a c"])
            }
            #expect(throws: TokenizerError.invalidMerge(index: 0, merge: "ab", reason: "no space separates its two parts")) {
                try build(merges: ["ab"])
            }
            #expect(throws: TokenizerError.missingByteToken(byte: 0x20)) {
                try build(tokens: tokens.filter { $0 != "Ġ" })
            }
            #expect(throws: TokenizerError.invalidVocabulary("the token list is empty")) {
                try build(tokens: [], merges: [])
            }
        }

        @Test func smallVocabularyFromData() throws {
            let tokens = Self.byteVocabulary(extra: ["ab", "Ġab", "<ctl>", "<user>"])
            var types = [Int32](repeating: 1, count: tokens.count)
            types[258] = 3
            types[259] = 4
            let tokenizer = try BPETokenizer(tokens: tokens, tokenTypes: types, merges: ["a b", "Ġ ab"],
                                             preTokenizer: "gpt2", bos: 258, eos: nil, unknown: nil, addBOS: true)
            let a = Int32(Character("a").asciiValue ?? 0)
            #expect(tokenizer.encode("ab ab a") == [256, 257, 32, a])
            #expect(tokenizer.encode("ab", addSpecial: true) == [258, 256])
            #expect(tokenizer.encode("x<ctl>y") == [Int32(UInt8(ascii: "x")), 258, Int32(UInt8(ascii: "y"))])
            #expect(!tokenizer.encode("x<ctl>y", parseSpecial: false).contains(258))
            // User-defined tokens are matched even when special tokens are not parsed.
            #expect(tokenizer.encode("<user>", parseSpecial: false) == [259])
            // A long run of one letter goes through the heap without quadratic blow-up.
            let long = String(repeating: "ab", count: 50_000)
            #expect(tokenizer.encode(long) == [Int32](repeating: 256, count: 50_000))
        }

        static func writeJSON(_ object: Any, name: String = "tokenizer.json") throws -> (directory: URL, path: String) {
            let directory = FileManager.default.temporaryDirectory
                .appendingPathComponent("nmc-tokenizer-json-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let url = directory.appendingPathComponent(name)
            try JSONSerialization.data(withJSONObject: object).write(to: url)
            return (directory, url.path)
        }

        /// A small SmolLM-shaped tokenizer.json: `<unk>` stands in for bytes without a token.
        static func fixtureJSON(merges: [Any] = ["a b", ["Ġ", "ab"] as [Any], "h i"]) -> [String: Any] {
            [
                "version": "1.0",
                "added_tokens": [
                    ["id": 0, "content": "<|endoftext|>", "special": true, "single_word": false,
                     "lstrip": false, "rstrip": false, "normalized": false],
                    ["id": 1, "content": "<|im_start|>", "special": true],
                    ["id": 2, "content": "<|im_end|>", "special": true],
                    ["id": 11, "content": "<tool>", "special": false],
                ],
                "normalizer": NSNull(),
                "pre_tokenizer": [
                    "type": "Sequence",
                    "pretokenizers": [
                        ["type": "Digits", "individual_digits": true],
                        ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true],
                    ],
                ],
                "model": [
                    "type": "BPE", "dropout": NSNull(), "unk_token": "<unk>", "fuse_unk": false,
                    "byte_fallback": false, "ignore_merges": false,
                    "vocab": ["<|endoftext|>": 0, "<|im_start|>": 1, "<|im_end|>": 2, "<unk>": 3,
                              "a": 4, "b": 5, "Ġ": 6, "ab": 7, "Ġab": 8, "1": 9, "2": 10,
                              "h": 12, "i": 13, "hi": 14, "Ċ": 15],
                    "merges": merges,
                ],
            ]
        }

        @Test func tokenizerJSONFixture() throws {
            let (directory, path) = try Self.writeJSON(Self.fixtureJSON())
            defer { try? FileManager.default.removeItem(at: directory) }
            let config: [String: Any] = ["bos_token": "<|im_start|>", "eos_token": ["content": "<|im_end|>"],
                                         "add_bos_token": false]
            try JSONSerialization.data(withJSONObject: config)
                .write(to: directory.appendingPathComponent("tokenizer_config.json"))
            let tokenizer = try BPETokenizer.fromTokenizerJSON(path: path)
            #expect(tokenizer.vocabularySize == 16)
            #expect(tokenizer.preTokenizer == "smollm")
            #expect(tokenizer.bosID == 1 && tokenizer.eosID == 2 && tokenizer.unknownID == 3)
            #expect(tokenizer.isEndOfGeneration(2))
            #expect(tokenizer.encode("ab ab") == [7, 8])
            #expect(tokenizer.encode("12") == [9, 10])
            #expect(tokenizer.encode("abc") == [7, 3])  // no token for "c": <unk>
            #expect(tokenizer.encode("<|im_start|>hi\n<|im_end|>") == [1, 14, 15, 2])
            #expect(!tokenizer.encode("<|im_start|>", parseSpecial: false).contains(1))
            #expect(tokenizer.encode("<tool>", parseSpecial: false) == [11])
            #expect(tokenizer.tokenType(11) == BPETokenizer.TokenType.userDefined)
            #expect(tokenizer.decode([1, 14, 15, 2]) == "<|im_start|>hi\n<|im_end|>")
            #expect(tokenizer.decode([1, 14, 2], skipSpecial: true) == "hi")
            #expect(tokenizer.decode([7, 99, -3]) == "ab\u{FFFD}\u{FFFD}")
        }

        @Test func tokenizerJSONErrors() throws {
            func failure(_ object: Any?, raw: String? = nil) throws -> String {
                let directory = FileManager.default.temporaryDirectory
                    .appendingPathComponent("nmc-tokenizer-json-\(UUID().uuidString)")
                try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                defer { try? FileManager.default.removeItem(at: directory) }
                let url = directory.appendingPathComponent("tokenizer.json")
                if let raw {
                    try raw.write(to: url, atomically: true, encoding: .utf8)
                } else if let object {
                    try JSONSerialization.data(withJSONObject: object).write(to: url)
                }
                do {
                    _ = try BPETokenizer.fromTokenizerJSON(path: url.path)
                    return "no error"
                } catch let error as TokenizerError {
                    return error.description
                }
            }
            func without(_ key: String, inModel: Bool = false) -> [String: Any] {
                var object = Self.fixtureJSON()
                if inModel {
                    var model = object["model"] as? [String: Any] ?? [:]
                    model[key] = nil
                    object["model"] = model
                } else {
                    object[key] = nil
                }
                return object
            }
            func with(model key: String, _ value: Any) -> [String: Any] {
                var object = Self.fixtureJSON()
                var model = object["model"] as? [String: Any] ?? [:]
                model[key] = value
                object["model"] = model
                return object
            }
            #expect(try failure(nil, raw: "{\"model\": ").contains("not valid JSON"))
            #expect(try failure(nil, raw: "[1, 2]").contains("top level is not an object"))
            #expect(try failure(nil).contains("cannot read"))  // no file written
            #expect(try failure(without("model")).contains("missing object 'model'"))
            #expect(try failure(without("vocab", inModel: true)).contains("model.vocab"))
            #expect(try failure(without("merges", inModel: true)).contains("model.merges"))
            #expect(try failure(Self.fixtureJSON(merges: ["a b", 7] as [Any])).contains("model.merges[1]"))
            #expect(try failure(Self.fixtureJSON(merges: ["ab"])).contains("model.merges[0]"))
            #expect(try failure(Self.fixtureJSON(merges: ["a x"])).contains("'x' is not a token"))
            #expect(try failure(with(model: "type", "WordPiece")).contains("only BPE"))
            #expect(try failure(with(model: "vocab", ["a": "zero"])).contains("model.vocab['a']"))
            #expect(try failure(with(model: "vocab", ["a": 3, "b": 5])).contains("no token has id 4"))
            #expect(try failure(without("pre_tokenizer")).contains("pre_tokenizer"))
            var metaspace = Self.fixtureJSON()
            metaspace["pre_tokenizer"] = ["type": "Metaspace", "replacement": "▁"]
            #expect(try failure(metaspace).contains("Metaspace"))
            var normalized = Self.fixtureJSON()
            normalized["normalizer"] = ["type": "NFC"]
            #expect(try failure(normalized).contains("normalizer 'NFC'"))
            var badAdded = Self.fixtureJSON()
            badAdded["added_tokens"] = [["id": 5, "content": "<x>", "special": true]]
            #expect(try failure(badAdded).contains("added_tokens[0]"))
        }

        @Test func tokenizerJSONPreTokenizers() throws {
            let llama3 = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
            let split: [String: Any] = [
                "type": "Sequence",
                "pretokenizers": [
                    ["type": "Split", "pattern": ["Regex": llama3], "behavior": "Isolated", "invert": false],
                    ["type": "ByteLevel", "add_prefix_space": false, "use_regex": false],
                ],
            ]
            #expect(try BPETokenizer.preTokenizerName(split, path: "t.json") == "llama-bpe")
            #expect(try BPETokenizer.preTokenizerName(["type": "ByteLevel", "add_prefix_space": false],
                                                      path: "t.json") == "gpt2")
            #expect(throws: TokenizerError.self) {
                try BPETokenizer.preTokenizerName(["type": "ByteLevel", "add_prefix_space": true], path: "t.json")
            }
        }
    }
}
