import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// The process's open-file limit, raised to its hard limit at start-up: connections, blobs being
/// read and upstream transfers all take descriptors.
enum FileDescriptorLimit {
    static func raise(logger: Logger) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        if limit.rlim_cur < limit.rlim_max {
            let previous = limit.rlim_cur
            limit.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
                logger.debug("raised the open-file limit", metadata: ["from": "\(previous)", "to": "\(limit.rlim_max)"])
            }
        }
    }
}
