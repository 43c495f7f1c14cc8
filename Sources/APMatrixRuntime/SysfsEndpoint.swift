import APMatrixModel
import APMatrixSysfs

/// One sysfs tree of the runtime's host (the host's `/sys`, or a guest's),
/// as a FUSE mount or the control API reaches it. Each request takes the
/// runtime's lock once and resolves its path once.
public struct SysfsEndpoint: Sendable {
    public let runtime: Runtime
    public let view: any SysfsView

    public init(_ runtime: Runtime, view: any SysfsView = SysfsTree.hostView) {
        self.runtime = runtime
        self.view = view
    }

    public func node(_ path: String) -> Node? {
        runtime.state.withLock { view.node(path, in: $0.host) }
    }

    public func children(_ path: String) -> [String]? {
        runtime.state.withLock { view.children(path, in: $0.host) }
    }

    /// The entries of the directory at `path` with their nodes, sorted by
    /// name; nil if it is not a directory (readdir, which gives each entry's type).
    public func listing(_ path: String) -> [(name: String, node: Node)]? {
        runtime.state.withLock { s in
            view.entries(SysfsTree.components(path), s.host).map { $0.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } }
        }
    }

    public func readlink(_ path: String) -> String? {
        guard case .symlink(let target)? = node(path) else { return nil }
        return target
    }

    /// Renders an attribute (one open of a sysfs file).
    public func read(_ path: String) throws(APError) -> [UInt8] {
        let now = runtime.clock.now()
        return try runtime.state.withLock { s throws(APError) in try view.read(path, in: s.host, at: now) }
    }

    /// One `write()` to an attribute: one store, counted under the attribute's name.
    public func write(_ path: String, _ bytes: [UInt8]) throws(APError) {
        var kind = "sysfs:(no attribute)"
        try runtime.perform({ kind }) { (host: inout APHost, now: Uptime) throws(APError) in
            let (name, attribute) = try view.attribute(path, in: host)
            kind = "sysfs:" + name
            try view.store(attribute, path, bytes, in: &host, at: now)
        }
    }
}
