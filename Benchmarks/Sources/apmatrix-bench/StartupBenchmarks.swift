import Glibc

/// `apmatrix serve` from exec to its `ready` line.
enum StartupBenchmarks {
    static func run(binary: String) -> [Figure] {
        guard access(binary, X_OK) == 0 else {
            FileHandleError.print("apmatrix-bench: \(binary) not found; build it with `swift build -c release` (startup skipped)")
            return []
        }
        let hostFile = "/tmp/apmatrix-bench-full-host.json"
        let f = fopen(hostFile, "w")!
        fputs(fullHostJSON, f)
        fclose(f)
        return [("default host", nil), ("full 256×256 host", hostFile)].map { name, host in
            measure("serve start-up to ready, \(name)", unit: "ms", repetitions: 5, iterations: 1) {
                let dir = tempDir("apmatrix-bench-serve")
                let command = "\(binary) serve --mount \(dir)/sys --listen 127.0.0.1:0 \(host.map { "--host \($0)" } ?? "")"
                let p = popen("exec " + command + " 2>/dev/null", "r")!
                var line = [CChar](repeating: 0, count: 256)
                _ = fgets(&line, 256, p)
                _ = shell("pkill -TERM -f -- '--mount \(dir)/sys'")
                pclose(p)
                rmdir(dir + "/sys")
                rmdir(dir)
            }
        }
    }
}
