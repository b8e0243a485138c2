/// A notification-channel event with its fields typed: what an app shows. Amounts and balances
/// stay decimal strings, as on the wire; fields the schema does not name are in `extra`.
public enum WalletEvent: Sendable, Equatable {
    case transaction(TransactionUpdate)
    case balance(BalanceUpdate)
    case notification(AccountNotification)

    /// The event's id (`MILLISECONDS-SEQUENCE`), strictly increasing per user.
    public var id: StreamID {
        switch self {
        case .transaction(let event): event.id
        case .balance(let event): event.id
        case .notification(let event): event.id
        }
    }

    /// When it was published.
    public var timestamp: Timestamp {
        switch self {
        case .transaction(let event): event.timestamp
        case .balance(let event): event.timestamp
        case .notification(let event): event.timestamp
        }
    }

    public var kind: NotificationKind {
        switch self {
        case .transaction: .transactionUpdate
        case .balance: .balanceUpdate
        case .notification: .notification
        }
    }

    /// The event's `data` as sent, known fields and extra ones.
    public var data: JSONObject {
        switch self {
        case .transaction(let event): event.data
        case .balance(let event): event.data
        case .notification(let event): event.data
        }
    }

    /// Checks `data` against the event's schema (PROTOCOL.md section 4) and reads its fields.
    public init(_ envelope: NotificationEnvelope) throws(ProtocolViolation) {
        try envelope.kind.validate(envelope.data)
        let data = envelope.data
        func text(_ key: String) -> String { data[key]?.stringValue ?? "" }
        switch envelope.kind {
        case .transactionUpdate:
            self = .transaction(
                TransactionUpdate(
                    id: envelope.id, timestamp: envelope.timestamp, transactionID: text("transaction_id"), type: text("type"),
                    amount: text("amount"), symbol: text("symbol"), status: text("status"),
                    confirmations: Int(data["confirmations"]?.integerValue ?? 0), fromAddress: text("from_address"),
                    txHash: text("tx_hash"), data: data))
        case .balanceUpdate:
            self = .balance(
                BalanceUpdate(
                    id: envelope.id, timestamp: envelope.timestamp, walletID: text("wallet_id"), balance: text("balance"),
                    balanceUSD: text("balance_usd"), symbol: text("symbol"), data: data))
        case .notification:
            self = .notification(
                AccountNotification(
                    id: envelope.id, timestamp: envelope.timestamp, notificationID: text("notification_id"), type: text("type"),
                    title: text("title"), message: text("message"),
                    priority: AccountNotification.Priority(rawValue: text("priority")) ?? .normal, data: data))
        }
    }
}

/// `transaction_update`.
public struct TransactionUpdate: Sendable, Equatable {
    public var id: StreamID
    public var timestamp: Timestamp
    public var transactionID: String
    /// `send`, `receive`, ... as the publisher names it.
    public var type: String
    /// Decimal string.
    public var amount: String
    public var symbol: String
    public var status: String
    public var confirmations: Int
    public var fromAddress: String
    public var txHash: String
    /// The whole `data` object, including fields beyond these.
    public var data: JSONObject
}

/// `balance_update`.
public struct BalanceUpdate: Sendable, Equatable {
    public var id: StreamID
    public var timestamp: Timestamp
    public var walletID: String
    /// Decimal string.
    public var balance: String
    /// Decimal string.
    public var balanceUSD: String
    public var symbol: String
    public var data: JSONObject
}

/// `notification`: a message for the user.
public struct AccountNotification: Sendable, Equatable {
    public enum Priority: String, Sendable, CaseIterable {
        case low, normal, high, critical
    }

    public var id: StreamID
    public var timestamp: Timestamp
    public var notificationID: String
    public var type: String
    public var title: String
    public var message: String
    public var priority: Priority
    public var data: JSONObject
}
