import APMatrixModel
import ArgumentParser

// Ids on the command line are parsed when the arguments are, into typed ids,
// with the reason when one is refused.

extension APIdentifier {
    /// Decimal or 0x hex, 0-255: for `@Argument(transform:)` and `@Option(transform:)`.
    static func argument(_ text: String) throws -> Self {
        do throws(IdList.ParseError) { return try Self(parsing: text) } catch { throw ValidationError("\(error)") }
    }
}

extension APQN {
    /// As sysfs names the queue device: `05.0004`.
    static func argument(_ text: String) throws -> APQN {
        guard let apqn = APQN(sysfsName: text) else { throw ValidationError("'\(text)' is not an APQN: write it as sysfs names the queue, such as 05.0004") }
        return apqn
    }
}

extension MdevUUID {
    /// A UUID in either case: `62177883-f1bb-47f0-914d-32a22e3a8804`.
    static func argument(_ text: String) throws -> MdevUUID {
        guard let uuid = MdevUUID(parsing: text) else {
            throw ValidationError("'\(text)' is not a UUID such as 62177883-f1bb-47f0-914d-32a22e3a8804")
        }
        return uuid
    }
}
