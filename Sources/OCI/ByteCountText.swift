import Foundation

extension Int64 {
    /// A byte count as people read it, in powers of 1024: `512 B`, `1.5 MiB`, `3.0 GiB`.
    public var byteCountText: String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var value = Double(self)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(self) B" : String(format: "%.1f %@", value, units[unit])
    }
}
