/// An image's root filesystem as its layers build it, kept as a map of cleaned absolute paths:
/// what each path is, and the first bytes of every executable file (enough for an ELF header or
/// a `#!` line). Layers are applied in order with OCI's whiteouts: `.wh.<name>` removes a path of
/// the layers below (and everything under it), `.wh..wh..opq` empties a directory of them.
public struct LayeredFilesystem: Sendable {
    public enum Node: Sendable, Hashable {
        /// A regular file, with its mode and the first bytes of it when it is executable.
        case file(mode: UInt32, head: [UInt8])
        case symbolicLink(String)
        case directory
        case other
    }

    /// Bytes kept of each executable file.
    public static let headLength = 256
    static let whiteoutPrefix = ".wh."
    static let opaqueMarker = ".wh..wh..opq"

    public private(set) var nodes: [String: Node] = [:]

    public init() {}

    /// One layer's members, as read from its tar stream.
    public struct Layer: Sendable {
        var members: [(path: String, member: Member)] = []
        var whiteouts: Set<String> = []
        var opaque: Set<String> = []

        enum Member: Sendable {
            case node(Node)
            /// A hard link, to a path of this layer or of the layers below.
            case hardLink(String)
        }

        public init() {}

        public var count: Int { members.count + whiteouts.count + opaque.count }

        /// Adds a member; whiteout files become whiteouts.
        public mutating func add(_ entry: TarEntry, head: [UInt8] = []) {
            guard let path = LayeredFilesystem.clean(entry.path), path != "/" else { return }
            let (directory, name) = LayeredFilesystem.split(path)
            if name == LayeredFilesystem.opaqueMarker {
                opaque.insert(directory)
            } else if name.hasPrefix(LayeredFilesystem.whiteoutPrefix) {
                let removed = LayeredFilesystem.join(directory, String(name.dropFirst(LayeredFilesystem.whiteoutPrefix.count)))
                whiteouts.insert(removed)
            } else {
                let member: Member =
                    switch entry.kind {
                    case .file: .node(.file(mode: entry.mode, head: head))
                    case .directory: .node(.directory)
                    case .symbolicLink(let target): .node(.symbolicLink(target))
                    case .hardLink(let target): LayeredFilesystem.clean(target).map { .hardLink($0) } ?? .node(.other)
                    case .other: .node(.other)
                    }
                members.append((path, member))
            }
        }

        /// Whether the head of this member is worth keeping: executable regular files only.
        public static func wantsHead(_ entry: TarEntry) -> Bool {
            entry.kind == .file && entry.mode & 0o111 != 0
        }
    }

    /// Puts a layer on top.
    public mutating func apply(_ layer: Layer) {
        if !layer.whiteouts.isEmpty || !layer.opaque.isEmpty {
            nodes = nodes.filter { path, _ in !Self.isRemoved(path, whiteouts: layer.whiteouts, opaque: layer.opaque) }
        }
        var added: [String: Node] = [:]
        for (path, member) in layer.members {
            let node: Node
            switch member {
            case .node(let value): node = value
            case .hardLink(let target):
                // A hard link shares its target's content: a file of this layer or of one below.
                node = added[target] ?? nodes[target] ?? .other
            }
            added[path] = node
            nodes[path] = node
        }
    }

    /// Whether a lower layer's `path` is hidden by these whiteouts.
    static func isRemoved(_ path: String, whiteouts: Set<String>, opaque: Set<String>) -> Bool {
        if whiteouts.contains(path) { return true }
        var ancestor = path
        while let slash = ancestor.lastIndex(of: "/") {
            ancestor = slash == ancestor.startIndex ? "/" : String(ancestor[..<slash])
            if whiteouts.contains(ancestor) || opaque.contains(ancestor) { return true }
            if ancestor == "/" { break }
        }
        return false
    }

    /// Where `path` leads once every symbolic link on the way (the last component too) is
    /// followed, as the kernel would: relative links from their directory, `..` never above `/`,
    /// at most 40 links. Nil for a loop, and for a path through a file.
    public func resolve(_ path: String, from directory: String = "/") -> String? {
        var pending = Self.components(path.hasPrefix("/") ? path : directory + "/" + path)
        pending.reverse()  // a stack: the next component is last
        var resolved: [Substring] = []
        var links = 0
        while let component = pending.popLast() {
            if component == "." { continue }
            if component == ".." {
                _ = resolved.popLast()
                continue
            }
            let candidate = "/" + (resolved + [component]).joined(separator: "/")
            switch nodes[candidate] {
            case .symbolicLink(let target):
                links += 1
                if links > 40 { return nil }
                if target.hasPrefix("/") { resolved = [] }
                pending.append(contentsOf: Self.components(target).reversed())
            case .file, .other:
                // A file in the middle of a path is no folder (a folder a later layer replaced
                // by a file takes what the layers below put in it along).
                guard pending.isEmpty else { return nil }
                resolved.append(component)
            case .directory, nil:
                resolved.append(component)
            }
        }
        return "/" + resolved.joined(separator: "/")
    }

    /// `path` as an absolute path without `.`, `..`, repeated or trailing slashes; `..` stops at
    /// the root. Nil for an empty path.
    public static func clean(_ path: String) -> String? {
        var parts: [Substring] = []
        for component in components(path) {
            switch component {
            case ".": continue
            case "..": _ = parts.popLast()
            default: parts.append(component)
            }
        }
        if parts.isEmpty && !path.contains(where: { $0 == "/" || $0 == "." }) { return nil }
        return "/" + parts.joined(separator: "/")
    }

    static func components(_ path: String) -> [Substring] {
        path.split(separator: "/", omittingEmptySubsequences: true)
    }

    /// A cleaned path's directory and last component.
    static func split(_ path: String) -> (directory: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return ("/", path) }
        let directory = slash == path.startIndex ? "/" : String(path[..<slash])
        return (directory, String(path[path.index(after: slash)...]))
    }

    static func join(_ directory: String, _ name: String) -> String {
        directory == "/" ? "/" + name : directory + "/" + name
    }
}
