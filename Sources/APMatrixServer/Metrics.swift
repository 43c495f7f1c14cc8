import APMatrixRuntime
import APMatrixModel
import Prometheus
import Synchronization

/// The daemon's Prometheus metrics (`GET /metrics`). Counters are fed by the
/// runtime's instrumentation and event log; gauges are read from a snapshot
/// at each scrape. One registry per daemon, no global metrics system, so two
/// daemons in one process (the tests) count apart.
public final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()

    /// FUSE latency buckets: a sysfs request is served from memory, so most fall in the first few.
    static let fuseBuckets: [Duration] = [
        .microseconds(10), .microseconds(25), .microseconds(50), .microseconds(100), .microseconds(250),
        .microseconds(500), .milliseconds(1), .milliseconds(5), .milliseconds(25), .milliseconds(100), .seconds(1),
    ]

    static func name(_ metric: String, _ unit: String = "", _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "apmatrix", metricName: metric, unitName: unit, helpText: help)
    }

    static var operations: MetricNameDescriptor { name("operations", "total", "Model operations by kind and result (ok or the errno)") }
    static var fuseRequests: MetricNameDescriptor { name("fuse_request_duration", "seconds", "Latency of FUSE requests by libfuse operation") }
    static var hotplug: MetricNameDescriptor { name("hotplug", "total", "Changes of a running guest's CRYCB that plug or unplug ids") }
    static var mdevs: MetricNameDescriptor { name("mdevs", "", "Matrix mediated devices") }
    static var mdevsInUse: MetricNameDescriptor { name("mdevs_in_use", "", "mdevs a guest uses") }
    static var guests: MetricNameDescriptor { name("guests", "", "Running guests") }
    static var queues: MetricNameDescriptor { name("queues", "", "Queue devices by driver (none: unbound)") }
    static var available: MetricNameDescriptor { name("available_instances", "", "mdevs that can still be created") }

    /// One latency series per FUSE operation, made once: looking a series
    /// up in the registry on every request cost more than recording to it.
    let fuseSeries: [DurationHistogram]
    /// Operation counters by kind and result, made on first use and kept.
    let operationSeries = Mutex<[OperationKey: Counter]>([:])

    struct OperationKey: Hashable {
        let kind: String
        let result: String
    }

    public init() {
        fuseSeries = FuseOperation.allCases.map { [registry] op in
            registry.makeDurationHistogram(descriptor: Self.fuseRequests, labels: [("op", op.rawValue)], buckets: Self.fuseBuckets)
        }
    }

    public var instrumentation: Instrumentation {
        Instrumentation(
            operation: { [self] kind, error in
                let key = OperationKey(kind: kind, result: error?.errno.symbol ?? "ok")
                let counter = operationSeries.withLock { series in
                    if let c = series[key] { return c }
                    let c = registry.makeCounter(descriptor: Self.operations, labels: [("kind", key.kind), ("result", key.result)])
                    series[key] = c
                    return c
                }
                counter.increment()
            },
            fuseRequest: { [fuseSeries] op, nanoseconds in
                fuseSeries[FuseOperation.allCases.firstIndex(of: op)!].recordNanoseconds(nanoseconds)
            })
    }

    /// Counts hot plugs and unplugs from the event log: a CRYCB change that
    /// adds ids plugs, one that removes ids unplugs (one change can do both).
    func observe(_ entries: [LogEntry]) {
        for e in entries {
            guard case let .crycbChanged(_, before, after, _) = e.event else { continue }
            func grew(_ from: Matrix, _ to: Matrix) -> Bool {
                !to.apm.isSubset(of: from.apm) || !to.aqm.isSubset(of: from.aqm) || !to.adm.isSubset(of: from.adm)
            }
            if grew(before, after) { registry.makeCounter(descriptor: Self.hotplug, labels: [("direction", "plug")]).increment() }
            if grew(after, before) { registry.makeCounter(descriptor: Self.hotplug, labels: [("direction", "unplug")]).increment() }
        }
    }

    /// The Prometheus text exposition, gauges taken from `host`.
    func render(_ host: APHost) -> [UInt8] {
        registry.makeGauge(descriptor: Self.mdevs).set(to: Double(host.vfio.mdevs.count))
        registry.makeGauge(descriptor: Self.mdevsInUse).set(to: Double(host.vfio.mdevs.values.filter { $0.guest != nil }.count))
        registry.makeGauge(descriptor: Self.guests).set(to: Double(host.guests.count))
        registry.makeGauge(descriptor: Self.available).set(to: Double(host.vfio.availableInstances))
        for driver in ["cex4queue", "vfio_ap", "none"] {
            let n = host.bus.queues.values.filter { ($0.driver?.rawValue ?? "none") == driver }.count
            registry.makeGauge(descriptor: Self.queues, labels: [("driver", driver)]).set(to: Double(n))
        }
        return registry.emitToBuffer()
    }
}
