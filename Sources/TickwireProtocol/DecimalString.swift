/// Money and prices travel as decimal strings in plain notation (`"0.00001234"`,
/// `"50000.00"`), never as JSON numbers, so no client rounds them through a float.
public enum DecimalString {
    /// Whether `text` is a plain-notation decimal: an optional minus, digits, and an optional fraction.
    public static func isValid(_ text: String) -> Bool {
        var utf8 = text.utf8[...]
        if utf8.first == UInt8(ascii: "-") { utf8 = utf8.dropFirst() }
        guard let first = utf8.first, isDigit(first) else { return false }
        var sawPoint = false
        var digitsAfterPoint = 0
        for byte in utf8 {
            if byte == UInt8(ascii: ".") {
                guard !sawPoint else { return false }
                sawPoint = true
            } else if isDigit(byte) {
                if sawPoint { digitsAfterPoint += 1 }
            } else {
                return false
            }
        }
        return !sawPoint || digitsAfterPoint > 0
    }

    private static func isDigit(_ byte: UInt8) -> Bool {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
    }

    /// Formats `value` in plain notation with `significantDigits` significant digits,
    /// but never fewer than `minimumFractionDigits` digits after the point.
    ///
    /// `format(90123.456, significantDigits: 8, minimumFractionDigits: 2)` is `"90123.456"`,
    /// `format(0.0000123456, significantDigits: 4)` is `"0.00001235"`.
    public static func format(_ value: Double, significantDigits: Int, minimumFractionDigits: Int = 0) -> String {
        guard value.isFinite else { return "0" }
        if value == 0 {
            return minimumFractionDigits > 0 ? "0." + String(repeating: "0", count: minimumFractionDigits) : "0"
        }
        let magnitude = abs(value)
        // Position of the first significant digit: 10^exponent <= magnitude < 10^(exponent+1).
        var exponent = Int(magnitudeExponent(magnitude))
        var fractionDigits = max(minimumFractionDigits, significantDigits - 1 - exponent)
        fractionDigits = min(max(fractionDigits, 0), 18)
        var scaled = (magnitude * power10(fractionDigits)).rounded()
        // Very large values: fall back to integer digits (no fraction can be represented anyway).
        if scaled >= 9.2e18 {
            fractionDigits = 0
            scaled = magnitude.rounded()
            exponent = 0
        }
        guard scaled < 9.2e18 else { return value < 0 ? "-" + String(Int64.max) : String(Int64.max) }
        var digits = String(UInt64(scaled))
        if digits.count <= fractionDigits {
            digits = String(repeating: "0", count: fractionDigits - digits.count + 1) + digits
        }
        var result = value < 0 ? "-" : ""
        if fractionDigits == 0 {
            result += digits
        } else {
            let split = digits.index(digits.endIndex, offsetBy: -fractionDigits)
            result += digits[..<split] + "." + digits[split...]
        }
        return result == "-0" ? "0" : result
    }

    private static func magnitudeExponent(_ magnitude: Double) -> Double {
        var exponent = (log10Approximation(magnitude)).rounded(.down)
        if power10(Int(exponent)) > magnitude { exponent -= 1 }
        if power10(Int(exponent) + 1) <= magnitude { exponent += 1 }
        return exponent
    }

    private static func log10Approximation(_ value: Double) -> Double {
        // log2 from the exponent bits, good to within one decade; corrected by the caller.
        Double(value.exponent) * 0.301_029_995_663_981_2
    }

    private static func power10(_ exponent: Int) -> Double {
        var result = 1.0
        if exponent >= 0 {
            for _ in 0..<exponent { result *= 10 }
        } else {
            for _ in 0..<(-exponent) { result /= 10 }
        }
        return result
    }
}
