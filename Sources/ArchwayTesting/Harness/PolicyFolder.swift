import Foundation

/// A policies folder `policies/` in `directory` holding `text` as `file`: what a test's
/// configuration names with `policies:`. Returns the folder.
@discardableResult
public func writePolicies(_ text: String, in directory: URL, file: String = "rules.yaml") throws -> URL {
    let policies = directory.appendingPathComponent("policies")
    try FileManager.default.createDirectory(at: policies, withIntermediateDirectories: true)
    try text.write(to: policies.appendingPathComponent(file), atomically: true, encoding: .utf8)
    return policies
}
