import ArchwayTesting
import Foundation
import LayerInspection
import Testing

/// Scans layers (bottom first) in small pieces, as a network would hand them over.
func scan(_ layers: [Data], _ execution: ImageExecution, limits: ScanLimits = ScanLimits(), piece: Int = 7001) throws -> BinaryReport {
    let scan = ImageScan(limits: limits)
    for layer in layers {
        scan.startLayer(compressedSize: Int64(layer.count))
        var offset = 0
        while offset < layer.count {
            let end = min(layer.count, offset + piece)
            try layer[offset..<end].withUnsafeBytes { try scan.feed($0) }
            offset = end
        }
        try scan.finishLayer()
    }
    return scan.report(for: execution)
}

let amd64Binary = ELFStub.binary(machine: ELFStub.x86)
let arm64Binary = ELFStub.binary(machine: ELFStub.aarch64)

/// A base layer as Debian's: merged /usr (`/bin` a link to `usr/bin`), a shell and env.
func baseLayer(_ shell: Data, compression: (Data) -> Data = LayerCompressor.gzip) -> Data {
    var tar = TarWriter()
    tar.directory("usr")
    tar.directory("usr/bin")
    tar.symbolicLink("bin", to: "usr/bin")
    tar.file("usr/bin/dash", shell)
    tar.symbolicLink("usr/bin/sh", to: "dash")
    tar.file("usr/bin/env", shell)
    tar.file("etc/os-release", Data("ID=test\n".utf8), mode: 0o644)
    return compression(tar.finished)
}

@Suite struct ELFIdentityTests {
    @Test func machinesAndTheirArchitectures() {
        #expect(ELFIdentity(amd64Binary)?.architecture == "amd64")
        #expect(ELFIdentity(amd64Binary)?.description == "ELF 64-bit LSB x86-64")
        #expect(ELFIdentity(arm64Binary)?.architecture == "arm64")
        #expect(ELFIdentity(ELFStub.binary(machine: ELFStub.arm, bits: 32))?.architecture == "arm")
        #expect(ELFIdentity(ELFStub.binary(machine: 3, bits: 32))?.architecture == "386")
        #expect(ELFIdentity(ELFStub.binary(machine: 21))?.architecture == "ppc64le")
        #expect(ELFIdentity(ELFStub.binary(machine: 21, littleEndian: false))?.architecture == "ppc64")
        #expect(ELFIdentity(ELFStub.binary(machine: 22, littleEndian: false))?.architecture == "s390x")
        #expect(ELFIdentity(ELFStub.binary(machine: 243))?.architecture == "riscv64")
        #expect(ELFIdentity(ELFStub.binary(machine: 0x9026))?.architecture == nil)
    }

    @Test func notELF() {
        #expect(ELFIdentity(Data("#!/bin/sh\necho hi\n".utf8)) == nil)
        #expect(ELFIdentity(Data([0x7f, 0x45, 0x4c, 0x46])) == nil)  // too short
        var badClass = amd64Binary
        badClass[4] = 9
        #expect(ELFIdentity(badClass) == nil)
    }
}

@Suite struct TarReaderTests {
    func entries(_ archive: Data, piece: Int) throws -> [(TarEntry, [UInt8])] {
        let reader = TarReader()
        var seen: [(TarEntry, [UInt8])] = []
        reader.onEntry = { entry in
            if entry.kind != .file { seen.append((entry, [])) }
            return 8
        }
        reader.onContent = { entry, head in seen.append((entry, head)) }
        var offset = 0
        while offset < archive.count {
            let end = min(archive.count, offset + piece)
            try archive[offset..<end].withUnsafeBytes { try reader.feed($0) }
            offset = end
        }
        #expect(reader.isFinished)
        return seen
    }

    @Test(arguments: [1, 511, 512, 4096, 1 << 20])
    func membersWhateverThePieces(piece: Int) throws {
        var tar = TarWriter()
        tar.directory("app")
        tar.file("app/server", amd64Binary)
        tar.symbolicLink("app/current", to: "server")
        tar.hardLink("app/copy", to: "app/server")
        let long = "deep/" + String(repeating: "nested-folder/", count: 12) + "tool"
        tar.file(long, Data("#!/bin/sh\n".utf8))
        let seen = try entries(tar.finished, piece: piece)
        #expect(seen.map(\.0.path) == ["app", "app/server", "app/current", "app/copy", long])
        #expect(seen[1].1 == Array(amd64Binary.prefix(8)))
        #expect(seen[2].0.kind == .symbolicLink("server"))
        #expect(seen[3].0.kind == .hardLink("app/server"))
        #expect(seen[4].1 == Array("#!/bin/s".utf8))
    }

    @Test func aCorruptHeaderIsAnError() throws {
        var tar = TarWriter()
        tar.file("a", Data("x".utf8))
        var archive = tar.finished
        archive[10] ^= 0xff
        #expect(throws: TarError.self) { _ = try entries(archive, piece: 512) }
        #expect(throws: TarError.self) { _ = try entries(Data(repeating: 0x41, count: 1024), piece: 512) }
    }

    @Test func numbersInOctalAndBase256() {
        #expect(TarReaderProbe.number("0000644\0") == 0o644)
        #expect(TarReaderProbe.number("  17 \0") == 0o17)
        #expect(TarReaderProbe.number("12x") == nil)
        #expect(TarReaderProbe.base256([0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0x00]) == 256)
    }
}

/// The header-number reader through a one-member archive: what a size field decodes to.
enum TarReaderProbe {
    static func number(_ field: String) -> Int64? {
        size(Array(field.utf8))
    }

    static func base256(_ field: [UInt8]) -> Int64? {
        size(field)
    }

    /// Writes `field` as a member's size and reads it back; nil when the reader refuses it.
    static func size(_ field: [UInt8]) -> Int64? {
        var header = [UInt8](TarWriter.headerForProbe)
        for index in 0..<12 { header[124 + index] = index < field.count ? field[index] : 0 }
        for index in 148..<156 { header[index] = 0x20 }
        let checksum = header.reduce(0) { $0 + Int($1) }
        let digits = Array(String(checksum, radix: 8).utf8)
        for index in 0..<6 { header[148 + index] = UInt8(ascii: "0") }
        for (index, digit) in digits.enumerated() { header[148 + 6 - digits.count + index] = digit }
        header[154] = 0
        let reader = TarReader()
        var size: Int64?
        reader.onEntry = { entry in
            size = entry.size
            return 0
        }
        do {
            try header.withUnsafeBytes { try reader.feed($0) }
        } catch {
            return nil
        }
        return size
    }
}

extension TarWriter {
    static var headerForProbe: Data {
        var tar = TarWriter()
        tar.file("probe", Data())
        return tar.data.prefix(512)
    }
}

@Suite struct LayeredFilesystemTests {
    @Test func pathsAreCleaned() {
        #expect(LayeredFilesystem.clean("./usr/bin/") == "/usr/bin")
        #expect(LayeredFilesystem.clean("../../etc/passwd") == "/etc/passwd")
        #expect(LayeredFilesystem.clean("a//b/./c/..") == "/a/b")
        #expect(LayeredFilesystem.clean("./") == "/")
    }

    @Test func linksAreFollowedLikeTheKernel() throws {
        var tar = TarWriter()
        tar.symbolicLink("bin", to: "usr/bin")
        tar.file("usr/bin/tool", amd64Binary)
        tar.symbolicLink("usr/local/bin/tool", to: "../../bin/tool")
        tar.symbolicLink("loop/a", to: "b")
        tar.symbolicLink("loop/b", to: "a")
        tar.symbolicLink("escape", to: "../../../../usr/bin/tool")
        let layer = LayerScanner(compressedSize: 0)
        try tar.finished.withUnsafeBytes { try layer.feed($0) }
        var filesystem = LayeredFilesystem()
        filesystem.apply(try layer.finish())
        #expect(filesystem.resolve("/bin/tool") == "/usr/bin/tool")
        #expect(filesystem.resolve("/usr/local/bin/tool") == "/usr/bin/tool")
        #expect(filesystem.resolve("/escape") == "/usr/bin/tool")
        #expect(filesystem.resolve("/loop/a") == nil)
        #expect(filesystem.resolve("tool", from: "/bin") == "/usr/bin/tool")
    }
}

@Suite struct BinaryReportTests {
    @Test func aLyingImage() throws {
        var app = TarWriter()
        app.file("app/server", amd64Binary)
        let report = try scan(
            [baseLayer(arm64Binary), LayerCompressor.gzip(app.finished)],
            ImageExecution(entrypoint: ["/app/server"], cmd: ["--port", "80"]))
        #expect(report.outcome == .found)
        #expect(report.architecture == "amd64")
        #expect(report.binary == "/app/server")
        #expect(report.elf == "ELF 64-bit LSB x86-64")
        #expect(report.contradicts(architecture: "arm64"))
        #expect(!report.contradicts(architecture: "amd64"))
        #expect(report.executables == ["arm64": 2])
    }

    @Test func anHonestImageInZstd() throws {
        var app = TarWriter()
        app.file("usr/local/bin/server", arm64Binary)
        let report = try scan(
            [baseLayer(arm64Binary, compression: LayerCompressor.zstd), LayerCompressor.zstd(app.finished)],
            ImageExecution(cmd: ["server"]))
        #expect(report.outcome == .found)
        #expect(report.chain == ["server -> /usr/local/bin/server"])
        #expect(!report.contradicts(architecture: "arm64"))
        #expect(report.executables == ["arm64": 3])
    }

    @Test func aScriptIsJudgedByItsInterpreter() throws {
        var app = TarWriter()
        app.file("docker-entrypoint.sh", Data("#!/bin/sh -e\nexec \"$@\"\n".utf8))
        let report = try scan(
            [baseLayer(amd64Binary), LayerCompressor.gzip(app.finished)], ImageExecution(entrypoint: ["/docker-entrypoint.sh"]))
        #expect(report.chain == ["/docker-entrypoint.sh", "/bin/sh -> /usr/bin/dash"])
        #expect(report.architecture == "amd64")
    }

    @Test func envLooksTheProgramUpInPath() throws {
        var app = TarWriter()
        app.file("opt/python/bin/python3", arm64Binary)
        app.file("app/main.py", Data("#!/usr/bin/env -S python3 -u\nprint(1)\n".utf8))
        let report = try scan(
            [baseLayer(amd64Binary), app.finished],
            ImageExecution(entrypoint: ["./main.py"], env: ["PATH=/opt/python/bin:/usr/bin"], workingDir: "/app"))
        #expect(report.chain == ["./main.py -> /app/main.py", "/usr/bin/env", "python3 -> /opt/python/bin/python3"])
        #expect(report.architecture == "arm64")
    }

    @Test func aSymlinkedEntrypoint() throws {
        var app = TarWriter()
        app.file("opt/app/bin/app-1.2", amd64Binary)
        app.symbolicLink("usr/local/bin/app", to: "/opt/app/bin/app-1.2")
        let report = try scan([baseLayer(arm64Binary), LayerCompressor.gzip(app.finished)], ImageExecution(entrypoint: ["app"]))
        #expect(report.binary == "/opt/app/bin/app-1.2")
        #expect(report.architecture == "amd64")
    }

    @Test func aLaterLayerReplacesAFile() throws {
        var first = TarWriter()
        first.file("app/server", amd64Binary)
        var second = TarWriter()
        second.file("app/server", arm64Binary)
        let report = try scan([baseLayer(arm64Binary), first.finished, second.finished], ImageExecution(entrypoint: ["/app/server"]))
        #expect(report.architecture == "arm64")
    }

    @Test func whiteoutsRemoveFilesAndFolders() throws {
        var first = TarWriter()
        first.file("app/server", amd64Binary)
        first.file("tools/bin/helper", amd64Binary)
        var second = TarWriter()
        second.whiteout("app/server")
        second.opaque("tools")
        let layers = [baseLayer(arm64Binary), first.finished, second.finished]
        let server = try scan(layers, ImageExecution(entrypoint: ["/app/server"]))
        #expect(server.outcome == .missing)
        #expect(server.detail == "/app/server is not in the image")
        #expect(try scan(layers, ImageExecution(entrypoint: ["/tools/bin/helper"])).outcome == .missing)
        // A whiteout hides only the layers below: the same layer may add the path again.
        var third = TarWriter()
        third.whiteout("app")
        third.file("app/server", arm64Binary)
        #expect(try scan(layers + [third.finished], ImageExecution(entrypoint: ["/app/server"])).architecture == "arm64")
    }

    @Test func aFolderReplacedByAFileTakesItsContentsAlong() throws {
        var first = TarWriter()
        first.file("opt/app/server", amd64Binary)
        var second = TarWriter()
        second.file("opt/app", arm64Binary)
        second.symbolicLink("usr/local/bin/server", to: "/opt/app")
        let layers = [baseLayer(arm64Binary), first.finished, second.finished]
        #expect(try scan(layers, ImageExecution(entrypoint: ["/opt/app/server"])).outcome == .missing)
        #expect(try scan(layers, ImageExecution(entrypoint: ["server"])).architecture == "arm64")
    }

    @Test func nothingToRun() throws {
        #expect(try scan([baseLayer(arm64Binary)], ImageExecution()).outcome == .noEntrypoint)
        var app = TarWriter()
        app.file("app/readme", Data("hello".utf8))
        let report = try scan([app.finished], ImageExecution(entrypoint: ["/app/readme"]))
        #expect(report.outcome == .unknownFormat)
    }

    @Test func aBombStopsAtItsLimit() throws {
        var tar = TarWriter()
        tar.header("zeros", size: 1 << 40)
        let bomb = LayerCompressor.gzip(prefix: tar.data, zeros: 128 << 20)
        #expect(bomb.count < 1 << 20)
        #expect(throws: ScanStop.expansion(100)) {
            _ = try scan([bomb], ImageExecution(entrypoint: ["/x"]), piece: 1 << 16)
        }
        // The byte limit holds whatever the ratio allows.
        #expect(throws: ScanStop.tooLarge(8 << 20)) {
            _ = try scan(
                [bomb], ImageExecution(entrypoint: ["/x"]), limits: ScanLimits(bytesPerLayer: 8 << 20, expansion: 1 << 20), piece: 1 << 16)
        }
    }

    @Test func theWholeImageIsBoundedToo() throws {
        var tar = TarWriter()
        tar.file("data", Data(repeating: 7, count: 3 << 20), mode: 0o644)
        let layer = LayerCompressor.gzip(tar.finished)
        let limits = ScanLimits(bytesPerLayer: 4 << 20, expansion: 1 << 20, bytesPerImage: 8 << 20)
        #expect(throws: Never.self) { _ = try scan([layer, layer], ImageExecution(), limits: limits) }
        #expect(throws: ScanStop.imageTooLarge(8 << 20)) { _ = try scan([layer, layer, layer], ImageExecution(), limits: limits) }
    }

    @Test func garbageIsMalformed() throws {
        let garbage = Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 131) })
        #expect(throws: ScanStop.self) { _ = try scan([garbage], ImageExecution(entrypoint: ["/x"])) }
        var corrupt = LayerCompressor.gzip(baseLayer(amd64Binary))
        corrupt[20] ^= 0xff
        #expect(throws: ScanStop.self) { _ = try scan([corrupt], ImageExecution(entrypoint: ["/x"])) }
        #expect(throws: ScanStop.self) { _ = try scan([Data([0x1f])], ImageExecution(entrypoint: ["/x"])) }
    }

    @Test func membersAreBounded() throws {
        var tar = TarWriter()
        for index in 0..<50 { tar.file("f\(index)", Data(), mode: 0o644) }
        #expect(throws: ScanStop.tooManyMembers(20)) {
            _ = try scan([tar.finished], ImageExecution(entrypoint: ["/x"]), limits: ScanLimits(members: 20))
        }
    }

    @Test func executionFromAConfig() {
        let config = Data(
            #"{"architecture":"arm64","os":"linux","config":{"Entrypoint":["/bin/app"],"Cmd":null,"Env":["PATH=/x:/y"],"WorkingDir":"/srv"}}"#
                .utf8)
        let execution = ImageExecution.decode(config)
        #expect(execution?.arguments == ["/bin/app"])
        #expect(execution?.searchPath == ["/x", "/y"])
        #expect(execution?.workingDir == "/srv")
        #expect(ImageExecution.decode(Data(#"{"os":"linux"}"#.utf8))?.arguments == [])
        #expect(ImageExecution.decode(Data("[1]".utf8)) == nil)
    }
}
