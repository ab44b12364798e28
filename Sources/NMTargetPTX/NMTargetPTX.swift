import NMIR

/// NMIR → PTX. The linear kernels (`LinearKernel`, `TiledLinearKernel`) and their weight layouts
/// (`KernelWeightLayout`), the other decode-step kernels (`DecodeStepKernels`), the lowering of a
/// module's @decode into one CUDA graph's launches (`DecodeLowering`, `DecodePlan`) and the seeded
/// synthetic weights (`SyntheticWeights`, `SyntheticWeightKernels`). `nmc compile --target ptx`
/// writes the artifact; `nmc-run DIR` runs it.
public enum PTXTarget {
    public static let isAvailable = true
}
