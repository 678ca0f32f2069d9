#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Logging

/// The process's limit on open file descriptors.
enum DescriptorLimit {
    /// Raises the soft limit to the hard one (capped at 1,048,576) and returns the soft
    /// limit now in force, or nil when it cannot be read.
    @discardableResult
    static func raiseSoftLimit(logger: Logger) -> UInt64? {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return nil }
        let target = min(UInt64(limit.rlim_max), 1 << 20)
        guard UInt64(limit.rlim_cur) < target else { return UInt64(limit.rlim_cur) }
        let before = UInt64(limit.rlim_cur)
        limit.rlim_cur = rlim_t(target)
        guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else {
            logger.notice("cannot raise the open-file limit", metadata: ["soft": "\(before)", "errno": "\(errno)"])
            return before
        }
        logger.info("raised the open-file limit", metadata: ["from": "\(before)", "to": "\(target)"])
        return target
    }
}
