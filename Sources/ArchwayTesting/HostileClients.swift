import Foundation

/// `scripts/hostile_clients.py`: attackers in a process of their own, so that they share
/// nothing (threads, connection pools) with the client a test measures.
public enum HostileClients {
    /// Runs one attack to its end and returns the JSON line it printed last (see ``report(_:)``).
    public static func run(_ arguments: [String], timeout: Duration = .seconds(120)) async throws -> String {
        let result = try await ArchwayTesting.run(try requireProgram("python3"), [script.path] + arguments, timeout: timeout)
        guard result.exitCode == 0, let line = result.stdout.split(separator: "\n").last, report(String(line)) != nil else {
            throw HarnessError("hostile_clients.py \(arguments.joined(separator: " ")) failed: \(result.stdout)\(result.stderr)")
        }
        return String(line)
    }

    /// A JSON line an attack printed, as an object.
    public static func report(_ line: String) -> [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
    }

    /// Starts an attack in the background; its output goes to `outputFile`.
    public static func start(_ arguments: [String], outputFile: URL) throws -> ChildProcess {
        try ChildProcess.start(try requireProgram("python3"), [script.path] + arguments, outputFile: outputFile)
    }

    static var script: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/hostile_clients.py")
    }
}
