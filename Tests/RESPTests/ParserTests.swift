import NIOCore
import Testing

@testable import RESP

@Suite struct RESPParsing {
    let parser = RESPParser()

    func parse(_ text: String) throws -> RESPValue? {
        var buffer = ByteBuffer(string: text)
        return try parser.next(from: &buffer)
    }

    static let cases: [(String, RESPValue)] = [
        ("+OK\r\n", .simpleString("OK")),
        ("-ERR wrong\r\n", .error("ERR wrong")),
        (":-42\r\n", .integer(-42)),
        ("$5\r\nhello\r\n", .bulk("hello")),
        ("$0\r\n\r\n", .bulk("")),
        ("$-1\r\n", .null),
        ("*-1\r\n", .null),
        ("_\r\n", .null),
        ("#t\r\n", .boolean(true)),
        ("#f\r\n", .boolean(false)),
        (",3.25\r\n", .double(3.25)),
        (",-inf\r\n", .double(-.infinity)),
        ("(3492890328409238509324850943850943825024385\r\n", .bigNumber("3492890328409238509324850943850943825024385")),
        ("!9\r\nSYNTAX no\r\n", .error("SYNTAX no")),
        ("=15\r\ntxt:Some string\r\n", .verbatimString("Some string")),
        ("*2\r\n$3\r\nfoo\r\n:1\r\n", .array([.bulk("foo"), .integer(1)])),
        ("~2\r\n+a\r\n+b\r\n", .set([.simpleString("a"), .simpleString("b")])),
        ("%1\r\n+key\r\n:7\r\n", .map([RESPPair(key: .simpleString("key"), value: .integer(7))])),
        (">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n", .push([.bulk("message"), .bulk("ch"), .bulk("hi")])),
        ("|1\r\n+ttl\r\n:3600\r\n+value\r\n", .simpleString("value")),
        ("*2\r\n*1\r\n%1\r\n+k\r\n~1\r\n:1\r\n_\r\n", .array([.array([.map([RESPPair(key: .simpleString("k"), value: .set([.integer(1)]))])]), .null])),
        ("*0\r\n", .array([])),
    ]

    @Test(arguments: cases)
    func parsesEveryType(text: String, expected: RESPValue) throws {
        var buffer = ByteBuffer(string: text)
        let value = try parser.next(from: &buffer)
        #expect(value == expected || (expected == .double(.nan) && value == expected))
        #expect(buffer.readableBytes == 0, "the whole value is consumed")
    }

    /// Every value cut at every byte: nothing is consumed and nothing fails until it is complete.
    @Test(arguments: cases)
    func waitsForTruncatedValuesAtEveryByte(text: String, expected: RESPValue) throws {
        let bytes = Array(text.utf8)
        for cut in 0..<bytes.count {
            var partial = ByteBuffer(bytes: bytes[0..<cut])
            #expect(try parser.next(from: &partial) == nil, "cut at \(cut) of \(text.debugDescription)")
            #expect(partial.readableBytes == cut)
        }
    }

    @Test func parsesValuesBackToBackAndLeavesTheRest() throws {
        var buffer = ByteBuffer(string: "+a\r\n:1\r\n$3\r\nbc")
        #expect(try parser.next(from: &buffer) == .simpleString("a"))
        #expect(try parser.next(from: &buffer) == .integer(1))
        #expect(try parser.next(from: &buffer) == nil)
        buffer.writeString("d\r\n")
        #expect(try parser.next(from: &buffer) == .bulk("bcd"))
    }

    @Test(arguments: [
        "?what\r\n", ":12a\r\n", ":\r\n", "$-2\r\n", "$3\r\nabcd\r\n", "#x\r\n", ",notanumber\r\n", "_x\r\n",
        "+no cr\n", ":99999999999999999999\r\n", "*-5\r\n", "(12a\r\n", "=3\r\nabc\r\n", "%-1\r\n",
    ])
    func refusesGarbage(_ text: String) {
        #expect(throws: RESPParsingError.self) { try parse(text) }
    }

    @Test func boundsLengthsCountsAndDepth() throws {
        let small = RESPParser(maximumBulkLength: 10, maximumElements: 3, maximumDepth: 3)
        var bulk = ByteBuffer(string: "$11\r\n")
        #expect(throws: RESPParsingError.self) { try small.next(from: &bulk) }
        var wide = ByteBuffer(string: "*4\r\n")
        #expect(throws: RESPParsingError.self) { try small.next(from: &wide) }
        var deep = ByteBuffer(string: "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n")
        #expect(throws: RESPParsingError.self) { try small.next(from: &deep) }
        // A huge announced count must not reserve memory up front.
        var huge = ByteBuffer(string: "*1000000\r\n:1\r\n")
        #expect(try RESPParser().next(from: &huge) == nil)
    }

    @Test func randomBytesNeverCrash() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let length = Int.random(in: 0..<40, using: &generator)
            let alphabet = Array("+-:$*%~>_#,(!=|\r\n0123456789abc".utf8)
            var buffer = ByteBuffer(bytes: (0..<length).map { _ in alphabet.randomElement(using: &generator)! })
            _ = try? parser.next(from: &buffer)
        }
    }
}

@Suite struct RESPEncoding {
    @Test func commandsAreArraysOfBulkStrings() throws {
        var buffer = ByteBuffer()
        RESPCommand("SET", ["key", "välue"]).encode(into: &buffer)
        #expect(String(buffer: buffer) == "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$6\r\nvälue\r\n")
        var parsed = buffer
        #expect(try RESPParser().next(from: &parsed) == .array([.bulk("SET"), .bulk("key"), .bulk("välue")]))
    }
}
