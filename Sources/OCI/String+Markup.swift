extension String {
    /// The text with `&`, `<`, `>`, `"` and `'` replaced by entities (`'` as `&#39;`, which HTML
    /// and XML both read): safe as an element's content and as a quoted attribute value.
    public var markupEscaped: String {
        var escaped = ""
        escaped.reserveCapacity(utf8.count)
        for character in self {
            switch character {
            case "&": escaped += "&amp;"
            case "<": escaped += "&lt;"
            case ">": escaped += "&gt;"
            case "\"": escaped += "&quot;"
            case "'": escaped += "&#39;"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}
