import NIOCore
import NIOPosix
import TickwireProtocol

struct HTTPResult: Sendable {
    var status: Int
    var headers: [(String, String)]
    var body: String

    var json: JSONObject? { try? JSONParser.parse(body).objectValue }

    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }
}

/// A minimal HTTP/1.1 client over NIO: one request per connection, `Connection: close`.
enum TestHTTP {
    static func request(
        port: Int, method: String, path: String, headers: [(String, String)] = [], body: String? = nil
    ) async throws -> HTTPResult {
        let socket = try await RawSocket.connect(port: port)
        var request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        if let body { request += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n" }
        request += "\r\n" + (body ?? "")
        try await socket.send(request)
        return try parse(try await socket.readUntilClosed(timeout: .seconds(10)))
    }

    static func parse(_ text: String) throws -> HTTPResult {
        guard let split = text.range(of: "\r\n\r\n") else { throw TestFailure("malformed HTTP response: \(text)") }
        let lines = text[..<split.lowerBound].split(separator: "\r\n")
        let status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        let headers = lines.dropFirst().compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), line[line.index(after: colon)...].trimmingWhitespace())
        }
        return HTTPResult(status: status, headers: headers, body: String(text[split.upperBound...]))
    }
}

/// A plain TCP connection, for what no well-behaved client does: silence, a trickled head, a
/// body that never comes.
final class RawSocket: Sendable {
    let channel: Channel
    private let received: Mailbox<ByteBuffer?>

    private init(channel: Channel, received: Mailbox<ByteBuffer?>) {
        self.channel = channel
        self.received = received
    }

    static func connect(port: Int) async throws -> RawSocket {
        let received = Mailbox<ByteBuffer?>()
        let channel = try await ClientBootstrap(group: TestWebSocket.group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Collector(mailbox: received))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawSocket(channel: channel, received: received)
    }

    func send(_ text: String) async throws {
        try await channel.writeAndFlush(channel.allocator.buffer(string: text)).get()
    }

    /// Everything the server sends until it closes the connection; throws if it is still open after `timeout`.
    func readUntilClosed(timeout: Duration) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        var text = ByteBuffer()
        while true {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero, let chunk = await received.next(timeout: remaining) else {
                throw TestFailure("the server kept the connection open for \(timeout); got: \(String(buffer: text))")
            }
            guard var chunk else { return String(buffer: text) }
            text.writeBuffer(&chunk)
        }
    }

    /// What the server sent until `marker` (included) appeared; throws if it did not within `timeout`.
    func read(until marker: String, timeout: Duration = .seconds(5)) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        var text = ""
        while !text.contains(marker) {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero, let chunk = await received.next(timeout: remaining), let chunk else {
                throw TestFailure("no \(marker.debugDescription) within \(timeout); got: \(text)")
            }
            text += String(buffer: chunk)
        }
        return text
    }

    func close() { channel.close(promise: nil) }

    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let mailbox: Mailbox<ByteBuffer?>
        init(mailbox: Mailbox<ByteBuffer?>) { self.mailbox = mailbox }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { mailbox.push(unwrapInboundIn(data)) }
        func channelInactive(context: ChannelHandlerContext) { mailbox.push(nil) }
    }
}
