import APMatrixModel
import APMatrixRuntime

/// What the control API serves: one runtime, the metrics it reports to,
/// who may change the host, and the page's open event streams.
public final class APIService: Sendable {
    public let runtime: Runtime
    public let metrics: ServerMetrics
    public let access: WriteAccess
    let eventStreams = EventStream.Registry()
    private let metricsSubscription: Subscription

    /// `metrics` must be the one whose `instrumentation` the runtime reports to.
    public init(runtime: Runtime, metrics: ServerMetrics, access: WriteAccess = WriteAccess()) {
        self.runtime = runtime
        self.metrics = metrics
        self.access = access
        metricsSubscription = runtime.subscribe(after: nil) { [metrics] in metrics.observe($0) }
    }

    deinit { metricsSubscription.cancel() }
}
