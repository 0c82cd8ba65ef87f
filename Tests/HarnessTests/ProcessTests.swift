import ArchwayTesting
import Foundation
import Testing

@Suite("Processes and helpers")
struct ProcessTests {
    @Test func missingProgramSaysHowToInstall() throws {
        let error = #expect(throws: MissingProgram.self) {
            try requireProgram("archway-no-such-program")
        }
        #expect(
            error?.description
                == "archway-no-such-program is not installed: run `make test`, which installs docker-registry, skopeo and containerd")
        #expect(try requireProgram("docker-registry") == "/usr/bin/docker-registry")
        #expect(try requireProgram("sh").hasSuffix("/sh"))
    }

    @Test func freePortIsUsable() throws {
        let port = try freeLoopbackPort()
        #expect(port > 0 && port < 65536)
    }

    @Test func runCapturesOutputAndExitCode() async throws {
        let result = try await run("sh", ["-c", "echo out; echo err >&2; exit 3"])
        #expect(result.exitCode == 3)
        #expect(!result.succeeded)
        #expect(result.stdout == "out\n")
        #expect(result.stderr == "err\n")
        #expect(throws: ProcessFailed.self) { try result.requireSuccess() }
        let env = try await run("sh", ["-c", "echo $ARCHWAY_TEST_VAR"], environment: ["ARCHWAY_TEST_VAR": "hello"])
        #expect(env.stdout == "hello\n")
    }

    @Test func runHandlesLargeOutputOnBothStreams() async throws {
        // 8 MiB on stdout and 8 MiB on stderr at the same time: pipes would deadlock, files do not.
        let result = try await run("sh", ["-c", "head -c 8388608 /dev/zero & head -c 8388608 /dev/zero >&2; wait"])
        #expect(result.succeeded)
        #expect(result.stdoutData.count == 8 << 20)
        #expect(result.stderrData.count == 8 << 20)
    }

    @Test func runKillsOnTimeout() async throws {
        let clock = ContinuousClock()
        let start = clock.now
        await #expect(throws: ProcessTimedOut.self) {
            try await run("sleep", ["30"], timeout: .milliseconds(300))
        }
        #expect(clock.now - start < .seconds(5))
    }

    @Test func childProcessLifecycle() async throws {
        try await withTemporaryDirectory { directory in
            let log = directory.appendingPathComponent("out.log")
            let child = try ChildProcess.start("sh", ["-c", "echo started; exec sleep 60"], outputFile: log)
            #expect(child.pid > 0)
            #expect(child.isRunning)
            try await waitUntil(timeout: .seconds(5)) { child.output().contains("started") }
            // exec resets the peak: compare within one program image, current first.
            try await waitUntil(timeout: .seconds(5)) {
                (try? String(contentsOfFile: "/proc/\(child.pid)/comm", encoding: .utf8))?.hasPrefix("sleep") == true
            }
            let resident = child.residentMemoryBytes() ?? 0
            #expect(resident > 0)
            #expect((child.peakResidentMemoryBytes() ?? 0) >= resident)
            await child.terminate()
            #expect(!child.isRunning)
            #expect(child.termination?.signal == SIGTERM)
            #expect(child.residentMemoryBytes() == nil)

            // A child that ignores SIGTERM is killed after the timeout.
            let stubborn = try ChildProcess.start("sh", ["-c", "trap '' TERM; echo ready; while :; do sleep 1; done"], outputFile: log)
            try await waitUntil(timeout: .seconds(5)) { stubborn.output().contains("ready") }
            let clock = ContinuousClock()
            let start = clock.now
            await stubborn.terminate(timeout: .milliseconds(300))
            #expect(!stubborn.isRunning)
            #expect(stubborn.termination?.signal == SIGKILL)
            #expect(clock.now - start < .seconds(5))

            let killed = try ChildProcess.start("sleep", ["60"], outputFile: log)
            await killed.kill()
            #expect(killed.termination?.signal == SIGKILL)

            let quick = try ChildProcess.start("true", [], outputFile: log)
            #expect(await quick.waitForExit(timeout: .seconds(5))?.exitCode == 0)
            await quick.terminate()  // already ended: returns at once
        }
    }

    @Test func waitUntilTimesOut() async throws {
        await #expect(throws: WaitTimedOut.self) {
            try await waitUntil(timeout: .milliseconds(100)) { false }
        }
    }

    @Test func httpStatusIsNilWithoutAServer() async throws {
        let port = try freeLoopbackPort()
        #expect(await httpStatus("http://127.0.0.1:\(port)/v2/") == nil)
    }
}

@Suite("Archives and hashing")
struct ArchiveTests {
    @Test func tarAndGzipAreReadByTheRealTools() async throws {
        try await withTemporaryDirectory { directory in
            let payload = Data("hello from linux/arm64/v8\n".utf8)
            let tar = Archives.tar(fileNamed: "/hello-arm64.txt", contents: payload)
            #expect(tar.count % 512 == 0)
            let tarFile = directory.appendingPathComponent("layer.tar")
            try tar.write(to: tarFile)
            let listing = try await run("tar", ["-tvf", tarFile.path]).requireSuccess()
            #expect(listing.stdout.contains("hello-arm64.txt"))
            let extracted = try await run("tar", ["-xOf", tarFile.path, "hello-arm64.txt"]).requireSuccess()
            #expect(extracted.stdoutData == payload)

            // Bigger than one stored deflate block.
            let big = Data((0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
            let gzFile = directory.appendingPathComponent("big.gz")
            try Archives.gzip(big).write(to: gzFile)
            try await run("gzip", ["-t", gzFile.path]).requireSuccess()
            let unzipped = try await run("gzip", ["-dc", gzFile.path]).requireSuccess()
            #expect(unzipped.stdoutData == big)

            let layerGz = directory.appendingPathComponent("layer.tar.gz")
            try Archives.gzip(tar).write(to: layerGz)
            let fromGz = try await run("tar", ["-xzOf", layerGz.path, "hello-arm64.txt"]).requireSuccess()
            #expect(fromGz.stdoutData == payload)

            let emptyGz = directory.appendingPathComponent("empty.gz")
            try Archives.gzip(Data()).write(to: emptyGz)
            try await run("gzip", ["-t", emptyGz.path]).requireSuccess()
        }
    }

    @Test func hashesMatchSha256sum() async throws {
        #expect(sha256Digest(Data()) == "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        try await withTemporaryDirectory { directory in
            let file = try makeLargeBlobFile(size: 3 * 1024 * 1024 + 17, seed: 7, in: directory)
            #expect(try sha256AndSizeOfFile(file).size == 3 * 1024 * 1024 + 17)
            let expected = try await run("sha256sum", [file.path]).requireSuccess()
            #expect(try sha256OfFile(file) == "sha256:" + expected.stdout.prefix(64))
            // Same seed, same bytes; another seed, other bytes.
            let second = directory.appendingPathComponent("second")
            try FileManager.default.createDirectory(at: second, withIntermediateDirectories: true)
            let again = try makeLargeBlobFile(size: 1024, seed: 7, in: second)
            let other = try makeLargeBlobFile(size: 1024, seed: 8, in: directory)
            let head = try FileHandle(forReadingFrom: file).read(upToCount: 1024)
            #expect(try Data(contentsOf: again) == head)
            #expect(try Data(contentsOf: other) != head)
            // Incompressible.
            let gz = try await run("sh", ["-c", "gzip -c '\(file.path)' | wc -c"]).requireSuccess()
            #expect(Int(gz.stdout.trimmingCharacters(in: .whitespacesAndNewlines))! > 3 * 1024 * 1024)
        }
    }
}
