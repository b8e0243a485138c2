/// A slow, obviously right decimal: any number of digits, a sign and a power of ten. The reference
/// `DecimalNumber` (38 digits in a `UInt128`) is checked against.
struct ReferenceDecimal: Equatable {
    var isNegative = false
    /// Most significant first; no leading or trailing zeros once normalised. Empty is zero.
    var digits: [UInt8] = []
    var exponent = 0

    /// The grammar `DecimalNumber` documents: `[+-]? digits [. digits]? ([eE] [+-]? digits)?`, with
    /// digits on at least one side of the point.
    init?(_ text: Substring) {
        var bytes = Array(text.utf8)[...]
        if let sign = bytes.first, sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+") {
            isNegative = sign == UInt8(ascii: "-")
            bytes = bytes.dropFirst()
        }
        var sawDigit = false, sawPoint = false
        while let byte = bytes.first {
            if byte == UInt8(ascii: ".") {
                if sawPoint { return nil }
                sawPoint = true
            } else if (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) {
                sawDigit = true
                digits.append(byte - UInt8(ascii: "0"))
                if sawPoint { exponent -= 1 }
            } else {
                break
            }
            bytes = bytes.dropFirst()
        }
        guard sawDigit else { return nil }
        if let marker = bytes.first, marker == UInt8(ascii: "e") || marker == UInt8(ascii: "E") {
            bytes = bytes.dropFirst()
            var negative = false
            if let sign = bytes.first, sign == UInt8(ascii: "-") || sign == UInt8(ascii: "+") {
                negative = sign == UInt8(ascii: "-")
                bytes = bytes.dropFirst()
            }
            guard !bytes.isEmpty, bytes.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) })
            else { return nil }
            var value = 0
            for byte in bytes {
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
                // DecimalNumber documents exponents beyond 800 as out of range, whatever the digits.
                if value > 800 { return nil }
            }
            exponent += negative ? -value : value
            bytes = []
        }
        guard bytes.isEmpty else { return nil }
        normalise()
    }

    init(isNegative: Bool, digits: [UInt8], exponent: Int) {
        self.isNegative = isNegative
        self.digits = digits
        self.exponent = exponent
        normalise()
    }

    var isZero: Bool { digits.isEmpty }

    mutating func normalise() {
        while digits.first == 0 { digits.removeFirst() }
        while digits.last == 0 {
            digits.removeLast()
            exponent += 1
        }
        if digits.isEmpty {
            isNegative = false
            exponent = 0
        }
    }

    /// Rounded half away from zero to `count` significant digits.
    func rounded(significantDigits count: Int) -> ReferenceDecimal {
        guard digits.count > count else { return self }
        var kept = Array(digits.prefix(count))
        let shed = digits.count - count
        if digits[count] >= 5 {
            var index = kept.count - 1
            while index >= 0 {
                if kept[index] == 9 {
                    kept[index] = 0
                    index -= 1
                } else {
                    kept[index] += 1
                    break
                }
            }
            if index < 0 { kept.insert(1, at: 0) }
        }
        return ReferenceDecimal(isNegative: isNegative, digits: kept, exponent: exponent + shed)
    }

    /// Plain notation, no exponent, no trailing zeros.
    var plain: String {
        guard !isZero else { return "0" }
        var text = digits.map { String($0) }.joined()
        if exponent >= 0 {
            text += String(repeating: "0", count: exponent)
        } else {
            let fraction = -exponent
            if text.count <= fraction { text = String(repeating: "0", count: fraction - text.count + 1) + text }
            text.insert(".", at: text.index(text.endIndex, offsetBy: -fraction))
        }
        return isNegative ? "-" + text : text
    }

    /// The magnitude's digits at `exponent`, least significant first.
    private func magnitude(at target: Int) -> [Int] {
        (digits + [UInt8](repeating: 0, count: exponent - target)).reversed().map(Int.init)
    }

    static func + (lhs: ReferenceDecimal, rhs: ReferenceDecimal) -> ReferenceDecimal {
        if lhs.isZero { return rhs }
        if rhs.isZero { return lhs }
        let exponent = min(lhs.exponent, rhs.exponent)
        let a = lhs.magnitude(at: exponent), b = rhs.magnitude(at: exponent)
        if lhs.isNegative == rhs.isNegative {
            var sum = [Int](), carry = 0
            for index in 0..<max(a.count, b.count) {
                let total = (index < a.count ? a[index] : 0) + (index < b.count ? b[index] : 0) + carry
                sum.append(total % 10)
                carry = total / 10
            }
            if carry > 0 { sum.append(carry) }
            return ReferenceDecimal(isNegative: lhs.isNegative, digits: sum.reversed().map(UInt8.init), exponent: exponent)
        }
        let (larger, smaller, negative) = compare(a, b) >= 0 ? (a, b, lhs.isNegative) : (b, a, rhs.isNegative)
        var difference = [Int](), borrow = 0
        for index in 0..<larger.count {
            var value = larger[index] - (index < smaller.count ? smaller[index] : 0) - borrow
            borrow = value < 0 ? 1 : 0
            if value < 0 { value += 10 }
            difference.append(value)
        }
        return ReferenceDecimal(isNegative: negative, digits: difference.reversed().map(UInt8.init), exponent: exponent)
    }

    static prefix func - (value: ReferenceDecimal) -> ReferenceDecimal {
        ReferenceDecimal(isNegative: !value.isNegative, digits: value.digits, exponent: value.exponent)
    }

    static func * (lhs: ReferenceDecimal, rhs: ReferenceDecimal) -> ReferenceDecimal {
        let a = lhs.digits.reversed().map(Int.init), b = rhs.digits.reversed().map(Int.init)
        var product = [Int](repeating: 0, count: a.count + b.count + 1)
        for (i, x) in a.enumerated() {
            for (j, y) in b.enumerated() { product[i + j] += x * y }
        }
        for index in 0..<(product.count - 1) {
            product[index + 1] += product[index] / 10
            product[index] %= 10
        }
        return ReferenceDecimal(
            isNegative: lhs.isNegative != rhs.isNegative, digits: product.reversed().map(UInt8.init),
            exponent: lhs.exponent + rhs.exponent)
    }

    /// Compares two magnitudes given least significant digit first.
    private static func compare(_ a: [Int], _ b: [Int]) -> Int {
        let length = max(a.count, b.count)
        for index in stride(from: length - 1, through: 0, by: -1) {
            let x = index < a.count ? a[index] : 0, y = index < b.count ? b[index] : 0
            if x != y { return x < y ? -1 : 1 }
        }
        return 0
    }
}
