// POSIX helpers on files of a mount: each returns the errno a client would
// see, and closes its fd before returning (a lazy unmount waits for the
// last open fd).

import Foundation
import Glibc

public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// A fresh directory (mounts on one path stack, so never reuse one). Short:
/// a unix socket's path inside it must fit sun_path's 107 bytes.
public func makeTempDir(_ prefix: String = "apmatrix-mt") throws -> String {
    var template = Array("/tmp/\(prefix).XXXXXX".utf8CString)
    guard let p = mkdtemp(&template) else { throw TestFailure("mkdtemp: \(errnoText(errno))") }
    return String(cString: p)
}

public func removeTree(_ path: String) {
    try? FileManager.default.removeItem(atPath: path)
}

/// The bytes of a file (empty when it cannot be read).
public func fileBytes(_ path: String) -> [UInt8] {
    (try? Array(Data(contentsOf: URL(fileURLWithPath: path)))) ?? []
}

public func errnoText(_ e: Int32) -> String { String(cString: strerror(e)) }

/// Reads a whole file in one open: (content, 0) or ("", errno of open/read).
public func readAttr(_ path: String) -> (text: String, errno: Int32) {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { return ("", errno) }
    defer { close(fd) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 { return (String(decoding: out, as: UTF8.self), errno) }
        if n == 0 { break }
        out.append(contentsOf: buf[0..<n])
    }
    return (String(decoding: out, as: UTF8.self), 0)
}

/// Content of a file, or a marker naming the errno (for #expect messages).
public func cat(_ path: String) -> String {
    let r = readAttr(path)
    return r.errno == 0 ? r.text : "<\(errnoText(r.errno))>"
}

/// Where a write failed.
public enum WriteResult: Equatable, CustomStringConvertible {
    case ok
    case openFailed(Int32)
    case writeFailed(Int32)
    public var description: String {
        switch self {
        case .ok: return "ok"
        case .openFailed(let e): return "open: \(errnoText(e))"
        case .writeFailed(let e): return "write: \(errnoText(e))"
        }
    }
}

/// One open, one write() (or pwrite() at `offset`) of `text`, close.
@discardableResult
public func writeAttr(_ path: String, _ text: String, flags: Int32 = O_WRONLY, offset: off_t? = nil) -> WriteResult {
    let fd = open(path, flags, 0o644)
    guard fd >= 0 else { return .openFailed(errno) }
    defer { close(fd) }
    let bytes = Array(text.utf8)
    let n = bytes.withUnsafeBytes { b in
        offset.map { pwrite(fd, b.baseAddress, b.count, $0) } ?? write(fd, b.baseAddress, b.count)
    }
    if n < 0 { return .writeFailed(errno) }
    if n != bytes.count { return .writeFailed(EIO) }
    return .ok
}

/// The errno of open() alone (0 when it succeeds; the fd is closed again).
public func openErrno(_ path: String, _ flags: Int32) -> Int32 {
    let fd = open(path, flags, 0o644)
    if fd < 0 { return errno }
    close(fd)
    return 0
}

/// errno of stat(), 0 when it succeeds.
public func statErrno(_ path: String) -> Int32 {
    var st = stat()
    return stat(path, &st) == 0 ? 0 : errno
}

public func realPath(_ path: String) -> String? {
    guard let p = realpath(path, nil) else { return nil }
    defer { free(p) }
    return String(cString: p)
}

public func linkTarget(_ path: String) -> String? {
    var buf = [CChar](repeating: 0, count: 4096)
    let n = readlink(path, &buf, buf.count - 1)
    guard n >= 0 else { return nil }
    return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Directory entries without "." and "..", sorted.
public func listDir(_ path: String) -> [String]? {
    try? FileManager.default.contentsOfDirectory(atPath: path).sorted()
}
