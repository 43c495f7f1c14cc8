import APMatrixModel
import APMatrixRuntime
import FoundationEssentials
import Glibc

/// `serve --state` as a process (release build): F, the floor of one durable
/// write on this disk; a create and an assign_domain through the mount at
/// 100 and at `big` mdevs, with and without --state, in one interleaved
/// run; start-up on a database of `startupMdevs` mdevs; an idle host with
/// three running guests.
enum StateBenchmarks {
    struct Daemon {
        let name: String
        let serve: ServeProcess
        var creates: [Double] = []
        var assigns: [Double] = []
        var next = 0
    }

    static func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
    static func ms(_ v: Double) -> String { String(Double(Int(v * 1e5)) / 100) + " ms" }

    static func run(binary: String, big: Int, startupMdevs: Int, idleSeconds: UInt32) throws {
        let work = tempDir("apmatrix-state-bench")
        defer { _ = shell("rm -rf \(work)") }
        let hostFile = work + "/host.json"
        try Data(fullHostJSON.utf8).write(to: URL(fileURLWithPath: hostFile))

        // Four daemons, filled, then measured in turns: every ratio comes from one interleaved run.
        var daemons: [Daemon] = []
        for (size, state) in [(100, false), (100, true), (big, false), (big, true)] {
            let name = "\(size) mdevs, \(state ? "--state" : "no state")"
            let serve = ServeProcess(binary: binary, mount: work + "/mnt-\(daemons.count)",
                                     ["--host", hostFile] + (state ? ["--state", work + "/state-\(size).db"] : []))
            let matrix = serve.mount + "/devices/vfio_ap/matrix"
            let t0 = now()
            for n in 0..<size { must(echo(matrix + "/mdev_supported_types/vfio_ap-passthrough/create", uuid(n)), "create") }
            for n in 0..<100 { must(echo(matrix + "/\(uuid(n))/assign_adapter", "\(n)"), "assign_adapter") }
            print("filled: \(name) in \(Int(now() - t0)) s")
            daemons.append(Daemon(name: name, serve: serve))
        }
        let floorFile = work + "/floor"
        let fd = open(floorFile, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        let page = [UInt8](repeating: 0x61, count: 4096)
        var floor: [Double] = []
        for _ in 0..<10 {
            for _ in 0..<20 {
                let t = now()
                _ = page.withUnsafeBytes { write(fd, $0.baseAddress, 4096) }
                fsync(fd)
                floor.append(now() - t)
            }
            for i in daemons.indices {
                let matrix = daemons[i].serve.mount + "/devices/vfio_ap/matrix"
                for _ in 0..<20 {
                    let k = daemons[i].next
                    daemons[i].next += 1
                    var t = now()
                    must(echo(matrix + "/mdev_supported_types/vfio_ap-passthrough/create", uuid(1_000_000 + k)), "create")
                    daemons[i].creates.append(now() - t)
                    t = now()
                    must(echo(matrix + "/\(uuid(k % 100))/assign_domain", "\(k / 100)"), "assign_domain")
                    daemons[i].assigns.append(now() - t)
                }
            }
        }
        close(fd)
        let f = median(floor)
        print("\n| one durable write, median of 200 | create | assign_domain |")
        print("|---|---|---|")
        print("| F: append 4 KiB to a file in the state's directory + fsync | \(ms(f)) | |")
        for d in daemons { print("| \(d.name) | \(ms(median(d.creates))) | \(ms(median(d.assigns))) |") }
        let (s100, sBig, p100, pBig) = (daemons[1], daemons[3], daemons[0], daemons[2])
        func ratio(_ a: [Double], _ b: [Double]) -> String { String(Double(Int(median(a) / median(b) * 100)) / 100) + "×" }
        func overhead(_ s: Daemon, _ p: Daemon, _ pick: (Daemon) -> [Double]) -> String {
            let extra = median(pick(s)) - median(pick(p))
            return "\(ms(extra)) (limit \(ms(max(2 * f, 0.0005))))"
        }
        print("\n| ratio in the same run | create | assign_domain |")
        print("|---|---|---|")
        print("| --state, \(big) / 100 mdevs (target ≤ 1.3×) | \(ratio(sBig.creates, s100.creates)) | \(ratio(sBig.assigns, s100.assigns)) |")
        print("| --state over no state, 100 mdevs | \(overhead(s100, p100, \.creates)) | \(overhead(s100, p100, \.assigns)) |")
        print("| --state over no state, \(big) mdevs | \(overhead(sBig, pBig, \.creates)) | \(overhead(sBig, pBig, \.assigns)) |")
        print("| creates / assigns per daemon | \(s100.creates.count) | \(s100.assigns.count) |")
        for d in daemons { d.serve.stop() }

        try startup(binary: binary, work: work, mdevs: startupMdevs)
        idle(binary: binary, work: work, hostFile: hostFile, seconds: idleSeconds)
    }

    /// A database of `mdevs` mdevs (made once from a version-1 JSON file
    /// built here), then serve's start-up on it: time to `ready` and peak RSS.
    static func startup(binary: String, work: String, mdevs: Int) throws {
        var host = try APHost(fullHostDescription())
        for n in 0..<mdevs { try host.createMdev(mdevUUID(n)) }
        let json = work + "/big.json", db = work + "/big.db"
        try JSONEncoder().encode(StateDocument(profile: .seed, host: host, log: [], nextSequence: 1, qmpSockets: [:]))
            .write(to: URL(fileURLWithPath: json))
        let imported = ServeProcess(binary: binary, mount: work + "/mnt-import", ["--state", db, "--import-state", json])
        imported.stop()
        var times: [Double] = [], rss: [Double] = []
        for i in 0..<3 {
            let s = ServeProcess(binary: binary, mount: work + "/mnt-start-\(i)", ["--state", db])
            times.append(s.startup)
            rss.append(s.proc("status", "VmHWM:") / 1024)
            s.stop()
        }
        var st = stat()
        stat(db, &st)
        print("\n| start-up on a state database | figure |")
        print("|---|---|")
        print("| import of a version-1 JSON file of \(mdevs) mdevs (256×256 host, 65,536 queue devices) | \(ms(imported.startup)) |")
        print("| `serve --state` to `ready`, \(mdevs) mdevs, database \(Int(st.st_size) / 1_048_576) MiB (median of 3, target < 5 s) | \(ms(median(times))) |")
        print("| peak RSS of serve (target < 250 MiB) | \(Int(rss.max()!)) MiB |")
    }

    /// Three guests run, nothing happens for `seconds`: what the daemon writes.
    static func idle(binary: String, work: String, hostFile: String, seconds: UInt32) {
        let db = work + "/idle.db"
        let s = ServeProcess(binary: binary, mount: work + "/mnt-idle", ["--host", hostFile, "--state", db])
        let matrix = s.mount + "/devices/vfio_ap/matrix"
        for n in 0..<3 {
            must(echo(matrix + "/mdev_supported_types/vfio_ap-passthrough/create", uuid(n)), "create")
            must(echo(matrix + "/\(uuid(n))/assign_adapter", "\(n)"), "assign_adapter")
            must(echo(matrix + "/\(uuid(n))/assign_domain", "4"), "assign_domain")
            let rc = shell("\(binary) guest start g\(n) --cpu host --device vfio-ap,sysfsdev=\(matrix)/\(uuid(n)),id=hostdev0 --server \(s.address) >/dev/null")
            precondition(rc == 0, "guest start failed")
        }
        func stamps() -> String {
            ["", "-wal"].map { suffix in
                var st = stat()
                guard stat(db + suffix, &st) == 0 else { return "missing" }
                return "\(st.st_size) \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
            }.joined(separator: ", ")
        }
        let before = stamps(), bytes = s.proc("io", "write_bytes:"), calls = s.proc("io", "syscw:")
        sleep(seconds)
        let after = stamps(), bytesAfter = s.proc("io", "write_bytes:"), callsAfter = s.proc("io", "syscw:")
        s.stop()
        print("\n| idle host, three guests running, \(seconds) s (their buses scan every 30 s) | figure |")
        print("|---|---|")
        print("| database and WAL: size and mtime | \(before == after ? "unchanged" : "CHANGED: \(before) → \(after)") |")
        print("| bytes the daemon sent to storage (`/proc/PID/io` write_bytes) | \(Int(bytesAfter - bytes)) |")
        print("| write system calls of the daemon, any file (syscw) | \(Int(callsAfter - calls)) |")
    }
}
