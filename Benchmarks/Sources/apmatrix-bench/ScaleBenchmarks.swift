import APMatrixModel
import Glibc

/// The kernel's limits through the mount: 65,536 mdevs on a 256×256 host.
enum ScaleBenchmarks {
    static func run(mdevs: Int) throws -> [Figure] {
        let m = try Mounted(try APHost(fullHostDescription()))
        defer { m.stop() }
        let matrix = m.dir + "/devices/vfio_ap/matrix"
        let create = matrix + "/mdev_supported_types/vfio_ap-passthrough/create"
        var out: [Figure] = []
        let t0 = now()
        for n in 0..<mdevs { must(echo(create, uuid(n)), "create \(n)") }
        let total = now() - t0
        out.append(Figure(name: "create \(mdevs) mdevs through the mount (per create)", unit: "µs",
                          median: total * 1e6 / Double(mdevs), min: total * 1e6 / Double(mdevs),
                          max: total * 1e6 / Double(mdevs), runs: 1))
        out.append(Figure(name: "create \(mdevs) mdevs through the mount (all)", unit: "s",
                          median: total, min: total, max: total, runs: 1))
        // With every mdev present: one adapter per mdev for the first 256, then full assigns.
        for n in 0..<256 { must(echo(matrix + "/\(uuid(n))/assign_adapter", "\(n)"), "assign adapter") }
        var q = 0
        out.append(measure("assign_domain to an mdev among \(mdevs)", iterations: 200) {
            for _ in 0..<200 {
                must(echo(matrix + "/\(uuid(q % 256))/assign_domain", "\(q / 256)"), "assign domain")
                q += 1
            }
        })
        out.append(measure("apmask change with \(mdevs) mdevs (all queues rebound)", unit: "ms", iterations: 1) {
            let value = q % 2 == 0 ? "0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff" : "0x"
            _ = echo(m.dir + "/bus/ap/apmask", value)
            _ = echo(m.dir + "/bus/ap/aqmask", value)
            q += 1
        })
        out.append(measure("cat available_instances with \(mdevs) mdevs", iterations: 200) {
            for _ in 0..<200 { _ = cat(matrix + "/mdev_supported_types/vfio_ap-passthrough/available_instances") }
        })
        let rss = peakRSS()
        out.append(Figure(name: "peak RSS of the process (emulator + mount + benchmark)", unit: "MiB",
                          median: rss, min: rss, max: rss, runs: 1))
        return out
    }
}
