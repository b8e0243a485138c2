#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A finding: libFuzzer saves the input that led here and reports it as a crash.
public func fuzzFailure(_ message: String, file: StaticString = #file, line: UInt = #line) -> Never {
    fatalError("fuzz property violated: \(message)", file: file, line: line)
}

/// Checks a property every input must keep.
public func fuzzCheck(_ condition: Bool, _ message: @autoclosure () -> String, file: StaticString = #file, line: UInt = #line) {
    if !condition { fuzzFailure(message(), file: file, line: line) }
}

/// Splits `count` bytes into read sizes chosen by `seed`, the way a socket may deliver them:
/// deterministic for one input, so a crash reproduces.
public struct ReadSplitter: Sequence, IteratorProtocol {
    private var state: UInt64
    private var remaining: Int

    public init(seed: UInt8, count: Int) {
        state = 0x9E37_79B9_7F4A_7C15 &* (UInt64(seed) &+ 1)
        remaining = count
    }

    public mutating func next() -> Int? {
        guard remaining > 0 else { return nil }
        // xorshift64*: read sizes of 1 to 16 bytes mostly, now and then a large one.
        state ^= state >> 12
        state ^= state << 25
        state ^= state >> 27
        let random = state &* 0x2545_F491_4F6C_DD1D
        let size = random % 8 == 0 ? Int(random >> 40) % 4096 + 1 : Int(random >> 40) % 16 + 1
        let take = Swift.min(size, remaining)
        remaining -= take
        return take
    }
}

/// libFuzzer's entry for programs that have their own `main` (SwiftPM gives every executable one).
@_silgen_name("LLVMFuzzerRunDriver")
private func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

/// Hands the process to libFuzzer, which calls `body` with each input (and reads libFuzzer's flags
/// and corpus folders from the command line).
public func runFuzzer(_ body: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Never {
    var argc = CommandLine.argc
    var argv = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, body))
}

/// libFuzzer's own `main` comes with `-sanitize=fuzzer` and calls this symbol; SwiftPM's `main`
/// (which calls `runFuzzer`) is the one the program starts from, so this only satisfies the linker.
@_cdecl("LLVMFuzzerTestOneInput")
public func unusedTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzzFailure("libFuzzer's main ran instead of the target's: link with --defsym main=TARGET_main")
}

/// The property of every stream parser: `run` over `stream` in one read, and in the reads `seed`
/// chooses, gives the same outcome.
public func checkSplitIndependence<Outcome: Equatable>(
    _ stream: ArraySlice<UInt8>, seed: UInt8, run: (ArraySlice<UInt8>, [Int]) -> Outcome
) {
    let whole = run(stream, stream.isEmpty ? [] : [stream.count])
    let split = run(stream, Array(ReadSplitter(seed: seed, count: stream.count)))
    fuzzCheck(whole == split, "the split stream gave \(split), the whole one \(whole)")
}
