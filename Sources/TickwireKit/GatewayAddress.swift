#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The gateway's WebSocket URL, checked once: `ws`, `wss` (or `http`, `https`, which mean the same),
/// a host, a port, a path.
struct GatewayAddress: Sendable {
    struct Invalid: Error, CustomStringConvertible {
        var description: String
    }

    let endpoint: WebSocketEndpoint
    /// Scheme, host, port and path: the part of the id-store key that names the gateway.
    let storeKey: String

    init(_ url: URL) throws(Invalid) {
        let usesTLS: Bool
        switch url.scheme?.lowercased() {
        case "wss", "https": usesTLS = true
        case "ws", "http": usesTLS = false
        default: throw Invalid(description: "\(url): the scheme must be ws or wss")
        }
        guard let host = url.host, !host.isEmpty else { throw Invalid(description: "\(url): no host") }
        let port = url.port ?? (usesTLS ? 443 : 80)
        let path = url.path.isEmpty ? "/" : url.path
        let target = url.query.map { "\(path)?\($0)" } ?? path
        endpoint = WebSocketEndpoint(usesTLS: usesTLS, host: host, port: port, target: target)
        storeKey = "\(usesTLS ? "wss" : "ws")://\(host):\(port)\(path)"
    }

    /// The endpoint with `token=` added to the query.
    func endpoint(withToken token: String) -> WebSocketEndpoint {
        var copy = endpoint
        copy.target += (copy.target.contains("?") ? "&" : "?") + "token=" + Self.percentEncoded(token)
        return copy
    }

    static func percentEncoded(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.unicodeScalars.append(UnicodeScalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                out += "%" + String(UnicodeScalar(hex[Int(byte >> 4)])) + String(UnicodeScalar(hex[Int(byte & 0x0F)]))
            }
        }
        return out
    }
}
