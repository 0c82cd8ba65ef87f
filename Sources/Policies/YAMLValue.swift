import Foundation
import Yams

/// A place in a file, for messages an operator can act on.
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    public var file: String
    public var line: Int

    public init(file: String, line: Int) {
        self.file = file
        self.line = line
    }

    public var description: String { "\(file):\(line)" }
}

/// Something wrong in a configuration or policy file, with where it is.
public struct LocatedError: Error, Sendable, Hashable, CustomStringConvertible {
    public var location: SourceLocation
    public var message: String

    public init(_ location: SourceLocation, _ message: String) {
        self.location = location
        self.message = message
    }

    public var description: String { "\(location): \(message)" }
}

/// A node of a YAML document that knows its file and line, with typed accessors whose errors
/// say `file:line: what is wrong`. Shared by the configuration and the policy loaders.
public struct YAMLValue {
    public let node: Node
    public let file: String

    public var location: SourceLocation {
        SourceLocation(file: file, line: node.mark?.line ?? 1)
    }

    /// Parses a document; nil for an empty one.
    public static func parse(_ text: String, file: String) throws(LocatedError) -> YAMLValue? {
        do {
            return try Yams.compose(yaml: text).map { YAMLValue(node: $0, file: file) }
        } catch let error as YamlError {
            throw LocatedError(SourceLocation(file: file, line: error.line ?? 1), "not valid YAML: \(error.problem)")
        } catch {
            throw LocatedError(SourceLocation(file: file, line: 1), "not valid YAML: \(error)")
        }
    }

    public func error(_ message: String) -> LocatedError {
        LocatedError(location, message)
    }

    /// The entries of a mapping, refusing keys not in `allowed` (a typo must not pass silently)
    /// and keys given twice.
    public func mapping(allowedKeys allowed: [String], context: String) throws(LocatedError) -> [String: YAMLValue] {
        guard case .mapping(let mapping) = node else { throw error("\(context) must be a mapping") }
        var result: [String: YAMLValue] = [:]
        for (key, value) in mapping {
            let keyValue = YAMLValue(node: key, file: file)
            guard case .scalar(let scalar) = key else { throw keyValue.error("\(context): keys must be plain words") }
            guard allowed.contains(scalar.string) else {
                throw keyValue.error("\(context): unknown key '\(scalar.string)' (known: \(allowed.joined(separator: ", ")))")
            }
            guard result[scalar.string] == nil else { throw keyValue.error("\(context): '\(scalar.string)' is given twice") }
            result[scalar.string] = YAMLValue(node: value, file: file)
        }
        return result
    }

    public func string(_ what: String) throws(LocatedError) -> String {
        guard case .scalar(let scalar) = node, !scalar.string.isEmpty else { throw error("\(what) must be a non-empty string") }
        return scalar.string
    }

    public func bool(_ what: String) throws(LocatedError) -> Bool {
        guard let value = node.bool else { throw error("\(what) must be true or false") }
        return value
    }

    public func sequence(_ what: String) throws(LocatedError) -> [YAMLValue] {
        guard case .sequence(let sequence) = node else { throw error("\(what) must be a list") }
        return sequence.map { YAMLValue(node: $0, file: file) }
    }

    public func strings(_ what: String) throws(LocatedError) -> [String] {
        var result: [String] = []
        for item in try sequence(what) {
            result.append(try item.string("each entry of \(what)"))
        }
        return result
    }
}

extension YamlError {
    var line: Int? {
        switch self {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): return mark.line
        default: return nil
        }
    }

    var problem: String {
        switch self {
        case .scanner(_, let problem, _, _), .parser(_, let problem, _, _), .composer(_, let problem, _, _): return problem
        default: return "\(self)"
        }
    }
}
