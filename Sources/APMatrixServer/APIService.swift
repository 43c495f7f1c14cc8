import APMatrixModel
import APMatrixRuntime

/// What the control API serves: one runtime, the metrics it reports to,
/// and the page's open event streams.
public final class APIService: Sendable {
    public let runtime: Runtime
    public let metrics: ServerMetrics
    let eventStreams = WebUI.Streams()
    private let metricsSubscription: Subscription

    /// `metrics` must be the one whose `instrumentation` the runtime reports to.
    public init(runtime: Runtime, metrics: ServerMetrics) {
        self.runtime = runtime
        self.metrics = metrics
        metricsSubscription = runtime.subscribe(after: nil) { [metrics] in metrics.observe($0) }
    }

    deinit { metricsSubscription.cancel() }
}
