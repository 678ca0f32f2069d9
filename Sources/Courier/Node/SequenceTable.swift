/// A table keyed by sequence number, for the per-message bookkeeping on the I/O thread
/// (the reorder buffer, numbers being settled, numbers processed out of order).
///
/// `Dictionary` and `Set` hash every key with SipHash, which is most of their cost for a
/// `UInt64`, and scatter consecutive numbers over memory. The keys here are a sliding run
/// of consecutive numbers, so the table is a ring: a number lives in slot
/// `number mod capacity`, and the capacity stays at least twice the count. Numbers in a
/// run shorter than the capacity never share a slot; any number whose slot is taken by
/// another goes to an ordinary `Dictionary` beside the ring, so unusual patterns (a peer's
/// chosen numbers, the key 0) cost what a `Dictionary` costs and no more.
struct SequenceTable<Value> {
    /// 0 marks an empty slot (the key 0 itself lives in `overflow`).
    private var keys: [UInt64]
    private var values: [Value?]
    private var overflow: [UInt64: Value] = [:]
    private(set) var count = 0

    init() {
        keys = [UInt64](repeating: 0, count: 16)
        values = [Value?](repeating: nil, count: 16)
    }

    var isEmpty: Bool { count == 0 }

    @inline(__always)
    private func slot(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: key) & (keys.count - 1)
    }

    subscript(key: UInt64) -> Value? {
        get {
            guard count > 0 else { return nil }
            let index = slot(key)
            if keys[index] == key, key != 0 { return values[index] }
            return overflow.isEmpty ? nil : overflow[key]
        }
        set {
            if let newValue { insert(key, newValue) } else { remove(key) }
        }
    }

    func contains(_ key: UInt64) -> Bool {
        self[key] != nil
    }

    /// Stores `value` under `key`; true when the key was not there before.
    @discardableResult
    mutating func insert(_ key: UInt64, _ value: Value) -> Bool {
        var index = slot(key)
        if keys[index] == key, key != 0 {
            values[index] = value
            return false
        }
        if !overflow.isEmpty, overflow[key] != nil {
            overflow[key] = value
            return false
        }
        if (count + 1) * 2 > keys.count {
            grow()
            index = slot(key)
        }
        count += 1
        if keys[index] == 0, key != 0 {
            keys[index] = key
            values[index] = value
        } else {
            overflow[key] = value
        }
        return true
    }

    /// Removes `key`; returns its value if it was there.
    @discardableResult
    mutating func remove(_ key: UInt64) -> Value? {
        guard count > 0 else { return nil }
        let index = slot(key)
        if keys[index] == key, key != 0 {
            count -= 1
            keys[index] = 0
            defer { values[index] = nil }
            return values[index]
        }
        guard !overflow.isEmpty, let removed = overflow.removeValue(forKey: key) else { return nil }
        count -= 1
        return removed
    }

    /// Removes every key for which `predicate` is true.
    mutating func removeAll(where predicate: (UInt64) -> Bool) {
        for key in sortedKeys() where predicate(key) { remove(key) }
    }

    /// Every key, in ascending order.
    func sortedKeys() -> [UInt64] {
        (keys.filter { $0 != 0 } + overflow.keys).sorted()
    }

    private mutating func grow() {
        let oldKeys = keys
        let oldValues = values
        let oldOverflow = overflow
        keys = [UInt64](repeating: 0, count: oldKeys.count * 2)
        values = [Value?](repeating: nil, count: oldKeys.count * 2)
        overflow = [:]
        count = 0
        for (index, key) in oldKeys.enumerated() where key != 0 {
            if let value = oldValues[index] { insert(key, value) }
        }
        for (key, value) in oldOverflow { insert(key, value) }
    }
}

/// A set of sequence numbers (see ``SequenceTable``).
struct SequenceSet {
    private var table = SequenceTable<Void>()

    init() {}

    init<S: Sequence<UInt64>>(_ numbers: S) {
        for number in numbers { table.insert(number, ()) }
    }

    var isEmpty: Bool { table.isEmpty }
    var count: Int { table.count }

    func contains(_ number: UInt64) -> Bool { table.contains(number) }

    @discardableResult
    mutating func insert(_ number: UInt64) -> Bool { table.insert(number, ()) }

    @discardableResult
    mutating func remove(_ number: UInt64) -> Bool { table.remove(number) != nil }

    mutating func removeAll(where predicate: (UInt64) -> Bool) { table.removeAll(where: predicate) }

    func sorted() -> [UInt64] { table.sortedKeys() }
}
