import Foundation

/// nginx (Debian's) as the one address in front of several Archway replicas, round robin, as a
/// load balancer or a Kubernetes Service would be: responses streamed through unbuffered, on a
/// free loopback port, everything under its own folder. Stopped by SIGQUIT, by pid.
public final class NginxFront: Sendable {
    public let port: Int
    /// `127.0.0.1:PORT`
    public let host: String
    /// `http://127.0.0.1:PORT`
    public let url: String
    public let directory: URL
    private let process: ChildProcess

    private init(port: Int, directory: URL, process: ChildProcess) {
        self.port = port
        self.host = "127.0.0.1:\(port)"
        self.url = "http://127.0.0.1:\(port)"
        self.directory = directory
        self.process = process
    }

    /// Starts nginx in front of `backends` (`host:port` each); returns once it answers.
    public static func start(backends: [String]) async throws -> NginxFront {
        let nginx = try requireProgram("nginx")
        let directory = try makeTemporaryDirectory(prefix: "archway-nginx")
        let port = try freeLoopbackPort()
        let root = directory.path
        let configuration = """
            daemon off;
            master_process on;
            worker_processes 1;
            user root;
            pid \(root)/nginx.pid;
            error_log \(root)/error.log warn;
            events { worker_connections 1024; }
            http {
                access_log \(root)/access.log;
                client_body_temp_path \(root)/body;
                proxy_temp_path \(root)/proxy;
                fastcgi_temp_path \(root)/fastcgi;
                uwsgi_temp_path \(root)/uwsgi;
                scgi_temp_path \(root)/scgi;
                upstream archway {
            \(backends.map { "        server \($0) max_fails=0;" }.joined(separator: "\n"))
                    keepalive 16;
                }
                server {
                    listen 127.0.0.1:\(port);
                    location / {
                        proxy_pass http://archway;
                        proxy_http_version 1.1;
                        proxy_set_header Connection "";
                        proxy_set_header Host $http_host;
                        proxy_buffering off;
                        proxy_request_buffering off;
                        proxy_read_timeout 300s;
                        proxy_next_upstream off;
                    }
                }
            }

            """
        let file = directory.appendingPathComponent("nginx.conf")
        try configuration.write(to: file, atomically: true, encoding: .utf8)
        let process = try ChildProcess.start(
            nginx, ["-p", root, "-c", file.path, "-e", "\(root)/error.log"], outputFile: directory.appendingPathComponent("nginx.out"))
        let front = NginxFront(port: port, directory: directory, process: process)
        do {
            try await waitUntil(timeout: .seconds(20), "nginx to answer on port \(port)") {
                guard process.isRunning else { return true }
                return await httpStatus("\(front.url)/_archway/health") != nil
            }
            guard process.isRunning else { throw HarnessError("nginx exited: \(process.output())") }
        } catch {
            await front.close()
            throw error
        }
        return front
    }

    /// nginx's error log (a backend it could not reach, a request it cut).
    public func errorLog() -> String {
        (try? String(contentsOf: directory.appendingPathComponent("error.log"), encoding: .utf8)) ?? ""
    }

    /// Stops nginx (SIGQUIT, a graceful stop; SIGKILL after a bound) and removes its folder.
    public func close() async {
        process.signal(SIGQUIT)
        if await process.waitForExit(timeout: .seconds(10)) == nil { await process.kill() }
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Runs `body` with nginx in front of `backends`, and stops it afterwards.
public func withNginxFront<T>(
    backends: [String], isolation: isolated (any Actor)? = #isolation, _ body: (NginxFront) async throws -> T
) async throws -> T {
    try await withStarted({ try await NginxFront.start(backends: backends) }, close: { await $0.close() }, body)
}
