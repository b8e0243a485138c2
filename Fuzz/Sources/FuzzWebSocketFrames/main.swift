// The WebSocket frame parser and message assembler on any byte stream, split into reads at random.
// Properties: no crash; the events of a stream do not depend on how it was split into reads; a
// text message is well-formed UTF-8; no frame or message is larger than its limit.
import FuzzSupport
import NIOCore
import TickwireWebSocket

/// What a connection would see: its events, then the violation that ended it, if any.
struct Outcome: Equatable {
    var events: [String] = []
    var violation: WebSocketViolation?
}

let maximumFrameSize = 4096
let maximumMessageSize = 8192

func describe(_ event: WebSocketEvent) -> String {
    switch event {
    case .text(let payload):
        let bytes = Array(payload.readableBytesView)
        fuzzCheck(bytes.count <= maximumMessageSize, "a text message of \(bytes.count) bytes passed the limit")
        fuzzCheck(String(validating: bytes, as: UTF8.self) != nil, "a text message is not UTF-8: \(bytes)")
        return "text \(bytes)"
    case .binary(let payload):
        fuzzCheck(payload.readableBytes <= maximumMessageSize, "a binary message of \(payload.readableBytes) bytes passed the limit")
        return "binary \(Array(payload.readableBytesView))"
    case .ping(let payload):
        fuzzCheck(payload.readableBytes <= 125, "a ping of \(payload.readableBytes) bytes")
        return "ping \(Array(payload.readableBytesView))"
    case .pong(let payload): return "pong \(Array(payload.readableBytesView))"
    case .close(let code, let reason): return "close \(String(describing: code)) \(reason)"
    }
}

/// Feeds `bytes` to a parser and an assembler in reads of the given sizes.
func run(_ bytes: ArraySlice<UInt8>, role: WebSocketFrameParser.Role, reads: some Sequence<Int>) -> Outcome {
    let parser = WebSocketFrameParser(role: role, maximumFrameSize: maximumFrameSize)
    var assembler = WebSocketMessageAssembler(maximumMessageSize: maximumMessageSize)
    var buffer = ByteBuffer()
    var outcome = Outcome()
    var offset = bytes.startIndex
    for size in reads {
        buffer.writeBytes(bytes[offset..<(offset + size)])
        offset += size
        do {
            while let frame = try parser.nextFrame(from: &buffer) {
                fuzzCheck(frame.payload.readableBytes <= maximumFrameSize, "a frame of \(frame.payload.readableBytes) bytes passed the limit")
                if let event = try assembler.receive(frame) { outcome.events.append(describe(event)) }
            }
        } catch {
            outcome.violation = error
            return outcome
        }
    }
    return outcome
}

runFuzzer { start, count in
    guard let start else { return 0 }
    let input = Array(UnsafeRawBufferPointer(start: start, count: count))
    guard let control = input.first else { return 0 }
    let role: WebSocketFrameParser.Role = control & 1 == 0 ? .server : .client
    let stream = input.dropFirst()
    checkSplitIndependence(stream, seed: control) { run($0, role: role, reads: $1) }
    return 0
}
