import TickwireProtocol

extension JSONValue {
    /// A number's digits as a decimal, whether the source sent a JSON string (`"1285.22"`) or a JSON
    /// number (`61696.68`: the parser keeps its text): never through a binary float.
    var decimal: DecimalNumber? {
        switch self {
        case .string(let text), .number(let text): DecimalNumber(text)
        default: nil
        }
    }
}

/// Reading a provider's message: its JSON object, or why not.
enum ProviderMessage {
    static func object(_ text: String) -> JSONObject? {
        try? JSONParser.parse(Array(text.utf8), maxDepth: 32).objectValue
    }
}
