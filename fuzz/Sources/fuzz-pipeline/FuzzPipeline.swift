import FuzzSupport
import NMDriver
import NMIR
import NMPasses

/// The pass-pipeline reader (`--passes`, `nmc compile`'s pipelines), against the registry the
/// tools use. A pipeline that parses must print (`PipelineStep.description`) as text that
/// parses to the same steps.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPipeline(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: fuzzBytes(data, size), as: UTF8.self)
    let parser = PipelineParser(registry: DriverPasses.registry)
    let steps: [PipelineStep]
    do {
        steps = try parser.parse(text)
    } catch let d as Diagnostic {
        report(d.rendered(source: SourceText(name: "<pipeline>", text: text)))
        return 0
    } catch {
        report("\(error)")
        return 0
    }
    let printed = steps.map(\.description).joined(separator: ",")
    report("parsed: \(printed)")
    let again: [PipelineStep]
    do {
        again = try parser.parse(printed)
    } catch {
        fatalError("the printed pipeline '\(printed)' does not parse: \(error)")
    }
    guard again.map(\.description) == steps.map(\.description),
          zip(again, steps).allSatisfy({ $0.options.values.mapValues(\.description) == $1.options.values.mapValues(\.description) }) else {
        fatalError("the printed pipeline '\(printed)' parses to other steps")
    }
    return 0
}
