import NIOCore

/// A command: its name and arguments, sent as an array of bulk strings.
public struct RESPCommand: Sendable, CustomStringConvertible {
    public var arguments: [ByteBuffer]

    public init(_ name: String, _ arguments: [String] = []) {
        self.arguments = [ByteBuffer(string: name)] + arguments.map { ByteBuffer(string: $0) }
    }

    public init(_ name: String, buffers: [ByteBuffer]) {
        self.arguments = [ByteBuffer(string: name)] + buffers
    }

    public var name: String { arguments.first.map { String(buffer: $0).uppercased() } ?? "" }

    /// Appends the wire form to `buffer`.
    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeString("*\(arguments.count)\r\n")
        for argument in arguments {
            buffer.writeString("$\(argument.readableBytes)\r\n")
            buffer.writeImmutableBuffer(argument)
            buffer.writeString("\r\n")
        }
    }

    /// The name and argument count only: arguments may hold secrets (AUTH) or user data.
    public var description: String { "\(name) (\(arguments.count - 1) arguments)" }
}
