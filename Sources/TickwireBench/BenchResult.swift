import Histogram

/// Percentiles of a histogram, in its unit.
public struct Percentiles: Codable, Sendable {
    public var count: UInt64
    public var p50: UInt64
    public var p90: UInt64
    public var p99: UInt64
    public var p999: UInt64
    public var max: UInt64

    init(_ histogram: Histogram<UInt64>) {
        count = histogram.totalCount
        p50 = histogram.valueAtPercentile(50)
        p90 = histogram.valueAtPercentile(90)
        p99 = histogram.valueAtPercentile(99)
        p999 = histogram.valueAtPercentile(99.9)
        max = histogram.max
    }
}

/// Everything a run measured. Written as JSON; `markdownRow` is its line in BENCHMARKS.md.
public struct BenchResult: Codable, Sendable {
    public var scenario: String
    public var target: String
    public var label: String
    public var connections: Int
    public var subscribed: Int
    public var workers: Int
    public var durationSeconds: Double
    /// Connect to `connected` (Tickwire) or to the 101 (Nchan), milliseconds.
    public var connectMilliseconds: Percentiles?
    public var failures: [String: Int]
    public var serverRSSBeforeKB: Int?
    public var serverRSSAfterKB: Int?
    public var serverRSSPerConnectionBytes: Int?
    public var serverCPUPercent: Double?
    /// Server CPU time per connection over the connect phase (accept, upgrade, token, `connected`,
    /// subscribe; and the phase's idle time), microseconds.
    public var serverCPUPerConnectionMicroseconds: Double?
    /// Publish to receive, microseconds.
    public var latencyMicroseconds: Percentiles?
    public var priceLatencyMicroseconds: Percentiles?
    public var notificationLatencyMicroseconds: Percentiles?
    public var published: Int
    public var delivered: Int
    /// Deliveries while the publisher published, per second of publishing: the sustained rate.
    public var deliveredPerSecond: Double
    public var expected: Int
    public var lost: Int
    public var duplicated: Int
    /// Reconnect: from the restart command to every client back and resubscribed.
    public var allBackSeconds: Double?
    /// Reconnect: each client's own close to resubscribed, milliseconds.
    public var reconnectMilliseconds: Percentiles?
    public var command: String
    public var startedAt: String

    static func format(_ value: UInt64?, unit: Double = 1000) -> String {
        guard let value else { return "-" }
        let milliseconds = Double(value) / unit
        return milliseconds >= 100 ? String(Int(milliseconds.rounded())) : String(format2(milliseconds))
    }

    static func format2(_ value: Double) -> String {
        let scaled = (value * 100).rounded() / 100
        var text = String(scaled)
        if text.hasSuffix(".0") { text.removeLast(2) }
        return text
    }

    public static let markdownHeader = """
        | scenario | target | N | connect p50/p99 ms | server RSS/conn | server CPU | delivered/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | lost | dup | reconnect |
        |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
        """

    public var markdownRow: String {
        let connect = connectMilliseconds.map { "\($0.p50)/\($0.p99)" } ?? "-"
        let rss = serverRSSPerConnectionBytes.map { "\(Self.format2(Double($0) / 1024)) KB" } ?? "-"
        let cpu = serverCPUPercent.map { "\(Self.format2($0))%" } ?? "-"
        let latency = latencyMicroseconds
        let reconnect = allBackSeconds.map { "all back in \(Self.format2($0)) s (p99 \(reconnectMilliseconds?.p99 ?? 0) ms)" } ?? "-"
        let delivered = latency == nil ? "-" : String(Int(deliveredPerSecond.rounded()))
        return "| \(scenario) | \(label) | \(connections) | \(connect) | \(rss) | \(cpu) | \(delivered) | "
            + "\(Self.format(latency?.p50)) | \(Self.format(latency?.p90)) | \(Self.format(latency?.p99)) | "
            + "\(Self.format(latency?.p999)) | \(Self.format(latency?.max)) | \(latency == nil ? "-" : String(lost)) | "
            + "\(latency == nil ? "-" : String(duplicated)) | \(reconnect) |"
    }
}
