/// Values by sequence number, for numbers that come almost always in increasing order and
/// leave from the front: the numbers in a sorted array beside their values, read from a
/// moving head. Recording in order appends, finding halves, and taking the front off moves
/// the head: no hashing (a dictionary hashed every number in and out), and about the size
/// of the two arrays. Out-of-order numbers are inserted where they belong.
///
/// Used by the dead letters' outcome index, and by the node for the outcomes and numbers
/// that wait for their dead letters and the verdicts a receiver retains (hence `package`,
/// and inlinable so that each use is specialised for its value).
package struct OrderedNumberMap<Value> {
    @usableFromInline package var numbers: [UInt64] = []
    @usableFromInline package var values: [Value] = []
    @usableFromInline package var head = 0

    @inlinable package init() {}

    /// How many numbers are held.
    @inlinable package var count: Int { numbers.count - head }

    @inlinable package var isEmpty: Bool { head == numbers.count }

    /// The smallest number held.
    @inlinable package var first: (number: UInt64, value: Value)? {
        head < numbers.count ? (numbers[head], values[head]) : nil
    }

    /// The largest number held.
    @inlinable package var lastNumber: UInt64? { head < numbers.count ? numbers[numbers.count - 1] : nil }

    /// Each number held with its value, in order.
    @inlinable package func forEach(_ body: (UInt64, Value) -> Void) {
        for index in head..<numbers.count { body(numbers[index], values[index]) }
    }

    @inlinable package subscript(number: UInt64) -> Value? {
        get {
            let position = lowerBound(number)
            return position < numbers.count && numbers[position] == number ? values[position] : nil
        }
    }

    /// Holds `value` for `number`, replacing the value held for it.
    @inlinable package mutating func record(_ value: Value, for number: UInt64) {
        if let last = numbers.last, number <= last {
            let position = lowerBound(number)
            if position < numbers.count, numbers[position] == number {
                values[position] = value
            } else {
                numbers.insert(number, at: position)
                values.insert(value, at: position)
            }
        } else {
            numbers.append(number)
            values.append(value)
        }
    }

    /// Replaces the value held for `number`, if it is held; returns whether it was.
    @inlinable @discardableResult
    package mutating func update(_ number: UInt64, _ change: (inout Value) -> Void) -> Bool {
        let position = lowerBound(number)
        guard position < numbers.count, numbers[position] == number else { return false }
        change(&values[position])
        return true
    }

    /// Takes off the front every number up to `mark`, in order.
    @inlinable package mutating func removeFirst(upTo mark: UInt64, _ body: (UInt64, Value) -> Void = { _, _ in }) {
        while head < numbers.count, numbers[head] <= mark {
            body(numbers[head], values[head])
            head += 1
        }
        compact()
    }

    /// Takes the smallest number off the front.
    @inlinable package mutating func removeFirst() {
        guard head < numbers.count else { return }
        head += 1
        compact()
    }

    @inlinable package mutating func removeAll() {
        numbers.removeAll(keepingCapacity: true)
        values.removeAll(keepingCapacity: true)
        head = 0
    }

    @inlinable package mutating func compact() {
        if head == numbers.count {
            removeAll()
        } else if head > 1_024, head * 2 > numbers.count {
            numbers.removeFirst(head)
            values.removeFirst(head)
            head = 0
        }
    }

    /// The first position from the head on whose number is not below `number`.
    @inlinable package func lowerBound(_ number: UInt64) -> Int {
        var low = head, high = numbers.count
        while low < high {
            let middle = (low + high) / 2
            if numbers[middle] < number { low = middle + 1 } else { high = middle }
        }
        return low
    }
}

extension OrderedNumberMap: Sendable where Value: Sendable {}
