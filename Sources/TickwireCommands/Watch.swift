import ArgumentParser
import Foundation
import NIOSSL
import TickwireKit
import UnixSignals

/// `tickwire watch`: a terminal client built only on TickwireKit's public API.
struct Watch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Watch prices (and the token user's notifications) on any Tickwire gateway.",
        discussion: """
            tickwire watch BTC ETH --url ws://127.0.0.1:8080/ws --token JWT --notifications
            Prints one line per price to stdout ("BTC 90123.45 +2.5% live", or "stale") and, with \
            --notifications, one per notification ("transaction_update 1733000000000-0 {...}"); \
            connection states, errors and gaps go to stderr. It reconnects through gateway restarts \
            and network loss, catching up the notifications it missed, until Ctrl-C. Exits 1 when the \
            gateway refuses the token, 0 when the gateway closes with 1000.
            """
    )

    @Argument(help: "Symbols to watch, e.g. BTC ETH.")
    var symbols: [String] = []

    @Option(help: "The gateway's WebSocket URL: ws://host:port/ws or wss://host/ws.")
    var url: String?

    @Option(help: "A JWT for the user (tickwire serve prints a dev token; `tickwire token` makes one).")
    var token: String?

    @Flag(help: "Also print the token user's notifications.")
    var notifications = false

    @Option(help: "With a wss:// --url: a PEM file of CA certificates to trust instead of the system's.")
    var caFile: String?

    @Option(help: "How the token travels: header (Authorization: Bearer), query (?token=) or message (first frame).")
    var tokenTransport: String = "header"

    func validate() throws {
        guard let url, let parsed = URL(string: url), ["ws", "wss", "http", "https"].contains(parsed.scheme?.lowercased() ?? ""),
            parsed.host?.isEmpty == false
        else { throw ValidationError("--url must be a ws:// or wss:// URL with a host, such as ws://127.0.0.1:8080/ws") }
        guard let token, !token.isEmpty else { throw ValidationError("--token is required") }
        guard !symbols.isEmpty || notifications else { throw ValidationError("give at least one symbol, or --notifications") }
        for symbol in symbols where Symbol.normalize(symbol) == nil {
            throw ValidationError("\"\(symbol)\" is not a symbol: expected 1 to 15 letters or digits")
        }
        guard ["header", "query", "message"].contains(tokenTransport) else {
            throw ValidationError("--token-transport must be header, query or message")
        }
        if caFile != nil, parsed.scheme?.lowercased() != "wss" { throw ValidationError("--ca-file goes with a wss:// --url") }
        if let caFile, !FileManager.default.isReadableFile(atPath: caFile) { throw ValidationError("--ca-file \(caFile) is not readable") }
    }

    func run() async throws {
        var configuration = TickwireClient.Configuration()
        configuration.tokenTransport = switch tokenTransport {
        case "query": .query
        case "message": .firstMessage
        default: .header
        }
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caFile { tls.trustRoots = .file(caFile) }
        configuration.transport = NIOWebSocketTransport(tlsConfiguration: tls)
        let client = TickwireClient(url: URL(string: url!)!, token: token!, configuration: configuration)
        let output = LineOutput()

        let outcome = await withTaskGroup(of: Int32?.self) { group -> Int32 in
            if !symbols.isEmpty {
                let stream = client.prices(symbols)
                group.addTask {
                    for await price in stream {
                        let change = price.change24h.hasPrefix("-") ? price.change24h : "+" + price.change24h
                        output.out("\(price.symbol) \(price.priceUSD) \(change)% \(price.stale ? "stale" : "live")")
                    }
                    return nil
                }
            }
            if notifications {
                let stream = client.notifications()
                group.addTask {
                    for await event in stream {
                        output.out("\(event.kind.rawValue) \(event.id) \(event.data.jsonText)")
                    }
                    return nil
                }
            }
            group.addTask {
                for await error in client.errors { output.err("error: \(error)") }
                return nil
            }
            group.addTask {
                for await gap in client.gaps {
                    output.err("gap: events after \(gap.since) for \(gap.userID) may be missing")
                }
                return nil
            }
            group.addTask {
                for await state in client.states {
                    output.err("state: \(state)")
                    guard case .closed(let closed) = state else { continue }
                    switch closed.reason {
                    case .unauthorized:
                        output.err("tickwire watch: the gateway refused the token\(closed.error.map { " (\($0))" } ?? "")")
                        return 1
                    case .server:
                        return 0
                    case .client, .suspended:
                        return closed.error == nil ? 0 : 1
                    }
                }
                return 0
            }
            group.addTask {
                for await _ in await UnixSignalsSequence(trapping: .sigint, .sigterm) { return 0 }
                return 0
            }
            var code: Int32 = 0
            while let result = await group.next() {
                if let result {
                    code = result
                    break
                }
            }
            client.close()
            group.cancelAll()
            return code
        }
        if outcome != 0 { throw ExitCode(outcome) }
    }
}

/// Whole lines to stdout and stderr, flushed at once so that a pipe sees each as it happens.
struct LineOutput: Sendable {
    func out(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    func err(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
