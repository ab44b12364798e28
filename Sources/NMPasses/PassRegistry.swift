import NMIR

/// Every pass `nmc-opt --passes` and the driver's pipelines can name.
public struct PassRegistry: Sendable {
    public let passes: [any Pass.Type]

    public init(_ passes: [any Pass.Type]) { self.passes = passes }

    public static let standard = PassRegistry([
        CanonicalizePass.self, CSEPass.self, DCEPass.self, InferShapesPass.self, TestFailPass.self,
        NMPrunePass.self,
        QuantizeInt4Pass.self, FuseDequantMatmulPass.self, QuantizeActivationsPass.self,
    ])

    public subscript(name: String) -> (any Pass.Type)? { passes.first { $0.info.name == name } }

    public var names: [String] { passes.map { $0.info.name } }
}
