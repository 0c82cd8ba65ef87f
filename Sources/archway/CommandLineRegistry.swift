import ArchwayApp
import ArgumentParser
import Cache
import Logging
import OCI
import Proxy

/// The read path for a command beside a running server (`prefetch`, `inspect`): the
/// configuration's storage and upstreams, quiet logs, and the `--platform` options parsed.
func commandLineRegistry(config: String?, platforms: [String]) throws -> (
    registry: PullThroughRegistry, evictor: Evictor, platforms: [Platform]
) {
    var configuration = try loadConfiguration(config)
    // This process serves no peer: it must not hold downloads other replicas would stream from it.
    configuration.replica = nil
    let wanted = try platforms.map { text in
        guard let platform = try? Platform(parsing: text) else { throw ValidationError("--platform \(text) is not os/arch[/variant]") }
        return platform.normalized()
    }
    var logger = Logger(label: "archway")
    logger.logLevel = .critical
    let (registry, evictor) = try ArchwayServer.makeRegistry(configuration: configuration, ownsStorage: false, logger: logger)
    return (registry, evictor, wanted)
}
