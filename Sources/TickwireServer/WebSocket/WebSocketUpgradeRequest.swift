import NIOHTTP1

/// A WebSocket upgrade request read straight from a connection's first bytes, without the
/// HTTP pipeline: what nearly every client sends, in the shape nearly every client sends it.
///
/// After a restart every client comes back at once, and building NIO's HTTP pipeline for each,
/// parsing with it and taking it down again was a third of the server's work per connection.
/// This parser is strict on purpose: it accepts a subset of valid HTTP/1.1 (`GET`, `HTTP/1.1`,
/// visible-ASCII target, token header names, no folding, no body) and returns nil for anything
/// else, which then goes to NIO's parser exactly as before. It never decides a refusal.
struct WebSocketUpgradeRequest {
    /// The request, with only the headers an upgrade reads (`WebSocketUpgrader`, the token).
    var head: HTTPRequestHead
    /// The bytes of the request head, its blank line included; what follows is WebSocket frames.
    var length: Int

    /// Longer heads go to NIO's parser (which applies its own limits).
    static let maximumLength = 8192

    /// The headers kept, by lowercase name.
    private static let kept: [[UInt8]] = [
        "upgrade", "connection", "sec-websocket-key", "sec-websocket-version", "origin", "authorization",
    ].map { Array($0.utf8) }
    /// Headers that give a request a body: such a request is not the common upgrade.
    private static let bodyHeaders: [[UInt8]] = ["content-length", "transfer-encoding"].map { Array($0.utf8) }

    /// Parses a complete upgrade request head at the start of `bytes`; nil when the bytes are
    /// anything else (another request, an incomplete head, an unusual form).
    static func parse(_ bytes: UnsafeRawBufferPointer) -> WebSocketUpgradeRequest? {
        var reader = Reader(bytes: bytes.prefix(maximumLength))
        guard reader.consume("GET "), let target = reader.take(while: isTargetByte), target.first == UInt8(ascii: "/"),
            reader.consume(" HTTP/1.1\r\n")
        else { return nil }
        var headers = HTTPHeaders()
        while !reader.consume("\r\n") {
            guard let name = reader.take(while: isTokenByte), reader.consume(":") else { return nil }
            reader.skip(while: ASCII.isWhitespace)
            guard var value = reader.take(while: isValueByte, allowEmpty: true), reader.consume("\r\n") else { return nil }
            while let last = value.last, ASCII.isWhitespace(last) { value = UnsafeRawBufferPointer(rebasing: value.dropLast()) }
            if bodyHeaders.contains(where: { ASCII.equalsIgnoringCase(name, $0) }) { return nil }
            if let kept = kept.first(where: { ASCII.equalsIgnoringCase(name, $0) }) {
                headers.add(name: String(decoding: kept, as: UTF8.self), value: String(decoding: value, as: UTF8.self))
            }
        }
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: String(decoding: target, as: UTF8.self), headers: headers)
        guard head.isWebSocketUpgrade else { return nil }
        return WebSocketUpgradeRequest(head: head, length: reader.offset)
    }

    /// `tchar` of RFC 9110 section 5.6.2.
    static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
            UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }

    /// Visible ASCII; no spaces, controls or bytes above 0x7E in a target this parser accepts.
    static func isTargetByte(_ byte: UInt8) -> Bool { byte > 0x20 && byte < 0x7F }

    /// Visible ASCII, space and tab; `obs-text` (bytes above 0x7F) is left to NIO's parser.
    static func isValueByte(_ byte: UInt8) -> Bool { (byte >= 0x20 && byte < 0x7F) || byte == 0x09 }

    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        var offset = 0

        init(bytes: Slice<UnsafeRawBufferPointer>) {
            self.bytes = UnsafeRawBufferPointer(rebasing: bytes)
        }

        mutating func consume(_ literal: StaticString) -> Bool {
            let count = literal.utf8CodeUnitCount
            guard bytes.count - offset >= count else { return false }
            for index in 0..<count where bytes[offset + index] != literal.utf8Start[index] { return false }
            offset += count
            return true
        }

        /// The bytes up to the first that does not match; nil when that is the end of the input
        /// (the head is incomplete) or when none match and `allowEmpty` is false.
        mutating func take(while matches: (UInt8) -> Bool, allowEmpty: Bool = false) -> UnsafeRawBufferPointer? {
            let start = offset
            while offset < bytes.count, matches(bytes[offset]) { offset += 1 }
            guard offset < bytes.count, allowEmpty || offset > start else { return nil }
            return UnsafeRawBufferPointer(rebasing: bytes[start..<offset])
        }

        mutating func skip(while matches: (UInt8) -> Bool) {
            while offset < bytes.count, matches(bytes[offset]) { offset += 1 }
        }
    }
}
