#!/usr/bin/env python3
"""The module ladder, checked: every module a target imports is declared in Package.swift, and
every module it declares is imported. `swift package dump-package` gives the declarations; the
sources give the imports. System modules (Foundation, Glibc, ...) need no declaration.

Exits 1 with one line per difference."""
import json, os, re, subprocess, sys

SYSTEM = {
    "Foundation", "FoundationEssentials", "FoundationNetworking", "Glibc", "Musl", "Darwin", "Dispatch", "Synchronization",
    "Testing", "XCTest", "_Concurrency",
}
# Rules of the ladder beyond "declared = imported".
FORBIDDEN = {
    "ProxyServer": {"Cache", "RegistryClient", "Policies", "Crypto", "GRDB"},
    "Proxy": {"Crypto", "Hummingbird"},
}
CRYPTO_ONLY_IN = {"OCI", "ArchwayTesting", "InterceptionCA"}  # test images (hashes, keys); the proxy CA (its keys)

def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    package = json.loads(subprocess.check_output(["swift", "package", "dump-package"], cwd=root, stderr=subprocess.DEVNULL))
    problems = []
    for target in package["targets"]:
        if target["type"] == "system":
            continue
        name = target["name"]
        path = target.get("path") or ("Tests/" if target["type"] == "test" else "Sources/") + name
        declared = set()
        for dependency in target["dependencies"]:
            kind, value = next(iter(dependency.items()))
            declared.add(value[0])
        imported = set()
        for directory, _, files in os.walk(os.path.join(root, path)):
            for file in files:
                if not file.endswith(".swift"):
                    continue
                for line in open(os.path.join(directory, file), encoding="utf-8"):
                    match = re.match(r"^(?:@\w+(?:\([^)]*\))?\s+)*(?:public |package |internal )?import\s+(?:(?:struct|class|enum|func|protocol|typealias|var|let)\s+)?([A-Za-z_][A-Za-z0-9_]*)", line)
                    if match:
                        imported.add(match.group(1))
        imported -= SYSTEM
        for module in sorted(imported - declared):
            problems.append(f"{path}: imports {module}, which Package.swift does not declare for {name}")
        for module in sorted(declared - imported):
            problems.append(f"Package.swift: {name} declares {module} and never imports it")
        for module in sorted(imported & FORBIDDEN.get(name, set())):
            problems.append(f"{path}: {name} must not import {module} (the module ladder)")
        if "Crypto" in imported and name not in CRYPTO_ONLY_IN:
            problems.append(f"{path}: {name} imports Crypto, which only OCI may")
    for problem in problems:
        print(problem)
    return 1 if problems else 0

if __name__ == "__main__":
    sys.exit(main())
