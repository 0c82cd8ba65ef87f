import Foundation

/// python-dxf (from PyPI) in a virtualenv the harness makes once under `.build/`, as a client
/// that is neither Go nor Swift.
public struct PythonRegistryClient: Sendable {
    public let python: String

    /// The virtualenv, created with python-dxf when it is not there yet.
    public static func prepare() async throws -> PythonRegistryClient {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let venv = root.appendingPathComponent(".build/python-dxf")
        let python = venv.appendingPathComponent("bin/python").path
        let ready = (try? await run(python, ["-c", "import dxf"]))?.succeeded == true
        if !ready {
            let interpreter = (try? requireProgram("python3")) ?? "/usr/bin/python3"
            try await run(interpreter, ["-m", "venv", "--clear", venv.path]).requireSuccess()
            try await run(python, ["-m", "pip", "install", "--quiet", "python-dxf==12.1.1"], timeout: .seconds(300)).requireSuccess()
        }
        return PythonRegistryClient(python: python)
    }

    /// Pulls `repository:tag` from an insecure registry at `host` for `platform` the way a Python
    /// tool would: the manifest (choosing the platform's child from an index itself), the config
    /// and the layers. Returns the architecture the config states.
    public func pull(host: String, repository: String, tag: String, platform: String) async throws -> String {
        let script = """
            import json, sys
            from dxf import DXF
            host, repo, tag, platform = sys.argv[1:5]
            os_name, arch = platform.split("/")[:2]
            d = DXF(host, repo, insecure=True)
            manifest = json.loads(d.get_manifest_and_response(tag)[0])
            if "manifests" in manifest:
                child = next(m for m in manifest["manifests"]
                             if m.get("platform", {}).get("os") == os_name and m.get("platform", {}).get("architecture") == arch)
                manifest = json.loads(d.get_manifest_and_response(child["digest"])[0])
            for layer in manifest["layers"]:
                for _ in d.pull_blob(layer["digest"]):
                    pass
            config = json.loads(b"".join(d.pull_blob(manifest["config"]["digest"])))
            print(config["architecture"])
            """
        let result = try await run(python, ["-c", script, host, repository, tag, platform]).requireSuccess()
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
