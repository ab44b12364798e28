import FuzzSupport
import NMFrontend

/// The Hugging Face tokenizer reader: the input is `tokenizer.json`, optionally followed by
/// `fileSeparator` and a `tokenizer_config.json` (bos / eos / add_bos_token), both written to a
/// folder and read with `BPETokenizer.fromTokenizerJSON`, as `nmc import` reads a Hugging Face
/// folder. A tokenizer that builds encodes and decodes a fixed text.
let scratch = ScratchFolder("fuzz-tokenizer-json")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTokenizerJSON(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let parts = splitFiles(fuzzBytes(data, size), limit: 2)
    let path = scratch.write("tokenizer.json", parts[0])
    if parts.count > 1 {
        scratch.write("tokenizer_config.json", parts[1])
    } else {
        scratch.remove("tokenizer_config.json")
    }
    do {
        let tokenizer = try BPETokenizer.fromTokenizerJSON(path: path)
        let ids = tokenizer.encode("Hello, world! 123 <|im_start|>user\n ab  <|im_end|>", addSpecial: true)
        report("tokenizer: \(tokenizer.vocabularySize) tokens, pre-tokenizer \(tokenizer.preTokenizer), \(ids)")
        _ = tokenizer.decode(ids)
        _ = tokenizer.decode([-1, 0, Int32.max], skipSpecial: true)
    } catch {
        report("\(error)")
    }
    return 0
}
