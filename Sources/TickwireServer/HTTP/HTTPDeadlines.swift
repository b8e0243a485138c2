import NIOCore

/// When an HTTP connection must next have sent something, as a value: connection and
/// request events in, what to do with the one deadline out. A client that trickles its
/// request head, declares a body it never sends, or idles on a kept-alive connection
/// holds a socket (and a slot of `--max-connections`) for a bounded time only.
struct HTTPDeadlines {
    enum State: Equatable {
        /// Waiting for a complete request head (the first one, within `requestTimeout`).
        case awaitingHead
        /// A declared body is arriving (within `requestTimeout` of its head).
        case readingBody
        /// The request is complete; the answer is the server's to give, so no deadline runs.
        case responding
        /// A kept-alive connection between requests (the next head within `keepAliveTimeout`).
        case idle
        case closing
    }

    enum Action: Equatable {
        case arm(TimeAmount)
        case disarm
        /// The deadline passed mid-request: answer 408, then close.
        case answerTimeoutAndClose
        /// The deadline passed between requests: just close.
        case close
        case none
    }

    let requestTimeout: TimeAmount
    let keepAliveTimeout: TimeAmount
    private(set) var state = State.awaitingHead

    init(requestTimeout: TimeAmount, keepAliveTimeout: TimeAmount) {
        self.requestTimeout = requestTimeout
        self.keepAliveTimeout = keepAliveTimeout
    }

    mutating func connected() -> Action {
        state = .awaitingHead
        return .arm(requestTimeout)
    }

    mutating func headReceived(declaresBody: Bool) -> Action {
        guard declaresBody else {
            state = .responding
            return .disarm
        }
        state = .readingBody
        return .arm(requestTimeout)
    }

    mutating func requestEnded() -> Action {
        guard state == .readingBody else { return .none }
        state = .responding
        return .disarm
    }

    mutating func responseEnded(keepAlive: Bool) -> Action {
        guard keepAlive else {
            state = .closing
            return .disarm
        }
        state = .idle
        return .arm(keepAliveTimeout)
    }

    mutating func deadlinePassed() -> Action {
        switch state {
        case .awaitingHead, .idle:
            state = .closing
            return .close
        case .readingBody:
            state = .closing
            return .answerTimeoutAndClose
        case .responding, .closing:
            return .none
        }
    }
}
