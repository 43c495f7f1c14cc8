import APMatrixModel
import Glibc
import SystemPackage

/// A sysfs tree on disk: the real `/sys` of an s390 host, or a mount of the
/// emulator. Plain POSIX calls, one open per read or write, so every answer
/// is what the kernel (or the mount) gives at that moment, errno included.
public struct SysfsDirectory: Sendable {
    public let root: String

    public init(_ root: String) {
        self.root = root.count > 1 && root.hasSuffix("/") ? String(root.dropLast()) : root
    }

    public func path(_ rel: String) -> String { root + "/" + rel }

    /// The whole file, or the errno of open/read.
    public func read(_ rel: String) -> Result<String, Errno> {
        let fd = open(path(rel), O_RDONLY)
        guard fd >= 0 else { return .failure(Errno(rawValue: errno)) }
        defer { close(fd) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 { return .failure(Errno(rawValue: errno)) }
            if n == 0 { break }
            out.append(contentsOf: buf[0..<n])
        }
        return .success(String(decoding: out, as: UTF8.self))
    }

    /// The file without its trailing newline, nil if it cannot be read.
    public func text(_ rel: String) -> String? {
        guard case .success(let s) = read(rel) else { return nil }
        return s.hasSuffix("\n") ? String(s.dropLast()) : s
    }

    /// A `%d` attribute.
    public func int(_ rel: String) -> Int? { text(rel).flatMap { Int($0.trimmedSpaces) } }

    /// The names in a directory (without `.` and `..`), sorted; nil if it cannot be listed.
    public func list(_ rel: String) -> [String]? {
        guard let d = opendir(path(rel)) else { return nil }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafeBytes(of: e.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// The last component of a symlink's target (`driver` -> `…/vfio_ap` gives `vfio_ap`).
    public func linkName(_ rel: String) -> String? {
        var buf = [CChar](repeating: 0, count: 4096)
        let n = readlink(path(rel), &buf, buf.count - 1)
        guard n > 0 else { return nil }
        let target = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return target.split(separator: "/").last.map(String.init)
    }

    /// One open, one `write()` of `bytes`, close: nil on success, else the errno
    /// of the open or the write (as a shell's `echo VALUE > PATH` sees it).
    public func write(_ rel: String, _ bytes: [UInt8]) -> Errno? {
        let fd = open(path(rel), O_WRONLY)
        guard fd >= 0 else { return Errno(rawValue: errno) }
        defer { close(fd) }
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        if n < 0 { return Errno(rawValue: errno) }
        return n == bytes.count ? nil : .ioError
    }
}

extension String {
    /// Without leading and trailing white space.
    var trimmedSpaces: String {
        var s = Substring(self)
        while let c = s.first, c.isWhitespace { s = s.dropFirst() }
        while let c = s.last, c.isWhitespace { s = s.dropLast() }
        return String(s)
    }
}
