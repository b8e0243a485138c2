import Foundation

/// Resident memory and CPU time of server processes, read from /proc.
public struct ProcessMetrics: Sendable {
    public var rssKB: Int
    /// User plus system CPU time, in seconds.
    public var cpuSeconds: Double

    public static func read(_ pids: [Int32]) -> ProcessMetrics? {
        guard !pids.isEmpty else { return nil }
        var total = ProcessMetrics(rssKB: 0, cpuSeconds: 0)
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        for pid in pids {
            guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
                let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
            else { return nil }
            if let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) {
                total.rssKB += Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
            }
            // Fields after the command name (which may contain spaces): utime is 14th, stime 15th overall.
            if let close = stat.lastIndex(of: ")") {
                let fields = stat[stat.index(after: close)...].split(separator: " ")
                if fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) {
                    total.cpuSeconds += (user + system) / ticks
                }
            }
        }
        return total
    }
}
