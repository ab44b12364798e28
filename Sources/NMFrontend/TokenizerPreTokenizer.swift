/// The pre-tokenizers of llama.cpp's byte-level BPE vocabularies (`llm_tokenizer_bpe` in
/// llama.cpp's `src/llama-vocab.cpp`), written as hand-made scanners over Unicode scalar classes
/// instead of regular expressions. They follow llama.cpp's own scanners
/// (`unicode_regex_split_custom_gpt2` / `_llama3` in `src/unicode.cpp`), which implement:
///
/// - gpt2 (`gpt-2`, `gpt2`, `phi-2`, `mpt`, `olmo`, `jais`):
///   `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+`
/// - the same after a first pass `\p{N}` that isolates every number scalar
///   (`smollm`, `starcoder`, `refact`, `command-r`, `codeshell`, `exaone`, `minerva-7b`):
///   llama.cpp applies its regexes in sequence, each to the pieces the previous one left, so
///   `\p{N}` makes every digit a piece of its own before the GPT-2 expression runs, and
///   ` ?\p{N}+` can never join a space or a second digit to a digit.
/// - llama3 (`llama3`, `llama-v3`, `llama-bpe`, `dbrx`, `smaug-bpe`):
///   `(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`
/// - qwen2 (`qwen2`, `stablelm2`, `deepseek-r1-qwen`): the llama3 expression with `\p{N}` for
///   `\p{N}{1,3}`.
///
/// Text that no alternative matches becomes a piece of its own, as in llama.cpp and in Hugging
/// Face's `Split(behavior: Isolated)`. `\p{L}` is the general categories Lu Ll Lt Lm Lo, `\p{N}`
/// is Nd Nl No, `\s` is the Unicode White_Space property.
struct BPEPreTokenizer: Sendable, Equatable {
    enum Grammar: Sendable, Equatable {
        case gpt2(isolateDigits: Bool)
        case llama3(digitGroup: Int)
    }

    let name: String
    let grammar: Grammar
    /// llama.cpp's `tokenizer_ignore_merges`: a pre-token that is itself a token is emitted whole.
    let ignoresMerges: Bool

    static let supportedNames: [String] = [
        "gpt2", "gpt-2", "phi-2", "mpt", "olmo", "jais",
        "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b",
        "llama3", "llama-v3", "llama-bpe", "dbrx", "smaug-bpe",
        "qwen2", "stablelm2", "deepseek-r1-qwen",
    ]

    /// The pre-tokenizer llama.cpp picks for a GGUF `tokenizer.ggml.pre` value.
    init(name: String) throws {
        switch name {
        case "gpt2", "gpt-2", "phi-2", "mpt", "olmo", "jais":
            self.init(name: name, grammar: .gpt2(isolateDigits: false), ignoresMerges: false)
        case "smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b":
            self.init(name: name, grammar: .gpt2(isolateDigits: true), ignoresMerges: false)
        case "llama3", "llama-v3", "llama-bpe":
            self.init(name: name, grammar: .llama3(digitGroup: 3), ignoresMerges: true)
        case "dbrx", "smaug-bpe":
            self.init(name: name, grammar: .llama3(digitGroup: 3), ignoresMerges: false)
        case "qwen2", "stablelm2", "deepseek-r1-qwen":
            self.init(name: name, grammar: .llama3(digitGroup: 1), ignoresMerges: false)
        default:
            throw TokenizerError.unknownPreTokenizer(name, supported: Self.supportedNames)
        }
    }

    init(name: String, grammar: Grammar, ignoresMerges: Bool) {
        self.name = name
        self.grammar = grammar
        self.ignoresMerges = ignoresMerges
    }

    // MARK: Scalar classes

    /// Class bits of a scalar. `present` is set for every scalar, so a class of 0 means "past
    /// the end of the piece" (llama.cpp's empty flags for out-of-range positions).
    static let letter: UInt8 = 1
    static let number: UInt8 = 2
    static let whitespace: UInt8 = 4
    static let present: UInt8 = 8

    private static let asciiClasses: [UInt8] = (0..<128).map { value -> UInt8 in
        switch value {
        case 0x41...0x5A, 0x61...0x7A: return present | letter
        case 0x30...0x39: return present | number
        case 0x09...0x0D, 0x20: return present | whitespace
        default: return present
        }
    }

    static func classify(_ value: UInt32) -> UInt8 {
        if value < 128 { return asciiClasses[Int(value)] }
        guard let scalar = Unicode.Scalar(value) else { return present }
        let properties = scalar.properties
        var classes = present
        if properties.isWhitespace { classes |= whitespace }
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter:
            classes |= letter
        case .decimalNumber, .letterNumber, .otherNumber:
            classes |= number
        default:
            break
        }
        return classes
    }

    // MARK: Splitting

    /// Appends to `ends` the end (exclusive scalar index) of each pre-token of the scalars
    /// `0..<count`; consecutive ends delimit the pieces, which cover the input without gaps.
    func split(scalars: UnsafeBufferPointer<UInt32>, classes: UnsafeBufferPointer<UInt8>,
               count: Int, ends: inout [Int]) {
        let count = min(count, scalars.count, classes.count)
        switch grammar {
        case .gpt2(isolateDigits: false):
            Self.scanGPT2(scalars, classes, lower: 0, upper: count, ends: &ends)
        case .gpt2(isolateDigits: true):
            var runStart = 0
            for index in 0..<count where classes[index] & Self.number != 0 {
                if runStart < index {
                    Self.scanGPT2(scalars, classes, lower: runStart, upper: index, ends: &ends)
                }
                ends.append(index + 1)
                runStart = index + 1
            }
            if runStart < count {
                Self.scanGPT2(scalars, classes, lower: runStart, upper: count, ends: &ends)
            }
        case let .llama3(digitGroup):
            Self.scanLlama3(scalars, classes, lower: 0, upper: count, digitGroup: max(1, digitGroup),
                            ends: &ends)
        }
    }

    private static let apostrophe: UInt32 = 0x27
    private static let space: UInt32 = 0x20
    private static let carriageReturn: UInt32 = 0x0D
    private static let lineFeed: UInt32 = 0x0A

    /// The length of a contraction (`'s 't 'm 'd 're 've 'll`) starting at `pos`, or 0.
    @inline(__always)
    private static func contractionLength(_ scalars: UnsafeBufferPointer<UInt32>, at pos: Int,
                                          upper: Int, ignoreCase: Bool) -> Int {
        guard scalars[pos] == apostrophe, pos + 1 < upper else { return 0 }
        func lower(_ value: UInt32) -> UInt32 {
            ignoreCase && (0x41...0x5A).contains(value) ? value + 0x20 : value
        }
        let next = lower(scalars[pos + 1])
        switch next {
        case 0x73, 0x74, 0x6D, 0x64: return 2  // s t m d
        default: break
        }
        guard pos + 2 < upper else { return 0 }
        let nextNext = lower(scalars[pos + 2])
        switch (next, nextNext) {
        case (0x72, 0x65), (0x76, 0x65), (0x6C, 0x6C): return 3  // re ve ll
        default: return 0
        }
    }

    /// `'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+` over
    /// `lower..<upper`, which is all the regex sees (its end is the end of the text).
    private static func scanGPT2(_ scalars: UnsafeBufferPointer<UInt32>,
                                 _ classes: UnsafeBufferPointer<UInt8>,
                                 lower: Int, upper: Int, ends: inout [Int]) {
        @inline(__always) func classAt(_ pos: Int) -> UInt8 { pos < upper ? classes[pos] : 0 }
        let letterOrNumberOrSpace = letter | number | whitespace
        var pos = lower
        while pos < upper {
            let contraction = contractionLength(scalars, at: pos, upper: upper, ignoreCase: false)
            if contraction > 0 {
                pos += contraction
                ends.append(pos)
                continue
            }
            let leadingSpace = scalars[pos] == space
            let first = leadingSpace ? classAt(pos + 1) : classes[pos]
            // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`
            let runClass: UInt8? = first & letter != 0 ? letter
                : first & number != 0 ? number
                : (first != 0 && first & letterOrNumberOrSpace == 0) ? 0 : nil
            if let runClass {
                if leadingSpace { pos += 1 }
                if runClass == 0 {
                    while classAt(pos) != 0 && classAt(pos) & letterOrNumberOrSpace == 0 { pos += 1 }
                } else {
                    while classAt(pos) & runClass != 0 { pos += 1 }
                }
                ends.append(pos)
                continue
            }
            var spaces = 0
            while classAt(pos + spaces) & whitespace != 0 { spaces += 1 }
            if spaces > 1 && pos + spaces < upper {
                // `\s+(?!\S)`: leave the last white space to start the next word.
                pos += spaces - 1
            } else if spaces > 0 {
                pos += spaces  // `\s+`
            } else {
                pos += 1  // nothing matches: the scalar is a piece of its own
            }
            ends.append(pos)
        }
    }

    /// The llama3 expression over `lower..<upper`, with `\p{N}{1,digitGroup}`.
    private static func scanLlama3(_ scalars: UnsafeBufferPointer<UInt32>,
                                   _ classes: UnsafeBufferPointer<UInt8>,
                                   lower: Int, upper: Int, digitGroup: Int, ends: inout [Int]) {
        @inline(__always) func classAt(_ pos: Int) -> UInt8 { pos < upper ? classes[pos] : 0 }
        @inline(__always) func isNewline(_ pos: Int) -> Bool {
            pos < upper && (scalars[pos] == carriageReturn || scalars[pos] == lineFeed)
        }
        let letterOrNumberOrSpace = letter | number | whitespace
        var pos = lower
        while pos < upper {
            let contraction = contractionLength(scalars, at: pos, upper: upper, ignoreCase: true)
            if contraction > 0 {
                pos += contraction
                ends.append(pos)
                continue
            }
            let scalar = scalars[pos]
            let here = classes[pos]
            // `[^\r\n\p{L}\p{N}]?\p{L}+`
            if !isNewline(pos) && here & number == 0
                && (here & letter != 0 || classAt(pos + 1) & letter != 0) {
                pos += 1
                while classAt(pos) & letter != 0 { pos += 1 }
                ends.append(pos)
                continue
            }
            // `\p{N}{1,digitGroup}`
            if here & number != 0 {
                var groupStart = pos
                while classAt(pos) & number != 0 {
                    pos += 1
                    if pos - groupStart >= digitGroup {
                        ends.append(pos)
                        groupStart = pos
                    }
                }
                if pos > groupStart { ends.append(pos) }
                continue
            }
            // ` ?[^\s\p{L}\p{N}]+[\r\n]*`
            let first = scalar == space ? classAt(pos + 1) : here
            if first & letterOrNumberOrSpace == 0 {
                if scalar == space { pos += 1 }
                while classAt(pos) != 0 && classAt(pos) & letterOrNumberOrSpace == 0 { pos += 1 }
                while isNewline(pos) { pos += 1 }
                ends.append(pos)
                continue
            }
            // `\s*[\r\n]+`, `\s+(?!\S)`, `\s+`
            var spaces = 0
            var afterLastNewline = 0
            while classAt(pos + spaces) & whitespace != 0 {
                if isNewline(pos + spaces) { afterLastNewline = pos + spaces + 1 }
                spaces += 1
            }
            if afterLastNewline > 0 {
                pos = afterLastNewline
            } else if spaces > 1 && pos + spaces < upper {
                pos += spaces - 1
            } else if spaces > 0 {
                pos += spaces
            } else {
                pos += 1
            }
            ends.append(pos)
        }
    }
}
