import Foundation
import OCI

/// Where things live under the storage folder (DESIGN.md, "Storage").
///
/// Every path is derived from a validated ``Digest``, never from a client's string, so no request
/// can name a file outside the folder.
public struct StorageLayout: Sendable, Hashable {
    public let root: URL

    public init(root: URL) {
        self.root = root.standardizedFileURL
    }

    /// `<root>/blobs/sha256/<2 hex>/<64 hex>`: verified content only.
    public func blobPath(_ digest: Digest) -> URL {
        root.appendingPathComponent("blobs", isDirectory: true)
            .appendingPathComponent(digest.algorithm, isDirectory: true)
            .appendingPathComponent(String(digest.encoded.prefix(2)), isDirectory: true)
            .appendingPathComponent(digest.encoded, isDirectory: false)
    }

    /// `<root>/tmp/`: fills in progress, removed at start-up.
    public var temporaryDirectory: URL {
        root.appendingPathComponent("tmp", isDirectory: true)
    }

    /// `<root>/catalog.sqlite`.
    public var catalogPath: URL {
        root.appendingPathComponent("catalog.sqlite", isDirectory: false)
    }

    /// Creates the folders the layout needs.
    public func prepare() throws {
        let fileManager = FileManager.default
        for directory in [root, temporaryDirectory, root.appendingPathComponent("blobs/sha256", isDirectory: true)] {
            try fileManager.createDirectory(at: directory, withIntermediateDirectories: true)
        }
    }
}
