import Logging
import Policies
import Proxy
import ServiceLifecycle
import UnixSignals

/// Reloads the policies on SIGHUP without dropping a connection. A broken policy is refused
/// with its file:line errors logged, and the policies in force stay.
struct PolicyReloader: Service {
    let configuration: Configuration
    let store: PolicyStore
    let logger: Logger

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            SystemdNotifier.notify("RELOADING=1")
            reload()
            SystemdNotifier.notify("READY=1")
        }
    }

    func reload() {
        do {
            let policies = try configuration.loadPolicies()
            store.replace(with: policies)
            logger.notice("policies reloaded", metadata: ["rules": "\(policies.rules.map(\.name).joined(separator: ","))"])
        } catch {
            logger.error(
                "policy reload refused; the policies in force stay",
                metadata: ["errors": "\(error.errors.map(\.description).joined(separator: "; "))"]
            )
        }
    }
}
