/// Redis Cluster's key space: 16384 slots. A key (or shard channel) belongs to the slot
/// CRC16-XModem(key) mod 16384, where only the hash tag counts when there is one: the part
/// between the first `{` and the next `}`, if not empty. Keys with the same tag share a slot,
/// which is what lets one script touch a user's stream and channel together.
public enum RedisClusterSlot {
    public static let count = 16384

    public static func of(_ key: String) -> Int {
        var key = key
        return key.withUTF8 { of(bytes: $0) }
    }

    public static func of(bytes key: UnsafeBufferPointer<UInt8>) -> Int {
        var hashed = key[...]
        if let open = key.firstIndex(of: UInt8(ascii: "{")),
            let close = key[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1
        {
            hashed = key[(open + 1)..<close]
        }
        var crc: UInt16 = 0
        for byte in hashed { crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)] }
        return Int(crc) & (count - 1)
    }

    /// CRC16-CCITT (XModem: polynomial 0x1021, initial value 0), a byte at a time.
    private static let table: [UInt16] = (0..<256).map { byte in
        var crc = UInt16(byte) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }
}
