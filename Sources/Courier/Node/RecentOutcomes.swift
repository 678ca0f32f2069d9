/// Outcomes other than processed that the dead letters will answer for once their letters
/// are stored: kept in number order, as they are decided (almost always increasingly), so
/// that recording one appends, finding one halves, and forgetting those the spool has let
/// go of takes them off the front, with no hashing (a dictionary hashed every rejected
/// number twice, in and out).
struct RecentOutcomes {
    private var numbers: [UInt64] = []
    private var outcomes: [Outcome] = []
    private var head = 0

    var count: Int { numbers.count - head }

    subscript(number: UInt64) -> Outcome? {
        let position = lowerBound(number)
        return position < numbers.count && numbers[position] == number ? outcomes[position] : nil
    }

    /// Records `outcome` for `number` (replacing one recorded before).
    mutating func record(_ outcome: Outcome, for number: UInt64) {
        if let last = numbers.last, number <= last {
            let position = lowerBound(number)
            if position < numbers.count, numbers[position] == number {
                outcomes[position] = outcome
            } else {
                numbers.insert(number, at: position)
                outcomes.insert(outcome, at: position)
            }
        } else {
            numbers.append(number)
            outcomes.append(outcome)
        }
    }

    /// Takes off the front every outcome numbered up to `mark`, in order.
    mutating func removeFirst(upTo mark: UInt64, _ body: (UInt64, Outcome) -> Void) {
        while head < numbers.count, numbers[head] <= mark {
            body(numbers[head], outcomes[head])
            head += 1
        }
        if head == numbers.count {
            numbers.removeAll(keepingCapacity: true)
            outcomes.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 1_024, head * 2 > numbers.count {
            numbers.removeFirst(head)
            outcomes.removeFirst(head)
            head = 0
        }
    }

    private func lowerBound(_ number: UInt64) -> Int {
        var low = head, high = numbers.count
        while low < high {
            let middle = (low + high) / 2
            if numbers[middle] < number { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
