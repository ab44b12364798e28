import Testing
import NMIR
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Keeps `ir-specs/` and the op registry in agreement: every ```nmir example parses and verifies,
/// every registered op has exactly one `## dialect.op` section (and no section names an op that
/// does not exist), every op is used by an example in its own section, and every section names
/// each of its op's attributes.
@Suite struct SpecTests {
    static let registry = OpRegistry.standard

    @Test func specDirectoryHasOneFilePerDialect() throws {
        let specs = try SpecCorpus.load()
        let names = Set(specs.files.map(\.name))
        var expected = Set(Self.registry.dialects.map { "ir-specs/\($0).md" })
        expected.insert("ir-specs/README.md")
        #expect(names == expected, "ir-specs/ holds \(names.sorted()), expected \(expected.sorted())")
    }

    @Test func everyExampleParsesAndVerifies() throws {
        let specs = try SpecCorpus.load()
        #expect(specs.examples.count >= Self.registry.definitions.count,
                "found only \(specs.examples.count) ```nmir examples")
        // No example may be swallowed by a fence that failed to close.
        for file in specs.files {
            let openers = file.lines.filter { $0.trimmedSpaces == "```nmir" }.count
            let found = file.blocks.filter { $0.tag == "nmir" }.count
            #expect(found == openers, "\(file.name): \(openers) lines open a ```nmir block, but \(found) blocks were read")
        }
        for problem in SpecChecks.exampleProblems(specs) {
            Issue.record(Comment(rawValue: problem))
        }
    }

    @Test func opSectionsMatchTheRegistry() throws {
        let specs = try SpecCorpus.load()
        let problems = SpecChecks.sectionProblems(specs, registry: Self.registry)
        #expect(problems.isEmpty, Comment(rawValue: problems.joined(separator: "\n")))
        // The set comparison itself, stated directly so its failure shows both sets.
        let specified = Set(specs.sections.map(\.op))
        let registered = Set(Self.registry.definitions.map(\.name))
        #expect(specified == registered,
                "registered but not specified: \(registered.subtracting(specified).sorted()); specified but not registered: \(specified.subtracting(registered).sorted())")
    }

    @Test func everyOpAppearsInAnExample() throws {
        let specs = try SpecCorpus.load()
        let problems = SpecChecks.exampleCoverageProblems(specs, registry: Self.registry)
        #expect(problems.isEmpty, Comment(rawValue: problems.joined(separator: "\n")))
    }

    @Test func everySectionNamesItsAttributes() throws {
        let specs = try SpecCorpus.load()
        let problems = SpecChecks.attributeProblems(specs, registry: Self.registry)
        #expect(problems.isEmpty, Comment(rawValue: problems.joined(separator: "\n")))
    }

    // MARK: - The checks catch what they are meant to catch

    /// A small spec with one problem of every kind: each check must report it.
    static let brokenSpec = """
    # The nn dialect

    ## nn.silu

    ```nmir
    func @f(%x: tensor<4xf32>) -> tensor<4xi32> {
      %0 = nn.silu %x : tensor<4xi32>
      return %0
    }
    ```

    ## nn.softmax

    No example and no attribute here.

    ## nn.silu

    ## nn.frobnicate

    ```nmir
    func @g(%x: tensor<4xf32>) -> tensor<4xf32> {
      %0 = nn.softmax %x : tensor<4xf32>
      return %0
    }
    ```

    ## About `nn.add`
    """

    @Test func checksReportBrokenSpecs() throws {
        let specs = SpecCorpus(files: [SpecFile(name: "ir-specs/nn.md", text: Self.brokenSpec)])
        let registry = OpRegistry(Self.registry.definitions.filter { $0.name == "nn.silu" || $0.name == "nn.softmax" || $0.name == "nn.add" })

        let examples = SpecChecks.exampleProblems(specs)
        #expect(examples.count == 1)
        // The diagnostic points into the Markdown file: line 7 is the nn.silu line.
        #expect(examples.first?.contains("ir-specs/nn.md:7:") == true, "\(examples)")
        #expect(examples.first?.contains("```nmir block at ir-specs/nn.md:5") == true, "\(examples)")

        let sections = SpecChecks.sectionProblems(specs, registry: registry)
        #expect(sections.contains { $0.contains("nn.add") && $0.contains("registered but not specified") }, "\(sections)")
        #expect(sections.contains { $0.contains("nn.frobnicate") && $0.contains("specified but not registered") }, "\(sections)")
        #expect(sections.contains { $0.contains("nn.silu") && $0.contains("more than one section") }, "\(sections)")
        #expect(sections.contains { $0.contains("ir-specs/nn.md:27:") && $0.contains("is not '## dialect.op'") }, "\(sections)")
        #expect(sections.count == 4, "\(sections)")

        let coverage = SpecChecks.exampleCoverageProblems(specs, registry: registry)
        // nn.silu's only example does not verify, nn.add has none, nn.softmax is used only outside its section.
        #expect(coverage.contains { $0.contains("nn.silu") && $0.contains("used by no ```nmir example") }, "\(coverage)")
        #expect(coverage.contains { $0.contains("nn.add") && $0.contains("used by no ```nmir example") }, "\(coverage)")
        #expect(!coverage.contains { $0.contains("nn.softmax") && $0.contains("used by no ```nmir example") }, "\(coverage)")
        #expect(coverage.contains { $0.contains("nn.softmax") && $0.contains("no example in its own section") }, "\(coverage)")
        #expect(coverage.count == 3, "\(coverage)")

        let attributes = SpecChecks.attributeProblems(specs, registry: registry)
        #expect(attributes.contains { $0.contains("nn.softmax") && $0.contains("`axis`") }, "\(attributes)")
    }

    @Test func fencesAndHeadingsAreReadExactly() {
        let text = """
        ## tensor.reshape
        ```text
        ## nn.linear
        ```
        ```nmir
        // -----
        ```
        ### nn.add
        ## Types
        """
        let file = SpecFile(name: "ir-specs/tensor.md", text: text)
        #expect(file.sections.map(\.op) == ["tensor.reshape"])
        #expect(file.sections.first?.line == 1)
        #expect(file.sections.first?.endLine == 8)
        #expect(file.blocks.map(\.tag) == ["text", "nmir"])
        #expect(file.blocks.map(\.fenceLine) == [2, 5])
        #expect(file.blocks.last?.firstLine == 6)
        #expect(file.blocks.last?.text == "// -----\n")
    }

    @Test func inlineCodeIsNotAFence() {
        let text = """
        ```` ```nmir ```` blocks are examples.
        ````nmir
        func @f() {
          return
        }
        ```
        ````
        ## nn.silu
        """
        let file = SpecFile(name: "ir-specs/nn.md", text: text)
        #expect(file.blocks.map(\.fenceLine) == [2])
        #expect(file.blocks.first?.tag == "nmir")
        #expect(file.blocks.first?.text == "func @f() {\n  return\n}\n```\n")
        #expect(file.sections.map(\.line) == [8])
    }
}

// MARK: - Reading the spec files

fileprivate struct SpecFile {
    /// Relative to the repository root: `ir-specs/nn.md`.
    let name: String
    let lines: [String]

    init(name: String, text: String) {
        self.name = name
        self.lines = text.split(separator: "\n", omittingEmptySubsequences: false).map {
            $0.hasSuffix("\r") ? String($0.dropLast()) : String($0)
        }
    }

    struct Block {
        let tag: String
        /// 1-based line of the opening fence.
        let fenceLine: Int
        /// 1-based line of the block's first line of content.
        var firstLine: Int { fenceLine + 1 }
        let text: String
    }

    /// A `## dialect.op` heading and the lines up to the next level-1 or level-2 heading.
    struct Section {
        let op: String
        let line: Int
        /// Last line of the section (inclusive).
        let endLine: Int
    }

    /// A level-2 heading that mentions an op but is not exactly `## dialect.op`.
    struct MalformedHeading {
        let line: Int
        let text: String
    }

    /// A backtick fence as CommonMark reads it: up to 3 spaces, 3 or more backticks, then an info
    /// string without backticks (so inline code like ```` ```nmir ```` at the start of a line is
    /// not a fence). Returns the fence length and the info string's first word.
    static func fence(_ line: String) -> (length: Int, tag: String)? {
        let indent = line.prefix { $0 == " " }.count
        guard indent <= 3 else { return nil }
        let rest = line.dropFirst(indent)
        let length = rest.prefix { $0 == "`" }.count
        guard length >= 3 else { return nil }
        let info = rest.dropFirst(length)
        guard !info.contains("`") else { return nil }
        return (length, String(info.trimmedSpaces.prefix { $0 != " " && $0 != "\t" }))
    }

    /// Fenced blocks, and which lines lie outside them.
    private func scan() -> (blocks: [Block], outside: [Int]) {
        var blocks: [Block] = []
        var outside: [Int] = []
        var open: (tag: String, length: Int, line: Int, body: [String])? = nil
        for (i, line) in lines.enumerated() {
            let number = i + 1
            if var current = open {
                if let f = Self.fence(line), f.tag.isEmpty, f.length >= current.length {
                    blocks.append(Block(tag: current.tag, fenceLine: current.line,
                                        text: current.body.map { $0 + "\n" }.joined()))
                    open = nil
                } else {
                    current.body.append(line)
                    open = current
                }
            } else if let f = Self.fence(line) {
                open = (f.tag, f.length, number, [])
            } else {
                outside.append(number)
            }
        }
        return (blocks, outside)
    }

    var blocks: [Block] { scan().blocks }

    /// `## nn.linear` (and `## arith.constant` …): a lowercase dialect, a dot, a lowercase name.
    static func opName(inHeading line: String) -> String? {
        guard line.hasPrefix("## ") else { return nil }
        let text = line.dropFirst(3).trimmedSpaces
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        let isWord: (Substring) -> Bool = { word in
            guard let first = word.first, first.isLowercase, first.isASCII else { return false }
            return word.allSatisfy { ($0.isLowercase && $0.isASCII) || $0.isNumber || $0 == "_" }
        }
        return parts.allSatisfy(isWord) ? text : nil
    }

    private func headings() -> [(line: Int, level: Int, text: String)] {
        scan().outside.compactMap { number in
            let line = lines[number - 1]
            let hashes = line.prefix { $0 == "#" }.count
            guard hashes > 0, line.dropFirst(hashes).first == " " else { return nil }
            return (number, hashes, line)
        }
    }

    var sections: [Section] {
        let all = headings()
        var out: [Section] = []
        for (k, h) in all.enumerated() where h.level == 2 {
            guard let op = Self.opName(inHeading: h.text) else { continue }
            let next = all[(k + 1)...].first { $0.level <= 2 }
            out.append(Section(op: op, line: h.line, endLine: (next?.line ?? lines.count + 1) - 1))
        }
        return out
    }

    /// Level-2 headings that name a dialect-qualified word without being exactly `## dialect.op`.
    func malformedOpHeadings(dialects: [String]) -> [MalformedHeading] {
        headings().filter { h in
            h.level == 2 && Self.opName(inHeading: h.text) == nil
                && dialects.contains { h.text.contains("\($0).") }
        }.map { MalformedHeading(line: $0.line, text: $0.text) }
    }

    func text(of section: Section) -> String {
        lines[(section.line - 1)..<min(section.endLine, lines.count)].joined(separator: "\n")
    }

    func blocks(in section: Section) -> [Block] {
        blocks.filter { $0.fenceLine > section.line && $0.fenceLine <= section.endLine }
    }
}

fileprivate struct SpecCorpus {
    var files: [SpecFile]

    /// The directory holding Package.swift, found by walking up from this file.
    static func repositoryRoot(from path: String = #filePath) throws -> String {
        var components = path.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        while !components.isEmpty {
            components.removeLast()
            let directory = components.joined(separator: "/")
            if FileManager.default.fileExists(atPath: directory + "/Package.swift") { return directory }
        }
        throw SpecError("no Package.swift above \(path)")
    }

    static func load() throws -> SpecCorpus {
        let root = try repositoryRoot()
        let directory = root + "/ir-specs"
        let names = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".md") }.sorted()
        var files: [SpecFile] = []
        for name in names {
            guard let data = FileManager.default.contents(atPath: directory + "/" + name) else {
                throw SpecError("cannot read \(directory)/\(name)")
            }
            files.append(SpecFile(name: "ir-specs/" + name, text: String(decoding: data, as: UTF8.self)))
        }
        guard !files.isEmpty else { throw SpecError("no Markdown files in \(directory)") }
        return SpecCorpus(files: files)
    }

    var examples: [(file: SpecFile, block: SpecFile.Block)] {
        files.flatMap { f in f.blocks.filter { $0.tag == "nmir" }.map { (f, $0) } }
    }

    var sections: [SpecFile.Section] { files.flatMap(\.sections) }
}

fileprivate struct SpecError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

// MARK: - The checks, as functions from specs to problems

fileprivate enum SpecChecks {
    /// The chunks of an example, split at lines that start with `// -----` as
    /// `nmc-opt --split-input-file` does, each with the Markdown line it starts on.
    static func chunks(of block: SpecFile.Block) -> [(text: String, firstLine: Int)] {
        var out: [(String, Int)] = []
        var current: [String] = []
        var start = block.firstLine
        let lines = block.text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
        for (i, line) in lines.enumerated() {
            if line.hasPrefix("// -----") {
                out.append((current.map { $0 + "\n" }.joined(), start))
                current = []
                start = block.firstLine + i + 1
            } else {
                current.append(line)
            }
        }
        out.append((current.map { $0 + "\n" }.joined(), start))
        return out
    }

    /// Parses and verifies one example chunk; the diagnostics name the Markdown file and line.
    static func parse(_ file: SpecFile, _ chunk: (text: String, firstLine: Int)) -> Result<Module, SpecError> {
        let source = SourceText(name: file.name, text: chunk.text, firstLine: chunk.firstLine)
        do {
            return .success(try Parser.parseAndVerify(source))
        } catch let d as Diagnostic {
            return .failure(SpecError(d.rendered(source: source)))
        } catch let list as DiagnosticList {
            return .failure(SpecError(list.diagnostics.map { $0.rendered(source: source) }.joined(separator: "\n")))
        } catch {
            return .failure(SpecError("\(error)"))
        }
    }

    static func exampleProblems(_ specs: SpecCorpus) -> [String] {
        var problems: [String] = []
        for (file, block) in specs.examples {
            for chunk in chunks(of: block) {
                switch parse(file, chunk) {
                case .failure(let message):
                    problems.append("the ```nmir block at \(file.name):\(block.fenceLine) does not verify:\n\(message)")
                case .success(let module) where module.functions.isEmpty:
                    problems.append("the ```nmir block at \(file.name):\(block.fenceLine) defines no function")
                case .success:
                    break
                }
            }
        }
        return problems
    }

    /// Op names used by the examples of `blocks` that parse and verify.
    static func opsUsed(in blocks: [SpecFile.Block], of file: SpecFile) -> Set<String> {
        var used = Set<String>()
        for block in blocks where block.tag == "nmir" {
            for chunk in chunks(of: block) {
                guard case .success(let module) = parse(file, chunk) else { continue }
                for f in module.functions { for op in f.body { used.insert(op.name) } }
            }
        }
        return used
    }

    static func sectionProblems(_ specs: SpecCorpus, registry: OpRegistry) -> [String] {
        var problems: [String] = []
        let registered = Set(registry.definitions.map(\.name))
        var seen: [String: String] = [:]
        for file in specs.files {
            for s in file.sections {
                let place = "\(file.name):\(s.line)"
                if let first = seen[s.op] {
                    problems.append("\(place): \(s.op) has more than one section (first at \(first))")
                } else {
                    seen[s.op] = place
                }
                let dialect = s.op.prefix { $0 != "." }
                if file.name != "ir-specs/\(dialect).md" {
                    problems.append("\(place): \(s.op) belongs in ir-specs/\(dialect).md")
                }
                if !registered.contains(s.op) {
                    problems.append("\(place): \(s.op) is specified but not registered")
                }
            }
            for h in file.malformedOpHeadings(dialects: registry.dialects) {
                problems.append("\(file.name):\(h.line): heading '\(h.text)' mentions an op but is not '## dialect.op'")
            }
        }
        for name in registered.subtracting(seen.keys).sorted() {
            problems.append("\(name) is registered but not specified (no '## \(name)' heading in ir-specs/)")
        }
        return problems
    }

    static func exampleCoverageProblems(_ specs: SpecCorpus, registry: OpRegistry) -> [String] {
        var problems: [String] = []
        var usedAnywhere = Set<String>()
        for file in specs.files { usedAnywhere.formUnion(opsUsed(in: file.blocks, of: file)) }
        for def in registry.definitions {
            guard usedAnywhere.contains(def.name) else {
                problems.append("\(def.name) is used by no ```nmir example that verifies")
                continue
            }
            for file in specs.files {
                for s in file.sections where s.op == def.name {
                    if !opsUsed(in: file.blocks(in: s), of: file).contains(def.name) {
                        problems.append("\(file.name):\(s.line): \(def.name) is used by no example in its own section")
                    }
                }
            }
        }
        return problems
    }

    static func attributeProblems(_ specs: SpecCorpus, registry: OpRegistry) -> [String] {
        var problems: [String] = []
        for file in specs.files {
            for s in file.sections {
                guard let def = registry[s.op] else { continue }
                let text = file.text(of: s)
                for a in def.attributes where !text.contains("`\(a.name)`") {
                    problems.append("\(file.name):\(s.line): the section of \(s.op) does not mention its attribute `\(a.name)`")
                }
            }
        }
        return problems
    }
}

fileprivate extension StringProtocol {
    /// Without leading and trailing spaces and tabs.
    var trimmedSpaces: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        return String(self.drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}
