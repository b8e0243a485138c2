import ArgumentParser
import Testing

@testable import TickwireCommands

@Suite struct EnvironmentVariables {
    @Test(arguments: [
        ("jwtSecret", "jwt-secret"), ("redisURL", "redis-url"), ("maxHTTPBody", "max-http-body"),
        ("feedTick", "feed-tick"), ("jwks", "jwks"), ("leaderTtl", "leader-ttl"),
    ])
    func namesFollowArgumentParser(property: String, option: String) {
        #expect(EnvironmentDefaults.kebabCase(property) == option)
    }

    /// Every option a subcommand shows in --help can be set from the environment.
    @Test func everyDocumentedOptionHasAnEnvironmentVariable() throws {
        for command in Tickwire.configuration.subcommands {
            let help = command.helpMessage(columns: 200)
            // Option definitions are the lines of the OPTIONS section that start with `--name`.
            let documented = Set(help.split(separator: "\n").compactMap { line -> String? in
                var trimmed = line.drop(while: { $0 == " " })
                // `-c, --connections <n>`: skip the short name.
                if trimmed.count > 4, trimmed.hasPrefix("-"), !trimmed.hasPrefix("--"), let comma = trimmed.firstIndex(of: ",") {
                    trimmed = trimmed[trimmed.index(after: comma)...].drop(while: { $0 == " " })
                }
                guard trimmed.hasPrefix("--"), line.hasPrefix("  ") else { return nil }
                let name = String(trimmed.dropFirst(2).prefix { $0.isLetter || $0.isNumber || $0 == "-" })
                return name == "help" || name == "version" ? nil : name
            })
            let mapped = Set(EnvironmentDefaults.options(of: command).map(\.name))
            #expect(documented == mapped, "\(command._commandName): \(documented.symmetricDifference(mapped))")
        }
    }

    @Test func environmentFillsMissingOptionsAndTheCommandLineWins() {
        let arguments = EnvironmentDefaults.apply(
            to: ["serve", "--port", "9000"],
            environment: ["TICKWIRE_PORT": "1", "TICKWIRE_REDIS_URL": "redis://a", "TICKWIRE_CONFORMANCE_ECHO": "true"])
        #expect(arguments.contains("--redis-url=redis://a"))
        #expect(arguments.contains("--conformance-echo"))
        #expect(!arguments.contains("--port=1"))
        let alias = EnvironmentDefaults.apply(to: ["feed"], environment: ["REDIS_URL": "redis://b"])
        #expect(alias.contains("--redis-url=redis://b"))
        let explicit = EnvironmentDefaults.apply(to: ["publish", "--url", "http://g"], environment: ["REDIS_URL": "redis://b"])
        #expect(!explicit.contains("--redis-url=redis://b"), "an explicit --url wins over REDIS_URL")
    }
}
