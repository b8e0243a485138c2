/// What the gateway serves to browsers, built into the binary: the live price board and the
/// JavaScript SDK. The files themselves live in `clients/js/` (linked from here).
public enum WebAssets {
    public struct Asset: Sendable {
        public let path: String
        public let contentType: String
        public let bytes: [UInt8]
        /// A strong validator: the same bytes, the same tag.
        public let etag: String
        /// The board is revalidated on every load; the SDK may be reused for five minutes.
        public let cacheControl: String
        /// The SDK is imported from pages of other origins (`<script type="module">` fetches in CORS mode).
        public let allowsAnyOrigin: Bool

        init(path: String, contentType: String, bytes: [UInt8], cacheControl: String, allowsAnyOrigin: Bool) {
            self.path = path
            self.contentType = contentType
            self.bytes = bytes
            self.etag = "\"" + Self.fingerprint(bytes) + "\""
            self.cacheControl = cacheControl
            self.allowsAnyOrigin = allowsAnyOrigin
        }

        /// FNV-1a, 64 bits: enough to tell two versions of a file apart.
        static func fingerprint(_ bytes: [UInt8]) -> String {
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in bytes {
                hash ^= UInt64(byte)
                hash &*= 0x0000_0100_0000_01b3
            }
            let hex = String(hash, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }
    }

    public static let board = Asset(
        path: "/", contentType: "text/html; charset=utf-8", bytes: PackageResources.board_html, cacheControl: "no-cache",
        allowsAnyOrigin: false)
    public static let sdk = Asset(
        path: "/sdk/tickwire.js", contentType: "text/javascript; charset=utf-8", bytes: PackageResources.tickwire_js,
        cacheControl: "public, max-age=300", allowsAnyOrigin: true)
    public static let sdkTypes = Asset(
        path: "/sdk/tickwire.d.ts", contentType: "text/plain; charset=utf-8", bytes: PackageResources.tickwire_d_ts,
        cacheControl: "public, max-age=300", allowsAnyOrigin: true)

    public static let all = [board, sdk, sdkTypes]

    public static func asset(at path: String) -> Asset? {
        all.first { $0.path == path || ($0.path == "/" && path == "/index.html") }
    }
}
