import NMIR

/// A typed pass option: `group=128`, `method=wanda`, `nm=2:4`.
public struct PassOptionSpec: Sendable {
    public enum Kind: String, Sendable {
        case int, float, bool, string, pattern = "N:M pattern"
    }
    public var name: String
    public var kind: Kind
    public var defaultValue: Attribute
    public var help: String
    /// For string options with a fixed set of values (`method=magnitude|wanda|sparsegpt`).
    public var choices: [String]

    public init(_ name: String, _ kind: Kind, default defaultValue: Attribute, choices: [String] = [], _ help: String) {
        self.name = name
        self.kind = kind
        self.defaultValue = defaultValue
        self.choices = choices
        self.help = help
    }

    /// Reads the text after `=`; nil when it is not a value of this kind.
    public func parse(_ text: String) -> Attribute? {
        switch kind {
        case .int: return Int(text).map(Attribute.int)
        case .float: return Double(text).map(Attribute.float)
        case .bool:
            switch text {
            case "true", "1": return .bool(true)
            case "false", "0": return .bool(false)
            default: return nil
            }
        case .string: return choices.isEmpty || choices.contains(text) ? .string(text) : nil
        case .pattern:
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, let n = Int(parts[0]), let m = Int(parts[1]), let p = NMPattern(n: n, m: m) else { return nil }
            return .pattern(p)
        }
    }

    /// What a valid value looks like, for error messages and `--help`.
    public var expectation: String {
        switch kind {
        case .int: return "an integer"
        case .float: return "a number"
        case .bool: return "true or false"
        case .string: return choices.isEmpty ? "a string" : "one of " + choices.joined(separator: ", ")
        case .pattern: return "an N:M pattern with 1 ≤ N < M ≤ 16, like 2:4"
        }
    }
}

/// Option values a pass was given, defaults filled in.
public struct PassOptions: Sendable, Equatable {
    public var values: [String: Attribute]
    public init(_ values: [String: Attribute] = [:]) { self.values = values }

    public func int(_ name: String) -> Int { values[name]?.intValue ?? 0 }
    public func float(_ name: String) -> Double { values[name]?.floatValue ?? 0 }
    public func bool(_ name: String) -> Bool { values[name]?.boolValue ?? false }
    public func string(_ name: String) -> String { values[name]?.stringValue ?? "" }
    public func pattern(_ name: String) -> NMPattern? { values[name]?.patternValue }
}

/// A pass declared once: name, summary, options with defaults, the statistics it counts.
public struct PassInfo: Sendable {
    public var name: String
    public var summary: String
    public var options: [PassOptionSpec]
    /// Statistic name and what it counts.
    public var statistics: [(name: String, help: String)]

    public init(name: String, summary: String, options: [PassOptionSpec] = [], statistics: [(name: String, help: String)] = []) {
        self.name = name
        self.summary = summary
        self.options = options
        self.statistics = statistics
    }

    public func option(_ name: String) -> PassOptionSpec? { options.first { $0.name == name } }

    public var defaultOptions: PassOptions {
        PassOptions(Dictionary(uniqueKeysWithValues: options.map { ($0.name, $0.defaultValue) }))
    }
}

/// What a running pass reports into: its statistics.
public final class PassContext {
    public private(set) var statistics: [String: Int] = [:]
    public let options: PassOptions
    /// Facts about where the module came from that some passes need: `module-directory` (the
    /// folder of the `.nmir`, where a tokenizer or calibration text may be found).
    public let environment: [String: String]

    public init(options: PassOptions, environment: [String: String] = [:]) {
        self.options = options
        self.environment = environment
    }

    public func count(_ statistic: String, by amount: Int = 1) { statistics[statistic, default: 0] += amount }

    /// What the pass reports without failing (a weight it handled in a degenerate way, say); the
    /// pass manager hands them to its `onWarning` after the pass.
    public private(set) var warnings: [Diagnostic] = []
    public func warn(at location: SourceLocation, _ message: String) { warnings.append(Diagnostic(.warning, at: location, message)) }
}

/// A pass: reads and rewrites a module.
public protocol Pass {
    static var info: PassInfo { get }
    init()
    /// Checks option values together (`n < m`, `group > 0` …) when the pipeline is parsed.
    /// Throws `OptionError` naming the option.
    static func validate(_ options: PassOptions) throws(OptionError)
    func run(on module: inout Module, context: PassContext) throws
}

extension Pass {
    public static func validate(_ options: PassOptions) throws(OptionError) {}
}

/// An option value a pass cannot use; the pipeline parser points at the option.
public struct OptionError: Error, CustomStringConvertible {
    public var option: String
    public var message: String
    public init(option: String, _ message: String) {
        self.option = option
        self.message = message
    }
    public var description: String { message }
}

/// A pass failure, naming the function and the op.
public struct PassError: Error, CustomStringConvertible {
    public var function: String?
    public var op: Operation?
    public var message: String

    public init(function: String? = nil, op: Operation? = nil, _ message: String) {
        self.function = function
        self.op = op
        self.message = message
    }

    public var description: String {
        var where_ = ""
        if let function { where_ += " in @\(function)" }
        if let op { where_ += " at '\(op.name)'" + (op.result.map { " (\($0))" } ?? "") }
        return message + where_
    }
}
