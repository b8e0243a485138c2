import NIOCore
import NIOPosix
import Testing
import TickwireHTTPClient

/// The publisher's HTTP connection against a server that accepts and then never answers:
/// the bench must report errors and go on, not wait forever.
@Suite struct PublisherConnection {
    @Test func aServerThatNeverAnswersFailsTheRequestAndTheOnesAfterIt() async throws {
        let silent = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { $0.eventLoop.makeSucceededVoidFuture() }  // reads and discards
            .bind(host: "127.0.0.1", port: 0).get()
        defer { silent.close(promise: nil) }
        let port = try #require(silent.localAddress?.port)
        let connection = try await HTTPConnection.connect(try HTTPClient.Target(url: "http://127.0.0.1:\(port)/"))

        let started = ContinuousClock.now
        await #expect(throws: (any Error).self) {
            _ = try await connection.request(method: .POST, path: "/pub/x", body: Array("{}".utf8), timeout: .milliseconds(300))
        }
        #expect(ContinuousClock.now - started < .seconds(10))
        await #expect(throws: (any Error).self) {
            _ = try await connection.request(method: .POST, path: "/pub/x", body: Array("{}".utf8))
        }
        #expect(!connection.isActive)
    }

    /// Connection refused: the request fails with the error, and its response promise is failed
    /// too (a promise dropped unfulfilled is a crash in NIO's debug builds, and was in CI).
    @Test func aRefusedConnectionFailsTheRequest() async throws {
        // Port 1 (tcpmux) has no listener here; a port freed by the test could be handed to a
        // server of another test running in parallel.
        for _ in 0..<3 {
            await #expect(throws: (any Error).self) {
                _ = try await HTTPClient.request(try HTTPClient.Target(url: "http://127.0.0.1:1/"), method: .GET, timeout: .seconds(2))
            }
        }
    }
}

