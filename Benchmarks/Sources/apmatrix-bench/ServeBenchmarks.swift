import Glibc

/// The product as users run it: `apmatrix serve` as its own process (API,
/// metrics and stderr logging on), beside the C floor as its own process,
/// both driven by the same C client process, interleaved round by round.
enum ServeBenchmarks {
    struct Result {
        let name: String
        /// Per round: the client's median per operation, in µs.
        var ours: [Double] = []
        var floor: [Double] = []
        /// FUSE requests the kernel sent per operation (`fuse:fuse_request_send`), nil without perf.
        var oursRequests: Double?
        var floorRequests: Double?
    }

    static func run(binary: String, floorSource: String, clientSource: String, rounds: Int = 5, n: Int = 2000) -> [Result] {
        guard access(binary, X_OK) == 0 else {
            FileHandleError.print("apmatrix-bench: \(binary) not found; build it with `swift build -c release` (serve skipped)")
            return []
        }
        let client = "/tmp/apmatrix-bench-client"
        guard shell("gcc -O2 -o \(client) \(clientSource)") == 0 else { fatalError("cannot build \(clientSource)") }
        let floor = Floor(source: floorSource)
        defer { floor.stop() }
        let serve = Served(binary: binary)
        defer { serve.stop() }
        let u = uuid(1)
        let setup = [("bus/ap/apmask", "-5,-6"), ("bus/ap/aqmask", "-4,-0x47,-0xab,-0xff"),
                     ("devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create", u),
                     ("devices/vfio_ap/matrix/\(u)/assign_adapter", "5"), ("devices/vfio_ap/matrix/\(u)/assign_domain", "4")]
        for (path, value) in setup { must(echo(serve.root + "/" + path, value), path) }
        let ours = serve.root + "/devices/vfio_ap/matrix/\(u)", theirs = floor.dir + "/devices/vfio_ap/matrix/\(u)"
        var results = [Result(name: "store: open+write+close of assign_adapter/unassign_adapter"),
                       Result(name: "read: open+read+close of matrix")]
        for _ in 0..<rounds {
            for (i, mode) in ["store", "read"].enumerated() {
                results[i].ours.append(clientMedian(client, mode, ours, n))
                results[i].floor.append(clientMedian(client, mode, theirs, n))
            }
        }
        for (i, mode) in ["store", "read"].enumerated() {
            results[i].oursRequests = requestsPerOperation(client, mode, ours)
            results[i].floorRequests = requestsPerOperation(client, mode, theirs)
        }
        return results
    }

    /// The FUSE requests one operation of the client costs, counted by the
    /// kernel's tracepoint over a run of 1,000 (and its 100 warm-up) operations.
    static func requestsPerOperation(_ client: String, _ mode: String, _ dir: String) -> Double? {
        let p = popen("perf stat -x, -e fuse:fuse_request_send -- \(client) \(mode) \(dir) 1000 2>&1 >/dev/null", "r")!
        var line = [CChar](repeating: 0, count: 256)
        var count: Double?
        while fgets(&line, 256, p) != nil {
            let fields = String(cString: line).split(separator: ",", omittingEmptySubsequences: false)
            if fields.count > 2, fields[2].hasPrefix("fuse:fuse_request_send") { count = Double(fields[0]) }
        }
        guard pclose(p) == 0, let count else { return nil }
        return count / 1100
    }

    /// Runs the client once; its median per operation in µs.
    static func clientMedian(_ client: String, _ mode: String, _ dir: String, _ n: Int) -> Double {
        let p = popen("\(client) \(mode) \(dir) \(n)", "r")!
        var line = [CChar](repeating: 0, count: 128)
        _ = fgets(&line, 128, p)
        guard pclose(p) == 0, let ns = Double(String(cString: line).split(separator: " ").first ?? "") else {
            fatalError("the client failed: \(mode) \(dir)")
        }
        return ns / 1000
    }
}

/// `apmatrix serve` on the seed example's host, as a user starts it.
final class Served {
    let root: String
    let base: String
    let pipe: UnsafeMutablePointer<FILE>

    init(binary: String) {
        base = tempDir("apmatrix-bench-serve")
        root = base + "/sys"
        let host = "/" + #filePath.split(separator: "/").dropLast(4).joined(separator: "/") + "/hosts/seed-example.json"
        pipe = popen("exec \(binary) serve --mount \(root) --host \(host) --listen 127.0.0.1:0 2>\(base)/stderr", "r")!
        var line = [CChar](repeating: 0, count: 256)
        guard fgets(&line, 256, pipe) != nil, String(cString: line).hasPrefix("ready") else { fatalError("serve did not start") }
    }

    func stop() {
        _ = shell("pkill -TERM -f -- '--mount \(root)'")
        pclose(pipe)
        rmdir(root)
        unlink(base + "/stderr")
        rmdir(base)
    }
}
