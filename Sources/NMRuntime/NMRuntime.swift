import NMIR

/// Running compiled artifacts (buffers, thread pool, KV cache, sampling, CUDA) arrives with the
/// CPU and PTX issues.
public enum Runtime {
    public static let isAvailable = false
}
