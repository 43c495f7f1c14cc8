import APMatrixModel
import SystemPackage

/// The sysfs store functions: each parses the bytes of one `write()` with the
/// kernel's parser, in the kernel's order (a parse error is EINVAL or ERANGE
/// before anything else is checked), and calls one typed model operation,
/// which names the kernel function it mirrors.
public enum Store {
    // MARK: the AP bus

    public static func mask(_ axis: MaskAxis, _ input: [UInt8], in host: inout APHost) throws(APError) {
        switch axis {
        case .apmask: try host.setAPMask(try parseMask(axis, input, current: host.bus.apmask))
        case .aqmask: try host.setAQMask(try parseMask(axis, input, current: host.bus.aqmask))
        }
    }

    /// `ap_parse_bitmap_str` on the current mask: both syntaxes, EINVAL for anything else.
    static func parseMask<ID>(_ axis: MaskAxis, _ input: [UInt8], current: Bitmap256<ID>) throws(APError) -> Bitmap256<ID> {
        switch KernelParse.apMask(input, current: current) {
        case .success(let m): return m
        case .failure(let e):
            throw APError(e, "\(axis.rawValue): not a mask: write 0x and up to 64 hex digits, or +/- terms such as +5,-0x47,+1-16")
        }
    }

    /// `ap_domain` (`%i`).
    public static func apDomain(_ input: [UInt8], in host: inout APHost) throws(APError) {
        guard let v = KernelParse.scanInt(input, autoBase: true), let d = APQI(exactly: v) else { throw host.apDomainRefused() }
        try host.setAPDomain(d)
    }

    /// `config_time` (`sscanf("%d")`, 5–120).
    public static func configTime(_ input: [UInt8], in host: inout APHost, at now: Uptime) throws(APError) {
        guard let v = KernelParse.scanInt(input, autoBase: false) else { throw BusTimers.configTimeRefused }
        try host.setConfigTime(v, at: now)
    }

    /// `poll_thread`.
    public static func pollThread(_ input: [UInt8], in host: inout APHost) throws(APError) {
        host.setPollThread(try pollThreadValue(input, host.pollParsing))
    }

    /// `poll_timeout`.
    public static func pollTimeout(_ input: [UInt8], in host: inout APHost) throws(APError) {
        try host.setPollTimeout(try pollTimeoutValue(input, host.pollParsing, refused: host.pollTimeoutRefused))
    }

    /// A write to `scans` (whatever it says): the bus scans now.
    public static func scans(in host: inout APHost, at now: Uptime) {
        host.forceRescan(at: now)
    }

    /// `poll_thread` as the profile's kernel reads it: 5.x `sscanf("%d")`
    /// (non-zero starts the thread), 6.x `kstrtobool`; EINVAL otherwise.
    static func pollThreadValue(_ input: [UInt8], _ parsing: PollParsing) throws(APError) -> Bool {
        let on: Bool?
        switch parsing {
        case .sscanf: on = KernelParse.scanInt(input, autoBase: false).map { $0 != 0 }
        case .kstrto: on = KernelParse.kstrtobool(input)
        }
        guard let on else { throw APError(.invalidArgument, "poll_thread: write 1 to start the poll thread or 0 to stop it") }
        return on
    }

    /// `poll_timeout` as the profile's kernel reads it: 5.x `sscanf("%llu")`
    /// (no number: EINVAL), 6.x `kstrtoul(buf, 0)`, whose EINVAL or ERANGE
    /// is returned as it is; the range is the model's to check.
    static func pollTimeoutValue(_ input: [UInt8], _ parsing: PollParsing, refused: APError) throws(APError) -> UInt64 {
        switch parsing {
        case .sscanf:
            guard let v = KernelParse.scanUnsigned(input) else { throw refused }
            return v
        case .kstrto:
            switch KernelParse.kstrtoul(input) {
            case .success(let v): return v
            case .failure(let e): throw APError(e, refused.message)
            }
        }
    }

    /// A queue's `driver_override` (`driver_set_override`): a write of a
    /// page less one byte or more is EINVAL; the text runs to the first NUL
    /// and is cut at the first newline; nothing left clears the override.
    public static func driverOverride(_ apqn: APQN, _ input: [UInt8], in host: inout APHost) throws(APError) {
        guard input.count < SysfsTree.attributeSize - 1 else {
            throw APError(.invalidArgument, "\(apqn)/driver_override: a driver name is shorter than \(SysfsTree.attributeSize - 2) bytes")
        }
        let name = KernelParse.cString(input).prefix { $0 != UInt8(ascii: "\n") }
        try host.setDriverOverride(apqn, name.isEmpty ? nil : String(decoding: name, as: UTF8.self))
    }

    /// A device's `uevent`: an action, optionally a UUID and `KEY=value` pairs.
    public static func uevent(_ device: KernelDevice, _ input: [UInt8], in host: inout APHost) throws(APError) {
        try host.synthesizeUevent(device, KernelParse.syntheticUevent(input))
    }

    /// A device name written to `bus/ap/drivers/<driver>/unbind`.
    public static func unbind(driver: String, _ input: [UInt8], in host: inout APHost) throws(APError) {
        let name = KernelParse.deviceName(input)
        if driver == "cex4card" {
            guard let id = APID(cardName: name) else { throw APHost.notBound(name, driver) }
            try host.unbindCard(id)
        } else {
            guard let d = QueueDriver(rawValue: driver), let apqn = APQN(sysfsName: name) else {
                throw APHost.notBound(name, driver)
            }
            try host.unbindQueue(apqn, from: d)
        }
    }

    /// A device name written to `bus/ap/drivers/<driver>/bind`.
    public static func bind(driver: String, _ input: [UInt8], in host: inout APHost) throws(APError) {
        let name = KernelParse.deviceName(input)
        if driver == "cex4card" {
            guard let id = APID(cardName: name) else { throw APHost.noCardDevice(name) }
            try host.bindCard(id)
        } else {
            guard let d = QueueDriver(rawValue: driver), let apqn = APQN(sysfsName: name) else {
                throw APHost.noQueueDevice(name)
            }
            try host.bindQueue(apqn, to: d)
        }
    }

    public static func cardConfig(_ id: APID, _ input: [UInt8], in host: inout APHost) throws(APError) {
        host.setCardConfig(id, configured: try boolean(input, "\(id.cardName)/config"))
    }

    public static func cardOnline(_ id: APID, _ input: [UInt8], in host: inout APHost) throws(APError) {
        try host.setCardOnline(id, try boolean(input, "\(id.cardName)/online"))
    }

    public static func queueOnline(_ apqn: APQN, _ input: [UInt8], in host: inout APHost) throws(APError) {
        host.setQueueOnline(apqn, try boolean(input, "\(apqn)/online"))
    }

    /// A `0|1` attribute as the kernel reads it (`sscanf("%d")`).
    static func boolean(_ input: [UInt8], _ what: String) throws(APError) -> Bool {
        guard let v = KernelParse.scanInt(input, autoBase: false), v == 0 || v == 1 else {
            throw APError(.invalidArgument, "\(what): write 0 or 1")
        }
        return v == 1
    }

    // MARK: vfio_ap

    /// `mdev_supported_types/vfio_ap-passthrough/create`: the UUID rules (EINVAL) first.
    public static func create(_ input: [UInt8], in host: inout APHost) throws(APError) {
        switch KernelParse.mdevUUID(input) {
        case .success(let uuid): try host.createMdev(uuid)
        case .failure(let e):
            throw APError(e, "create: write a UUID such as 62177883-f1bb-47f0-914d-32a22e3a8804 (36 characters, optional newline)")
        }
    }

    /// An mdev's `remove`: kstrtoul (any error EINVAL); 0 does nothing.
    public static func remove(_ uuid: MdevUUID, _ input: [UInt8], in host: inout APHost) throws(APError) {
        guard case .success(let v) = KernelParse.kstrtoul(input) else {
            throw APError(.invalidArgument, "remove: write 1 to remove the mdev")
        }
        if v != 0 { try host.removeMdev(uuid) }
    }

    /// `assign_adapter`, `assign_domain`, `assign_control_domain`.
    public static func assign(_ target: AssignTarget, mdev uuid: MdevUUID, _ input: [UInt8], in host: inout APHost) throws(APError) {
        try host.assign(try assignment(target, input, assign: true, host), to: uuid)
    }

    /// `unassign_adapter`, `unassign_domain`, `unassign_control_domain`.
    public static func unassign(_ target: AssignTarget, mdev uuid: MdevUUID, _ input: [UInt8], in host: inout APHost) throws(APError) {
        try host.unassign(try assignment(target, input, assign: false, host), from: uuid)
    }

    /// The id written to an assignment attribute: kstrtoul base 0 (EINVAL,
    /// ERANGE), then at most vfio_ap's maximum (ENODEV).
    static func assignment(_ target: AssignTarget, _ input: [UInt8], assign: Bool, _ host: APHost) throws(APError) -> Assignment {
        let attr = (assign ? "assign_" : "unassign_") + target.rawValue
        let value: UInt64
        switch KernelParse.kstrtoul(input) {
        case .success(let v): value = v
        case .failure(let e) where e == .outOfRange:
            throw APError(e, "\(attr): the number does not fit in 64 bits")
        case .failure(let e):
            throw APError(e, "\(attr): write one number: decimal (5), hex (0x5) or octal (05)")
        }
        if let e = host.aboveMaximum(value, target, assign: assign) { throw e }
        let byte = UInt8(value)
        switch target {
        case .adapter: return .adapter(APID(rawValue: byte))
        case .domain: return .domain(APQI(rawValue: byte))
        case .controlDomain: return .controlDomain(APQI(rawValue: byte))
        }
    }

    /// `ap_config` (upstream): the first 201 bytes, three comma- or
    /// newline-separated masks (APM, AQM, ADM) in the absolute mask syntax;
    /// EINVAL for a missing or bad field.
    public static func apConfig(mdev uuid: MdevUUID, _ input: [UInt8], in host: inout APHost) throws(APError) {
        let fields = KernelParse.cString(Array(input.prefix(201)))
            .split(omittingEmptySubsequences: false) { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\n") }
        guard fields.count >= 3 else {
            throw APError(.invalidArgument, "ap_config: write three masks, APM,AQM,ADM (0x and up to 64 hex digits each)")
        }
        func mask<ID>(_ i: Int) throws(APError) -> Bitmap256<ID> {
            guard case .success(let m) = KernelParse.hex2bitmap(fields[i]) as Result<Bitmap256<ID>, Errno> else {
                throw APError(.invalidArgument, "ap_config: field \(i + 1) '\(String(decoding: fields[i], as: UTF8.self))' is not a mask")
            }
            return m
        }
        try host.setAPConfig(Matrix(apm: try mask(0), aqm: try mask(1), adm: try mask(2)), for: uuid)
    }

    // MARK: a guest's AP bus

    /// A write to the guest's `scans` (whatever it says): the bus scans now.
    public static func guestScans(_ guest: String, in host: inout APHost, at now: Uptime) throws(APError) {
        try host.scanGuestBus(guest, cause: "write to scans", at: now)
    }

    /// The guest's `config_time` (`%d`).
    public static func guestConfigTime(_ guest: String, _ input: [UInt8], in host: inout APHost, at now: Uptime) throws(APError) {
        guard let v = KernelParse.scanInt(input, autoBase: false) else { throw BusTimers.configTimeRefused }
        try host.setGuestConfigTime(guest, seconds: v, at: now)
    }

    /// The guest's `poll_thread`.
    public static func guestPollThread(_ guest: String, _ input: [UInt8], in host: inout APHost) throws(APError) {
        try host.setGuestPollThread(guest, try pollThreadValue(input, host.pollParsing))
    }

    /// The guest's `poll_timeout`.
    public static func guestPollTimeout(_ guest: String, _ input: [UInt8], in host: inout APHost) throws(APError) {
        try host.setGuestPollTimeout(guest, try pollTimeoutValue(input, host.pollParsing, refused: host.pollTimeoutRefused))
    }

    /// The guest's `ap_domain` (`%i`).
    public static func guestAPDomain(_ guest: String, _ input: [UInt8], in host: inout APHost) throws(APError) {
        guard let v = KernelParse.scanInt(input, autoBase: true), let d = APQI(exactly: v) else {
            throw host.guestAPDomainRefused(try host.guest(guest).cpu)
        }
        try host.setGuestAPDomain(guest, d)
    }

    /// A guest card's (queue nil) or queue's zcrypt `online`.
    public static func guestOnline(_ guest: String, card: APID, queue: APQN?, _ input: [UInt8], in host: inout APHost) throws(APError) {
        try host.setGuestOnline(guest, card: card, queue: queue, try boolean(input, "\(queue?.description ?? card.cardName)/online"))
    }
}
