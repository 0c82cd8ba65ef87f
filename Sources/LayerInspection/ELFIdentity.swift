/// What an ELF file's header says about the machine it runs on: class, byte order and
/// `e_machine`, which give the architecture in OCI's words (`amd64`, `arm64`, `arm`, ...).
public struct ELFIdentity: Sendable, Hashable, Codable, CustomStringConvertible {
    /// 32 or 64.
    public var bits: Int
    public var isLittleEndian: Bool
    /// `e_machine`.
    public var machine: UInt16

    /// The bytes an ELF file must start with for its identity to be read.
    public static let headerLength = 20

    /// Reads the header at the start of `bytes`; nil when they are not an ELF header.
    public init?(_ bytes: some Collection<UInt8>) {
        let header = Array(bytes.prefix(Self.headerLength))
        guard header.count == Self.headerLength, header[0...3] == [0x7f, 0x45, 0x4c, 0x46] else { return nil }
        switch header[4] {
        case 1: bits = 32
        case 2: bits = 64
        default: return nil
        }
        switch header[5] {
        case 1: isLittleEndian = true
        case 2: isLittleEndian = false
        default: return nil
        }
        machine =
            isLittleEndian ? UInt16(header[18]) | UInt16(header[19]) << 8 : UInt16(header[19]) | UInt16(header[18]) << 8
    }

    public init(bits: Int, isLittleEndian: Bool, machine: UInt16) {
        self.bits = bits
        self.isLittleEndian = isLittleEndian
        self.machine = machine
    }

    /// The OCI (Go `GOARCH`) architecture, or nil for a machine no image platform names.
    public var architecture: String? {
        switch machine {
        case 3: "386"
        case 62: "amd64"
        case 40: "arm"
        case 183: "arm64"
        case 20: "ppc"
        case 21: isLittleEndian ? "ppc64le" : "ppc64"
        case 22: bits == 64 ? "s390x" : "s390"
        case 243: bits == 64 ? "riscv64" : "riscv32"
        case 8:
            switch (bits, isLittleEndian) {
            case (64, true): "mips64le"
            case (64, false): "mips64"
            case (_, true): "mipsle"
            default: "mips"
            }
        case 258: "loong64"
        default: nil
        }
    }

    /// The machine as `file(1)` names it.
    var machineName: String {
        switch machine {
        case 3: "Intel 80386"
        case 62: "x86-64"
        case 40: "ARM"
        case 183: "ARM aarch64"
        case 20: "PowerPC"
        case 21: "64-bit PowerPC"
        case 22: "IBM S/390"
        case 243: "RISC-V"
        case 8: "MIPS"
        case 258: "LoongArch"
        default: "machine \(machine)"
        }
    }

    /// `ELF 64-bit LSB x86-64`
    public var description: String {
        "ELF \(bits)-bit \(isLittleEndian ? "LSB" : "MSB") \(machineName)"
    }
}
