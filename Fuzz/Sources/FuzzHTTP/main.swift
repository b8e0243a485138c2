// The public port's HTTP side, whole: the gateway's pipeline (socket slot, HTTP/1.1 decoder and
// encoder, pipelining, the WebSocket upgrade of any request, deadlines, the API) on a test channel,
// fed any bytes split into reads at random. `NIOAsyncTestingChannel` is the thread-safe
// `EmbeddedChannel`: the API answers from a task, which a plain `EmbeddedChannel` does not allow.
// Properties: no crash; every answer is an HTTP/1.1 response with a status below 500.
import Dispatch
import FuzzSupport
import Logging
@_spi(Fuzzing) import TickwireServer
import NIOCore
import NIOEmbedded
import TickwireCore
import TickwireProtocol

let loop = NIOAsyncTestingEventLoop()
let server: GatewayServer = {
    var keys = JWTKeySet()
    keys.add(.hmac(Array("fuzz-jwt-secret-0123456789abcdefghij".utf8)))
    let gateway = Gateway(
        settings: SessionSettings(symbols: SymbolTable(["BTC", "ETH"]), verifier: JWTVerifier(keys: keys)),
        eventLoops: [loop], dispatchLoop: loop, broker: InMemoryBroker(), metrics: GatewayMetrics(),
        priceIntervalNanoseconds: 0, maximumConnections: 10, logger: Logger(label: "fuzz"))
    // As a started broker reports it: `/readyz` answers 200, so any 5xx is a finding.
    gateway.broker(readinessChanged: true)
    var configuration = ServerConfiguration()
    configuration.apiKey = "fuzz-api-key-0123456789abcdef"
    configuration.devEndpoints = true
    return GatewayServer(
        configuration: configuration, gateway: gateway, group: loop, renderMetrics: { Array("# metrics\n".utf8) },
        logger: Logger(label: "fuzz"))
}()

/// Feeds `stream` in reads, then waits for the answers: until the server closes the connection, or
/// nothing more has come for a few turns of the loop (the API answers from a task).
func exchange(_ stream: ArraySlice<UInt8>, reads: ReadSplitter) async throws -> [UInt8] {
    let channel = NIOAsyncTestingChannel(loop: loop)
    try await channel.testingEventLoop.executeInContext { try server.configurePublicConnection(channel) }
    try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9))
    var output: [UInt8] = []
    func drain() async throws -> Bool {
        var more = false
        while let data = try await channel.readOutbound(as: IOData.self) {
            if case .byteBuffer(let buffer) = data {
                output += buffer.readableBytesView
                more = true
            }
        }
        return more
    }
    var offset = stream.startIndex
    for size in reads {
        guard try await channel.isActive else { break }
        do {
            try await channel.writeInbound(ByteBuffer(bytes: stream[offset..<(offset + size)]))
        } catch {
            break  // the pipeline refused the bytes (a parse error): it answers and closes
        }
        offset += size
        _ = try await drain()
    }
    var quiet = 0
    while quiet < 3, try await channel.isActive {
        await loop.run()
        try await Task.sleep(for: .microseconds(200))
        quiet = try await drain() ? 0 : quiet + 1
    }
    _ = try await drain()
    _ = try? await channel.finish()
    return output
}

/// The status codes of the responses in `output`.
func statuses(_ output: [UInt8]) -> [Int] {
    let text = String(decoding: output, as: UTF8.self)
    return text.components(separatedBy: "HTTP/1.").dropFirst().compactMap { part in
        Int(part.dropFirst(2).prefix(3))
    }
}

runFuzzer { start, count in
    guard let start else { return 0 }
    let input = Array(UnsafeRawBufferPointer(start: start, count: count))
    guard let control = input.first else { return 0 }
    let stream = input.dropFirst()
    let done = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var output: Result<[UInt8], Error> = .success([])
    Task.detached {
        do { output = .success(try await exchange(stream, reads: ReadSplitter(seed: control, count: stream.count))) } catch { output = .failure(error) }
        done.signal()
    }
    done.wait()
    guard case .success(let bytes) = output else { fuzzFailure("the test channel failed: \(output)") }
    if !bytes.isEmpty {
        fuzzCheck(bytes.starts(with: Array("HTTP/1.".utf8)), "the answer is not HTTP: \(String(decoding: bytes.prefix(200), as: UTF8.self))")
    }
    for status in statuses(bytes) {
        fuzzCheck(status < 500, "status \(status) for \(String(decoding: stream, as: UTF8.self).debugDescription)")
    }
    return 0
}
