/// When an append counts as durable (SPEC §4, "Durability policies").
///
/// An open set: more policies may be added.
package struct DurabilityPolicy: Sendable, Hashable, CustomStringConvertible {
    enum Kind: Hashable {
        case groupCommit
        case interval(Duration)
        case none
    }

    let kind: Kind

    /// Every append completes only after an `fdatasync` that covers it; concurrent appends
    /// share one. Survives power loss. The default.
    package static let groupCommit = DurabilityPolicy(kind: .groupCommit)

    /// Appends complete once written to the page cache; a background `fdatasync` runs every
    /// `period` while there is unsynced data. A power loss can lose up to `period` of appends.
    package static func interval(_ period: Duration) -> DurabilityPolicy {
        DurabilityPolicy(kind: .interval(period))
    }

    /// Appends complete once written to the page cache; never synced by the spool. Survives
    /// a process crash, not a power loss.
    package static let none = DurabilityPolicy(kind: .none)

    package var description: String {
        switch kind {
        case .groupCommit: "groupCommit"
        case .interval(let period): "interval(\(period))"
        case .none: "none"
        }
    }

    var syncsEachBatch: Bool { kind == .groupCommit }
    var syncsAtAll: Bool { kind != .none }
}
