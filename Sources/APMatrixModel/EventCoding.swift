// Events in the state file and the log's rows: stdlib Codable only.

/// Events keep their kind, so a resumed log shows and publishes them as before.
extension Event: Codable {
    enum CodingKeys: String, CodingKey {
        case kind, text, guest, before, after, cause, apqn, device, plugged, running, scan, added, removed, uevent, change, index
        case status, state, announce
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        switch try c.decode(String.self, forKey: .kind) {
        case "kernel": self = .kernel(try c.decode(String.self, forKey: .text))
        case "note": self = .note(try c.decode(String.self, forKey: .text))
        case "crycb":
            self = .crycbChanged(guest: try c.decode(String.self, forKey: .guest),
                                 before: try c.decode(Matrix.self, forKey: .before),
                                 after: try c.decode(Matrix.self, forKey: .after),
                                 cause: try c.decode(String.self, forKey: .cause))
        case "reset":
            self = .queueReset(try c.decode(APQN.self, forKey: .apqn), cause: try c.decode(String.self, forKey: .cause))
        case "device":
            self = .deviceChanged(guest: try c.decode(String.self, forKey: .guest),
                                  device: try c.decode(VfioAPDevice.self, forKey: .device),
                                  plugged: try c.decode(Bool.self, forKey: .plugged))
        case "guest":
            self = .guestChanged(guest: try c.decode(String.self, forKey: .guest),
                                 running: try c.decode(Bool.self, forKey: .running))
        case "bus":
            self = .guestBusChanged(guest: try c.decode(String.self, forKey: .guest),
                                    scan: try c.decode(Int.self, forKey: .scan),
                                    added: try c.decode([String].self, forKey: .added),
                                    removed: try c.decode([String].self, forKey: .removed),
                                    cause: try c.decode(String.self, forKey: .cause))
        case "uevent": self = .uevent(try c.decode(Uevent.self, forKey: .uevent))
        case "se":
            let index = try c.decodeIfPresent(Int.self, forKey: .index)
            guard let change = SEChange(name: try c.decode(String.self, forKey: .change), index: index) else {
                throw DecodingError.dataCorruptedError(forKey: .change, in: c, debugDescription: "not an SE change with its index")
            }
            self = .seQueueChanged(guest: try c.decode(String.self, forKey: .guest), apqn: try c.decode(APQN.self, forKey: .apqn),
                                   change: change, cause: try c.decode(String.self, forKey: .cause))
        case "migration":
            self = .migrationChanged(guest: try c.decode(String.self, forKey: .guest),
                                     status: try c.decode(MigrationStatus.self, forKey: .status),
                                     announce: try c.decode(Bool.self, forKey: .announce))
        case "vfio-migration":
            self = .vfioMigrationChanged(guest: try c.decode(String.self, forKey: .guest),
                                         device: try c.decode(VfioAPDevice.self, forKey: .device),
                                         state: try c.decode(VfioMigrationState.self, forKey: .state),
                                         announce: try c.decode(Bool.self, forKey: .announce))
        case "runstate":
            self = .runStateChanged(guest: try c.decode(String.self, forKey: .guest), state: try c.decode(RunState.self, forKey: .state))
        case let other:
            throw DecodingError.dataCorruptedError(forKey: .kind, in: c, debugDescription: "unknown event kind '\(other)'")
        }
    }

    /// An event's fields, those of its kind set (the others are left out of the JSON).
    private struct Fields: Encodable {
        var kind: String
        var text: String?, guest: String?, before: Matrix?, after: Matrix?, cause: String?, apqn: APQN?
        var device: VfioAPDevice?, plugged: Bool?, running: Bool?, scan: Int?, added: [String]?, removed: [String]?
        var uevent: Uevent?
        var change: String?, index: Int?
        var status: MigrationStatus?, state: String?, announce: Bool?
    }

    public func encode(to encoder: any Encoder) throws {
        var f = Fields(kind: kind)
        switch self {
        case .kernel(let text), .note(let text): f.text = text
        case let .crycbChanged(guest, before, after, cause): (f.guest, f.before, f.after, f.cause) = (guest, before, after, cause)
        case let .queueReset(apqn, cause): (f.apqn, f.cause) = (apqn, cause)
        case let .deviceChanged(guest, device, plugged): (f.guest, f.device, f.plugged) = (guest, device, plugged)
        case let .guestChanged(guest, running): (f.guest, f.running) = (guest, running)
        case let .guestBusChanged(guest, scan, added, removed, cause):
            (f.guest, f.scan, f.added, f.removed, f.cause) = (guest, scan, added, removed, cause)
        case let .uevent(u): f.uevent = u
        case let .seQueueChanged(guest, apqn, change, cause):
            (f.guest, f.apqn, f.change, f.index, f.cause) = (guest, apqn, change.name, change.index, cause)
        case let .migrationChanged(guest, status, announce): (f.guest, f.status, f.announce) = (guest, status, announce)
        case let .vfioMigrationChanged(guest, device, state, announce):
            (f.guest, f.device, f.state, f.announce) = (guest, device, state.rawValue, announce)
        case let .runStateChanged(guest, state): (f.guest, f.state) = (guest, state.rawValue)
        }
        try f.encode(to: encoder)
    }
}
