import ArgumentParser
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import RESP
import TickwireHTTPClient
import TickwireProtocol
import TickwireRedis
import TickwireServer

struct Publish: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Publish a notification to a user: through a gateway's HTTP API, or straight to Redis.",
        discussion: """
            tickwire publish --url http://host:8080 --api-key KEY --user U --event notification --data '{...}'
            tickwire publish --url https://host:8443 --ca-file ca.pem --api-key KEY ...
            tickwire publish --redis-url redis://host:6379 --user U --event balance_update --data '{...}'
            Prints the event's id. --data is checked against the event's fields first.
            """
    )

    @Option(help: "A gateway's base URL (http://host:port or https://host:port); needs --api-key.")
    var url: String?

    @Option(help: "With an https:// --url: a PEM file of CA certificates to trust instead of the system's.")
    var caFile: String?

    @Option(help: "The gateway's API key.")
    var apiKey: String?

    @Option(help: "Publish straight to this Redis (redis://, rediss://, redis+sentinel:// or redis+cluster://) instead of through a gateway.")
    var redisURL: String?

    @Option(help: "Prefix for every Redis key and channel (the gateways' --redis-prefix).")
    var redisPrefix = ""

    @Option(help: "The user id (the token sub of the recipients).")
    var user: String?

    @Option(help: "transaction_update, balance_update or notification.")
    var event: String?

    @Option(help: "The event's data, a JSON object.")
    var data: String?

    @Option(help: "With --redis-url: events kept per user for replay.")
    var notificationCapacity = 1000

    @Option(help: "With --redis-url: seconds events are kept for replay.")
    var notificationTtl = 7 * 86400

    func validate() throws {
        switch (url, redisURL) {
        case (nil, nil): throw ValidationError("give --url (with --api-key) or --redis-url")
        case (.some, .some): throw ValidationError("give either --url or --redis-url, not both")
        case (.some, nil) where apiKey == nil: throw ValidationError("--url needs --api-key")
        default: break
        }
        if let url {
            do { _ = try HTTPClient.Target(url: url) } catch { throw ValidationError("--url: \(error)") }
        }
        if caFile != nil, url?.hasPrefix("https://") != true { throw ValidationError("--ca-file goes with an https:// --url") }
        guard user != nil, event != nil, data != nil else { throw ValidationError("--user, --event and --data are required") }
        _ = try publication()
    }

    func publication() throws -> Publication {
        let body: JSONObject = ["user_id": .string(user ?? ""), "event": .string(event ?? ""), "data": .null]
        guard let parsed = try? JSONParser.parse(data ?? "") else { throw ValidationError("--data is not valid JSON") }
        var object = body
        object["data"] = parsed
        do {
            return try Publication(object)
        } catch {
            let field = error.details["field"]?.stringValue.map { " (\($0))" } ?? ""
            throw ValidationError("\(error.message)\(field)")
        }
    }

    func run() async throws {
        let publication = try publication()
        if let url {
            let target = try HTTPClient.Target(url: url).appending(path: "/api/v1/publish")
            let body: JSONValue = [
                "user_id": .string(publication.userID), "event": .string(publication.kind.rawValue),
                "data": .object(publication.data),
            ]
            let response: HTTPClient.Response
            do {
                response = try await HTTPClient.request(
                    target, method: .POST, headers: [("Authorization", "Bearer \(apiKey!)")], body: Array(body.jsonText.utf8),
                    trust: HTTPClient.Trust(caFile: caFile))
            } catch {
                throw CLIError("cannot reach \(url): \(error)")
            }
            let reply = try? JSONParser.parse(response.body).objectValue
            guard response.status == 200, let id = reply?["id"]?.stringValue else {
                let message = reply?["error"]?.objectValue?["message"]?.stringValue ?? response.body
                throw CLIError("the gateway answered \(response.status): \(message)")
            }
            print(id)
        } else {
            var settings = RedisBroker.Settings()
            settings.keys = RedisKeys(prefix: redisPrefix)
            settings.notificationCapacity = notificationCapacity
            settings.retentionMilliseconds = Int64(notificationTtl) * 1000
            var logger = Logger(label: "tickwire")
            logger.logLevel = .critical
            let broker = RedisBroker(
                configuration: try RedisConfiguration(url: redisURL!), settings: settings,
                eventLoop: MultiThreadedEventLoopGroup.singleton.next(), logger: logger)
            defer { Task { await broker.shutdown() } }
            do {
                let envelope = try await broker.publish(
                    notification: publication.kind, data: publication.data, userID: publication.userID)
                print(envelope.id.description)
            } catch {
                throw CLIError("could not publish through \(broker.configuration.redacted): \(error)")
            }
        }
    }
}
