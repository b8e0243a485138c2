import NIOCore

/// A command on its way to the server, with the promise of its reply.
struct RedisRequest: Sendable {
    var command: RESPCommand
    /// Nil for commands whose answers arrive as pushes (SUBSCRIBE, UNSUBSCRIBE).
    var promise: EventLoopPromise<RESPValue>?
    var deadline: NIODeadline
}

/// Pipelining on one connection: requests are written as they come and flushed
/// once per event-loop turn; replies complete the oldest pending request (FIFO);
/// pushes go to the push handler. One timer watches the oldest request's deadline:
/// when it passes, every pending request fails and the connection closes, because
/// replies after a missing one could no longer be matched.
final class RedisChannelHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private var pending = CircularBuffer<(promise: EventLoopPromise<RESPValue>, deadline: NIODeadline)>()
    private var buffer: ByteBuffer?
    private let parser = RESPParser()
    private let onPush: (@Sendable (RESPValue) -> Void)?
    private var flushScheduled = false
    private var deadlineTimer: (task: Scheduled<Void>, at: NIODeadline)?
    private var context: ChannelHandlerContext?
    /// When anything last arrived from the server.
    private(set) var lastInbound = NIODeadline.now()

    init(onPush: (@Sendable (RESPValue) -> Void)?) {
        self.onPush = onPush
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        var bytes = context.channel.allocator.buffer(capacity: 64)
        request.command.encode(into: &bytes)
        if let reply = request.promise {
            pending.append((reply, request.deadline))
            armDeadlineTimer(context: context)
        }
        context.write(wrapOutboundOut(bytes), promise: promise)
        if !flushScheduled {
            flushScheduled = true
            context.eventLoop.assumeIsolated().execute {
                self.flushScheduled = false
                context.flush()
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastInbound = .now()
        var incoming = unwrapInboundIn(data)
        if buffer == nil { buffer = incoming } else { buffer!.writeBuffer(&incoming) }
        while true {
            let value: RESPValue
            do {
                guard let next = try parser.next(from: &buffer!) else { break }
                value = next
            } catch {
                failAll(RedisError.protocolError(error.reason))
                context.close(promise: nil)
                return
            }
            if isPush(value) || isRefusedSubscription(value) {
                onPush?(value)
            } else if let head = pending.popFirst() {
                head.promise.succeed(value)
            } else {
                failAll(RedisError.protocolError("a reply nobody asked for: \(value)"))
                context.close(promise: nil)
                return
            }
        }
        if buffer!.readableBytes == 0 {
            buffer = nil
        } else if buffer!.readerIndex > 64 * 1024 {
            buffer!.discardReadBytes()
        }
        armDeadlineTimer(context: context)
    }

    /// RESP3 marks pushes; in RESP2 a subscribed connection's messages and
    /// (un)subscribe confirmations are arrays named by their first element.
    private func isPush(_ value: RESPValue) -> Bool {
        switch value {
        case .push: return true
        case .array(let elements) where onPush != nil:
            guard let kind = elements.first?.string else { return false }
            return ["message", "pmessage", "smessage", "subscribe", "unsubscribe", "psubscribe", "punsubscribe",
                    "ssubscribe", "sunsubscribe"].contains(kind)
        default: return false
        }
    }

    /// A cluster node refuses an `SSUBSCRIBE` of a slot it does not serve with an error reply:
    /// a reply to a command written without a promise. Only (S)SUBSCRIBE gets such errors, so
    /// they go to the push handler instead of the oldest pending request (a PING's).
    private func isRefusedSubscription(_ value: RESPValue) -> Bool {
        guard onPush != nil, case .error(let message) = value else { return false }
        return message.hasPrefix("MOVED ") || message.hasPrefix("ASK ") || message.hasPrefix("CROSSSLOT")
    }

    /// Keeps one timer at the oldest pending request's deadline (none when nothing is pending).
    private func armDeadlineTimer(context: ChannelHandlerContext) {
        guard let head = pending.first else {
            deadlineTimer?.task.cancel()
            deadlineTimer = nil
            return
        }
        if let timer = deadlineTimer {
            guard timer.at > head.deadline else { return }
            timer.task.cancel()
        }
        let task = context.eventLoop.assumeIsolated().scheduleTask(deadline: head.deadline) {
            self.deadlineTimer = nil
            guard let head = self.pending.first else { return }
            if head.deadline <= .now() {
                self.failAll(RedisError.timeout)
                context.close(promise: nil)
            } else {
                self.armDeadlineTimer(context: context)
            }
        }
        deadlineTimer = (task, head.deadline)
    }

    private func failAll(_ error: Error) {
        deadlineTimer?.task.cancel()
        deadlineTimer = nil
        while let head = pending.popFirst() { head.promise.fail(error) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(RedisError.connectionClosed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        failAll(RedisError.unavailable("\(error)"))
        context.close(promise: nil)
    }
}
