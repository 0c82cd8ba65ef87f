/// Short, stable descriptions of JSON decoding errors for `RegistryError` messages.
enum DecodingFailure {
    /// What went wrong and where, without Foundation's long debug text.
    static func describe(_ error: any Error) -> String {
        guard let error = error as? DecodingError else {
            return "not valid JSON"
        }
        switch error {
        case .keyNotFound(let key, let context):
            return "missing field \(path(context.codingPath + [key]))"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "wrong type at \(path(context.codingPath))"
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty {
                return "not valid JSON"
            }
            return "invalid value at \(path(context.codingPath)): \(context.debugDescription)"
        @unknown default:
            return "not valid JSON"
        }
    }

    private static func path(_ keys: [any CodingKey]) -> String {
        let text = keys.map { key in
            if let index = key.intValue {
                return "[\(index)]"
            }
            return "." + key.stringValue
        }.joined()
        return text.hasPrefix(".") ? String(text.dropFirst()) : (text.isEmpty ? "the top level" : text)
    }
}
