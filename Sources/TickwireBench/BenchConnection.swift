import NIOCore
import TickwireProtocol
import TickwireWebSocket

/// One load-generator client. Lives on its worker's single event loop; reports to
/// `WorkerState` (same loop, no locks). Kept small: thousands live in each worker.
final class BenchConnection: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    enum Phase {
        case connecting
        case handshaking
        /// Tickwire: waiting for `connected`, then for the `subscribed` replies.
        case subscribing(remaining: Int)
        case subscribed
        case closed
    }

    let index: Int
    unowned let state: WorkerState
    var phase = Phase.connecting
    var context: ChannelHandlerContext?
    private var buffer: ByteBuffer?
    private var startedAt: NIODeadline
    /// Set when a live connection dropped; cleared once resubscribed.
    var droppedAt: NIODeadline?
    var reconnectAttempt = 0
    /// Per stream (a handful per connection): the highest sequence seen, and which of the 64
    /// below it arrived, so that a message overtaken by a later one is not counted lost.
    var sequences: [SequenceWindow] = []

    init(index: Int, state: WorkerState, startedAt: NIODeadline) {
        self.index = index
        self.state = state
        self.startedAt = startedAt
    }

    func restart(at time: NIODeadline) {
        startedAt = time
        phase = .connecting
        buffer = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        phase = .handshaking
        var request = "GET \(state.path(for: index)) HTTP/1.1\r\nHost: \(state.hostHeader(for: index))\r\n"
        request += "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        request += "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: request)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if buffer == nil { buffer = incoming } else { buffer!.writeBuffer(&incoming) }
        if case .handshaking = phase {
            guard let length = buffer.flatMap(WebSocketHandshake.headLength) else { return }
            let head = buffer!.readString(length: length) ?? ""
            guard head.hasPrefix("HTTP/1.1 101") else {
                let status = head.split(separator: " ").dropFirst().first.map(String.init) ?? "?"
                fail("http_\(status)", context: context)
                return
            }
            state.handshakeCompleted(self, after: .now() - startedAt)
            if state.plan.target == .nchan { becomeSubscribed() } else { phase = .subscribing(remaining: -1) }
        }
        while var frameBuffer = buffer, frameBuffer.readableBytes > 0 {
            let frame: WebSocketFrame?
            do {
                frame = try state.parser.nextFrame(from: &frameBuffer)
            } catch {
                fail("protocol_error", context: context)
                return
            }
            buffer = frameBuffer
            guard let frame else { break }
            handle(frame, context: context)
            if case .closed = phase { return }
        }
        if buffer?.readableBytes == 0 { buffer = nil }
    }

    private func handle(_ frame: WebSocketFrame, context: ChannelHandlerContext) {
        switch frame.opcode {
        case .text, .continuation:
            frame.payload.withUnsafeReadableBytes { handleText($0, context: context) }
        case .ping:
            send(.pong, Array(frame.payload.readableBytesView))
        case .close:
            var payload = frame.payload
            let code = payload.readInteger(as: UInt16.self).map(String.init) ?? "none"
            state.closedByServer(self, code: code)
            send(.close, Array(frame.payload.readableBytesView))
            context.close(promise: nil)
        default:
            break
        }
    }

    private func handleText(_ bytes: UnsafeRawBufferPointer, context: ChannelHandlerContext) {
        // A snapshot after a (re)subscribe repeats the latest prices: not a delivery of a publish.
        if bytes.starts(with: Self.snapshotPrefix) { return }
        if let stamp = BenchStamp.find(in: bytes) {
            state.received(stamp, on: self)
            return
        }
        guard case .subscribing(let remaining) = phase else { return }
        if remaining < 0, bytes.starts(with: Self.connectedPrefix) {
            subscribe()
        } else if remaining > 0, bytes.starts(with: Self.subscribedPrefix) {
            if remaining == 1 { becomeSubscribed() } else { phase = .subscribing(remaining: remaining - 1) }
        } else if bytes.starts(with: Self.errorPrefix) {
            fail("error_event", context: context)
        }
    }

    static let connectedPrefix = Array(#"{"event":"connected""#.utf8)
    static let subscribedPrefix = Array(#"{"event":"subscribed""#.utf8)
    static let errorPrefix = Array(#"{"event":"error""#.utf8)
    static let snapshotPrefix = Array(#"{"event":"price_batch""#.utf8)

    private func subscribe() {
        let symbols = state.plan.symbolIndices(forConnection: index).map { "\"\(BenchPlan.symbols[$0])\"" }
        send(.text, Array(#"{"action":"subscribe","channel":"prices","symbols":[\#(symbols.joined(separator: ","))]}"#.utf8))
        var replies = 1
        if state.plan.subscribesToNotifications {
            send(.text, Array(#"{"action":"subscribe","channel":"notifications","user_id":"\#(BenchPlan.user(index))"}"#.utf8))
            replies += 1
        }
        phase = .subscribing(remaining: replies)
    }

    private func becomeSubscribed() {
        phase = .subscribed
        reconnectAttempt = 0
        state.subscribed(self, after: .now() - startedAt)
    }

    func ping() {
        guard case .subscribed = phase else { return }
        if state.plan.target == .tickwire {
            send(.text, Array(#"{"action":"ping"}"#.utf8))
        } else {
            send(.ping, [])
        }
    }

    func send(_ opcode: WebSocketOpcode, _ payload: [UInt8]) {
        guard let context else { return }
        let frame = WebSocketFrameWriter.frame(opcode: opcode, payload: payload, maskingKey: (7, 13, 42, 99), allocator: context.channel.allocator)
        context.writeAndFlush(wrapOutboundOut(frame), promise: nil)
    }

    private func fail(_ reason: String, context: ChannelHandlerContext) {
        state.failed(self, reason: reason)
        phase = .closed
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.context = nil
        let wasSubscribed: Bool
        if case .subscribed = phase { wasSubscribed = true } else { wasSubscribed = false }
        phase = .closed
        buffer = nil
        state.disconnected(self, wasSubscribed: wasSubscribed)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// Tracks one stream's sequence numbers: gaps count as lost until the missing message turns
/// up (publishes may be reordered on the way, by any distance), repeats count as duplicates.
/// Remembers every sequence seen, one bit each: a run publishes at most a few thousand
/// messages per stream, so that is a few hundred bytes.
struct SequenceWindow {
    var stream: UInt16
    var highest: UInt32 = 0
    /// Bit `s & 63` of word `s >> 6`: sequence `s` arrived.
    private var seen: [UInt64] = []

    init(stream: UInt16) {
        self.stream = stream
    }

    /// Returns (change in lost, duplicate?).
    /// Past this many sequences (a malformed stamp, or a run far longer than any scenario) the
    /// bitmap stops growing and repeats are no longer told from new messages.
    static let remembered: UInt32 = 1 << 20

    mutating func record(_ sequence: UInt32) -> (lostDelta: Int, duplicate: Bool) {
        guard sequence < Self.remembered else { return advance(to: sequence) }
        let word = Int(sequence >> 6)
        let bit = UInt64(1) << UInt64(sequence & 63)
        if word >= seen.count { seen.append(contentsOf: repeatElement(0, count: word + 1 - seen.count)) }
        if seen[word] & bit != 0 { return (0, true) }
        seen[word] |= bit
        guard sequence > highest else { return (-1, false) }  // counted lost when a later one arrived
        return advance(to: sequence)
    }

    private mutating func advance(to sequence: UInt32) -> (lostDelta: Int, duplicate: Bool) {
        guard sequence > highest else { return (0, false) }
        let gap = Int(sequence - highest) - 1
        highest = sequence
        return (gap, false)
    }
}

/// The publisher's stamp in a message: `"bench":"STREAM:SEQUENCE:SENT_MICROSECONDS"`.
struct BenchStamp {
    var stream: UInt16
    var sequence: UInt32
    var sentMicroseconds: Int64

    static let marker = Array(#""bench":""#.utf8)

    static func text(stream: UInt16, sequence: UInt32, sentMicroseconds: Int64) -> String {
        "\(stream):\(sequence):\(sentMicroseconds)"
    }

    /// Finds and parses the stamp without decoding the JSON.
    static func find(in bytes: UnsafeRawBufferPointer) -> BenchStamp? {
        let count = bytes.count
        let markerCount = marker.count
        guard count >= markerCount else { return nil }
        var index = 0
        outer: while index <= count - markerCount {
            guard bytes[index] == 0x22 else { index += 1; continue }  // '"'
            for offset in 1..<markerCount where bytes[index + offset] != marker[offset] {
                index += 1
                continue outer
            }
            var cursor = index + markerCount
            var stream: Int64 = 0
            var sequence: Int64 = 0
            var sent: Int64 = 0
            var field = 0
            while cursor < count {
                let byte = bytes[cursor]
                if byte == 0x3A {  // ':'
                    field += 1
                    guard field < 3 else { return nil }
                } else if byte >= 0x30 && byte <= 0x39 {
                    let digit = Int64(byte - 0x30)
                    switch field {
                    case 0: stream = stream &* 10 &+ digit
                    case 1: sequence = sequence &* 10 &+ digit
                    default: sent = sent &* 10 &+ digit
                    }
                } else {
                    break
                }
                cursor += 1
            }
            guard field == 2 else { return nil }
            return BenchStamp(stream: UInt16(truncatingIfNeeded: stream), sequence: UInt32(truncatingIfNeeded: sequence), sentMicroseconds: sent)
        }
        return nil
    }
}
