import APMatrixRuntime
import APMatrixFUSE
import APMatrixModel
import Glibc
import Logging

/// An in-process mount of a runtime (loop on its own pthread).
final class Mounted {
    let dir: String
    let runtime: Runtime
    let fuse: FuseMount

    init(_ host: APHost) throws {
        dir = tempDir("apmatrix-bench")
        var logger = Logger(label: "bench")
        logger.logLevel = .critical
        runtime = Runtime(host: host, logger: logger)
        fuse = try FuseMount(SysfsEndpoint(runtime), mountpoint: dir, subtype: "apmatrix")
        fuse.start()
        guard MountPoint.waitUntilServed(dir) else { fatalError("the mount did not answer") }
    }

    func stop() {
        fuse.stop()
        rmdir(dir)
    }
}

/// The C floor filesystem (Benchmarks/floor/floorfs.c), built and mounted for this run.
final class Floor {
    let dir: String
    let pid: pid_t

    init(source: String) {
        let binary = "/tmp/apmatrix-floorfs"
        let rc = shell("gcc -O2 -o \(binary) \(source) $(pkg-config --cflags --libs fuse3)")
        guard rc == 0 else { fatalError("cannot build \(source) (gcc, libfuse3-dev)") }
        dir = tempDir("apmatrix-floor")
        var p: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup(binary), strdup("-f"), strdup("-o"),
                                                    strdup("fsname=floor,subtype=apmatrix-floor"), strdup(dir), nil]
        defer { argv.forEach { free($0) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for fd: Int32 in [0, 1, 2] { posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", O_RDWR, 0) }
        guard posix_spawn(&p, binary, &actions, nil, argv, environ) == 0 else { fatalError("cannot start the floor fs") }
        pid = p
        for _ in 0..<500 {
            var st = stat()
            if stat(dir + "/a/b/c/d/matrix", &st) == 0, st.st_mode & S_IFMT == S_IFREG { return }
            usleep(10_000)
        }
        fatalError("the floor fs did not answer")
    }

    func stop() {
        umount2(dir, Int32(MNT_DETACH))
        kill(pid, SIGTERM)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        rmdir(dir)
    }
}

/// sysfs operations through the mount, each beside the same operation on the floor.
enum MountBenchmarks {
    static func run(floorSource: String) throws -> [(Figure, Figure)] {
        var host = try APHost(.seedExample)
        try host.setAPMask(host.bus.apmask.subtracting(Bitmap256([5, 6])))
        try host.setAQMask(host.bus.aqmask.subtracting(Bitmap256([4, 0x47, 0xab, 0xff])))
        try host.createMdev(mdevUUID(1))
        try host.assign(.adapter(5), to: mdevUUID(1))
        try host.assign(.domain(4), to: mdevUUID(1))
        let m = try Mounted(host)
        defer { m.stop() }
        let floor = Floor(source: floorSource)
        defer { floor.stop() }
        let mdev = m.dir + "/devices/vfio_ap/matrix/\(uuid(1))"
        let floorMdev = floor.dir + "/devices/vfio_ap/matrix/\(uuid(1))"
        let n = 2000
        var out: [(Figure, Figure)] = []

        out.append((measure("echo to assign_adapter / unassign_adapter (open+write+close)", iterations: n) {
            for i in 0..<n { must(echo(mdev + (i & 1 == 0 ? "/assign_adapter" : "/unassign_adapter"), "6"), "assign") }
        }, measure("floor", iterations: n) {
            for i in 0..<n { must(echo(floorMdev + (i & 1 == 0 ? "/assign_adapter" : "/unassign_adapter"), "6"), "floor") }
        }))
        out.append((measure("cat matrix, one APQN (open+read+close)", iterations: n) {
            for _ in 0..<n { precondition(cat(mdev + "/matrix") == 8) }
        }, measure("floor", iterations: n) {
            for _ in 0..<n { precondition(cat(floorMdev + "/matrix") == 8) }
        }))

        // A full 256×256 mdev: the text is cut at 4095 bytes.
        let big = try Mounted(try APHost(fullHostDescription()))
        defer { big.stop() }
        must(echo(big.dir + "/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create", uuid(2)), "create")
        let fullMdev = big.dir + "/devices/vfio_ap/matrix/\(uuid(2))"
        for i in 0...255 {
            must(echo(fullMdev + "/assign_adapter", "\(i)"), "assign")
            must(echo(fullMdev + "/assign_domain", "\(i)"), "assign")
        }
        out.append((measure("cat matrix, full 256×256 (4095 bytes)", iterations: n) {
            for _ in 0..<n { precondition(cat(fullMdev + "/matrix") == 4095) }
        }, measure("floor", iterations: n) {
            for _ in 0..<n { precondition(cat(floorMdev + "/matrix_full") == 4095) }
        }))

        let create = m.dir + "/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create"
        let floorCreate = floor.dir + "/devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create"
        out.append((measure("create + remove an mdev (two writes)", iterations: n / 2) {
            for i in 0..<n / 2 {
                must(echo(create, uuid(1000 + i)), "create")
                must(echo(m.dir + "/devices/vfio_ap/matrix/\(uuid(1000 + i))/remove", "1"), "remove")
            }
        }, measure("floor", iterations: n / 2) {
            for i in 0..<n / 2 {
                must(echo(floorCreate, uuid(1000 + i)), "floor create")
                must(echo(floor.dir + "/devices/vfio_ap/matrix/\(uuid(1000 + i))/remove", "1"), "floor remove")
            }
        }))
        return out
    }
}
