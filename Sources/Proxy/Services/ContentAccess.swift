import Cache
import Logging
import OCI
import RegistryClient

/// Content asked for under a name: where it is fetched, and whether what is stored (or being
/// downloaded) may be served under that name as it is.
///
/// The store holds each digest once for every repository and upstream, so a digest alone says
/// nothing about who may read it. Content is served under a name only through a link to that
/// name (it was fetched from there, named by a manifest served there, or is a child of an index
/// synthesized there) whose source is known to have it: fetched from that source, or confirmed
/// there by a HEAD. A private upstream's layers therefore never reach a public name, and an
/// allow list holds for content shared by digest.
struct Admission: Sendable {
    /// The routes to fetch from, in order: sources known to have the content first, then the
    /// requested route itself (asking the name's own upstream never crosses a boundary).
    var sources: [UpstreamRouter.Route]
    /// A linked source is known to have the content: stored bytes and a running download may be
    /// served under the name.
    var isConfirmed: Bool
}

/// A digest under a name, as remembered in memory.
struct NamedDigest: Hashable, Sendable {
    var digest: Digest
    var name: RepositoryKey
}

/// Decides under which names content may be served (see ``Admission``) and records the links
/// that say so. Shared by the blob and manifest services.
struct ContentAccess: Sendable {
    let router: UpstreamRouter
    let catalog: any Catalog
    let offline: Bool
    let logger: Logger
    /// Digests known to be servable under a name, and the sources known to have them: a warm
    /// pull checks its access without a catalog read.
    let confirmedSources = RecentlyUsed<NamedDigest, [RepositoryKey]>(budget: 100_000)
    /// Manifests whose content is already linked to the name they were served under.
    let linkedManifests = RecentlyUsed<NamedDigest, Bool>(budget: 20_000)

    /// Where `digest` comes from when served under `route`, and whether it may be served from
    /// what is stored.
    func admission(_ digest: Digest, under route: UpstreamRouter.Route) async throws -> Admission {
        let key = NamedDigest(digest: digest, name: route.key)
        if let confirmed = confirmedSources.value(for: key) {
            return Admission(sources: routes(confirmed, then: route), isConfirmed: true)
        }
        let linked = try await catalog.sources(digest, under: route.key)
        let confirmed = linked.filter(\.isConfirmed).map(\.origin)
        if !confirmed.isEmpty {
            confirmedSources.set(confirmed, for: key)
            let unconfirmed = linked.filter { !$0.isConfirmed }.map(\.origin)
            return Admission(sources: routes(confirmed + unconfirmed, then: route), isConfirmed: true)
        }
        return Admission(sources: routes(linked.map(\.origin), then: route), isConfirmed: false)
    }

    /// Remembers that `name` may read `digest`, fetched from `source` (a download for it was
    /// verified and recorded): what the catalog now says, known without asking it again.
    func remember(_ digest: Digest, under name: RepositoryKey, confirmedAt source: RepositoryKey) {
        let key = NamedDigest(digest: digest, name: name)
        let known = confirmedSources.value(for: key) ?? []
        if !known.contains(source) { confirmedSources.set(known + [source], for: key) }
    }

    /// Makes sure one of the admission's sources has the content, asking each with a HEAD, so
    /// that what is stored may be served under `route`. Throws the not-found error when none has
    /// it, and when offline (nothing can be confirmed).
    func confirmed(_ digest: Digest, _ admission: Admission, under route: UpstreamRouter.Route, what: UpstreamError.Subject)
        async throws -> Admission
    {
        if admission.isConfirmed { return admission }
        if offline {
            throw RegistryError(
                what == .blob ? .blobUnknown : .manifestUnknown,
                "\(digest) is not known to be in \(route.key), and offline no upstream can confirm it")
        }
        var notFound: UpstreamError?
        for source in admission.sources {
            do {
                if what == .blob {
                    _ = try await source.upstream.blobLength(source.repository, digest)
                } else {
                    let descriptor = try await source.upstream.manifestDescriptor(
                        source.repository, .digest(digest), accepting: MediaType.anyManifest)
                    guard descriptor.digest == digest else { continue }
                }
                try await catalog.confirm(digest, at: source.key)
                if source.key != route.key { try await catalog.link([digest], under: route.key, source: source.key) }
                confirmedSources.set([source.key], for: NamedDigest(digest: digest, name: route.key))
                return Admission(sources: [source] + admission.sources.filter { $0.key != source.key }, isConfirmed: true)
            } catch let error as UpstreamError {
                guard case .status(404, _, _) = error else { throw error.registryError(for: what, route: source, logger: logger) }
                notFound = error
            }
        }
        throw (notFound ?? .status(404, errors: [], retryAfter: nil)).registryError(for: what, route: route, logger: logger)
    }

    /// Links what a manifest names (config, layers, children) to the name it was served under,
    /// fetched from where the manifest came from. Remembered, so a warm manifest writes nothing.
    func linkReferences(of manifest: Manifest, under route: UpstreamRouter.Route, source: UpstreamRouter.Route) async {
        let key = NamedDigest(digest: manifest.digest, name: route.key)
        guard linkedManifests.value(for: key) == nil else { return }
        do {
            try await catalog.link(manifest.references, under: route.key, source: source.key)
            if source.key != route.key { try await catalog.link([manifest.digest], under: route.key, source: source.key) }
            linkedManifests.set(true, for: key)
        } catch {
            logger.error("could not link a manifest's content", metadata: ["digest": "\(manifest.digest)", "error": "\(error)"])
        }
    }

    /// The routes of these repositories (those whose upstream is still configured), then `route`.
    func routes(_ keys: [RepositoryKey], then route: UpstreamRouter.Route) -> [UpstreamRouter.Route] {
        var routes: [UpstreamRouter.Route] = []
        for key in keys {
            guard let source = router.route(upstream: key.upstream, repository: key.repository),
                !routes.contains(where: { $0.key == source.key })
            else { continue }
            routes.append(source)
        }
        if !routes.contains(where: { $0.key == route.key }) { routes.append(route) }
        return routes
    }
}

extension MediaType {
    /// Every manifest type, so an upstream answers with its index when it has one.
    static let anyManifest = manifestTypes.map(\.rawValue)
}

extension Manifest {
    /// The digests a manifest names: config and layers, or children.
    var references: [Digest] {
        switch try? decoded() {
        case .image(let image): [image.config.digest] + image.layers.map(\.digest)
        case .index(let index): index.manifests.map(\.digest)
        case nil: []
        }
    }
}
