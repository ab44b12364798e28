import NMPasses

/// Passes that need more than NMIR — running the model (calibration) — live in the driver, and
/// join the standard passes here. The tools parse pipelines against this registry.
public enum DriverPasses {
    public static let registry = PassRegistry(PassRegistry.standard.passes + [CalibratePass.self])
}
