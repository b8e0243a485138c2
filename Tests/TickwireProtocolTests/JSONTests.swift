import Testing

@testable import TickwireProtocol

@Suite struct JSONParsing {
    @Test func parsesEveryValueKindAndKeepsNumberLiterals() throws {
        let value = try JSONParser.parse(#" {"a":[1,-2.50,3e2,true,false,null],"b":{"c":"x\ny"}} "#)
        guard case .object(let object) = value else { Issue.record("not an object"); return }
        #expect(object["a"] == .array([.number("1"), .number("-2.50"), .number("3e2"), .bool(true), .bool(false), .null]))
        #expect(object["b"]?.objectValue?["c"] == .string("x\ny"))
    }

    @Test func decodesEscapesAndSurrogatePairs() throws {
        #expect(try JSONParser.parse(#""\u00e9\ud83d\ude00\"\\\/\b\f\r\t""#) == .string("é😀\"\\/\u{08}\u{0C}\r\t"))
    }

    @Test(arguments: [
        "", "{", "[1,]", "{\"a\":1,}", "01", "1.", "-", "1e", "tru", "\"abc", "\"\\x\"", "\"\\ud800\"",
        "\"\\udc00\"", "{\"a\" 1}", "[1 2]", "1 2", "\"\u{01}\"", "{1:2}", "NaN", "[-]",
    ])
    func refusesMalformedText(_ text: String) {
        #expect(throws: JSONParseError.self) { try JSONParser.parse(text) }
    }

    @Test func refusesInvalidUTF8InStrings() throws {
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22, 0xC3, 0x28, 0x22]) }
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22, 0xED, 0xA0, 0x80, 0x22]) }
        #expect(try JSONParser.parse([0x22, 0xC3, 0xA9, 0x22]) == .string("é"))
    }

    @Test func limitsNestingDepth() throws {
        let deep = String(repeating: "[", count: 100) + String(repeating: "]", count: 100)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(deep) }
        let fine = String(repeating: "[", count: 10) + String(repeating: "]", count: 10)
        #expect(throws: Never.self) { try JSONParser.parse(fine) }
    }

    @Test func lastDuplicateKeyWins() throws {
        let object = try JSONParser.parse(#"{"a":1,"a":2}"#).objectValue
        #expect(object?["a"] == .number("2"))
    }
}

@Suite struct JSONWriting {
    @Test func escapesWhatJSONRequires() {
        let value: JSONValue = ["text": .string("quote\" back\\ nl\n tab\t bell\u{07} é")]
        #expect(value.jsonText == #"{"text":"quote\" back\\ nl\n tab\t bell\u0007 é"}"#)
    }

    @Test func roundTripsThroughTheParser() throws {
        let text = #"{"id":"1-0","n":[1,2.5,-3e-2],"o":{"k":null,"t":true},"s":"😀"}"#
        #expect(try JSONParser.parse(text).jsonText == text)
    }
}
