import ArgumentParser

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif


public struct Tickwire: AsyncParsableCommand {
    public init() {}

    static let version = "0.1.0"

    public static let configuration = CommandConfiguration(
        commandName: "tickwire",
        abstract: "Real-time price and notification gateway for wallet apps.",
        discussion: """
            Every option can also be set in the environment as TICKWIRE_<OPTION>: --jwt-secret is \
            TICKWIRE_JWT_SECRET, --heartbeat-timeout is TICKWIRE_HEARTBEAT_TIMEOUT. A flag on the command \
            line wins over the environment.
            """,
        version: version,
        subcommands: [Serve.self, Feed.self, Publish.self, Token.self, Watch.self, Bench.self, BenchWorkerCommand.self]
    )

    /// Parses with environment defaults, runs, and turns every error into one line on stderr.
    public static func runFromCommandLine() async {
        let arguments = EnvironmentDefaults.apply(
            to: Array(CommandLine.arguments.dropFirst()), environment: ProcessEnvironment.all)
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                StandardStream.write(fullMessage(for: error) + "\n", to: 1)
                Self.terminate(0)
            }
            let message = self.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            StandardStream.write("tickwire: error: \(message)\n", to: 2)
            Self.terminate(code == .failure ? 1 : code.rawValue)
        }
    }
}

extension Tickwire {
    static func terminate(_ code: Int32) -> Never {
        #if canImport(Glibc)
        Glibc.exit(code)
        #else
        Darwin.exit(code)
        #endif
    }
}

enum ProcessEnvironment {
    static var all: [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return result
    }
}

/// A one-line error for the CLI: `tickwire: error: <description>`, exit 1.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
