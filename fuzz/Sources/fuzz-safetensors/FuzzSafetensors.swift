import Foundation
import FuzzSupport
import NMFrontend
import NMIR

/// The Hugging Face reader: the input holds up to four files, separated by `fileSeparator`:
/// `config.json`, `model.safetensors`, and when a third part is present, the third part is
/// `model.safetensors.index.json` and the second and fourth are the shards
/// `model-00001-of-00002.safetensors` and `model-00002-of-00002.safetensors` (so the sharded
/// path is fuzzed too). The folder is opened as `nmc import` opens one; every tensor is read as
/// f32, and the configuration is decoded. NMIR's in-memory safetensors parser (the weight file
/// beside a `.nmir`) reads the second part too.
let scratch = ScratchFolder("fuzz-safetensors")
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
