import CourierSpool

/// When a message accepted by ``Node/send(_:to:headers:timeToLive:)-([UInt8],_,_,_)`` counts as stored.
public struct Durability: Sendable, Hashable, CustomStringConvertible {
    let policy: DurabilityPolicy

    /// `send` returns after an `fdatasync` that covers the message; concurrent sends share
    /// one sync (group commit). Survives power loss. The default.
    public static let groupCommit = Durability(policy: .groupCommit)
    /// The spool is synced every `period`; `send` returns once the message is written.
    /// Survives a process crash; a power loss may lose the last `period`.
    public static func interval(_ period: Duration) -> Durability { Durability(policy: .interval(period)) }
    /// Never synced; `send` returns once the message is written to the page cache. Survives
    /// a process crash (`kill -9`), not a power loss.
    public static let none = Durability(policy: DurabilityPolicy.none)

    /// The policy's name: `groupCommit`, `interval(…)` or `none`.
    public var description: String { policy.description }
}

/// What `send` does when a peer's spool is at its limit.
public struct WhenSpoolFull: Sendable, Hashable {
    let behavior: SpoolFullBehavior

    /// Suspend until acknowledgements make room (back-pressure). The default.
    public static let wait = WhenSpoolFull(behavior: .wait)
    /// Throw ``CourierError/Code/spoolFull`` at once.
    public static let fail = WhenSpoolFull(behavior: .fail)
}
