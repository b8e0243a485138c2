import Testing

@testable import TickwireProtocol

@Suite struct Timestamps {
    @Test func formatsRFC3339WithMilliseconds() {
        #expect(Timestamp(millisecondsSinceEpoch: 0).rfc3339 == "1970-01-01T00:00:00.000Z")
        #expect(Timestamp(millisecondsSinceEpoch: 1_760_437_800_123).rfc3339 == "2025-10-14T10:30:00.123Z")
        #expect(Timestamp(millisecondsSinceEpoch: 951_782_400_000).rfc3339 == "2000-02-29T00:00:00.000Z")
        #expect(Timestamp(millisecondsSinceEpoch: -1).rfc3339 == "1969-12-31T23:59:59.999Z")
    }

    @Test func parsesRFC3339Forms() {
        #expect(Timestamp(rfc3339: "2025-10-14T10:30:00Z")?.millisecondsSinceEpoch == 1_760_437_800_000)
        #expect(Timestamp(rfc3339: "2025-10-14T10:30:00.123Z")?.millisecondsSinceEpoch == 1_760_437_800_123)
        #expect(Timestamp(rfc3339: "2025-10-14T10:30:00.1234567Z")?.millisecondsSinceEpoch == 1_760_437_800_123)
        #expect(Timestamp(rfc3339: "2025-10-14T12:30:00.5+02:00")?.millisecondsSinceEpoch == 1_760_437_800_500)
        #expect(Timestamp(rfc3339: "2025-10-14") == nil)
        #expect(Timestamp(rfc3339: "2025-13-14T10:30:00Z") == nil)
        #expect(Timestamp(rfc3339: "2025-10-14T10:30:00") == nil)
    }

    @Test func formattingAndParsingAgreeOverManyDates() {
        var value: Int64 = -86_400_000 * 800
        while value < 86_400_000 * 40_000 {
            let timestamp = Timestamp(millisecondsSinceEpoch: value)
            #expect(Timestamp(rfc3339: timestamp.rfc3339) == timestamp)
            value += 86_400_000 * 37 + 3_723_456
        }
    }
}

@Suite struct DecimalStrings {
    @Test(arguments: ["0", "1", "-1", "50000.00", "0.00001234", "-1.2", "007"])
    func acceptsPlainDecimals(_ text: String) {
        #expect(DecimalString.isValid(text))
    }

    @Test(arguments: ["", "-", "1.", ".5", "1e5", "1.2.3", "+1", " 1", "1,5", "NaN", "0x10"])
    func refusesEverythingElse(_ text: String) {
        #expect(!DecimalString.isValid(text))
    }

    @Test func formatsWithSignificantDigitsInPlainNotation() {
        #expect(DecimalString.format(90123.456, significantDigits: 8, minimumFractionDigits: 2) == "90123.456")
        #expect(DecimalString.format(90123.4, significantDigits: 5, minimumFractionDigits: 2) == "90123.40")
        #expect(DecimalString.format(0.0000123456, significantDigits: 4) == "0.00001235")
        #expect(DecimalString.format(0.33, significantDigits: 6) == "0.330000")
        #expect(DecimalString.format(-1.25, significantDigits: 2) == "-1.3")
        #expect(DecimalString.format(0, significantDigits: 4, minimumFractionDigits: 2) == "0.00")
        #expect(DecimalString.format(25_000_000_000, significantDigits: 6, minimumFractionDigits: 2) == "25000000000.00")
        for value in [1e-9, 3.3e-7, 0.5, 7.0, 12_345.678, 9.99e14] {
            let text = DecimalString.format(value, significantDigits: 6)
            #expect(DecimalString.isValid(text), "\(value) -> \(text)")
            #expect(abs(Double(text)! - value) <= value * 1e-5, "\(value) -> \(text)")
        }
    }
}

@Suite struct Symbols {
    @Test func normalizesToUpperCase() {
        #expect(Symbol.normalize("btc") == "BTC")
        #expect(Symbol.normalize("Shib2") == "SHIB2")
        #expect(Symbol.normalize("ABCDEFGHIJKLMNO") == "ABCDEFGHIJKLMNO")
    }

    @Test(arguments: ["", "BTC-USD", "ABCDEFGHIJKLMNOP", "b tc", "é", "BTC\n"])
    func refusesWhatThePatternRefuses(_ text: String) {
        #expect(Symbol.normalize(text) == nil)
    }
}

@Suite struct StreamIDs {
    @Test func parseCompareAndAdvance() {
        #expect(StreamID("1700000000000-3") == StreamID(milliseconds: 1_700_000_000_000, sequence: 3))
        #expect(StreamID("1-2")! < StreamID("1-10")!)
        #expect(StreamID("2-0")! > StreamID("1-99")!)
        #expect(StreamID("x-1") == nil)
        #expect(StreamID("1") == nil)
        #expect(StreamID("1-2-3") == nil)
        #expect(StreamID("+1-2") == nil)
        #expect(StreamID(milliseconds: 5, sequence: 1).next(atLeast: 5) == StreamID(milliseconds: 5, sequence: 2))
        #expect(StreamID(milliseconds: 5, sequence: 1).next(atLeast: 3) == StreamID(milliseconds: 5, sequence: 2))
        #expect(StreamID(milliseconds: 5, sequence: 1).next(atLeast: 9) == StreamID(milliseconds: 9, sequence: 0))
    }
}

@Suite struct Base64Encoding {
    @Test func roundTripsAndRejectsJunk() {
        for length in 0..<20 {
            let bytes = (0..<length).map { UInt8($0 * 13 & 0xFF) }
            #expect(Base64.decode(Base64.encode(bytes)) == bytes)
            #expect(Base64.decode(Base64.encodeURL(bytes)) == bytes)
            #expect(Base64.decodeURL(Base64.encodeURL(bytes)) == bytes)
        }
        #expect(Base64.decode("a$b") == nil)
    }

    /// RFC 7515: one encoding per byte string, so a signature cannot be re-spelled.
    @Test func urlDecodingIsStrict() {
        let bytes: [UInt8] = [0xFB, 0xFF, 0xBF, 0x01]  // encodes to characters 62 and 63
        let canonical = Base64.encodeURL(bytes)
        #expect(canonical == "-_-_AQ")
        #expect(Base64.decodeURL(canonical) == bytes)
        #expect(Base64.decodeURL("+/+/AQ") == nil)  // the standard alphabet
        #expect(Base64.decodeURL("-_-_AQ==") == nil)  // padding
        #expect(Base64.decodeURL("-_-_AR") == nil)  // stray bits in the last character
        #expect(Base64.decodeURL("-_-_A") == nil)  // a lone trailing character
        #expect(Base64.decodeURL("-_-_ AQ") == nil)
        #expect(Base64.decode("+/+/AQ==") == bytes)  // the lenient decoder, for keys and PEM, still takes them
    }
}
