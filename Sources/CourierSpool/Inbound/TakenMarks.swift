#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CourierChecksum
import Synchronization
import SystemPackage

/// What the receiving application has really taken from its message iterator, per stream,
/// in a small file mapped into memory (`inbound/taken.map`, docs/SPOOL-FORMAT.md).
///
/// The iterator records a stream's mark with a plain store into the mapping before it
/// returns a message: no system call, nothing blocks. The page cache holds the mapping's
/// pages through a crash of the process (`kill -9`), so after a restart on the same boot a
/// message above the mark was never given to the application, even if the reservation
/// covered it (it sat in the library's queue): it comes back unflagged. After a reboot (an
/// operating-system crash, a power loss) unsynced pages may be lost: the file then says
/// nothing and the reservation alone counts, as before.
package final class TakenMarks: @unchecked Sendable {
    // @unchecked: `base` is a shared mapping. The I/O thread writes a slot's identity once,
    // when it assigns the slot, before any message of that stream is queued; afterwards only
    // the application's iterator writes the slot's mark (one iterator per node); the file is
    // read only at open.
    static let headerSize = 64
    static let slotSize = 32
    /// Streams with a slot; a node receiving from more at once lets the rest rely on their
    /// reservations. 64 KiB on disk, allocated at open.
    static let slotCount = 2_048
    static let magic = Array("CSPLTKN".utf8) + [0]
    static let version: UInt16 = 1

    private let base: UnsafeMutableRawPointer
    private let length: Int
    private let fd: FileDescriptor
    private let allocation: Mutex<(next: Int, free: [Int], slots: [Identity: Int])>
    /// The marks the file held at open for streams the store still has (this boot only).
    package let found: [InboundStreamKey: UInt64]

    private struct Identity: Hashable {
        var senderHash: UInt64
        var stream: UInt64
    }

    /// Opens (or creates) the file in `directory`. Marks are kept only for `streams` and only
    /// when the file was written during boot `bootID`; the file is then laid out afresh with
    /// them. Nil `bootID`: no marks are trusted (each stream relies on its reservation).
    init(directory: FilePath, bootID: [UInt8]?, streams: Set<InboundStreamKey>) throws(SpoolError) {
        let path = directory.appending("taken.map")
        let length = Self.headerSize + Self.slotCount * Self.slotSize
        let fd = try FileOps.openForWriting(path, create: true)
        var kept: [InboundStreamKey: UInt64] = [:]
        do {
            let old = try fd.readBytes(at: 0, count: length)
            if let bootID, Self.headerIsValid(old, bootID: bootID) {
                let byIdentity = Dictionary(streams.map { (Identity(senderHash: Self.hash($0.sender), stream: $0.streamID), $0) },
                                            uniquingKeysWith: { first, _ in first })
                old.withUnsafeBytes { raw in
                    for slot in 0..<Self.slotCount {
                        let offset = Self.headerSize + slot * Self.slotSize
                        guard offset + Self.slotSize <= raw.count else { break }
                        let identity = Identity(senderHash: raw.u64(at: offset), stream: raw.u64(at: offset + 8))
                        let mark = raw.u64(at: offset + 16)
                        guard identity.stream != 0, mark > 0, let key = byIdentity[identity] else { continue }
                        kept[key] = max(kept[key] ?? 0, mark)
                    }
                }
            }
            guard ftruncate(fd.rawValue, off_t(length)) == 0 else { throw Errno(rawValue: errno) }
            // Every block allocated now: a store into a page of a mapped file whose block
            // cannot be allocated (a full disk) would kill the process with SIGBUS.
            let allocated = posix_fallocate(fd.rawValue, 0, off_t(length))
            guard allocated == 0 else { throw Errno(rawValue: allocated) }
        } catch {
            _ = ftruncate(fd.rawValue, 0)  // give back what a failed allocation took
            try? fd.close()
            throw SpoolError.from(error, call: "read/ftruncate/posix_fallocate", path: path, doing: "opening the taken marks")
        }
        guard let mapped = mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd.rawValue, 0), mapped != MAP_FAILED else {
            let code = errno
            try? fd.close()
            throw SpoolError.system("mmap", Errno(rawValue: code), path: path, doing: "mapping the taken marks")
        }
        self.base = mapped
        self.length = length
        self.fd = fd
        // Lay the file out afresh: the header of this boot, then the kept marks.
        memset(mapped, 0, length)
        var slots: [Identity: Int] = [:]
        var next = 0
        for (key, mark) in kept.sorted(by: { ($0.key.sender, $0.key.streamID) < ($1.key.sender, $1.key.streamID) }) {
            let identity = Identity(senderHash: Self.hash(key.sender), stream: key.streamID)
            Self.writeSlot(mapped, next, identity: identity, mark: mark)
            slots[identity] = next
            next += 1
        }
        if let bootID { Self.writeHeader(mapped, bootID: bootID) }
        self.allocation = Mutex((next, [], slots))
        self.found = kept
    }

    deinit {
        munmap(base, length)
        try? fd.close()
    }

    /// The slot that records `key`'s mark (assigned on first use); nil when every slot is
    /// taken (the stream then relies on its reservation alone).
    package func slot(for key: InboundStreamKey) -> TakenSlot? {
        let identity = Identity(senderHash: Self.hash(key.sender), stream: key.streamID)
        let index: Int? = allocation.withLock { state in
            if let known = state.slots[identity] { return known }
            let index: Int
            if let reused = state.free.popLast() {
                index = reused
            } else {
                guard state.next < Self.slotCount else { return nil }
                index = state.next
                state.next += 1
            }
            state.slots[identity] = index
            Self.writeSlot(base, index, identity: identity, mark: 0)
            return index
        }
        return index.map { TakenSlot(mark: (base + Self.headerSize + $0 * Self.slotSize + 16).assumingMemoryBound(to: UInt64.self)) }
    }

    /// Gives `key`'s slot back when its stream is retired, for a later stream to use. An
    /// iterator still holding the old ``TakenSlot`` can only raise the new owner's mark,
    /// which flags more messages `redelivered` after a crash, never fewer.
    package func release(_ key: InboundStreamKey) {
        let identity = Identity(senderHash: Self.hash(key.sender), stream: key.streamID)
        allocation.withLock { state in
            guard let index = state.slots.removeValue(forKey: identity) else { return }
            Self.writeSlot(base, index, identity: Identity(senderHash: 0, stream: 0), mark: 0)
            state.free.append(index)
        }
    }

    private static func writeSlot(_ base: UnsafeMutableRawPointer, _ index: Int, identity: Identity, mark: UInt64) {
        let slot = base + headerSize + index * slotSize
        slot.storeBytes(of: identity.senderHash.littleEndian, as: UInt64.self)
        (slot + 8).storeBytes(of: identity.stream.littleEndian, as: UInt64.self)
        (slot + 16).storeBytes(of: mark.littleEndian, as: UInt64.self)
    }

    private static func writeHeader(_ base: UnsafeMutableRawPointer, bootID: [UInt8]) {
        var writer = ByteWriter(capacity: headerSize)
        writer.append(magic)
        writer.u16(version)
        writer.append([UInt8](repeating: 0, count: 6))
        writer.append(Array(bootID.prefix(16)) + [UInt8](repeating: 0, count: max(0, 16 - bootID.count)))
        let crc = writer.bytes.withUnsafeBytes { CRC32C.checksum($0) }
        writer.u32(crc)
        writer.bytes.withUnsafeBytes { base.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }

    private static func headerIsValid(_ bytes: [UInt8], bootID: [UInt8]) -> Bool {
        guard bytes.count >= headerSize, Array(bytes[0..<8]) == magic else { return false }
        return bytes.withUnsafeBytes { raw in
            raw.u16(at: 8) == version && Array(bytes[16..<32]) == Array(bootID.prefix(16))
                && CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<32])) == raw.u32(at: 32)
        }
    }

    /// FNV-1a, 64 bits, of the sender id's UTF-8 bytes (with the stream id, a slot's identity).
    static func hash(_ sender: String) -> UInt64 {
        var value: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in sender.utf8 {
            value ^= UInt64(byte)
            value &*= 0x0000_0100_0000_01b3
        }
        return value
    }
}

/// One stream's slot in ``TakenMarks``: the application's iterator records each message it
/// takes, before returning it.
package struct TakenSlot: @unchecked Sendable {
    // @unchecked: a pointer into the shared mapping; only the iterator writes through it.
    let mark: UnsafeMutablePointer<UInt64>

    /// The application took `sequence` (and, streams being in order, everything before it).
    package func record(_ sequence: UInt64) {
        if UInt64(littleEndian: mark.pointee) < sequence { mark.pointee = sequence.littleEndian }
    }
}
