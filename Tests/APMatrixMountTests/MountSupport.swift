// Shared helpers for the tests that go through a real FUSE mount.
//
// - `withMount` makes a fresh mkdtemp directory per mount, mounts a runtime
//   in-process with subtype "apmatrix" (so a leftover shows as fuse.apmatrix
//   in /proc/mounts), runs the FUSE loop on its own pthread (FuseMount.start,
//   never a Swift Task), and always unmounts and removes the directory.
// - POSIX read/write helpers that return errno, and always close their fd
//   before returning (a lazy unmount waits for the last open fd).
// - `sh` runs `/bin/bash -c` under `timeout` and returns status, stdout, stderr.
// - `Spawned` runs a long-lived subprocess (`apmatrix serve`) with pipes.

import APMatrixRuntime
import APMatrixFUSE
import APMatrixModel
import Foundation
import Glibc
import Synchronization
import Testing

/// Every mount test is nested in this suite, so the whole target runs one
/// test at a time: the machine has 2 cores, and subprocess-heavy tests
/// (mdevctl, serve, 8 concurrent writers) would otherwise race their timeouts.
@Suite(.serialized) struct MountTests {}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

// MARK: - temp dirs and mounts

/// A fresh directory for one mount (mounts on one path stack, so never reuse).
func makeTempDir(_ prefix: String = "apmatrix-mt") throws -> String {
    var template = Array("/tmp/\(prefix).XXXXXX".utf8CString)
    guard let p = mkdtemp(&template) else { throw TestFailure("mkdtemp: \(errnoText(errno))") }
    return String(cString: p)
}

/// The mount point and the runtime behind it.
struct Mounted {
    let root: String
    let runtime: Runtime
    /// `root` + "/" + relative path.
    func path(_ rel: String) -> String { root + "/" + rel }
    var matrixDir: String { root + "/devices/vfio_ap/matrix" }
    var typeDir: String { matrixDir + "/mdev_supported_types/vfio_ap-passthrough" }
    func mdev(_ uuid: String) -> String { matrixDir + "/" + uuid }
    func mdev(_ uuid: MdevUUID) -> String { mdev(uuid.description) }
}

/// True when `dir` is listed in /proc/mounts with type fuse.apmatrix.
func isApmatrixMount(_ dir: String) -> Bool {
    guard let text = try? String(contentsOfFile: "/proc/mounts", encoding: .utf8) else { return false }
    return text.split(separator: "\n").contains { line in
        let f = line.split(separator: " ")
        return f.count > 2 && f[1] == dir && f[2] == "fuse.apmatrix"
    }
}

/// Removes dead mounts (ENOTCONN) that a crashed earlier run of these tests
/// left under /tmp/apmatrix-mt.*. Live mounts are never touched.
func sweepDeadTestMounts() {
    guard let text = try? String(contentsOfFile: "/proc/mounts", encoding: .utf8) else { return }
    for line in text.split(separator: "\n") {
        let f = line.split(separator: " ")
        guard f.count > 2, f[2] == "fuse.apmatrix", f[1].hasPrefix("/tmp/apmatrix-mt.") else { continue }
        let dir = String(f[1])
        if statErrno(dir) == ENOTCONN, umount2(dir, Int32(MNT_DETACH)) == 0 { rmdir(dir) }
    }
}

/// If a test is still inside `withMount` after `seconds`, the mount (or the
/// product behind it) hangs: in-process syscalls cannot be timed out, so end
/// the test process with a message rather than hang the run. The next run's
/// `sweepDeadTestMounts` removes what is left.
final class Flag: Sendable {
    let value = Atomic<Bool>(false)
}

final class Watchdog: Sendable {
    private let flag = Flag()
    init(_ what: String, seconds: Double) {
        let flag = self.flag
        let thread = Thread {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if flag.value.load(ordering: .acquiring) { return }
                usleep(100_000)
            }
            if flag.value.load(ordering: .acquiring) { return }
            let msg = "\nAPMatrixMountTests: \(what) still running after \(Int(seconds)) s: the mount hangs; aborting the test process\n"
            msg.withCString { _ = write(2, $0, strlen($0)) }
            _exit(70)
        }
        thread.start()
    }
    func cancel() { flag.value.store(true, ordering: .releasing) }
}

/// Mounts a fresh runtime of `host` at a fresh temp dir, runs `body`, and
/// always unmounts (stop) and removes the directory, even when `body` throws.
/// `body` must close every fd it opens on the mount before returning.
@discardableResult
func withMount<T>(_ host: HostDescription = .seedExample, profile: Profile = .seed, watchdog seconds: Double = 240,
                  _ body: (Mounted) throws -> T) throws -> T {
    sweepDeadTestMounts()
    let watchdog = Watchdog("a test on an in-process mount", seconds: seconds)
    defer { watchdog.cancel() }
    let dir = try makeTempDir()
    defer { rmdir(dir) }
    let runtime = Runtime(host: try APHost(host, profile: profile))
    let fuse = try FuseMount(SysfsEndpoint(runtime), mountpoint: dir, subtype: "apmatrix")
    fuse.start()
    defer {
        fuse.stop()
        #expect(!isApmatrixMount(dir), "the mount at \(dir) is still there after stop()")
    }
    guard MountPoint.waitUntilServed(dir, seconds: 10) else { throw TestFailure("the mount at \(dir) did not answer") }
    #expect(isApmatrixMount(dir), "\(dir) is not listed as fuse.apmatrix in /proc/mounts")
    return try body(Mounted(root: dir, runtime: runtime))
}

// MARK: - POSIX helpers (errno, fds always closed)

func errnoText(_ e: Int32) -> String { String(cString: strerror(e)) }

/// Reads a whole file in one open: (content, 0) or ("", errno of open/read).
func readAttr(_ path: String) -> (text: String, errno: Int32) {
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
func cat(_ path: String) -> String {
    let r = readAttr(path)
    return r.errno == 0 ? r.text : "<\(errnoText(r.errno))>"
}

/// Where a write failed.
enum WriteResult: Equatable, CustomStringConvertible {
    case ok
    case openFailed(Int32)
    case writeFailed(Int32)
    var description: String {
        switch self {
        case .ok: return "ok"
        case .openFailed(let e): return "open: \(errnoText(e))"
        case .writeFailed(let e): return "write: \(errnoText(e))"
        }
    }
}

/// One open, one write() (or pwrite() at `offset`) of `text`, close.
@discardableResult
func writeAttr(_ path: String, _ text: String, flags: Int32 = O_WRONLY, offset: off_t? = nil) -> WriteResult {
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
func openErrno(_ path: String, _ flags: Int32) -> Int32 {
    let fd = open(path, flags, 0o644)
    if fd < 0 { return errno }
    close(fd)
    return 0
}

/// errno of stat(), 0 when it succeeds.
func statErrno(_ path: String) -> Int32 {
    var st = stat()
    return stat(path, &st) == 0 ? 0 : errno
}

func realPath(_ path: String) -> String? {
    guard let p = realpath(path, nil) else { return nil }
    defer { free(p) }
    return String(cString: p)
}

func linkTarget(_ path: String) -> String? {
    var buf = [CChar](repeating: 0, count: 4096)
    let n = readlink(path, &buf, buf.count - 1)
    guard n >= 0 else { return nil }
    return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

/// Directory entries without "." and "..", sorted.
func listDir(_ path: String) -> [String]? {
    try? FileManager.default.contentsOfDirectory(atPath: path).sorted()
}

// MARK: - subprocesses

struct ShellResult: CustomStringConvertible {
    var status: Int32        // exit status; 128+signal when killed; 124 when `timeout` fired
    var stdout: String
    var stderr: String
    var timedOut: Bool { status == 124 || status == 137 }
    var description: String { "status \(status)\nstdout: \(stdout)\nstderr: \(stderr)" }
}

/// Decodes a waitpid status (the W* macros are not imported into Swift).
func exitCode(_ status: Int32) -> Int32 {
    let sig = status & 0x7f
    return sig == 0 ? (status >> 8) & 0xff : 128 + sig
}

func makePipe() -> (read: Int32, write: Int32) {
    var fds: [Int32] = [0, 0]
    precondition(pipe(&fds) == 0, "pipe failed")
    for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    return (fds[0], fds[1])
}

/// A child process with stdout and stderr on pipes (stdin /dev/null).
final class Spawned {
    let pid: pid_t
    private var outFD: Int32
    private var errFD: Int32
    private(set) var stdout: [UInt8] = []
    private(set) var stderr: [UInt8] = []
    private(set) var status: Int32?

    init(_ argv: [String], environment: [String: String]? = nil) throws {
        let out = makePipe(), err = makePipe()
        var fa = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&fa, out.write, 1)
        posix_spawn_file_actions_adddup2(&fa, err.write, 2)
        var env = environment ?? ProcessInfo.processInfo.environment
        if env["PATH"] == nil { env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" }
        let cargv: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        let cenv: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { cargv.forEach { free($0) }; cenv.forEach { free($0) } }
        var p: pid_t = 0
        let rc = posix_spawn(&p, argv[0], &fa, nil, cargv, cenv)
        close(out.write)
        close(err.write)
        guard rc == 0 else {
            close(out.read); close(err.read)
            throw TestFailure("posix_spawn \(argv[0]): \(errnoText(rc))")
        }
        pid = p
        outFD = out.read
        errFD = err.read
        _ = fcntl(outFD, F_SETFL, fcntl(outFD, F_GETFL) | O_NONBLOCK)
        _ = fcntl(errFD, F_SETFL, fcntl(errFD, F_GETFL) | O_NONBLOCK)
    }

    deinit {
        if status == nil { kill(pid, SIGKILL); _ = reap(timeout: 5) }
        if outFD >= 0 { close(outFD) }
        if errFD >= 0 { close(errFD) }
    }

    var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    var stderrText: String { String(decoding: stderr, as: UTF8.self) }

    /// Reads what is available on both pipes, waiting up to `ms`.
    private func pump(ms: Int32) {
        var fds: [pollfd] = []
        if outFD >= 0 { fds.append(pollfd(fd: outFD, events: Int16(POLLIN), revents: 0)) }
        if errFD >= 0 { fds.append(pollfd(fd: errFD, events: Int16(POLLIN), revents: 0)) }
        guard !fds.isEmpty else { usleep(UInt32(ms) * 1000); return }
        guard poll(&fds, nfds_t(fds.count), ms) > 0 else { return }
        for f in fds where f.revents != 0 { drain(f.fd) }
    }

    private func drain(_ fd: Int32) {
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                if fd == outFD { stdout.append(contentsOf: buf[0..<n]) } else { stderr.append(contentsOf: buf[0..<n]) }
                continue
            }
            if n == 0 {   // EOF
                close(fd)
                if fd == outFD { outFD = -1 } else { errFD = -1 }
            }
            return   // EAGAIN or EOF
        }
    }

    private func checkExit() -> Bool {
        if status != nil { return true }
        var st: Int32 = 0
        let r = waitpid(pid, &st, WNOHANG)
        if r == pid { status = exitCode(st); return true }
        return false
    }

    /// Waits until stdout holds a complete line satisfying `pred`, the process
    /// exits, or the deadline passes.
    func waitForStdoutLine(timeout: Double, _ pred: (String) -> Bool) -> String? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            pump(ms: 50)
            let lines = stdoutText.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
            if let l = lines.first(where: { pred(String($0)) }) { return String(l) }
            if checkExit() { pump(ms: 0); return nil }
        }
        return nil
    }

    /// Waits for the exit (reading the pipes meanwhile); nil on timeout.
    @discardableResult
    func reap(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            pump(ms: 20)
            if checkExit() {
                // drain what is left (a grandchild may hold the pipe: do not wait for EOF)
                for fd in [outFD, errFD] where fd >= 0 { drain(fd) }
                return status
            }
        }
        return nil
    }

    func signal(_ sig: Int32) { if status == nil { kill(pid, sig) } }
}

/// Runs `/bin/bash -c command` under `timeout` (SIGTERM at `timeout` s,
/// SIGKILL 2 s later, to the whole process group), so a hung mount fails the
/// test with status 124/137 instead of hanging it.
func sh(_ command: String, timeout: Double = 20) -> ShellResult {
    let argv = ["/usr/bin/timeout", "--kill-after=2", String(Int(timeout.rounded(.up))), "/bin/bash", "-c", command]
    let p: Spawned
    do { p = try Spawned(argv) } catch { return ShellResult(status: -1, stdout: "", stderr: "\(error)") }
    let status = p.reap(timeout: timeout + 10) ?? {
        kill(p.pid, SIGKILL)
        return p.reap(timeout: 5) ?? -1
    }()
    return ShellResult(status: status, stdout: p.stdoutText, stderr: p.stderrText)
}

/// Single-quotes a string for bash.
func q(_ s: String) -> String { "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }

// MARK: - the built executable

/// Where SwiftPM put the products: `swift test` runs
/// `<scratch>/<triple>/debug/apmatrixPackageTests.xctest`, and the
/// `apmatrix` executable (a dependency of this target) sits beside it.
func productsDir() -> URL {
    URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
}

func apmatrixExecutable() throws -> String {
    var candidates = [productsDir().appendingPathComponent("apmatrix").path]
    // Fallback: walk up from the test bundle looking for <dir>/apmatrix.
    var dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    for _ in 0..<3 { dir = dir.deletingLastPathComponent(); candidates.append(dir.appendingPathComponent("debug/apmatrix").path) }
    for c in candidates where access(c, X_OK) == 0 { return c }
    throw TestFailure("the apmatrix executable is not next to the test bundle (looked at \(candidates))")
}

// MARK: - sysfs text helpers

/// Ids set in a mask shown as `0x` + 64 hex digits (bit 0 = leftmost bit).
func maskIDs(_ text: String) -> Set<Int> {
    var s = Substring(text.trimmingCharacters(in: .whitespacesAndNewlines))
    if s.hasPrefix("0x") { s = s.dropFirst(2) }
    var ids = Set<Int>()
    for (i, ch) in s.enumerated() {
        guard let v = Int(String(ch), radix: 16) else { continue }
        for b in 0..<4 where v & (8 >> b) != 0 { ids.insert(i * 4 + b) }
    }
    return ids
}

/// `aa.qqqq` lines of a `matrix` file as (apid, apqi) pairs.
func apqns(_ matrixText: String) -> [APQNPair] {
    matrixText.split(separator: "\n").compactMap { line in
        let parts = line.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty,
              let a = Int(parts[0], radix: 16), let d = Int(parts[1], radix: 16) else { return nil }
        return APQNPair(a: a, q: d)
    }
}

struct APQNPair: Hashable, CustomStringConvertible {
    let a: Int, q: Int
    var description: String { String(format: "%02x.%04x", a, q) }
}

/// The kernel-reference V4 mask texts.
let v4Apmask = "0xf9ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\n"
let v4Aqmask = "0xf7fffffffffffffffeffffffffffffffffffffffffeffffffffffffffffffffe\n"
let allOnesMask = "0x" + String(repeating: "f", count: 64) + "\n"

/// Frees adapters 5, 6 and domains 4, 0x47, 0xab, 0xff for vfio_ap (V4).
func applyV4Masks(_ m: Mounted) throws {
    guard writeAttr(m.path("bus/ap/apmask"), "-5,-6\n") == .ok,
          writeAttr(m.path("bus/ap/aqmask"), "-4,-0x47,-0xab,-0xff\n") == .ok else {
        throw TestFailure("cannot apply the V4 masks")
    }
}

/// Creates an mdev through the mount (POSIX write of the UUID + newline).
func createMdev(_ m: Mounted, _ uuid: String) throws {
    let r = writeAttr(m.typeDir + "/create", uuid + "\n")
    guard r == .ok else { throw TestFailure("create \(uuid): \(r)") }
}

/// Lines the model logged after `sequence` (dmesg text without the time stamp).
func logLines(_ m: Mounted, after sequence: Int = 0) -> [String] {
    m.runtime.log(after: sequence).map(\.event.line)
}

func lastSequence(_ m: Mounted) -> Int { m.runtime.log().last?.sequence ?? 0 }
