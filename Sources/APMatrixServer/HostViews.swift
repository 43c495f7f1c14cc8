import APMatrixModel
import APMatrixRuntime

/// The control API's documents, built from the host as it is: each a
/// plain function of one snapshot, so a response never mixes two states.
enum HostViews {
    static func host(_ h: APHost, _ runtime: Runtime) -> HostDTO {
        HostDTO(
            profile: h.profile.rawValue, apxa: h.apxa, maxAdapter: h.qciMaxAdapter, maxDomain: h.qciMaxDomain,
            facilities: h.facilities,
            adapters: h.adapters.keys.sorted().map { id in
                let a = h.adapters[id]!
                return AdapterDTO(id: id, type: a.type.description, hwtype: a.type.hwtype, configured: a.configured,
                                  domains: a.domains.map { Array($0) })
            },
            usageDomains: Array(h.usageDomains), controlDomains: Array(h.controlDomains),
            apmask: h.apmask.hexString, aqmask: h.aqmask.hexString, availableInstances: h.availableInstances,
            mdevs: mdevs(h),
            guests: guests(h, runtime))
    }

    /// `guest_matrix` is what sysfs shows, by the profile's own rule (the
    /// seed has none without a guest; upstream shows the shadow).
    static func mdevs(_ h: APHost) -> [MdevDTO] {
        h.mdevsInOrder.map { m in
            MdevDTO(uuid: m.uuid, matrix: MatrixDTO(m.matrix), guestMatrix: (try? h.guestMatrix(m.uuid)).map(MatrixDTO.init),
                    guest: m.guest, iommuGroup: m.iommuGroup)
        }
    }

    /// The running guests by name.
    static func guests(_ h: APHost, _ runtime: Runtime) -> [GuestDTO] {
        h.guests.values.sorted { $0.name < $1.name }.map { guest(h, $0, runtime) }
    }

    /// The guest as it is now; ENOENT when none of that name runs (any more).
    static func guest(named name: String, _ runtime: Runtime) throws(APError) -> GuestDTO {
        let h = runtime.snapshot
        return guest(h, try h.guest(name), runtime)
    }

    static func guest(_ h: APHost, _ g: Guest, _ runtime: Runtime) -> GuestDTO {
        let name = g.name
        let v = (try? h.guestView(name)) ?? GuestView()
        return GuestDTO(
            name: name, cpu: g.cpu.description,
            device: g.device.map { DeviceDTO(id: $0.id, mdev: $0.mdev, sysfsdev: $0.sysfsdev) },
            crycb: MatrixDTO(h.crycb(of: name)),
            view: GuestViewDTO(cards: v.cards.map { CardDTO(id: $0.id, type: $0.type.description, hwtype: $0.type.hwtype) },
                               usageDomains: Array(v.usageDomains), controlDomains: Array(v.controlDomains),
                               queues: v.queues.map(\.description)),
            qmp: runtime.monitorSocket(name), sysfsMount: runtime.treeMountPoint(name),
            bus: g.cpu.ap ? GuestBusDTO(g.bus) : nil, heldState: heldState(h, name))
    }

    /// The queues holding state `guest` put into them.
    static func heldState(_ h: APHost, _ guest: String) -> [String: String]? {
        let held = h.records.filter { $0.value.holdsStateOf == guest && $0.value.guestState != nil }
        return held.isEmpty ? nil : Dictionary(uniqueKeysWithValues: held.map { ($0.key.description, $0.value.guestState!) })
    }

    /// Every hardware queue the host has or had: device, owner, resets.
    static func queues(_ h: APHost) -> [QueueDTO] {
        Set(h.queues.keys).union(h.records.keys).sorted().map { apqn in
            QueueDTO(apqn: apqn.description,
                     driver: h.queues[apqn].map { $0.driver?.rawValue ?? "none" },
                     reserved: h.isReserved(apqn), owner: h.currentOwner(of: apqn).description,
                     assignedTo: h.owner(of: apqn)?.uuid, resets: h.records[apqn]?.resets ?? 0,
                     holdsStateOf: h.records[apqn]?.holdsStateOf)
        }
    }

    static func event(_ e: LogEntry) -> EventDTO {
        var d = EventDTO(sequence: e.sequence, seconds: e.seconds, kind: "note", line: e.event.line, dmesg: e.dmesgLine)
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

    static func check(_ h: APHost, _ runtime: Runtime) -> CheckDTO {
        CheckDTO(violations: h.checkInvariants().map(\.description), mdevs: h.mdevs.count,
                 guests: h.guests.count, queues: h.queues.count, stateFile: runtime.store?.path)
    }
}
