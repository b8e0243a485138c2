// Differential: Tickwire's JSON parser against Foundation's `JSONSerialization` on the same bytes.
// Properties: both accept or both refuse, and what both accept has the same value. Where the two
// differ by design, the difference is named below and in docs/RELIABILITY.md.
import FuzzSupport
import Foundation
import TickwireProtocol

/// Foundation nests 512 deep; Tickwire refuses deeper than this in every use.
let maxDepth = 64

/// Differences Foundation and RFC 8259 allow: the input is skipped, not judged.
func isOutsideTheComparison(_ bytes: [UInt8]) -> Bool {
    // Foundation guesses UTF-16 and UTF-32 from zero bytes and byte-order marks; Tickwire reads
    // UTF-8 only (RFC 8259 section 8.1: "MUST be encoded using UTF-8").
    if bytes.prefix(4).contains(0) { return true }
    if bytes.starts(with: [0xEF, 0xBB, 0xBF]) || bytes.starts(with: [0xFE, 0xFF]) || bytes.starts(with: [0xFF, 0xFE]) {
        return true
    }
    return false
}

/// The deepest nesting of the text, outside strings.
func nesting(_ bytes: [UInt8]) -> Int {
    var depth = 0, deepest = 0, inString = false, escaped = false
    for byte in bytes {
        if inString {
            if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
        } else if byte == UInt8(ascii: "\"") {
            inString = true
        } else if byte == UInt8(ascii: "[") || byte == UInt8(ascii: "{") {
            depth += 1
            deepest = max(deepest, depth)
        } else if byte == UInt8(ascii: "]") || byte == UInt8(ascii: "}") {
            depth -= 1
        }
    }
    return deepest
}

/// Whether a number of ours has no finite Double: Foundation refuses such text (`1e400`), Tickwire
/// keeps the digits and leaves the range to the field that reads them.
func hasUnrepresentableNumber(_ value: JSONValue) -> Bool {
    switch value {
    case .number(let text): return !(Double(text)?.isFinite ?? false)
    case .array(let elements): return elements.contains(where: hasUnrepresentableNumber)
    case .object(let object): return object.members.contains { hasUnrepresentableNumber($0.value) }
    default: return false
    }
}

/// The text without commas that close an array or object (`[1,]`): Foundation accepts them, RFC 8259
/// does not.
func withoutTrailingCommas(_ bytes: [UInt8]) -> [UInt8] {
    var result: [UInt8] = [], inString = false, escaped = false
    for byte in bytes {
        if inString {
            if escaped { escaped = false } else if byte == UInt8(ascii: "\\") { escaped = true } else if byte == UInt8(ascii: "\"") { inString = false }
        } else if byte == UInt8(ascii: "\"") {
            inString = true
        } else if byte == UInt8(ascii: "]") || byte == UInt8(ascii: "}") {
            while let last = result.last, [0x20, 0x09, 0x0A, 0x0D].contains(last) { result.removeLast() }
            if result.last == UInt8(ascii: ",") { result.removeLast() }
        }
        result.append(byte)
    }
    return result
}

/// Whether `ours` and Foundation's `theirs` are the same JSON value.
func same(_ ours: JSONValue, _ theirs: Any) -> Bool {
    switch ours {
    case .null: return theirs is NSNull
    case .bool(let flag):
        guard let number = theirs as? NSNumber else { return false }
        return number.boolValue == flag
    case .number(let text):
        guard let number = theirs as? NSNumber, let double = Double(text) else { return false }
        // Integers that fit 64 bits must agree exactly; the rest as doubles, which is all
        // Foundation keeps of them.
        if let integer = Int64(text) { return number.int64Value == integer }
        // Foundation on Linux reads numbers through `Decimal`, and does not round them to the
        // nearest Double (off by a few ulps); Tickwire keeps the digits. They agree to 12 digits.
        let theirs = number.doubleValue
        return abs(theirs - double) <= 1e-12 * max(abs(theirs), abs(double))
    case .string(let string): return (theirs as? String) == string
    case .array(let elements):
        guard let array = theirs as? [Any], array.count == elements.count else { return false }
        return zip(elements, array).allSatisfy { same($0, $1) }
    case .object(let object):
        guard let dictionary = theirs as? [String: Any] else { return false }
        let keys = object.members.map(\.key)
        // Duplicate keys: RFC 8259 leaves their meaning open; compare only the key sets.
        if Set(keys).count != keys.count { return Set(keys) == Set(dictionary.keys) }
        guard dictionary.count == keys.count else { return false }
        return object.members.allSatisfy { member in dictionary[member.key].map { same(member.value, $0) } ?? false }
    }
}

runFuzzer { start, count in
    guard let start else { return 0 }
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    guard !isOutsideTheComparison(bytes), nesting(bytes) <= maxDepth else { return 0 }
    let ours = Result { () throws(JSONParseError) in try JSONParser.parse(bytes, maxDepth: maxDepth) }
    let theirs = Result { try JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]) }
    switch (ours, theirs) {
    case (.success(let value), .success(let object)):
        fuzzCheck(same(value, object), "values differ: ours \(value), Foundation's \(object), for \(bytes)")
    case (.failure, .failure):
        break
    case (.success(let value), .failure(let error)):
        fuzzCheck(hasUnrepresentableNumber(value), "only Tickwire accepts \(bytes) (Foundation: \(error))")
    case (.failure(let error), .success(let object)):
        let strict = withoutTrailingCommas(bytes)
        if strict != bytes, let value = try? JSONParser.parse(strict, maxDepth: maxDepth) {
            fuzzCheck(same(value, object), "values differ: ours \(value), Foundation's \(object), for \(strict)")
            return 0
        }
        fuzzFailure("only Foundation accepts \(bytes) as \(object) (Tickwire: \(error))")
    }
    return 0
}
