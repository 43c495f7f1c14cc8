import APMatrixModel

/// The human monitor behind `human-monitor-command`: the few commands the
/// seed's procedure and `qmp-shell -H` use. HMP reports errors as output
/// text ("Error: …"), never as a QMP error, and ends every line with `\r\n`
/// as QEMU's monitor does.
struct HMP {
    let commands: QMPCommands

    /// `help` lines; `qmp-shell -H` reads them for completion (first word per line).
    static let helpLines = [
        "device_add driver[,prop=value][,...] -- add device, like -device on the command line",
        "device_del device -- remove device",
        "help|? [cmd] -- show the help",
        "info [subcommand] -- show various information about the system state",
    ]
    /// `info` lines; `qmp-shell -H` takes the second word of each.
    static let infoLines = [
        "info qtree  -- show device tree",
        "info status  -- show the current VM status (running|paused)",
        "info version  -- show the version of QEMU",
    ]

    func execute(_ commandLine: String) -> String {
        let line = commandLine.trimmingSpaces
        guard !line.isEmpty else { return "" }
        let word = String(line.prefix { $0 != " " && $0 != "\t" })
        let rest = String(line.dropFirst(word.count)).trimmingSpaces
        switch word {
        case "help", "?":
            if rest.isEmpty { return Self.text(Self.helpLines) }
            let matching = Self.helpLines.filter { $0.split(separator: " ")[0].split(separator: "|").contains(Substring(rest)) }
            return matching.isEmpty ? "unknown command: '\(rest)'\r\n" : Self.text(matching)
        case "info":
            switch rest {
            case "": return Self.text(Self.infoLines)
            case "status":
                let running = commands.runtime.snapshot.guests[commands.guest] != nil
                return running ? "VM status: running\r\n" : "VM status: paused (shutdown)\r\n"
            case "version": return "8.2.0\r\n"
            case "qtree": return qtree()
            default: return "unknown command: 'info \(rest)'\r\n"
            }
        case "device_add":
            guard !rest.isEmpty else { return "Error: Parameter 'driver' is missing\r\n" }
            do throws(QMPFailure) {
                try commands.deviceAdd(Self.parseOpts(rest).map { ($0.0, .string($0.1)) })
                return ""
            } catch {
                return "Error: \(error.desc)\r\n"
            }
        case "device_del":
            guard !rest.isEmpty else { return "Error: Parameter 'id' is missing\r\n" }
            let id = String(rest.prefix { $0 != " " && $0 != "\t" })
            do throws(QMPFailure) {
                try commands.deviceDel(id)
                return ""
            } catch {
                return "Error: \(error.desc)\r\n"
            }
        default:
            return "unknown command: '\(word)'\r\n"
        }
    }

    static func text(_ lines: [String]) -> String { lines.map { $0 + "\r\n" }.joined() }

    /// QemuOpts syntax: `vfio-ap,sysfsdev=PATH,id=ID`; the first bare word is
    /// the implied `driver`, `,,` is a literal comma, a later bare word is a
    /// flag set to `on`.
    static func parseOpts(_ s: String) -> [(String, String)] {
        var items: [String] = []
        var cur = ""
        var chars = Array(s)[...]
        while let c = chars.popFirst() {
            if c == "," {
                if chars.first == "," { cur.append(","); chars.removeFirst() } else { items.append(cur); cur = "" }
            } else {
                cur.append(c)
            }
        }
        items.append(cur)
        var out: [(String, String)] = []
        for (n, item) in items.enumerated() where !item.isEmpty {
            if let eq = item.firstIndex(of: "=") {
                out.append((String(item[..<eq]), String(item[item.index(after: eq)...])))
            } else if n == 0 {
                out.append(("driver", item))
            } else {
                out.append((item, "on"))
            }
        }
        return out
    }

    /// A QEMU-like `info qtree` of an s390-ccw-virtio machine: the AP bridge
    /// and its bus, which holds the vfio-ap device while it is plugged.
    func qtree() -> String {
        let device = commands.runtime.snapshot.guests[commands.guest]?.device
        var lines = [
            "bus: main-system-bus",
            "  type System",
            "  dev: s390-sclp-event-facility, id \"\"",
            "    allow_all_mask_sizes = true",
            "    bus: s390-sclp-events-bus.0",
            "      type s390-sclp-events-bus",
            "  dev: virtual-css-bridge, id \"\"",
            "    css_dev_path = true",
            "    bus: virtual-css",
            "      type virtual-css-bus",
            "  dev: ap-bridge, id \"\"",
            "    bus: ap-bus",
            "      type ap-bus",
        ]
        if let d = device {
            lines.append("      dev: vfio-ap, id \"\(d.id)\"")
            lines.append("        sysfsdev = \"\(d.sysfsdev)\"")
        }
        return Self.text(lines)
    }
}

extension String {
    var trimmingSpaces: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
