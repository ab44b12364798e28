import FuzzSupport
import NMFrontend

/// The GGUF reader: the input is written to a file and opened as `nmc import` and `nmc inspect`
/// open a model (the reader maps a path). Then everything a caller reads from an opened file:
/// every metadata accessor on every key, the LLaMA configuration and the tokenizer built from
/// the metadata, every tensor's bytes and dequantized values, and the whole import
/// (`ModelImporter.load`: weights checked against the configuration, the graph built).
let scratch = ScratchFolder("fuzz-gguf")

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzGGUF(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let path = scratch.write("input.gguf", fuzzBytes(data, size))
    let file: GGUFFile
    do {
        file = try GGUFFile.open(path: path)
    } catch {
        report("\(error)")
        return 0
    }
    report("opened: \(file.metadataKeys.count) metadata keys, \(file.tensors.count) tensors")
    for key in file.metadataKeys {
        _ = file.value(key)?.description
        _ = file.uint32(key)
        _ = file.uint64(key)
        _ = file.int32(key)
        _ = file.int64(key)
        _ = file.int(key)
        _ = file.float(key)
        _ = file.double(key)
        _ = file.bool(key)
        _ = file.string(key)
        _ = file.array(key)?.values.count
        _ = file.stringArray(key)
        _ = file.int32Array(key)
        _ = file.floatArray(key)
        _ = file.metadataError(key, expected: "something else").description
    }
    _ = file.metadataError("no.such.key", expected: "anything").description
    do { report("config: \(try LlamaConfig(gguf: file))") } catch { report("\(error)") }
    do {
        let tokenizer = try TokenizerSpec(gguf: file).makeTokenizer()
        let ids = tokenizer.encode("Hello, world! 123 <|im_start|>user\n ab  <|im_end|>", addSpecial: true)
        report("tokenizer: \(tokenizer.vocabularySize) tokens, \(ids)")
        _ = tokenizer.decode(ids)
        _ = tokenizer.decode([-1, 0, Int32.max], skipSpecial: true)
    } catch {
        report("\(error)")
    }
    for tensor in file.tensors {
        _ = file.tensor(named: tensor.name)
        _ = tensor.shape
        let byteSum = file.withRawBytes(of: tensor) { $0.reduce(0) { $0 &+ Int($1) } }
        _ = byteSum
        do { report("\(tensor.name): \(try file.dequantize(tensor).count) values") } catch { report("\(error)") }
    }
    // What `nmc import model.gguf` does with it: configuration, tokenizer, every weight checked
    // against the shape the configuration asks for, and the graph built.
    do {
        let model = try ModelImporter.load(path: path)
        report("imported: \(model.module.functions.count) functions, \(model.config.numHiddenLayers) layers")
    } catch {
        report("\(error)")
    }
    return 0
}
