import FuzzSupport
import NMIR

/// The NMIR reader: parse and verify arbitrary bytes, as `nmc-opt` and `nmc compile` do with a
/// `.nmir` file. Errors are rendered with their source line and caret, as the tools print them.
/// A module that verifies must print, and its printed text must parse, verify, print the same
/// and compare equal (the printer/parser round trip that DESIGN.md promises for every op).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzNMIR(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let source = SourceText(name: "fuzz.nmir", bytes: fuzzBytes(data, size))
    let module: Module
    do {
        module = try Parser.parseAndVerify(source)
    } catch let d as Diagnostic {
        report(d.rendered(source: source))
        return 0
    } catch let list as DiagnosticList {
        for d in list.diagnostics { report(d.rendered(source: source)) }
        return 0
    } catch {
        report("\(error)")
        return 0
    }
    let printed = Printer().print(module)
    report("verified: \(module.functions.count) functions")
    let again: Module
    do {
        again = try Parser.parseAndVerify(SourceText(name: "printed.nmir", text: printed))
    } catch {
        fatalError("the printed form of a verified module does not parse: \(error)\n\(printed)")
    }
    let reprinted = Printer().print(again)
    guard reprinted == printed else {
        fatalError("print(parse(print(m))) != print(m):\n\(printed)\n---\n\(reprinted)")
    }
    // `==` compares float values, and NaN (`dense<[nan]>`, `{eps = nan}`) is unequal to itself:
    // only a module equal to a second, separate parse of the same text must equal the original.
    // (`module == module` would not tell: arrays that share storage compare equal unread.)
    let third = try? Parser.parseAndVerify(SourceText(name: "printed.nmir", text: printed))
    if third == again, again != module {
        fatalError("parse(print(m)) != m for\n\(printed)")
    }
    return 0
}
