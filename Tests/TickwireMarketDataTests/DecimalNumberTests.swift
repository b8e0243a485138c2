import Testing

@testable import TickwireMarketData

/// Prices are the source's digits: parsed, combined and rounded as decimals, never as binary floats.
@Suite struct Decimals {
    func d(_ text: String) -> DecimalNumber { DecimalNumber(text)! }

    @Test func formatsPricesWithEightSignificantDigitsAndAtLeastTwoDecimals() {
        #expect(d("67187.3358936566").formatted(significantDigits: 8, minimumFractionDigits: 2) == "67187.336")
        #expect(d("0.0000123456789").formatted(significantDigits: 8, minimumFractionDigits: 2) == "0.000012345679")
        #expect(d("90000").formatted(significantDigits: 8, minimumFractionDigits: 2) == "90000.00")
        #expect(d("1285.2").formatted(significantDigits: 8, minimumFractionDigits: 2) == "1285.20")
        #expect(d("123456789.987").formatted(significantDigits: 8, minimumFractionDigits: 2) == "123456790.00")
        #expect(d("1.5e-5").formatted(significantDigits: 8, minimumFractionDigits: 2) == "0.000015")
    }

    @Test func keepsDigitsAFloatCannotHold() {
        // 2^53 + 1 has no Double; 0.1 + 0.2 is 0.30000000000000004 in binary floating point.
        #expect(d("9007199254740993").plain == "9007199254740993")
        #expect((d("0.1") + d("0.2")) == d("0.3"))
        #expect((d("0.1") + d("0.2")).formatted(significantDigits: 8) == "0.3")
        #expect(d("61696.68").plain == "61696.68")
    }

    @Test func computesChangesAndVolumesExactly() {
        // Coinbase's sample: price 1285.22, open 1310.79, volume 245532.79269678 (base units).
        let change = ((d("1285.22") - d("1310.79")) / d("1310.79"))! * DecimalNumber(100)
        #expect(change.formatted(fractionDigits: 2) == "-1.95")
        // Checked against Python's decimal module.
        #expect((d("245532.79269678") * d("1285.22")).plain == "315563655.8297555916")
        #expect((d("1") / d("3"))!.formatted(significantDigits: 8) == "0.33333333")
        #expect(d("1") / .zero == nil)
    }

    @Test func roundsHalfAwayFromZero() {
        #expect(d("2.345").formatted(fractionDigits: 2) == "2.35")
        #expect(d("-2.345").formatted(fractionDigits: 2) == "-2.35")
        #expect(d("-0.001").formatted(fractionDigits: 2) == "0.00", "no negative zero")
        #expect(d("3.63727894677354").formatted(fractionDigits: 2) == "3.64")
        #expect(d("99.999").formatted(fractionDigits: 2) == "100.00")
    }

    @Test func comparesByValue() {
        #expect(d("1.50") == d("1.5"))
        #expect(d("0.000012") < d("0.00012"))
        #expect(d("-3") < d("2"))
        #expect([d("3"), d("1.5"), d("2")].sorted() == [d("1.5"), d("2"), d("3")])
        #expect(Set([d("1.50"), d("1.5")]).count == 1)
    }

    @Test func refusesWhatIsNotANumber() {
        for text in ["", "-", ".", "abc", "1.2.3", "NaN", "Infinity", "1e99999", "1e", "12a", "0x10", " 1"] {
            #expect(DecimalNumber(text) == nil, "\(text)")
        }
        // More digits than a coefficient holds are rounded, not refused.
        let long = String(repeating: "9", count: 45)
        #expect(DecimalNumber(long)?.formatted(significantDigits: 3) == "1" + String(repeating: "0", count: 45))
    }
}

@Suite struct SymbolMaps {
    @Test func readsTheTableAndItsGaps() throws {
        let map = try SymbolMap(csv: "symbol,coingecko,coinbase\nbtc,bitcoin,BTC-USD\nTRX,tron,-\n# a comment\n")
        #expect(map.name(of: "BTC", in: .coingecko) == "bitcoin")
        #expect(map.name(of: "TRX", in: .coinbase) == nil)
        #expect(map.name(of: "BTC", in: .kraken) == nil)
    }

    @Test func namesWhatIsWrong() {
        #expect(throws: SymbolMap.ParseError(description: "line 2: 2 cells for 3 columns")) {
            try SymbolMap(csv: "symbol,coingecko,coinbase\nBTC,bitcoin")
        }
        #expect(throws: SymbolMap.ParseError.self) { try SymbolMap(csv: "coin,coingecko\nBTC,bitcoin") }
        #expect(throws: SymbolMap.ParseError.self) { try SymbolMap(csv: "symbol,bloomberg\nBTC,XBT") }
        #expect(throws: SymbolMap.ParseError.self) { try SymbolMap(csv: "symbol,coingecko\nBT-C,x") }
    }

    @Test func aFileReplacesTheBuiltInRowsItNames() throws {
        let merged = SymbolMap.builtIn.merging(try SymbolMap(csv: "symbol,kraken\nBTC,XBT/USD\nFOO,FOO/USD"))
        #expect(merged.name(of: "BTC", in: .kraken) == "XBT/USD")
        #expect(merged.name(of: "BTC", in: .coinbase) == nil, "the whole row is replaced")
        #expect(merged.name(of: "FOO", in: .kraken) == "FOO/USD")
        #expect(merged.name(of: "ETH", in: .coinbase) == "ETH-USD")
    }
}
