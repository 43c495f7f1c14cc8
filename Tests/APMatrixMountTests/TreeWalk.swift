// A sysfs tree as a tool sees it, entry by entry, to compare two trees file
// by file: kind, permission bits, content (or the errno of reading it), and
// symlink targets. Symlinks are not followed.

import APMatrixTesting
import Foundation
import Glibc

enum TreeEntry: Equatable, CustomStringConvertible {
    case directory(mode: UInt32)
    /// The content, `<errno N>` when a read fails, `<write-only>` without read permission.
    case file(mode: UInt32, content: String)
    case symlink(target: String)

    var description: String {
        switch self {
        case .directory(let m): return "directory \(String(m, radix: 8))"
        case .file(let m, let c): return "file \(String(m, radix: 8)) \(c.debugDescription)"
        case .symlink(let t): return "symlink -> \(t)"
        }
    }
}

/// Every entry under `root`, by path relative to it.
func walkTree(_ root: String) -> [String: TreeEntry] {
    var out: [String: TreeEntry] = [:]
    func visit(_ rel: String) {
        let path = rel.isEmpty ? root : root + "/" + rel
        var st = stat()
        guard lstat(path, &st) == 0 else { out[rel] = .file(mode: 0, content: "<lstat errno \(errno)>"); return }
        let mode = st.st_mode & 0o7777
        switch st.st_mode & S_IFMT {
        case S_IFLNK:
            out[rel] = .symlink(target: linkTarget(path) ?? "<unreadable>")
        case S_IFDIR:
            out[rel] = .directory(mode: mode)
            for name in listDir(path) ?? [] { visit(rel.isEmpty ? name : rel + "/" + name) }
        default:
            guard mode & 0o400 != 0 else { out[rel] = .file(mode: mode, content: "<write-only>"); return }
            let r = readAttr(path)
            out[rel] = .file(mode: mode, content: r.errno == 0 ? r.text : "<errno \(r.errno)>")
        }
    }
    visit("")
    return out
}

/// The paths whose entries differ, sorted, each with both sides.
func treeDifferences(_ a: [String: TreeEntry], _ b: [String: TreeEntry]) -> [String] {
    Set(a.keys).union(b.keys).sorted().compactMap { path in
        a[path] == b[path] ? nil : "\(path): \(a[path].map(\.description) ?? "missing") | \(b[path].map(\.description) ?? "missing")"
    }
}
