import Foundation

/// Addresses an upstream may not send Archway to: this machine (its loopback, or the very
/// address it connects from), link-local networks (cloud metadata services live at
/// 169.254.169.254) and the unspecified address.
enum InternalAddress {
    /// Whether `address` (as libcurl reports the connected peer) is internal; `local` is the
    /// address the connection comes from, equal to the peer when it goes to this machine.
    static func isInternal(_ address: String, local: String?) -> Bool {
        if let local, !local.isEmpty, local == address { return true }
        var v4 = in_addr()
        if inet_pton(AF_INET, address, &v4) == 1 {
            return isInternal(v4: UInt32(bigEndian: v4.s_addr))
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, address, &v6) == 1 else { return true }  // not an address: refuse
        let bytes = withUnsafeBytes(of: v6) { Array($0) }
        if bytes.allSatisfy({ $0 == 0 }) { return true }  // ::
        if bytes[0..<15].allSatisfy({ $0 == 0 }), bytes[15] == 1 { return true }  // ::1
        if bytes[0] == 0xfe, bytes[1] & 0xc0 == 0x80 { return true }  // fe80::/10
        if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {  // ::ffff:a.b.c.d
            let embedded = bytes[12..<16].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            return isInternal(v4: embedded)
        }
        return false
    }

    private static func isInternal(v4 address: UInt32) -> Bool {
        let first = address >> 24
        if first == 127 || first == 0 { return true }  // loopback, "this network"
        if address >> 16 == 0xA9FE { return true }  // 169.254.0.0/16
        return false
    }
}
