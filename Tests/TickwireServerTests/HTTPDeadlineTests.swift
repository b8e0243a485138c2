import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

#if canImport(Glibc)
import Glibc
#endif

@testable import TickwireServer

/// When an HTTP connection must have sent something (slowloris and idle sockets).
@Suite struct HTTPDeadlineRules {
    var deadlines = HTTPDeadlines(requestTimeout: .seconds(10), keepAliveTimeout: .seconds(30))

    @Test mutating func aRequestHeadMustArriveInTime() {
        #expect(deadlines.connected() == .arm(.seconds(10)))
        #expect(deadlines.deadlinePassed() == .close)
    }

    @Test mutating func aDeclaredBodyMustArriveInTimeOrGets408() {
        _ = deadlines.connected()
        #expect(deadlines.headReceived(declaresBody: true) == .arm(.seconds(10)))
        #expect(deadlines.deadlinePassed() == .answerTimeoutAndClose)
    }

    @Test mutating func noDeadlineRunsWhileTheServerAnswers() {
        _ = deadlines.connected()
        #expect(deadlines.headReceived(declaresBody: true) == .arm(.seconds(10)))
        #expect(deadlines.requestEnded() == .disarm)
        #expect(deadlines.deadlinePassed() == .none)
    }

    @Test mutating func aKeptAliveConnectionMayIdleThirtySeconds() {
        _ = deadlines.connected()
        _ = deadlines.headReceived(declaresBody: false)
        #expect(deadlines.responseEnded(keepAlive: true) == .arm(.seconds(30)))
        #expect(deadlines.headReceived(declaresBody: false) == .disarm)
        #expect(deadlines.responseEnded(keepAlive: true) == .arm(.seconds(30)))
        #expect(deadlines.deadlinePassed() == .close)
    }
}

@Suite struct HTTPTimeoutHandling {
    func channel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(handler: HTTPTimeoutHandler(requestTimeout: .seconds(10), keepAliveTimeout: .seconds(30)))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
        return channel
    }

    @Test func aSilentSocketIsClosedAfterTheRequestTimeout() throws {
        let channel = try channel()
        let loop = channel.embeddedEventLoop
        loop.advanceTime(by: .milliseconds(9999))
        #expect(channel.isActive)
        loop.advanceTime(by: .milliseconds(1))
        #expect(!channel.isActive)
    }

    @Test func aBodyThatNeverComesIsAnswered408ThenClosed() throws {
        let channel = try channel()
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/api/v1/publish")
        head.headers.add(name: "Content-Length", value: "1000000")
        try channel.writeInbound(HTTPServerRequestPart.head(head))
        _ = try channel.readInbound(as: HTTPServerRequestPart.self)
        channel.embeddedEventLoop.advanceTime(by: .seconds(10))
        guard case .head(let response)? = try channel.readOutbound(as: HTTPServerResponsePart.self) else {
            Issue.record("expected a response head")
            return
        }
        #expect(response.status == .requestTimeout)
        #expect(!channel.isActive)
    }

    @Test func anAnsweredKeptAliveConnectionIdlesThirtySeconds() throws {
        let channel = try channel()
        try channel.writeInbound(HTTPServerRequestPart.head(HTTPRequestHead(version: .http1_1, method: .GET, uri: "/healthz")))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
        channel.embeddedEventLoop.advanceTime(by: .seconds(20))
        #expect(channel.isActive, "no deadline while the server answers")
        try channel.writeOutbound(HTTPServerResponsePart.end(nil))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(29999))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(!channel.isActive)
    }
}

@Suite struct AcceptPauses {
    /// Out of file descriptors, the listener stops reading (which drops NIO's interest in the
    /// listening socket) and resumes after the pause.
    final class Switch: @unchecked Sendable {
        var accepting: [Bool] = []
    }

    @Test func runningOutOfDescriptorsPausesAcceptingThenResumes() throws {
        let recorded = Switch()
        let channel = EmbeddedChannel(handler: AcceptPauseHandler(pause: .milliseconds(100)) { recorded.accepting.append($1) })
        channel.pipeline.fireErrorCaught(IOError(errnoCode: EMFILE, reason: "accept"))
        #expect(recorded.accepting == [false])
        channel.pipeline.fireErrorCaught(IOError(errnoCode: EMFILE, reason: "accept"))
        #expect(recorded.accepting == [false], "one pause at a time")
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(99))
        #expect(recorded.accepting == [false])
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(1))
        #expect(recorded.accepting == [false, true])
        #expect(throws: Never.self) { try channel.throwIfErrorCaught() }
    }

    @Test func otherErrorsPassThrough() throws {
        let recorded = Switch()
        let channel = EmbeddedChannel(handler: AcceptPauseHandler { recorded.accepting.append($1) })
        channel.pipeline.fireErrorCaught(IOError(errnoCode: ECONNRESET, reason: "accept"))
        #expect(throws: IOError.self) { try channel.throwIfErrorCaught() }
        #expect(recorded.accepting.isEmpty)
    }
}
