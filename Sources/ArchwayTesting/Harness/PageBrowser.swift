import Foundation

/// A real headless Chromium (Debian's `chromium` and `chromium-driver`) driven by Selenium
/// (from PyPI, in a virtualenv the harness makes once under `.build/`), running
/// `scripts/page_check.py` against the operator's page.
public enum PageBrowser {
    static var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }

    /// The virtualenv's python, created with Selenium when it is not there yet.
    public static func python() async throws -> String {
        _ = try requireProgram("chromium")
        _ = try requireProgram("chromedriver")
        let venv = root.appendingPathComponent(".build/selenium")
        let python = venv.appendingPathComponent("bin/python").path
        if (try? await run(python, ["-c", "import selenium"]))?.succeeded != true {
            let interpreter = (try? requireProgram("python3")) ?? "/usr/bin/python3"
            try await run(interpreter, ["-m", "venv", "--clear", venv.path]).requireSuccess()
            try await run(python, ["-m", "pip", "install", "--quiet", "selenium==4.45.0"], timeout: .seconds(300)).requireSuccess()
        }
        return python
    }

    /// Opens `url` and reports what the page shows (see `scripts/page_check.py`), writing its
    /// screenshots into `screenshots`. With `watchDownload`, first waits up to that long for a
    /// download's bar to advance.
    public static func check(url: String, screenshots: URL, watchDownload: Duration? = nil) async throws -> [String: Any] {
        try FileManager.default.createDirectory(at: screenshots, withIntermediateDirectories: true)
        var arguments = [root.appendingPathComponent("scripts/page_check.py").path, url, screenshots.path]
        if let watchDownload { arguments += ["--watch-download", "\(Int(watchDownload.components.seconds))"] }
        let result = try await run(try await python(), arguments, timeout: .seconds(180)).requireSuccess()
        guard let report = try JSONSerialization.jsonObject(with: result.stdoutData) as? [String: Any] else {
            throw HarnessError("page_check.py printed no report: \(result)")
        }
        return report
    }

    /// Where the tests keep the screenshots: `.build/operator-page/`.
    public static var screenshotFolder: URL { root.appendingPathComponent(".build/operator-page") }
}
