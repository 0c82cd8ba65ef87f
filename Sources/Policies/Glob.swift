/// A glob over repository keys or tags: `*` matches within one path component, `**` across
/// components, `?` one character of a component. Everything else matches itself.
public struct Glob: Sendable, Hashable, CustomStringConvertible {
    public let pattern: String
    private let tokens: [Token]
    /// No wildcard: matching is string equality (most rules name their repository outright, and
    /// every manifest request by tag asks the rules).
    private let isLiteral: Bool

    enum Token: Hashable {
        case literal(Character)
        case any  // ?
        case component  // *
        case path  // **
    }

    /// Why a pattern is not a glob.
    public struct Invalid: Error, Hashable {
        public let reason: String
    }

    public init(_ pattern: String) throws(Invalid) {
        guard !pattern.isEmpty else { throw Invalid(reason: "an empty pattern") }
        guard pattern.count <= 512 else { throw Invalid(reason: "a pattern longer than 512 characters") }
        var tokens: [Token] = []
        var characters = Substring(pattern)
        while let character = characters.first {
            characters = characters.dropFirst()
            switch character {
            case "*":
                if characters.first == "*" {
                    characters = characters.dropFirst()
                    if characters.first == "*" { throw Invalid(reason: "'***' in '\(pattern)'") }
                    tokens.append(.path)
                } else {
                    tokens.append(.component)
                }
            case "?":
                tokens.append(.any)
            case _ where character.isASCII && (character.isLetter || character.isNumber || "._-/:".contains(character)):
                tokens.append(.literal(character))
            default:
                throw Invalid(reason: "'\(character)' is not allowed in '\(pattern)' (letters, digits, . _ - / : and * ** ?)")
            }
        }
        self.pattern = pattern
        self.tokens = tokens
        self.isLiteral = tokens.allSatisfy { if case .literal = $0 { true } else { false } }
    }

    public var description: String { pattern }

    public func matches(_ text: String) -> Bool {
        if isLiteral { return text == pattern }
        let characters = Array(text)
        // memo[t][c]: whether tokens[t...] match characters[c...]
        var memo = [[Bool?]](repeating: [Bool?](repeating: nil, count: characters.count + 1), count: tokens.count + 1)
        func match(_ t: Int, _ c: Int) -> Bool {
            if let known = memo[t][c] { return known }
            let result: Bool
            if t == tokens.count {
                result = c == characters.count
            } else {
                switch tokens[t] {
                case .literal(let character):
                    result = c < characters.count && characters[c] == character && match(t + 1, c + 1)
                case .any:
                    result = c < characters.count && characters[c] != "/" && match(t + 1, c + 1)
                case .component:
                    result = match(t + 1, c) || (c < characters.count && characters[c] != "/" && match(t, c + 1))
                case .path:
                    result = match(t + 1, c) || (c < characters.count && match(t, c + 1))
                }
            }
            memo[t][c] = result
            return result
        }
        return match(0, 0)
    }
}
