// courier-spool: inspects, verifies and repairs a Courier data directory (SPEC §5).
// The commands are in CourierSpoolToolKit; this only connects them to the process.
import CourierSpoolToolKit

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

exit(CourierSpoolTool.main(arguments: Array(CommandLine.arguments.dropFirst()), context: .process))
