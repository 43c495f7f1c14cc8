// `withMount` makes a fresh mkdtemp directory per mount, mounts a runtime
// in-process with subtype "apmatrix" (so a leftover shows as fuse.apmatrix in
// /proc/mounts), runs the FUSE loop on its own pthread (FuseMount.start,
// never a Swift Task), and always unmounts and removes the directory.

import APMatrixFUSE
import APMatrixModel
import APMatrixRuntime
import Foundation
import Glibc
import Synchronization
import Testing

/// The mount point and the runtime behind it.
public struct Mounted {
    public let root: String
    public let runtime: Runtime
    /// `root` + "/" + relative path.
    public func path(_ rel: String) -> String { root + "/" + rel }
    public var matrixDir: String { root + "/devices/vfio_ap/matrix" }
    public var typeDir: String { matrixDir + "/mdev_supported_types/vfio_ap-passthrough" }
    public func mdev(_ uuid: String) -> String { matrixDir + "/" + uuid }
    public func mdev(_ uuid: MdevUUID) -> String { mdev(uuid.description) }
}

/// True when `dir` is listed in /proc/mounts with type fuse.apmatrix.
public func isApmatrixMount(_ dir: String) -> Bool {
    guard let text = try? String(contentsOfFile: "/proc/mounts", encoding: .utf8) else { return false }
    return text.split(separator: "\n").contains { line in
        let f = line.split(separator: " ")
        return f.count > 2 && f[1] == dir && f[2] == "fuse.apmatrix"
    }
}

/// Removes dead mounts (ENOTCONN) that a crashed earlier run of these tests
/// left under /tmp/apmatrix-mt.*. Live mounts are never touched.
public func sweepDeadTestMounts() {
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
public final class Flag: Sendable {
    public let value = Atomic<Bool>(false)
}

public final class Watchdog: Sendable {
    private let flag = Flag()
    public init(_ what: String, seconds: Double) {
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
    public func cancel() { flag.value.store(true, ordering: .releasing) }
}

/// Mounts a fresh runtime of `host` at a fresh temp dir, runs `body`, and
/// always unmounts (stop) and removes the directory, even when `body` throws.
/// `body` must close every fd it opens on the mount before returning.
@discardableResult
public func withMount<T>(_ host: HostDescription = .seedExample, profile: Profile = .seed, watchdog seconds: Double = 240,
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

/// Frees adapters 5, 6 and domains 4, 0x47, 0xab, 0xff for vfio_ap (V4).
public func applyV4Masks(_ m: Mounted) throws {
    guard writeAttr(m.path("bus/ap/apmask"), "-5,-6\n") == .ok,
          writeAttr(m.path("bus/ap/aqmask"), "-4,-0x47,-0xab,-0xff\n") == .ok else {
        throw TestFailure("cannot apply the V4 masks")
    }
}

/// Creates an mdev through the mount (POSIX write of the UUID + newline).
public func createMdev(_ m: Mounted, _ uuid: String) throws {
    let r = writeAttr(m.typeDir + "/create", uuid + "\n")
    guard r == .ok else { throw TestFailure("create \(uuid): \(r)") }
}

/// Lines the model logged after `sequence` (dmesg text without the time stamp).
public func logLines(_ m: Mounted, after sequence: Int = 0) -> [String] {
    m.runtime.log(after: sequence).map(\.event.line)
}

public func lastSequence(_ m: Mounted) -> Int { m.runtime.log().last?.sequence ?? 0 }
