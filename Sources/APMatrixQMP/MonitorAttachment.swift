import APMatrixModel
import APMatrixRuntime

extension QMPMonitor: GuestAttachment {
    public var location: String { socketPath }
    public func close() { stop() }

    /// Opens and starts a guest's monitor, as the runtime's edges do.
    public static func open(_ runtime: Runtime, guest: String, path: String) throws(APError) -> QMPMonitor {
        let monitor: QMPMonitor
        do { monitor = try QMPMonitor(runtime: runtime, guest: guest, socketPath: path) } catch {
            throw APError(.invalidArgument, "QMP socket \(path): \(error)")
        }
        monitor.start()
        return monitor
    }
}
