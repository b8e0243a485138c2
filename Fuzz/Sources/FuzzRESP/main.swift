// The RESP2/RESP3 parser on any byte stream from Redis, split into reads at random.
// Properties: no crash; the values (and whether the stream turned out malformed) do not depend on
// how the stream was split into reads.
import FuzzSupport
import NIOCore
import RESP

struct Outcome: Equatable {
    /// Each value in a canonical text form (so that a NaN equals a NaN).
    var values: [String] = []
    var malformed = false
}

/// Small limits, so the fuzzer reaches them.
let parser = RESPParser(maximumBulkLength: 1024, maximumElements: 64, maximumDepth: 8)

func render(_ value: RESPValue) -> String {
    switch value {
    case .simpleString(let text): "+\(text.debugDescription)"
    case .error(let text): "-\(text.debugDescription)"
    case .integer(let number): ":\(number)"
    case .bulkString(let bytes): "$\(Array(bytes.readableBytesView))"
    case .null: "_"
    case .boolean(let flag): "#\(flag)"
    case .double(let number): ",\(number.bitPattern)"
    case .bigNumber(let text): "(\(text.debugDescription)"
    case .verbatimString(let text): "=\(text.debugDescription)"
    case .array(let values): "*[\(values.map(render).joined(separator: " "))]"
    case .map(let pairs): "%[\(pairs.map { render($0.key) + ":" + render($0.value) }.joined(separator: " "))]"
    case .set(let values): "~[\(values.map(render).joined(separator: " "))]"
    case .push(let values): ">[\(values.map(render).joined(separator: " "))]"
    }
}

func run(_ bytes: ArraySlice<UInt8>, reads: some Sequence<Int>) -> Outcome {
    var buffer = ByteBuffer()
    var outcome = Outcome()
    var offset = bytes.startIndex
    for size in reads {
        buffer.writeBytes(bytes[offset..<(offset + size)])
        offset += size
        do {
            while let value = try parser.next(from: &buffer) { outcome.values.append(render(value)) }
        } catch {
            outcome.malformed = true
            return outcome
        }
    }
    return outcome
}

runFuzzer { start, count in
    guard let start else { return 0 }
    let input = Array(UnsafeRawBufferPointer(start: start, count: count))
    guard let control = input.first else { return 0 }
    let stream = input.dropFirst()
    checkSplitIndependence(stream, seed: control) { run($0, reads: $1) }
    return 0
}
