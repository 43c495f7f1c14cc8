import APMatrixModel

/// Where the edges report what they do, for `/metrics`. The model stays
/// pure: only the runtime and the FUSE adapter report.
public struct Instrumentation: Sendable {
    /// One `Runtime.perform`: its kind (`sysfs:assign_adapter`, `guest_start`, …) and its error, nil on success.
    public var operation: @Sendable (_ kind: String, _ error: APError?) -> Void
    /// One FUSE request: the libfuse operation and how long it took.
    public var fuseRequest: @Sendable (_ op: FuseOperation, _ nanoseconds: Int64) -> Void

    public init(operation: @escaping @Sendable (String, APError?) -> Void,
                fuseRequest: @escaping @Sendable (FuseOperation, Int64) -> Void) {
        self.operation = operation
        self.fuseRequest = fuseRequest
    }

    /// Reports nowhere.
    public static let none = Instrumentation(operation: { _, _ in }, fuseRequest: { _, _ in })
}

/// The libfuse low-level operations the sysfs trees answer: a fixed set, so each has
/// its metric series made once instead of being looked up per request.
public enum FuseOperation: String, Sendable, CaseIterable {
    case lookup, getattr, setattr, readlink, opendir, readdir, open, read, write, access
}
