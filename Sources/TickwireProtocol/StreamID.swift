/// The `id` of a notification event: `MILLISECONDS-SEQUENCE`, the format of a Redis
/// stream entry id. Both brokers issue ids of this form, strictly increasing per user,
/// so clients may keep treating them as opaque strings while the server compares them.
public struct StreamID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var milliseconds: UInt64
    public var sequence: UInt64

    public init(milliseconds: UInt64, sequence: UInt64) {
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let milliseconds = UInt64(parts[0]), let sequence = UInt64(parts[1]),
            parts[0].first != "+", parts[1].first != "+"
        else { return nil }
        self.milliseconds = milliseconds
        self.sequence = sequence
    }

    public static let zero = StreamID(milliseconds: 0, sequence: 0)

    public static func < (lhs: StreamID, rhs: StreamID) -> Bool {
        (lhs.milliseconds, lhs.sequence) < (rhs.milliseconds, rhs.sequence)
    }

    /// The next id after this one that is at least `now` milliseconds.
    public func next(atLeast now: UInt64) -> StreamID {
        now > milliseconds
            ? StreamID(milliseconds: now, sequence: 0) : StreamID(milliseconds: milliseconds, sequence: sequence + 1)
    }

    public var description: String { "\(milliseconds)-\(sequence)" }
}
