/// Shares one copy of each rejection reason a peer repeats. Applications usually reject
/// with a few distinct reasons, and every rejection's reason is kept for `outcome(of:)` and
/// in the dead letters' index: without sharing, each kept rejection held its own copies.
/// Owned by one peer's I/O-thread state; at most ``capacity`` distinct reasons are kept
/// (beyond that, reasons are used as they come).
struct ReasonInterner {
    static let capacity = 1_024
    private var known: Set<String> = []

    /// `reason`, or the equal string already known (which shares its storage).
    mutating func intern(_ reason: String) -> String {
        guard !reason.isEmpty else { return reason }
        if let existing = known.firstIndex(of: reason) { return known[existing] }
        if known.count < Self.capacity { known.insert(reason) }
        return reason
    }

    /// The frame with each outcome's reason interned.
    mutating func intern(_ frame: WireFrame) -> WireFrame {
        guard case .outcomes(var outcomes) = frame else { return frame }
        for index in outcomes.entries.indices {
            outcomes.entries[index].reason = intern(outcomes.entries[index].reason)
        }
        return .outcomes(outcomes)
    }
}
