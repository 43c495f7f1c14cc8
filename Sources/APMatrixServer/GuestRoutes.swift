import APMatrixModel
import APMatrixRuntime
import Hummingbird

extension ControlAPI {
    /// Guests (SPEC §4): start and stop, their own trees, QMP-like hot plug,
    /// libvirt hostdev XML, queue state, migration. Each answers with the
    /// guest as it is after the request.
    static func addGuestRoutes(_ r: Routes, _ runtime: Runtime) {
        r.on(.guests) { _, _ in HostViews.guests(runtime.snapshot, runtime) }
        r.on(.startGuest) { request, _ in
            let g = try await StartGuestRequest.decode(request)
            let device = try g.device.map { d throws(APError) in try VfioAPDevice(qemuDevice: d) }
            let secure = try ConfidentialGuestSupport.isSecure(secure: g.secure ?? false, object: g.object, machine: g.machine)
            let incoming = try g.incoming.map { u throws(APError) in try IncomingOption(parsing: u) }
            try runtime.startGuest(GuestStart(name: g.name, cpu: g.cpu, device: device, qmp: g.qmp, sysfsMount: g.sysfsMount,
                                              secure: secure, incoming: incoming))
            return EditedResponse(status: .created, response: try HostViews.guest(named: g.name, runtime))
        }
        r.on(.guest) { _, context in try HostViews.guest(named: try context.guestName(), runtime) }
        r.on(.stopGuest) { _, context in
            try runtime.stopGuest(try context.guestName())
            return Empty()
        }
        r.on(.mountGuestTree) { request, context in
            let name = try context.guestName()
            let dir = try await GuestMountRequest.decode(request).dir
            try runtime.mountGuestTree(name, directory: dir)
            return EditedResponse(status: .created, response: try HostViews.guest(named: name, runtime))
        }
        r.on(.unmountGuestTree) { _, context in
            let name = try context.guestName()
            try runtime.unmountGuestTree(name)
            return try HostViews.guest(named: name, runtime)
        }
        r.on(.putHeldState) { request, context in
            let name = try context.guestName()
            let s = try await HeldStateRequest.decode(request)
            try runtime.perform("guest_state") { (h: inout APHost) throws(APError) in try h.putHeldState(name, s.queue, s.state) }
            return try HostViews.guest(named: name, runtime)
        }
        r.on(.plug) { request, context in
            let name = try context.guestName()
            let p = try await PlugRequest.decode(request)
            let device = try VfioAPDevice(sysfsdev: p.sysfsdev, id: p.id)
            try runtime.perform("device_plug") { (h: inout APHost) throws(APError) in try h.plugDevice(name, device) }
            return try HostViews.guest(named: name, runtime)
        }
        r.on(.unplug) { _, context in
            let name = try context.guestName()
            let id = try context.parameter("id", .deviceID)
            try runtime.perform("device_unplug") { (h: inout APHost) throws(APError) in _ = try h.unplugDevice(name, id: id) }
            return try HostViews.guest(named: name, runtime)
        }
        // `virsh attach-device NAME FILE` / `detach-device` with a vfio-ap hostdev.
        r.on(.attachHostdev) { request, context in
            let name = try context.guestName()
            let uuid = try HostdevXML.parse(try await request.bytes())
            let device = try VfioAPDevice(sysfsdev: "/sys/bus/mdev/devices/\(uuid)", id: "hostdev0")
            try runtime.perform("device_plug") { (h: inout APHost) throws(APError) in try h.plugDevice(name, device) }
            return try HostViews.guest(named: name, runtime)
        }
        r.on(.detachHostdev) { request, context in
            let name = try context.guestName()
            let uuid = try HostdevXML.parse(try await request.bytes())
            try runtime.perform("device_unplug") { (h: inout APHost) throws(APError) in
                guard let d = try h.guest(name).device, d.mdev == uuid else {
                    throw APError(.noSuchFileOrDirectory, "guest \(name) has no hostdev for mdev \(uuid)")
                }
                _ = try h.unplugDevice(name, id: d.id)
            }
            return try HostViews.guest(named: name, runtime)
        }
        r.on(.migrate) { request, context in
            let name = try context.guestName()
            try await Migration.migrate(runtime, name, try await MigrateRequest.decode(request))
            return Empty()
        }
    }
}

extension APIContext {
    func guestName() throws(APIError) -> String { try parameter("name", .guestName) }
}
