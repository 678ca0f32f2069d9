/// A set of sequence numbers whose smallest member is read often: the numbers whose dead
/// letters are being stored, the verdicts no HELLO has confirmed yet. They arrive almost always in increasing order and leave in
/// about the same order, so they are kept as a sorted array read from a moving head, each
/// with a flag for "still a member": the minimum in amortised O(1), membership and removal
/// by halving, and no hashing (a `Set` hashed every number on each of these).
struct PendingNumbers {
    /// Every number inserted since the array was last emptied, in increasing order from
    /// `head` on (before it, only numbers that have left); `present` says which are still
    /// members.
    private var numbers: [UInt64] = []
    private var present: [Bool] = []
    private var head = 0
    private var count = 0

    var isEmpty: Bool { count == 0 }

    /// The smallest member.
    var min: UInt64? { count == 0 ? nil : numbers[head] }

    func contains(_ number: UInt64) -> Bool {
        guard let index = index(of: number) else { return false }
        return present[index]
    }

    /// Adds `number`; false if it was a member already.
    @discardableResult
    mutating func insert(_ number: UInt64) -> Bool {
        if let last = numbers.last, number <= last {
            let position = lowerBound(number)
            if position < numbers.count, numbers[position] == number {
                guard !present[position] else { return false }
                present[position] = true
            } else {
                // Out of order (rare): keep the array sorted.
                numbers.insert(number, at: position)
                present.insert(true, at: position)
            }
        } else {
            numbers.append(number)
            present.append(true)
        }
        count += 1
        return true
    }

    /// Removes every member up to `mark`.
    mutating func removeAll(through mark: UInt64) {
        while count > 0, numbers[head] <= mark { remove(numbers[head]) }
    }

    mutating func remove(_ number: UInt64) {
        guard let index = index(of: number), present[index] else { return }
        present[index] = false
        count -= 1
        if count == 0 {
            numbers.removeAll(keepingCapacity: true)
            present.removeAll(keepingCapacity: true)
            head = 0
            return
        }
        while !present[head] { head += 1 }
        if head > 1_024, head * 2 > numbers.count {
            numbers.removeFirst(head)
            present.removeFirst(head)
            head = 0
        }
    }

    private func index(of number: UInt64) -> Int? {
        let position = lowerBound(number)
        return position < numbers.count && numbers[position] == number ? position : nil
    }

    /// The first index from `head` on whose number is not below `number`.
    private func lowerBound(_ number: UInt64) -> Int {
        var low = head, high = numbers.count
        while low < high {
            let middle = (low + high) / 2
            if numbers[middle] < number { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
