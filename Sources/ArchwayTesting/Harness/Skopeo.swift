import Foundation

/// Runs skopeo (1.9.3 here). Every command gets `--insecure-policy`, so no
/// /etc/containers/policy.json is needed. `arguments` may hold command flags and global flags
/// alike (`--src-tls-verify=false`, `--all`, `--override-arch arm64`, ...): skopeo accepts global
/// flags after the command name.
public enum Skopeo {
    /// `skopeo copy --insecure-policy <arguments> <from> <to>`, e.g. from
    /// `docker://127.0.0.1:PORT/test/multi:1.0` to `oci:/tmp/dir:tag`. Returns the result whether or
    /// not it succeeded (see ``ProcessResult/requireSuccess()``).
    public static func copy(
        from source: String,
        to destination: String,
        arguments: [String] = [],
        environment: [String: String]? = nil,
        timeout: Duration = .seconds(600)
    ) async throws -> ProcessResult {
        try await run(
            try requireProgram("skopeo"), ["copy", "--insecure-policy"] + arguments + [source, destination],
            environment: environment, timeout: timeout)
    }

    /// `skopeo inspect --raw <arguments> <reference>`: the manifest bytes, exactly as served, are
    /// in `stdoutData`.
    public static func inspectRaw(
        _ reference: String,
        arguments: [String] = [],
        environment: [String: String]? = nil,
        timeout: Duration = .seconds(120)
    ) async throws -> ProcessResult {
        try await run(
            try requireProgram("skopeo"), ["inspect", "--insecure-policy", "--raw"] + arguments + [reference],
            environment: environment, timeout: timeout)
    }

    /// `skopeo inspect <arguments> <reference>` (the JSON summary of the image for skopeo's platform).
    public static func inspect(
        _ reference: String,
        arguments: [String] = [],
        environment: [String: String]? = nil,
        timeout: Duration = .seconds(120)
    ) async throws -> ProcessResult {
        try await run(
            try requireProgram("skopeo"), ["inspect", "--insecure-policy"] + arguments + [reference],
            environment: environment, timeout: timeout)
    }

    /// The `architecture` of the image in an OCI layout written by `skopeo copy ... oci:<dir>:<tag>`.
    /// With `--all` the layout's entry is an index whose children are blobs: the child for
    /// `platform` (default: this machine's) is taken.
    public static func configArchitecture(ofOCILayout layout: URL, tag: String? = nil, platform: ImagePlatform? = nil) throws -> String {
        try image(inOCILayout: layout, tag: tag, platform: platform).architecture
    }

    /// The image (top digest, chosen manifest, config) in an OCI layout; `tag` selects the entry by its
    /// `org.opencontainers.image.ref.name` annotation (default: the only entry).
    public static func image(inOCILayout layout: URL, tag: String? = nil, platform: ImagePlatform? = nil) throws -> StoredImage {
        let entry = try layoutEntry(layout, tag: tag)
        let blobs = layout.appendingPathComponent("blobs")
        func blob(_ digest: String) -> Data? {
            let parts = digest.split(separator: ":", maxSplits: 1)
            guard parts.count == 2 else { return nil }
            return try? Data(contentsOf: blobs.appendingPathComponent(String(parts[0])).appendingPathComponent(String(parts[1])))
        }
        return try StoredImage.resolveSync(digest: entry.digest, platform: platform ?? .host) { blob($0) }
    }

    /// The descriptor in a layout's index.json for `tag` (or its only entry).
    public static func layoutEntry(_ layout: URL, tag: String? = nil) throws -> ManifestDescriptor {
        let index = try Data(contentsOf: layout.appendingPathComponent("index.json"))
        let entries = try ImageDocuments.indexEntries(index)
        if let tag {
            guard let entry = entries.first(where: { $0.annotations?["org.opencontainers.image.ref.name"] == tag }) else {
                throw HarnessError("no entry for tag \(tag) in \(layout.path)/index.json")
            }
            return entry
        }
        guard entries.count == 1, let entry = entries.first else {
            throw HarnessError("\(layout.path)/index.json has \(entries.count) entries; name the tag")
        }
        return entry
    }
}
