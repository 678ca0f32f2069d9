/// Why a record was given up on (SPEC §2, guarantee 5).
package struct DeadLetterReason: Sendable, Hashable, CustomStringConvertible {
    /// The kind of outcome. An open set.
    package struct Kind: Hashable, Sendable, CustomStringConvertible {
        let code: UInt8
        /// The receiving application refused the message.
        package static let rejected = Kind(code: 1)
        /// The message's time-to-live passed before delivery.
        package static let expired = Kind(code: 2)
        /// The message ran out of attempts.
        package static let deadLettered = Kind(code: 3)

        package var description: String {
            switch code {
            case 1: "rejected"
            case 2: "expired"
            case 3: "deadLettered"
            default: "kind(\(code))"
            }
        }
    }

    /// The kind of outcome.
    package var kind: Kind
    /// The explanation given (empty for ``expired``).
    package var text: String

    /// The receiving application refused the message, saying `reason`.
    package static func rejected(_ reason: String) -> DeadLetterReason { DeadLetterReason(kind: .rejected, text: reason) }
    /// The message's time-to-live passed before delivery.
    package static let expired = DeadLetterReason(kind: .expired, text: "")
    /// The message ran out of attempts (or was given up on for `reason`).
    package static func deadLettered(_ reason: String) -> DeadLetterReason { DeadLetterReason(kind: .deadLettered, text: reason) }

    package var description: String { text.isEmpty ? kind.description : "\(kind)(\(text))" }
}
