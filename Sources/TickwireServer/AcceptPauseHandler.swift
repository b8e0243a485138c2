import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// On the listening socket: when accept() fails for want of file descriptors or memory,
/// stop accepting for `pause`, then try again.
///
/// NIO's `AcceptBackoffHandler` cannot do this here: NIO resets the server channel's pending
/// read only when an accept succeeds, so after EMFILE it neither asks the pipeline to read
/// again (which that handler delays) nor drops its interest in the listening socket, and
/// level-triggered epoll wakes the loop for the same waiting connection over and over (a
/// core at 100% with 260 idle sockets under a 200-file limit). Turning `autoRead` off does
/// drop that interest; turning it back on resumes accepting.
final class AcceptPauseHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Channel
    typealias InboundOut = Channel

    private let pause: TimeAmount
    /// Turns accepting on or off (`autoRead`; a test observes it here).
    private let setAccepting: (Channel, Bool) -> Void
    private var resume: Scheduled<Void>?

    init(pause: TimeAmount = .milliseconds(100), setAccepting: @escaping (Channel, Bool) -> Void = { $0.setAutoRead($1) }) {
        self.pause = pause
        self.setAccepting = setAccepting
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard let error = error as? IOError, Self.isRecoverable(error) else {
            context.fireErrorCaught(error)
            return
        }
        guard resume == nil else { return }  // paused already
        setAccepting(context.channel, false)
        resume = context.eventLoop.assumeIsolated().scheduleTask(in: pause) {
            self.resume = nil
            self.setAccepting(context.channel, true)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        resume?.cancel()
        resume = nil
        context.fireChannelInactive()
    }

    static func isRecoverable(_ error: IOError) -> Bool {
        [EMFILE, ENFILE, ENOBUFS, ENOMEM].contains(error.errnoCode)
    }
}

extension Channel {
    func setAutoRead(_ value: Bool) {
        if let options = syncOptions {
            try? options.setOption(.autoRead, value: value)
        } else {
            setOption(.autoRead, value: value).whenFailure { _ in }
        }
    }
}
