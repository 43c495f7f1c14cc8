import Glibc

/// The emulated host's own files outside `/sys`: the directories that tools
/// run with `apmatrix exec` see as `/etc/mdevctl.d`, `/etc/udev/rules.d` and
/// `/run/lock`. They belong to one host and outlive every `exec`, as a real
/// host's `/etc` outlives its processes (and its reboots).
///
/// A host with a state file keeps them beside it (`FILE.root`), so copying
/// the state with its root carries the mdevctl definitions along; a host
/// without one keeps them under the run directory, keyed by its mount point.
public struct PrivateRoot: Hashable, Sendable {
    /// An absolute directory.
    public let path: String

    public init(path: String) { self.path = path }

    /// Beside the state file: `FILE.root` (`stateFile` absolute).
    public static func beside(stateFile: String) -> PrivateRoot {
        PrivateRoot(path: stateFile + ".root")
    }

    /// For a host without a state file: `RUNDIR/hosts/<mount, escaped>` in
    /// the run directory (gone at reboot, like the mount).
    public static func forMount(_ mount: String) -> PrivateRoot {
        PrivateRoot(path: RunDirectory.path() + "/hosts/" + escape(mount))
    }

    /// A guest's own directories, inside its host's root.
    public func guest(_ name: String) -> PrivateRoot { PrivateRoot(path: path + "/guests/" + Self.escape(name)) }

    /// A path as one file name, as `systemd-escape --path` writes it: `/tmp/ap/sys` is `tmp-ap-sys`.
    static func escape(_ path: String) -> String {
        let trimmed = path.split(separator: "/").joined(separator: "/")
        guard !trimmed.isEmpty else { return "-" }
        var out = ""
        for (i, b) in trimmed.utf8.enumerated() {
            switch b {
            case UInt8(ascii: "/"): out += "-"
            case UInt8(ascii: "."):
                out += i == 0 ? "\\x2e" : "."
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: ":"):
                out.unicodeScalars.append(Unicode.Scalar(b))
            default:
                let hex = String(b, radix: 16)
                out += "\\x" + (hex.count == 1 ? "0" : "") + hex
            }
        }
        return out
    }

    /// What is bound where: the directory inside the root and the path it stands for.
    public struct Binding: Hashable, Sendable {
        public let source: String
        public let target: String
    }

    /// The directories a tool sees, in the order they are bound.
    public static let targets = ["/etc/mdevctl.d", "/etc/udev/rules.d", "/run/lock"]

    public var bindings: [Binding] { Self.targets.map { Binding(source: path + $0, target: $0) } }

    /// `etc/mdevctl.d` inside the root.
    public var mdevctlDirectory: String { path + "/etc/mdevctl.d" }

    /// Creates the directories that are missing, with the two that mdevctl
    /// refuses to run without (`scripts.d/callouts`, `scripts.d/notifiers`).
    public func prepare() throws(Files.Failure) {
        for b in bindings { try Files.makeDirectories(b.source) }
        for sub in ["scripts.d/callouts", "scripts.d/notifiers"] { try Files.makeDirectories(mdevctlDirectory + "/" + sub) }
    }
}

extension Files {
    /// `mkdir -p`: every missing directory of `path`, mode 0755.
    public static func makeDirectories(_ path: String) throws(Failure) {
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            prefix += "/" + part
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST { throw Failure.errno("mkdir \(prefix)") }
        }
    }
}
