/// A hash table keyed by sequence number, for the per-message bookkeeping on the I/O
/// thread (the reorder buffer, numbers being settled, numbers processed out of order).
///
/// `Dictionary` and `Set` hash every key with SipHash, which is most of their cost for a
/// `UInt64`. This table uses Fibonacci hashing and linear probing with backward-shift
/// deletion instead. A peer cannot use it to make probe runs long: the receiver stores only
/// numbers inside its window, a run of consecutive numbers, and Fibonacci hashing spreads
/// any such run evenly over the slots (the three-distance theorem).
struct SequenceTable<Value> {
    private var keys: [UInt64]
    private var values: [Value?]
    private var shift: UInt64
    /// 0 marks an empty slot; the key 0 itself lives here.
    private var zero: Value?
    private(set) var count = 0

    init() {
        keys = [UInt64](repeating: 0, count: 16)
        values = [Value?](repeating: nil, count: 16)
        shift = 64 - 4
    }

    var isEmpty: Bool { count == 0 }

    private var mask: Int { keys.count - 1 }

    @inline(__always)
    private func home(_ key: UInt64) -> Int {
        Int(truncatingIfNeeded: (key &* 0x9E37_79B9_7F4A_7C15) >> shift)
    }

    /// The slot holding `key`, or the empty slot where it would go.
    @inline(__always)
    private func find(_ key: UInt64) -> (index: Int, found: Bool) {
        var index = home(key)
        while true {
            let stored = keys[index]
            if stored == key { return (index, true) }
            if stored == 0 { return (index, false) }
            index = (index + 1) & mask
        }
    }

    subscript(key: UInt64) -> Value? {
        get {
            guard count > 0 else { return nil }
            if key == 0 { return zero }
            let (index, found) = find(key)
            return found ? values[index] : nil
        }
        set {
            if let newValue { insert(key, newValue) } else { _ = remove(key) }
        }
    }

    func contains(_ key: UInt64) -> Bool {
        guard count > 0 else { return false }
        if key == 0 { return zero != nil }
        return find(key).found
    }

    /// Stores `value` under `key`; true when the key was not there before.
    @discardableResult
    mutating func insert(_ key: UInt64, _ value: Value) -> Bool {
        if key == 0 {
            defer { zero = value }
            if zero == nil { count += 1; return true }
            return false
        }
        if (count + 1) * 2 > keys.count { grow() }
        let (index, found) = find(key)
        values[index] = value
        if found { return false }
        keys[index] = key
        count += 1
        return true
    }

    /// Removes `key`; returns its value if it was there.
    @discardableResult
    mutating func remove(_ key: UInt64) -> Value? {
        guard count > 0 else { return nil }
        if key == 0 {
            defer { if zero != nil { count -= 1 }; zero = nil }
            return zero
        }
        var (hole, found) = find(key)
        guard found else { return nil }
        let removed = values[hole]
        count -= 1
        // Backward-shift deletion: pull later entries of the probe run into the hole, so
        // that no tombstones are needed.
        var next = (hole + 1) & mask
        while keys[next] != 0 {
            let want = home(keys[next])
            // `next` may move to `hole` unless its home lies cyclically in (hole, next].
            let stays = hole <= next ? (want > hole && want <= next) : (want > hole || want <= next)
            if !stays {
                keys[hole] = keys[next]
                values[hole] = values[next]
                hole = next
            }
            next = (next + 1) & mask
        }
        keys[hole] = 0
        values[hole] = nil
        return removed
    }

    /// Removes every key for which `predicate` is true.
    mutating func removeAll(where predicate: (UInt64) -> Bool) {
        let doomed = self.keys.filter { $0 != 0 && predicate($0) } + (zero != nil && predicate(0) ? [0] : [])
        for key in doomed { remove(key) }
    }

    /// Every key, in ascending order.
    func sortedKeys() -> [UInt64] {
        (keys.filter { $0 != 0 } + (zero != nil ? [0] : [])).sorted()
    }

    private mutating func grow() {
        let oldKeys = keys
        let oldValues = values
        keys = [UInt64](repeating: 0, count: oldKeys.count * 2)
        values = [Value?](repeating: nil, count: oldKeys.count * 2)
        shift -= 1
        for (index, key) in oldKeys.enumerated() where key != 0 {
            let (slot, _) = find(key)
            keys[slot] = key
            values[slot] = oldValues[index]
        }
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
