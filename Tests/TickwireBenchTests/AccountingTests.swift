import Testing

@testable import TickwireBench

@Suite struct SequenceAccounting {
    func replay(_ sequences: [UInt32]) -> (lost: Int, duplicated: Int) {
        var window = SequenceWindow(stream: 0)
        var lost = 0
        var duplicated = 0
        for sequence in sequences {
            let (delta, duplicate) = window.record(sequence)
            lost += delta
            if duplicate { duplicated += 1 }
        }
        return (lost, duplicated)
    }

    @Test func inOrderIsClean() {
        #expect(replay(Array(1...1000)) == (0, 0))
    }

    @Test func reorderingIsNeitherLossNorDuplication() {
        var sequences = Array(UInt32(1)...600)
        for start in stride(from: 0, to: 590, by: 10) { sequences.swapAt(start, start + 9) }
        sequences.swapAt(100, 300)
        sequences.swapAt(10, 590)  // far apart: still only late
        #expect(replay(sequences) == (0, 0))
    }

    @Test func gapsAndRepeatsAreCounted() {
        #expect(replay([1, 2, 5, 5, 6]) == (2, 1))
        // However late a message turns up, it is a late message, not a repeat.
        #expect(replay([1, 1000, 2]) == (997, 0))
        #expect(replay([1, 1000, 2, 2, 1000]) == (997, 2))
        #expect(replay([1, 200, 2]) == (197, 0))
        #expect(replay([3, 1, 2]) == (0, 0))
    }

    @Test func stampsAreFoundWithoutParsingJSON() {
        let frame = Array(#"{"event":"price_update","data":{"symbol":"B0","bench":"7:42:1732900000123456"},"timestamp":"x"}"#.utf8)
        let stamp = frame.withUnsafeBytes { BenchStamp.find(in: $0) }
        #expect(stamp?.stream == 7 && stamp?.sequence == 42 && stamp?.sentMicroseconds == 1_732_900_000_123_456)
        let none = Array(#"{"event":"pong","data":{}}"#.utf8)
        #expect(none.withUnsafeBytes { BenchStamp.find(in: $0) } == nil)
    }
}
