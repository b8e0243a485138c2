import TickwireProtocol

/// The symbols this gateway serves, each with a small dense index. Subscriptions,
/// registries and the price window address symbols by index, so a connection's
/// symbol set is a bitset and a registry lookup is an array access.
public struct SymbolTable: Sendable {
    public let symbols: [String]
    let indexBySymbol: [String: Int]

    public init(_ symbols: [String]) {
        var unique: [String] = []
        for symbol in symbols where !unique.contains(symbol) { unique.append(symbol) }
        self.symbols = unique
        self.indexBySymbol = Dictionary(uniqueKeysWithValues: unique.enumerated().map { ($1, $0) })
    }

    public var count: Int { symbols.count }

    public func index(of symbol: String) -> Int? { indexBySymbol[symbol] }

    public subscript(index: Int) -> String { symbols[index] }
}

/// A set of symbol indices as a bitset: two words cover the default table, and an
/// empty set holds no heap memory.
public struct SymbolSet: Sendable, Equatable, Sequence {
    private var words: [UInt64] = []

    public init() {}

    public private(set) var count = 0

    public var isEmpty: Bool { count == 0 }

    public func contains(_ index: Int) -> Bool {
        let word = index >> 6
        return word < words.count && words[word] & (1 << UInt64(index & 63)) != 0
    }

    /// Returns true when the index was not yet in the set.
    @discardableResult
    public mutating func insert(_ index: Int) -> Bool {
        let word = index >> 6
        if word >= words.count { words.append(contentsOf: repeatElement(0, count: word - words.count + 1)) }
        let bit: UInt64 = 1 << UInt64(index & 63)
        guard words[word] & bit == 0 else { return false }
        words[word] |= bit
        count += 1
        return true
    }

    /// Returns true when the index was in the set.
    @discardableResult
    public mutating func remove(_ index: Int) -> Bool {
        guard contains(index) else { return false }
        words[index >> 6] &= ~(1 << UInt64(index & 63))
        count -= 1
        if count == 0 { words = [] }
        return true
    }

    public mutating func removeAll() {
        words = []
        count = 0
    }

    public func makeIterator() -> AnyIterator<Int> {
        var wordIndex = 0
        var current: UInt64 = words.first ?? 0
        let words = self.words
        return AnyIterator {
            while wordIndex < words.count {
                if current != 0 {
                    let bit = current.trailingZeroBitCount
                    current &= current - 1
                    return wordIndex << 6 | bit
                }
                wordIndex += 1
                current = wordIndex < words.count ? words[wordIndex] : 0
            }
            return nil
        }
    }
}
