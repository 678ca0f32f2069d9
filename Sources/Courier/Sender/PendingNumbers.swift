import CourierSpool

/// A set of sequence numbers whose smallest member is read often: the numbers whose dead
/// letters are being stored, the verdicts no HELLO has confirmed yet. They arrive almost
/// always in increasing order and leave in about the same order, so they are kept in an
/// ``OrderedNumberMap`` with a flag for "still a member": the minimum in amortised O(1),
/// membership and removal by halving, and no hashing (a `Set` hashed every number on each
/// of these).
struct PendingNumbers {
    /// Every number inserted since the map was last emptied, with whether it is still a
    /// member; those at the front that have left are taken off.
    private var numbers = OrderedNumberMap<Bool>()
    private var count = 0

    var isEmpty: Bool { count == 0 }

    /// The smallest member.
    var min: UInt64? { count == 0 ? nil : numbers.first?.number }

    func contains(_ number: UInt64) -> Bool { numbers[number] == true }

    /// Adds `number`; false if it was a member already.
    @discardableResult
    mutating func insert(_ number: UInt64) -> Bool {
        if let last = numbers.lastNumber, number <= last {
            var added = false
            let held = numbers.update(number) { present in
                added = !present
                present = true
            }
            if !held {
                numbers.record(true, for: number)  // out of order (rare)
                added = true
            }
            guard added else { return false }
        } else {
            numbers.record(true, for: number)
        }
        count += 1
        return true
    }

    mutating func remove(_ number: UInt64) {
        var removed = false
        numbers.update(number) { present in
            removed = present
            present = false
        }
        guard removed else { return }
        count -= 1
        dropDeparted()
    }

    /// Removes every member up to `mark`.
    mutating func removeAll(through mark: UInt64) {
        var removed = 0
        numbers.removeFirst(upTo: mark) { _, present in if present { removed += 1 } }
        count -= removed
        dropDeparted()
    }

    /// Takes the numbers that have left off the front, so that the first is a member.
    private mutating func dropDeparted() {
        if count == 0 {
            numbers.removeAll()
            return
        }
        while let first = numbers.first, !first.value { numbers.removeFirst() }
    }
}
