import APMatrixEmulator
public struct QMPError: Error, CustomStringConvertible { public let description: String }
public final class QMPMonitor: Sendable {
    public init(emulator: Emulator, guest: String, socketPath: String, onQuit: @escaping @Sendable () -> Void = {}) throws(QMPError) {}
    public func start() {}
    public func stop() {}
}
