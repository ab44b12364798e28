import NMIR

/// NMIR → PTX. The linear kernels (`LinearKernel`, `TiledLinearKernel`), their weight layouts
/// (`KernelWeightLayout`) and the packed-INT4 host reference (`PackedINT4Weight`) exist;
/// lowering a whole module (`nmc compile --target ptx`: the other decode-step ops, the manifest)
/// does not yet, so the compile target stays unavailable.
public enum PTXTarget {
    public static let isAvailable = false
}
