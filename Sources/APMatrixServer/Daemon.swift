import APMatrixEmulator
import APMatrixModel
import APMatrixQMP
import Dispatch
import Synchronization

/// Everything one `serve` owns besides the mount: the emulator, the QMP
/// monitors of its guests, and the operations the control API offers.
/// Each operation is one `Emulator.perform`, so API, FUSE and QMP requests
/// are serialized by the same lock.
public final class Daemon: Sendable {
    public let emulator: Emulator
    /// Where the host tree is mounted (shown in messages and `sysfsdev` hints).
    public let mountPoint: String
    private let monitors = Mutex<[String: QMPMonitor]>([:])
    /// What `/metrics` shows: this daemon's operations, FUSE requests and state.
    public let metrics = ServerMetrics()
    /// The web page's open event streams, ended at shutdown.
    let eventStreams = WebUI.Streams()
    /// Mounts a guest's own tree: (guest, directory) -> the canonical mount point and how to unmount it.
    public typealias GuestTreeMounter = @Sendable (_ guest: String, _ dir: String) throws(APError)
        -> (mountpoint: String, stop: @Sendable () -> Void)
    private let guestTreeMounter: GuestTreeMounter?
    /// The guest trees this daemon mounted, by guest (SPEC §6: the daemon owns and unmounts them).
    private let guestMounts = Mutex<[String: (mountpoint: String, stop: @Sendable () -> Void)]>([:])
    private let guestClock = Mutex<GuestClock?>(nil)

    public init(emulator: Emulator, mountPoint: String, guestTreeMounter: GuestTreeMounter? = nil) {
        self.emulator = emulator
        self.mountPoint = mountPoint
        emulator.instrument(metrics.instrumentation)
        _ = emulator.addObserver { [metrics] in metrics.observe($0) }
        self.guestTreeMounter = guestTreeMounter
    }

    // MARK: reads

    public func hostDTO() -> HostDTO {
        let h = emulator.snapshot
        let fw = h.firmware, now = emulator.now
        return HostDTO(
            profile: h.profile.rawValue, apxa: fw.apxa, maxAdapter: fw.maxAdapter, maxDomain: fw.maxDomain,
            facilities: fw.facilities,
            adapters: fw.adapters.keys.sorted().map { id in
                let a = fw.adapters[id]!
                return AdapterDTO(id: id, type: a.type.description, hwtype: a.type.hwtype, configured: a.configured,
                                  domains: a.domains.map { Array($0) })
            },
            usageDomains: Array(fw.usageDomains), controlDomains: Array(fw.controlDomains),
            apmask: h.bus.apmask.hexString, aqmask: h.bus.aqmask.hexString, availableInstances: h.vfio.availableInstances,
            mdevs: h.vfio.mdevsInOrder.map(Self.mdevDTO),
            guests: h.guests.keys.sorted().map {
                Self.guestDTO(h, $0, qmp: socketPath($0), sysfsMount: guestMountPoint($0), at: now)
            })
    }

    static func mdevDTO(_ m: Mdev) -> MdevDTO {
        MdevDTO(uuid: m.uuid, matrix: MatrixDTO(m.matrix), guestMatrix: m.guest == nil ? nil : MatrixDTO(m.shadow),
                guest: m.guest, iommuGroup: m.iommuGroup)
    }

    static func guestDTO(_ h: APHost, _ name: String, qmp: String?, sysfsMount: String?, at now: Uptime) -> GuestDTO {
        let g = h.guests[name]!
        let v = (try? h.guestView(name)) ?? GuestView()
        return GuestDTO(
            name: name, cpu: g.cpu.description,
            device: g.device.map { DeviceDTO(id: $0.id, mdev: $0.mdev, sysfsdev: $0.sysfsdev) },
            crycb: MatrixDTO(h.crycb(of: name)),
            view: GuestViewDTO(cards: v.cards.map { CardDTO(id: $0.id, type: $0.type.description, hwtype: $0.type.hwtype) },
                               usageDomains: Array(v.usageDomains), controlDomains: Array(v.controlDomains),
                               queues: v.queues),
            qmp: qmp, sysfsMount: sysfsMount, bus: g.cpu.ap ? GuestBusDTO(g, at: now) : nil, heldState: heldState(h, name))
    }

    public func guestDTO(_ name: String) throws(APError) -> GuestDTO {
        let h = emulator.snapshot
        _ = try h.guest(name)
        return Self.guestDTO(h, name, qmp: socketPath(name), sysfsMount: guestMountPoint(name), at: emulator.now)
    }

    /// The QMP socket of a guest's monitor, if it has one.
    func socketPath(_ guest: String) -> String? { monitors.withLock { $0[guest]?.socketPath } }

    /// Every hardware queue the host has or had: device, owner, resets.
    public func queueDTOs() -> [QueueDTO] {
        let h = emulator.snapshot
        let apqns = Set(h.bus.queues.keys).union(h.firmware.records.keys).sorted()
        return apqns.map { apqn in
            let device = h.bus.queues[apqn]
            return QueueDTO(apqn: apqn,
                            driver: device.map { $0.driver?.rawValue ?? "none" },
                            reserved: h.bus.isReserved(apqn), owner: h.currentOwner(of: apqn).description,
                            assignedTo: h.vfio.owner(of: apqn)?.uuid, resets: h.firmware.records[apqn]?.resets ?? 0,
                            holdsStateOf: h.firmware.records[apqn]?.holdsStateOf)
        }
    }

    public func events(after sequence: Int) -> [EventDTO] {
        emulator.log(after: sequence).map(Self.eventDTO)
    }

    static func eventDTO(_ e: LogEntry) -> EventDTO {
        var d = EventDTO(sequence: e.sequence, seconds: e.seconds, kind: "note", line: e.event.line,
                         dmesg: e.dmesgLine)
        switch e.event {
        case .kernel: d.kind = "kernel"
        case .note: d.kind = "note"
        case let .crycbChanged(guest, before, after, _):
            d.kind = "crycb"
            d.guest = guest
            d.before = MatrixDTO(before)
            d.after = MatrixDTO(after)
        case .queueReset: d.kind = "reset"
        case let .deviceChanged(guest, _, _):
            d.kind = "device"
            d.guest = guest
        case let .guestChanged(guest, _):
            d.kind = "guest"
            d.guest = guest
        case let .guestBusChanged(guest, _, _, _, _):
            d.kind = "bus"
            d.guest = guest
        }
        return d
    }

    // MARK: guests

    /// Parses a QEMU `-device` value for vfio-ap: `vfio-ap,sysfsdev=PATH,id=ID`.
    public static func parseDevice(_ text: String) throws(APError) -> VfioAPDevice {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        guard parts.first == "vfio-ap" || parts.first == "driver=vfio-ap" else {
            throw APError(.invalidArgument, "-device \(text): only vfio-ap devices are emulated (vfio-ap,sysfsdev=PATH,id=ID)")
        }
        var sysfsdev: String?, id: String?
        for p in parts.dropFirst() {
            let kv = p.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2 else { throw APError(.invalidArgument, "-device \(text): '\(p)' is not property=value") }
            switch kv[0] {
            case "sysfsdev": sysfsdev = kv[1]
            case "id": id = kv[1]
            default: throw APError(.invalidArgument, "-device \(text): vfio-ap has no property '\(kv[0])'")
            }
        }
        guard let sysfsdev else { throw APError(.invalidArgument, "-device \(text): sysfsdev=PATH of the mdev is required") }
        guard let id, !id.isEmpty else { throw APError(.invalidArgument, "-device \(text): id=ID is required, so that device_del can name it") }
        return try device(sysfsdev: sysfsdev, id: id)
    }

    /// A vfio-ap device for an mdev path (the mount's, /sys/…, or bus/mdev/devices/<uuid>).
    public static func device(sysfsdev: String, id: String) throws(APError) -> VfioAPDevice {
        guard let uuid = SysfsDev.uuid(sysfsdev) else {
            throw APError(.noSuchFileOrDirectory,
                          "vfio-ap sysfsdev \(sysfsdev): not an mdev path (…/devices/vfio_ap/matrix/UUID or …/bus/mdev/devices/UUID)")
        }
        return VfioAPDevice(id: id, mdev: uuid, sysfsdev: sysfsdev)
    }

    public func startGuest(_ r: StartGuestRequest) throws(APError) -> GuestDTO {
        let device = try r.device.map { d throws(APError) in try Self.parseDevice(d) }
        let now = emulator.now
        try emulator.perform(kind: "guest_start") { (h: inout APHost) throws(APError) in
            let cpu = try CPUModel(parsing: r.cpu ?? "host", facilities: h.firmware.facilities)
            try h.startGuest(r.name, cpu: cpu, device: device, at: now)
        }
        do {
            if let path = r.qmp { try startMonitor(r.name, path) }
            if let dir = r.sysfsMount { _ = try mountGuestTree(r.name, dir: dir) }
        } catch {
            try? stopGuest(r.name)
            throw error
        }
        return try guestDTO(r.name)
    }

    func startMonitor(_ guest: String, _ path: String) throws(APError) {
        let monitor: QMPMonitor
        do {
            monitor = try QMPMonitor(emulator: emulator, guest: guest, socketPath: path) { [daemon = self] in
                // Called on the monitor's own connection thread: stop it from elsewhere.
                DispatchQueue.global().async {
                    daemon.stopMonitor(guest)
                    daemon.dropGuestTree(guest)
                }
            }
        } catch {
            throw APError(.invalidArgument, "QMP socket \(path): \(error)")
        }
        monitor.start()
        monitors.withLock { $0[guest] = monitor }
        do { try emulator.setQMPSocket(guest, path) } catch {
            stopMonitor(guest)
            throw error
        }
    }

    /// Reopens the QMP monitors of the guests a state file brought back.
    /// Returns what could not be reopened (those guests run without a monitor).
    public func reopenMonitors() -> [String] {
        var failures: [String] = []
        for (guest, path) in emulator.qmpSockets.sorted(by: { $0.key < $1.key }) {
            do throws(APError) { try startMonitor(guest, path) } catch { failures.append("guest \(guest): \(error.message)") }
        }
        return failures
    }

    func stopMonitor(_ guest: String) {
        let m = monitors.withLock { $0.removeValue(forKey: guest) }
        m?.stop()
    }

    public func stopGuest(_ name: String) throws(APError) {
        try emulator.perform(kind: "guest_stop") { (h: inout APHost) throws(APError) in try h.stopGuest(name) }
        stopMonitor(name)
        dropGuestTree(name)
    }

    // MARK: guest trees

    func guestMountPoint(_ guest: String) -> String? { guestMounts.withLock { $0[guest]?.mountpoint } }

    /// Mounts the guest's own `/sys` (its AP bus as it has scanned it) at
    /// `dir`; one tree per guest, unmounted when the guest stops or the daemon exits.
    public func mountGuestTree(_ name: String, dir: String) throws(APError) -> GuestDTO {
        _ = try emulator.snapshot.guest(name)
        guard let mounter = guestTreeMounter else {
            throw APError(.notSupported, "this daemon was started without FUSE: it cannot mount guest trees")
        }
        guard dir.hasPrefix("/") else {
            throw APError(.invalidArgument, "sysfs mount \(dir): give an absolute path (the daemon has its own working directory)")
        }
        if let existing = guestMountPoint(name) {
            throw APError(.resourceBusy, "guest \(name)'s tree is already mounted at \(existing); unmount it first")
        }
        let mount = try mounter(name, dir)
        let kept = guestMounts.withLock { m -> Bool in
            guard m[name] == nil else { return false }
            m[name] = mount
            return true
        }
        guard kept else {
            mount.stop()
            throw APError(.resourceBusy, "guest \(name)'s tree was mounted elsewhere meanwhile")
        }
        // The guest may have stopped while the tree was being mounted.
        guard emulator.snapshot.guests[name] != nil else {
            dropGuestTree(name)
            throw APError(.noSuchFileOrDirectory, "guest \(name) stopped while its tree was being mounted")
        }
        return try guestDTO(name)
    }

    /// Unmounts the guest's tree; ENOENT when it has none.
    public func unmountGuestTree(_ name: String) throws(APError) -> GuestDTO {
        _ = try emulator.snapshot.guest(name)
        guard guestMountPoint(name) != nil else {
            throw APError(.noSuchFileOrDirectory, "guest \(name) has no mounted tree")
        }
        dropGuestTree(name)
        return try guestDTO(name)
    }

    func dropGuestTree(_ name: String) {
        guestMounts.withLock { $0.removeValue(forKey: name) }?.stop()
    }

    /// Lets time pass for the guests' AP bus config timers (`config_time`),
    /// checked every `interval` seconds.
    public func startGuestClock(interval: Double = 1) {
        let timer = DispatchSource.makeTimerSource(queue: .global())
        let last = Mutex(emulator.now)
        timer.setEventHandler { [emulator] in
            let now = emulator.now
            let start = last.withLock { l in defer { l = now }; return l }
            try? emulator.perform { (h: inout APHost) in h.advanceGuestClocks(from: start, to: now) }
        }
        timer.schedule(deadline: .now() + interval, repeating: interval)
        timer.resume()
        guestClock.withLock { $0 = GuestClock(timer: timer) }
    }

    public func plug(_ name: String, _ r: PlugRequest) throws(APError) -> GuestDTO {
        let d = try Self.device(sysfsdev: r.sysfsdev, id: r.id)
        try emulator.perform(kind: "device_plug") { (h: inout APHost) throws(APError) in try h.plugDevice(name, d) }
        return try guestDTO(name)
    }

    public func unplug(_ name: String, id: String) throws(APError) -> GuestDTO {
        try emulator.perform(kind: "device_unplug") { (h: inout APHost) throws(APError) in _ = try h.unplugDevice(name, id: id) }
        return try guestDTO(name)
    }

    /// `virsh attach-device NAME FILE` with a vfio-ap hostdev.
    public func attachHostdev(_ name: String, xml: [UInt8]) throws(APError) -> GuestDTO {
        let uuid = try HostdevXML.parse(xml)
        return try plug(name, PlugRequest(sysfsdev: "/sys/bus/mdev/devices/\(uuid)", id: "hostdev0"))
    }

    /// `virsh detach-device NAME FILE`: the guest's device for that mdev.
    public func detachHostdev(_ name: String, xml: [UInt8]) throws(APError) -> GuestDTO {
        let uuid = try HostdevXML.parse(xml)
        let g = try emulator.snapshot.guest(name)
        guard let d = g.device, d.mdev == uuid else {
            throw APError(.noSuchFileOrDirectory, "guest \(name) has no hostdev for mdev \(uuid)")
        }
        return try unplug(name, id: d.id)
    }

    /// Moves a guest to another emulated host (SPEC §4 "Live migration"):
    /// refused while a vfio-ap device is attached, as the seed says; the
    /// target starts the guest with the same CPU model (checked against its
    /// own facilities), then the guest stops here.
    public func migrate(_ name: String, _ r: MigrateRequest) async throws(APError) {
        let g = try emulator.snapshot.guest(name)
        if let d = g.device {
            throw APError(.resourceBusy,
                          "guest \(name) uses mdev \(d.mdev) (device \(d.id)): live migration is not supported while an AP device is attached; hot unplug it first (QMP device_del \(d.id), or guest detach-device), migrate, then plug an mdev of the target host")
        }
        let target = APIClient(server: r.to)
        let _: GuestDTO = try await target.post("\(ControlAPI.prefix)/guests",
                                                StartGuestRequest(name: name, cpu: g.cpu.description, qmp: r.qmp))
        try stopGuest(name)
    }

    // MARK: firmware

    public func addAdapter(_ r: AdapterRequest) throws(APError) {
        guard let type = AdapterType(r.type) else {
            throw APError(.invalidArgument, "type \(r.type): one of \(AdapterType.supportedNames.joined(separator: ", "))")
        }
        let domains: Bitmap256<APQI>?
        do { domains = try r.domains.map { d throws(IdList.ParseError) in try IdList.parse(d) } } catch {
            throw APError(.invalidArgument, "domains: \(error)")
        }
        try emulator.perform(kind: "adapter_add") { (h: inout APHost) throws(APError) in try h.addAdapter(r.id, type: type, domains: domains) }
    }

    public func removeAdapter(_ id: APID) throws(APError) {
        try emulator.perform(kind: "adapter_remove") { (h: inout APHost) throws(APError) in try h.removeAdapter(id) }
    }

    public func addDomain(_ id: APQI) throws(APError) {
        try emulator.perform(kind: "domain_add") { (h: inout APHost) throws(APError) in try h.addDomain(id) }
    }

    public func removeDomain(_ id: APQI) throws(APError) {
        try emulator.perform(kind: "domain_remove") { (h: inout APHost) throws(APError) in try h.removeDomain(id) }
    }

    public func addControlDomain(_ id: APQI) throws(APError) {
        try emulator.perform(kind: "control_domain_add") { (h: inout APHost) throws(APError) in try h.addControlDomain(id) }
    }

    public func removeControlDomain(_ id: APQI) throws(APError) {
        try emulator.perform(kind: "control_domain_remove") { (h: inout APHost) throws(APError) in try h.removeControlDomain(id) }
    }

    // MARK: lifetime

    /// Stops every QMP monitor and the guest clock, and unmounts every guest tree (the daemon is exiting).
    public func shutdown() {
        guestClock.withLock { $0?.timer.cancel(); $0 = nil }
        let all = monitors.withLock { m -> [String] in Array(m.keys) }
        for g in all { stopMonitor(g) }
        for g in guestMounts.withLock({ Array($0.keys) }) { dropGuestTree(g) }
    }
}

/// The guests' config-timer tick. A dispatch source may be cancelled from any thread.
final class GuestClock: @unchecked Sendable {
    let timer: DispatchSourceTimer
    init(timer: DispatchSourceTimer) { self.timer = timer }
}
