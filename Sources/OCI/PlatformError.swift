/// A platform specifier such as `linux/arm64/v8` that could not be parsed.
public struct PlatformError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The specifier as given.
    public let input: String
    /// What is wrong with it.
    public let reason: String

    public init(input: String, reason: String) {
        self.input = input
        self.reason = reason
    }

    public var description: String {
        "invalid platform \(RegistryError.quote(input)): \(reason)"
    }
}
