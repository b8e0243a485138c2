import Foundation
import TickwireKit

let env = ProcessInfo.processInfo.environment
let client = TickwireClient(url: URL(string: env["TICKWIRE_URL"] ?? "ws://127.0.0.1:8080/ws")!, token: env["TICKWIRE_TOKEN"] ?? "PASTE_THE_DEV_TOKEN")
Task { for await state in client.states { print("state:", state) } }
Task { for await event in client.notifications() { print(event.kind.rawValue, event.id, event.data.jsonText) } }
for await price in client.prices(["BTC", "ETH", "SOL"]) {
    print(price.symbol, price.priceUSD, "\(price.change24h)%", price.stale ? "stale" : "live")
}
