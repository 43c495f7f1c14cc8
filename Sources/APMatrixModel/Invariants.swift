/// A rule the host state breaks: no sequence of kernel operations can reach it.
public struct Violation: Hashable, Sendable, CustomStringConvertible {
    /// Which invariant (`apqn-in-two-mdevs`, `state-leak`, …).
    public let rule: String
    public let detail: String

    public var description: String { "\(rule): \(detail)" }
}

extension APHost {
    /// The invariants of SPEC §5 and the device bookkeeping that every
    /// operation keeps; returns what is broken (empty when all hold).
    /// The runtime checks them after every operation in debug builds, the
    /// state file loader before it accepts a state, and `apmatrix check-state`
    /// on demand.
    public func checkInvariants() -> [Violation] {
        var out: [Violation] = []
        func check(_ ok: Bool, _ rule: String, _ detail: @autoclosure () -> String) {
            if !ok { out.append(Violation(rule: rule, detail: detail())) }
        }
        let h = firmware.hostConfiguration

        // Devices follow the firmware; bindings follow the masks.
        for (id, a) in firmware.adapters {
            check(a.type.hasDevices == (bus.cards[id] != nil), "card-devices", "card \(id) exists: \(bus.cards[id] != nil), adapter type \(a.type)")
        }
        for id in bus.cards.keys where firmware.adapters[id] == nil { check(false, "card-devices", "card \(id) has no adapter in the LPAR") }
        for a in APID(0)...APID.extendedMax {
            for q in firmware.queueDomains(of: a) where bus.queues[APQN(a, q)] == nil { check(false, "queue-devices", "queue \(APQN(a, q)) is missing") }
            for q in bus.vfioBoundDomains(of: a) {
                check(bus.queues[APQN(a, q)]?.driver == .vfioAP, "vfio-bound", "\(APQN(a, q)) counted as bound to vfio_ap but is not")
            }
        }
        for (apqn, q) in bus.queues {
            check(firmware.queueDomains(of: apqn.apid).contains(apqn.apqi), "queue-devices", "queue \(apqn) exists without firmware behind it")
            if let d = q.driver, bus.bindingsFollowMasks {
                check(d == bus.fittingDriver(apqn), "binding", "queue \(apqn) is bound to \(d.rawValue) but apmask/aqmask give it to \(bus.fittingDriver(apqn)?.rawValue ?? "none")")
            }
            check((q.driver == .vfioAP) == bus.isBoundToVfio(apqn), "vfio-bound", "\(apqn) binding and vfio_ap's list disagree")
        }

        let overrides = bus.queues.values.reduce(0) { $0 + ($1.driverOverride == nil ? 0 : 1) }
        check(bus.driverOverrideCount >= overrides, "driver-override",
              "\(overrides) queues have a driver_override but the count is \(bus.driverOverrideCount)")
        check(overrides == 0 || (bus.masksAreDefault && !bus.bindingsFollowMasks), "driver-override",
              "a driver_override exists while apmask/aqmask are not all ones, or bindings are said to follow the masks")

        // mdevs: instances, identities, assignments.
        check(vfio.availableInstances >= 0, "available-instances", "\(vfio.mdevs.count) mdevs exceed maxMdevs \(vfio.maxMdevs)")
        // Linear in the mdevs (a state of 65,536 is checked at every start):
        // each mdev against what the mdevs created before it hold.
        let ordered = vfio.mdevsInOrder
        var serials: [Int: MdevUUID] = [:], groups: [Int: MdevUUID] = [:]
        var taken = [Bitmap256<APQI>](repeating: Bitmap256(), count: 256)
        for (i, m) in ordered.enumerated() {
            check(m.serial < vfio.nextSerial, "mdev-order", "mdev \(m.uuid) has serial \(m.serial), next is \(vfio.nextSerial)")
            if let o = serials.updateValue(m.uuid, forKey: m.serial) {
                check(false, "mdev-order", "mdevs \(o) and \(m.uuid) share serial \(m.serial)")
            }
            if let o = groups.updateValue(m.uuid, forKey: m.iommuGroup) {
                check(false, "iommu-group", "mdevs \(o) and \(m.uuid) share iommu group \(m.iommuGroup)")
            }
            if let a = m.matrix.apm.first(where: { taken[$0.value].intersects(m.matrix.aqm) }),
               let q = (taken[a.value] & m.matrix.aqm).first,
               let o = ordered[..<i].first(where: { $0.matrix.contains(APQN(a, q)) }) {
                check(false, "apqn-in-two-mdevs", "queue \(APQN(a, q)) is assigned to mdevs \(o.uuid) and \(m.uuid)")
            }
            for a in m.matrix.apm { taken[a.value] = taken[a.value] | m.matrix.aqm }
            if bus.bindingsFollowMasks, let r = m.matrix.apqns.first(where: bus.isReserved) {
                check(false, "assigned-reserved", "queue \(r) is assigned to mdev \(m.uuid) and reserved for the host")
            }
            check(m.iommuGroup >= 0, "iommu-group", "mdev \(m.uuid) has iommu group \(m.iommuGroup)")
            let s = m.shadow
            check((m.guest != nil && rules.deviceMigration) == (m.migrationState != nil), "migration-state",
                  "mdev \(m.uuid) has migration state \(m.migrationState?.rawValue ?? "none") while \(m.guest == nil ? "closed" : "open")\(rules.deviceMigration ? "" : " without the migration series")")
            if let g = m.guest {
                check(guests[g]?.device?.mdev == m.uuid, "guest-link", "mdev \(m.uuid) names guest \(g), whose device is another")
            } else if !rules.shadowWithoutGuest {
                check(s == Matrix(), "shadow", "mdev \(m.uuid) has a shadow CRYCB but no guest")
                continue
            }
            let who = m.guest.map { "guest \($0): CRYCB" } ?? "mdev \(m.uuid): shadow"
            check(s.apm.isSubset(of: m.matrix.apm) && s.aqm.isSubset(of: m.matrix.aqm) && s.adm.isSubset(of: m.matrix.adm),
                  "crycb-subset", "\(who) \(s.summary) is not within mdev \(m.uuid)'s assignment \(m.matrix.summary)")
            check(s.apm.isSubset(of: h.apm) && s.aqm.isSubset(of: h.aqm), "crycb-subset",
                  "\(who) \(s.summary) is not within the host AP configuration")
            if rules.shadowBothOrNeither {
                check(s.apm.isEmpty == s.aqm.isEmpty, "crycb-shape", "\(who) \(s.summary) has adapters or domains without the other")
            }
            for q in s.apqns where !bus.isBoundToVfio(q) {
                check(false, "crycb-bound", "\(who) has queue \(q), which is not bound to vfio_ap")
            }
        }
        for (name, g) in guests {
            check(g.name == name, "guest-link", "guest \(name) is stored as \(g.name)")
            guard let d = g.device else { continue }
            check(vfio.mdevs[d.mdev]?.guest == name, "guest-link", "guest \(name)'s device \(d.id) names mdev \(d.mdev), which is not attached to it")
            check(g.cpu.ap, "guest-link", "guest \(name) has a vfio-ap device with ap=off")
        }
        for (name, g) in guests {
            check((g.runState == .inmigrate) == (g.migration.incoming && [.none, .setup, .active].contains(g.migration.status)),
                  "run-state", "guest \(name) is \(g.runState.rawValue) with \(g.migration.incoming ? "incoming " : "")migration \(g.migration.status.rawValue)")
            check(g.runState != .postmigrate || (g.device == nil && g.migration.status == .completed), "run-state",
                  "guest \(name) is postmigrate with a device or a migration that did not complete")
            check(g.runState != .finishMigrate || [.preSwitchover, .device, .cancelling].contains(g.migration.status), "run-state",
                  "guest \(name) is stopped for switchover while its migration is \(g.migration.status.rawValue)")
            check(!g.secure || !g.migration.status.isRunning, "run-state", "Secure Execution guest \(name) is migrating")
        }
        for (name, g) in guests {
            let devices = Set(g.bus.seQueues.keys)
            check(devices == (g.hasAPSB ? Set(g.bus.queues) : []), "se-devices",
                  "guest \(name)'s SE queue devices \(devices.sorted()) are not its queue devices\(g.hasAPSB ? "" : " (it has no APSB)")")
        }

        // Hand-over: a queue holds only its current owner's state.
        for (apqn, r) in firmware.records {
            check(r.resets >= 0, "records", "queue \(apqn) has \(r.resets) resets")
            check(r.heldState == nil || r.holdsStateOf != nil, "state-leak", "queue \(apqn) holds state without an owner")
            if let g = r.holdsStateOf {
                check(currentOwner(of: apqn) == .guest(g), "state-leak",
                      "queue \(apqn) holds state of guest \(g) but belongs to \(currentOwner(of: apqn))")
            }
            if let b = r.seBinding {
                check(currentOwner(of: apqn) == .guest(b.guest) && guests[b.guest]?.hasAPSB == true, "se-binding",
                      "queue \(apqn) is bound to guest \(b.guest), which is not an SE guest with it in its CRYCB (\(currentOwner(of: apqn)))")
                let type = firmware.adapters[apqn.apid]?.type
                check(type?.supportsSEBind == true && (b.association == nil || type?.supportsSEAssociation == true), "se-binding",
                      "queue \(apqn) of a \(type.map(String.init(describing:)) ?? "missing") adapter is bound or associated")
            }
        }
        return out
    }
}
