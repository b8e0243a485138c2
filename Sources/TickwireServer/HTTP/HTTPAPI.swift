import Crypto
import NIOCore
import NIOHTTP1
import TickwireCore
import TickwireProtocol
import TickwireWeb

/// A complete HTTP response.
struct HTTPResponse: Sendable {
    var status: HTTPResponseStatus
    var contentType: String
    var body: [UInt8]
    var cacheControl = "no-store"
    var extraHeaders: [(String, String)] = []

    static func json(_ status: HTTPResponseStatus, _ value: JSONValue) -> HTTPResponse {
        var writer = JSONWriter()
        writer.value(value)
        writer.raw("\n")
        return HTTPResponse(status: status, contentType: "application/json", body: writer.bytes)
    }

    /// `{"error":{"code","message","field"?}}`.
    static func error(_ status: HTTPResponseStatus, code: String, _ message: String, field: String? = nil) -> HTTPResponse {
        var error: JSONObject = ["code": .string(code), "message": .string(message)]
        if let field { error["field"] = .string(field) }
        return json(status, ["error": .object(error)])
    }
}

/// A complete HTTP request as the API sees it.
struct HTTPRequest: Sendable {
    var head: HTTPRequestHead
    var body: [UInt8]
}

/// The HTTP endpoints that share the WebSocket port: health, readiness, metrics,
/// the price snapshot and the publish API. With `--metrics-port`, a second instance
/// serves only health, readiness and metrics there, and the public one no metrics.
struct HTTPAPI: Sendable {
    enum Endpoints: Sendable {
        /// The public port: everything, `/metrics` included unless it has a port of its own.
        case `public`(metrics: Bool)
        /// The metrics port: `/metrics`, `/healthz` and `/readyz` only.
        case metrics
    }

    let gateway: Gateway
    let apiKey: String
    let renderMetrics: @Sendable () -> [UInt8]
    let echoEnabled: Bool
    var endpoints = Endpoints.public(metrics: true)
    /// Dev mode: `/api/v1/dev` answers, and a signed-in user may publish to themselves (the board's form).
    var devEndpoints = false

    func respond(to request: HTTPRequest) async -> HTTPResponse {
        let path = RequestTarget(request.head.uri).path
        switch (endpoints, path) {
        case (.metrics, "/metrics"), (.metrics, "/healthz"), (.metrics, "/readyz"), (.public(metrics: true), _):
            break
        case (.public(metrics: false), let path) where path != "/metrics":
            break
        default:
            return .error(.notFound, code: "NOT_FOUND", "no such endpoint")
        }
        if request.head.method == .GET || request.head.method == .HEAD, case .public = endpoints,
            let asset = WebAssets.asset(at: path)
        {
            return serve(asset, to: request.head)
        }
        switch (request.head.method, path) {
        case (.GET, "/healthz"), (.HEAD, "/healthz"):
            return .json(.ok, ["status": "ok"])
        case (.GET, "/readyz"), (.HEAD, "/readyz"):
            return gateway.isReady
                ? .json(.ok, ["status": "ready"])
                : .json(.serviceUnavailable, ["status": "not ready", "reason": "broker unavailable"])
        case (.GET, "/metrics"):
            return HTTPResponse(status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: renderMetrics())
        case (.GET, "/api/v1/prices"), (.HEAD, "/api/v1/prices"):
            return prices()
        case (.POST, "/api/v1/publish"):
            return await publish(request)
        case (.POST, "/api/v1/prices"):
            return await publishPrices(request)
        case (.GET, "/api/v1/dev"), (.HEAD, "/api/v1/dev"):
            return devEndpoints ? .json(.ok, ["dev": true]) : .error(.notFound, code: "NOT_FOUND", "dev mode is off")
        case (.POST, "/api/v1/dev/publish"):
            return devEndpoints
                ? await publishToSelf(request) : .error(.notFound, code: "NOT_FOUND", "dev mode is off")
        case (.GET, "/ws"):
            return .error(.upgradeRequired, code: "UPGRADE_REQUIRED", "this endpoint speaks WebSocket only")
        case (.GET, "/echo") where echoEnabled:
            return .error(.upgradeRequired, code: "UPGRADE_REQUIRED", "this endpoint speaks WebSocket only")
        case (_, "/healthz"), (_, "/readyz"), (_, "/metrics"), (_, "/api/v1/prices"), (_, "/api/v1/publish"), (_, "/ws"):
            return .error(.methodNotAllowed, code: "METHOD_NOT_ALLOWED", "\(request.head.method) is not allowed on \(path)")
        default:
            return .error(.notFound, code: "NOT_FOUND", "no such endpoint")
        }
    }

    func prices() -> HTTPResponse {
        let prices = gateway.hub.latestPrices()
        var writer = JSONWriter(capacity: 256 + prices.count * 200)
        writer.raw("{\"prices\":[")
        for (index, price) in prices.enumerated() {
            if index > 0 { writer.comma() }
            price.write(to: &writer)
        }
        writer.raw("],\"timestamp\":")
        writer.string(Timestamp.now().rfc3339)
        writer.raw("}\n")
        return HTTPResponse(status: .ok, contentType: "application/json", body: writer.bytes)
    }

    func publish(_ request: HTTPRequest) async -> HTTPResponse {
        guard authorized(request.head) else {
            return HTTPResponse.error(.unauthorized, code: "UNAUTHORIZED", "a valid API key is required: Authorization: Bearer API_KEY")
        }
        let publication: Publication
        do {
            publication = try Publication(body: request.body)
        } catch {
            return .error(.badRequest, code: error.code.rawValue, error.message, field: error.details["field"]?.stringValue)
        }
        return await publish(publication)
    }

    /// Dev mode only: `{"event","data"}` published to the user of the `Authorization: Bearer` token
    /// (the board's form: a page must never hold the API key).
    func publishToSelf(_ request: HTTPRequest) async -> HTTPResponse {
        guard case .success(let token) = gateway.settings.verifier.verify(request.head.bearerCredential, now: .now()) else {
            return .error(.unauthorized, code: "UNAUTHORIZED", "a valid user token is required: Authorization: Bearer JWT")
        }
        guard case .object(var body)? = try? JSONParser.parse(request.body) else {
            return .error(.badRequest, code: "INVALID_MESSAGE", "the body must be a JSON object")
        }
        body["user_id"] = .string(token.subject)
        do {
            return await publish(try Publication(body))
        } catch {
            return .error(.badRequest, code: error.code.rawValue, error.message, field: error.details["field"]?.stringValue)
        }
    }

    private func publish(_ publication: Publication) async -> HTTPResponse {
        do {
            let envelope = try await gateway.broker.publish(
                notification: publication.kind, data: publication.data, userID: publication.userID)
            return .json(.ok, [
                "id": .string(envelope.id.description), "user_id": .string(publication.userID),
                "event": .string(publication.kind.rawValue), "timestamp": .string(envelope.timestamp.rfc3339),
            ])
        } catch {
            return .error(.serviceUnavailable, code: "BROKER_UNAVAILABLE", "could not publish: \(error)")
        }
    }

    /// `POST /api/v1/prices`: a price (a `price_update` data object) or `{"prices":[...]}`, published through
    /// the broker as a feed would. For feeds that talk HTTP, and the load generator.
    func publishPrices(_ request: HTTPRequest) async -> HTTPResponse {
        guard authorized(request.head) else {
            return .error(.unauthorized, code: "UNAUTHORIZED", "a valid API key is required: Authorization: Bearer API_KEY")
        }
        guard case .object(let body)? = try? JSONParser.parse(request.body) else {
            return .error(.badRequest, code: "INVALID_MESSAGE", "the body must be a JSON object")
        }
        let objects: [JSONValue] = body["prices"]?.arrayValue ?? [.object(body)]
        var prices: [PriceUpdate] = []
        for (index, value) in objects.enumerated() {
            let field = body["prices"] == nil ? "" : "prices[\(index)]."
            guard case .object(let object) = value else {
                return .error(.badRequest, code: "INVALID_MESSAGE", "each price must be an object", field: "prices[\(index)]")
            }
            do {
                let price = try PriceUpdate(json: object, receivedAt: .now())
                guard gateway.hub.symbols.index(of: price.symbol) != nil else {
                    return .error(.badRequest, code: "UNKNOWN_SYMBOL", "\(price.symbol) is not served here", field: field + "symbol")
                }
                prices.append(price)
            } catch {
                return .error(.badRequest, code: error.code.rawValue, error.message,
                              field: error.details["field"]?.stringValue.map { field + $0 })
            }
        }
        do {
            try await gateway.broker.publish(prices: prices)
        } catch {
            return .error(.serviceUnavailable, code: "BROKER_UNAVAILABLE", "could not publish: \(error)")
        }
        return .json(.ok, ["published": .number(String(prices.count))])
    }

    /// A built-in file, or `304` when the client's copy is current.
    func serve(_ asset: WebAssets.Asset, to head: HTTPRequestHead) -> HTTPResponse {
        var response = HTTPResponse(status: .ok, contentType: asset.contentType, body: asset.bytes, cacheControl: asset.cacheControl)
        response.extraHeaders = [("ETag", asset.etag), ("X-Content-Type-Options", "nosniff")]
        if asset.allowsAnyOrigin { response.extraHeaders.append(("Access-Control-Allow-Origin", "*")) }
        if asset.path == WebAssets.board.path {
            response.extraHeaders.append((
                "Content-Security-Policy",
                "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
                    + "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"))
        }
        let validators = head.headers["if-none-match"].flatMap { $0.split(separator: ",") }.map { $0.trimmingWhitespace() }
        if validators.contains(asset.etag) || validators.contains("W/" + asset.etag) || validators.contains("*") {
            response.status = .notModified
            response.body = []
        }
        return response
    }

    /// Compares the API key in constant time (through a MAC, so lengths leak nothing either).
    func authorized(_ head: HTTPRequestHead) -> Bool {
        guard let given = head.bearerCredential else { return false }
        let key = SymmetricKey(size: .bits256)
        return HMAC<SHA256>.authenticationCode(for: Array(given.utf8), using: key)
            == HMAC<SHA256>.authenticationCode(for: Array(apiKey.utf8), using: key)
    }
}

/// The body of `POST /api/v1/publish`: `{"user_id","event","data"}`.
public struct Publication: Sendable {
    public var userID: String
    public var kind: NotificationKind
    public var data: JSONObject

    public init(body: [UInt8]) throws(ProtocolViolation) {
        guard let value = try? JSONParser.parse(body) else {
            throw ProtocolViolation(.invalidMessage, "the body must be a JSON object")
        }
        guard case .object(let object) = value else {
            throw ProtocolViolation(.invalidMessage, "the body must be a JSON object")
        }
        try self.init(object)
    }

    public init(_ object: JSONObject) throws(ProtocolViolation) {
        guard case .string(let userID)? = object["user_id"], !userID.isEmpty,
            userID.count <= ClientMessage.maximumUserIDLength
        else {
            throw ProtocolViolation(.invalidMessage, "user_id must be a string of 1 to 128 characters", details: ["field": "user_id"])
        }
        guard case .string(let event)? = object["event"], let kind = NotificationKind(rawValue: event) else {
            throw ProtocolViolation(
                .invalidMessage, "event must be one of transaction_update, balance_update, notification",
                details: ["field": "event"])
        }
        guard case .object(let data)? = object["data"] else {
            throw ProtocolViolation(.invalidMessage, "data must be an object", details: ["field": "data"])
        }
        do {
            try kind.validate(data)
        } catch {
            var violation = error
            if let field = violation.details["field"]?.stringValue { violation.details["field"] = .string("data.\(field)") }
            throw violation
        }
        self.userID = userID
        self.kind = kind
        self.data = data
    }
}
