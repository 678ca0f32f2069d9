import ArgumentParser
import Courier

/// The `--header NAME=VALUE` arguments: split at the first `=`, names unique, within the
/// limits ``MessageHeaders`` states. Checked when the command line is validated, so a bad
/// header is a usage error (exit code 2) before anything is sent.
enum HeaderArguments {
    /// The headers `arguments` give, in order, or a `ValidationError` naming the first problem.
    static func parse(_ arguments: [String]) throws(ValidationError) -> MessageHeaders {
        var pairs: [(String, String)] = []
        var names = Set<String>()
        var total = arguments.isEmpty ? 0 : 1
        for argument in arguments {
            guard let equals = argument.firstIndex(of: "=") else {
                throw ValidationError("--header \(argument): expected NAME=VALUE, such as --header content-type=text/plain")
            }
            let name = String(argument[..<equals])
            let value = String(argument[argument.index(after: equals)...])
            guard !name.isEmpty else {
                throw ValidationError("--header \(argument): the name before '=' is empty")
            }
            guard names.insert(name).inserted else {
                throw ValidationError("--header: the name \"\(name)\" is given twice (each name at most once)")
            }
            guard name.utf8.count <= MessageHeaders.maxNameBytes else {
                throw ValidationError("--header: the name \(name.prefix(20))… is \(name.utf8.count) bytes, above the limit of \(MessageHeaders.maxNameBytes)")
            }
            guard value.utf8.count <= MessageHeaders.maxValueBytes else {
                throw ValidationError("--header \(name): the value is \(value.utf8.count) bytes, above the limit of \(MessageHeaders.maxValueBytes)")
            }
            total += 3 + name.utf8.count + value.utf8.count
            pairs.append((name, value))
        }
        guard pairs.count <= MessageHeaders.maxCount else {
            throw ValidationError("--header is given \(pairs.count) times, above the limit of \(MessageHeaders.maxCount) headers")
        }
        guard total <= MessageHeaders.maxTotalBytes else {
            throw ValidationError("--header: the headers take \(total) bytes together, above the limit of \(MessageHeaders.maxTotalBytes)")
        }
        return MessageHeaders(pairs)
    }
}
