/// A set of sequence numbers whose smallest member is read often: the numbers whose dead
/// letters are being stored. They arrive almost always in increasing order and leave in
/// any order, so a sorted array read from a moving head gives the minimum in amortised
/// O(1), where `Set.min()` visits every member.
struct PendingNumbers {
    private var members: Set<UInt64> = []
    /// Every member in increasing order, from `head` on, plus numbers that have left and
    /// are skipped when reached.
    private var order: [UInt64] = []
    private var head = 0

    var isEmpty: Bool { members.isEmpty }

    func contains(_ number: UInt64) -> Bool { members.contains(number) }

    mutating func insert(_ number: UInt64) {
        guard members.insert(number).inserted else { return }
        if let last = order.last, number < last {
            // Out of order (rare): keep the array sorted.
            var low = head, high = order.count
            while low < high {
                let middle = (low + high) / 2
                if order[middle] < number { low = middle + 1 } else { high = middle }
            }
            order.insert(number, at: low)
        } else {
            order.append(number)
        }
    }

    mutating func remove(_ number: UInt64) {
        guard members.remove(number) != nil else { return }
        if members.isEmpty {
            order.removeAll(keepingCapacity: true)
            head = 0
        } else {
            skipDeparted()
        }
    }

    /// The smallest member.
    var min: UInt64? { members.isEmpty ? nil : order[head] }

    private mutating func skipDeparted() {
        while head < order.count, !members.contains(order[head]) { head += 1 }
        if head > 1_024, head * 2 > order.count {
            order.removeFirst(head)
            head = 0
        }
    }
}
