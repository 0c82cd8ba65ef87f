import Cache
import Foundation
import OCI
import Testing

@Suite struct StorageLayoutTests {
    @Test func blobPathIsDerivedFromTheDigest() throws {
        let layout = StorageLayout(root: URL(fileURLWithPath: "/var/cache/archway/../archway"))
        let digest = try Digest(parsing: "sha256:" + String(repeating: "ab", count: 32))
        #expect(layout.blobPath(digest).path == "/var/cache/archway/blobs/sha256/ab/" + String(repeating: "ab", count: 32))
        #expect(layout.temporaryDirectory.path == "/var/cache/archway/tmp")
        #expect(layout.catalogPath.path == "/var/cache/archway/catalog.sqlite")
    }

    @Test func prepareCreatesTheFolders() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("archway-layout-\(UInt64.random(in: 0...UInt64.max))")
        defer { try? FileManager.default.removeItem(at: root) }
        try StorageLayout(root: root).prepare()
        var isDirectory: ObjCBool = false
        #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("blobs/sha256").path, isDirectory: &isDirectory))
        #expect(isDirectory.boolValue)
        #expect(FileManager.default.fileExists(atPath: root.appendingPathComponent("tmp").path))
    }
}
