import Logging
import NIOConcurrencyHelpers
import NIOCore

/// The master a set of Redis Sentinels names.
///
/// A connect asks the sentinels in turn (`SENTINEL get-master-addr-by-name`), connects to the
/// address the first one that knows gives, and checks with `ROLE` that the server is a master:
/// a sentinel may still name a master that has just been demoted, and a gateway never writes to
/// a replica. The address is remembered until a connect fails or a server answers as a replica.
///
/// From the first connect on, one connection to a sentinel follows `+switch-master`: when the
/// master moves, the address changes at once and every `onMasterMoved` handler runs, so clients
/// close their connections to the old master instead of waiting for it to fail. The watch moves
/// to the next sentinel when its sentinel goes away, and asks for the master whenever it
/// (re)connects, so a switch made while no sentinel was watched is not missed.
public final class RedisSentinelEndpoint: RedisEndpoint {
    public let configuration: RedisConfiguration
    private let sentinel: RedisConfiguration.Sentinel
    private let eventLoop: EventLoop
    private let logger: Logger
    private let pingInterval: Duration
    private let backoff: Backoff

    private struct State {
        var master: RedisConfiguration.Address?
        var handlers: [@Sendable () -> Void] = []
        var watch: Task<Void, Never>?
        var watchConnection: RedisConnection?
        var isShutDown = false
    }
    private let state = NIOLockedValueBox(State())

    public init(
        configuration: RedisConfiguration, eventLoop: EventLoop, logger: Logger, pingInterval: Duration = .seconds(1),
        backoff: Backoff = Backoff(base: .milliseconds(100), cap: .seconds(2))
    ) {
        precondition(configuration.sentinel != nil, "a sentinel endpoint needs a +sentinel configuration")
        self.configuration = configuration
        self.sentinel = configuration.sentinel!
        self.eventLoop = eventLoop
        self.logger = logger
        self.pingInterval = pingInterval
        self.backoff = backoff
    }

    /// The address the sentinels gave last, if it is still trusted.
    public var master: RedisConfiguration.Address? { state.withLockedValue { $0.master } }

    public func connect(on eventLoop: EventLoop, name: String?, onPush: (@Sendable (RESPValue) -> Void)?) async throws
        -> RedisConnection
    {
        startWatching()
        let address = try await lookUpMaster()
        let connection: RedisConnection
        do {
            connection = try await RedisConnection.connect(
                configuration.server(at: address), eventLoop: eventLoop, name: name, onPush: onPush)
        } catch {
            forget(address)
            throw error
        }
        do {
            let role = try await connection.send(RESPCommand("ROLE"))
            guard let kind = role.elements?.first?.string, kind == "master" else {
                throw RedisError.unavailable("\(address), named master of \(sentinel.masterName), is not a master (ROLE: \(role.elements?.first?.string ?? "?"))")
            }
        } catch {
            forget(address)
            await connection.close()
            throw error
        }
        return connection
    }

    public func invalidate() {
        state.withLockedValue { $0.master = nil }
    }

    public func onMasterMoved(_ handler: @escaping @Sendable () -> Void) {
        state.withLockedValue { $0.handlers.append(handler) }
    }

    private func forget(_ address: RedisConfiguration.Address) {
        state.withLockedValue { if $0.master == address { $0.master = nil } }
    }

    // MARK: Asking the sentinels

    private func lookUpMaster() async throws -> RedisConfiguration.Address {
        if let master = state.withLockedValue({ $0.master }) { return master }
        var errors: [String] = []
        for address in sentinel.addresses {
            do {
                let connection = try await RedisConnection.connect(sentinelConfiguration(address), eventLoop: eventLoop)
                let named: RedisConfiguration.Address?
                do {
                    named = try await askForMaster(on: connection)
                    await connection.close()
                } catch {
                    await connection.close()
                    throw error
                }
                guard let master = named else {
                    errors.append("\(address): does not know \(sentinel.masterName)")
                    continue
                }
                let moved = state.withLockedValue { state -> Bool in
                    defer { state.master = master }
                    return state.master != nil && state.master != master
                }
                if moved { masterMoved(to: master) }
                return master
            } catch {
                errors.append("\(address): \(error)")
            }
        }
        throw RedisError.unavailable("no sentinel named a master for \(sentinel.masterName) (\(errors.joined(separator: "; ")))")
    }

    private func askForMaster(on connection: RedisConnection) async throws -> RedisConfiguration.Address? {
        let reply = try await connection.send(RESPCommand("SENTINEL", ["get-master-addr-by-name", sentinel.masterName]))
        guard let parts = reply.elements, parts.count == 2, let host = parts[0].string,
            let port = parts[1].string.flatMap({ Int($0) })
        else { return nil }
        return RedisConfiguration.Address(host: host, port: port)
    }

    private func sentinelConfiguration(_ address: RedisConfiguration.Address) -> RedisConfiguration {
        var configuration = self.configuration.server(at: address)
        configuration.username = nil
        configuration.password = sentinel.password
        configuration.database = 0
        return configuration
    }

    // MARK: Following +switch-master

    private func startWatching() {
        state.withLockedValue { state in
            guard state.watch == nil, !state.isShutDown else { return }
            state.watch = Task { await self.watch() }
        }
    }

    private func watch() async {
        var index = 0
        var failures = 0
        while !state.withLockedValue({ $0.isShutDown }) {
            let address = sentinel.addresses[index % sentinel.addresses.count]
            do {
                let connection = try await RedisConnection.connect(
                    sentinelConfiguration(address), eventLoop: eventLoop, name: "tickwire-sentinel-watch",
                    onPush: { [weak self] push in self?.received(push) })
                let keep = state.withLockedValue { state -> Bool in
                    guard !state.isShutDown else { return false }
                    state.watchConnection = connection
                    return true
                }
                guard keep else {
                    await connection.close()
                    return
                }
                // Asked before subscribing: a RESP2 connection takes no commands once subscribed.
                if let named = try await askForMaster(on: connection) {
                    let moved = state.withLockedValue { state -> Bool in
                        guard let known = state.master, known != named else { return false }
                        state.master = named
                        return true
                    }
                    if moved { masterMoved(to: named) }
                }
                connection.sendWithoutReply(RESPCommand("SUBSCRIBE", ["+switch-master"]))
                failures = 0
                await keepAlive(connection)
                state.withLockedValue { $0.watchConnection = nil }
            } catch {
                if failures == 0 {
                    logger.warning("cannot watch Redis sentinel", metadata: ["sentinel": "\(address)", "error": "\(error)"])
                }
                failures += 1
            }
            index += 1
            guard !state.withLockedValue({ $0.isShutDown }) else { return }
            try? await Task.sleep(for: backoff.delay(attempt: failures))
        }
    }

    private func keepAlive(_ connection: RedisConnection) async {
        while connection.isActive, !state.withLockedValue({ $0.isShutDown }) {
            try? await Task.sleep(for: pingInterval)
            guard connection.isActive else { return }
            do {
                _ = try await connection.sendRaw(RESPCommand("PING"), timeout: pingInterval * 2)
            } catch {
                await connection.close()
                return
            }
        }
    }

    /// `+switch-master` carries `<master-name> <old-ip> <old-port> <new-ip> <new-port>`.
    private func received(_ push: RESPValue) {
        guard let elements = push.elements, elements.count == 3, elements[0].string == "message",
            elements[1].string == "+switch-master", let text = elements[2].string
        else { return }
        let parts = text.split(separator: " ")
        guard parts.count == 5, parts[0] == sentinel.masterName, let port = Int(parts[4]) else { return }
        let master = RedisConfiguration.Address(host: String(parts[3]), port: port)
        let moved = state.withLockedValue { state -> Bool in
            guard state.master != master else { return false }
            state.master = master
            return true
        }
        if moved { masterMoved(to: master) }
    }

    private func masterMoved(to master: RedisConfiguration.Address) {
        logger.warning("Redis master moved", metadata: ["master_name": "\(sentinel.masterName)", "master": "\(master)"])
        for handler in state.withLockedValue({ $0.handlers }) { handler() }
    }

    public func shutdown() async {
        let (watch, connection) = state.withLockedValue { state in
            state.isShutDown = true
            state.handlers = []
            return (state.watch, state.watchConnection)
        }
        await connection?.close()
        watch?.cancel()
        await watch?.value
    }
}
