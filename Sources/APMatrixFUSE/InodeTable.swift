import APMatrixSysfs
import Synchronization

/// What the kernel can cache about an entry: a directory, an attribute with
/// its mode, a symlink with its target. An entry whose kind changes gets a
/// new inode (the kernel refuses an inode that changes type).
enum EntryKind: Hashable, Sendable {
    case directory
    case attribute(mode: UInt16)
    case symlink(String)

    init(_ node: Node) {
        switch node {
        case .directory: self = .directory
        case .attribute(let a): self = .attribute(mode: a.mode)
        case .symlink(let target): self = .symlink(target)
        }
    }
}

/// The inodes the kernel holds of one mount. FUSE's low-level API names
/// every entry by the number its lookup gave it until the kernel forgets
/// it (`forget`, with the count of lookups it answered); here each number
/// stands for a path of the tree, which is resolved afresh at every request.
///
/// It also knows, by name, every entry the kernel may cache, including the
/// ones whose lookup is under way, so that a change of the tree can make
/// the kernel forget exactly those (`entries(named:)`).
final class InodeTable: Sendable {
    static let root: UInt64 = 1

    struct Inode {
        let path: String
        let parent: UInt64
        let name: String
        let kind: EntryKind
        var lookups: UInt64
    }

    struct State {
        var inodes: [UInt64: Inode] = [InodeTable.root: Inode(path: "/", parent: 0, name: "", kind: .directory, lookups: 1)]
        var byPath: [String: UInt64] = ["/": InodeTable.root]
        /// Name → the inodes of that name.
        var byName: [String: Set<UInt64>] = [:]
        /// Name → parent → lookups of that name under way.
        var pending: [String: [UInt64: Int]] = [:]
        var next: UInt64 = 2
    }

    private let state = Mutex(State())

    /// The path of `ino`, nil when the kernel has forgotten it.
    func path(_ ino: UInt64) -> String? {
        state.withLock { $0.inodes[ino]?.path }
    }

    /// The inode of `path` if the kernel holds one (a directory listing's `d_ino`).
    func inode(_ path: String) -> UInt64? {
        state.withLock { $0.byPath[path] }
    }

    /// Starts a lookup of `name` in `parent`: the path to resolve, and the
    /// lookup is under way until `finishLookup`.
    func startLookup(_ parent: UInt64, _ name: String) -> String? {
        state.withLock { s in
            guard let dir = s.inodes[parent]?.path else { return nil }
            s.pending[name, default: [:]][parent, default: 0] += 1
            return dir == "/" ? "/" + name : dir + "/" + name
        }
    }

    /// Ends a lookup; for an entry found (`kind`), the inode the kernel now
    /// holds one more lookup of: the path's own while its kind is unchanged.
    func finishLookup(_ parent: UInt64, _ name: String, path: String, kind: EntryKind?) -> UInt64? {
        state.withLock { s in
            s.pending[name]?[parent]? -= 1
            if s.pending[name]?[parent] == 0 { s.pending[name]?[parent] = nil }
            if s.pending[name]?.isEmpty == true { s.pending[name] = nil }
            guard let kind else { return nil }
            if let ino = s.byPath[path], s.inodes[ino]?.kind == kind {
                s.inodes[ino]?.lookups += 1
                return ino
            }
            let ino = s.next
            s.next += 1
            s.inodes[ino] = Inode(path: path, parent: parent, name: name, kind: kind, lookups: 1)
            s.byPath[path] = ino
            s.byName[name, default: []].insert(ino)
            return ino
        }
    }

    /// The kernel forgets `count` lookups of `ino` (`forget`); at none it no longer holds it.
    func forget(_ ino: UInt64, _ count: UInt64) {
        guard ino != Self.root else { return }
        state.withLock { s in
            guard let inode = s.inodes[ino] else { return }
            guard inode.lookups > count else {
                s.inodes[ino] = nil
                if s.byPath[inode.path] == ino { s.byPath[inode.path] = nil }
                s.byName[inode.name]?.remove(ino)
                if s.byName[inode.name]?.isEmpty == true { s.byName[inode.name] = nil }
                return
            }
            s.inodes[ino]?.lookups -= count
        }
    }

    /// Every (parent, name) the kernel may have an entry for, or be looking
    /// up, whose name is in `names`.
    func entries(named names: Set<String>) -> [Entry] {
        state.withLock { s in
            var out = Set<Entry>()
            for name in names {
                for ino in s.byName[name] ?? [] { if let i = s.inodes[ino] { out.insert(Entry(parent: i.parent, name: name)) } }
                for parent in (s.pending[name] ?? [:]).keys { out.insert(Entry(parent: parent, name: name)) }
            }
            return Array(out)
        }
    }

    /// A name in a directory the kernel holds.
    struct Entry: Hashable {
        let parent: UInt64
        let name: String
    }
}
