// Client frames (JSON text to `ClientMessage`), as the gateway reads every frame a client sends.
// Properties: no crash; a frame that is accepted encodes back (as the SDKs send it) to a frame
// that parses to the same message; a refused frame names a protocol error code.
import FuzzSupport
import TickwireProtocol

runFuzzer { start, count in
    guard let start else { return 0 }
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    switch ClientMessage.parse(bytes) {
    case .success(let message):
        let text = message.jsonText
        switch ClientMessage.parse(Array(text.utf8)) {
        case .success(let again):
            fuzzCheck(again == message, "\(message) encoded as \(text) reads back as \(again)")
        case .failure(let rejection):
            fuzzFailure("\(message) encoded as \(text) is refused: \(rejection)")
        }
    case .failure(let rejection):
        fuzzCheck(!rejection.violation.message.isEmpty, "a refusal without a message")
    }
    return 0
}
