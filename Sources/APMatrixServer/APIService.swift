import APMatrixModel
import APMatrixRuntime

/// What the control API serves: one runtime, the metrics it reports to,
/// who may change the host, where the host's tree and private files are,
/// and the page's open event streams.
public final class APIService: Sendable {
    public let runtime: Runtime
    public let metrics: ServerMetrics
    public let access: WriteAccess
    /// Where `serve` mounted the host's tree.
    public let sysfsMount: String?
    public let privateRoot: PrivateRoot?
    let eventStreams = EventStream.Registry()
    private let metricsSubscription: Subscription

    /// `metrics` must be the one whose `instrumentation` the runtime reports to.
    public init(runtime: Runtime, metrics: ServerMetrics, access: WriteAccess = WriteAccess(),
                sysfsMount: String? = nil, privateRoot: PrivateRoot? = nil) {
        self.runtime = runtime
        self.metrics = metrics
        self.access = access
        self.sysfsMount = sysfsMount
        self.privateRoot = privateRoot
        metricsSubscription = runtime.subscribe(after: nil) { [metrics] in metrics.observe($0) }
    }

    deinit { metricsSubscription.cancel() }
}
