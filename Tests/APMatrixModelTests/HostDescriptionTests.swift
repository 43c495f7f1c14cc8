import APMatrixModel
import APMatrixTesting
import Testing

/// SPEC §1: what makes a host description bad, and the defaults.
@Suite struct HostDescriptionTests {
    let cex8c = AdapterType("CEX8C")!

    func invalidField(_ d: HostDescription) -> String? {
        do {
            try d.validate()
            return nil
        } catch {
            return error.field
        }
    }

    @Test func defaults() {
        let d = HostDescription(usageDomains: ids([1]), adapters: [])
        #expect(d.maxAdapter == 255 && d.maxDomain == 255 && d.maxMdevs == 65536)
        #expect(d.controlDomains == ids([1]))
        #expect(d.apmask == .all && d.aqmask == .all)
        let legacy = HostDescription(apxa: false, usageDomains: ids([1]), adapters: [])
        #expect(legacy.maxAdapter == 63 && legacy.maxDomain == 15)
    }

    @Test func badDescriptionsNameTheField() {
        #expect(invalidField(HostDescription(apxa: false, maxAdapter: 64, usageDomains: ids([1]), adapters: [])) == "maxAdapter")
        #expect(invalidField(HostDescription(apxa: false, usageDomains: ids([16]), adapters: [])) == "domains")
        #expect(invalidField(HostDescription(usageDomains: ids([1]), controlDomains: ids([1]), maxMdevs: 0, adapters: [])) == "maxMdevs")
        #expect(invalidField(HostDescription(usageDomains: ids([1]), maxMdevs: 65537, adapters: [])) == "maxMdevs")
        #expect(invalidField(HostDescription(facilities: Facilities(qci: false), usageDomains: ids([1]), adapters: [])) == "facilities.qci")
        #expect(invalidField(HostDescription(apxa: false, usageDomains: ids([1]),
                                             adapters: [AdapterDescription(id: 64, type: cex8c)])) == "adapters[0].id")
        #expect(invalidField(HostDescription(usageDomains: ids([1]),
                                             adapters: [AdapterDescription(id: 5, type: cex8c), AdapterDescription(id: 5, type: cex8c)])) == "adapters[1].id")
        #expect(invalidField(HostDescription(usageDomains: ids([1, 2]),
                                             adapters: [AdapterDescription(id: 5, type: cex8c, domains: ids([3]))])) == "adapters[0].domains")
        #expect(invalidField(HostDescription(maxDomain: 15, usageDomains: ids([1]), controlDomains: ids([16]), adapters: [])) == "controlDomains")
    }

    @Test func embeddedDefaultAndSeedExample() throws {
        let d = try APHost(.embeddedDefault)
        #expect(d.firmware.hostConfiguration.apm == ids(Array(0...7)))
        #expect(d.firmware.hostConfiguration.aqm == Bitmap256.through(84) && d.firmware.hostConfiguration.adm == Bitmap256.through(84))
        #expect(d.bus.apmask == .all && d.bus.aqmask == .all)
        #expect(d.bus.queues.count == 8 * 85 && d.bound(to: .vfioAP).isEmpty)
        let s = try APHost(.seedExample)
        #expect(s.firmware.hostConfiguration.apm == ids([4, 5, 6, 7]))
        #expect(s.firmware.hostConfiguration.aqm == ids(Array(0...15) + [0x47, 0xab, 0xff]))
        #expect(s.firmware.hostConfiguration.adm == .all)
    }

    @Test func typesAndDevices() {
        #expect(AdapterType("CEX3A")?.hwtype == 8 && AdapterType("CEX3C")?.hwtype == 9)
        #expect(AdapterType("CEX4A")?.hwtype == 10 && AdapterType("CEX8P")?.hwtype == 14)
        #expect(AdapterType("CEX3P") == nil && AdapterType("CEX9C") == nil && AdapterType("CEX8X") == nil)
        #expect(AdapterType("CEX3C")?.hasDevices == false && AdapterType("CEX4C")?.hasDevices == true)
    }
}
