import Foundation
import OCI

/// The few things Archway reads from S3's XML answers: the text of named elements.
///
/// S3's answers are flat and regular (`<UploadId>…</UploadId>`, `<Contents><Key>…</Key>…`), so
/// a scan for an element's tags is enough; no DTDs, no entities beyond XML's five predefined
/// ones and numeric references, which are decoded. Element names never nest inside themselves in
/// these answers.
enum XMLFields {
    /// The text of the first `<name>…</name>` in `xml`.
    static func first(_ name: String, in xml: Substring) -> String? {
        elements(name, in: xml).first.map { unescape($0) }
    }

    /// The raw inside of every `<name>…</name>` (or `<name attributes>…</name>`), in order.
    static func elements(_ name: String, in xml: Substring) -> [Substring] {
        var found: [Substring] = []
        var rest = xml[...]
        let close = "</\(name)>"
        while let open = rest.range(of: "<\(name)") {
            let afterName = rest[open.upperBound...]
            guard let next = afterName.first, next == ">" || next == " " || next == "/" else {
                rest = afterName
                continue
            }
            guard let tagEnd = afterName.firstIndex(of: ">") else { break }
            if afterName[..<tagEnd].hasSuffix("/") {  // <name/>: empty
                found.append(afterName[tagEnd..<tagEnd])
                rest = afterName[afterName.index(after: tagEnd)...]
                continue
            }
            let content = afterName[afterName.index(after: tagEnd)...]
            guard let end = content.range(of: close) else { break }
            found.append(content[..<end.lowerBound])
            rest = content[end.upperBound...]
        }
        return found
    }

    /// Decodes `&lt;` `&gt;` `&amp;` `&quot;` `&apos;` and `&#N;` / `&#xN;`; anything else is kept.
    static func unescape(_ text: Substring) -> String {
        guard text.contains("&") else { return String(text) }
        var result = ""
        var rest = text
        while let ampersand = rest.firstIndex(of: "&") {
            result += rest[..<ampersand]
            let entityStart = rest.index(after: ampersand)
            guard let semicolon = rest[entityStart...].prefix(10).firstIndex(of: ";") else {
                result += "&"
                rest = rest[entityStart...]
                continue
            }
            let entity = rest[entityStart..<semicolon]
            let decoded: String? =
                switch entity {
                case "lt": "<"
                case "gt": ">"
                case "amp": "&"
                case "quot": "\""
                case "apos": "'"
                default:
                    if entity.hasPrefix("#x") || entity.hasPrefix("#X") {
                        UInt32(entity.dropFirst(2), radix: 16).flatMap(Unicode.Scalar.init).map { String(Character($0)) }
                    } else if entity.hasPrefix("#") {
                        UInt32(entity.dropFirst()).flatMap(Unicode.Scalar.init).map { String(Character($0)) }
                    } else {
                        nil
                    }
                }
            if let decoded {
                result += decoded
                rest = rest[rest.index(after: semicolon)...]
            } else {
                result += "&"
                rest = rest[entityStart...]
            }
        }
        return result + rest
    }

    /// Escapes text for an element's content.
    static func escape(_ text: String) -> String { text.markupEscaped }
}
