import OCI

/// The head of a request on the proxy listener, parsed strictly: `CONNECT host:port HTTP/1.1`
/// (or an absolute-form `GET http://host/...`) and its header fields.
///
/// Anything that is not exactly that grammar is refused before a decision is made: bytes
/// outside visible ASCII, folded lines, a port that is not 1-65535, a host that is not a DNS
/// name or an IP literal.
public struct ProxyRequestHead: Sendable, Equatable {
    public var method: String
    /// The target as sent.
    public var target: String
    /// Lowercased, without a trailing dot or IPv6 brackets.
    public var host: String
    public var port: Int
    /// The host is an address (`127.0.0.1`, `[::1]`, `2130706433`), not a name.
    public var isAddress: Bool
    /// The path and query of an absolute-form target; nil for CONNECT.
    public var path: String?
    /// Header fields by lowercased name.
    public var fields: [String: String]

    public struct Failure: Error, Equatable, CustomStringConvertible {
        public let description: String
        /// 431 for a head over the limit, else 400.
        public let status: Int
        init(_ description: String, status: Int = 400) {
            self.description = description
            self.status = status
        }
    }

    /// The longest head accepted (request line and fields).
    public static let limit = 8192

    /// The head at the start of `bytes` and its length in bytes; nil when it is not complete
    /// yet. Throws when it is malformed or longer than ``limit``.
    public static func parse(_ bytes: some Collection<UInt8>) throws(Failure) -> (head: ProxyRequestHead, length: Int)? {
        let bytes = Array(bytes.prefix(limit + 4))
        var end: Int?
        if bytes.count >= 4 {
            for index in 0...(bytes.count - 4)
            where bytes[index] == 13 && bytes[index + 1] == 10 && bytes[index + 2] == 13 && bytes[index + 3] == 10 {
                end = index
                break
            }
        }
        guard let end else {
            if bytes.count > limit { throw Failure("the request head is longer than \(limit) bytes", status: 431) }
            return nil
        }
        guard end <= limit else { throw Failure("the request head is longer than \(limit) bytes", status: 431) }
        for byte in bytes[..<end] where byte != 13 && byte != 10 && byte != 9 && (byte < 0x20 || byte > 0x7e) {
            throw Failure("the request head holds a byte that is not visible ASCII")
        }
        let text = String(decoding: bytes[..<end], as: UTF8.self)
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: false)
        let requestLine = lines.removeFirst().split(separator: " ", omittingEmptySubsequences: false)
        guard requestLine.count == 3, requestLine[2] == "HTTP/1.1" || requestLine[2] == "HTTP/1.0" else {
            throw Failure("the request line is not METHOD TARGET HTTP/1.1")
        }
        let method = String(requestLine[0])
        guard !method.isEmpty, method.allSatisfy({ $0.isLetter && $0.isUppercase }) else { throw Failure("'\(method)' is not a method") }
        var fields: [String: String] = [:]
        for line in lines {
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else { throw Failure("a header line has no name") }
            let name = line[..<colon]
            guard !name.contains(where: { $0 == " " || $0 == "\t" }), !line.hasPrefix(" "), !line.hasPrefix("\t") else {
                throw Failure("a header line is folded or its name holds a space")
            }
            let key = name.lowercased()
            guard fields[key] == nil || key != "proxy-authorization" && key != "host" else {
                throw Failure("the \(name) field is repeated")
            }
            fields[key] = String(line[line.index(after: colon)...].trimmingWhitespace)
        }
        let target = String(requestLine[1])
        var head = ProxyRequestHead(method: method, target: target, host: "", port: 0, isAddress: false, path: nil, fields: fields)
        if method == "CONNECT" {
            (head.host, head.port, head.isAddress) = try authority(target, defaultPort: nil)
        } else {
            guard target.lowercased().hasPrefix("http://") else {
                throw Failure("this is a proxy: a \(method) request must name an absolute http:// URL (HTTPS goes through CONNECT)")
            }
            let rest = target.dropFirst("http://".count)
            let slash = rest.firstIndex(of: "/") ?? rest.endIndex
            (head.host, head.port, head.isAddress) = try authority(String(rest[..<slash]), defaultPort: 80)
            head.path = slash == rest.endIndex ? "/" : String(rest[slash...])
        }
        return (head, end + 4)
    }

    /// Reads `host:port` (the port optional when there is a default): the host lowercased, and
    /// whether it is an address rather than a name.
    static func authority(_ authority: String, defaultPort: Int?) throws(Failure) -> (host: String, port: Int, isAddress: Bool) {
        var isAddress = false
        let port: Int
        var hostPart = Substring(authority)
        var portPart: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw Failure("'\(authority)' is not host:port") }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw Failure("'\(authority)' is not host:port") }
                portPart = after.dropFirst()
            }
            guard !hostPart.isEmpty, hostPart.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else {
                throw Failure("'\(authority)' is not an IPv6 address")
            }
            isAddress = true
        } else if let colon = authority.lastIndex(of: ":") {
            hostPart = authority[..<colon]
            portPart = authority[authority.index(after: colon)...]
        }
        if let portPart {
            guard (1...5).contains(portPart.count), portPart.allSatisfy({ $0.isASCII && $0.isNumber }), let number = Int(portPart),
                (1...65535).contains(number)
            else { throw Failure("'\(portPart)' is not a port (1-65535)") }
            port = number
        } else if let defaultPort {
            port = defaultPort
        } else {
            throw Failure("CONNECT needs host:port, not '\(authority)'")
        }
        var host = hostPart.lowercased()
        if !isAddress {
            if host.hasSuffix(".") { host.removeLast() }
            let labels = host.split(separator: ".", omittingEmptySubsequences: false)
            guard !host.isEmpty, host.utf8.count <= 253,
                labels.allSatisfy({ label in
                    (1...63).contains(label.count) && !label.hasPrefix("-") && !label.hasSuffix("-")
                        && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") }
                })
            else { throw Failure("'\(hostPart)' is not a host name") }
            // What a resolver reads as an address: dotted or single numbers, hex forms.
            if let last = labels.last, last.allSatisfy({ $0.isNumber }) || last.hasPrefix("0x") { isAddress = true }
        }
        return (host, port, isAddress)
    }
}
