/// courier-spool's exit codes (SPEC §5): 0 success, 1 a failure or damage found, 2 a bad
/// command line (as for `grep`; never ArgumentParser's 64). The same numbers as the example
/// programs', kept here so that the tool needs nothing from their support target.
enum ExitStatus {
    static let success: Int32 = 0
    /// A failure while running, or (verify) damage found.
    static let failure: Int32 = 1
    /// A bad flag or argument.
    static let usage: Int32 = 2
}
