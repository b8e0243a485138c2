/// A decimal number held as digits: `coefficient × 10^exponent`, with a sign.
///
/// Market data arrives as text (`"67187.3358936566"`, or a JSON number such as
/// `61696.68` whose text is kept), and is parsed here without a binary float ever
/// holding it. Sums, differences and products are exact while they fit in 38 digits;
/// beyond, and for quotients, results are rounded half away from zero to 38 (or the
/// requested number of) significant digits, the way a person rounds.
public struct DecimalNumber: Sendable, Hashable, Comparable, CustomStringConvertible {
    public private(set) var isNegative: Bool
    public private(set) var coefficient: UInt128
    public private(set) var exponent: Int

    /// The most significant digits a coefficient holds (10^38 < 2^128).
    static let maximumDigits = 38
    /// Beyond this, an exponent is not a price, a volume or a percentage.
    static let exponentLimit = 400

    public static let zero = DecimalNumber(coefficient: 0, exponent: 0)

    public init(coefficient: UInt128, exponent: Int, isNegative: Bool = false) {
        self.coefficient = coefficient
        self.exponent = exponent
        self.isNegative = isNegative && coefficient != 0
    }

    public init(_ integer: Int) {
        self.init(coefficient: UInt128(integer.magnitude), exponent: 0, isNegative: integer < 0)
    }

    public var isZero: Bool { coefficient == 0 }

    // MARK: Parsing

    /// Parses `-12.5`, `0.000012345679`, `1.5e-5`, `61696.68`: an optional sign, digits with an
    /// optional fraction, an optional exponent. Nil for anything else (empty, `NaN`, `1e99999`).
    /// Digits beyond 38 significant ones are rounded.
    public init?(_ text: some StringProtocol) {
        var bytes = text.utf8[...]
        var negative = false
        if let first = bytes.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
            negative = first == UInt8(ascii: "-")
            bytes = bytes.dropFirst()
        }
        var coefficient: UInt128 = 0
        var digits = 0
        var exponent = 0
        var sawDigit = false
        var sawPoint = false
        var roundUp = false
        var dropped = false
        while let byte = bytes.first {
            if byte == UInt8(ascii: ".") {
                guard !sawPoint else { return nil }
                sawPoint = true
            } else if let digit = Self.digitValue(byte) {
                sawDigit = true
                if coefficient == 0 && digit == 0 {
                    if sawPoint { exponent -= 1 }  // leading zeros carry no significance
                } else if digits < Self.maximumDigits {
                    coefficient = coefficient * 10 + UInt128(digit)
                    digits += 1
                    if sawPoint { exponent -= 1 }
                } else {
                    if !dropped { roundUp = digit >= 5 }
                    dropped = true
                    if !sawPoint { exponent += 1 }
                }
            } else {
                break
            }
            bytes = bytes.dropFirst()
        }
        guard sawDigit else { return nil }
        if let marker = bytes.first, marker == UInt8(ascii: "e") || marker == UInt8(ascii: "E") {
            bytes = bytes.dropFirst()
            var exponentNegative = false
            if let sign = bytes.first, sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+") {
                exponentNegative = sign == UInt8(ascii: "-")
                bytes = bytes.dropFirst()
            }
            var value = 0
            var sawExponentDigit = false
            while let byte = bytes.first, let digit = Self.digitValue(byte) {
                sawExponentDigit = true
                value = value * 10 + digit
                guard value <= Self.exponentLimit * 2 else { return nil }
                bytes = bytes.dropFirst()
            }
            guard sawExponentDigit else { return nil }
            exponent += exponentNegative ? -value : value
        }
        guard bytes.isEmpty, abs(exponent) <= Self.exponentLimit else { return nil }
        if roundUp { Self.incrementAndRenormalise(&coefficient, &exponent) }
        self.init(coefficient: coefficient, exponent: exponent, isNegative: negative)
    }

    static func digitValue(_ byte: UInt8) -> Int? {
        byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") ? Int(byte - UInt8(ascii: "0")) : nil
    }

    // MARK: Arithmetic

    public static func + (lhs: DecimalNumber, rhs: DecimalNumber) -> DecimalNumber {
        if lhs.isZero { return rhs }
        if rhs.isZero { return lhs }
        var (a, b, exponent) = aligned(lhs, rhs)
        if lhs.isNegative == rhs.isNegative {
            let (sum, overflow) = a.addingReportingOverflow(b)
            if !overflow { return DecimalNumber(coefficient: sum, exponent: exponent, isNegative: lhs.isNegative).normalisedDigits() }
            // One more digit than a coefficient holds: drop the last one of each, rounding.
            a = roundedDivision(a, by: 10)
            b = roundedDivision(b, by: 10)
            return DecimalNumber(coefficient: a + b, exponent: exponent + 1, isNegative: lhs.isNegative)
        }
        if a >= b { return DecimalNumber(coefficient: a - b, exponent: exponent, isNegative: lhs.isNegative) }
        return DecimalNumber(coefficient: b - a, exponent: exponent, isNegative: rhs.isNegative)
    }

    public static prefix func - (value: DecimalNumber) -> DecimalNumber {
        DecimalNumber(coefficient: value.coefficient, exponent: value.exponent, isNegative: !value.isNegative)
    }

    public static func - (lhs: DecimalNumber, rhs: DecimalNumber) -> DecimalNumber {
        lhs + (-rhs)
    }

    public static func * (lhs: DecimalNumber, rhs: DecimalNumber) -> DecimalNumber {
        // Two factors of 19 digits at most multiply within a coefficient's 38.
        let a = lhs.rounded(significantDigits: 19)
        let b = rhs.rounded(significantDigits: 19)
        return DecimalNumber(
            coefficient: a.coefficient * b.coefficient, exponent: a.exponent + b.exponent,
            isNegative: lhs.isNegative != rhs.isNegative)
    }

    /// `lhs / rhs` to 19 significant digits; nil for a zero divisor.
    public static func / (lhs: DecimalNumber, rhs: DecimalNumber) -> DecimalNumber? {
        guard !rhs.isZero else { return nil }
        if lhs.isZero { return .zero }
        let a = lhs.rounded(significantDigits: 19)
        let b = rhs.rounded(significantDigits: 19)
        // a × 10^19 has at most 38 digits; the quotient then has 19 or more significant digits.
        let scaled = a.coefficient * power10(19)
        return DecimalNumber(
            coefficient: roundedDivision(scaled, by: b.coefficient), exponent: a.exponent - 19 - b.exponent,
            isNegative: lhs.isNegative != rhs.isNegative
        ).rounded(significantDigits: 19)
    }

    public var magnitude: DecimalNumber { DecimalNumber(coefficient: coefficient, exponent: exponent) }

    public static func < (lhs: DecimalNumber, rhs: DecimalNumber) -> Bool {
        let difference = lhs - rhs
        return difference.isNegative && !difference.isZero
    }

    public static func == (lhs: DecimalNumber, rhs: DecimalNumber) -> Bool {
        (lhs - rhs).isZero
    }

    public func hash(into hasher: inout Hasher) {
        let canonical = trimmingTrailingZeros()
        hasher.combine(canonical.isNegative)
        hasher.combine(canonical.coefficient)
        hasher.combine(canonical.isZero ? 0 : canonical.exponent)
    }

    // MARK: Rounding and text

    /// The number of digits of the coefficient (1 for zero).
    var digitCount: Int {
        var count = 1
        var value = coefficient
        while value >= 10 {
            value /= 10
            count += 1
        }
        return count
    }

    /// Rounded half away from zero to at most `significantDigits` significant digits.
    public func rounded(significantDigits: Int) -> DecimalNumber {
        let excess = digitCount - max(1, significantDigits)
        guard excess > 0 else { return self }
        var result = self
        result.coefficient = Self.roundedDivision(coefficient, by: Self.power10(excess))
        result.exponent += excess
        return result.normalisedDigits()
    }

    /// Rounded half away from zero to at most `fractionDigits` digits after the point.
    public func rounded(fractionDigits: Int) -> DecimalNumber {
        let excess = -exponent - fractionDigits
        guard excess > 0 else { return self }
        guard excess <= Self.maximumDigits else { return DecimalNumber(coefficient: 0, exponent: -fractionDigits) }
        var result = self
        result.coefficient = Self.roundedDivision(coefficient, by: Self.power10(excess))
        result.exponent += excess
        result.isNegative = result.isNegative && result.coefficient != 0
        return result
    }

    /// Plain notation (never an exponent): at most `significantDigits` significant digits, but never
    /// fewer than `minimumFractionDigits` digits after the point, and no other trailing zeros.
    /// `"67187.3358936566"` with 8 and 2 is `"67187.336"`; `"0.0000123456789"` is `"0.000012345679"`.
    public func formatted(significantDigits: Int, minimumFractionDigits: Int = 0) -> String {
        var value = rounded(significantDigits: significantDigits).trimmingTrailingZeros()
        if -value.exponent < minimumFractionDigits {
            value = value.padded(toFractionDigits: minimumFractionDigits)
        }
        return value.plain
    }

    /// Plain notation with exactly `fractionDigits` digits after the point (a percentage: `"3.64"`).
    public func formatted(fractionDigits: Int) -> String {
        rounded(fractionDigits: fractionDigits).padded(toFractionDigits: fractionDigits).plain
    }

    public var description: String { plain }

    /// The digits in plain notation, as they are (trailing zeros included).
    public var plain: String {
        var digits = String(coefficient)
        var text = ""
        if exponent >= 0 {
            if coefficient != 0 { digits += String(repeating: "0", count: exponent) }
            text = digits
        } else {
            let fraction = -exponent
            if digits.count <= fraction { digits = String(repeating: "0", count: fraction - digits.count + 1) + digits }
            let split = digits.index(digits.endIndex, offsetBy: -fraction)
            text = digits[..<split] + "." + digits[split...]
        }
        return isNegative ? "-" + text : text
    }

    func trimmingTrailingZeros() -> DecimalNumber {
        guard coefficient != 0 else { return DecimalNumber(coefficient: 0, exponent: min(exponent, 0)) }
        var result = self
        while result.coefficient % 10 == 0 {
            result.coefficient /= 10
            result.exponent += 1
        }
        return result
    }

    func padded(toFractionDigits fractionDigits: Int) -> DecimalNumber {
        let missing = fractionDigits + exponent
        guard missing > 0, missing <= Self.maximumDigits - digitCount else { return self }
        var result = self
        result.coefficient *= Self.power10(missing)
        result.exponent -= missing
        return result
    }

    /// A coefficient of 39 digits (after a rounding carry) loses its last digit.
    func normalisedDigits() -> DecimalNumber {
        var result = self
        if result.coefficient >= Self.power10(Self.maximumDigits) {
            result.coefficient = Self.roundedDivision(result.coefficient, by: 10)
            result.exponent += 1
        }
        return result
    }

    // MARK: Helpers

    static func power10(_ exponent: Int) -> UInt128 {
        var result: UInt128 = 1
        for _ in 0..<exponent { result *= 10 }
        return result
    }

    /// `value / divisor`, rounded half away from zero.
    static func roundedDivision(_ value: UInt128, by divisor: UInt128) -> UInt128 {
        let (quotient, remainder) = value.quotientAndRemainder(dividingBy: divisor)
        return remainder >= divisor - remainder ? quotient + 1 : quotient
    }

    static func incrementAndRenormalise(_ coefficient: inout UInt128, _ exponent: inout Int) {
        coefficient += 1
        if coefficient >= power10(maximumDigits) {
            coefficient /= 10
            exponent += 1
        }
    }

    /// Both coefficients at one exponent: the smaller one, unless the other would not fit, in which
    /// case the operand with the smaller exponent is rounded to the larger one's precision first.
    static func aligned(_ lhs: DecimalNumber, _ rhs: DecimalNumber) -> (UInt128, UInt128, Int) {
        var (high, low) = lhs.exponent >= rhs.exponent ? (lhs, rhs) : (rhs, lhs)
        let difference = high.exponent - low.exponent
        // How far `high` can be scaled up (keeping one spare digit for a carry).
        let room = max(0, maximumDigits - 1 - high.digitCount)
        if difference > room {
            let shed = difference - room
            low.coefficient = shed > maximumDigits ? 0 : roundedDivision(low.coefficient, by: power10(shed))
            low.exponent += shed
        }
        high.coefficient *= power10(high.exponent - low.exponent)
        high.exponent = low.exponent
        return lhs.exponent >= rhs.exponent
            ? (high.coefficient, low.coefficient, low.exponent) : (low.coefficient, high.coefficient, low.exponent)
    }
}
