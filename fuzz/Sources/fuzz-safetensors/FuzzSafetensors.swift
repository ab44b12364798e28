import Foundation
import FuzzSupport
import NMFrontend
import NMIR

/// The Hugging Face reader: the input holds up to four files, separated by `fileSeparator`:
/// `config.json`, `model.safetensors`, and when a third part is present, the third part is
/// `model.safetensors.index.json` and the second and fourth are the shards
/// `model-00001-of-00002.safetensors` and `model-00002-of-00002.safetensors` (so the sharded
/// path is fuzzed too). The folder is opened as `nmc import` opens one; every tensor is read as
/// f32, the configuration is decoded, and the folder is imported (`ModelImporter.load`, with a
/// fixed tokenizer.json) as `nmc import` does. NMIR's in-memory safetensors parser (the weight
/// file beside a `.nmir`) reads the second part too.
let scratch: ScratchFolder = {
    let folder = ScratchFolder("fuzz-safetensors")
    // The 256 byte tokens of GPT-2's byte-level alphabet, in byte order, no merges.
    let printable = Array(33...126) + Array(161...172) + Array(174...255)
    var extra = 256
    var vocab: [String] = []
    for b in 0..<256 {
        let scalar: Int
        if printable.contains(b) { scalar = b } else { scalar = extra; extra += 1 }
        vocab.append("\"\\u\(String(repeating: "0", count: 4 - String(scalar, radix: 16).count) + String(scalar, radix: 16))\": \(b)")
    }
    let json = #"{"model": {"type": "BPE", "vocab": {"# + vocab.joined(separator: ", ")
        + #"}, "merges": []}, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false}}"#
    folder.write("tokenizer.json", Array(json.utf8))
    return folder
}()
let fileNames = ["config.json", "model.safetensors", "model.safetensors.index.json",
                 "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafetensors(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let parts = splitFiles(fuzzBytes(data, size), limit: 4)
    for name in fileNames { scratch.remove(name) }
    scratch.write("config.json", parts[0])
    let weights = parts.count > 1 ? parts[1] : []
    if parts.count > 2 {
        scratch.write("model.safetensors.index.json", parts[2])
        scratch.write("model-00001-of-00002.safetensors", weights)
        if parts.count > 3 { scratch.write("model-00002-of-00002.safetensors", parts[3]) }
    } else if parts.count > 1 {
        scratch.write("model.safetensors", weights)
    }

    do { report("config: \(try LlamaConfig(configJSONData: Data(parts[0]), file: "config.json"))") } catch { report("\(error)") }
    do {
        let model = try SafetensorsModel.open(path: scratch.path)
        report("opened: \(model.shardFiles), \(model.tensors.count) tensors")
        for tensor in model.tensors {
            _ = model.tensor(named: tensor.name)
            _ = tensor.elementCount
            do { report("\(tensor.name): \(try model.floats(of: tensor).count) values") } catch { report("\(error)") }
        }
        _ = model.metadata.count
        do { _ = try model.config() } catch { report("\(error)") }
    } catch {
        report("\(error)")
    }
    // What `nmc import FOLDER` does with it, with a fixed byte-level tokenizer.json beside.
    do {
        let model = try ModelImporter.load(path: scratch.path)
        report("imported: \(model.module.functions.count) functions, \(model.config.numHiddenLayers) layers")
    } catch {
        report("\(error)")
    }
    do {
        let contents = try Safetensors.parse(bytes: weights, name: "model.safetensors")
        report("parsed: \(contents.tensors.count) tensors")
        for tensor in contents.tensors {
            _ = contents.info(tensor.name)
            _ = contents.bytes(of: tensor).count
        }
    } catch {
        report("\(error)")
    }
    return 0
}
