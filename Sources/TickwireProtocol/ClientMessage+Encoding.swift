/// Writing client frames: what an SDK sends. `ClientMessage.parse` reads back exactly this.
extension ClientMessage {
    /// The frame's JSON text, `{"action":...,...,"request_id":...}`.
    public var jsonText: String {
        var object = JSONObject()
        switch action {
        case .subscribePrices(let symbols), .unsubscribePrices(let symbols):
            object["action"] = .string(action.name)
            object["channel"] = "prices"
            object["symbols"] = .array(symbols.map(JSONValue.string))
        case .subscribeNotifications(let userID, let since):
            object["action"] = "subscribe"
            object["channel"] = "notifications"
            object["user_id"] = .string(userID)
            if let since { object["since"] = .string(since.description) }
        case .unsubscribeNotifications(let userID):
            object["action"] = "unsubscribe"
            object["channel"] = "notifications"
            object["user_id"] = .string(userID)
        case .ping:
            object["action"] = "ping"
        case .auth(let token):
            object["action"] = "auth"
            object["token"] = .string(token)
        }
        if let requestID { object["request_id"] = requestID.jsonValue }
        return object.jsonText
    }
}
