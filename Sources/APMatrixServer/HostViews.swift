import APMatrixModel
import APMatrixRuntime

/// The control API's documents, built from the host as it is: each a
/// plain function of one snapshot, so a response never mixes two states.
enum HostViews {
    static func host(_ h: APHost, _ service: APIService) -> HostDTO {
        let runtime = service.runtime, fw = h.firmware
        return HostDTO(
            profile: h.profile.rawValue, previews: h.previews.map(\.rawValue).sorted(), apxa: fw.apxa, maxAdapter: fw.maxAdapter, maxDomain: fw.maxDomain,
            facilities: fw.facilities,
            adapters: fw.adapters.keys.sorted().map { id in
                let a = fw.adapters[id]!
                return AdapterDTO(id: id, type: a.type.description, hwtype: a.type.hwtype, configured: a.configured,
                                  domains: a.domains.map { Array($0) })
            },
            usageDomains: Array(fw.usageDomains), controlDomains: Array(fw.controlDomains),
            apmask: h.bus.apmask.hexString, aqmask: h.bus.aqmask.hexString, availableInstances: h.vfio.availableInstances,
            mdevs: mdevs(h),
            guests: guests(h, runtime),
            sysfsMount: service.sysfsMount, privateRoot: service.privateRoot?.path)
    }

    /// `guest_matrix` is what sysfs shows, by the profile's own rule (the
    /// seed has none without a guest; upstream shows the shadow).
    static func mdevs(_ h: APHost) -> [MdevDTO] {
        h.vfio.mdevsInOrder.map { m in
            MdevDTO(uuid: m.uuid, matrix: MatrixDTO(m.matrix), guestMatrix: (try? h.guestMatrix(m.uuid)).map(MatrixDTO.init),
                    guest: m.guest, iommuGroup: m.iommuGroup)
        }
    }

    /// The running guests by name.
    static func guests(_ h: APHost, _ runtime: Runtime) -> [GuestDTO] {
        let now = runtime.clock.now()
        return h.guests.values.sorted { $0.name < $1.name }.map { guest(h, $0, runtime, at: now) }
    }

    /// The guest as it is now; ENOENT when none of that name runs (any more).
    static func guest(named name: String, _ runtime: Runtime) throws(APError) -> GuestDTO {
        let h = runtime.snapshot
        return guest(h, try h.guest(name), runtime, at: runtime.clock.now())
    }

    static func guest(_ h: APHost, _ g: Guest, _ runtime: Runtime, at now: Uptime) -> GuestDTO {
        let name = g.name
        let v = (try? h.guestView(name)) ?? GuestView()
        return GuestDTO(
            name: name, cpu: g.cpu.description,
            device: g.device.map { DeviceDTO(id: $0.id, mdev: $0.mdev, sysfsdev: $0.sysfsdev, enableMigration: $0.enableMigration?.rawValue,
                                             migrationEvents: $0.migrationEvents) },
            crycb: MatrixDTO(h.crycb(of: name)),
            view: GuestViewDTO(cards: v.cards.map { CardDTO(id: $0.id, type: $0.type.description, hwtype: $0.type.hwtype) },
                               usageDomains: Array(v.usageDomains), controlDomains: Array(v.controlDomains),
                               queues: v.queues),
            qmp: runtime.monitorSocket(name), sysfsMount: runtime.treeMountPoint(name),
            bus: g.hasAPBus ? GuestBusDTO(g, at: now) : nil, heldState: heldState(h, name),
            secure: g.secure ? true : nil,
            seQueues: g.hasAPSB ? h.seStates(name, at: now).map { SEQueueDTO(apqn: $0.apqn, $0.state) } : nil,
            vfioIRQs: g.device == nil ? nil : h.vfioIRQs(of: name).map {
                VfioIRQDTO(index: $0.irq.rawValue, name: $0.irq.name, wired: $0.wired)
            },
            runState: g.runState.rawValue,
            migration: MigrationDTO(status: g.migration.status.rawValue, errorDesc: g.migration.errorDesc, uri: g.migration.uri,
                                    incoming: g.migration.incoming, transferred: g.migration.transferred,
                                    capabilities: g.capabilities.map(\.rawValue).sorted(),
                                    blockedReasons: (try? h.migrationBlockers(name)) ?? []))
    }

    /// The queues holding state `guest` put into them.
    static func heldState(_ h: APHost, _ guest: String) -> [String: String]? {
        let held = h.firmware.records.filter { $0.value.holdsStateOf == guest && $0.value.heldState != nil }
        return held.isEmpty ? nil : Dictionary(uniqueKeysWithValues: held.map { ($0.key.description, $0.value.heldState!) })
    }

    /// Every hardware queue the host has or had: device, owner, resets.
    static func queues(_ h: APHost) -> [QueueDTO] {
        Set(h.bus.queues.keys).union(h.firmware.records.keys).sorted().map { apqn in
            QueueDTO(apqn: apqn,
                     driver: h.bus.queues[apqn].map { $0.driver?.rawValue ?? "none" },
                     reserved: h.bus.isReserved(apqn), owner: h.currentOwner(of: apqn).description,
                     assignedTo: h.vfio.owner(of: apqn)?.uuid, resets: h.firmware.records[apqn]?.resets ?? 0,
                     holdsStateOf: h.firmware.records[apqn]?.holdsStateOf)
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
        case let .seQueueChanged(guest, _, _, _):
            d.kind = "se"
            d.guest = guest
        case let .uevent(u):
            d.kind = "uevent"
            d.uevent = UeventDTO(action: u.action.rawValue, devpath: u.devpath, subsystem: u.subsystem, properties: u.properties)
        case let .migrationChanged(guest, _, _), let .vfioMigrationChanged(guest, _, _, _), let .runStateChanged(guest, _):
            d.kind = e.event.kind
            d.guest = guest
        }
        return d
    }

    static func check(_ h: APHost, _ runtime: Runtime) -> CheckDTO {
        CheckDTO(violations: h.checkInvariants().map(\.description), mdevs: h.vfio.mdevs.count,
                 guests: h.guests.count, queues: h.bus.queues.count, stateFile: runtime.store?.path,
                 stateIntegrity: runtime.checkStateFile())
    }
}
