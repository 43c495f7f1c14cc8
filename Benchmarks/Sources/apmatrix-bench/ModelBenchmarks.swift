import APMatrixModel
import APMatrixSysfs

/// The model alone: no FUSE, no lock.
enum ModelBenchmarks {
    static func run() throws -> [Figure] {
        var out: [Figure] = []
        for mdevCount in [1, 16, 255] {
            // mdev 0 is the one assigned to; mdevs 1… each own one adapter × domains 0-127,
            // so every validation of mdev 0 is checked against all of them.
            var host = try APHost(fullHostDescription())
            for n in 0..<mdevCount {
                try host.createMdev(mdevUUID(n))
                try host.assign(.adapter(APID(rawValue: UInt8(n))), to: mdevUUID(n))
                if n > 0 { for q: APQI in 0...127 { try host.assign(.domain(q), to: mdevUUID(n)) } }
            }
            let target = mdevUUID(0)
            let iterations = 1_000_000
            out.append(measure("validate an assignment (refusal check), \(mdevCount) mdev(s)", unit: "ns",
                               iterations: iterations) {
                var refused = 0
                for i in 0..<iterations {
                    let q = APQI(rawValue: UInt8(128 + (i & 127)))
                    if host.refusal(of: Matrix(apm: Bitmap256([0]), aqm: Bitmap256([q])), for: target) != nil { refused += 1 }
                }
                precondition(refused == 0)
            })
            let writes = 100_000
            out.append(measure("assign_domain + unassign_domain through the sysfs view, \(mdevCount) mdev(s)", unit: "ns",
                               iterations: writes * 2) {
                for i in 0..<writes {
                    let q = bytes("\(128 + (i & 127))")
                    try! SysfsTree.write("/devices/vfio_ap/matrix/\(target)/assign_domain", q, in: &host)
                    try! SysfsTree.write("/devices/vfio_ap/matrix/\(target)/unassign_domain", q, in: &host)
                    _ = host.takeEvents()
                }
            })
        }

        let host = try APHost(fullHostDescription())
        let full = Matrix(apm: .all, aqm: .all, adm: .all)
        let h = host.firmware.hostConfiguration
        out.append(measure("filter a full 256×256 mdev (seed rule)", unit: "ns", iterations: 100_000) {
            for _ in 0..<100_000 {
                precondition(Profile.seed.filter(full, host: h, boundDomains: host.bus.vfioBoundDomains(of:)).shadow.apm.count == 256)
            }
        })
        out.append(measure("filter a full 256×256 mdev (upstream rule)", unit: "ns", iterations: 100_000) {
            for _ in 0..<100_000 {
                precondition(Profile.upstream.filter(full, host: h, boundDomains: host.bus.vfioBoundDomains(of:)).shadow.apm.count == 256)
            }
        })

        // apmask all ones: toggling aqmask moves every queue between vfio_ap and cex4queue.
        var maskHost = try APHost(fullHostDescription())
        try maskHost.setAPMask(.all)
        out.append(measure("mask change rebinding all 65,536 queues", unit: "ms", repetitions: 6, iterations: 1) {
            let value = maskHost.bus.aqmask.isEmpty ? "0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff" : "0x"
            try! Store.mask(.aqmask, bytes(value), in: &maskHost)
            _ = maskHost.takeEvents()
        })
        return out
    }
}
