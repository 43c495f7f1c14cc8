import APMatrixModel
import APMatrixSysfs
import APMatrixTesting
import Testing

/// `SysfsTree.changedEntryNames` is what the FUSE mount invalidates in the
/// kernel's caches after each operation, so it must be complete: after any
/// operation, every entry of the tree that is gone, or whose kind, mode or
/// link target changed, lies below (or is) an entry of a name it lists.
/// Random sequences of sysfs writes and firmware changes under each profile,
/// the whole tree compared before and after every step.
@Suite struct TreeChangeTests {
    /// Every entry of the host's tree (symlinks not followed): path → kind.
    func walk(_ h: APHost) -> [String: String] {
        var out: [String: String] = [:]
        func visit(_ c: [Substring]) {
            for (name, node) in SysfsTree.hostView.entries(c, h) ?? [:] {
                let path = (c + [Substring(name)]).joined(separator: "/")
                switch node {
                case .directory:
                    out[path] = "dir"
                    visit(c + [Substring(name)])
                case .attribute(let a): out[path] = "attr \(a.mode)"
                case .symlink(let target): out[path] = "link \(target)"
                }
            }
        }
        visit([])
        return out
    }

    static let uuids = [uuidA, uuidB, uuidC]

    /// One random step: a sysfs write as a client makes it, or a firmware change.
    func step(_ h: inout APHost, _ rng: inout SplitMix64) -> String {
        let a = Int(rng.next() % 8), q = Int(rng.next() % 8), u = rng.pick(Self.uuids)
        let apqn = String(format: "%02x.%04x", a, q)
        switch rng.next() % 12 {
        case 0:
            let (axis, text) = (rng.pick(["apmask", "aqmask"]), rng.pick(["+\(a)", "-\(a)", "-0-255", "+0-7", "0x0"]))
            h.echo(text, "/bus/ap/" + axis)
            return "\(axis) \(text)"
        case 1, 2:
            h.echo(u, "/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create")
            return "create \(u)"
        case 3:
            h.echo("1", "/devices/vfio_ap/matrix/\(u)/remove")
            return "remove \(u)"
        case 4, 5:
            let t = rng.pick(["adapter", "domain"]), id = t == "adapter" ? a : q
            h.echo("\(id)", "/devices/vfio_ap/matrix/\(u)/assign_\(t)")
            return "assign_\(t) \(u) \(id)"
        case 6:
            let driver = rng.pick(["vfio_ap", "cex4queue", "cex4card"]), op = rng.pick(["bind", "unbind"])
            let name = driver == "cex4card" ? String(format: "card%02x", a) : apqn
            h.echo(name, "/bus/ap/drivers/\(driver)/\(op)")
            return "\(op) \(driver) \(name)"
        case 7:
            let v = rng.pick(["0", "1"])
            h.echo(v, String(format: "/devices/ap/card%02x/config", a))
            return "card\(a) config \(v)"
        case 8:
            let v = rng.pick(["", "vfio_ap", "cex4queue"])
            h.echo(v + "\n", "/devices/ap/card\(apqn.prefix(2))/\(apqn)/driver_override")
            return "\(apqn) driver_override \(v)"
        case 9:
            if rng.next() % 2 == 0 {
                _ = try? h.addAdapter(APID(rawValue: UInt8(a)), type: AdapterType(rng.pick(["CEX8C", "CEX7A", "CEX3C"]))!)
                return "add adapter \(a)"
            }
            _ = try? h.removeAdapter(APID(rawValue: UInt8(a)))
            return "remove adapter \(a)"
        case 10:
            if rng.next() % 2 == 0 {
                _ = try? h.addDomain(APQI(rawValue: UInt8(q)))
                return "add domain \(q)"
            }
            _ = try? h.removeDomain(APQI(rawValue: UInt8(q)))
            return "remove domain \(q)"
        default:
            if h.guests["g1"] == nil {
                _ = try? h.start("g1", mdev: u)
                return "start g1 on \(u)"
            }
            _ = try? h.stopGuest("g1")
            return "stop g1"
        }
    }

    @Test(arguments: Profile.allCases, 0..<4)
    func everyEntryThatChangedIsNamed(_ profile: Profile, _ seed: Int) throws {
        var h = try APHost(.seedExample, profile: profile)
        var rng = SplitMix64(seed: UInt64(seed) &* 0x9E37_79B9 &+ UInt64(profile == .seed ? 1 : 2))
        var before = walk(h)
        var changedEntries = 0, namedSteps = 0
        _ = h.takeChanges()
        for n in 0..<150 {
            let what = step(&h, &rng)
            if h.hasPendingConfigChanges { h.handleConfigChanges(at: .boot) }
            let names = SysfsTree.changedEntryNames(h.takeChanges(), in: h)
            let after = walk(h)
            let changed = before.filter { after[$0.key] != $0.value }.keys
            for path in changed {
                #expect(path.split(separator: "/").contains { names.contains(String($0)) },
                        "\(profile) seed \(seed) step \(n) (\(what)): \(path) changed (\(before[path]!) → \(after[path] ?? "gone")) but no name of it is in \(names.sorted())")
            }
            changedEntries += changed.count
            if !names.isEmpty { namedSteps += 1 }
            before = after
        }
        // A sequence in which nothing went away would have checked nothing.
        #expect(changedEntries >= 20, "only \(changedEntries) entries changed in 150 steps")
        #expect(namedSteps >= 5, "only \(namedSteps) steps named entries")
    }

    /// The names themselves, for one operation of each kind (kernel-reference §2, §7).
    @Test func theNamesOfEachKindOfChange() throws {
        var h = try APHost(.seedExample)
        #expect(h.echo("-5", "/bus/ap/apmask") == nil)
        #expect(SysfsTree.changedEntryNames(h.takeChanges(), in: h)
                == ["05.0000", "05.0001", "05.0002", "05.0003", "05.0004", "05.0005", "05.0006", "05.0007", "05.0008",
                    "05.0009", "05.000a", "05.000b", "05.000c", "05.000d", "05.000e", "05.000f", "05.0047", "05.00ab", "05.00ff"])
        #expect(h.echo(uuidA, "/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create") == nil)
        #expect(SysfsTree.changedEntryNames(h.takeChanges(), in: h).isEmpty)
        #expect(h.echo("5", "/devices/vfio_ap/matrix/\(uuidA)/assign_adapter") == nil)
        #expect(SysfsTree.changedEntryNames(h.takeChanges(), in: h).isEmpty)
        #expect(h.echo("1", "/devices/vfio_ap/matrix/\(uuidA)/remove") == nil)
        #expect(SysfsTree.changedEntryNames(h.takeChanges(), in: h) == [uuidA, "0"])
        #expect(h.echo("card06", "/bus/ap/drivers/cex4card/unbind") == nil)
        #expect(SysfsTree.changedEntryNames(h.takeChanges(), in: h) == ["card06"])
    }
}
