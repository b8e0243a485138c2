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
        let collected = Mailbox<ByteBuffer?>()
        let channel = try await ClientBootstrap(group: TestWebSocket.group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Collector(mailbox: collected))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        var request = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n"
        for (name, value) in headers { request += "\(name): \(value)\r\n" }
        if let body { request += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n" }
        request += "\r\n" + (body ?? "")
        try await channel.writeAndFlush(channel.allocator.buffer(string: request)).get()
        var response = ByteBuffer()
        while let chunk = await collected.next(timeout: .seconds(10)) {
            guard var chunk else { break }
            response.writeBuffer(&chunk)
        }
        let text = String(buffer: response)
        guard let split = text.range(of: "\r\n\r\n") else { throw TestFailure("malformed HTTP response: \(text)") }
        let lines = text[..<split.lowerBound].split(separator: "\r\n")
        let status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
        let headers = lines.dropFirst().compactMap { line -> (String, String)? in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), String(line[line.index(after: colon)...]).trimmingCharacters(in: " "))
        }
        return HTTPResult(status: status, headers: headers, body: String(text[split.upperBound...]))
    }

    private final class Collector: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = ByteBuffer
        let mailbox: Mailbox<ByteBuffer?>
        init(mailbox: Mailbox<ByteBuffer?>) { self.mailbox = mailbox }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) { mailbox.push(unwrapInboundIn(data)) }
        func channelInactive(context: ChannelHandlerContext) { mailbox.push(nil) }
    }
}

extension String {
    func trimmingCharacters(in character: Character) -> String {
        String(drop(while: { $0 == character }).reversed().drop(while: { $0 == character }).reversed())
    }
}
