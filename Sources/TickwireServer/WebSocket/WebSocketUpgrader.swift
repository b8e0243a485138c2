import NIOCore
import NIOHTTP1
import TickwireProtocol
import TickwireWebSocket

/// Why an upgrade request was refused before the handshake; answered with `status`.
struct UpgradeRefusal: Error {
    var status: HTTPResponseStatus
    var message: String
}

/// The RFC 6455 server handshake as a policy: which requests may upgrade, the
/// `Sec-WebSocket-Accept` they get, and the handler that takes over the connection
/// (our own frame handling instead of NIO's codec: one handler per connection, no idle
/// buffers). Routes `/ws` to the gateway and, when enabled, `/echo` to the conformance echo.
/// `WebSocketUpgradeHandler` performs it.
struct WebSocketUpgrader: Sendable {
    let originPolicy: OriginPolicy
    let echoEnabled: Bool
    /// Builds the handler for an accepted `/ws` request on a socket admitted past the limit or not.
    let makeGatewayHandler: @Sendable (_ request: HTTPRequestHead, _ isOverCapacity: Bool) -> ChannelHandler
    let makeEchoHandler: @Sendable () -> ChannelHandler

    /// Checks an upgrade request; returns the `Sec-WebSocket-Accept` value for its key.
    func validate(_ request: HTTPRequestHead) throws(UpgradeRefusal) -> String {
        let path = RequestTarget(request.uri).path
        guard path == "/ws" || (echoEnabled && path == "/echo") else {
            throw UpgradeRefusal(status: .notFound, message: "no WebSocket endpoint at \(path)")
        }
        guard request.method == .GET else {
            throw UpgradeRefusal(status: .methodNotAllowed, message: "WebSocket upgrades use GET")
        }
        guard request.headers["sec-websocket-version"].first == "13" else {
            throw UpgradeRefusal(status: .upgradeRequired, message: "only WebSocket version 13 is supported")
        }
        guard let key = request.headers["sec-websocket-key"].first, WebSocketHandshake.isValidKey(key) else {
            throw UpgradeRefusal(status: .badRequest, message: "invalid Sec-WebSocket-Key")
        }
        guard originPolicy.allows(request.headers["origin"].first) else {
            throw UpgradeRefusal(status: .forbidden, message: "origin not allowed")
        }
        return WebSocketHandshake.acceptValue(forKey: key)
    }

    /// The handler that serves the upgraded connection.
    func handler(for request: HTTPRequestHead, isOverCapacity: Bool) -> ChannelHandler {
        RequestTarget(request.uri).path == "/echo" ? makeEchoHandler() : makeGatewayHandler(request, isOverCapacity)
    }
}

extension HTTPRequestHead {
    /// `Upgrade: websocket` with `Connection: upgrade` (both token lists, any case). Read on every
    /// request, so without building strings.
    var isWebSocketUpgrade: Bool {
        var upgrade = false
        var connection = false
        for (name, value) in headers {
            if ASCII.equalsIgnoringCase(name.utf8, "upgrade".utf8) {
                upgrade = upgrade || Self.list(value, contains: "websocket")
            } else if ASCII.equalsIgnoringCase(name.utf8, "connection".utf8) {
                connection = connection || Self.list(value, contains: "upgrade")
            }
        }
        return upgrade && connection
    }

    /// Whether a comma-separated header value has `token` (lowercase) among its elements, in any case.
    static func list(_ value: String, contains token: String) -> Bool {
        value.utf8.split(separator: UInt8(ascii: ",")).contains { element in
            var trimmed = element
            while let first = trimmed.first, ASCII.isWhitespace(first) { trimmed = trimmed.dropFirst() }
            while let last = trimmed.last, ASCII.isWhitespace(last) { trimmed = trimmed.dropLast() }
            return ASCII.equalsIgnoringCase(trimmed, token.utf8)
        }
    }
}

/// The `--allowed-origins` allowlist. Without one, every origin (and none) is accepted.
public struct OriginPolicy: Sendable {
    public let allowed: Set<String>?

    public init(allowedOrigins: [String]) {
        let normalized = allowedOrigins.map { Self.normalize($0) }.filter { !$0.isEmpty }
        self.allowed = normalized.isEmpty ? nil : Set(normalized)
    }

    /// Requests without an Origin header come from non-browser clients; the allowlist
    /// guards browsers, which always send one.
    func allows(_ origin: String?) -> Bool {
        guard let allowed, let origin else { return true }
        return allowed.contains("*") || allowed.contains(Self.normalize(origin))
    }

    static func normalize(_ origin: String) -> String {
        var text = origin.lowercased()
        while text.hasSuffix("/") { text.removeLast() }
        return text
    }
}

/// A request URI split into path and query, with `%`-decoding of query values.
struct RequestTarget {
    var path: String
    var query: Substring?

    /// Splits on bytes, not characters: a query carries a token of a few hundred bytes, read on every connect.
    init(_ uri: String) {
        if let question = uri.utf8.firstIndex(of: UInt8(ascii: "?")) {
            path = String(uri[..<question])
            query = uri[uri.utf8.index(after: question)...]
        } else {
            path = uri
            query = nil
        }
    }

    func queryValue(_ name: String) -> String? {
        guard let query else { return nil }
        for pair in query.utf8.split(separator: UInt8(ascii: "&")) {
            let equals = pair.firstIndex(of: UInt8(ascii: "="))
            guard let key = Self.percentDecode(Substring(pair[..<(equals ?? pair.endIndex)])), key == name else { continue }
            guard let equals else { return "" }
            return Self.percentDecode(Substring(pair[pair.index(after: equals)...]))
        }
        return nil
    }

    static func percentDecode(_ text: Substring) -> String? {
        // Most values (a token) have nothing to decode: no byte-by-byte copy for them.
        if !text.utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) { return String(text) }
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"):
                bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
                    return nil
                }
                bytes.append(high << 4 | low)
            default:
                bytes.append(byte)
            }
        }
        return String(validating: bytes, as: UTF8.self)
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension HTTPRequestHead {
    /// The token of a WebSocket request: the `token` query parameter, else `Authorization: Bearer`.
    var bearerToken: String? {
        if let token = RequestTarget(uri).queryValue("token"), !token.isEmpty { return token }
        return bearerCredential
    }
}
