// Differential: `DecimalNumber` (the market-data decimal: 38 digits in a UInt128) against
// `ReferenceDecimal` (any number of digits, slow and plain). The input is two numbers separated by
// a space. Properties: a number is parsed exactly (or rounded half away from zero to 38 significant
// digits); `+`, `-` and `*` are exact wherever the operands allow (the documented 38 digits, and 19
// per factor for `*`); formatting prints the value in plain notation.
import FuzzSupport
import TickwireMarketData

/// The decimal exponent range the reference and `DecimalNumber` both take. (A zero written with a
/// larger exponent, `0e401`, may be refused: no source sends one.)
let exponentRange = -300...300

func digitCount(_ value: UInt128) -> Int { String(value).count }

func check(_ ours: DecimalNumber, equals reference: ReferenceDecimal, _ what: @autoclosure () -> String) {
    if reference.isZero {
        fuzzCheck(ours.isZero, "\(what()): ours \(ours.plain), the reference 0")
    } else {
        let printed = ours.formatted(significantDigits: 38)
        fuzzCheck(printed == reference.plain, "\(what()): ours \(printed), the reference \(reference.plain)")
    }
}

runFuzzer { start, count in
    guard let start else { return 0 }
    let text = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    let parts = text.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: false)
    var numbers: [(DecimalNumber, ReferenceDecimal)] = []
    for part in parts {
        let ours = DecimalNumber(part)
        let reference = ReferenceDecimal(part)
        if let ours {
            guard let reference else { fuzzFailure("ours accepts \(part.debugDescription), which is not a decimal") }
            let parsed = reference.rounded(significantDigits: 38)
            check(ours, equals: parsed, "parsing \(part.debugDescription)")
            // The arithmetic starts from the parsed value: a number of more than 38 digits is
            // rounded at parse, then a factor to 19 digits (twice, as documented).
            numbers.append((ours, parsed))
        } else if let reference, !reference.isZero, exponentRange.contains(reference.exponent),
            exponentRange.contains(reference.exponent + reference.digits.count)
        {
            fuzzFailure("ours refuses \(part.debugDescription), a decimal within range")
        }
    }
    guard numbers.count == 2 else { return 0 }
    let (a, referenceA) = numbers[0], (b, referenceB) = numbers[1]
    // Exact when both fit one coefficient at the smaller exponent, with a digit to spare for a carry.
    let top = max(a.exponent + digitCount(a.coefficient), b.exponent + digitCount(b.coefficient))
    if top - min(a.exponent, b.exponent) <= 37 {
        check(a + b, equals: referenceA + referenceB, "\(a.plain) + \(b.plain)")
        check(a - b, equals: referenceA + -referenceB, "\(a.plain) - \(b.plain)")
    }
    check(a * b, equals: (referenceA.rounded(significantDigits: 19) * referenceB.rounded(significantDigits: 19)),
          "\(a.plain) * \(b.plain)")
    return 0
}
