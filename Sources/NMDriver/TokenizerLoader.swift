import Foundation
import NMFrontend

/// Finds a model's tokenizer: in a `.gguf` file, a `tokenizer.nmc.json`, a Hugging Face
/// `tokenizer.json`, or a folder holding one of the last two.
public enum TokenizerLoader {
    public static func load(from path: String) throws -> BPETokenizer {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw ToolError("no tokenizer at '\(path)'")
        }
        if isDirectory.boolValue {
            for name in [TokenizerSpec.fileName, "tokenizer.json"] where FileManager.default.fileExists(atPath: path + "/" + name) {
                return try load(from: path + "/" + name)
            }
            throw ToolError("'\(path)' holds no \(TokenizerSpec.fileName) or tokenizer.json")
        }
        if path.hasSuffix(".gguf") { return try TokenizerSpec(gguf: GGUFFile.open(path: path)).makeTokenizer() }
        if path.hasSuffix(TokenizerSpec.fileName) { return try TokenizerSpec.read(path: path).makeTokenizer() }
        return try BPETokenizer.fromTokenizerJSON(path: path)
    }
}
