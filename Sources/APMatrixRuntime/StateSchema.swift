import APMatrixModel
import FoundationEssentials

/// The tables of a state database: one row per object of the host, with
/// key columns to query by and the object's document (`doc`, JSON, the
/// model's record), so that a field added to an object is saved without a
/// schema change. The version-1 JSON state file held the same documents.
enum StateSchema {
    static let create = """
        CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
        -- The rooms' own fields: 'firmware' (the LPAR), 'bus' (masks, ap_domain), 'vfio' (counters).
        CREATE TABLE host(room TEXT PRIMARY KEY, doc TEXT NOT NULL);
        CREATE TABLE cards(apid INTEGER PRIMARY KEY, doc TEXT NOT NULL);
        CREATE TABLE queue_devices(apqn TEXT PRIMARY KEY, apid INTEGER NOT NULL, apqi INTEGER NOT NULL,
                                   driver TEXT, doc TEXT NOT NULL);
        CREATE TABLE hardware_queues(apqn TEXT PRIMARY KEY, apid INTEGER NOT NULL, apqi INTEGER NOT NULL,
                                     resets INTEGER NOT NULL, holds_state_of TEXT, doc TEXT NOT NULL);
        -- apm, aqm, adm: 256 characters '0'/'1', id n at position n + 1.
        CREATE TABLE mdevs(uuid TEXT PRIMARY KEY, serial INTEGER NOT NULL UNIQUE, guest TEXT,
                           apm TEXT NOT NULL, aqm TEXT NOT NULL, adm TEXT NOT NULL, doc TEXT NOT NULL);
        CREATE TABLE guests(name TEXT PRIMARY KEY, mdev TEXT, doc TEXT NOT NULL);
        CREATE TABLE qmp_sockets(guest TEXT PRIMARY KEY REFERENCES guests(name) ON DELETE CASCADE, path TEXT NOT NULL);
        CREATE TABLE log(sequence INTEGER PRIMARY KEY, seconds REAL NOT NULL, line TEXT NOT NULL, doc TEXT NOT NULL);
        """

    /// The whole state as one version-1 document (`StateDocument`), built by
    /// SQLite's JSON functions from the rows, for the one decoder that checks it.
    static let load = """
        SELECT json_object(
          'format', (SELECT value FROM meta WHERE key = 'format'),
          'version', 1,
          'profile', (SELECT value FROM meta WHERE key = 'profile'),
          'host', json_object(
            'profile', (SELECT value FROM meta WHERE key = 'profile'),
            'firmware', json((SELECT doc FROM host WHERE room = 'firmware')),
            'bus', json_set(json((SELECT doc FROM host WHERE room = 'bus')),
              '$.cards', json((SELECT json_group_array(json(doc)) FROM (SELECT doc FROM cards ORDER BY apid))),
              '$.queues', json((SELECT json_group_array(json(doc)) FROM (SELECT doc FROM queue_devices ORDER BY apqn)))),
            'mdevs', json((SELECT json_group_array(json(doc)) FROM (SELECT doc FROM mdevs ORDER BY serial))),
            'nextSerial', (SELECT json_extract(doc, '$.nextSerial') FROM host WHERE room = 'vfio'),
            'guests', json((SELECT json_group_array(json(doc)) FROM (SELECT doc FROM guests ORDER BY name))),
            'queueRecords', json((SELECT json_group_array(json(doc)) FROM (SELECT doc FROM hardware_queues ORDER BY apqn)))),
          'log', json((SELECT json_group_array(json(doc)) FROM (SELECT doc FROM log ORDER BY sequence))),
          'nextSequence', (SELECT COALESCE(MAX(sequence), 0) + 1 FROM log),
          'qmpSockets', json((SELECT json_group_object(guest, path) FROM qmp_sockets)))
        """

    static func roomName(_ r: HostChanges.Room) -> String {
        switch r {
        case .firmware: return "firmware"
        case .bus: return "bus"
        case .vfio: return "vfio"
        }
    }

    /// A bitmap as 256 characters '0'/'1' (`substr(apm, n + 1, 1)` is id n).
    static func bits<ID>(_ b: Bitmap256<ID>) -> String {
        var chars = [UInt8](repeating: UInt8(ascii: "0"), count: 256)
        for id in b { chars[Int(id.rawValue)] = UInt8(ascii: "1") }
        return String(decoding: chars, as: UTF8.self)
    }
}

/// Writes rows: what one operation changed, or a whole new state.
struct StateWriter: Sendable {
    let db: SQLiteConnection
    let encoder: JSONEncoder

    func doc(_ value: some Encodable) throws(SQLiteError) -> SQLValue {
        do { return .text(String(decoding: try encoder.encode(value), as: UTF8.self)) } catch {
            throw SQLiteError(code: -1, message: "cannot encode a row: \(error)")
        }
    }

    func write(_ c: HostChanges, of h: APHost) throws(SQLiteError) {
        for room in c.rooms {
            let d: SQLValue
            switch room {
            case .firmware: d = try doc(APHost.FirmwareRecord(h))
            case .bus: d = try doc(APHost.BusRecord(h.bus))
            case .vfio: d = try doc(APHost.VfioRecord(h.vfio))
            }
            try db.run("INSERT INTO host(room, doc) VALUES(?1, ?2) ON CONFLICT(room) DO UPDATE SET doc = ?2",
                       [.text(StateSchema.roomName(room)), d])
        }
        for id in c.cards.keys {
            if let card = h.bus.cards[id] {
                try db.run("INSERT INTO cards(apid, doc) VALUES(?1, ?2) ON CONFLICT(apid) DO UPDATE SET doc = ?2",
                           [.integer(Int64(id.value)), try doc(APHost.CardRecord(id, card))])
            } else {
                try db.run("DELETE FROM cards WHERE apid = ?1", [.integer(Int64(id.value))])
            }
        }
        for apqn in c.queues.keys {
            if let q = h.bus.queues[apqn] {
                try db.run("""
                    INSERT INTO queue_devices(apqn, apid, apqi, driver, doc) VALUES(?1, ?2, ?3, ?4, ?5)
                    ON CONFLICT(apqn) DO UPDATE SET driver = ?4, doc = ?5
                    """, [.text(apqn.description), .integer(Int64(apqn.apid.value)), .integer(Int64(apqn.apqi.value)),
                          q.driver.map { .text($0.rawValue) } ?? .null, try doc(APHost.QueueDeviceRecord(apqn, q))])
            } else {
                try db.run("DELETE FROM queue_devices WHERE apqn = ?1", [.text(apqn.description)])
            }
        }
        for apqn in c.records.keys {
            if let r = h.firmware.records[apqn] {
                try db.run("""
                    INSERT INTO hardware_queues(apqn, apid, apqi, resets, holds_state_of, doc) VALUES(?1, ?2, ?3, ?4, ?5, ?6)
                    ON CONFLICT(apqn) DO UPDATE SET resets = ?4, holds_state_of = ?5, doc = ?6
                    """, [.text(apqn.description), .integer(Int64(apqn.apid.value)), .integer(Int64(apqn.apqi.value)),
                          .integer(Int64(r.resets)), r.holdsStateOf.map(SQLValue.text) ?? .null,
                          try doc(APHost.HardwareQueueRecord(apqn, r))])
            } else {
                try db.run("DELETE FROM hardware_queues WHERE apqn = ?1", [.text(apqn.description)])
            }
        }
        for uuid in c.mdevs.keys {
            if let m = h.vfio.mdevs[uuid] {
                try db.run("""
                    INSERT INTO mdevs(uuid, serial, guest, apm, aqm, adm, doc) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)
                    ON CONFLICT(uuid) DO UPDATE SET guest = ?3, apm = ?4, aqm = ?5, adm = ?6, doc = ?7
                    """, [.text(uuid.description), .integer(Int64(m.serial)), m.guest.map(SQLValue.text) ?? .null,
                          .text(StateSchema.bits(m.matrix.apm)), .text(StateSchema.bits(m.matrix.aqm)),
                          .text(StateSchema.bits(m.matrix.adm)), try doc(APHost.MdevRecord(m))])
            } else {
                try db.run("DELETE FROM mdevs WHERE uuid = ?1", [.text(uuid.description)])
            }
        }
        for name in c.guests.keys {
            if let g = h.guests[name] {
                try db.run("INSERT INTO guests(name, mdev, doc) VALUES(?1, ?2, ?3) ON CONFLICT(name) DO UPDATE SET mdev = ?2, doc = ?3",
                           [.text(name), g.device.map { .text($0.mdev.description) } ?? .null, try doc(APHost.GuestRecord(g))])
            } else {
                try db.run("DELETE FROM guests WHERE name = ?1", [.text(name)])
            }
        }
    }

    /// Appends log entries and drops those beyond the tail.
    func append(_ entries: [LogEntry]) throws(SQLiteError) {
        guard let last = entries.last?.sequence else { return }
        for e in entries {
            try db.run("INSERT OR REPLACE INTO log(sequence, seconds, line, doc) VALUES(?1, ?2, ?3, ?4)",
                       [.integer(Int64(e.sequence)), .real(e.seconds), .text(e.event.line), try doc(e)])
        }
        try db.run("DELETE FROM log WHERE sequence <= ?1", [.integer(Int64(last - StateStore.logTail))])
    }

    func setQMPSocket(_ guest: String, _ path: String) throws(SQLiteError) {
        try db.run("INSERT INTO qmp_sockets(guest, path) VALUES(?1, ?2) ON CONFLICT(guest) DO UPDATE SET path = ?2",
                   [.text(guest), .text(path)])
    }
}
