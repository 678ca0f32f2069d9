/// What an append does when the peer's spool is at its limit.
///
/// An open set: more behaviours may be added.
package struct SpoolFullBehavior: Sendable, Hashable, CustomStringConvertible {
    enum Kind: Hashable { case wait, fail }
    let kind: Kind

    /// The append waits (its completion is delayed) until acknowledgements free enough
    /// space. Appends stay in order: later appends wait behind it.
    package static let wait = SpoolFullBehavior(kind: .wait)
    /// The append fails at once with ``SpoolError/Code/spoolFull``.
    package static let fail = SpoolFullBehavior(kind: .fail)

    package var description: String { kind == .wait ? "wait" : "fail" }
}
