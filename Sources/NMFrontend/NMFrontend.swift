import NMIR

/// Model importers (GGUF, safetensors + config.json), the llama graph builder and tokenizers
/// arrive with the import issue; `nmc import` reports that until then.
public enum Frontend {
    public static let isAvailable = false
}
