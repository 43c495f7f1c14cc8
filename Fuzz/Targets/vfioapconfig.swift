import APMatrixModel

// The vfio-ap device state a migration destination writes to its device in
// RESUMING (`struct vfio_ap_config`, the series' v4): the input arrives in
// writes whose sizes the first byte picks; a configuration that completes
// is applied to a destination host, which either refuses it and stays as it
// was, or takes it and keeps every invariant. Whatever decodes encodes back
// to a configuration that decodes the same.
private let destination: APHost = {
    let d = HostDescription(apxa: true, usageDomains: Bitmap256([APQI(4), APQI(0x47)]), controlDomains: Bitmap256([APQI(4)]),
                            apmask: Bitmap256(), aqmask: Bitmap256(),
                            adapters: [AdapterDescription(id: 5, type: AdapterType("CEX8C")!),
                                       AdapterDescription(id: 6, type: AdapterType("CEX7A")!)])
    var h = try! APHost(d, profile: .upstream, previews: [.vfioAPMigration])
    let uuid = MdevUUID(parsing: "62177883-f1bb-47f0-914d-32a22e3a8804")!
    try! h.createMdev(uuid)
    let cpu = try! CPUModel(parsing: "host", facilities: h.firmware.facilities)
    try! h.startGuest("g1", cpu: cpu, device: VfioAPDevice(id: "hostdev0", mdev: uuid, sysfsdev: "/sys/bus/mdev/devices/\(uuid)"),
                      incoming: true, at: 1)
    try! h.beginDeviceLoad("g1")
    _ = h.takeEvents()
    _ = h.takeChanges()
    return h
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let first = bytes.first else { return 0 }
    let piece = max(1, Int(first))
    var file = VfioAPResumingFile()
    var rest = bytes.dropFirst()
    while !rest.isEmpty {
        let chunk = rest.prefix(piece)
        rest = rest.dropFirst(chunk.count)
        let written: VfioAPConfig?
        do { written = try file.write(chunk) } catch { return 0 }
        guard let config = written else { continue }
        precondition((try? VfioAPConfig(decoding: config.encoded)) == config)
        var h = destination
        do {
            try h.resumeDeviceState("g1", config)
            precondition(h.checkInvariants().isEmpty)
        } catch {
            _ = h.takeEvents()
            precondition(h == destination)
        }
        return 0
    }
    return 0
}
