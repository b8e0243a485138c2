import Foundation
import Histogram
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// What a worker sends back at the end.
public struct WorkerReport: Codable, Sendable {
    public var progress: WorkerProgress
    public var connectTimes: Histogram<UInt64>
    public var reconnectTimes: Histogram<UInt64>
    public var priceLatency: Histogram<UInt64>
    public var notificationLatency: Histogram<UInt64>
    public var delivered: Int
    /// Delivered while the publisher was still publishing.
    public var deliveredDuringPublishing: Int
    public var duplicated: Int
    public var lost: Int
}

/// Lines between the coordinator and a worker: commands on the worker's stdin, events on its stdout.
public enum WorkerCommand: Codable, Sendable {
    case measure
    /// The publisher stopped: deliveries from now on are late (they still count for loss).
    case publishingEnded
    case report(priceSequences: [UInt16: UInt32], notificationsPublished: Int)
    case exit
}

public enum WorkerEvent: Codable, Sendable {
    case progress(WorkerProgress)
    case report(WorkerReport)
}

/// The body of `tickwire bench-worker`: one event loop holding a slice of the connections.
public enum BenchWorker {
    public static func run(assignment: WorkerAssignment) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let state = try await loop.submit { NIOLoopBound(try WorkerState(assignment: assignment, eventLoop: loop), eventLoop: loop) }.get()
        loop.execute { state.value.start() }
        let progress = loop.scheduleRepeatedTask(initialDelay: .milliseconds(250), delay: .milliseconds(250)) { _ in
            emit(.progress(state.value.progress))
        }
        let commands = AsyncStream<WorkerCommand> { continuation in
            let thread = Thread {
                while let line = readLine() {
                    if let command = try? JSONDecoder().decode(WorkerCommand.self, from: Data(line.utf8)) {
                        continuation.yield(command)
                    }
                }
                continuation.finish()
            }
            thread.start()
        }
        for await command in commands {
            switch command {
            case .measure:
                loop.execute { state.value.startMeasuring() }
            case .publishingEnded:
                loop.execute { state.value.publishingEnded() }
            case .report(let sequences, let notifications):
                let report = try await loop.submit {
                    let worker = state.value
                    return WorkerReport(
                        progress: worker.progress, connectTimes: worker.connectTimes, reconnectTimes: worker.reconnectTimes,
                        priceLatency: worker.priceLatency, notificationLatency: worker.notificationLatency,
                        delivered: worker.delivered, deliveredDuringPublishing: worker.deliveredDuringPublishing ?? worker.delivered,
                        duplicated: worker.duplicated,
                        lost: worker.gaps + worker.tailLoss(priceSequences: sequences, notificationsPublished: notifications))
                }.get()
                emit(.report(report))
            case .exit:
                progress.cancel()
                try await loop.submit { state.value.stop() }.get()
                try await Task.sleep(for: .milliseconds(200))
                try await group.shutdownGracefully()
                return
            }
        }
    }

    /// Progress comes from the event loop, the report from the command task: one line at a
    /// time, or a progress line written into the middle of a report (a pipe write over 4 KiB
    /// is not atomic) makes the report unreadable and the worker's clients vanish from the result.
    static func emit(_ event: WorkerEvent) {
        guard var line = try? String(decoding: JSONEncoder().encode(event), as: UTF8.self) else { return }
        line += "\n"
        outputLock.withLock { FileHandle.standardOutput.write(Data(line.utf8)) }
    }

    private static let outputLock = NIOLock()
}
