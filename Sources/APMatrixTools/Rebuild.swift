import APMatrixModel

// How PlanHost reads the host out of a snapshot: the LPAR (what a host file
// says) and the order in which the mdevs come back.

extension PlanHost {
    /// The name a guest found using `uuid` runs under (sysfs shows none).
    public static func guestName(_ uuid: MdevUUID) -> String { "guest-of-\(uuid)" }

    /// The LPAR a snapshot shows, with the masks it has now as boot values.
    /// Adapters in the LPAR without a card are pre-CEX4; a card's type is
    /// its `type`, else its `hwtype` with the mode its `ap_functions` give;
    /// an adapter with queues for fewer than the LPAR's usage domains is
    /// restricted to those. `notes` gets what had to be assumed.
    public static func description(of s: Snapshot, notes: inout [String]) -> HostDescription {
        let h = s.hostConfiguration
        var adapters: [AdapterDescription] = []
        for id in h.apm | Bitmap256(s.cards.keys) {
            guard let card = s.cards[id] else {
                adapters.append(AdapterDescription(id: id, type: AdapterType("CEX3C")!))
                notes.append("adapter \(id) is in the LPAR without a card device: taken as a CEX3C (a CEX3A looks the same in sysfs)")
                continue
            }
            let type = card.type.flatMap { AdapterType($0) } ?? typeFromHardware(card)
            if type == nil { notes.append("\(id.cardName): type unknown, taken as CEX8C") }
            let configured = card.config ?? h.apm.contains(id)
            let own = Bitmap256(s.queues.keys.filter { $0.apid == id }.map(\.apqi)) & h.aqm
            adapters.append(AdapterDescription(id: id, type: type ?? AdapterType("CEX8C")!, configured: configured,
                                               domains: configured && own != h.aqm ? own : nil))
        }
        let maxMdevs = min(65536, max(1, (s.availableInstances ?? 65536 - s.mdevs.count) + s.mdevs.count))
        var facilityNotes: [String] = []
        return HostDescription(apxa: s.apxa, maxAdapter: s.maxAdapter, maxDomain: s.maxDomain,
                               facilities: facilities(of: s, notes: &facilityNotes), usageDomains: h.aqm,
                               controlDomains: h.adm, apmask: s.apmask, aqmask: s.aqmask, maxMdevs: maxMdevs, adapters: adapters)
    }

    /// `CEX<hwtype - 6>` in the mode `ap_functions` names (COPRO, ACCEL, EP11).
    static func typeFromHardware(_ card: CardInfo) -> AdapterType? {
        guard let hw = card.hwtype, (10...14).contains(hw) else { return nil }
        let f = card.functions ?? 0
        let mode = f & 0x0400_0000 != 0 ? "P" : f & 0x0800_0000 != 0 && f & 0x1000_0000 == 0 ? "A" : "C"
        return AdapterType("CEX\(hw - 6)\(mode)")
    }

    /// What sysfs shows of the firmware facilities: QCI by `features`, adapter
    /// interruptions by `ap_interrupts` or a zcrypt queue's `interrupt`. The
    /// AP facilities test (apft) leaves no trace, and neither does the rest
    /// without those files: taken as present.
    static func facilities(of s: Snapshot, notes: inout [String]) -> Facilities {
        var f = Facilities()
        if s.features == "-" { notes.append("bus/ap/features says the LPAR has no QCI, which apmatrix does not emulate: taken as present") }
        let zcrypt = s.queues.values.filter { $0.driver == "cex4queue" }.compactMap(\.interruptsEnabled)
        if let irq = s.apInterrupts ?? zcrypt.first { f.apqi = irq; f.aiv = irq }
        var unseen = ["apft"]
        if s.apInterrupts == nil && zcrypt.isEmpty { unseen += ["apqi", "aiv"] }
        notes.append(unseen.count == 1 ? "facility \(unseen[0]) leaves no trace in sysfs: taken as present"
                                       : "facilities \(unseen.joined(separator: ", ")) leave no trace in sysfs: taken as present")
        return f
    }

    /// Creates the mdevs in the order of their iommu groups: the kernel gives
    /// each new mdev the lowest free group, so that order is the creation
    /// order as far as sysfs can tell, and a group left free by a removed
    /// mdev is held by a placeholder while the later ones are created.
    static func createMdevs(_ mdevs: [MdevInfo], on h: inout APHost) throws(APError) {
        let ordered = mdevs.sorted { ($0.iommuGroup ?? Int.max, $0.uuid) < ($1.iommuGroup ?? Int.max, $1.uuid) }
        var placeholders: [MdevUUID] = []
        for m in ordered {
            while let group = m.iommuGroup, h.vfio.lowestFreeIOMMUGroup < group,
                  h.vfio.availableInstances > 1 {
                let p = placeholder(placeholders.count, avoiding: mdevs)
                try h.createMdev(p)
                placeholders.append(p)
            }
            try h.createMdev(m.uuid)
        }
        for p in placeholders { try h.removeMdev(p) }
    }

    /// A UUID none of `mdevs` has, for the `n`th placeholder.
    static func placeholder(_ n: Int, avoiding mdevs: [MdevInfo]) -> MdevUUID {
        var k = n
        while true {
            let hex = String(k, radix: 16)
            let uuid = MdevUUID(parsing: "00000000-0000-4000-8000-" + String(repeating: "0", count: 12 - hex.count) + hex)!
            if !mdevs.contains(where: { $0.uuid == uuid }) { return uuid }
            k += 1 << 20
        }
    }
}
